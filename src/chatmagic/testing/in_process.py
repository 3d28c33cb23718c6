"""`FakeEndpoint`'s scripts answered in this process, without a socket: an ``httpx2``
transport for the fast tests (httpx's ``MockTransport`` idea, with the endpoint's own handler).

    endpoint = FakeEndpoint()                  # not started: no port is bound
    transport = InProcessTransport(endpoint)   # endpoint.base_url now names it
    pool = ClientPool({}, transport=transport) # chatmagic.transport.client

Each request is written out as HTTP/1.1 bytes and handed to the endpoint's real request
handler on a thread of its own; what the handler writes comes back as the response, piece
by piece as it was written (an event stream arrives as the same SSE bytes, in the same
pieces, as over loopback). Bodies are framed by ``Content-Length`` or by the end of the
handler's answer (in process the endpoint never sends ``Transfer-Encoding: chunked``).

Scripted pauses (``delay``, ``first``, ``pause``, a `RawReply`'s floats) are skipped unless
``pace=True``. The request's read timeout holds as a socket's would: a handler silent for
longer raises ``httpx2.ReadTimeout``. A client closing a response hangs up on the handler
(its next write raises ``BrokenPipeError``, as a socket's does). A request to a loopback
port no endpoint here answers raises ``httpx2.ConnectError``, as a closed port does.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import threading
import traceback
from collections import deque
from typing import Any, AsyncIterator, Callable, Iterator

import httpx2

from .endpoint import FakeEndpoint
from .handler import Handler

__all__ = ["InProcessTransport"]

_LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}
_HEAD_END = b"\r\n\r\n"


class _Pipe:
    """The bytes a handler writes (its ``wfile``), read by the client as they come."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._chunks: deque[bytes] = deque()
        self._ended = False  # the handler is done: nothing more comes
        self._gone = False  # the client hung up
        self._wakers: list[Callable[[], None]] = []

    # -- the handler's side ------------------------------------------------------
    @property
    def closed(self) -> bool:
        return self._ended

    def write(self, data: bytes) -> int:
        with self._cond:
            if self._gone:
                raise BrokenPipeError(32, "the client closed the response")
            if data:
                self._chunks.append(bytes(data))
                self._wake()
        return len(data)

    def flush(self) -> None:
        with self._cond:
            if self._gone:
                raise BrokenPipeError(32, "the client closed the response")

    def close(self) -> None:
        with self._cond:
            self._ended = True
            self._wake()

    def _wake(self) -> None:
        self._cond.notify_all()
        for wake in self._wakers:
            wake()

    # -- the client's side -------------------------------------------------------
    def read(self, timeout: float | None) -> bytes:
        """The next piece written (b"" once the handler is done or the client hung up);
        TimeoutError past timeout."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._chunks or self._ended or self._gone,
                                       timeout):
                raise TimeoutError
            return self._chunks.popleft() if self._chunks else b""

    async def aread(self, timeout: float | None) -> bytes:
        """`read` for a coroutine: waits on the event loop, not on the thread."""
        loop = asyncio.get_running_loop()
        while True:
            event = asyncio.Event()

            def wake(event: asyncio.Event = event) -> None:
                try:
                    loop.call_soon_threadsafe(event.set)
                except RuntimeError:  # the loop has closed: nobody waits any more
                    pass

            with self._cond:
                if self._chunks:
                    return self._chunks.popleft()
                if self._ended or self._gone:
                    return b""
                self._wakers.append(wake)
            try:
                await asyncio.wait_for(event.wait(), timeout)
            except asyncio.TimeoutError:  # not the builtin TimeoutError on 3.10
                raise TimeoutError from None
            finally:
                with self._cond:
                    self._wakers.remove(wake)

    def hang_up(self) -> None:
        """The client closed the response: the handler's next write fails, a read ends."""
        with self._cond:
            self._gone = True
            self._chunks.clear()
            self._wake()


def _serve(handler: type[Handler], request: bytes, pipe: _Pipe) -> None:
    """Run one request through the handler, as the server's thread would."""
    try:
        handler((io.BytesIO(request), pipe), ("127.0.0.1", 0), None)  # type: ignore[arg-type]
    except (ConnectionError, TimeoutError):
        pass  # a client that hung up: normal here, as on the server
    except Exception:  # noqa: BLE001 - printed, as socketserver's handle_error does
        traceback.print_exc()
    finally:
        pipe.close()


