"""One streamed attempt at a request, watched for a stream another request cut short.

`%%chat` (`runner`) and ``--each`` (`scheduler`) send requests the same way:
`events_of` streams one (`astream_chat`, or with a schema `astream_structured`),
`Watch` passes its events on while noting what it showed, and `Watch.cut` says
whether it looks cut by another request to the same endpoint (llama-cpp-python
ends a running stream when another arrives: nothing at all, no finish reason,
or through a proxy that adds one, LiteLLM, not a word or the proxy's error
before a word). An empty stream sent alone is the server hiding an error (a
prompt past the context): `unstreamed` asks again without streaming, which says
why. The callers differ only in where the events go and how they share an
endpoint.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, AsyncIterator

import openai

from ..core.events import (Finish, ReasoningDelta, RefusalDelta, StreamError, StreamEvent,
                     TextDelta, ToolCallDelta)
from ..core.profiles import Profile
from ..transport.stream import aretry_without_stream, astream_chat

if TYPE_CHECKING:
    from ..core.schema import Schema

__all__ = ["Watch", "events_of", "unstreamed", "SAID"]

#: What counts as the endpoint having said something.
SAID = (TextDelta, ReasoningDelta, RefusalDelta, ToolCallDelta)


def events_of(client: openai.AsyncOpenAI, request: dict[str, Any], profile: Profile,
              schema: Schema | None, *, alone: bool) -> AsyncIterator[StreamEvent]:
    """A request's events: `astream_chat`, or with a schema `astream_structured` (which asks
    again when the endpoint refuses the schema's format, and ends with the parsed value).
    ``alone``: an empty stream is asked again without streaming right there."""
    if schema is None:
        return astream_chat(client, request, profile, retry_empty=alone)
    from ..transport.structured import astream_structured

    return astream_structured(client, request, profile, schema, retry_empty=alone)


def unstreamed(client: openai.AsyncOpenAI, request: dict[str, Any], profile: Profile,
               schema: Schema | None) -> AsyncIterator[StreamEvent]:
    """The request asked again without streaming (after an empty stream sent alone); with
    a schema, the reply read as its value at the end."""
    events = aretry_without_stream(client, request, profile)
    if schema is None:
        return events
    from ..transport.structured import aread_parsed

    return aread_parsed(events, schema)


class Watch:
    """What one attempt's stream showed, noted as its events pass through `events`."""

    def __init__(self) -> None:
        self.finished = self.failed = self.said = self.broke_first = False
        self.empty: StreamError | None = None  # an empty stream (held back, not passed on)

    async def events(self, stream: AsyncIterator[StreamEvent]) -> AsyncIterator[StreamEvent]:
        """``stream``'s events, but an empty-stream failure (asked again, or a cut)."""
        async for event in stream:
            if isinstance(event, SAID):
                self.said = True
            elif isinstance(event, Finish):
                self.finished = True
            elif isinstance(event, StreamError):
                if event.kind == "empty":
                    self.empty = event
                    continue
                self.failed = event.kind != "incomplete"
                # A proxy's error frame before a word (LiteLLM's "Connection error" when
                # llama-cpp-python dropped the stream for another request).
                self.broke_first = event.kind == "server" and not self.said
            yield event

    def cut(self, streamed: bool, overlapped: bool) -> bool:
        """Whether another request in flight to the endpoint (``overlapped``) cut it."""
        return (streamed and overlapped
                and (self.empty is not None or self.broke_first
                     or not self.failed and not (self.finished and self.said)))
