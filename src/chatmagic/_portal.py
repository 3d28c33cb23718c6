"""One long-lived event loop on a daemon thread, where the Python API's requests run.

``chatmagic.prompt()`` and its twins submit their runs here (as anyio's
blocking portal does), so a script, a plain cell and an ``async`` cell all
share one loop and, per session, one client pool whose connections are
reused from call to call. The loop starts on first use; the caller's thread
only waits, and a stop is one thread-safe call on the run.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import weakref
from typing import TYPE_CHECKING, Any, Coroutine, TypeVar

if TYPE_CHECKING:
    from .client import ClientPool
    from .session import Session

__all__ = ["Portal", "PORTAL"]

T = TypeVar("T")


class Portal:
    """The loop thread and the client pools of the sessions that used it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        # Pools of their own: ClientPool keeps async clients of one loop only, so sharing
        # the session's pool with the kernel's loop would rebuild clients at every switch.
        self._pools: weakref.WeakKeyDictionary[Session, ClientPool] = \
            weakref.WeakKeyDictionary()

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

    def clients(self, session: Session) -> ClientPool:
        """The pool this session's API requests use on the portal loop."""
        from .client import ClientPool

        with self._lock:
            pool = self._pools.get(session)
            if pool is None:
                pool = self._pools[session] = ClientPool(session.clients.environ)
            return pool


#: The one portal of this process.
PORTAL = Portal()