class _Head:
    """A response's status line and headers, as the handler wrote them."""

    def __init__(self, data: bytes, request: httpx2.Request) -> None:
        lines = data.decode("latin-1").split("\r\n")
        try:
            _version, status, *reason = lines[0].split(" ", 2)
            self.status = int(status)
        except ValueError:
            raise httpx2.RemoteProtocolError(f"not an HTTP response head: {lines[0][:80]!r}",
                                             request=request) from None
        self.headers = [(name.strip(), value.strip())
                        for name, _, value in (line.partition(":") for line in lines[1:] if line)]
        self.extensions: dict[str, Any] = {"http_version": b"HTTP/1.1",
                                           "reason_phrase": (reason or [""])[0].encode()}
        length = dict((k.lower(), v) for k, v in self.headers).get("content-length", "")
        self.length = int(length) if length.isdigit() else None

    def response(self, stream: httpx2.SyncByteStream | httpx2.AsyncByteStream,
                 request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(self.status, headers=self.headers, stream=stream,
                               extensions=self.extensions, request=request)


class _Reading:
    """One response being read: its head first, then its body within its length."""

    def __init__(self, pipe: _Pipe, request: httpx2.Request) -> None:
        self.pipe, self.request = pipe, request
        timeouts = request.extensions.get("timeout") or {}
        self.timeout: float | None = timeouts.get("read")
        self.buffer = b""
        self.left: int | None = None  # body bytes still to come (None: until the end)

    def timed_out(self) -> httpx2.ReadTimeout:
        self.pipe.hang_up()
        return httpx2.ReadTimeout("The read operation timed out", request=self.request)

    def take_head(self, piece: bytes) -> _Head | None:
        """Add a piece; the head once it is complete."""
        if not piece:
            raise httpx2.RemoteProtocolError("Server disconnected without sending a response.",
                                             request=self.request)
        self.buffer += piece
        if _HEAD_END not in self.buffer:
            return None
        data, _, self.buffer = self.buffer.partition(_HEAD_END)
        head = _Head(data, self.request)
        self.left = head.length
        return head

    def body_piece(self, piece: bytes) -> bytes | None:
        """What of a piece belongs to the body; None once the body is complete."""
        if self.left is None:
            return piece if piece else None
        if self.left <= 0 or not piece:
            return None
        piece = piece[:self.left]
        self.left -= len(piece)
        return piece


class _Body(httpx2.SyncByteStream):
    def __init__(self, reading: _Reading) -> None:
        self._reading = reading

    def __iter__(self) -> Iterator[bytes]:
        reading = self._reading
        piece, reading.buffer = reading.buffer, b""
        while True:
            if piece:
                part = reading.body_piece(piece)
                if part is None:
                    return
                yield part
            if reading.left == 0:
                return
            try:
                piece = reading.pipe.read(reading.timeout)
            except TimeoutError:
                raise reading.timed_out() from None
            if not piece:
                return

    def close(self) -> None:
        self._reading.pipe.hang_up()


class _AsyncBody(httpx2.AsyncByteStream):
    def __init__(self, reading: _Reading) -> None:
        self._reading = reading

    async def __aiter__(self) -> AsyncIterator[bytes]:
        reading = self._reading
        piece, reading.buffer = reading.buffer, b""
        while True:
            if piece:
                part = reading.body_piece(piece)
                if part is None:
                    return
                yield part
            if reading.left == 0:
                return
            try:
                piece = await reading.pipe.aread(reading.timeout)
            except TimeoutError:
                raise reading.timed_out() from None
            if not piece:
                return

    async def aclose(self) -> None:
        self._reading.pipe.hang_up()


class InProcessTransport(httpx2.BaseTransport, httpx2.AsyncBaseTransport):
    """Answers blocking and async requests with `FakeEndpoint` scripts, no socket involved.

    ``endpoints`` are added at once (`add` adds more); an endpoint not started gets a port
    of its own here, so its ``base_url`` and ``gateway_url`` name it. ``pace``: sleep the
    pauses the scripts ask for (off: as fast as the machine goes).
    """

    def __init__(self, *endpoints: FakeEndpoint, pace: bool = False) -> None:
        self.pace = pace
        self.endpoints: list[FakeEndpoint] = []
        #: Every "host:port" a request went to that no endpoint here answers (refused).
        self.refused: list[str] = []
        self._routes: dict[int, type[Handler]] = {}
        # Ports no server here would have (ephemeral ports start far above), one per endpoint.
        self._ports = itertools.count(1)
        for endpoint in endpoints:
            self.add(endpoint)

    def add(self, endpoint: FakeEndpoint) -> FakeEndpoint:
        """Answer for ``endpoint`` too (at its own port); the endpoint, for chaining."""
        if not endpoint.in_process_port and not endpoint.started:
            endpoint.in_process_port = next(self._ports)

        class InProcess(Handler):
            owner = endpoint
            pace = self.pace
            chunked_streams = False  # one request a pipe, its body framed by its end

            def setup(self) -> None:
                self.rfile, self.wfile = self.request

            def finish(self) -> None:
                self.wfile.close()

        self._routes[endpoint.port] = InProcess
        self.endpoints.append(endpoint)
        return endpoint

    # -- httpx2's transport interface -----------------------------------------------
    def _start(self, request: httpx2.Request, body: bytes) -> _Reading:
        host, port = request.url.host, request.url.port
        handler = self._routes.get(port or 80) if host in _LOOPBACK else None
        if handler is None:
            self.refused.append(f"{host}:{port}")
            raise httpx2.ConnectError(f"[Errno 111] Connection refused: nothing answers "
                                      f"{host}:{port} in process", request=request)
        target = request.url.raw_path.decode("ascii")
        lines = [f"{request.method} {target} HTTP/1.1"]
        # The body is whole here: say its length, whichever way the client framed it.
        lines += [f"{name}: {value}" for name, value in request.headers.multi_items()
                  if name.lower() not in ("content-length", "transfer-encoding")]
        lines.append(f"Content-Length: {len(body)}")
        raw = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
        pipe = _Pipe()
        threading.Thread(target=_serve, args=(handler, raw, pipe), daemon=True,
                         name="chatmagic-in-process").start()
        return _Reading(pipe, request)

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        reading = self._start(request, request.read())
        head = None
        while head is None:
            try:
                piece = reading.pipe.read(reading.timeout)
            except TimeoutError:
                raise reading.timed_out() from None
            head = reading.take_head(piece)
        return head.response(_Body(reading), request)

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        reading = self._start(request, await request.aread())
        head = None
        while head is None:
            try:
                piece = await reading.pipe.aread(reading.timeout)
            except TimeoutError:
                raise reading.timed_out() from None
            head = reading.take_head(piece)
        return head.response(_AsyncBody(reading), request)

    def close(self) -> None:
        """Nothing to close: many clients share this transport, and no socket is open."""

    async def aclose(self) -> None:
        """Nothing to close (see `close`)."""


