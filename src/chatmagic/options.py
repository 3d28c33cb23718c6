"""The options of ``%%chat``: parsed from the magic line into a validated value.

`parse_chat_line` turns the text after ``%%chat`` (or ``%chat``) into
`ChatOptions`; every range and type is checked here, so a bad option is refused
before any request is sent. `CHAT_PARSER.format_help()` is what ``%%chat?`` shows.
"""

from __future__ import annotations

import argparse
import json
import shlex
from dataclasses import dataclass, field
from typing import Any, NoReturn

from .errors import OptionError

__all__ = ["ChatOptions", "CHAT_PARSER", "parse_chat_line", "FORMATS", "SAMPLING_FIELDS"]

FORMATS = ("markdown", "text", "code")

#: The body fields that ChatOptions carries under their own names.
SAMPLING_FIELDS = ("temperature", "top_p", "n", "stop", "presence_penalty", "frequency_penalty",
                   "logit_bias", "seed", "user")


class _Parser(argparse.ArgumentParser):
    """argparse that raises OptionError instead of printing and exiting."""

    def error(self, message: str) -> NoReturn:
        raise OptionError(f"%%chat: {message}. See %%chat? for the options.")

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        raise OptionError(message or "%%chat: stopped")


def _float(name: str, low: float, high: float) -> Any:
    def convert(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} takes a number, not {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{name} must be between {low:g} and {high:g}, "
                                             f"not {value:g}")
        return value
    convert.__name__ = name
    return convert


def _int(name: str, low: int) -> Any:
    def convert(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} takes a whole number, not {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"{name} must be at least {low}, not {value}")
        return value
    convert.__name__ = name
    return convert


def _logit_bias(text: str) -> dict[str, int]:
    try:
        value = json.loads(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--logit-bias takes a JSON object like '{{\"50256\": -100}}', not {text!r}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("--logit-bias takes a JSON object of token id -> bias")
    for token, bias in value.items():
        if not str(token).isdigit():
            raise argparse.ArgumentTypeError(f"--logit-bias keys are token ids, not {token!r}")
        if isinstance(bias, bool) or not isinstance(bias, (int, float)) or not -100 <= bias <= 100:
            raise argparse.ArgumentTypeError(f"--logit-bias values are numbers from -100 to 100, "
                                             f"not {bias!r}")
    return {str(k): v for k, v in value.items()}


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
    add("-p", "--profile", help="endpoint profile (see %%chat_config profiles)")
    add("-s", "--system", help="system message of the conversation")
    add("-c", "--conversation", default="default", help="named conversation (default: default)")
    add("--new", action="store_true", help="start the conversation afresh")
    add("--no-history", action="store_true",
        help="one-shot: send only the system message and this prompt, record nothing")
    add("--compare", type=_models, metavar="M1,M2,...",
        help="send the same prompt to several models, streamed side by side")
    add("-t", "--temperature", type=_float("--temperature", 0, 2), help="sampling temperature, 0-2")
    add("--top-p", type=_float("--top-p", 0, 1), help="nucleus sampling, 0-1")
    add("-n", type=_int("-n", 1), help="number of choices")
    add("--stop", action="append", help="stop sequence (repeatable)")
    add("--max-tokens", type=_int("--max-tokens", 1), help="most tokens in the reply")
    add("--presence-penalty", type=_float("--presence-penalty", -2, 2), help="-2 to 2")
    add("--frequency-penalty", type=_float("--frequency-penalty", -2, 2), help="-2 to 2")
    add("--logit-bias", type=_logit_bias, metavar="JSON", help="token id -> bias, -100 to 100")
    add("--seed", type=_int("--seed", -(2**63)), help="sampling seed")
    add("--user", help="end-user id sent to the endpoint")
    add("--json", action="store_true", help='response_format={"type": "json_object"}')
    add("--param", action="append", type=_param, default=[], metavar="KEY=VALUE",
        help="any other body field; VALUE is parsed as JSON when it parses (repeatable)")
    add("-i", "--image", action="append", default=[], metavar="SRC",
        help="image: a file path, an http(s) URL, or a variable (repeatable)")
    add("--no-stream", action="store_true", help="one request, one reply")
    add("-o", "--out", metavar="VAR", help="store the reply text in VAR")
    add("-f", "--format", choices=FORMATS, default="markdown",
        help="how to show the reply; code puts the reply's code in a new cell below")
    add("--no-interpolate", action="store_true", help="send { and } literally")
    add("--timeout", type=_float("--timeout", 0.1, 86400), metavar="SECONDS",
        help="per-request timeout")
    add("--debug", action="store_true", help="show tracebacks of failures")
    add("prompt", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return p


CHAT_PARSER: _Parser = _build_parser()

# Body fields that named options own: --param may not set them behind the option's back.
_OWNED = {"model", "messages", "stream", "stream_options", "temperature", "top_p", "n", "stop",
          "max_tokens", "max_completion_tokens", "presence_penalty", "frequency_penalty",
          "logit_bias", "seed", "user", "response_format"}


@dataclass
class ChatOptions:
    """Everything one ``%%chat`` cell asked for, validated."""

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

    def sampling(self) -> dict[str, Any]:
        """The Chat Completions parameters the cell set (not None)."""
        return {k: getattr(self, k) for k in SAMPLING_FIELDS if getattr(self, k) is not None}


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
        lexer = shlex.shlex(line[pos:], posix=True)
        lexer.whitespace_split = True
        try:
            token = lexer.get_token()
        except ValueError as exc:
            raise OptionError(f"%chat: {exc} in the options: check the quotes") from None
        consumed = lexer.instream.tell()
        pos += consumed
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
    values = {k: v for k, v in vars(ns).items() if k not in ("param", "image", "prompt")}
    return ChatOptions(prompt=prompt, params=params, images=list(ns.image), **values)
