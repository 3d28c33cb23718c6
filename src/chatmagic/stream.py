"""One request's reply as a narrow stream of events, and the reply they build.

`astream_chat` sends one Chat Completions request through the openai SDK and
yields `TextDelta`, `ReasoningDelta`, `RefusalDelta`, `Usage`, `Finish`,
`Note` and, on any failure, one final `StreamError`. It reads the server-sent
events from the raw bytes itself (`chatmagic.sse`; the SDK still sends,
retries and raises HTTP errors) because the SDK stays silent on what gateways
get wrong (an HTTP-200 error body, a JSON body labelled ``text/event-stream``,
a stream that just stops) and because ``iter_lines`` splits lines where SSE
does not. Whatever bytes arrive, the result is events, never a traceback.
`Reply` folds the events into what the renderer, the history and the usage
counter read.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, replace
from typing import Any, AsyncIterator, Union

import openai

from .failures import (StreamError, clean_text, describe_exception, failure_from_exception,
                       is_transport, sentence, server_text)
from .profiles import Profile
from .sse import SSEDecoder, SSEMessage

__all__ = ["TextDelta", "ReasoningDelta", "RefusalDelta", "Usage", "Finish", "Note",
           "StreamError", "StreamEvent", "Reply", "astream_chat", "describe_exception",
           "estimate_tokens"]


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str
    choice: int = 0


@dataclass(frozen=True, slots=True)
class ReasoningDelta:
    text: str
    choice: int = 0


@dataclass(frozen=True, slots=True)
class RefusalDelta:
    text: str
    choice: int = 0


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    reasoning_tokens: int = 0
    estimated: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "total_tokens": self.total_tokens, "reasoning_tokens": self.reasoning_tokens,
                "estimated": self.estimated}


@dataclass(frozen=True, slots=True)
class Finish:
    reason: str
    choice: int = 0


@dataclass(frozen=True, slots=True)
class Note:
    """Something done to get this reply that its reader should know (shown in the footer)."""

    text: str


StreamEvent = Union[TextDelta, ReasoningDelta, RefusalDelta, Usage, Finish, Note, StreamError]


def estimate_tokens(text: str) -> int:
    """A rough token count (about 4 characters a token) for endpoints that report none."""
    return max(1, round(len(text) / 4)) if text else 0


@dataclass
class _Choice:
    text: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    refusal: list[str] = field(default_factory=list)
    finish: str | None = None


_INTERRUPTED = StreamError("stopped: the reply is incomplete", "interrupted")


@dataclass
class Reply:
    """Everything one model said for one request, as it arrives."""

    model: str
    profile: str
    endpoint: str
    started: float = field(default_factory=time.perf_counter)
    first_token: float | None = None
    ended: float | None = None
    usage: Usage | None = None
    interrupted: bool = False
    prompt_estimate: int = 0  # used when the endpoint reports no usage
    choices: list[_Choice] = field(default_factory=lambda: [_Choice()])
    notes: list[str] = field(default_factory=list)  # what was done to get it (footer words)
    endpoint_failure: StreamError | None = None

    @property
    def failure(self) -> StreamError | None:
        """Why the reply is incomplete, as data: the endpoint's failure, else a stop here."""
        if self.endpoint_failure is None and self.interrupted:
            return _INTERRUPTED
        return self.endpoint_failure

    @property
    def error(self) -> str | None:
        """The message of the endpoint's failure (a stop here is `interrupted`, not an error)."""
        return None if self.endpoint_failure is None else self.endpoint_failure.message

    @error.setter
    def error(self, message: str | None) -> None:
        self.endpoint_failure = None if message is None else StreamError(message)

    def _choice(self, index: int) -> _Choice:
        while index >= len(self.choices):
            self.choices.append(_Choice())
        return self.choices[index]

    def feed(self, event: StreamEvent) -> None:
        """Fold one event into the reply."""
        if isinstance(event, (TextDelta, ReasoningDelta, RefusalDelta)):
            if self.first_token is None:
                self.first_token = time.perf_counter()
            choice = self._choice(event.choice)
            parts = (choice.text if isinstance(event, TextDelta) else
                     choice.reasoning if isinstance(event, ReasoningDelta) else choice.refusal)
            parts.append(event.text)
        elif isinstance(event, Finish):
            self._choice(event.choice).finish = event.reason
        elif isinstance(event, Usage):
            self.usage = event
        elif isinstance(event, StreamError):
            self.endpoint_failure = event
        elif isinstance(event, Note):
            self.notes.append(event.text)

    def close(self, *, interrupted: bool = False) -> None:
        self.ended = time.perf_counter()
        self.interrupted = self.interrupted or interrupted
        if self.usage is None and not self.error and not interrupted:
            done = sum(estimate_tokens("".join(c.text + c.reasoning + c.refusal))
                       for c in self.choices)
            self.usage = Usage(self.prompt_estimate, done, self.prompt_estimate + done,
                               estimated=True)

    # -- what readers ask ----------------------------------------------------
    def text_parts(self, choice: int = 0) -> list[str]:
        """The text pieces of one choice as they arrived (renderers read new ones by index)."""
        return self._choice(choice).text

    def text(self, choice: int = 0) -> str:
        return "".join(self._choice(choice).text)

    def reasoning(self, choice: int = 0) -> str:
        return "".join(self._choice(choice).reasoning)

    def refusal(self, choice: int = 0) -> str:
        return "".join(self._choice(choice).refusal)

    def finish_reason(self, choice: int = 0) -> str | None:
        return self._choice(choice).finish

    @property
    def complete(self) -> bool:
        """Finished normally: a finish reason, no error, not interrupted."""
        return (not self.error and not self.interrupted
                and all(c.finish is not None for c in self.choices))

    @property
    def ttft(self) -> float | None:
        return None if self.first_token is None else self.first_token - self.started

    @property
    def elapsed(self) -> float:
        return (self.ended or time.perf_counter()) - self.started

    def tokens_per_second(self) -> float | None:
        if self.usage is None or self.first_token is None or self.ended is None:
            return None
        span = self.ended - self.first_token
        # A reply that arrived in one burst has no meaningful speed.
        return self.usage.completion_tokens / span if span > 0.05 else None


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
        # Reasoning: DeepSeek, Qwen and llama.cpp say reasoning_content; vLLM >= 0.11 says reasoning.
        thought = _text_of(delta.get("reasoning_content")) or _text_of(delta.get("reasoning"))
        if thought:
            events.append(ReasoningDelta(clean_text(thought) if clean else thought, index))
        # Empty strings are noise (the first chunk's role=assistant carries content="").
        content = delta.get("content")
        text = content if isinstance(content, str) else _text_of(content)
        if text:
            events.append(TextDelta(clean_text(text) if clean else text, index))
        refusal = _text_of(delta.get("refusal"))
        if refusal:
            events.append(RefusalDelta(clean_text(refusal) if clean else refusal, index))
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
                            _count(details.get("reasoning_tokens"))))
    return events


