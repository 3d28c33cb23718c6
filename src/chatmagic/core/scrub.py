"""Every key in play, and the masks that replace them in whatever a server sends back.

A key reaches this registry when a profile resolves it, when one is typed
(``%chat_config key``) or set, and from the environment (variables whose names
end in KEY, TOKEN, SECRET or PASSWORD). The HTTP edge (`chatmagic.transport.client`)
scrubs every response header and body byte with `StreamScrubber`, so errors,
replies, history and logs built from a response never hold a key; `scrub`
does the same for one string (defence in depth where text is stored).

The registry is the process's, not a session's, on purpose: a key is the
user's secret wherever it shows up, so masking one session's key in another
session's output is what is wanted (a gateway both use, a prompt that quotes
it), a key outlives the session that brought it (so do logs and saved
notebooks), and a log record names no session. Keys are only ever added, and
masking more than needed loses nothing, so nothing needs cleaning between
sessions or tests.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from typing import Any, Iterable, Mapping

__all__ = ["register", "register_environ", "known", "scrub", "scrub_bytes", "contains_key",
           "mask", "StreamScrubber", "MIN_KEY_LENGTH", "install_log_scrubber"]

#: Shorter values are not treated as keys: masking "abc" everywhere would mangle replies.
MIN_KEY_LENGTH = 8

# The SDK's placeholder for keyless endpoints (profiles.NO_KEY) is no secret.
_NOT_SECRETS = {"no-key-needed"}
_SECRET_NAME = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD)$", re.IGNORECASE)

_lock = threading.Lock()
_keys: set[str] = set()
_pattern: re.Pattern[bytes] | None = None
_masks: dict[bytes, bytes] = {}


def mask(key: str) -> str:
    """What replaces a key: ``sk-…7Be`` (nothing of a short key), as ``%chat_config`` shows."""
    return f"{key[:3]}…{key[-3:]}" if len(key) >= 12 else "…"


def _is_secret(value: str) -> bool:
    return len(value.strip()) >= MIN_KEY_LENGTH and value not in _NOT_SECRETS


def register(*keys: str | None) -> None:
    """Remember keys (None and short values are ignored); they are scrubbed from now on."""
    global _pattern
    new = {k for k in keys if isinstance(k, str) and _is_secret(k) and k not in _keys}
    if not new:
        return
    with _lock:
        _keys.update(new)
        _pattern = None


def register_environ(environ: Mapping[str, str] | None = None) -> None:
    """Remember the environment's secret-looking values (``*_API_KEY``, ``*_TOKEN``...)."""
    env = os.environ if environ is None else environ
    # Keys are single words; a value with spaces (a sentence, a command) is no key.
    register(*(value for name, value in list(env.items())
               if _SECRET_NAME.search(name) and not any(c.isspace() for c in value)))


def known() -> frozenset[str]:
    """Every key registered so far."""
    with _lock:
        return frozenset(_keys)


def _variants(key: str) -> Iterable[bytes]:
    raw = key.encode("utf-8", "surrogatepass")
    yield raw
    if b"/" in raw:
        yield raw.replace(b"/", b"\\/")  # JSON written by PHP escapes '/'


def _compiled() -> tuple[re.Pattern[bytes] | None, dict[bytes, bytes]]:
    global _pattern, _masks
    with _lock:
        if _pattern is None and _keys:
            masks = {v: mask(k).encode() for k in _keys for v in _variants(k)}
            # Longest first, so a key that contains another is masked whole.
            ordered = sorted(masks, key=len, reverse=True)
            _pattern = re.compile(b"|".join(re.escape(v) for v in ordered))
            _masks = masks
        return _pattern, _masks


def scrub_bytes(data: bytes) -> bytes:
    """``data`` with every known key replaced by its mask."""
    pattern, masks = _compiled()
    if pattern is None or not data:
        return data
    return pattern.sub(lambda m: masks[m.group()], data)


def scrub(text: str) -> str:
    """``text`` with every known key replaced by its mask."""
    keys = known()
    if not text or not any(k in text for k in keys):
        return text
    for key in sorted(keys, key=len, reverse=True):
        text = text.replace(key, mask(key))
    return text


def contains_key(text: str) -> str | None:
    """The first known key found in ``text``, or None."""
    return next((k for k in known() if k in text), None)


class StreamScrubber:
    """Scrubs a byte stream chunk by chunk, also when a key is split across chunks.

    Bytes at the end of a chunk that could begin a key are held back until the
    next chunk (or the end) shows whether they do; other bytes pass at once, so
    a streamed reply is not delayed by a chunk.
    """

    def __init__(self) -> None:
        self._pending = b""
        pattern, masks = _compiled()
        self._pattern = pattern
        self._masks = masks
        self._longest = max(map(len, masks), default=0)
        self._by_first: dict[int, list[bytes]] = {}
        for key in masks:
            self._by_first.setdefault(key[0], []).append(key)
        self._starts = re.compile(b"[" + b"".join(re.escape(bytes([b])) for b in self._by_first)
                                  + b"]") if masks else None

    def feed(self, chunk: bytes) -> bytes:
        if self._pattern is None:
            return chunk
        data = self._pattern.sub(lambda m: self._masks[m.group()], self._pending + chunk)
        cut = self._hold_from(data)
        self._pending = data[cut:]
        return data[:cut]

    def flush(self) -> bytes:
        rest, self._pending = self._pending, b""
        return rest

    def _hold_from(self, data: bytes) -> int:
        """Where the earliest possible start of a key cut by the chunk's end lies."""
        assert self._starts is not None
        for found in self._starts.finditer(data, max(0, len(data) - self._longest + 1)):
            tail = data[found.start():]
            if any(key.startswith(tail) for key in self._by_first[tail[0]]):
                return found.start()
        return len(data)


# The HTTP libraries log raw response headers at DEBUG, below our transport.
_SCRUBBED_LOGGERS = ("httpcore", "httpx", "openai", "chatmagic")
_factory_installed = False


def install_log_scrubber() -> None:
    """Scrub known keys from the records of the HTTP libraries' and our loggers (once)."""
    global _factory_installed
    if _factory_installed:
        return
    _factory_installed = True
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        if record.name.startswith(_SCRUBBED_LOGGERS) and known():
            try:
                message = record.getMessage()
            except Exception:  # noqa: BLE001 - a bad format string is logging's to report
                return record
            cleaned = scrub(message)
            if cleaned != message:
                record.msg, record.args = cleaned, None
        return record

    logging.setLogRecordFactory(factory)
