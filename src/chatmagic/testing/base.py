"""The request handler's plumbing: JSON and error answers, raw bytes, redirects, the start
of an event stream, and the pacing (sleeps) its scripts ask for."""

from __future__ import annotations

import json
import time
from http.server import BaseHTTPRequestHandler
from typing import Any

from .records import RawReply
from .script import Script
from .state import EndpointState

__all__ = ["HandlerBase", "Cut", "Chunked", "lower_headers"]


class Cut(Exception):
    """A one-at-a-time stream ended for a newer request."""


class Chunked:
    """A handler's ``wfile`` writing an HTTP/1.1 chunked body: each write one chunk."""

    def __init__(self, raw: Any) -> None:
        self.raw = raw

    def write(self, data: bytes) -> int:
        if data:
            self.raw.write(b"%x\r\n%b\r\n" % (len(data), data))
        return len(data)

    def flush(self) -> None:
        self.raw.flush()

    def end(self) -> None:
        """The last chunk: the body is whole, the connection free for the next request."""
        self.raw.write(b"0\r\n\r\n")
        self.raw.flush()


def lower_headers(headers: Any) -> dict[str, str]:
    """Header names in lower case, as HTTP treats them."""
    return {k.lower(): v for k, v in headers.items()}


class HandlerBase(BaseHTTPRequestHandler):
    """What every route of the endpoint's handler writes its answer with."""

    owner: EndpointState
    protocol_version = "HTTP/1.1"
    #: Whether scripted waits (``delay``, ``first``, ``pause``, a `RawReply`'s pauses) are
    #: slept (a handler may be made without them, for tests that need no pauses).
    pace = True
    _arrival = 0  # the number of chat requests received with this one (one-at-a-time)
    _cut = False  # a ``faults`` model cuts this stream short (no finish reason, no [DONE])
    #: Whether a stream that ends as it should is sent chunked on a connection kept open for
    #: the next request, as real servers do (the in-process transport reads no chunked body).
    chunked_streams = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet server
        pass

    def _sleep(self, seconds: float) -> None:
        if seconds and self.pace:
            time.sleep(seconds)

    def _send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None,
                   content_type: str = "application/json") -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, message: str, kind: str = "invalid_request_error",
               code: str | None = None, headers: dict[str, str] | None = None) -> None:
        self._send_json(status, {"error": {"message": message, "type": kind, "code": code}},
                        headers)

    def _authorized(self) -> bool:
        key = self.owner.api_key
        return key is None or self.headers.get("Authorization") == f"Bearer {key}"

    def _raw(self, reply: RawReply) -> None:
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        for key, value in reply.headers.items():
            self.send_header(key, value)
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        for write in reply.writes:
            if isinstance(write, bytes):
                self.wfile.write(write)
                self.wfile.flush()
            else:
                self._sleep(write)

    def _redirect(self, script: Script) -> None:
        host = self.headers.get("Host") or f"127.0.0.1:{self.owner.port}"
        if script.to:
            target = script.to
        elif not self.path.startswith("/v1/"):
            target = f"http://{host}/v1{self.path}"
        else:
            target = f"https://{host}{self.path}"
        self._raw(RawReply([b""], 308, "text/plain", {"Location": target,
                                                     "Content-Length": "0"}))

    def _start_stream(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True

    def _frame(self, payload: Any) -> None:
        self.wfile.write(b"data: " + json.dumps(payload).encode() + b"\n\n")
        self.wfile.flush()
