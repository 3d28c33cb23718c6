"""What ``chatmagic.prompt()`` and ``aprompt()`` return: a response that reads a request in flight.

`Response` (blocking) and `AsyncResponse` read an `InFlight` request
(`chatmagic.api.inflight`): iterating yields the text pieces as they arrive and
replays them after; a failure at the endpoint is data (`Failure`, the stream's
own `StreamError`), never an exception.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, AsyncIterator, Generator, Iterator

from ..core import scrub
from ..core.failures import StreamError
from .inflight import InFlight

if TYPE_CHECKING:
    from ..core.events import Usage
    from ..core.pricing import Cost
    from ..engine.reply import Reply

__all__ = ["Failure", "Response", "AsyncResponse"]


#: A request's failure as data: ``kind`` (connect, timeout, status, redirect, server,
#: protocol, incomplete, interrupted, invalid_output), ``status``, ``retry_after``, ``message``.
Failure = StreamError


class _Common:
    """What a finished response answers, in both twins."""

    def __init__(self, inflight: InFlight, column: int = 0) -> None:
        self._exchange = inflight
        self._column = column  # which model of a compare

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
        return self._exchange.reply_of(self._column).model

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
        failure = exchange.reply_of(self._column).failure if exchange.done else None
        if failure is not None:
            state = f"failed ({failure.kind})"
        reply = exchange.reply_of(self._column)
        return (f"<{type(self).__name__} {reply.profile}:{reply.model} "
                f"{state}, {len(reply.text())} chars>")


class Response(_Common):
    """A blocking response: ``for piece in r`` streams (and replays), ``r.text()`` waits.

    ``usage``, ``failure``, ``cost`` and ``reply`` wait for the end too. A kernel
    interrupt while waiting, or leaving a ``for`` loop over it before the end,
    stops the request and keeps what arrived.
    """

    def _finished(self) -> Reply:
        self.wait()
        return self._exchange.reply_of(self._column)

    def wait(self, timeout: float | None = None) -> "Response":
        """Wait for the end (at most ``timeout`` seconds); returns the response."""
        self._exchange.wait_until(lambda: False, timeout)
        self._exchange.check()
        return self

    def __iter__(self) -> Iterator[str]:
        exchange = self._exchange
        index = 0
        while True:
            parts = exchange.text_parts(self._column)
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
            exchange.wait_until(lambda: exchange.piece_after(index, self._column))

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
        return self._exchange.reply_of(self._column)

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
            parts = exchange.text_parts(self._column)
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
            await exchange.await_until(lambda: exchange.piece_after(index, self._column))

    async def text(self, choice: int = 0) -> str:
        """The whole reply text, once it has ended (keys masked, as `Response.text`)."""
        await self.wait()
        return scrub.scrub(self._exchange.reply_of(self._column).text(choice))
