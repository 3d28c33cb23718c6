"""One request's reply as a narrow stream of events, and the reply they build.

`astream_chat` sends one Chat Completions request through the openai SDK and
yields `TextDelta`, `ReasoningDelta`, `RefusalDelta`, `Usage`, `Finish`,
`Note` and, on any failure, one final `StreamError`. It reads the server-sent
events from the raw bytes itself (`chatmagic.transport.sse`; the SDK still sends,
retries and raises HTTP errors) because the SDK stays silent on what gateways
get wrong (an HTTP-200 error body, a JSON body labelled ``text/event-stream``,
a stream that just stops) and because ``iter_lines`` splits lines where SSE
does not. Whatever bytes arrive, the result is events, never a traceback.
`chatmagic.engine.reply.Reply` folds the events into what the renderers, the
history and the usage counter read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any, AsyncIterator

import openai

from ..core.events import (Finish, Note, ReasoningDelta, RefusalDelta, StreamError, StreamEvent,
                          TextDelta, ToolCallDelta, Usage)
from ..core.failures import clean_text, is_transport, sentence, server_text
from ..core.profiles import Profile
from .failures import failure_from_exception
from .sse import SSEDecoder, SSEMessage

__all__ = ["astream_chat", "aretry_without_stream"]


# -- chunks: whatever JSON a server sends, only strings become text ----------------

_MAX_CHOICES = 128  # OpenAI's bound on n; a larger index is garbage, not a column to make


def _text_of(value: Any) -> str:
    """The text of a content, reasoning or refusal field: a string, or its text parts joined."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):  # content as parts: [{"type": "text", "text": ...}, ...]
        return "".join(_text_of(part) for part in value if not isinstance(part, list))
    if isinstance(value, dict):
        text = value.get("text")
        return text if isinstance(text, str) else ""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return ""  # None, booleans, anything else: no text


def _count(value: Any) -> int:
    if isinstance(value, bool):
        return 0
    if isinstance(value, (int, float)):
        return max(0, int(value))
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return 0


def _chunk_events(payload: dict[str, Any], clean: bool = False) -> list[StreamEvent]:
    """The events of one chunk (or of a whole ``chat.completion``); ``clean``: replace lone
    surrogates (only a frame with a ``\\ud…`` escape can hold one)."""
    events: list[StreamEvent] = []
    choices = payload.get("choices")
    for choice in choices if isinstance(choices, list) else ():
        if not isinstance(choice, dict):
            continue
        index = choice.get("index")
        index = index if isinstance(index, int) and not isinstance(index, bool) else 0
        if not 0 <= index < _MAX_CHOICES:
            continue
        # A whole chat.completion has `message`; a chunk's `delta: {}` next to a full
        # `message` (seen from proxies) already sent that text piece by piece.
        delta = choice.get("delta")
        if delta is None:
            delta = choice.get("message")
        if not isinstance(delta, dict):
            delta = {}
        # Reasoning: DeepSeek, Qwen and llama.cpp say reasoning_content; vLLM >= 0.11 says
        # reasoning. (Each field is tested before _text_of is called: this runs once per token.)
        thought = delta.get("reasoning_content")
        thought = (thought if type(thought) is str else _text_of(thought)) if thought else ""
        if not thought:
            thought = delta.get("reasoning")
            thought = (thought if type(thought) is str else _text_of(thought)) if thought else ""
        if thought:
            events.append(ReasoningDelta(clean_text(thought) if clean else thought, index))
        # Empty strings are noise (the first chunk's role=assistant carries content="").
        text = delta.get("content")
        if text:
            if type(text) is not str:
                text = _text_of(text)
            if text:
                events.append(TextDelta(clean_text(text) if clean else text, index))
        refusal = delta.get("refusal")
        if refusal:
            refusal = refusal if type(refusal) is str else _text_of(refusal)
            if refusal:
                events.append(RefusalDelta(clean_text(refusal) if clean else refusal, index))
        calls = delta.get("tool_calls")
        if calls:
            events += _call_events(calls, index, clean)
        reason = choice.get("finish_reason")
        if reason:
            events.append(Finish(clean_text(str(reason)), index))
    usage = payload.get("usage")
    if isinstance(usage, dict):
        details = usage.get("completion_tokens_details")
        details = details if isinstance(details, dict) else {}
        events.append(Usage(_count(usage.get("prompt_tokens")),
                            _count(usage.get("completion_tokens")),
                            _count(usage.get("total_tokens")),
                            _count(details.get("reasoning_tokens")),
                            cached_tokens=_cached_tokens(usage),
                            cost=_reported_cost(usage.get("cost"))))
    return events


