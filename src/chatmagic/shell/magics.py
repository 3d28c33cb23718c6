"""The IPython magics: each body parses, calls the core, and renders.

In a Jupyter kernel a cell that is only ``%%chat`` (or only ``%chat``) is run
as an awaited coroutine on the kernel's own event loop (see `_await_chat`):
the streams are tasks on that loop, every display update comes from the cell's
own thread, the Stop button's click is handled while the reply streams, and a
kernel interrupt cancels the cell, which closes the HTTP streams. Elsewhere
(terminal IPython, ``run_cell_magic`` from code) the blocking path runs the
streams on a worker thread's loop and draws from the caller's thread.
"""

from __future__ import annotations

import asyncio
import difflib
import io
import os
import re
import sys
import tokenize
from pathlib import Path
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, line_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from traitlets import Bool, Float, Int, TraitError, Unicode, validate

from .cmd import history as history_view
from ..core.context import ErrorLog
from ..store.conversation import Notebook
from ..core.errors import ChatError, HistoryError, ReplyInterrupted
from ..core.interpolate import MAX_FIELD_CHARS, fill
from ..core.options import CHAT_PARSER, ChatOptions, parse_chat_line, wants_each
from .sinks.cell import CellRenderer
from .sinks.columns import ColumnsRenderer
from ..render.pieces import first_code_block
from .sinks.text import TextRenderer
from ..engine.reply import Reply
from ..engine.runner import Run
from ..engine.session import Plan, Session

__all__ = ["ChatMagics", "await_chat_transform", "show_error"]

_AWAITABLE = re.compile(r"^get_ipython\(\)\.run_(cell|line)_magic\('chat', (.*)\)\s*$")
_RUNNER = "__chatmagic_run__"
CUSTOM_EXCEPTIONS = (ChatError, ReplyInterrupted)
_QUESTION = re.compile(r"^(\s*)%chat\s(.*\?)\s*$")
def _rounds(magics: "ChatMagics", plan: Plan, run: Run, awaited: bool) -> Any:
    """The cell's tool rounds (one round without --tools), imported on first use."""
    from .tool_cell import CellRounds

    return CellRounds(magics, plan, run, awaited=awaited)


