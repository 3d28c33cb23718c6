"""A hostile OpenAI-compatible endpoint: it echoes keys back, redirects, and records everything.

Behaviour by model id (as in `chatmagic.testing.FakeEndpoint`):

==================  ========================================================
``echo-key``        HTTP 401 whose body and headers quote the Authorization
                    header (and a custom header), the body sent in pieces that
                    split the key across chunks
``stream-key``      HTTP 200 streaming the key back as reply text in one delta,
                    the bytes sent 5 at a time (the key split across chunks)
``spread-key``      the same, the key spread over many deltas of 4 characters
``gzip-key``        HTTP 401 like echo-key, gzip-compressed
``brotli``          a 200 labelled ``Content-Encoding: br`` (never asked for)
``redirect``        307 to ``redirect_to`` (another origin), same path
``redirect-301``    301 to ``redirect_to``
``huge-error``      HTTP 400 with a 5 MB message laced with ANSI escapes
``bomb-line``       a gzip-encoded stream: "before the bomb", then one line of
                    ``bomb_size`` zero-ish bytes with no end (about 1 MB sent per GB)
``bomb-lines``      the same, the bomb ``bomb_size`` bytes of blank lines
``nan-usage``       "kept", then a usage whose figures are NaN, Infinity, 1e400
``split-pair``      an emoji whose surrogate escapes are in two chunks
``reasoning-details`` reasoning only in OpenRouter's ``delta.reasoning_details``
``magistral``       reasoning as a ``thinking`` content part (Mistral's Magistral)
``moved-307``,      a request to a path under ``/old/`` moves there on the same
``moved-308``       origin (``/v1/...``); under ``/v1`` a plain reply "ok"
anything else       a plain one-chunk streamed reply "ok"
==================  ========================================================

With ``tls=(certfile, keyfile)`` it speaks HTTPS with that certificate.
"""

from __future__ import annotations

