"""One request's reply as a narrow stream of events, and the reply they build.

`astream_chat` sends one Chat Completions request through the openai SDK and
yields `TextDelta`, `ReasoningDelta`, `RefusalDelta`, `Usage`, `Finish` and, on
any failure, one final `StreamError`. It reads the server-sent events itself
(the SDK still sends, retries and raises HTTP errors) because the SDK stays
silent on what gateways get wrong: an HTTP-200 error body, a JSON error body
labelled ``text/event-stream``, a stream that just stops. `Reply` folds the
events into what the renderer, the history and the usage counter read.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Union

import openai

from .profiles import Profile

__all__ = ["TextDelta", "ReasoningDelta", "RefusalDelta", "Usage", "Finish", "StreamError",
           "StreamEvent", "Reply", "astream_chat", "describe_exception", "estimate_tokens"]


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
class StreamError:
    message: str


StreamEvent = Union[TextDelta, ReasoningDelta, RefusalDelta, Usage, Finish, StreamError]


def estimate_tokens(text: str) -> int:
    """A rough token count (about 4 characters a token) for endpoints that report none."""
    return max(1, round(len(text) / 4)) if text else 0


@dataclass
class _Choice:
    text: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    refusal: list[str] = field(default_factory=list)
    finish: str | None = None


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
    error: str | None = None
    interrupted: bool = False
    prompt_estimate: int = 0  # used when the endpoint reports no usage
    choices: list[_Choice] = field(default_factory=lambda: [_Choice()])

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
            self.error = event.message

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


# -- the request ---------------------------------------------------------------

def _chunk_events(payload: dict[str, Any]) -> list[StreamEvent]:
    events: list[StreamEvent] = []
    for choice in payload.get("choices") or ():
        index = int(choice.get("index") or 0)
        delta = choice.get("delta") or choice.get("message") or {}
        # Reasoning: DeepSeek, Qwen and llama.cpp say reasoning_content; vLLM >= 0.11 says reasoning.
        thought = delta.get("reasoning_content") or delta.get("reasoning")
        if thought:
            events.append(ReasoningDelta(thought, index))
        # Empty strings are noise (the first chunk's role=assistant carries content="").
        if delta.get("content"):
            events.append(TextDelta(delta["content"], index))
        if delta.get("refusal"):
            events.append(RefusalDelta(delta["refusal"], index))
        if choice.get("finish_reason"):
            events.append(Finish(str(choice["finish_reason"]), index))
    usage = payload.get("usage")
    if isinstance(usage, dict):
        details = usage.get("completion_tokens_details") or {}
        events.append(Usage(int(usage.get("prompt_tokens") or 0),
                            int(usage.get("completion_tokens") or 0),
                            int(usage.get("total_tokens") or 0),
                            int(details.get("reasoning_tokens") or 0)))
    return events


def _error_text(body: Any) -> str | None:
    """The server's own error message from a JSON body of any common shape."""
    if isinstance(body, list) and body:  # Gemini sends a list of error objects
        return _error_text(body[0])
    if isinstance(body, dict):
        error = body.get("error", body if "message" in body else None)
        if isinstance(error, dict):
            return str(error.get("message") or error.get("msg") or json.dumps(error))
        if isinstance(error, str):
            return error
    if isinstance(body, str) and body.strip():
        return body.strip()[:500]
    return None


def _is_transport(exc: BaseException) -> bool:
    """An HTTP-layer error (httpx for openai 1.x, httpx2 for 3.x) the SDK did not wrap."""
    return type(exc).__module__.split(".")[0] in ("httpx", "httpx2", "httpcore", "httpcore2")


def describe_exception(exc: BaseException, profile: Profile, model: str,
                       timeout: float | None = None) -> str:
    """One message for a failed request: what happened, where, what to do. Never a key."""
    where = f"{profile.name} ({profile.base_url})"
    transport = _is_transport(exc)
    if isinstance(exc, openai.APITimeoutError) or (transport and "Timeout" in type(exc).__name__):
        limit = f" within {timeout:g} s" if timeout else ""
        return (f"No answer from {where}{limit}: the endpoint is slow or stalled. "
                "Try again, or raise --timeout.")
    if isinstance(exc, openai.APIConnectionError):
        return (f"Cannot reach {where}: is the server running and the base_url right? "
                f"({type(exc.__cause__ or exc).__name__})")
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        said = _error_text(exc.body) or exc.message
        advice = {
            401: (f"check the key (set {profile.api_key_env})" if profile.api_key_env
                  else "check the profile's key"),
            403: "the key lacks access to this model or endpoint",
            404: (f"check the model id '{model}' (%models lists what {profile.name} serves)"
                  if model else "check the profile's base_url"),
            429: "rate limited after retries: wait a little, or send fewer requests at once",
        }.get(status, "the endpoint failed: try again later" if status >= 500 else
              "check the options sent")
        return f"{where} answered HTTP {status}: {said} — {advice}."
    if transport:  # raised while reading the body, which the SDK does not wrap
        return (f"The connection to {where} broke during the reply ({type(exc).__name__}): "
                "try again.")
    if isinstance(exc, openai.OpenAIError):
        return f"Request to {where} failed: {exc}"
    return f"Request to {where} failed: {type(exc).__name__}: {exc}"


