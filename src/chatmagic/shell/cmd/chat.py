"""``%%chat``: one prompt to one model (or several side by side), with its tool rounds.

`prepare` fills the prompt's ``{fields}``, plans the requests and picks the renderer
(a refused cell is a ChatError before anything is sent); `run_blocking` and
`run_awaited` run the planned cell; `finish` records the replies, fills ``-o VAR``
and says how the cell ended; `retry` asks a conversation's last prompt again. Each
is a function of (options or planned cell, session, namespace, `CellContext`).
"""

from __future__ import annotations

import asyncio
import sys
from typing import TYPE_CHECKING, Any

from ...core.errors import ChatError, HistoryError, ReplyInterrupted, RequestFailed
from ...core.interpolate import fill
from ...core.options import ChatOptions
from ...engine.reply import Reply
from ...engine.runner import Run, Sink
from ...engine.session import Plan, Session
from ...render.html import shown_text
from ...render.pieces import first_code_block
from ..sinks.cell import CellRenderer
from ..sinks.columns import ColumnsRenderer
from ..sinks.text import TextRenderer
from .context import CellContext

if TYPE_CHECKING:
    from ..tool_cell import CellRounds

__all__ = ["prepare", "run_blocking", "run_awaited", "finish", "retry", "out_value"]


def prepare(options: ChatOptions, session: Session, namespace: dict[str, Any],
            cell: CellContext) -> CellRounds:
    """The cell planned (its rounds: one without ``--tools``); raises a ChatError, with
    nothing sent, when the cell is refused."""
    if options.timeout is None and cell.timeout:
        options.timeout = cell.timeout
    if not options.no_interpolate:
        filled = fill(options.prompt, namespace, errors=cell.errors,
                      max_field_chars=cell.max_field_chars)
        options.prompt = filled.text
        for cut in filled.cut:  # before the reply: what the model saw is no surprise
            print(f"note: {cut.field} cut to {cut.shown:,} of {cut.total:,} characters "
                  "(max_field_chars)")
    return _planned(options, session, namespace, cell)


def _planned(options: ChatOptions, session: Session, namespace: dict[str, Any],
             cell: CellContext, user: dict[str, Any] | None = None) -> CellRounds:
    """The requests and the renderer (``user``: the user message of a retry)."""
    from ..tool_cell import CellRounds  # imported by the first cell, not by %load_ext

    plan = session.plan(options, namespace, user)
    for warning in session.warnings(plan):  # before sending: no surprise after
        print(f"warning: {warning}", file=sys.stderr)
    run = Run(plan.jobs, session.clients, _renderer(plan, cell), cell.throttle,
              session.knowledge)
    return CellRounds(plan, run, session, cell)


def _renderer(plan: Plan, cell: CellContext) -> Sink:
    """Plain text in a terminal; else HTML (with widgets where a frontend is attached): one
    reply, or columns side by side. A Stop button only on the awaited path (the kernel's
    loop then serves its click: a blocking cell handles widget messages only after)."""
    options = plan.options
    if cell.frontend == "text":
        return TextRenderer(plan.labels, schema=plan.schema)
    if plan.side_by_side:
        return ColumnsRenderer(plan.labels, widgets=cell.frontend == "widgets",
                               choices=len(plan.jobs) == 1, keep_hint=not options.no_history,
                               stoppable=cell.awaited, remote_images=cell.remote_images)
    return CellRenderer(plan.labels[0], widgets=cell.frontend == "widgets",
                        plain=options.format == "text", stoppable=cell.awaited,
                        remote_images=cell.remote_images, schema=plan.schema)


def run_blocking(rounds: CellRounds, session: Session, namespace: dict[str, Any],
                 cell: CellContext) -> None:
    """Run the planned cell the blocking way (a terminal, ``run_cell_magic`` from code)."""
    try:
        rounds.run_blocking()
    except (KeyboardInterrupt, asyncio.CancelledError):
        finish(rounds, session, namespace, cell, interrupted=True)
        raise interrupted(rounds.plan, rounds.run) from None
    finish(rounds, session, namespace, cell)


async def run_awaited(rounds: CellRounds, session: Session, namespace: dict[str, Any],
                      cell: CellContext) -> None:
    """Run the planned cell on the kernel's loop (what a ``%%chat`` cell awaits)."""
    try:
        await rounds.arun()
    except (asyncio.CancelledError, KeyboardInterrupt):
        # The kernel's interrupt cancels an awaited cell (or, while a tool runs on this
        # thread, raises in it): keep what came, end as interrupted.
        finish(rounds, session, namespace, cell, interrupted=True)
        raise interrupted(rounds.plan, rounds.run) from None
    finish(rounds, session, namespace, cell)


