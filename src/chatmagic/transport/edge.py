"""The edge every response passes: keys scrubbed, bodies decoded within a limit, same-origin
moves followed.

`ScrubbingTransport` and `AsyncScrubbingTransport` wrap the HTTP transport of every client
`chatmagic.transport.client.ClientPool` builds. A response comes back with every known key
masked in its headers and body (streamed bodies too, a key split across chunks included),
its body decompressed a piece at a time and counted against ``max_bytes`` (past it, reading
stops with `chatmagic.transport.limits.TooLarge`: a gzip bomb never reaches memory; a Batch
API file's content, the user's own data, is read whole as before), and an
encoding chatmagic did not ask for refused. A 307 or 308 to the same origin (scheme, host
and port) is followed with the same method and body, as the SDK's own client would; any
other redirect comes back as it is, so nothing is sent to another origin.
"""

from __future__ import annotations

import re
import zlib
from typing import Any, AsyncIterator, Iterator

import httpx2

from ..core.scrub import StreamScrubber, scrub_bytes
from .limits import TooLarge

__all__ = ["ScrubbingTransport", "AsyncScrubbingTransport", "ACCEPT_ENCODING"]

# Bodies we can scrub must arrive as bytes we can read: ask for no other encoding.
ACCEPT_ENCODING = "gzip, deflate"
#: The most bytes one decompression step makes (a 64 kB gzip chunk can hold 64 MB).
_PIECE = 1 << 16
#: Same-origin redirects followed for one request, at most.
_MAX_HOPS = 5
#: A Batch API file's content (``GET .../files/{id}/content``): the user's own rows and their
#: answers, as large as the batch was, so ``max_response_mb`` does not hold it.
_FILE_CONTENT = re.compile(r"/files/[^/]+/content$")


def _limit(request: httpx2.Request, max_bytes: int | None) -> int | None:
    """The bytes ``request``'s response may hold once decompressed (None: no limit)."""
    if request.method == "GET" and _FILE_CONTENT.search(request.url.path):
        return None
    return max_bytes


