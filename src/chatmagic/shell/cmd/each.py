"""``%%chat --each VAR``: the cell's side of a run over many inputs (the core is `each`).

`prepare` reads the collection from the namespace, plans the rows (bad input is
one message, nothing sent) and says the estimate; `run_blocking` and
`run_awaited` run them with the notebook's store of finished rows and a progress
view, put the table in ``-o VAR``, and end the cell as an error only when every
row failed (as interrupted after a kernel interrupt).
"""

from __future__ import annotations

import asyncio
from typing import Any

from ...core.errors import EachFailed, EachInterrupted, OptionError
from ...core.options import ChatOptions
from ...each.plan import estimate_run, plan_each
from ...each.run import EachRun
from ...engine.session import Session
from ...store.rowstore import store_for
from ..sinks.progress import ProgressView
from .context import CellContext

__all__ = ["prepare", "run_blocking", "run_awaited"]


def prepare(options: ChatOptions, session: Session, namespace: dict[str, Any],
            cell: CellContext) -> EachRun:
    """The planned run; raises a ChatError, with nothing sent, when the cell is refused."""
    if options.timeout is None and cell.timeout:
        options.timeout = cell.timeout
    name = options.each or ""
    if name not in namespace:
        near = [n for n in namespace if n.lower() == name.lower() and not n.startswith("_")]
        hint = f" Did you mean {near[0]}?" if near else ""
        raise OptionError(f"--each {name}: no variable named {name} in the notebook; "
                          f"nothing was sent.{hint}")
    session.register_keys()
    plan = plan_each(options, namespace[name], session.profiles, namespace,
                     environ=session.clients.environ, errors=cell.errors,
                     max_field_chars=cell.max_field_chars,
                     interpolate=not options.no_interpolate)
    store = store_for(session.notebook)
    # The budget guard: refused above max_cost; else the estimate said before sending.
    estimate = estimate_run(plan, store, session.max_cost)
    if estimate.known:
        print(f"estimate: {estimate.text()}")
    view = ProgressView(cell.frontend, stoppable=cell.awaited)
    return EachRun(plan, session.clients, store, view, knowledge=session.knowledge)


def _record(run: EachRun, options: ChatOptions, session: Session,
            namespace: dict[str, Any]) -> None:
    """The table in -o VAR; each request's tokens in %chat_usage."""
    if options.out:
        namespace[options.out] = run.table()
    run.record_usage(session.usage)


def _end(run: EachRun, options: ChatOptions) -> None:
    if run.all_failed and not run.stopped:
        first = run.finished[0]
        raise EachFailed(f"every row failed; the first ({run.plan.key_name} "
                         f"{first.key!r}, {first.model}): {first.error}",
                         debug=options.debug)


def _interrupted(run: EachRun) -> EachInterrupted:
    return EachInterrupted(len(run.finished), run.progress.total - len(run.finished))


def run_blocking(run: EachRun, options: ChatOptions, session: Session,
                 namespace: dict[str, Any]) -> None:
    """The cell run the blocking way (terminal IPython, run_cell_magic from code)."""
    try:
        run.run()
    except KeyboardInterrupt:
        _record(run, options, session, namespace)
        raise _interrupted(run) from None
    _record(run, options, session, namespace)
    _end(run, options)


async def run_awaited(run: EachRun, options: ChatOptions, session: Session,
                      namespace: dict[str, Any]) -> None:
    """The cell as a coroutine on the kernel's loop: the Stop button works, an interrupt
    cancels it."""
    try:
        await run.arun()
    except asyncio.CancelledError:
        _record(run, options, session, namespace)
        raise _interrupted(run) from None
    _record(run, options, session, namespace)
    _end(run, options)
