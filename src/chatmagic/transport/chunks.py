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
from dataclasses import replace
from typing import Any

from ..core.events import (Finish, ReasoningDelta, RefusalDelta, StreamError, StreamEvent,
                          TextDelta, ToolCallDelta, Usage)
from ..core.failures import no_lone_surrogates, server_text
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


#: More tokens than any request can use: a figure past it is garbage, not a count to price.
_MAX_TOKENS = 2**53
#: More dollars than one request can cost: a figure past it is garbage, not a price.
_MAX_COST = 1e9


def _details_text(details: Any) -> str:
    """The readable reasoning of OpenRouter's ``reasoning_details``: its ``reasoning.text``
    and ``reasoning.summary`` entries (``reasoning.encrypted`` is for the model only)."""
    parts = []
    for entry in details if isinstance(details, list) else ():
        if isinstance(entry, dict):
            kind = entry.get("type")
            said = entry.get("text") if kind == "reasoning.text" else \
                entry.get("summary") if kind == "reasoning.summary" else None
            parts.append(said if isinstance(said, str) else "")
    return "".join(parts)


def _thinking_text(parts: list[Any]) -> str:
    """The text of Magistral's ``{"type": "thinking", "thinking": [text parts]}`` content
    parts (`_text_of` reads the content's other parts, which carry ``text``)."""
    return "".join(_text_of(part.get("thinking")) for part in parts
                   if isinstance(part, dict) and part.get("type") == "thinking")


def _count(value: Any) -> int | None:
    """A token figure; None when it is no count (NaN, Infinity, 1e400, a huge number)."""
    if isinstance(value, bool) or value is None:
        return 0
    if isinstance(value, str):
        value = value.strip()
        if not (value.isascii() and value.isdigit() and len(value) < 20):
            return None if value else 0
        value = int(value)
    if isinstance(value, (int, float)):
        # JSON's NaN, Infinity and 1e400 (a float inf) parse; int() of them raises.
        if value != value or not -_MAX_TOKENS < value < _MAX_TOKENS:
            return None
        return max(0, int(value))
    return 0


def _usage_event(usage: dict[str, Any]) -> Usage | None:
    """The usage a chunk reports; None when its token figures are no numbers (the reply then
    counts as one whose endpoint reported none: its tokens are estimated, marked so)."""
    details = usage.get("completion_tokens_details")
    details = details if isinstance(details, dict) else {}
    prompt, completion, total = (_count(usage.get(name)) for name in
                                 ("prompt_tokens", "completion_tokens", "total_tokens"))
    if prompt is None or completion is None or total is None:
        return None
    return Usage(prompt, completion, total, _count(details.get("reasoning_tokens")) or 0,
                 cached_tokens=_cached_tokens(usage),
                 cost=reported_cost(usage.get("cost")))


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
        if not thought and delta.get("reasoning_details"):
            thought = _details_text(delta["reasoning_details"])  # OpenRouter's, alone
        # Empty strings are noise (the first chunk's role=assistant carries content="").
        text = delta.get("content")
        if text and type(text) is list:  # Magistral: thinking parts before the text parts
            thought += _thinking_text(text)
        if thought:
            events.append(ReasoningDelta(no_lone_surrogates(thought) if clean else thought, index))
        if text:
            if type(text) is not str:
                text = _text_of(text)
            if text:
                events.append(TextDelta(no_lone_surrogates(text) if clean else text, index))
        refusal = delta.get("refusal")
        if refusal:
            refusal = refusal if type(refusal) is str else _text_of(refusal)
            if refusal:
                events.append(RefusalDelta(no_lone_surrogates(refusal) if clean else refusal,
                                           index))
        calls = delta.get("tool_calls")
        if calls:
            events += _call_events(calls, index, clean)
        reason = choice.get("finish_reason")
        if reason:
            events.append(Finish(no_lone_surrogates(str(reason)), index))
    usage = payload.get("usage")
    if isinstance(usage, dict):
        counted = _usage_event(usage)
        if counted is not None:
            events.append(counted)
    return events


def _cached_tokens(usage: dict[str, Any]) -> int:
    """Prompt tokens served from the endpoint's cache: OpenAI's ``prompt_tokens_details``
    (also Qwen, Gemini, OpenRouter), else DeepSeek's ``prompt_cache_hit_tokens``."""
    details = usage.get("prompt_tokens_details")
    if isinstance(details, dict) and _count(details.get("cached_tokens")):
        return _count(details.get("cached_tokens")) or 0
    return _count(usage.get("prompt_cache_hit_tokens")) or 0