def _cached_tokens(usage: dict[str, Any]) -> int:
    """Prompt tokens served from the endpoint's cache: OpenAI's ``prompt_tokens_details``
    (also Qwen, Gemini, OpenRouter), else DeepSeek's ``prompt_cache_hit_tokens``."""
    details = usage.get("prompt_tokens_details")
    if isinstance(details, dict) and _count(details.get("cached_tokens")):
        return _count(details.get("cached_tokens"))
    return _count(usage.get("prompt_cache_hit_tokens"))


def _reported_cost(value: Any) -> float | None:
    """The endpoint's own figure for the request (a number, or a numeric string), else None."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        cost = float(value)
    except (TypeError, ValueError):
        return None
    return cost if cost >= 0 and cost == cost and cost != float("inf") else None


_MAX_CALLS = 128  # OpenAI's bound on tools; a larger index is garbage


def _call_events(calls: Any, choice: int, clean: bool) -> list[StreamEvent]:
    """The pieces of tool calls in one delta (or a whole message): each names its call by
    ``index`` (parallel calls interleave); a server that sends whole calls without one
    numbers them by position."""
    events: list[StreamEvent] = []
    for position, call in enumerate(calls if isinstance(calls, list) else ()):
        if not isinstance(call, dict):
            continue
        index = call.get("index")
        index = index if isinstance(index, int) and not isinstance(index, bool) else position
        function = call.get("function")
        function = function if isinstance(function, dict) else {}
        parts = [call.get("id"), function.get("name"), function.get("arguments")]
        if isinstance(parts[2], (dict, list)):  # a server that sends the object itself
            parts[2] = json.dumps(parts[2])
        id_, name, arguments = (p if isinstance(p, str) else "" for p in parts)
        if clean:
            id_, name, arguments = clean_text(id_), clean_text(name), clean_text(arguments)
        if 0 <= index < _MAX_CALLS and (id_ or name or arguments):
            events.append(ToolCallDelta(index, id_, name, arguments, choice))
    return events


def _may_hold_surrogates(text: str) -> bool:
    return "\\ud" in text or "\\uD" in text


def _snippet(text: str) -> str:
    return repr(clean_text(text[:200]))


# -- the stream ---------------------------------------------------------------------

class _Empty:
    """What `_sse_events` yields for a stream with no frames and no error (asked again)."""


_EMPTY = _Empty()


_decode = json.JSONDecoder().decode  # json.loads less its per-call checks: once per token


class _Frames:
    """Reads dispatched SSE messages into events, keeping what the stream said so far."""

    def __init__(self) -> None:
        self.count = 0
        self.finished = self.done = self.failed = False

    def read_all(self, messages: list[SSEMessage]) -> list[StreamEvent]:
        """The events of these messages, up to a failure or [DONE] (nothing after counts)."""
        if len(messages) == 1:
            return self.read(messages[0])
        events: list[StreamEvent] = []
        for message in messages:
            events += self.read(message)
            if self.failed or self.done:
                break
        return events

    def read(self, message: SSEMessage) -> list[StreamEvent]:
        text = message.data
        if message.event == "error":
            self.failed = True
            return [self._error(text)]
        if text[0] != "{" and text.lstrip().startswith("[DONE]"):
            self.done = True
            return []
        self.count += 1
        try:
            payload = _decode(text)
        except ValueError:
            self.failed = True
            return [StreamError(f"the endpoint sent a frame that is not JSON: {_snippet(text)}")]
        if not isinstance(payload, dict) or "error" in payload:
            said = server_text(payload)
            self.failed = True
            return [StreamError(f"the endpoint reported an error mid-stream: {said}", "server")
                    if said is not None else
                    StreamError(f"the endpoint sent a frame that is no chunk: {_snippet(text)}")]
        events = _chunk_events(payload, "\\ud" in text or "\\uD" in text)
        for event in events:
            if type(event) is Finish:
                self.finished = True
        return events

    def _error(self, text: str) -> StreamError:
        """An ``event: error``: its data is the error, or its message, or the text itself."""
        try:
            said = server_text(json.loads(text))
        except ValueError:
            said = None
        return StreamError(f"the endpoint reported an error mid-stream: "
                           f"{said or server_text(text)}", "server")


def _plain_body(lines: list[str]) -> list[StreamEvent]:
    """A body that was no SSE at all: a whole chat.completion, an error, or neither."""
    body = "\n".join(lines)
    try:
        payload = json.loads(body)
    except ValueError:
        return [StreamError(f"the endpoint answered with a plain body instead of a stream: "
                            f"{server_text(body)}")]
    if isinstance(payload, dict) and isinstance(payload.get("choices"), list) \
            and "error" not in payload:
        # Some servers answer a streamed request with the whole completion: that is the reply.
        return _chunk_events(payload, _may_hold_surrogates(body))
    said = server_text(payload)
    if said is None:
        return [StreamError(f"the endpoint answered with a body that is neither a stream nor "
                            f"an error: {_snippet(body)}")]
    return [StreamError(f"the endpoint answered with a plain body instead of a stream: {said}",
                        "server")]


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


async def _sse_events(response: Any) -> AsyncIterator[StreamEvent | _Empty]:
    """The events of a streamed chat completion, read from the response's raw bytes."""
    decoder = SSEDecoder()
    frames = _Frames()
    silence = _Silence()
    async for chunk in response.iter_bytes():
        for event in frames.read_all(decoder.feed(chunk)):
            for passed in silence.pass_on(event):
                yield passed
        if frames.failed or frames.done:
            break
    else:
        for event in frames.read_all(decoder.end()):
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
            events = _plain_body(decoder.stray)
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
                          f"{server_text(body) or _snippet(body)}")
        return
    said = server_text(payload) if not isinstance(payload, dict) or "error" in payload else None
    if said is not None or not isinstance(payload, dict):
        # one-api/new-api pass upstream failures through with HTTP 200 and {"error": ...}
        yield StreamError(f"the endpoint answered HTTP 200 with an error: {said}", "server")
        return
    events = _chunk_events(payload, _may_hold_surrogates(body))
    if not any(isinstance(e, Finish) for e in events):
        yield StreamError("the endpoint's reply has no choices")
        return
    header_cost = _reported_cost(raw.http_response.headers.get("x-litellm-response-cost"))
    for event in events:
        if isinstance(event, Usage) and event.cost is None and header_cost is not None:
            # LiteLLM's proxy says the cost in a header. Only here: a streamed reply's
            # headers leave before the reply exists, so they cannot hold its whole cost.
            event = replace(event, cost=header_cost)
        yield event


@dataclass(frozen=True)
class _Failed:
    """An SDK exception on its way to becoming a StreamError (which names the endpoint)."""

    exc: Exception


async def _events(client: openai.AsyncOpenAI, request: dict[str, Any],
                  ) -> AsyncIterator[StreamEvent | _Failed | _Empty]:
    try:
        if request.get("stream"):
            async with client.chat.completions.with_streaming_response.create(**request) as resp:
                async for event in _sse_events(resp):
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
                              f"{clean_text(str(exc))[:200]})")


def _failure(event: StreamError | _Failed, profile: Profile, request: dict[str, Any],
             ) -> StreamError:
    if isinstance(event, _Failed):
        return failure_from_exception(event.exc, profile, str(request.get("model")),
                                      request.get("timeout"))
    # Every failure names its endpoint (the base URL, never the key).
    return replace(event, message=sentence(clean_text(
        f"{profile.name} ({profile.base_url}): {event.message}")))


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
    empty = False
    async for event in _events(client, request):
        if isinstance(event, _Empty):
            empty = True
        elif isinstance(event, (StreamError, _Failed)):
            yield _failure(event, profile, request)
        else:
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
    async for event in _events(client, plain):
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
