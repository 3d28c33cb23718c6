"""The options of ``%%chat`` and of the Python API: one validated value, `ChatOptions`.

`ChatOptions` checks every field when it is set (bounds and types, see
`_params`), so ``%%chat``, ``chatmagic.prompt()`` and any code that builds
options refuse a bad value the same way, naming it, before anything is sent.
`parse_chat_line` turns the text after ``%%chat`` (or ``%chat``) into one;
`CHAT_PARSER.format_help()` is what ``%%chat?`` shows.
"""

from __future__ import annotations

import argparse
import io
import json
import shlex
from dataclasses import dataclass, field
from typing import Any, NoReturn

from .params import CHECKS, FORMATS, MAX_STOP, Invalid
from .errors import OptionError, ParameterError

__all__ = ["ChatOptions", "CHAT_PARSER", "parse_chat_line", "FORMATS",
           "SAMPLING_FIELDS", "REQUEST_FIELDS", "PRESENTATION_FIELDS"]

#: The body fields that ChatOptions carries under their own names.
SAMPLING_FIELDS = ("temperature", "top_p", "n", "stop", "presence_penalty", "frequency_penalty",
                   "logit_bias", "seed", "user")

#: What shapes the request itself (every entry point takes these) ...
REQUEST_FIELDS = ("temperature", "top_p", "n", "stop", "max_tokens", "presence_penalty",
                  "frequency_penalty", "logit_bias", "seed", "user", "json", "params", "images",
                  "no_stream", "timeout")
#: ... and what only a cell has: how the reply is shown and kept.
PRESENTATION_FIELDS = ("out", "format", "no_interpolate", "debug")


class _Parser(argparse.ArgumentParser):
    """argparse that raises OptionError instead of printing and exiting."""

    def error(self, message: str) -> NoReturn:
        raise OptionError(f"%%chat: {message}. See %%chat? for the options.")

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        raise OptionError(message or "%%chat: stopped")


def _number(flag: str) -> Any:
    """Text to a number; its range is the value's to check (`_params`), for every entry point."""
    def convert(text: str) -> float:
        try:
            return float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} takes a number, not {text!r}") from None
    convert.__name__ = flag
    return convert


def _whole(flag: str) -> Any:
    def convert(text: str) -> int:
        try:
            return int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} takes a whole number, not {text!r}") from None
    convert.__name__ = flag
    return convert


def _logit_bias(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--logit-bias takes a JSON object like '{{\"50256\": -100}}', not {text!r}") from None


def _param(text: str) -> tuple[str, Any]:
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"--param takes KEY=VALUE, not {text!r}")
    try:
        value: Any = json.loads(raw)
    except ValueError:
        value = raw  # not JSON: the text as written
    return key.strip(), value


def _models(text: str) -> list[str]:
    models = [m.strip() for m in text.split(",")]
    if any(not m for m in models):
        raise argparse.ArgumentTypeError(f"--compare has an empty entry in {text!r}: "
                                         "write M1,M2,... with no empty names")
    if len(models) < 2:
        raise argparse.ArgumentTypeError("--compare needs at least two models, e.g. "
                                         "--compare gpt-4o-mini,qwen:qwen-plus")
    return models