def reported_cost(value: Any) -> float | None:
    """The endpoint's own figure for the request (a number, or a numeric string), else None."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        cost = float(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: an int of 400 digits
        return None
    return cost if 0 <= cost < _MAX_COST else None  # NaN fails both comparisons


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
            id_, name, arguments = (no_lone_surrogates(id_), no_lone_surrogates(name),
                                    no_lone_surrogates(arguments))
        if 0 <= index < _MAX_CALLS and (id_ or name or arguments):
            events.append(ToolCallDelta(index, id_, name, arguments, choice))
    return events


def may_hold_surrogates(text: str) -> bool:
    """Whether JSON text can decode to a lone surrogate (only a ``\\ud…`` escape makes one)."""
    return "\\ud" in text or "\\uD" in text


def snippet(text: str) -> str:
    """The start of a text a server sent, as a short printable quote for a message."""
    return repr(no_lone_surrogates(text[:200]))


# -- SSE messages: one chunk each, up to [DONE] or a failure --------------------------

_decode = json.JSONDecoder().decode  # json.loads less its per-call checks: once per token


_Piece = TextDelta | ReasoningDelta | RefusalDelta | ToolCallDelta


class _Halves:
    """Surrogate pairs a server split across two chunks (``\\ud83d`` ending one delta,
    ``\\ude00`` starting the next, as a UTF-16 tokenizer can): a high half ending a piece
    is held back and joined to the low half that starts the next piece of the same text;
    a half left alone (its choice finished, or the stream ended: `flush`) becomes U+FFFD
    (the kernel cannot send one)."""

    def __init__(self) -> None:
        #: (kind, choice, call index) -> the piece whose text ended in a held high half
        self.held: dict[tuple[type, int, int], _Piece] = {}

    def join(self, events: list[StreamEvent]) -> list[StreamEvent]:
        out: list[StreamEvent] = []
        for event in events:
            if isinstance(event, (TextDelta, ReasoningDelta, RefusalDelta, ToolCallDelta)):
                joined = self._piece(event)
                if joined is not None:
                    out.append(joined)
                continue
            if isinstance(event, Finish):  # this choice says no more: its held halves are lone
                for key in [k for k in self.held if k[1] == event.choice]:
                    out.append(_lone(self.held.pop(key)))
            out.append(event)
        return out

    def flush(self) -> list[StreamEvent]:
        """Every half still held, as U+FFFD: the stream ended before its pair came."""
        held, self.held = self.held, {}
        return [_lone(piece) for piece in held.values()]

    def _piece(self, event: _Piece) -> _Piece | None:
        call = event.index if isinstance(event, ToolCallDelta) else -1
        key = (type(event), event.choice, call)
        text = _text(event)
        held = self.held.pop(key, None)
        if held is not None:
            if not text:
                self.held[key] = held  # a piece with nothing to join (a call's id): hold on
            elif "\udc00" <= text[0] <= "\udfff":
                pair = _text(held)[-1] + text[0]
                text = pair.encode("utf-16-le", "surrogatepass").decode("utf-16-le") + text[1:]
            else:
                text = "\ufffd" + text
        if text and "\ud800" <= text[-1] <= "\udbff":
            self.held[key] = event
            text = text[:-1]
        if not text and not isinstance(event, ToolCallDelta):
            return None
        if not isinstance(event, ToolCallDelta):
            return replace(event, text=no_lone_surrogates(text))
        piece = replace(event, id=no_lone_surrogates(event.id), name=no_lone_surrogates(event.name),
                        arguments=no_lone_surrogates(text))
        return piece if piece.id or piece.name or piece.arguments else None


def _text(piece: _Piece) -> str:
    return piece.arguments if isinstance(piece, ToolCallDelta) else piece.text


def _lone(piece: _Piece) -> _Piece:
    """The U+FFFD a held half becomes when its pair never comes."""
    if isinstance(piece, ToolCallDelta):
        return ToolCallDelta(piece.index, arguments="\ufffd", choice=piece.choice)
    return replace(piece, text="\ufffd")


class Frames:
    """Reads dispatched SSE messages into events, keeping what the stream said so far."""

    def __init__(self) -> None:
        self.count = 0
        self.finished = self.done = self.failed = False
        self._halves = _Halves()

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
            return self._halves.flush()
        self.count += 1
        try:
            payload = _decode(text)
        except ValueError:
            self.failed = True
            return [StreamError(f"the endpoint sent a frame that is not JSON: {snippet(text)}")]
        if not isinstance(payload, dict) or "error" in payload:
            said = server_text(payload)
            self.failed = True
            when = " mid-stream" if self.count > 1 else ""  # chunks came before this frame
            return [StreamError(f"the endpoint reported an error{when}: {said}", "server")
                    if said is not None else
                    StreamError(f"the endpoint sent a frame that is no chunk: {snippet(text)}")]
        if "\\ud" in text or "\\uD" in text or self._halves.held:
            events = self._halves.join(chunk_events(payload))
        else:
            events = chunk_events(payload)
        for event in events:
            if type(event) is Finish:
                self.finished = True
        return events

    def end(self) -> list[StreamEvent]:
        """The events left when the body ends without [DONE]: a half still held, as U+FFFD."""
        return [] if self.failed else self._halves.flush()

    def _error(self, text: str) -> StreamError:
        """An ``event: error``: its data is the error, or its message, or the text itself."""
        try:
            said = server_text(json.loads(text))
        except ValueError:
            said = None
        when = " mid-stream" if self.count else ""  # chunks came before this frame
        return StreamError(f"the endpoint reported an error{when}: "
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

