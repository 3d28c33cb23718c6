"""What ``chatmagic.prompt()`` and ``aprompt()`` return: a response that owns its run.

An `Exchange` is one planned request running on the portal loop (`_portal`):
it folds the stream into a `Reply`, records the outcome in the session when
the run ends, and wakes whoever waits, in a thread or on an event loop.
`Response` (blocking) and `AsyncResponse` read it: iterating yields the text
pieces as they arrive and replays them after; a failure at the endpoint is
data (`Failure`, the stream's own `StreamError`), never an exception.
"""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable, Generator, Iterator

from .failures import StreamError

if TYPE_CHECKING:
    from .runner import Run
    from .session import Plan, Session
    from .pricing import Cost
    from .stream import Reply, Usage

__all__ = ["Failure", "Response", "AsyncResponse", "Exchange"]


#: A request's failure as data: ``kind`` (connect, timeout, status, redirect, server,
#: protocol, incomplete, interrupted, invalid_output), ``status``, ``retry_after``, ``message``.
Failure = StreamError


class _Wake:
    """The run's sink: draws nothing, wakes the exchange's readers at every change."""

    def __init__(self, wake: Callable[[], None]) -> None:
        self._wake = wake

    def begin(self, run: Run) -> None:
        self._wake()

    def refresh(self, run: Run) -> None:
        self._wake()

    def end(self, run: Run) -> None:
        self._wake()


class Exchange:
    """One planned request on the portal loop, read from any thread or loop."""

    def __init__(self, session: Session, plan: Plan) -> None:
        from ._portal import PORTAL
        from .runner import Run

        self.session = session
        self.plan = plan
        self._changed = threading.Condition()
        self._loops: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []
        # Throttle 0: a reader sees every piece as it comes; nothing is drawn.
        self.run = Run(plan.jobs, PORTAL.clients(session), _Wake(self._wake), throttle=0.0)
        self.done = False
        self.crash: BaseException | None = None  # a fault of chatmagic itself, not the endpoint
        self._future = PORTAL.submit(self._drive())

    @property
    def reply(self) -> Reply:
        return self.run.replies[0]

    async def _drive(self) -> None:
        try:
            await self.run.arun()
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
        """Stop the request (thread-safe); what arrived is kept."""
        self.run.stop()

    # -- waiting -------------------------------------------------------------------
    def wait_until(self, ready: Callable[[], bool], timeout: float | None = None) -> bool:
        """Block until ``ready()`` (or the end); a KeyboardInterrupt stops the request."""
        from ._portal import PORTAL

        if PORTAL.in_portal():
            raise RuntimeError("a blocking chatmagic call inside the API's own loop would "
                               "wait forever: use chatmagic.aprompt() there")
        try:
            with self._changed:
                return self._changed.wait_for(lambda: ready() or self.done, timeout)
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
                await entry[1].wait()
                entry[1].clear()
        except asyncio.CancelledError:
            self.stop()  # the awaiting task was cancelled (a kernel interrupt): stop sending
            raise
        finally:
            with self._changed:
                self._loops.remove(entry)

    def piece_after(self, index: int) -> bool:
        """Whether piece ``index`` has arrived."""
        return len(self.reply.text_parts()) > index

    def check(self) -> None:
        if self.crash is not None:
            raise self.crash


