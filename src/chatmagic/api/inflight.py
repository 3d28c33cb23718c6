"""One planned request in flight on the portal loop, read from any thread or loop.

An `InFlight` runs its plan's `Run` (and, with tools, its further rounds) on the
portal's long-lived loop (`chatmagic.engine.portal`), records the outcome in the
session when it ends, and wakes whoever waits for it, in a thread or on an event
loop. With tools, each round's calls are handed to the thread that reads the
response, which decides and runs them (a function runs where its caller expects).
"""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING, Any, Callable

from ..tools.functions import ToolCall, ToolResult, not_run

if TYPE_CHECKING:
    from ..engine.reply import Reply
    from ..engine.runner import Events, Run
    from ..engine.session import Plan, Session

__all__ = ["InFlight"]


class _Wake:
    """The run's sink: draws nothing, wakes the readers at every change."""

    def __init__(self, wake: Callable[[], None]) -> None:
        self._wake = wake

    def begin(self, run: Run) -> None:
        self._wake()

    def refresh(self, run: Run, events: Events) -> None:
        self._wake()

    def end(self, run: Run, events: Events) -> None:
        self._wake()


class InFlight:
    """One planned request on the portal loop, read from any thread or loop."""

    def __init__(self, session: Session, plan: Plan, allow: Any = None) -> None:
        from ..engine.portal import PORTAL
        from ..engine.runner import Run

        self.session = session
        self.plan = plan
        #: With tools: who allows a call (see `_allow`), the calls waiting for a reader's
        #: thread to decide and run them, and the text pieces of the rounds before this one.
        self.allow = allow
        self._pending: tuple[list[ToolCall], asyncio.Future[list[ToolResult]]] | None = None
        self._earlier: list[str] = []
        self._changed = threading.Condition()
        self._loops: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []
        # Throttle 0: a reader sees every piece as it comes; nothing is drawn.
        self.run = Run(plan.jobs, session.clients, _Wake(self._wake), throttle=0.0,
                       knowledge=session.knowledge)
        self.done = False
        self.crash: BaseException | None = None  # a fault of chatmagic itself, not the endpoint
        self.problem: Exception | None = None  # tools: the rounds ended without an answer
        self._future = PORTAL.submit(self._drive())

    @property
    def reply(self) -> Reply:
        """The first column's reply (the only one but with --compare)."""
        return self.run.replies[0]

    def reply_of(self, column: int) -> Reply:
        return self.run.replies[column]

    async def _drive(self) -> None:
        try:
            await self.run.arun()
            if self.plan.tools:
                await self._rounds()
        except asyncio.CancelledError:
            pass  # stopped: arun closed the replies as interrupted
        except Exception as exc:  # noqa: BLE001 - handed to the reader, who raises it
            self.crash = exc
        finally:
            try:
                self.session.record(self.plan, self.run.replies)
            finally:
                self.done = True
                self._wake()

    def _wake(self) -> None:
        with self._changed:
            self._changed.notify_all()
            loops = list(self._loops)
        for loop, event in loops:
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:
                pass  # that reader's loop is closed: nobody left to wake

    def stop(self) -> None:
        """Stop the request (thread-safe); what arrived is kept, calls waiting do not run."""
        self.run.stop()
        pending = self._pending
        if pending is not None:
            calls, future = pending
            from ..engine.portal import PORTAL

            PORTAL.loop().call_soon_threadsafe(
                _settle, future, [not_run(call, "the request was stopped") for call in calls])

    # -- tools: rounds on the portal, calls in the reader's thread -----------------------
    async def _rounds(self) -> None:
        """The tool rounds (`tool_rounds.Rounds`): each round's calls are handed to the
        thread that reads the response, which decides and runs them."""
        from ..engine.rounds import Rounds

        rounds = Rounds(self.plan, self.session)
        while not self.run.stopped and (calls := rounds.calls(self.reply)):
            if rounds.at_limit:
                rounds.stop_at_limit(self.reply, calls)
                self.problem = rounds.problem
                return
            future: asyncio.Future[list[ToolResult]] = asyncio.get_running_loop().create_future()
            with self._changed:
                self._pending = (calls, future)
            self._wake()
            try:
                results = await future
            finally:
                with self._changed:
                    self._pending = None
            rounds.settle(self.reply, results)
            if self.run.stopped:
                return
            self._earlier += self.reply.text_parts()
            self.run = rounds.next_run(self.run, self.run.sink)
            await self.run.arun()

    def _run_pending(self) -> None:
        """In the reader's thread: decide on and run the calls waiting, if any."""
        from ..engine.portal import PORTAL
        from ..engine.rounds import Rounds, decide

        with self._changed:
            pending, self._pending = self._pending, None
        if pending is None:
            return
        calls, future = pending
        results: list[ToolResult] = []
        rounds = Rounds(self.plan, self.session)
        allow = _allow(self.allow)
        try:
            for result in decide(rounds, calls, lambda index, call: allow(call)):
                results.append(result)
        finally:  # an interrupt in a call: the rest are answered "not run", the run stopped
            rest = [not_run(call, "interrupted") for call in calls[len(results):]]
            PORTAL.loop().call_soon_threadsafe(_settle, future, results + rest)

    def text_parts(self, column: int = 0) -> list[str]:
        """Every text piece so far, of all rounds (a reader's index runs across them)."""
        parts = self.run.replies[column].text_parts()
        return self._earlier + parts if self._earlier and column == 0 else parts

    # -- waiting -------------------------------------------------------------------
    def wait_until(self, ready: Callable[[], bool], timeout: float | None = None) -> bool:
        """Block until ``ready()`` (or the end); a KeyboardInterrupt stops the request."""
        from ..engine.portal import PORTAL

        if PORTAL.in_portal():
            raise RuntimeError("a blocking chatmagic call inside the API's own loop would "
                               "wait forever: use chatmagic.aprompt() there")
        try:
            while True:
                with self._changed:
                    met = self._changed.wait_for(
                        lambda: ready() or self.done or self._pending is not None, timeout)
                    if self._pending is None:
                        return met
                self._run_pending()  # here, in the reader's thread, not in the portal's
        except KeyboardInterrupt:
            self.stop()
            raise

    async def await_until(self, ready: Callable[[], bool]) -> None:
        """Wait on the caller's event loop until ``ready()`` (or the end)."""
        entry = (asyncio.get_running_loop(), asyncio.Event())
        with self._changed:
            self._loops.append(entry)
        try:
            while not (ready() or self.done):
                if self._pending is not None:
                    self._run_pending()  # on this loop's thread (a function may block it)
                    continue
                await entry[1].wait()
                entry[1].clear()
        except asyncio.CancelledError:
            self.stop()  # the awaiting task was cancelled (a kernel interrupt): stop sending
            raise
        finally:
            with self._changed:
                self._loops.remove(entry)

    def piece_after(self, index: int, column: int = 0) -> bool:
        """Whether piece ``index`` of ``column`` has arrived."""
        return len(self.text_parts(column)) > index

    def check(self) -> None:
        if self.crash is not None:
            raise self.crash


def _settle(future: asyncio.Future[list[ToolResult]], results: list[ToolResult]) -> None:
    if not future.done():
        future.set_result(results)


def _allow(allow: Any) -> Callable[[ToolCall], bool]:
    """``allow=``: True runs every call; a function decides each (given the `ToolCall`);
    None (the default) asks on stdin, as a terminal cell does (nobody answering: not run)."""
    if allow is True:
        return lambda call: True
    if callable(allow):
        return lambda call: bool(allow(call))
    return _ask


def _ask(call: ToolCall) -> bool:
    from ..engine.rounds import ask

    return ask(call) in ("y", "yes")  # nobody answering (no stdin): not run
