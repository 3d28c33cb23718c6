"""A schema on the wire: into the request the way the endpoint takes it, and out of the reply.

`shape_request` puts a `Schema` into a request body for a mode (``json_schema``,
``json_object`` or ``none``, see `chatmagic.core.schema.MODES`); `mode_for` is the
mode an endpoint gets: its profile's ``structured_output``, or what it was seen
to take this session. `astream_structured` streams like `astream_chat`; when
the endpoint refuses the mode (llama-cpp-python answers ``json_schema`` with
HTTP 500 "Input should be 'text' or 'json_object'"; LiteLLM passes that on)
before a word came, it asks again the next way, says so in a `Note`, and
remembers it for that endpoint. At the end it reads the reply into a `Parsed`
value, or a `StreamError` of kind ``invalid_output`` naming the first problem
(the text stays where it is: in the reply, the cell and the history).
"""

from __future__ import annotations

from typing import Any, AsyncIterator

import openai

from ..core.events import (Finish, Note, Parsed, RefusalDelta, StreamError, StreamEvent, TextDelta,
                     ToolCallDelta)
from ..core.failures import sentence
from ..core.profiles import Profile
from ..core.schema import MODES, InvalidOutput, Schema
from .stream import astream_chat

__all__ = ["shape_request", "mode_for", "mode_of", "astream_structured", "aread_parsed",
           "refuses_mode", "TAKES"]

#: base_url -> the mode an endpoint was seen to take after refusing a better one (this
#: session: asked the taken way from then on).
TAKES: dict[str, str] = {}

_WORDS = {"json_schema": "json_schema (structured outputs)",
          "json_object": "json_object with the schema beside it",
          "none": "the schema in the prompt only"}


def mode_for(profile: Profile) -> str:
    """How a schema goes to this endpoint now."""
    return TAKES.get(profile.base_url, profile.structured_output)


def mode_of(request: dict[str, Any]) -> str:
    """The mode a request was shaped for."""
    fmt = request.get("response_format")
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    return kind if kind in ("json_schema", "json_object") else "none"


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
    if mode == "none" or failure.kind != "status" or failure.status is None:
        return False
    if failure.status in (401, 403, 404, 408, 429) or not 400 <= failure.status < 600:
        return False
    words = failure.message.lower()
    return "response_format" in words or mode in words


def _said(failure: StreamError) -> str:
    """The server's words in a refusal, short (the footer is one line)."""
    text = failure.message.split(": ", 1)[-1].split(" — ")[0]
    return text if len(text) <= 120 else text[:117].rstrip() + "…"


async def astream_structured(client: openai.AsyncOpenAI, request: dict[str, Any],
                             profile: Profile, schema: Schema, *, retry_empty: bool = True,
                             ) -> AsyncIterator[StreamEvent]:
    """`astream_chat` for a request shaped by `shape_request`, ending in `Parsed` (or an
    ``invalid_output`` failure); a refused mode is asked again the next way."""
    mode = mode_of(request)
    taken = TAKES.get(profile.base_url)
    if taken is not None and MODES.index(taken) > MODES.index(mode):
        # Built before the endpoint was found out (a later tool round, a row of --each).
        request, mode = shape_request(request, schema, taken), taken
    configured = profile.structured_output
    if TAKES.get(profile.base_url) == mode and mode != configured:
        yield Note(f"sent with {_WORDS[mode]}: {profile.name} refused {configured} earlier "
                   "in this session")
    while True:
        said = False
        refused: StreamError | None = None
        events = astream_chat(client, request, profile, retry_empty=retry_empty)
        try:
            async for event in aread_parsed(events, schema):
                if isinstance(event, StreamError) and not said and refuses_mode(event, mode):
                    refused = event
                    break
                said = said or isinstance(event, TextDelta)
                yield event
        finally:
            close = getattr(events, "aclose", None)  # an async generator: close its response
            if close is not None:
                await close()
        if refused is None:
            return
        following = MODES[MODES.index(mode) + 1]
        TAKES[profile.base_url] = following
        yield Note(f"asked again with {_WORDS[following]}: {profile.name} refused {mode} "
                   f"({_said(refused)})")
        request, mode = shape_request(request, schema, following), following


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
