"""What the endpoint records of each request, and the byte-for-byte answers it can be given."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["RecordedRequest", "RawReply"]


@dataclass
class RecordedRequest:
    """One request as the endpoint received it."""

    method: str
    path: str
    headers: dict[str, str]  # names in lower case
    body: Any
    disconnected: bool = False
    peer: int = 0  # the client's port: the same on two requests, one connection reused


@dataclass(frozen=True)
class RawReply:
    """An answer given byte for byte: each write is sent and flushed; a float is a pause."""

    writes: tuple[bytes | float, ...] | list[bytes | float]
    status: int = 200
    content_type: str = "text/event-stream"
    headers: dict[str, str] = field(default_factory=dict)
    unstreamed: "RawReply | None" = None  # what a request without ``stream`` gets, if not this

