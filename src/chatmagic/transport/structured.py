"""A schema on the wire: into the request the way the endpoint takes it, and out of the reply.

`shape_request` puts a `Schema` into a request body for a mode (``json_schema``,
``json_object`` or ``none``, see `chatmagic.core.schema.MODES`); `refuses_mode`
tells a failure that is the endpoint refusing that mode (llama-cpp-python answers
``json_schema`` with HTTP 500 "Input should be 'text' or 'json_object'"; LiteLLM
passes that on), which the exchange engine then asks again the next way.
`aread_parsed` reads the reply at its end into a `Parsed` value, or a
`StreamError` of kind ``invalid_output`` naming the first problem (the text
stays where it is: in the reply, the cell and the history).
"""

from __future__ import annotations

from typing import Any, AsyncIterator

from ..core.events import (Finish, Parsed, RefusalDelta, StreamError, StreamEvent, TextDelta,
                           ToolCallDelta)
from ..core.failures import sentence
from ..core.errors import InvalidOutput
from ..core.schema import Schema

__all__ = ["shape_request", "aread_parsed", "refuses_mode"]


def _last_user(messages: list[dict[str, Any]]) -> int | None:
    """The index of the last user message, if any."""
    return next((i for i in range(len(messages) - 1, -1, -1)
                 if messages[i].get("role") == "user"), None)


def _with_instruction(messages: list[dict[str, Any]], words: str) -> list[dict[str, Any]]:
    """The messages with ``words`` after the last user message's text (not as a system
    message: some chat formats, llama-cpp-python's gemma one, drop it)."""
    i = _last_user(messages)
    if i is None:
        return [*messages, {"role": "user", "content": words}]
    out, message = list(messages), dict(messages[i])
    content = message.get("content")
    if isinstance(content, list):
        message["content"] = [*content, {"type": "text", "text": words}]
    else:
        message["content"] = f"{content or ''}\n\n{words}"
    out[i] = message
    return out


def _without_instruction(messages: list[dict[str, Any]], words: str) -> list[dict[str, Any]]:
    """The messages as they were before `_with_instruction` (a request reshaped for another
    mode asks once, not twice)."""
    i = _last_user(messages)
    if i is None:
        return list(messages)
    out, message = list(messages), dict(messages[i])
    content = message.get("content")
    if isinstance(content, list) and content and content[-1] == {"type": "text", "text": words}:
        message["content"] = content[:-1]
    elif isinstance(content, str) and content.endswith(f"\n\n{words}"):
        message["content"] = content[:-len(words) - 2]
    out[i] = message
    return out


def shape_request(request: dict[str, Any], schema: Schema, mode: str) -> dict[str, Any]:
    """The request asking for ``schema`` the ``mode`` way (a new dict; messages copied)."""
    shaped = {k: v for k, v in request.items() if k != "response_format"}
    fmt = schema.response_format(mode)
    if fmt is not None:
        shaped["response_format"] = fmt
    words = schema.instruction()
    messages = _without_instruction(list(request.get("messages") or []), words)
    if mode != "json_schema":
        # JSON mode constrains the syntax at most (OpenAI's even requires the word JSON in
        # the prompt): the fields have to be asked for in words.
        messages = _with_instruction(messages, words)
    shaped["messages"] = messages
    return shaped


def refuses_mode(failure: StreamError, mode: str) -> bool:
    """Whether a failure is the endpoint refusing the response_format it was sent."""
    if mode == "none" or failure.kind not in ("status", "rejected") or failure.status is None:
        return False
    if failure.status in (401, 403, 404, 408, 429) or not 400 <= failure.status < 600:
        return False
    words = failure.message.lower()
    return "response_format" in words or mode in words


async def aread_parsed(events: AsyncIterator[StreamEvent], schema: Schema,
                       ) -> AsyncIterator[StreamEvent]:
    """The events, then the reply (choice 0) read as ``schema``'s value: `Parsed`, or an
    ``invalid_output`` failure. Nothing is read after a failure, without a finish reason
    (a cut stream, perhaps asked again), or from a round that calls tools (``--tools``:
    the answer comes in a later round)."""
    texts: list[str] = []
    finish: str | None = None
    refusal = calls = False
    async for event in events:
        if isinstance(event, StreamError):
            yield event
            return  # a failure says itself
        if isinstance(event, TextDelta) and event.choice == 0:
            texts.append(event.text)
        elif isinstance(event, Finish) and event.choice == 0:
            finish = event.reason
        elif isinstance(event, RefusalDelta) and event.choice == 0:
            refusal = True
        elif isinstance(event, ToolCallDelta):
            calls = True
        yield event
    if finish is None or finish == "tool_calls" or (calls and not "".join(texts).strip()):
        return
    if refusal and not texts:
        yield StreamError("the model refused to answer (its refusal is shown): no object to "
                          "read", "invalid_output")
        return
    try:
        value = schema.parse("".join(texts), finish)
    except InvalidOutput as exc:
        yield StreamError(sentence(exc.problem), "invalid_output")
        return
    yield Parsed(value)
