"""The IPython magics: each body parses its line, calls a subcommand, and shows the outcome.

The subcommands are functions of (arguments, session, namespace) in `chatmagic.shell.cmd`;
`ChatMagics` holds the settings (traits, validated) and the session. A ``%%chat`` line is
parsed once into `ChatOptions` and dispatched on it: a Batch API job (``--batch-api``),
a run over many inputs (``--each``), or a prompt (`cmd.chat`).

In a Jupyter kernel a cell that is only ``%%chat`` (or only ``%chat``) is run as an
awaited coroutine on the kernel's own event loop (`achat`; see `transforms`): the
streams are tasks on that loop, every display update comes from the cell's own thread,
the Stop button's click is handled while the reply streams, and a kernel interrupt
cancels the cell, which closes the HTTP streams. Elsewhere (terminal IPython,
``run_cell_magic`` from code) the blocking path runs the streams on a worker thread's
loop and draws from the caller's thread.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, magics_class, no_var_expand
from IPython.display import display
from traitlets import Bool, Float, Int, TraitError, Unicode, validate

from ..core.context import ErrorLog
from ..core.errors import ChatError, ReplyInterrupted
from ..core.interpolate import MAX_FIELD_CHARS
from ..core.options import CHAT_PARSER, ChatOptions, parse_chat_line
from ..engine.session import Session
from ..store.conversation import Notebook
from .cmd.context import CellContext, Frontend
from .ipy import Arg, arguments, in_kernel, line_cell_magic, line_magic, parse_arguments

if TYPE_CHECKING:
    from ..store.batch_store import BatchStore

__all__ = ["ChatMagics", "CUSTOM_EXCEPTIONS", "in_kernel"]

#: What the extension's error handler shows as one message, without a traceback.
CUSTOM_EXCEPTIONS = (ChatError, ReplyInterrupted)


@magics_class
class ChatMagics(Magics):
    """Talk to OpenAI-compatible models from the notebook."""

    profile = Unicode("", help="The current profile (default: CHATMAGIC_PROFILE, "
                               "chatmagic.toml's default_profile, else openai).").tag(config=True)
    model = Unicode("", help="Default model id for the current profile.").tag(config=True)
    throttle = Float(0.08, help="Seconds between screen updates while a reply streams.").tag(
        config=True)
    widgets = Unicode("auto", help="auto: widgets when a notebook frontend is attached; "
                                   "on; off (static HTML only).").tag(config=True)
    persist = Bool(True, help="Keep each notebook's conversations on disk across kernel "
                              "restarts.").tag(config=True)
    notebook = Unicode("", help="Name this notebook for history when the kernel cannot tell "
                                "(nbclient, papermill, terminal).").tag(config=True)
    debug = Bool(False, help="Show tracebacks of failures.").tag(config=True)
    max_compare = Int(8, help="Most models one --compare may name.").tag(config=True)
    timeout = Float(0.0, help="Default per-request timeout in seconds (0: the SDK's).").tag(
        config=True)
    remote_images = Bool(False, help="Show images a reply links from the web (off: shown as "
                                     "links, so a reply cannot make the browser fetch a URL "
                                     "that carries notebook data).").tag(config=True)
    max_field_chars = Int(MAX_FIELD_CHARS, help="Longest {field} put in a prompt (characters; "
                                                "longer ones are cut, saying so; 0: no limit)."
                          ).tag(config=True)
    max_cost = Float(0.0, help="Refuse a cell whose requests are estimated to cost more than "
                               "this, in the currency of their prices (0: no limit; see "
                               "the money guide: `chatmagic docs money`).").tag(config=True)

    @validate("max_cost")
    def _check_max_cost(self, proposal: Any) -> float:
        if proposal["value"] < 0:
            raise TraitError("max_cost must be 0 (no limit) or more")
        return float(proposal["value"])

    @validate("throttle")
    def _check_throttle(self, proposal: Any) -> float:
        if not 0.01 <= proposal["value"] <= 5:
            raise TraitError("throttle must be between 0.01 and 5 seconds")
        return float(proposal["value"])

    @validate("widgets")
    def _check_widgets(self, proposal: Any) -> str:
        if proposal["value"] not in ("auto", "on", "off"):
            raise TraitError("widgets must be auto, on or off")
        return str(proposal["value"])

    @validate("max_field_chars")
    def _check_max_field_chars(self, proposal: Any) -> int:
        if proposal["value"] < 0:
            raise TraitError("max_field_chars must be 0 (no limit) or more")
        return int(proposal["value"])

    @validate("max_compare")
    def _check_max_compare(self, proposal: Any) -> int:
        if proposal["value"] < 2:
            raise TraitError("max_compare must be at least 2")
        return int(proposal["value"])

    def __init__(self, shell: Any, session: Session | None = None) -> None:
        super().__init__(shell)
        if shell is not None and shell.config:
            self.update_config(shell.config)  # %config ChatMagics.* set before loading
        self.session = session or Session()
        self.session.notebook = self._open_notebook()
        self.models_cache: dict[str, list[dict[str, Any]]] = {}
        #: Profiles whose key was typed in with `%chat_config key` (where %chat_config says
        #: their key comes from).
        self.typed_keys: set[str] = set()
        #: The errors cells raised, for {Err}; fed by the post_run_cell hook of %load_ext.
        self.errors = ErrorLog(ignore=CUSTOM_EXCEPTIONS)
        #: The completion matcher %load_ext installed (removed again by %unload_ext).
        self.completion_matcher: Any = None
        self.observe(self._on_change)
        self._apply_settings()

    # -- settings ----------------------------------------------------------------
    def _on_change(self, change: Any) -> None:
        if change["name"] in ("notebook", "persist"):
            self.session.notebook = self._open_notebook()
        self._apply_settings(model=change["name"] == "model")

    def _apply_settings(self, model: bool = True) -> None:
        session = self.session
        if self.profile:
            session.profiles.get(self.profile)
            session.profiles.default = self.profile
        if self.model and model:
            # The model is the default of the profile current when it is set: `use`-ing
            # another profile afterwards keeps that profile's own default.
            session.profiles.update(session.profiles.default, model=self.model)
        session.max_compare = self.max_compare
        session.max_cost = self.max_cost

    @property
    def namespace(self) -> dict[str, Any]:
        """The user's namespace (empty without a shell)."""
        return self.shell.user_ns if self.shell is not None else {}

    def notebook_name(self) -> str | None:
        """Which notebook this kernel serves, if it can tell."""
        ns = self.namespace
        return (self.notebook or ns.get("__vsc_ipynb_file__") or ns.get("__session__")
                or os.environ.get("JPY_SESSION_NAME") or None)

    def _open_notebook(self) -> Notebook:
        name = self.notebook_name()
        directory = os.environ.get("CHATMAGIC_HISTORY_DIR")
        if not self.persist or not name:
            return Notebook()
        try:
            book = Notebook(name, Path(directory) if directory else None)
        except OSError as exc:
            print(f"chatmagic: history not restored ({exc}); keeping it in memory")
            return Notebook()
        if book.unreadable:
            print(f"chatmagic: {book.unreadable} line(s) of the history journal {book.path} "
                  "could not be read (damaged, or written by a newer chatmagic) and were "
                  "skipped; the rest is loaded")
        return book

    def frontend(self) -> Frontend:
        """widgets, static (a kernel with no known frontend: nbclient) or text (terminal)."""
        if not in_kernel(self.shell):
            return "text"
        if self.widgets == "on":
            return "widgets"
        if self.widgets == "off":
            return "static"
        ns = self.namespace
        attached = (ns.get("__session__") or ns.get("__vsc_ipynb_file__")
                    or os.environ.get("JPY_SESSION_NAME"))
        return "widgets" if attached else "static"

    def cell_context(self, awaited: bool = False) -> CellContext:
        """What a cell starting now needs of the shell and the settings."""
        kernel = getattr(self.shell, "kernel", None)
        return CellContext(frontend=self.frontend(), awaited=awaited,
                           stdin=bool(getattr(kernel, "_allow_stdin", False)),
                           throttle=self.throttle, remote_images=self.remote_images,
                           max_field_chars=self.max_field_chars, timeout=self.timeout,
                           errors=self.errors, models_cache=self.models_cache,
                           next_input=self._next_input)

    def _next_input(self, code: str) -> None:
        if self.shell is not None:
            self.shell.set_next_input(code, replace=False)

    # -- %%chat ------------------------------------------------------------------
    @no_var_expand
    @line_cell_magic
    def chat(self, line: str, cell: str | None = None) -> None:
        options, context = self._chat_options(line, cell), self.cell_context()
        if options.batch_api:  # --each ... --batch-api: one Batch API job
            return self._submit_batch(options, cell)
        session, ns = self.session, self.namespace
        if options.each:  # one prompt over many inputs (imported only then)
            from .cmd import each

            with _refused(cell):
                run = each.prepare(options, session, ns, context)
            return each.run_blocking(run, options, session, ns)
        from .cmd import chat as chat_cell  # on first use: %load_ext stays light

        with _refused(cell):
            rounds = chat_cell.prepare(options, session, ns, context)
        chat_cell.run_blocking(rounds, session, ns, context)

    chat.__doc__ = CHAT_PARSER.format_help()

    async def achat(self, line: str, cell: str | None = None) -> None:
        """`chat` as a coroutine on the kernel's loop (what a ``%%chat`` cell awaits)."""
        options, context = self._chat_options(line, cell), self.cell_context(awaited=True)
        if options.batch_api:
            return self._submit_batch(options, cell)
        session, ns = self.session, self.namespace
        if options.each:
            from .cmd import each

            with _refused(cell):
                run = each.prepare(options, session, ns, context)
            return await each.run_awaited(run, options, session, ns)
        from .cmd import chat as chat_cell

        with _refused(cell):
            rounds = chat_cell.prepare(options, session, ns, context)
        await chat_cell.run_awaited(rounds, session, ns, context)

    def _chat_options(self, line: str, cell: str | None) -> ChatOptions:
        """The ``%%chat`` line (and body) parsed, once; a bad one is a UsageError."""
        with _refused(cell):
            return parse_chat_line(line, cell)

    # -- the Batch API: %%chat --each VAR --batch-api, %chat_batch -------------------------
    def _batch_store(self) -> BatchStore:
        from .cmd.batch import store_for

        return store_for(self.session, self.notebook_name(), self.persist,
                         os.environ.get("CHATMAGIC_HISTORY_DIR"))

    def _submit_batch(self, options: ChatOptions, cell: str | None) -> None:
        """Send the cell's --each rows as one Batch API job."""
        from .cmd import batch

        with _refused(cell):
            _show(batch.submit(self.session, self._batch_store(), options, self.namespace,
                               errors=self.errors, max_field_chars=self.max_field_chars))

    @arguments(Arg("action", nargs="?", default="list", help="list | status | fetch | cancel"),
               Arg("id", nargs="?", help="the job (default: this notebook's latest)"),
               Arg("-o", "--out", help="fetch: store the table in this variable (list: the "
                                       "rows)"))
    @line_magic
    def chat_batch(self, line: str) -> None:
        """Follow the Batch API jobs of this notebook (sent with %%chat --each VAR --batch-api):
        list them, a job's status, fetch its table (the same as --each gives), cancel it."""
        args = parse_arguments(self.chat_batch, line)
        from .cmd import batch

        with _refused():
            _show(batch.run(args, self.session, self._batch_store(), self.namespace))

    # -- %models -----------------------------------------------------------------
    @arguments(Arg("pattern", nargs="?", help="substring or glob that ids must match"),
               Arg("-p", "--profile", help="the profile to list (default: the current one)"),
               Arg("--all", action="store_true", help="every profile that has a key, and the "
                   "local servers configured (current, changed or keyed)"),
               Arg("--refresh", action="store_true", help="ask again instead of using the "
                                                          "cache"),
               Arg("-o", "--out", help="store the rows (list of dicts) in this variable"))
    @line_magic
    def models(self, line: str) -> None:
        """List the models an endpoint serves: GET {base_url}/models."""
        from .cmd import models

        args = parse_arguments(self.models, line)
        _show(models.run(args, self.session, self.namespace, self.models_cache))

    # -- %chat_history -------------------------------------------------------------
    @arguments(Arg("action", nargs="?", default="show", help="show | export | save PATH | "
                   "load PATH | undo | retry | clear | list | keep N"),
               Arg("target", nargs="?", help="PATH for save/load (or a variable for load); N "
                                             "or a model id for keep"),
               Arg("-c", "--conversation", default="default", help="conversation name"),
               Arg("--format", choices=["json", "jsonl", "markdown"], default="json",
                   help="export/save format"),
               Arg("-o", "--out", help="store the messages list in this variable"))
    @line_magic
    def chat_history(self, line: str) -> None:
        """The conversation as data: an OpenAI messages list, and what to do with it."""
        from .cmd import chat as chat_cell
        from .cmd import history as history_view

        args = parse_arguments(self.chat_history, line)
        with _refused():
            if args.action == "retry":  # sends the prompt again: a cell of its own
                chat_cell.retry(args.conversation, self.session, self.namespace,
                                self.cell_context())
            else:
                _show(history_view.run(args, self.session, self.namespace))

    # -- %chat_usage ---------------------------------------------------------------
    @arguments(Arg("--by", choices=["model", "profile", "conversation"],
                   help="group the totals"),
               Arg("--reset", action="store_true", help="forget the usage so far"),
               Arg("--remote", action="store_true", help="the account as the endpoint reports "
                                                         "it: balance, used, limit"),
               Arg("-p", "--profile", help="with --remote: the profile to ask (default: "
                                           "current)"),
               Arg("-o", "--out", help="store the rows (list of dicts) in this variable"))
    @line_magic
    def chat_usage(self, line: str) -> None:
        """Requests, tokens and cost so far, from the usage the endpoints reported; with
        --remote, the account's balance, use and limit as the endpoint reports them."""
        from .cmd import usage

        args = parse_arguments(self.chat_usage, line)
        with _refused():
            _show(usage.run(args, self.session, self.namespace))

    # -- %chat_config ----------------------------------------------------------------
    @line_magic
    def chat_config(self, line: str) -> None:
        """%chat_config [show | set KEY=VALUE ... | use PROFILE | profiles | key PROFILE |
        trust [PATH] | untrust [PATH]]

        show      the current profile, model, endpoint, masked key and settings
        set       change settings: profile, model, throttle, widgets (auto|on|off), persist,
                  notebook, debug, max_compare, timeout, remote_images (on: show images
                  replies link from the web; off by default: they are links),
                  max_field_chars (longest {field} in a prompt; 0: no limit), max_cost
                  (refuse a cell estimated to cost more; 0: no limit)
        use       make PROFILE the current profile
        profiles  every profile: endpoint, where its key comes from, default model
        key       type PROFILE's key without echo; kept for this session only
        trust     let ./chatmagic.toml (or PATH), as it is now, send keys where it says
        untrust   forget that decision
        """
        from .cmd import config as config_view

        try:
            _show(config_view.run(line, self.session, self))
        except (ChatError, TraitError) as exc:
            raise UsageError(str(exc)) from None