async def _sse_events(response: Any) -> AsyncIterator[StreamEvent]:
    """Parse the SSE lines of a streamed chat completion into events."""
    data: list[str] = []
    stray: list[str] = []
    seen_finish = done = False
    frames = 0
    async for line in response.iter_lines():
        if line.startswith("data:"):
            data.append(line[5:].lstrip())
            continue
        if line and not line.startswith((":", "event:", "id:", "retry:")):
            stray.append(line)  # not SSE at all: a gateway's JSON body labelled event-stream
            continue
        if line or not data:
            continue  # a comment (DeepSeek's ": keep-alive") or a field we do not need
        text = "\n".join(data)
        data.clear()
        if text.startswith("[DONE]"):
            done = True
            break
        frames += 1
        try:
            payload = json.loads(text)
        except ValueError:
            yield StreamError(f"the endpoint sent a frame that is not JSON: {text[:200]!r}")
            return
        said = _error_text(payload) if isinstance(payload, dict) and "error" in payload else None
        if said is not None:
            yield StreamError(f"the endpoint reported an error mid-stream: {said}")
            return
        for event in _chunk_events(payload):
            seen_finish = seen_finish or isinstance(event, Finish)
            yield event
    if stray and not frames:
        try:
            said = _error_text(json.loads("\n".join(stray)))
        except ValueError:
            said = "\n".join(stray)[:300]
        yield StreamError(f"the endpoint answered with a plain body instead of a stream: {said}")
    elif not frames:
        yield StreamError("the endpoint returned an empty stream: check the gateway or model")
    elif not (seen_finish or done):
        yield StreamError("the stream ended before the reply finished (no finish_reason, "
                          "no [DONE]): the connection dropped or the server stopped")


async def astream_chat(client: openai.AsyncOpenAI, request: dict[str, Any], profile: Profile,
                       ) -> AsyncIterator[StreamEvent]:
    """Send one request; yield its events, ending in at most one StreamError.

    With ``request["stream"]`` false the whole reply arrives at once and is
    yielded as the same events. Closing the generator closes the HTTP response.
    """
    model = str(request.get("model"))
    timeout = request.get("timeout")
    async for event in _events(client, request):
        if isinstance(event, _Failed):
            yield StreamError(describe_exception(event.exc, profile, model, timeout))
        elif isinstance(event, StreamError):
            # Every failure names its endpoint (the base URL, never the key).
            yield StreamError(f"{profile.name} ({profile.base_url}): {event.message}")
        else:
            yield event


@dataclass(frozen=True)
class _Failed:
    """An SDK exception on its way to becoming a StreamError (which names the endpoint)."""

    exc: Exception


async def _events(client: openai.AsyncOpenAI, request: dict[str, Any],
                  ) -> AsyncIterator[StreamEvent | _Failed]:
    try:
        if request.get("stream"):
            async with client.chat.completions.with_streaming_response.create(**request) as resp:
                async for event in _sse_events(resp):
                    yield event
            return
        raw = await client.chat.completions.with_raw_response.create(**request)
        try:
            payload = raw.http_response.json()
        except ValueError:
            yield StreamError(f"the endpoint answered with a body that is not JSON: "
                              f"{raw.http_response.text[:300]!r}")
            return
        said = _error_text(payload) if not isinstance(payload, dict) or "error" in payload else None
        if said is not None or not isinstance(payload, dict):
            # one-api/new-api pass upstream failures through with HTTP 200 and {"error": ...}
            yield StreamError(f"the endpoint answered HTTP 200 with an error: {said}")
            return
        events = _chunk_events(payload)
        if not any(isinstance(e, Finish) for e in events):
            yield StreamError("the endpoint's reply has no choices")
            return
        for event in events:
            yield event
    except openai.OpenAIError as exc:
        yield _Failed(exc)
    except Exception as exc:  # noqa: BLE001 - transport errors while reading the stream
        if not _is_transport(exc):
            raise
        yield _Failed(exc)
