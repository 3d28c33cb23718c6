"""Failures as data: what went wrong with a request, and the one message that says it.

`StreamError` is the last event of a failed stream and what `Reply.failure`
holds: a ``kind`` a program can branch on, the HTTP ``status`` and
``retry_after`` when the server gave them, and one readable ``message``.
(`chatmagic.transport.failures` makes one from whatever the SDK or the
transport raised); `server_text` digs the server's own words out of a body of any common
shape (an HTML error page becomes a line, not 500 characters of markup).
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass
from typing import Any, Literal, get_args

from .visible import visible

__all__ = ["StreamError", "FailureKind", "KINDS", "server_text", "no_lone_surrogates", "sentence",
           "said_line", "is_transport"]

#: What a failure can be. ``connect``: the endpoint could not be reached (or the connection
#: broke); ``certificate``: its TLS certificate was refused (asking again cannot help);
#: ``timeout``: no answer (or no complete one) in time; ``status``: an HTTP error status;
#: ``rejected``: an HTTP 5xx whose words say the request itself is at fault (an image for a
#: model that takes none, a field the server does not take): unlike other 5xx, asking again
#: unchanged fails the same way; ``redirect``: an HTTP 3xx; ``server``: the endpoint reported
#: an error inside a 200 answer or a stream; ``protocol``: bytes that are no reply we can
#: read; ``incomplete``: a stream that ended before its finish reason; ``empty``: a stream
#: with nothing in it; ``interrupted``: stopped here (Stop, an interrupt); ``invalid_output``:
#: a reply that is not the JSON its ``--schema`` asks for (the text stays); ``tool_rounds``:
#: the model was still calling tools at ``max_rounds``.
FailureKind = Literal["connect", "certificate", "timeout", "status", "rejected", "redirect",
                      "server", "protocol", "incomplete", "empty", "interrupted", "invalid_output",
                      "tool_rounds"]
KINDS: tuple[FailureKind, ...] = get_args(FailureKind)


@dataclass(frozen=True, slots=True)
class StreamError:
    """A failed request: the one message a user reads, and the facts it was made from."""

    message: str
    kind: FailureKind = "protocol"
    status: int | None = None
    retry_after: float | None = None  # seconds, when the server said how long to wait


_SURROGATE = re.compile("[\ud800-\udfff]")


def no_lone_surrogates(text: str) -> str:
    """Text with lone surrogates (from JSON escapes like ``\\ud800``) replaced by U+FFFD.

    A Python string holds a valid pair as one character, so any surrogate left is
    alone; the kernel's message packing raises on one, losing the whole reply.
    """
    return _SURROGATE.sub("\ufffd", text)


def sentence(text: str) -> str:
    """Text ending like a sentence, so a caller can append another one after it."""
    text = text.rstrip()
    return text if not text or text[-1] in ".!?…" else text + "."


_TAG = re.compile(r"<[^>]*>")
_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_SKIP = re.compile(r"<(script|style)[^>]*>.*?</\1>", re.IGNORECASE | re.DOTALL)


def _html_summary(page: str) -> str:
    """One short line for an HTML error page (a proxy's 502): its title, or its words."""
    title = _TITLE.search(page)
    words = title.group(1) if title else _TAG.sub(" ", _SKIP.sub(" ", page))
    words = " ".join(html.unescape(words).split())
    if len(words) > 120:
        words = words[:117].rstrip() + "…"
    return f"an HTML page ({visible(words)})" if words else "an HTML page"


def _looks_like_html(text: str) -> bool:
    head = text.lstrip()[:200].lower()
    return head.startswith(("<!doctype html", "<html", "<head", "<body")) or "<html" in head


# ANSI escapes (CSI and OSC sequences, lone ESCs) and other control characters: a server's
# words must not paint fake status lines in a terminal or an error output.
_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b.?")
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f]+")
#: Characters of a server's message shown at most (the rest is counted, not shown).
MAX_SAID = 500


def said_line(text: str) -> str:
    """A server's message as one clean line of bounded length, saying how much was cut."""
    text = " ".join(_CONTROLS.sub(" ", _ESCAPES.sub("", text)).split())
    if len(text) > MAX_SAID:
        text = f"{text[:MAX_SAID].rstrip()}… ({len(text) - MAX_SAID:,} more characters cut)"
    return visible(text)  # a bidirectional control would reorder what it says


def server_text(body: Any) -> str | None:
    """The server's own error message from a body of any common shape, or None."""
    if isinstance(body, list) and body:  # Gemini sends a list of error objects
        return server_text(body[0])
    if isinstance(body, dict):
        error = body.get("error", body if "message" in body else None)
        if isinstance(error, dict):
            said = error.get("message") or error.get("msg")
            return said_line(str(said) if said else json.dumps(error)[:300])
        if isinstance(error, str):
            return said_line(error)
        return None
    if isinstance(body, (bytes, bytearray)):
        body = bytes(body).decode("utf-8", "replace")
    if isinstance(body, str) and body.strip():
        if _looks_like_html(body):
            return _html_summary(body)
        return said_line(body)
    return None


def is_transport(exc: BaseException) -> bool:
    """An HTTP-layer error (httpx for openai 1.x, httpx2 for 3.x) the SDK did not wrap."""
    return type(exc).__module__.split(".")[0] in ("httpx", "httpx2", "httpcore", "httpcore2")