def _show(outcome: str | dict[str, str] | None) -> None:
    """Show what a subcommand gave back: a message printed, a bundle displayed."""
    if isinstance(outcome, str):
        print(outcome)
    elif outcome is not None:
        display(outcome, raw=True)


@contextmanager
def _refused(cell: str | None = "") -> Iterator[None]:
    """A ChatError raised inside becomes the UsageError IPython shows (one message, no
    traceback). For %%chat/%chat (``cell``: the body, None for the line form) it names the
    magic as typed, and an unknown option gets a "Did you mean"."""
    try:
        yield
    except ChatError as exc:
        message = str(exc)
        if cell is None:  # the options parser words its messages for %%chat
            message = re.sub(r"%%chat\b", "%chat", message)
        raise UsageError(_did_you_mean_option(message)) from None


def _did_you_mean_option(message: str) -> str:
    """argparse's "unrecognized arguments" with the nearest option of %%chat added."""
    unknown = re.search(r"unrecognized arguments: (.*?)\.(?= See|$)", message)
    if unknown:
        ours = [s for a in CHAT_PARSER._actions for s in a.option_strings if s.startswith("--")]
        for word in unknown.group(1).split():
            near = difflib.get_close_matches(word.split("=", 1)[0], ours, n=1, cutoff=0.75)
            if word.startswith("--") and near:
                return message.replace(unknown.group(0),
                                       f"{unknown.group(0)} Did you mean {near[0]}?", 1)
    return message