def _decoder(encoding: str) -> Any:
    if encoding in ("", "identity"):
        return None
    if encoding in ("gzip", "x-gzip"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if encoding == "deflate":
        return _Deflate()
    raise ValueError(encoding)


class _Deflate:
    """'deflate' is zlib-wrapped by the RFC and raw in practice: take either, as httpx does."""

    def __init__(self) -> None:
        self._obj: Any = None

    def decompress(self, data: bytes, max_length: int = 0) -> bytes:
        if self._obj is None:
            self._obj = zlib.decompressobj()
            try:
                return bytes(self._obj.decompress(data, max_length))
            except zlib.error:
                self._obj = zlib.decompressobj(-zlib.MAX_WBITS)
        return bytes(self._obj.decompress(data, max_length))

    @property
    def unconsumed_tail(self) -> bytes:
        return bytes(self._obj.unconsumed_tail) if self._obj is not None else b""

    def flush(self) -> bytes:
        return bytes(self._obj.flush()) if self._obj is not None else b""


class _Body:
    """One response body as it is read: decompressed at most `_PIECE` bytes at a time,
    counted against the limit, scrubbed of keys."""

    def __init__(self, decoder: Any, max_bytes: int | None) -> None:
        self._decoder, self._max = decoder, max_bytes
        self._scrubber = StreamScrubber()
        self.size = 0  # bytes after decompression

    def feed(self, chunk: bytes) -> Iterator[bytes]:
        for piece in self._pieces(chunk):
            out = self._scrubber.feed(self._counted(piece))
            if out:
                yield out

    def end(self) -> bytes:
        tail = self._counted(self._decoder.flush()) if self._decoder else b""
        return self._scrubber.feed(tail) + self._scrubber.flush()

    def _pieces(self, chunk: bytes) -> Iterator[bytes]:
        if self._decoder is None:
            yield chunk
            return
        data = chunk
        while True:
            out = self._decoder.decompress(data, _PIECE)
            if out:
                yield out
            data = self._decoder.unconsumed_tail
            if not data and len(out) < _PIECE:
                return

    def _counted(self, piece: bytes) -> bytes:
        self.size += len(piece)
        if self._max is not None and self.size > self._max:
            raise TooLarge("the response", self._max, "max_response_mb")
        return piece


class _ScrubbedStream(httpx2.SyncByteStream):
    def __init__(self, inner: Any, decoder: Any, max_bytes: int | None) -> None:
        self._inner, self._decoder, self._max = inner, decoder, max_bytes

    def __iter__(self) -> Iterator[bytes]:
        body = _Body(self._decoder, self._max)
        for chunk in self._inner:
            yield from body.feed(chunk)
        tail = body.end()
        if tail:
            yield tail

    def close(self) -> None:
        self._inner.close()


class _AsyncScrubbedStream(httpx2.AsyncByteStream):
    def __init__(self, inner: Any, decoder: Any, max_bytes: int | None) -> None:
        self._inner, self._decoder, self._max = inner, decoder, max_bytes

    async def __aiter__(self) -> AsyncIterator[bytes]:
        body = _Body(self._decoder, self._max)
        async for chunk in self._inner:
            for out in body.feed(chunk):
                yield out
        tail = body.end()
        if tail:
            yield tail

    async def aclose(self) -> None:
        await self._inner.aclose()


def _clean_headers(response: httpx2.Response) -> list[tuple[bytes, bytes]]:
    # The body is decoded and its length changes when a key is masked: drop both headers.
    return [(name, scrub_bytes(value)) for name, value in response.headers.raw
            if name.lower() not in (b"content-length", b"content-encoding")]


def _refusal(request: httpx2.Request, encoding: str) -> httpx2.Response:
    message = (f"the endpoint answered in the encoding {encoding[:40]!r}, which chatmagic did "
               f"not ask for (it asks for {ACCEPT_ENCODING}); the reply was not read")
    # A bad gateway's answer; the SDK must not retry what the endpoint will send again.
    return httpx2.Response(502, json={"error": {"message": message, "type": "bad_encoding"}},
                           headers={"x-should-retry": "false"}, request=request)


def _origin(url: httpx2.URL) -> tuple[str, str, int]:
    return url.scheme, url.host, url.port or (443 if url.scheme == "https" else 80)


def _moved(request: httpx2.Request, response: httpx2.Response) -> httpx2.Request | None:
    """The request again where a 307 or 308 on the same origin sends it, else None (another
    origin, or another status: the SDK raises it, and the failure says what to set)."""
    location = response.headers.get("location")
    if response.status_code not in (307, 308) or not location:
        return None
    try:
        target = request.url.join(location)
    except httpx2.InvalidURL:
        return None
    if _origin(target) != _origin(request.url):
        return None
    # The method and body stay (what 307 and 308 mean): the SDK's bodies are bytes, or a
    # multipart stream httpx renders again (a file is read from its start).
    return httpx2.Request(request.method, target, headers=request.headers,
                          stream=request.stream, extensions=request.extensions)


def _scrubbed(response: httpx2.Response, request: httpx2.Request, stream: Any) -> httpx2.Response:
    return httpx2.Response(response.status_code, headers=_clean_headers(response),
                           stream=stream, extensions=response.extensions, request=request)


class ScrubbingTransport(httpx2.BaseTransport):
    """Wraps a transport: every response comes back with no known key in it, its body
    at most ``max_bytes`` once decompressed (but a Batch API file's content)."""

    def __init__(self, inner: httpx2.BaseTransport, max_bytes: int | None = None) -> None:
        self._inner, self._max = inner, max_bytes

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        request.headers["Accept-Encoding"] = ACCEPT_ENCODING
        sent = request
        response = self._inner.handle_request(sent)
        for _ in range(_MAX_HOPS):
            moved = _moved(sent, response)
            if moved is None:
                break
            response.close()
            sent, response = moved, self._inner.handle_request(moved)
        encoding = response.headers.get("content-encoding", "").strip().lower()
        try:
            decoder = _decoder(encoding)
        except ValueError:
            response.close()
            return _refusal(request, encoding)
        return _scrubbed(response, sent, _ScrubbedStream(response.stream, decoder,
                                                         _limit(request, self._max)))

    def close(self) -> None:
        self._inner.close()


class AsyncScrubbingTransport(httpx2.AsyncBaseTransport):
    """The async twin of `ScrubbingTransport`."""

    def __init__(self, inner: httpx2.AsyncBaseTransport, max_bytes: int | None = None) -> None:
        self._inner, self._max = inner, max_bytes

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        request.headers["Accept-Encoding"] = ACCEPT_ENCODING
        sent = request
        response = await self._inner.handle_async_request(sent)
        for _ in range(_MAX_HOPS):
            moved = _moved(sent, response)
            if moved is None:
                break
            await response.aclose()
            sent, response = moved, await self._inner.handle_async_request(moved)
        encoding = response.headers.get("content-encoding", "").strip().lower()
        try:
            decoder = _decoder(encoding)
        except ValueError:
            await response.aclose()
            return _refusal(request, encoding)
        return _scrubbed(response, sent,
                         _AsyncScrubbedStream(response.stream, decoder,
                                              _limit(request, self._max)))

    async def aclose(self) -> None:
        await self._inner.aclose()