import gzip
import json
import ssl
import threading
import zlib
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["HostileEndpoint", "Received"]


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class HostileEndpoint:
    """A local server that misbehaves on purpose; ``received`` holds every request."""

    def __init__(self, redirect_to: str = "", *, tls: tuple[str, str] | None = None,
                 bomb_size: int = 1 << 30) -> None:
        self.redirect_to = redirect_to
        self.bomb_size = bomb_size
        self._bombs: dict[str, bytes] = {}
        self.received: list[Received] = []
        self._lock = threading.Lock()
        owner = self

        class Handler(_Handler):
            endpoint = owner

        self._server = _Quiet(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._scheme = "http"
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
            self._scheme = "https"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> "HostileEndpoint":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def origin(self) -> str:
        return f"{self._scheme}://127.0.0.1:{self._server.server_address[1]}"

    @property
    def base_url(self) -> str:
        return f"{self.origin}/v1"

    def bomb(self, kind: str) -> bytes:
        """The gzip body of ``bomb-line`` or ``bomb-lines`` (made once: a GB takes a while)."""
        with self._lock:
            if kind not in self._bombs:
                head = _frames(["before the bomb"], finish=False)
                packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
                out = [packer.compress(b"".join(head) + (b"data: " if kind == "line" else b""))]
                block = (b"0" if kind == "line" else b"\n") * (1 << 20)
                out += [packer.compress(block) for _ in range(self.bomb_size >> 20)]
                self._bombs[kind] = b"".join(out) + packer.flush()
            return self._bombs[kind]

    def everything(self) -> bytes:
        """All it received, headers and bodies, as one blob to search."""
        with self._lock:
            return b"".join(json.dumps(r.headers).encode() + r.body for r in self.received)


class _Quiet(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that hangs up on a hostile reply is what we want


class _Handler(BaseHTTPRequestHandler):
    endpoint: HostileEndpoint
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def _chunked(self, status: int, pieces: list[bytes], headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for piece in pieces:
            if piece:
                self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")

    def do_GET(self) -> None:  # noqa: N802
        self._record(b"")
        self._answer("")

    def do_POST(self) -> None:  # noqa: N802
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._record(raw)
        try:
            model = str(json.loads(raw).get("model", ""))
        except (ValueError, AttributeError):
            model = ""
        self._answer(model)

    def _record(self, body: bytes) -> None:
        with self.endpoint._lock:
            self.endpoint.received.append(Received(self.command, self.path,
                                                   {k.lower(): v for k, v in self.headers.items()},
                                                   body))

    def _answer(self, model: str) -> None:
        auth = self.headers.get("Authorization", "")
        custom = self.headers.get("X-Api-Secret", "")
        if model in ("echo-key", "gzip-key"):
            body = json.dumps({"error": {
                "message": f"Incorrect API key provided: {auth} (and {custom})",
                "type": "invalid_request_error", "code": "invalid_api_key"}}).encode()
            headers = {"Content-Type": "application/json", "X-Echo": auth,
                       "WWW-Authenticate": f'Bearer realm="{auth}"'}
            if model == "gzip-key":
                data = gzip.compress(body)
                headers["Content-Encoding"] = "gzip"
                return self._chunked(401, [data[i:i + 7] for i in range(0, len(data), 7)],
                                     headers)
            # Split inside the key: a scrubber that looks at one chunk at a time misses it.
            return self._chunked(401, [body[i:i + 5] for i in range(0, len(body), 5)], headers)
        if model == "stream-key":  # in one delta, its bytes split across network chunks
            return self._stream([f"your key is {auth.removeprefix('Bearer ')} and that is all"],
                                split=5)
        if model == "spread-key":  # spread over many deltas: only the assembled text shows it
            text = f"your key is {auth.removeprefix('Bearer ')} and that is all"
            return self._stream([text[i:i + 4] for i in range(0, len(text), 4)])
        if model == "brotli":
            return self._chunked(200, [b"\x0b\x02\x80hello\x03"],
                                 {"Content-Type": "application/json", "Content-Encoding": "br"})
        if model.startswith("redirect"):
            self.send_response(301 if model == "redirect-301" else 307)
            self.send_header("Location", self.endpoint.redirect_to + self.path)
            self.send_header("Content-Length", "0")
            return self.end_headers()
        if model == "huge-error":
            message = ("\x1b[32m✔ all good\x1b[0m " + "x" * 5_000_000)
            body = json.dumps({"error": {"message": message, "type": "x"}}).encode()
            return self._chunked(400, [body], {"Content-Type": "application/json"})
        if model.startswith("bomb-"):
            data = self.endpoint.bomb(model.removeprefix("bomb-"))
            return self._chunked(200, [data[i:i + 65536] for i in range(0, len(data), 65536)],
                                 {"Content-Type": "text/event-stream", "Content-Encoding": "gzip"})
        if model.startswith("moved-") and self.path.startswith("/old/"):
            self.send_response(int(model[-3:]))
            self.send_header("Location", "/v1/" + self.path.removeprefix("/old/"))
            self.send_header("Content-Length", "0")
            return self.end_headers()
        raw = _ODD.get(model)
        if raw is not None:
            return self._chunked(200, [piece.encode() for piece in raw],
                                 {"Content-Type": "text/event-stream"})
        if not model:
            return self._chunked(200, [json.dumps({"object": "list", "data": [
                {"id": "ok", "object": "model", "created": 0, "owned_by": "x"}]}).encode()],
                {"Content-Type": "application/json"})
        self._stream(["ok"])

    def _stream(self, pieces: list[str], split: int = 0) -> None:
        data = _frames(pieces)
        if split:
            blob = b"".join(data)
            data = [blob[i:i + split] for i in range(0, len(blob), split)]
        self._chunked(200, data, {"Content-Type": "text/event-stream"})


def _frames(pieces: list[str], finish: bool = True) -> list[bytes]:
    """SSE frames of a reply in these pieces, then (``finish``) its end and [DONE]."""
    frames = []
    for i, piece in enumerate(pieces):
        delta = {"role": "assistant", "content": piece} if i == 0 else {"content": piece}
        frames.append({"id": "c", "object": "chat.completion.chunk", "created": 0,
                       "model": "m", "choices": [{"index": 0, "delta": delta,
                                                  "finish_reason": None}]})
    if finish:
        frames.append({"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "m",
                       "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    data = [f"data: {json.dumps(f)}\n\n".encode() for f in frames]
    return data + [b"data: [DONE]\n\n"] if finish else data


def _chunk(delta: str, finish: str = "null", usage: str = "") -> str:
    """One chunk written as text, so it can hold what json.dumps would not write."""
    return ('data: {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "m", '
            f'"choices": [{{"index": 0, "delta": {delta}, "finish_reason": {finish}}}]'
            f'{usage}}}\n\n')


_END = [_chunk("{}", '"stop"'), "data: [DONE]\n\n"]
#: Streams written byte for byte, each piece one network chunk.
_ODD = {
    "nan-usage": [_chunk('{"content": "kept"}'), _chunk(
        "{}", '"stop"', ', "usage": {"prompt_tokens": NaN, "completion_tokens": Infinity, '
        '"total_tokens": 1e400}'), "data: [DONE]\n\n"],
    "split-pair": [_chunk('{"content": "smile \\ud83d"}'), _chunk('{"content": "\\ude00"}'),
                   *_END],
    "reasoning-details": [_chunk('{"reasoning_details": [{"type": "reasoning.text", '
                                 '"text": "Weigh it."}]}'), _chunk('{"content": "Yes."}'), *_END],
    "magistral": [_chunk('{"content": [{"type": "thinking", "thinking": [{"type": "text", '
                         '"text": "Hmm."}]}, {"type": "text", "text": "Yes."}]}'), *_END],
}
