"""A server's JSON as events: whatever a chunk holds, only strings become text.

`chunk_events` reads one ``chat.completion.chunk`` (or a whole
``chat.completion``) into `TextDelta`, `ReasoningDelta`, `RefusalDelta`,
`ToolCallDelta`, `Finish` and `Usage` values, whatever types the fields
arrive as. `Frames` reads the stream's dispatched SSE messages (from
`chatmagic.transport.sse`) one chunk each, up to ``[DONE]`` or a frame that
is an error; `plain_body` reads a body that was no stream at all. Nothing
here sends or awaits: `chatmagic.transport.stream` drives it.
"""

from __future__ import annotations

import json
from typing import Any

from ..core.events import (Finish, ReasoningDelta, RefusalDelta, StreamError, StreamEvent,
                          TextDelta, ToolCallDelta, Usage)
from ..core.failures import clean_text, server_text
from .sse import SSEMessage

__all__ = ["chunk_events", "reported_cost", "may_hold_surrogates", "snippet", "Frames",
           "plain_body"]

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


def chunk_events(payload: dict[str, Any], clean: bool = False) -> list[StreamEvent]:
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
                            cost=reported_cost(usage.get("cost"))))
    return events


def _cached_tokens(usage: dict[str, Any]) -> int:
    """Prompt tokens served from the endpoint's cache: OpenAI's ``prompt_tokens_details``
    (also Qwen, Gemini, OpenRouter), else DeepSeek's ``prompt_cache_hit_tokens``."""
    details = usage.get("prompt_tokens_details")
    if isinstance(details, dict) and _count(details.get("cached_tokens")):
        return _count(details.get("cached_tokens"))
    return _count(usage.get("prompt_cache_hit_tokens"))


def reported_cost(value: Any) -> float | None:
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


def may_hold_surrogates(text: str) -> bool:
    """Whether JSON text can decode to a lone surrogate (only a ``\\ud…`` escape makes one)."""
    return "\\ud" in text or "\\uD" in text


def snippet(text: str) -> str:
    """The start of a text a server sent, as a short printable quote for a message."""
    return repr(clean_text(text[:200]))


# -- SSE messages: one chunk each, up to [DONE] or a failure --------------------------

_decode = json.JSONDecoder().decode  # json.loads less its per-call checks: once per token


class Frames:
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
            return [StreamError(f"the endpoint sent a frame that is not JSON: {snippet(text)}")]
        if not isinstance(payload, dict) or "error" in payload:
            said = server_text(payload)
            self.failed = True
            return [StreamError(f"the endpoint reported an error mid-stream: {said}", "server")
                    if said is not None else
                    StreamError(f"the endpoint sent a frame that is no chunk: {snippet(text)}")]
        events = chunk_events(payload, "\\ud" in text or "\\uD" in text)
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


def plain_body(lines: list[str]) -> list[StreamEvent]:
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
        return chunk_events(payload, may_hold_surrogates(body))
    said = server_text(payload)
    if said is None:
        return [StreamError(f"the endpoint answered with a body that is neither a stream nor "
                            f"an error: {snippet(body)}")]
    return [StreamError(f"the endpoint answered with a plain body instead of a stream: {said}",
                        "server")]

