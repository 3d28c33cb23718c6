"""Run one or several requests at once and feed their events to a renderer.

Every request is an `exchange` (the engine) on one event loop; their events
meet in one queue as ``(column, event)`` pairs. A `Run` folds them into `Reply`
values and calls its `Sink` at most once per ``throttle`` seconds (the first
token at once, the end always), so drawing costs O(time), not O(tokens). The
sink is always called from the thread that called `Run.arun` or `Run.run`: the
cell's own. A `Restart` (a retry, a stream another request cut short) starts
its column over as a new `Reply` that keeps the notes and says why.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, AsyncIterator, Callable, Protocol, Sequence

from ..core.events import Restart, StreamError, StreamEvent, TextDelta
from ..core.failures import sentence
from ..core.tokens import prompt_tokens
from ..transport.client import ClientPool
from .endpoints import Knowledge
from .exchange import CELL, Routes, exchange
from .reply import Reply
from .request import Job

__all__ = ["Sink", "Run", "NullSink", "Events", "run_blocking", "HEARTBEAT"]

#: The events that arrived since a sink was last called: ``(column, event)`` in order.
Events = Sequence[tuple[int, StreamEvent]]


class Sink(Protocol):
    """What draws a run: told when it starts, as it goes (throttled) and when it ends.

    `refresh` and `end` get the events that arrived since the sink was last
    called, in order (a `Restart` among them starts its column over); the run's
    `Reply` values hold everything folded so far (usage, finish, timings).
    `begin` and `refresh` return True to be refreshed again one throttle
    interval later even if no event arrives (to show a "waiting" state, or a
    part held back so that one refresh sends one update); `end` draws the
    final state.
    """

    def begin(self, run: "Run") -> bool | None: ...
    def refresh(self, run: "Run", events: Events) -> bool | None: ...
    def end(self, run: "Run", events: Events) -> None: ...


class NullSink:
    """A sink that draws nothing (the Python API, benchmarks)."""

    def begin(self, run: "Run") -> None: pass
    def refresh(self, run: "Run", events: Events) -> None: pass
    def end(self, run: "Run", events: Events) -> None: pass


_END = None  # what a column's task puts in the queue when its request is over
_BEGIN = "begin"  # what the worker thread hands the caller's thread when the requests are out

Item = tuple[int, "StreamEvent | None"]


#: Seconds between wake-ups of the loop an awaited run is on (see `Run.arun`).
HEARTBEAT = 0.1

class Run:
    """Several requests streamed at once into one sink."""

    def __init__(self, jobs: list[Job], clients: ClientPool, sink: Sink | None = None,
                 throttle: float = 0.08, knowledge: Knowledge | None = None) -> None:
        self.jobs = jobs
        self.replies = [Reply(j.request.model, j.profile.name, j.profile.base_url,
                              prompt_estimate=prompt_tokens(list(j.request.messages)),
                              pricer=j.pricer, asked=int(j.request.params.get("n") or 1))
                        for j in jobs]
        self.clients = clients
        #: What the session knows of its endpoints (one at a time, structured-output modes).
        self.knowledge = knowledge if knowledge is not None else Knowledge()
        self.sink: Sink = sink or NullSink()
        self.throttle = throttle
        self.stopped = False
        self._last_refresh = 0.0
        self._dirty = False
        self._stop_hook: Any = None
        self._stop_asked = False  # stop() came, perhaps before any hook could act on it
        self._fresh: list[tuple[int, StreamEvent]] = []  # since the sink was last called

    # -- folding and throttling (always on the caller's thread) ---------------
    def _feed(self, column: int, event: StreamEvent | None) -> None:
        reply = self.replies[column]
        if event is not None:
            self._fresh.append((column, event))
        if isinstance(event, Restart):
            self.replies[column] = reply.restarted(event)  # the column starts over
            self._refresh()
            return
        if event is None:
            # Closed here, on the caller's thread, once every earlier event is folded in.
            reply.close(interrupted=self.stopped)
            # Others still running: show this one's end at the next tick. The last one's
            # end is drawn by the sink's end(), so no refresh is spent on it.
            self._dirty = self._dirty or any(r.ended is None for r in self.replies)
            return
        first = reply.first_token is None and isinstance(event, TextDelta)
        reply.feed(event)
        self._dirty = True
        if first or isinstance(event, StreamError):
            self._refresh()

    def _begin(self) -> None:
        self._last_refresh = time.perf_counter()
        self._dirty = bool(self.sink.begin(self))

    def _taken(self) -> list[tuple[int, StreamEvent]]:
        events, self._fresh = self._fresh, []
        return events

    def _refresh(self) -> None:
        self._last_refresh = time.perf_counter()
        self._dirty = bool(self.sink.refresh(self, self._taken()))

    def _tick(self) -> None:
        if self._dirty and time.perf_counter() - self._last_refresh >= self.throttle:
            self._refresh()

    def _due_in(self) -> float:
        return max(0.0, self._last_refresh + self.throttle - time.perf_counter())

    def _close(self, interrupted: bool) -> None:
        for reply in self.replies:
            if reply.ended is None:
                reply.close(interrupted=interrupted or self.stopped)
        self.sink.end(self, self._taken())

    # -- the streams -----------------------------------------------------------
    async def _events(self, started: Callable[[], None]) -> AsyncIterator[Item]:
        """Every request's events as they come; ``started()`` once the requests are out."""
        events: asyncio.Queue[Item] = asyncio.Queue()
        routes = Routes(self.clients, self.knowledge, limit=len(self.jobs))

        async def pump(column: int, job: Job) -> None:
            try:
                await exchange(job.request, routes(job.profile),
                               lambda event: events.put_nowait((column, event)), CELL)
            except Exception as exc:  # noqa: BLE001 - one column's failure is that column's
                events.put_nowait((column, StreamError(sentence(f"{type(exc).__name__}: {exc}"))))
            finally:
                events.put_nowait((column, _END))

        tasks = [asyncio.ensure_future(pump(i, job)) for i, job in enumerate(self.jobs)]
        loop = asyncio.get_running_loop()
        # Stop may come from another thread (run()'s caller): wake this loop to cancel.
        self._hook_stop(lambda: loop.call_soon_threadsafe(lambda: [t.cancel() for t in tasks]))
        try:
            await asyncio.sleep(0)  # let the requests start before the sink draws its first frame
            started()
            running = len(tasks)
            while running:
                item = await events.get()
                if item[1] is _END:
                    running -= 1
                yield item
        finally:
            for task in tasks:
                task.cancel()  # closes each HTTP response: the server sees the disconnect
            await asyncio.gather(*tasks, return_exceptions=True)

    async def arun(self) -> list[Reply]:
        """Run on the running event loop; the sink is called from this coroutine."""
        loop = asyncio.get_running_loop()
        timer: asyncio.TimerHandle | None = None

        def arm() -> None:
            # Refresh when due even if the next event is slow to come (a burst's tail, waiting).
            nonlocal timer
            if self._dirty and timer is None:
                timer = loop.call_later(self._due_in(), flush)

        def flush() -> None:
            nonlocal timer
            timer = None
            self._tick()
            arm()

        def started() -> None:
            self._begin()
            arm()

        beat: asyncio.TimerHandle | None = None

        def heartbeat() -> None:
            # A kernel's interrupt handler asks its loop to cancel the cell with a callback
            # that runs only once the loop wakes: with no bytes coming (a --no-stream answer
            # being generated) it would sleep until the reply came. Wake it now and then.
            nonlocal beat
            beat = loop.call_later(HEARTBEAT, heartbeat)

        heartbeat()
        interrupted = True
        try:
            async for column, event in self._events(started):
                self._feed(column, event)
                self._tick()
                arm()
            interrupted = False
        finally:
            for handle in (timer, beat):
                if handle is not None:
                    handle.cancel()
            self._close(interrupted and not self.stopped)
        return self.replies

    def run(self) -> list[Reply]:
        """The blocking way: the streams run on the portal's long-lived loop (`portal`).

        The caller's thread only folds events and draws, so a kernel interrupt
        (KeyboardInterrupt here) stops the streams and keeps what came. One loop
        for every blocking run means one client per endpoint, whose connections are
        reused from cell to cell.
        """
        from .portal import PORTAL, Put

        async def work(put: Put) -> None:
            async for item in self._events(lambda: put(_BEGIN)):
                put(item)

        def handle(item: Item | str) -> None:
            if isinstance(item, str):  # _BEGIN: the sink draws from this thread
                self._begin()
            else:
                self._feed(*item)
                self._tick()

        interrupted = True
        try:
            PORTAL.serve(work, handle=handle, idle=self._tick, hook=self._hook_stop,
                         wait=lambda: self._due_in() if self._dirty else self.throttle)
            interrupted = False
        finally:
            self._close(interrupted and not self.stopped)
        return self.replies

    def _hook_stop(self, hook: Callable[[], Any]) -> None:
        """Make ``hook`` what stop() calls; call it now if a stop came before it."""
        self._stop_hook = hook
        if self._stop_asked:
            self.stop(user=False)

    def stop(self, user: bool = True) -> None:
        """Stop every stream (the Stop button; thread-safe). What arrived is kept."""
        if user:
            self.stopped = True
        self._stop_asked = True
        hook = self._stop_hook
        if hook is not None:
            try:
                hook()
            except RuntimeError:
                pass  # the worker's loop already closed: nothing left to stop


def run_blocking(run: Run) -> list[Reply]:
    """Run from synchronous code (a terminal, a kernel's cell that is not awaited, a script):
    the streams on the portal's loop, the sink drawing from here."""
    return run.run()