def finish(rounds: CellRounds, session: Session, namespace: dict[str, Any],
           cell: CellContext, interrupted: bool = False) -> None:
    """Fill ``-o VAR``, record the replies; then (not interrupted) put ``-f code``'s code
    below, and fail the cell when every request failed or the rounds ended unanswered."""
    plan, run = rounds.plan, rounds.run
    replies, options = run.replies, plan.options
    if options.out:  # first: the reply shown is the reply in VAR, whatever recording says
        namespace[options.out] = out_value(plan, run)
    session.record(plan, replies)
    if interrupted:
        return
    if options.format == "code" and not plan.side_by_side and replies[0].text():
        code = first_code_block(replies[0].text())
        if code is not None:
            cell.next_input(code)
    failed = [(label, r) for label, r in zip(plan.labels, replies) if r.error]
    if failed and len(failed) == len(replies):
        label, reply = failed[0]
        kept = " The text that arrived is kept, marked incomplete." if reply.text() else ""
        near = _did_you_mean(reply, session, cell)
        # One line, every id and word in it (the endpoint's, the ids it lists) shown as it is.
        said = shown_text(f"{label}: {reply.error}{kept}{near}", lines=False)
        raise RequestFailed(said, debug=options.debug)
    if rounds.problem is not None:
        raise rounds.problem


def _did_you_mean(reply: Reply, session: Session, cell: CellContext) -> str:
    """For a model the endpoint does not know (HTTP 404), the nearest ids it lists."""
    failure = reply.failure
    if failure is None or failure.status != 404 or not reply.model:
        return ""
    from .models import nearest_models

    try:
        profile = session.profiles.get(reply.profile)
    except ChatError:
        return ""
    near = nearest_models(session, profile, reply.model, cell.models_cache)
    return f" Did you mean {' or '.join(near)}?" if near else ""


def out_value(plan: Plan, run: Run) -> Any:
    """What ``-o VAR`` gets: the text; with --compare a dict label -> text, with -n > 1 a
    list of the choices' texts; with --schema the object (None where the reply did not
    fit); with --tools None when the rounds ended without an answer."""
    if plan.tools and run.replies[0].tool_calls():  # --tools: no answer (refused, the
        return None  # round limit, stopped in a call), as a --schema misfit gives None
    if plan.schema is not None:
        if len(run.replies) > 1:
            return {label: r.parsed for label, r in zip(plan.labels, run.replies)}
        return run.replies[0].parsed
    if (plan.options.n or 1) > 1:
        return [run.replies[0].text(i) for i in range(len(run.replies[0].choices))]
    if len(run.replies) > 1:
        return {label: r.text() for label, r in zip(plan.labels, run.replies)}
    return run.replies[0].text()


def interrupted(plan: Plan, run: Run) -> ReplyInterrupted:
    """The one line an interrupted reply ends with: where the text that arrived is kept, or
    that none had."""
    stopped = ReplyInterrupted()
    if not any(r.text(i) or r.reasoning(i) for r in run.replies for i in range(len(r.choices))):
        whole = (" (--no-stream: a reply comes whole, at its end)" if plan.options.no_stream
                 else "")
        stopped.args = (f"the kernel interrupt stopped the request before any reply "
                        f"arrived{whole}; nothing was recorded",)
    elif plan.options.no_history:
        stopped.args = ("the kernel interrupt stopped the reply; the text that arrived is "
                        "kept in the cell, marked incomplete (--no-history: not recorded)",)
    return stopped


def retry(name: str, session: Session, namespace: dict[str, Any], cell: CellContext) -> None:
    """``%chat_history retry``: send the last prompt of a conversation again, as its cell
    sent it, replacing its reply."""
    conv = session.notebook.get(name, create=False)
    if not conv.turns:
        raise HistoryError(f"conversation '{name}' has no prompt to retry")
    last = conv.turns[-1]
    meta = last.meta
    # Sent again as the cell sent it: its --max-tokens, -t, --param... (a journal written
    # before turns kept them has none; an option refused now is one message).
    kept = meta.get("options")
    sent_with: dict[str, Any] = kept if isinstance(kept, dict) else {}
    options = ChatOptions(conversation=name, profile=meta.get("profile"),
                          model=meta.get("model"), **sent_with)
    session.notebook.undo(name)
    try:
        rounds = _planned(options, session, namespace, cell, user=last.user)
    except ChatError:
        session.notebook.add_turn(name, last)  # nothing was sent: put it back
        raise
    try:
        rounds.run_blocking()
    except KeyboardInterrupt:
        finish(rounds, session, namespace, cell, interrupted=True)
        raise
    finish(rounds, session, namespace, cell)
