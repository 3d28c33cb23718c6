"""A ``%%chat --tools`` cell's rounds: show each call, have it allowed, run it, ask again.

The rounds themselves are `tool_rounds.Rounds` (no IPython); this is the
cell's side of them. Who allows a call: ``--yes`` (every call of the cell);
else, in a notebook with widgets on the awaited path (where the kernel's loop
serves clicks) whose frontend takes input (a live one: JupyterLab does,
papermill does not, whatever its environment says), a Run and a Skip button
under each call's block; in a
terminal, or a kernel whose frontend takes input (JupyterLab on the blocking
path, or with widgets off), a prompt; in a headless run (nbclient,
papermill: the frontend takes no input) no call runs and the cell says so
once. An allowed call runs here, on the cell's own thread (the
kernel's main thread), so the user's functions run where they expect.

Stop and interrupt: the Stop button of a round stops it (its half-sent calls
never run); a kernel interrupt while a call runs raises KeyboardInterrupt in
it, while the buttons wait cancels the wait; either way the calls not run are
answered "not run" in the history, which stays a valid messages list.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Callable, Iterator

from .cmd.context import CellContext
from .sinks.cell import CellRenderer
from .sinks.text import TextRenderer
from ..engine.runner import Run, run_blocking
from ..engine.rounds import Rounds, ask, decide
from ..tools.functions import ToolCall, ToolResult, not_run

if TYPE_CHECKING:
    from ..engine.reply import Reply
    from ..engine.session import Plan, Session

__all__ = ["CellRounds"]

_OUTCOME_WORDS = {"ok": "ran", "error": "raised an exception (sent to the model)",
                  "skipped": "skipped", "refused": "not run", "unknown": "not offered",
                  "invalid": "arguments refused", "not-run": "not run"}


class CellRounds:
    """Runs a planned cell: its first round, then as many tool rounds as it takes."""

    def __init__(self, plan: Plan, run: Run, session: Session, cell: CellContext) -> None:
        self.plan = plan
        self.run = run  # the round running or last run: what the cell finishes with
        self.cell = cell
        self.awaited = cell.awaited
        self.rounds = Rounds(plan, session) if plan.tools else None
        self.allow_all = plan.options.yes

    @property
    def problem(self) -> Exception | None:
        """Why the rounds ended without an answer (said once the turn is recorded)."""
        return None if self.rounds is None else self.rounds.problem

    # -- the two ways a cell runs ---------------------------------------------------
    async def arun(self) -> None:
        """On the kernel's loop (the awaited path): clicks on Run and Skip are served."""
        await self.run.arun()
        while (calls := self._calls()):
            results = await self._adecide(calls)
            if results is None or not self._settle(results):
                return
            await self.run.arun()

    def run_blocking(self) -> None:
        """The blocking path: a terminal prompt, --yes, or refusal."""
        run_blocking(self.run)
        while (calls := self._calls()):
            results = self._decide(calls)
            if results is None or not self._settle(results):
                return
            run_blocking(self.run)

    # -- a round's end ---------------------------------------------------------------------
    @property
    def reply(self) -> Reply:
        return self.run.replies[0]

    def _calls(self) -> list[ToolCall]:
        """The calls to decide on now; none when the model answered, the round failed or was
        stopped, or the round limit is reached (then said once)."""
        if self.rounds is None:
            return []
        if self.run.stopped:  # Stop: what arrived of the calls is shown, none runs
            for index in range(len(self.reply.tool_calls())):
                self._blocks().state(index, "not run: stopped")
            return []
        calls = self.rounds.calls(self.reply)
        if calls and self.rounds.at_limit:
            self.rounds.stop_at_limit(self.reply, calls)
            for index in range(len(calls)):
                self._blocks().state(index, "not run: --max-rounds reached")
            return []
        return calls

    def _settle(self, results: list[ToolResult]) -> bool:
        """Add this round's calls and results to the exchange; start the next round's run.
        False when the cell ends here (stopped)."""
        assert self.rounds is not None
        self.rounds.settle(self.reply, results)
        if self.run.stopped:
            return False
        self.run = self.rounds.next_run(self.run, self._renderer(self.rounds.next_label))
        return True

    def _renderer(self, label: str) -> Any:
        cell, options = self.cell, self.plan.options
        if cell.frontend == "text":
            return TextRenderer([label])
        return CellRenderer(label, widgets=cell.frontend == "widgets",
                            plain=options.format == "text", stoppable=self.awaited,
                            remote_images=cell.remote_images, schema=self.plan.schema)

    def _blocks(self) -> Any:
        return self.run.sink.calls  # type: ignore[attr-defined]

    # -- deciding and running ------------------------------------------------------------
    def _nobody_to_ask(self) -> str | None:
        """Why no one can be asked here, or None. A kernel asks on stdin when its frontend
        takes input (JupyterLab does; nbclient and papermill say they do not)."""
        if self.cell.frontend == "text":
            return None
        if not self.cell.stdin:
            return "this run is headless (no one to ask: the frontend takes no input)"
        return None

    async def _adecide(self, calls: list[ToolCall]) -> list[ToolResult] | None:
        # Buttons only where someone can click them: widgets, the kernel's loop serving
        # clicks (awaited), and a live frontend, one that takes input. A papermill kernel
        # started from inside Jupyter inherits JPY_SESSION_NAME (so "widgets") but takes no
        # input: there it is the stdin rule (refused, said once), not a wait for ever.
        if self.allow_all or not (self.awaited and self.cell.frontend == "widgets"
                                  and self._nobody_to_ask() is None):
            return self._decide(calls)
        assert self.rounds is not None
        blocks = self._blocks()
        asked = [i for i, call in enumerate(calls) if self.rounds.refusal(call) is None]
        try:
            answers = await asyncio.gather(*(self._ask(blocks, i) for i in asked))
        except asyncio.CancelledError:
            for index in range(len(calls)):
                blocks.state(index, "not run: interrupted")
            self._unrun(calls, [], "the kernel was interrupted before it was allowed")
            raise
        allowed = dict(zip(asked, answers))
        return self._execute(calls, lambda index, call: allowed.get(index, False))

    def _decide(self, calls: list[ToolCall]) -> list[ToolResult] | None:
        assert self.rounds is not None
        if self.allow_all:
            return self._execute(calls, lambda index, call: True)
        why = self._nobody_to_ask()
        if why is None:
            return self._execute(calls, lambda index, call: self._prompt(call))
        self.rounds.refuse_all(self.reply, calls, why)
        for index in range(len(calls)):
            self._blocks().state(index, "not run: no one could allow it (--yes allows)")
        return None

    def _prompt(self, call: ToolCall) -> bool:
        """Ask on stdin (a terminal, or a notebook kernel on the blocking path)."""
        choice = ask(call, "[y]es / [n]o / [a]ll of this cell")
        if choice in ("a", "all"):
            self.allow_all = True
        return choice in ("y", "yes", "a", "all")

    def _execute(self, calls: list[ToolCall],
                 allow: Callable[[int, ToolCall], bool]) -> list[ToolResult]:
        """`tool_rounds.decide`, each call run here (interruptible) if allowed
        (``allow(index, call)``, or "all" answered); its block shows what became of it."""
        assert self.rounds is not None
        rounds, blocks = self.rounds, self._blocks()
        results: list[ToolResult] = []

        def run(index: int, call: ToolCall) -> ToolResult:
            blocks.state(index, "running…")
            with _interruptible():
                return rounds.run(call)

        try:
            for index, result in enumerate(decide(
                    rounds, calls, lambda i, call: self.allow_all or allow(i, call), run)):
                blocks.state(index, _OUTCOME_WORDS.get(result.outcome, result.outcome),
                             result.content)
                results.append(result)
        except KeyboardInterrupt:
            blocks.state(len(results), "interrupted")
            self._unrun(calls, results, "the kernel was interrupted while it ran")
            raise
        return results

    def _unrun(self, calls: list[ToolCall], done: list[ToolResult], why: str) -> None:
        """An interrupt: what ran is kept, the rest answered "not run" (the history stays a
        valid messages list); no further round."""
        assert self.rounds is not None
        rest = [not_run(call, why) for call in calls[len(done):]]
        self.rounds.settle(self.reply, [*done, *rest])

    async def _ask(self, blocks: Any, index: int) -> bool:
        """Run and Skip under call ``index``'s block; True once Run is clicked."""
        import ipywidgets as w

        from ..render.html import document
        from .sinks.lifetime import close_tree

        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

        def pick(value: bool) -> None:
            if not future.done():
                future.set_result(value)

        run = w.Button(description="Run", icon="play", button_style="success",
                       tooltip="Run this call here and send its result to the model")
        skip = w.Button(description="Skip", icon="ban",
                        tooltip="Do not run it; the model is told it was skipped")
        run.on_click(lambda _button: pick(True))
        skip.on_click(lambda _button: pick(False))
        blocks.state(index, "waiting: Run or Skip", show=False)  # drawn once, above the buttons
        box = w.VBox([w.HTML(document(blocks.html(index), style=True)),
                      w.HBox([run, skip], layout=w.Layout(gap="8px"))])
        blocks.replace(index, box)
        try:
            return await future
        finally:
            close_tree(box)  # the block is drawn again as HTML: no dead widget is saved


@contextmanager
def _interruptible() -> Iterator[None]:
    """A kernel interrupt raises KeyboardInterrupt in the call itself. On the awaited path
    ipykernel's SIGINT handler only cancels the cell's task, which cannot happen while a
    function holds the loop: Python's own handler stands in while the call runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