def _may_hold_surrogates(text: str) -> bool:
    return "\\ud" in text or "\\uD" in text


def _snippet(text: str) -> str:
    return repr(clean_text(text[:200]))


# -- the stream ---------------------------------------------------------------------

class _Empty:
    """What `_sse_events` yields for a stream with no frames and no error (asked again)."""


_EMPTY = _Empty()


class _Frames:
    """Reads dispatched SSE messages into events, keeping what the stream said so far."""

    def __init__(self) -> None:
        self.count = 0
        self.finished = self.done = self.failed = False

    def read(self, message: SSEMessage) -> list[StreamEvent]:
        text = message.data
        if message.event == "error":
            self.failed = True
            return [self._error(text)]
        if text.lstrip().startswith("[DONE]"):
            self.done = True
            return []
        self.count += 1
        try:
            payload = json.loads(text)
        except ValueError:
            self.failed = True
            return [StreamError(f"the endpoint sent a frame that is not JSON: {_snippet(text)}")]
        if not isinstance(payload, dict) or "error" in payload:
            said = server_text(payload)
            self.failed = True
            return [StreamError(f"the endpoint reported an error mid-stream: {said}", "server")
                    if said is not None else
                    StreamError(f"the endpoint sent a frame that is no chunk: {_snippet(text)}")]
        events = _chunk_events(payload, _may_hold_surrogates(text))
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


async def _sse_events(response: Any) -> AsyncIterator[StreamEvent | _Empty]:
    """The events of a streamed chat completion, read from the response's raw bytes."""
    decoder = SSEDecoder()
    frames = _Frames()
    ended = False
    async for chunk in response.iter_bytes():
        for message in decoder.feed(chunk):
            for event in frames.read(message):
                yield event
            if frames.failed:
                return
            if frames.done:
                break
        if frames.done:
            break
    else:
        ended = True
    if ended:
        for message in decoder.end():
            for event in frames.read(message):
                yield event
            if frames.failed:
                return
            if frames.done:
                break
    if frames.failed:
        return
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
    for event in events:
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


async def astream_chat(client: openai.AsyncOpenAI, request: dict[str, Any], profile: Profile,
                       ) -> AsyncIterator[StreamEvent]:
    """Send one request; yield its events, ending in at most one StreamError.

    With ``request["stream"]`` false the whole reply arrives at once and is
    yielded as the same events. A stream with nothing in it is asked again
    once without streaming (llama-cpp-python answers a prompt past its context
    so; only without streaming does it say why). Closing the generator closes
    the HTTP response.
    """
    model = str(request.get("model"))
    timeout = request.get("timeout")

    def failure(event: StreamError | _Failed) -> StreamError:
        if isinstance(event, _Failed):
            return failure_from_exception(event.exc, profile, model, timeout)
        # Every failure names its endpoint (the base URL, never the key).
        return replace(event, message=sentence(clean_text(
            f"{profile.name} ({profile.base_url}): {event.message}")))

    empty = False
    async for event in _events(client, request):
        if isinstance(event, _Empty):
            empty = True
        elif isinstance(event, (StreamError, _Failed)):
            yield failure(event)
        else:
            yield event
    if not empty:
        return
    plain = {k: v for k, v in request.items() if k not in ("stream", "stream_options")}
    noted = False
    async for event in _events(client, plain):
        if isinstance(event, (StreamError, _Failed)):
            said = failure(event)
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
