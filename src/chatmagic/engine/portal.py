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
import threading
from typing import Any, Coroutine, TypeVar

__all__ = ["Portal", "PORTAL"]

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


#: The one portal of this process.
PORTAL = Portal()
