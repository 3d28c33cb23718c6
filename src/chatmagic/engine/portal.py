"""One long-lived event loop on a daemon thread, where the Python API's requests run.

``chatmagic.prompt()`` and its twins, and every blocking ``%%chat`` run,
submit their runs here (as anyio's blocking portal does), so a script, a
plain cell and an ``async`` cell all share one loop, and the session's client
pool keeps one client per endpoint on it whose connections are reused from
call to call. The loop starts on first use; the caller's thread only waits,
and a stop is one thread-safe call on the run.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import queue
import threading
from typing import Any, Callable, Coroutine, TypeVar

__all__ = ["Portal", "PORTAL", "Put"]

#: How work on the portal hands an item to the thread that serves it.
Put = Callable[[Any], None]

T = TypeVar("T")


class Portal:
    """The loop thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def loop(self) -> asyncio.AbstractEventLoop:
        """The running portal loop (started now if needed)."""
        with self._lock:
            if self._loop is None or self._thread is None or not self._thread.is_alive():
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=self._serve, args=(loop,), daemon=True,
                                          name="chatmagic-api")
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop

    @staticmethod
    def _serve(loop: asyncio.AbstractEventLoop) -> None:
        asyncio.set_event_loop(loop)
        loop.run_forever()

    def in_portal(self) -> bool:
        """Whether the calling thread is the portal's own (where waiting would deadlock)."""
        return self._thread is not None and threading.current_thread() is self._thread

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Run ``coro`` on the portal loop; its future can be waited on from any thread."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop())

    def serve(self, work: Callable[[Put], Coroutine[Any, Any, None]], *,
              handle: Callable[[Any], None], idle: Callable[[], None],
              wait: Callable[[], float], hook: Callable[[Callable[[], Any]], None],
              grace: float = 2.0) -> None:
        """The one bridge for blocking callers: run ``work(put)`` on the portal loop while the
        calling thread serves it.

        Every item the work puts is handed to ``handle`` here, in order; ``idle()`` is
        called whenever ``wait()`` seconds pass without one (to draw what is due). What
        the work raises is raised here. ``hook`` is given the function that cancels the
        work (a Stop button's, from any thread). A KeyboardInterrupt here cancels the
        work, waits up to ``grace`` seconds for it to end (its last items are still
        handled), and goes on up: what arrived is kept.
        """
        if self.in_portal():
            raise RuntimeError("a blocking chatmagic call inside chatmagic's own loop would "
                               "wait forever: await it there")
        items: queue.Queue[Any] = queue.Queue()
        started, ended = threading.Event(), threading.Event()

        async def main() -> None:
            started.set()
            try:
                await work(items.put)
            except asyncio.CancelledError:
                pass  # stopped: a plain end
            except BaseException as exc:  # noqa: BLE001 - handed to the serving thread
                items.put(_Raised(exc))
            finally:
                ended.set()
                items.put(_DONE)

        def done(_: object) -> None:
            # A future cancelled before its task's first step never runs main: that is its
            # end. (Cancelling the future does not wait for a running task: main says when.)
            if not started.is_set():
                items.put(_DONE)

        future = self.submit(main())
        future.add_done_callback(done)
        hook(future.cancel)
        try:
            while True:
                try:
                    item = items.get(timeout=max(0.0, wait()))
                except queue.Empty:
                    idle()
                    continue
                if item is _DONE:
                    return
                if isinstance(item, _Raised):
                    raise item.exc
                handle(item)
        finally:
            if not ended.is_set():
                future.cancel()
                if started.is_set():
                    ended.wait(grace)  # what finishes while the work is being cancelled
            while not items.empty():  # what finished while it was being cancelled
                item = items.get_nowait()
                if item is not _DONE and not isinstance(item, _Raised):
                    handle(item)


class _Raised:
    """What the work raised, on its way to the serving thread."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


_DONE = object()  # put when the work has ended, whatever happened


#: The one portal of this process.
PORTAL = Portal()
