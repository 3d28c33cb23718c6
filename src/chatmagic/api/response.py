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

from ..core import scrub
from ..core.failures import StreamError
from ..tools.functions import ToolCall, ToolResult, not_run

if TYPE_CHECKING:
    from ..engine.runner import Run
    from ..engine.session import Plan, Session
    from ..core.pricing import Cost
    from ..engine.reply import Reply
    from ..core.events import Usage

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
        return self.run.replies[0]

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

    def text_parts(self) -> list[str]:
        """Every text piece so far, of all rounds (a reader's index runs across them)."""
        parts = self.reply.text_parts()
        return self._earlier + parts if self._earlier else parts

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

    def piece_after(self, index: int) -> bool:
        """Whether piece ``index`` has arrived."""
        return len(self.text_parts()) > index

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
        """None, or why the request did not end normally (``kind``, ``status``, ``message``;
        with tools, ``kind == "tool_rounds"``: the model still called at ``max_rounds``)."""
        failure = self._finished().failure
        problem = self._exchange.problem
        if failure is None and problem is not None:
            return StreamError(str(problem), "tool_rounds")
        return failure

    @property
    def model(self) -> str:
        """The model id sent."""
        return self._exchange.reply.model

    def messages(self) -> list[dict[str, Any]]:
        """The messages this exchange adds to a conversation: the prompt, the tool rounds'
        messages (the assistant's ``tool_calls``, the ``tool`` results), and the answer."""
        reply = self._finished()
        plan = self._exchange.plan
        # As the history keeps it: a key spread over many pieces is masked once assembled.
        answer = [] if plan.added and reply.tool_calls() else [
            {"role": "assistant", "content": scrub.scrub(reply.text())}]
        return [dict(plan.user), *plan.added, *answer]

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
            parts = exchange.text_parts()
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
        """The whole reply text (of choice ``choice`` with ``n`` > 1), once it has ended (a
        key the server echoed, even split across pieces, is masked)."""
        return scrub.scrub(self._finished().text(choice))

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
            parts = exchange.text_parts()
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
        """The whole reply text, once it has ended (keys masked, as `Response.text`)."""
        await self.wait()
        return scrub.scrub(self._exchange.reply.text(choice))


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