def _chat_doc() -> str:
    return CHAT_PARSER.format_help()


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
                               "docs/money.md).").tag(config=True)

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

    def notebook_name(self) -> str | None:
        """Which notebook this kernel serves, if it can tell."""
        ns = self.shell.user_ns if self.shell is not None else {}
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

    def frontend(self) -> str:
        """widgets, static (a kernel with no known frontend: nbclient) or text (terminal)."""
        if not in_kernel(self.shell):
            return "text"
        if self.widgets == "on":
            return "widgets"
        if self.widgets == "off":
            return "static"
        ns = self.shell.user_ns
        attached = (ns.get("__session__") or ns.get("__vsc_ipynb_file__")
                    or os.environ.get("JPY_SESSION_NAME"))
        return "widgets" if attached else "static"

    # -- %%chat ------------------------------------------------------------------
    def _prepare(self, line: str, cell: str | None, awaited: bool = False) -> tuple[Plan, Run]:
        options = parse_chat_line(line, cell)
        if options.timeout is None and self.timeout:
            options.timeout = self.timeout
        ns = self.shell.user_ns if self.shell is not None else {}
        if not options.no_interpolate:
            filled = fill(options.prompt, ns, errors=self.errors,
                          max_field_chars=self.max_field_chars)
            options.prompt = filled.text
            for cut in filled.cut:  # before the reply: what the model saw is no surprise
                print(f"note: {cut.field} cut to {cut.shown:,} of {cut.total:,} characters "
                      "(max_field_chars)")
        return self._plan(options, ns, awaited=awaited)

    def _plan(self, options: ChatOptions, ns: dict[str, Any],
              user: dict[str, Any] | None = None, awaited: bool = False) -> tuple[Plan, Run]:
        """The requests and the renderer; a Stop button only when ``awaited`` (the kernel's
        loop then serves its click: a blocking cell handles widget messages only after)."""
        plan = self.session.plan(options, ns, user)
        for warning in self.session.warnings(plan):  # before sending: no surprise after
            print(f"warning: {warning}", file=sys.stderr)
        frontend = self.frontend()
        renderer: Any
        if frontend == "text":
            renderer = TextRenderer(plan.labels, schema=plan.schema)
        elif plan.side_by_side:
            renderer = ColumnsRenderer(plan.labels, widgets=frontend == "widgets",
                                       choices=len(plan.jobs) == 1,
                                       keep_hint=not options.no_history, stoppable=awaited,
                                       remote_images=self.remote_images)
        else:
            renderer = CellRenderer(plan.labels[0], widgets=frontend == "widgets",
                                    plain=options.format == "text", stoppable=awaited,
                                    remote_images=self.remote_images, schema=plan.schema)
        return plan, Run(plan.jobs, self.session.clients, renderer, self.throttle,
                         self.session.knowledge)

    @no_var_expand
    @line_cell_magic
    def chat(self, line: str, cell: str | None = None) -> None:
        if self._batch_cell(line, cell):  # --each ... --batch-api: one Batch API job
            return
        if wants_each(line):  # one prompt over many inputs (imported only then)
            from . import each_cell

            return each_cell.run_blocking(self, line, cell)
        try:
            plan, run = self._prepare(line, cell)
        except ChatError as exc:
            raise _usage(exc, cell) from None
        rounds = _rounds(self, plan, run, awaited=False)  # with --tools, several runs
        try:
            rounds.run_blocking()
        except (KeyboardInterrupt, asyncio.CancelledError):
            self._finish(plan, rounds.run, interrupted=True)
            raise _interrupted(plan, rounds.run) from None
        self._finish(plan, rounds.run)
        if rounds.problem is not None:
            raise rounds.problem

    chat.__doc__ = _chat_doc()

    async def achat(self, line: str, cell: str | None = None) -> None:
        """`chat` as a coroutine on the kernel's loop (what a ``%%chat`` cell awaits)."""
        if self._batch_cell(line, cell):
            return
        if wants_each(line):
            from . import each_cell

            return await each_cell.run_awaited(self, line, cell)
        try:
            plan, run = self._prepare(line, cell, awaited=True)
        except ChatError as exc:
            raise _usage(exc, cell) from None
        rounds = _rounds(self, plan, run, awaited=True)  # with --tools, several runs
        try:
            await rounds.arun()
        except (asyncio.CancelledError, KeyboardInterrupt):
            # The kernel's interrupt cancels an awaited cell (or, while a tool runs on this
            # thread, raises in it): keep what came, end as interrupted.
            self._finish(plan, rounds.run, interrupted=True)
            raise _interrupted(plan, rounds.run) from None
        self._finish(plan, rounds.run)
        if rounds.problem is not None:
            raise rounds.problem

    def _finish(self, plan: Plan, run: Run, interrupted: bool = False) -> None:
        replies = run.replies
        self.session.record(plan, replies)
        options = plan.options
        if options.out:
            self.shell.user_ns[options.out] = self._out_value(plan, run)
        if interrupted:
            return
        if options.format == "code" and not plan.side_by_side and replies[0].text():
            code = first_code_block(replies[0].text())
            if code is not None:
                self.shell.set_next_input(code, replace=False)
        failed = [(label, r) for label, r in zip(plan.labels, replies) if r.error]
        if failed and len(failed) == len(replies):
            label, reply = failed[0]
            kept = " The text that arrived is kept, marked incomplete." if reply.text() else ""
            failure = RequestFailed(f"{label}: {reply.error}{kept}{self._did_you_mean(reply)}")
            failure.debug = options.debug
            raise failure

    def _did_you_mean(self, reply: Reply) -> str:
        """For a model the endpoint does not know (HTTP 404), the nearest ids it lists."""
        failure = reply.failure
        if failure is None or failure.status != 404 or not reply.model:
            return ""
        from .cmd.models import nearest_models

        try:
            profile = self.session.profiles.get(reply.profile)
        except ChatError:
            return ""
        near = nearest_models(self.session, profile, reply.model, self.models_cache)
        return f" Did you mean {' or '.join(near)}?" if near else ""

    def _out_value(self, plan: Plan, run: Run) -> Any:
        if plan.tools and run.replies[0].tool_calls():  # --tools: no answer (refused, the
            return None  # round limit, stopped in a call), as a --schema misfit gives None
        if plan.schema is not None:  # --schema: the object (None where the reply did not fit)
            if len(run.replies) > 1:
                return {label: r.parsed for label, r in zip(plan.labels, run.replies)}
            return run.replies[0].parsed
        if (plan.options.n or 1) > 1:
            return [run.replies[0].text(i) for i in range(len(run.replies[0].choices))]
        if len(run.replies) > 1:
            return {label: r.text() for label, r in zip(plan.labels, run.replies)}
        return run.replies[0].text()

    # -- the Batch API: %%chat --each VAR --batch-api, %chat_batch -------------------------
    def _batch_store(self) -> Any:
        from .cmd.batch import store_for

        return store_for(self.session, self.notebook_name(), self.persist,
                         os.environ.get("CHATMAGIC_HISTORY_DIR"))

    def _batch_cell(self, line: str, cell: str | None) -> bool:
        """Send the cell's --each rows as a Batch API job when it asks for one (--batch-api);
        False when it does not (the cell then runs as usual)."""
        if "--batch-api" not in line:
            return False
        try:
            options = parse_chat_line(line, cell)
            if not options.batch_api:
                return False
            from .cmd import batch as batch_view

            _show(batch_view.submit(self.session, self._batch_store(), options,
                                    self.shell.user_ns, errors=self.errors,
                                    max_field_chars=self.max_field_chars))
        except ChatError as exc:
            raise _usage(exc, cell) from None
        return True

    @magic_arguments()
    @argument("action", nargs="?", default="list", help="list | status | fetch | cancel")
    @argument("id", nargs="?", help="the job (default: this notebook's latest)")
    @argument("-o", "--out", help="fetch: store the table in this variable (list: the rows)")
    @line_magic
    def chat_batch(self, line: str) -> None:
        """Follow the Batch API jobs of this notebook (sent with %%chat --each VAR --batch-api):
        list them, a job's status, fetch its table (the same as --each gives), cancel it."""
        args = _parse(self.chat_batch, line)
        from .cmd import batch as batch_view

        try:
            _show(batch_view.run(args, self.session, self._batch_store(), self.shell.user_ns))
        except ChatError as exc:
            raise UsageError(str(exc)) from None

    # -- %models -----------------------------------------------------------------
    @magic_arguments()
    @argument("pattern", nargs="?", help="substring or glob that ids must match")
    @argument("-p", "--profile", help="the profile to list (default: the current one)")
    @argument("--all", action="store_true", help="every profile that has a key, and the local "
                                                 "servers configured (current, changed or keyed)")
    @argument("--refresh", action="store_true", help="ask again instead of using the cache")
    @argument("-o", "--out", help="store the rows (list of dicts) in this variable")
    @line_magic
    def models(self, line: str) -> None:
        """List the models an endpoint serves: GET {base_url}/models."""
        args = _parse(self.models, line)
        from .cmd.models import list_models, models_table

        profiles = ([p for p in self.session.profiles] if args.all
                    else [self.session.profiles.get(args.profile)])
        rows, notes = list_models(self.session, profiles, self.models_cache, args.refresh,
                                  args.pattern, skip_keyless=args.all)
        if args.out:
            self.shell.user_ns[args.out] = rows
        from IPython.display import display

        display(models_table(rows, notes), raw=True)

    # -- %chat_history -------------------------------------------------------------
    @magic_arguments()
    @argument("action", nargs="?", default="show",
              help="show | export | save PATH | load PATH | undo | retry | clear | list | keep N")
    @argument("target", nargs="?", help="PATH for save/load (or a variable for load); N or a "
                                        "model id for keep")
    @argument("-c", "--conversation", default="default", help="conversation name")
    @argument("--format", choices=["json", "jsonl", "markdown"], default="json",
              help="export/save format")
    @argument("-o", "--out", help="store the messages list in this variable")
    @line_magic
    def chat_history(self, line: str) -> Any:
        """The conversation as data: an OpenAI messages list, and what to do with it."""
        args = _parse(self.chat_history, line)
        try:
            if args.action == "retry":
                self.retry(args.conversation)
            else:
                _show(history_view.run(args, self.session, self.shell.user_ns))
        except ChatError as exc:
            raise UsageError(str(exc)) from None
        return None

    def retry(self, name: str) -> None:
        """Resend the last prompt of a conversation, replacing its reply."""
        conv = self.session.notebook.get(name, create=False)
        if not conv.turns:
            raise HistoryError(f"conversation '{name}' has no prompt to retry")
        last = conv.turns[-1]
        meta = last.meta
        # Sent again as the cell sent it: its --max-tokens, -t, --param... (a journal written
        # before turns kept them has none; an option refused now is one message).
        sent_with = meta.get("options") if isinstance(meta.get("options"), dict) else {}
        options = ChatOptions(conversation=name, profile=meta.get("profile"),
                              model=meta.get("model"), **sent_with)
        self.session.notebook.undo(name)
        try:
            plan, run = self._plan(options, self.shell.user_ns, user=last.user)
        except ChatError:
            self.session.notebook.add_turn(name, last)  # nothing was sent: put it back
            raise
        rounds = _rounds(self, plan, run, awaited=False)  # with --tools, several runs
        try:
            rounds.run_blocking()
        except KeyboardInterrupt:
            self._finish(plan, rounds.run, interrupted=True)
            raise
        self._finish(plan, rounds.run)
        if rounds.problem is not None:
            raise rounds.problem

    # -- %chat_usage ---------------------------------------------------------------
    @magic_arguments()
    @argument("--by", choices=["model", "profile", "conversation"], help="group the totals")
    @argument("--reset", action="store_true", help="forget the usage so far")
    @argument("--remote", action="store_true", help="the account as the endpoint reports it: "
                                                   "balance, used, limit")
    @argument("-p", "--profile", help="with --remote: the profile to ask (default: current)")
    @argument("-o", "--out", help="store the rows (list of dicts) in this variable")
    @line_magic
    def chat_usage(self, line: str) -> None:
        """Requests, tokens and cost so far, from the usage the endpoints reported; with
        --remote, the account's balance, use and limit as the endpoint reports them."""
        args = _parse(self.chat_usage, line)
        if args.remote:
            return self._remote_usage(args)
        if args.profile:
            raise UsageError("-p goes with --remote (%chat_usage --remote -p PROFILE); "
                             "for this session's totals per profile: %chat_usage --by profile")
        ledger = self.session.usage
        rows = ledger.totals(args.by)
        if args.out:
            self.shell.user_ns[args.out] = rows
        if args.reset:
            ledger.rows.clear()
        from .cmd.models import usage_table
        from IPython.display import display

        display(usage_table(rows, args.by), raw=True)

    def _remote_usage(self, args: Any) -> None:
        """``%chat_usage --remote``: ask the endpoint (see `chatmagic.money.account`)."""
        from IPython.display import display

        from ..money.account import remote_account
        from .cmd.models import account_table

        try:
            profile = self.session.profiles.get(args.profile)
            account = remote_account(profile, self.session.clients)
        except ChatError as exc:
            raise UsageError(str(exc)) from None
        if args.out:
            self.shell.user_ns[args.out] = account.to_dict()
        display(account_table(account), raw=True)

    # -- %chat_config ----------------------------------------------------------------
    @line_magic
    def chat_config(self, line: str) -> None:
        """%chat_config [show | set KEY=VALUE ... | use PROFILE | profiles | key PROFILE |
        trust [PATH] | untrust [PATH]]

        show      the current profile, model, endpoint, masked key and settings
        set       change settings: profile, model, throttle, widgets (auto|on|off), persist,
                  notebook, debug, max_compare, timeout, remote_images (on: show images
                  replies link from the web; off by default: they are links),
                  max_field_chars (longest {field} in a prompt; 0: no limit)
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
        from IPython.display import display

        display(outcome, raw=True)


def _usage(exc: ChatError, cell: str | None) -> UsageError:
    """A refused cell as IPython shows it: naming the magic as typed, with a did-you-mean."""
    message = str(exc)
    if cell is None:  # the options parser words its messages for %%chat
        message = re.sub(r"%%chat\b", "%chat", message)
    unknown = re.search(r"unrecognized arguments: (.*?)\.(?= See|$)", message)
    if unknown:
        ours = [s for a in CHAT_PARSER._actions for s in a.option_strings if s.startswith("--")]
        for word in unknown.group(1).split():
            near = difflib.get_close_matches(word.split("=", 1)[0], ours, n=1, cutoff=0.75)
            if word.startswith("--") and near:
                message = message.replace(unknown.group(0),
                                          f"{unknown.group(0)} Did you mean {near[0]}?", 1)
                break
    return UsageError(message)


def _interrupted(plan: Plan, run: Run) -> ReplyInterrupted:
    """The one line an interrupted reply ends with: where the text that arrived is kept, or
    that none had."""
    interrupted = ReplyInterrupted()
    if not any(r.text(i) or r.reasoning(i) for r in run.replies for i in range(len(r.choices))):
        whole = (" (--no-stream: a reply comes whole, at its end)" if plan.options.no_stream
                 else "")
        interrupted.args = (f"the kernel interrupt stopped the request before any reply "
                            f"arrived{whole}; nothing was recorded",)
    elif plan.options.no_history:
        interrupted.args = ("the kernel interrupt stopped the reply; the text that arrived is "
                            "kept in the cell, marked incomplete (--no-history: not recorded)",)
    return interrupted


class RequestFailed(ChatError):
    """A cell whose every request failed (shown as one message)."""

    debug = False  # set by --debug: show the traceback too


def _parse(magic: Any, line: str) -> Any:
    try:
        return parse_argstring(magic, line)
    except UsageError:
        raise
    except SystemExit:  # argparse inside magic_arguments exits on -h
        raise UsageError(magic.__doc__ or "") from None


def question_transform(lines: list[str]) -> list[str]:
    """Keep a ``%chat`` line that ends in ``?`` a chat, not a help request.

    IPython reads ``%chat why is the sky blue?`` as ``pinfo blue``. Questions end in
    ``?``, so such a line becomes the magic call IPython would have made without it.
    """
    if next((ln for ln in lines if ln.strip()), "").lstrip().startswith("%%"):
        return lines  # a cell magic's body is its text, not code
    if not any(_QUESTION.match(line) for line in lines):
        return lines  # most cells: no tokenizing at all
    out = list(lines)
    for i, (line, code) in enumerate(zip(lines, _continues_code(lines))):
        match = _QUESTION.match(line)
        if match and not code:
            out[i] = (f"{match.group(1)}get_ipython().run_line_magic('chat', "
                      f"{match.group(2).strip()!r})\n")
    return out


def _continues_code(lines: list[str]) -> list[bool]:
    """For each line, whether it goes on with Python begun above it (inside a multi-line
    string or an open bracket), and so is code or data, not a magic.

    Magic and shell lines are left out of what is tokenized: ``%chat what's this?``
    is no Python, and Python 3.12's tokenizer stops at its apostrophe.
    """
    continues = []
    pending = ""  # the Python statement read so far, if it is still open
    for line in lines:
        continues.append(bool(pending))
        if not pending and line.lstrip().startswith(("%", "!")):
            continue
        pending = pending + line if _open_at_end(pending + line) else ""
    return continues


def _open_at_end(code: str) -> bool:
    """Whether ``code`` ends inside a multi-line string or an open bracket."""
    try:
        for _ in tokenize.generate_tokens(io.StringIO(code).readline):
            pass
    except tokenize.TokenError as exc:  # 3.11: "EOF in multi-line string/statement"
        return "multi-line" in str(exc.args[0])  # 3.12+: "unexpected EOF in multi-line ..."
    except SyntaxError:  # 3.12+ raises some (bad indentation) as they are
        return False
    return False


def in_kernel(shell: Any) -> bool:
    """Whether the shell is a Jupyter kernel's: ipykernel's ZMQInteractiveShell or a subclass
    (Colab's and Spyder's are). Terminal IPython never imports ipykernel, so neither do we."""
    zmqshell = sys.modules.get("ipykernel.zmqshell")
    return zmqshell is not None and isinstance(shell, zmqshell.ZMQInteractiveShell)


def await_chat_transform(lines: list[str]) -> list[str]:
    """Run a cell that is only ``%%chat``/``%chat`` as an awaited coroutine.

    IPython turns such a cell into one ``get_ipython().run_cell_magic('chat', ...)``
    line; awaiting our coroutine instead lets the kernel's loop keep serving
    widget clicks (the Stop button) and cancel the cell on interrupt. With
    ``%autoawait False`` a top-level ``await`` is a SyntaxError: the cell then runs
    the blocking way, as written.
    """
    from IPython import get_ipython

    shell = get_ipython()
    if shell is None or not getattr(shell, "autoawait", False):
        return lines
    code = [ln for ln in lines if ln.strip()]
    if len(code) != 1:
        return lines
    match = _AWAITABLE.match(code[0])
    if not match:
        return lines
    return [f"await {_RUNNER}('{match.group(1)}', {match.group(2)})\n"]


def _runner(magics: ChatMagics) -> Any:
    async def run(kind: str, line: str, cell: str | None = None) -> None:
        __tracebackhide__ = True
        await magics.achat(line, cell if kind == "cell" else None)
    return run


def show_error(magics: ChatMagics) -> Any:
    """IPython custom-exception handler: a ChatError or a ReplyInterrupted is one message,
    no traceback (`CUSTOM_EXCEPTIONS` are the types it is installed for)."""
    def handler(shell: Any, etype: type, value: BaseException, tb: Any,
                tb_offset: int | None = None) -> Any:
        if magics.debug or getattr(value, "debug", False):
            shell.showtraceback((etype, value, tb), tb_offset=tb_offset)
            return None
        plain = str(getattr(shell, "colors", "")).lower() == "nocolor"  # --colors=nocolor
        stb = [f"{etype.__name__}: {value}" if plain
               else f"\x1b[0;31m{etype.__name__}\x1b[0m: {value}"]
        # _showtraceback is what ipykernel overrides to publish an "error" output.
        shell._showtraceback(etype, value, stb)
        return stb
    return handler

