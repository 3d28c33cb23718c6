"""One request's reply as a narrow stream of events, read from the bytes as they arrive.

`astream_chat` sends one Chat Completions request through the openai SDK and
yields `TextDelta`, `ReasoningDelta`, `RefusalDelta`, `Usage`, `Finish`,
`Note` and, on any failure, one final `StreamError`. It reads the server-sent
events from the raw bytes itself (`chatmagic.transport.sse` splits them,
`chatmagic.transport.chunks` reads each; the SDK still sends, retries and
raises HTTP errors) because the SDK stays silent on what gateways get wrong
(an HTTP-200 error body, a JSON body labelled ``text/event-stream``, a stream
that just stops) and because ``iter_lines`` splits lines where SSE does not.
Whatever bytes arrive, the result is events, never a traceback.
`chatmagic.engine.reply.Reply` folds the events into what the renderers, the
history and the usage counter read.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, replace
from typing import Any, AsyncIterator

import openai

from ..core.events import (Finish, Note, ReasoningDelta, RefusalDelta, StreamError, StreamEvent,
                          TextDelta, ToolCallDelta, Usage)
from ..core.failures import no_lone_surrogates, is_transport, sentence, server_text
from ..core.profiles import Profile
from .chunks import Frames, chunk_events, may_hold_surrogates, plain_body, reported_cost, snippet
from .failures import failure_from_exception, in_band_advice
from .limits import limit_bytes
from .sse import SSEDecoder

__all__ = ["astream_chat", "aretry_without_stream"]


class _Empty:
    """What `_sse_events` yields for a stream with no frames and no error (asked again)."""


_EMPTY = _Empty()


_SAID = (TextDelta, ReasoningDelta, RefusalDelta, ToolCallDelta)


class _Silence:
    """Finish reasons held back while nothing has been said: a stream that says nothing and
    counts no tokens is an empty one, whatever finish reason a proxy added (LiteLLM ends
    llama-cpp-python's empty stream for a prompt past its context with "stop")."""

    def __init__(self) -> None:
        self.said = False
        self.held: list[StreamEvent] = []
        self.counted = False  # a usage chunk with completion tokens

    def pass_on(self, event: StreamEvent) -> list[StreamEvent]:
        if isinstance(event, Usage) and event.completion_tokens:
            self.counted = True
        if self.said:
            return [event]
        if isinstance(event, Finish):
            self.held.append(event)
            return []
        if isinstance(event, _SAID):
            self.said = True
            held, self.held = self.held, []
            return [*held, event]
        return [event]

    @property
    def empty(self) -> bool:
        return bool(self.held) and not self.said and not self.counted


async def _sse_events(response: Any, max_line: int) -> AsyncIterator[StreamEvent | _Empty]:
    """The events of a streamed chat completion, read from the response's raw bytes."""
    decoder = SSEDecoder(max_line)
    frames = Frames()
    silence = _Silence()
    chunks = response.iter_bytes()
    async for chunk in chunks:
        for event in frames.read_all(decoder.feed(chunk)):
            for passed in silence.pass_on(event):
                yield passed
        if frames.failed or frames.done:
            if frames.done:
                await _read_to_end(chunks)
            break
    else:
        for event in frames.read_all(decoder.end()) + frames.end():
            for passed in silence.pass_on(event):
                yield passed
    if frames.failed:
        for event in silence.held:
            yield event
        return
    if silence.empty:
        yield _EMPTY
        return
    for event in silence.held:
        yield event
    if not frames.count:
        if decoder.stray:
            events = plain_body(decoder.stray)
            for event in events:
                yield event
            if not events:
                yield _EMPTY
        else:
            yield _EMPTY
    elif not (frames.finished or frames.done):
        yield StreamError("the stream ended before the reply finished (no finish_reason, "
                          "no [DONE]): the connection dropped or the server stopped.",
                          "incomplete")


async def _complete(client: openai.AsyncOpenAI, request: dict[str, Any],
                    ) -> AsyncIterator[StreamEvent]:
    """The events of a request without streaming: the whole reply at once."""
    raw = await client.chat.completions.with_raw_response.create(**request)
    # UTF-8 whatever the charset header says, as the stream is read.
    body = raw.http_response.content.decode("utf-8", "replace").removeprefix("\ufeff")
    try:
        payload = json.loads(body)
    except ValueError:
        yield StreamError(f"the endpoint answered with a body that is not JSON: "
                          f"{server_text(body) or snippet(body)}")
        return
    said = server_text(payload) if not isinstance(payload, dict) or "error" in payload else None
    if said is not None or not isinstance(payload, dict):
        # one-api/new-api pass upstream failures through with HTTP 200 and {"error": ...}
        yield StreamError(f"the endpoint answered HTTP 200 with an error: {said}", "server")
        return
    events = chunk_events(payload, may_hold_surrogates(body))
    if not any(isinstance(e, Finish) for e in events):
        yield StreamError("the endpoint's reply has no choices")
        return
    header_cost = reported_cost(raw.http_response.headers.get("x-litellm-response-cost"))
    for event in events:
        if isinstance(event, Usage) and event.cost is None and header_cost is not None:
            # LiteLLM's proxy says the cost in a header. Only here: a streamed reply's
            # headers leave before the reply exists, so they cannot hold its whole cost.
            event = replace(event, cost=header_cost)
        yield event


#: What may follow ``[DONE]`` and still be read, and for how long: an HTTP/1.1 connection goes
#: back to the pool only once its body has ended (the chunked body's last chunk comes after
#: [DONE]); a stream closed before that closes its connection, and the next request opens one.
#: Past either bound the connection is closed instead, as before.
DRAIN_BYTES = 16 * 1024
DRAIN_SECONDS = 0.1


async def _read_to_end(chunks: AsyncIterator[bytes]) -> None:
    """Read what follows [DONE] to the body's end, within `DRAIN_BYTES` and `DRAIN_SECONDS`
    (a server that keeps the stream open is not waited for)."""
    async def drain() -> None:
        left = DRAIN_BYTES
        async for chunk in chunks:
            left -= len(chunk)
            if left < 0:
                return

    try:
        await asyncio.wait_for(drain(), DRAIN_SECONDS)
    except asyncio.TimeoutError:
        pass
    except Exception as exc:  # noqa: BLE001 - the reply is whole: a broken end is no failure
        if not is_transport(exc):
            raise


@dataclass(frozen=True)
class _Failed:
    """An SDK exception on its way to becoming a StreamError (which names the endpoint)."""

    exc: Exception


async def _events(client: openai.AsyncOpenAI, request: dict[str, Any], profile: Profile,
                  ) -> AsyncIterator[StreamEvent | _Failed | _Empty]:
    try:
        if request.get("stream"):
            async with client.chat.completions.with_streaming_response.create(**request) as resp:
                async for event in _sse_events(resp, limit_bytes(profile.max_line_mb)):
                    yield event
        else:
            async for plain in _complete(client, request):
                yield plain
    except openai.OpenAIError as exc:
        yield _Failed(exc)
    except Exception as exc:  # noqa: BLE001 - whatever the bytes did: a failure, not a traceback
        if is_transport(exc):
            yield _Failed(exc)  # raised while reading the body, which the SDK does not wrap
        else:
            yield StreamError(f"chatmagic could not read the reply ({type(exc).__name__}: "
                              f"{no_lone_surrogates(str(exc))[:200]})")


def _failure(event: StreamError | _Failed, profile: Profile, request: dict[str, Any],
             said: bool = False) -> StreamError:
    if isinstance(event, _Failed):
        return failure_from_exception(event.exc, profile, str(request.get("model")),
                                      request.get("timeout"), kept=said)
    # Every failure names its endpoint (the base URL, never the key).
    message = f"{profile.name} ({profile.base_url}): {event.message}"
    advice = in_band_advice(event.message) if event.kind == "server" else None
    if advice is not None:  # a proxy's error frame that blames the request: not asked again
        return replace(event, message=sentence(no_lone_surrogates(f"{message} — {advice}")),
                       kind="rejected")
    return replace(event, message=sentence(no_lone_surrogates(message)))


async def astream_chat(client: openai.AsyncOpenAI, request: dict[str, Any], profile: Profile,
                       *, retry_empty: bool = True) -> AsyncIterator[StreamEvent]:
    """Send one request; yield its events, ending in at most one StreamError.

    With ``request["stream"]`` false the whole reply arrives at once and is
    yielded as the same events. A stream with nothing in it is asked again
    once without streaming (llama-cpp-python answers a prompt past its context
    so; only without streaming does it say why); with ``retry_empty`` false it
    ends in a StreamError of kind ``empty`` instead, for a caller that knows
    better when to ask again (`aretry_without_stream`). Closing the generator
    closes the HTTP response.
    """
    empty = said = False
    async for event in _events(client, request, profile):
        if isinstance(event, _Empty):
            empty = True
        elif isinstance(event, (StreamError, _Failed)):
            yield _failure(event, profile, request, said)
        else:
            said = said or isinstance(event, _SAID)
            yield event
    if not empty:
        return
    if not retry_empty:
        yield _failure(StreamError("the endpoint returned an empty stream", "empty"), profile,
                       request)
        return
    async for event in aretry_without_stream(client, request, profile):
        yield event


async def aretry_without_stream(client: openai.AsyncOpenAI, request: dict[str, Any],
                                profile: Profile) -> AsyncIterator[StreamEvent]:
    """Ask a request whose stream came back empty again without streaming: its events, after a
    `Note` saying so, or one StreamError in the server's own words."""
    plain = {k: v for k, v in request.items() if k not in ("stream", "stream_options")}
    noted = False
    async for event in _events(client, plain, profile):
        if isinstance(event, (StreamError, _Failed)):
            said = _failure(event, profile, request)
            where = f"{profile.name} ({profile.base_url})"
            words = (f"it {said.message[len(where) + 1:]}" if said.message.startswith(where + " ")
                     else said.message.removeprefix(where + ": "))
            yield replace(said, message=f"{where} sent an empty stream; asked again without "
                                        f"streaming, {words}")
        elif not isinstance(event, _Empty):
            if not noted:
                noted = True
                yield Note("the stream was empty; asked again without streaming")
            yield event
