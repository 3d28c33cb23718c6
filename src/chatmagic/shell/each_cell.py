"""``%%chat --each VAR``: the cell's side of a run over many inputs (the core is `each`).

It reads the collection from the namespace, plans the rows (bad input is one
message, nothing sent), runs them with the notebook's store of finished rows
and a progress view, puts the table in ``-o VAR``, and ends the cell as an
error only when every row failed (as interrupted after a kernel interrupt).
"""

from __future__ import annotations

import asyncio
from typing import Any

from ..each.run import EachRun, estimate_run, plan_each
from ..core.errors import ChatError, OptionError, ReplyInterrupted
from ..core.options import ChatOptions, parse_chat_line
from .sinks.progress import ProgressView
from ..store.rowstore import store_for

__all__ = ["run_blocking", "run_awaited", "EachInterrupted", "EachFailed"]

class EachInterrupted(ReplyInterrupted):
    """A kernel interrupt that stopped a run: the finished rows are kept."""

    def __init__(self, run: EachRun) -> None:
        super().__init__()
        left = run.progress.total - len(run.finished)
        self.args = (f"the kernel interrupt stopped the run; {len(run.finished):,} finished "
                     f"rows are kept (and stored): run the cell again to send only the "
                     f"{left:,} left",)


class EachFailed(ChatError):
    """A run whose every row failed (shown as one message)."""

    debug = False


def _prepare(magics: Any, line: str, cell: str | None,
             awaited: bool) -> tuple[EachRun, ChatOptions]:
    options = parse_chat_line(line, cell)
    if options.timeout is None and magics.timeout:
        options.timeout = magics.timeout
    ns = magics.shell.user_ns
    name = options.each or ""
    if name not in ns:
        near = [n for n in ns if n.lower() == name.lower() and not n.startswith("_")]
        hint = f" Did you mean {near[0]}?" if near else ""
        raise OptionError(f"--each {name}: no variable named {name} in the notebook; "
                          f"nothing was sent.{hint}")
    session = magics.session
    session.register_keys()
    plan = plan_each(options, ns[name], session.profiles, ns, environ=session.clients.environ,
                     errors=magics.errors, max_field_chars=magics.max_field_chars,
                     interpolate=not options.no_interpolate)
    store = store_for(session.notebook)
    # The budget guard: refused above max_cost; else the estimate said before sending.
    estimate = estimate_run(plan, store, session.max_cost)
    if estimate.known:
        print(f"estimate: {estimate.text()}")
    view = ProgressView(magics.frontend(), stoppable=awaited)
    return EachRun(plan, session.clients, store, view, knowledge=session.knowledge), options


def _record(magics: Any, run: EachRun, options: ChatOptions) -> None:
    """The table in -o VAR; each request's tokens in %chat_usage."""
    if options.out:
        magics.shell.user_ns[options.out] = run.table()
    run.record_usage(magics.session.usage)


def _end(run: EachRun, options: ChatOptions) -> None:
    if run.all_failed and not run.stopped:
        first = run.finished[0]
        failure = EachFailed(f"every row failed; the first ({run.plan.key_name} "
                             f"{first.key!r}, {first.model}): {first.error}")
        failure.debug = options.debug
        raise failure


def _usage_error(exc: ChatError) -> Exception:
    from IPython.core.error import UsageError

    return UsageError(str(exc))


def run_blocking(magics: Any, line: str, cell: str | None) -> None:
    """The cell run the blocking way (terminal IPython, run_cell_magic from code)."""
    try:
        run, options = _prepare(magics, line, cell, awaited=False)
    except ChatError as exc:
        raise _usage_error(exc) from None
    try:
        run.run()
    except KeyboardInterrupt:
        _record(magics, run, options)
        raise EachInterrupted(run) from None
    _record(magics, run, options)
    _end(run, options)


async def run_awaited(magics: Any, line: str, cell: str | None) -> None:
    """The cell as a coroutine on the kernel's loop: the Stop button works, an interrupt
    cancels it."""
    try:
        run, options = _prepare(magics, line, cell, awaited=True)
    except ChatError as exc:
        raise _usage_error(exc) from None
    try:
        await run.arun()
    except asyncio.CancelledError:
        _record(magics, run, options)
        raise EachInterrupted(run) from None
    _record(magics, run, options)
    _end(run, options)