def _build_parser() -> _Parser:
    p = _Parser(prog="%%chat", add_help=False, allow_abbrev=False,
                description="Ask a model. The cell body is the prompt; {var} takes a value from "
                            "the notebook ({{ and }} stay literal). %chat [options] PROMPT is the "
                            "one-line form.")
    add = p.add_argument
    add("-m", "--model", help="model id, or PROFILE:MODEL to pick the endpoint too")
    add("-p", "--profile", metavar="NAME", help="endpoint profile (see %%chat_config profiles)")
    add("-s", "--system", metavar="TEXT", help="system message of the conversation")
    add("-c", "--conversation", default="default", metavar="NAME",
        help="named conversation in this notebook (default: default)")
    add("--new", action="store_true", help="start the conversation afresh")
    add("--no-history", action="store_true",
        help="one-shot: send only the system message and this prompt, record nothing")
    add("--compare", type=_models, metavar="M1,M2,...",
        help="send the same prompt to several models, streamed side by side")
    add("-t", "--temperature", type=_number("--temperature"), metavar="F",
        help="sampling temperature, 0-2")
    add("--top-p", type=_number("--top-p"), metavar="F", help="nucleus sampling, 0-1")
    add("-n", type=_whole("-n"), metavar="N", help="number of choices, at least 1")
    add("--stop", action="append", metavar="S",
        help=f"stop sequence (repeatable, up to {MAX_STOP})")
    add("--max-tokens", type=_whole("--max-tokens"), metavar="N",
        help="most tokens in the reply, at least 1")
    add("--presence-penalty", type=_number("--presence-penalty"), metavar="F", help="-2 to 2")
    add("--frequency-penalty", type=_number("--frequency-penalty"), metavar="F",
        help="-2 to 2")
    add("--logit-bias", type=_logit_bias, metavar="JSON", help="token id -> bias, -100 to 100")
    add("--seed", type=_whole("--seed"), metavar="N", help="sampling seed")
    add("--user", metavar="ID", help="end-user id sent to the endpoint")
    add("--json", action="store_true", help='response_format={"type": "json_object"}')
    add("--schema", metavar="SPEC",
        help="the reply as data: a pydantic model, dataclass, TypedDict or JSON-schema dict "
             "from the notebook, or fields like \"name, age int, tags list[str]\"; -o gets "
             "the object")
    add("--param", action="append", type=_param, default=[], metavar="KEY=VALUE",
        help="any other body field; VALUE is parsed as JSON when it parses (repeatable)")
    add("-i", "--image", action="append", default=[], metavar="SRC",
        help="image: a file path, an http(s) URL, or a variable (bytes, PIL image, "
             "matplotlib figure) (repeatable)")
    add("--no-stream", action="store_true", help="one request, one reply")
    add("-o", "--out", metavar="VAR",
        help="store the reply text in VAR (with --compare: a dict model -> text, a repeated "
             "model keyed model#2; with -n > 1: a list of the choices' texts; with --schema: "
             "the object; with --each: the table)")
    add("-f", "--format", choices=FORMATS, default="markdown", metavar="|".join(FORMATS),
        help="how to show the reply; code puts the reply's code in a new cell below")
    add("--no-interpolate", action="store_true",
        help="send { and } literally ({{ and }} always escape)")
    add("--timeout", type=_number("--timeout"), metavar="SECONDS",
        help="time limit of each request, start to end (the text that arrived is kept), "
             "above 0")
    add("--debug", action="store_true", help="show tracebacks of failures")
    # Over many inputs (each.py): one request per element of VAR, never with the history.
    add("--each", metavar="VAR", help="one request per element of VAR (list, tuple, dict, "
                                      "Series, DataFrame: {item}, {key}, {COLUMN}); -o gets "
                                      "the table")
    add("--concurrency", type=_whole("--concurrency"), metavar="N",
        help="with --each: requests in flight at most (default 8), at least 1")
    add("--fresh", action="store_true",
        help="with --each: send every row again (ignore rows finished by earlier runs)")
    add("--batch-api", action="store_true",
        help="with --each: send the rows as one job to the endpoint's Batch API and return "
             "at once; %%chat_batch follows it")
    # Tools (see chatmagic.tools.functions): the model may call these functions, each call allowed first.
    add("--tools", metavar="F1,F2,...", help="functions of the notebook (or a variable holding a "
                                             "list of them) the model may call")
    add("--yes", action="store_true", help="allow every tool call of this cell without asking")
    add("--max-rounds", type=_whole("--max-rounds"), default=10, metavar="N",
        help="most requests to the model in one cell with --tools (default 10)")
    add("prompt", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return p


CHAT_PARSER: _Parser = _build_parser()

# Body fields that named options own: --param may not set them behind the option's back.
_OWNED = {"model", "messages", "stream", "stream_options", "temperature", "top_p", "n", "stop",
          "max_tokens", "max_completion_tokens", "presence_penalty", "frequency_penalty",
          "logit_bias", "seed", "user", "response_format"}


@dataclass
class ChatOptions:
    """Everything one ``%%chat`` cell (or one Python API call) asked for.

    Every field is checked when it is set, at construction or later, so an
    instance never holds a value the endpoint should not be sent.
    """

    prompt: str = ""
    model: str | None = None
    profile: str | None = None
    system: str | None = None
    conversation: str = "default"
    new: bool = False
    no_history: bool = False
    compare: list[str] | None = None
    temperature: float | None = None
    top_p: float | None = None
    n: int | None = None
    stop: list[str] | None = None
    max_tokens: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    logit_bias: dict[str, int] | None = None
    seed: int | None = None
    user: str | None = None
    json: bool = False
    params: dict[str, Any] = field(default_factory=dict)
    images: list[str] = field(default_factory=list)
    no_stream: bool = False
    out: str | None = None
    format: str = "markdown"
    no_interpolate: bool = False
    timeout: float | None = None
    debug: bool = False
    #: ``--schema``: the spec as written (resolved against the namespace when planned), or a
    #: `chatmagic.core.schema.Schema` (the Python API resolves it at once).
    schema: Any = None
    each: str | None = None
    concurrency: int | None = None
    fresh: bool = False
    #: Tools: names from the namespace (a cell) or functions (Python); allowing; round limit.
    tools: Any = None
    yes: bool = False
    max_rounds: int = 10
    batch_api: bool = False

    def __setattr__(self, name: str, value: Any) -> None:
        check = CHECKS.get(name)
        if check is not None:
            try:
                value = check(value)
            except Invalid as exc:
                raise ParameterError(name, exc.problem) from None
        object.__setattr__(self, name, value)

    def __post_init__(self) -> None:
        shadowed = sorted(set(self.params) & _OWNED)
        if shadowed:
            raise ParameterError("params", f"cannot set {', '.join(shadowed)}: each has an "
                                 "option of its own (see %%chat?)")
        if self.compare and self.model:
            raise ParameterError("model", "cannot be combined with compare, which names the "
                                 "models itself")
        if self.compare and (self.n or 1) > 1:
            raise ParameterError("n", "above 1 cannot be combined with compare: pick one")
        if self.each and (self.n or 1) > 1:
            raise ParameterError("n", "above 1 cannot be combined with each: one reply per row")
        _check_schema(self)
        if self.tools and (self.compare or (self.n or 1) > 1 or self.each):
            raise ParameterError("tools", "cannot be combined with compare, each or n above "
                                 "1: one model, one reply calls the tools")
        if self.batch_api and not self.each:
            raise ParameterError("batch_api", "sends the rows of --each VAR: name them with "
                                 "--each")

    def sampling(self) -> dict[str, Any]:
        """The Chat Completions parameters the cell set (not None)."""
        return {k: getattr(self, k) for k in SAMPLING_FIELDS if getattr(self, k) is not None}


def _check_schema(options: ChatOptions) -> None:
    """A schema is resolved now unless it is text (a name needs the notebook's namespace)."""
    if options.schema is None:
        return
    if options.json:
        raise ParameterError("json", "cannot be combined with a schema, which asks for "
                             "JSON itself: drop it")
    if (options.n or 1) > 1:
        raise ParameterError("n", "above 1 cannot be combined with a schema: one object "
                             "per reply")
    if not isinstance(options.schema, str):
        from .schema import resolve_schema

        object.__setattr__(options, "schema", resolve_schema(options.schema))


def _option_arity() -> dict[str, int]:
    """How many values each option string takes (0 for flags)."""
    arity: dict[str, int] = {}
    for action in CHAT_PARSER._actions:
        takes = 0 if action.nargs == 0 else 1
        for option in action.option_strings:
            arity[option] = takes
    return arity


_ARITY = _option_arity()


def _split_options(line: str) -> tuple[list[str], str]:
    """Split ``%chat`` line form into option tokens and the prompt, kept as written.

    Options come first; the first word that is not an option (or a value of
    one) starts the prompt, which keeps its quotes and apostrophes.
    """
    tokens: list[str] = []
    expect_value = False
    pos = 0
    while True:
        while pos < len(line) and line[pos].isspace():
            pos += 1
        if pos >= len(line):
            return tokens, ""
        if not expect_value and not line.startswith("-", pos):
            return tokens, line[pos:].strip()
        if not expect_value and line.startswith("-- ", pos):
            return tokens, line[pos + 3:].strip()
        rest = io.StringIO(line[pos:])
        lexer = shlex.shlex(rest, posix=True)
        lexer.whitespace_split = True
        try:
            token = lexer.get_token()
        except ValueError as exc:
            raise OptionError(f"%chat: {exc} in the options: check the quotes") from None
        pos += rest.tell()
        assert token is not None
        tokens.append(token)
        if expect_value:
            expect_value = False
        else:
            name = token.split("=", 1)[0]
            expect_value = _ARITY.get(name, 0) == 1 and "=" not in token


def parse_chat_line(line: str, cell: str | None = None) -> ChatOptions:
    """Parse the magic line (and the cell body, the prompt) into ChatOptions."""
    if cell is None:
        tokens, prompt = _split_options(line)
    else:
        try:
            tokens = shlex.split(line)
        except ValueError as exc:
            raise OptionError(f"%%chat: {exc} in the options line: check the quotes") from None
        prompt = cell.lstrip("\n").rstrip()  # IPython ends a cell body with a newline
    ns = CHAT_PARSER.parse_args(tokens)
    if ns.prompt:
        raise OptionError(f"%%chat: unexpected words in the options line: {' '.join(ns.prompt)!r}."
                          " The prompt goes in the cell body (or use %chat OPTIONS PROMPT).")
    params = dict(ns.param)
    shadowed = sorted(set(params) & _OWNED)
    if shadowed:
        raise OptionError(f"--param {shadowed[0]}=... would shadow a named option: use the "
                          f"option for {', '.join(shadowed)} instead (see %%chat?)")
    if ns.compare and ns.model:
        raise OptionError("--compare names the models itself: drop -m/--model")
    if ns.compare and ns.n and ns.n > 1:
        raise OptionError("-n > 1 and --compare cannot be combined: pick one")
    if (ns.concurrency is not None or ns.fresh) and not ns.each:
        raise OptionError(f"{'--concurrency' if ns.concurrency is not None else '--fresh'} "
                          "goes with --each VAR (a run over many inputs)")
    if ns.each and ns.n and ns.n > 1:
        raise OptionError("-n > 1 and --each cannot be combined: one reply per row")
    values = {k: v for k, v in vars(ns).items() if k not in ("param", "image", "prompt")}
    try:
        return ChatOptions(prompt=prompt, params=params, images=list(ns.image), **values)
    except ParameterError as exc:
        # The value's own check refused it: name the option as the cell wrote it.
        raise ParameterError(exc.option, exc.problem, _FLAGS.get(exc.option)) from None


def _flags() -> dict[str, str]:
    """Field name -> the option string that sets it (its long form)."""
    return {action.dest: max(action.option_strings, key=len)
            for action in CHAT_PARSER._actions if action.option_strings}


_FLAGS = {**_flags(), "params": "--param", "images": "--image"}