class _Common:
    """What a finished response answers, in both twins."""

    def __init__(self, exchange: Exchange) -> None:
        self._exchange = exchange

    def _finished(self) -> Reply:
        raise NotImplementedError

    @property
    def done(self) -> bool:
        """Whether the request has ended (normally or not)."""
        return self._exchange.done

    def stop(self) -> None:
        """Stop the request; the text that arrived is kept (``failure.kind == "interrupted"``)."""
        self._exchange.stop()

    @property
    def reply(self) -> Reply:
        """The finished `Reply`: reasoning, refusal, finish reasons, timings, choices."""
        return self._finished()

    @property
    def usage(self) -> Usage | None:
        """Tokens as the endpoint reported them (estimated when it reported none)."""
        return self._finished().usage

    @property
    def cost(self) -> Cost | None:
        """What the request cost (``.amount``, ``.currency``, ``.source``; ``float(r.cost)``),
        from the endpoint's own figure or a known price; None when no price is known."""
        return self._finished().cost

    @property
    def parsed(self) -> Any:
        """With ``schema=``: the reply as an instance of the class given (a dict for a
        JSON-schema dict or the concise form); None when it did not fit, and then
        ``failure.kind == "invalid_output"`` says why (the text is in ``text()``)."""
        return self._finished().parsed

    @property
    def failure(self) -> Failure | None:
        """None, or why the request did not end normally (``kind``, ``status``, ``message``)."""
        return self._finished().failure

    @property
    def model(self) -> str:
        """The model id sent."""
        return self._exchange.reply.model

    def messages(self) -> list[dict[str, Any]]:
        """The messages this exchange adds to a conversation: the prompt and the reply."""
        return [dict(self._exchange.plan.user),
                {"role": "assistant", "content": self._finished().text()}]

    def __repr__(self) -> str:
        exchange = self._exchange
        state = "done" if exchange.done else "running"
        failure = exchange.reply.failure if exchange.done else None
        if failure is not None:
            state = f"failed ({failure.kind})"
        return (f"<{type(self).__name__} {exchange.reply.profile}:{exchange.reply.model} "
                f"{state}, {len(exchange.reply.text())} chars>")


class Response(_Common):
    """A blocking response: ``for piece in r`` streams (and replays), ``r.text()`` waits.

    ``usage``, ``failure``, ``cost`` and ``reply`` wait for the end too. A kernel
    interrupt while waiting, or leaving a ``for`` loop over it before the end,
    stops the request and keeps what arrived.
    """

    def _finished(self) -> Reply:
        self.wait()
        return self._exchange.reply

    def wait(self, timeout: float | None = None) -> "Response":
        """Wait for the end (at most ``timeout`` seconds); returns the response."""
        self._exchange.wait_until(lambda: False, timeout)
        self._exchange.check()
        return self

    def __iter__(self) -> Iterator[str]:
        exchange = self._exchange
        index = 0
        while True:
            parts = exchange.reply.text_parts()
            if index < len(parts):
                try:
                    yield parts[index]
                except GeneratorExit:
                    # The reader left early: a break, or an exception or a kernel interrupt in
                    # the loop's body (which this generator cannot tell apart): stop sending.
                    if not exchange.done:
                        exchange.stop()
                    raise
                index += 1
                continue
            if exchange.done:
                exchange.check()
                return
            exchange.wait_until(lambda: exchange.piece_after(index))

    def text(self, choice: int = 0) -> str:
        """The whole reply text (of choice ``choice`` with ``n`` > 1), once it has ended."""
        return self._finished().text(choice)

    def __str__(self) -> str:
        return self.text()


class AsyncResponse(_Common):
    """The async twin: ``async for piece in r``, ``await r.text()``, ``await r`` (the end).

    ``usage``, ``failure``, ``cost`` and ``reply`` answer once it has ended:
    ``await r.wait()`` (or ``await r.text()``) first.
    """

    def _finished(self) -> Reply:
        if not self._exchange.done:
            raise RuntimeError("the response is still running: await r.wait() (or r.text()) "
                               "before reading it")
        self._exchange.check()
        return self._exchange.reply

    async def wait(self) -> "AsyncResponse":
        """Wait for the end; returns the response."""
        await self._exchange.await_until(lambda: False)
        self._exchange.check()
        return self

    def __await__(self) -> Generator[Any, None, "AsyncResponse"]:
        return self.wait().__await__()

    async def __aiter__(self) -> AsyncIterator[str]:
        exchange = self._exchange
        index = 0
        while True:
            parts = exchange.reply.text_parts()
            if index < len(parts):
                try:
                    yield parts[index]
                except GeneratorExit:
                    if not exchange.done:
                        exchange.stop()  # left early, as in Response.__iter__
                    raise
                index += 1
                continue
            if exchange.done:
                exchange.check()
                return
            await exchange.await_until(lambda: exchange.piece_after(index))

    async def text(self, choice: int = 0) -> str:
        """The whole reply text, once it has ended."""
        await self.wait()
        return self._exchange.reply.text(choice)
