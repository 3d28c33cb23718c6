"""Failures as data: what went wrong with a request, and the one message that says it.

`StreamError` is the last event of a failed stream and what `Reply.failure`
holds: a ``kind`` a program can branch on, the HTTP ``status`` and
``retry_after`` when the server gave them, and one readable ``message``.
`failure_from_exception` makes one from whatever the SDK or the transport
raised; `server_text` digs the server's own words out of a body of any common
shape (an HTML error page becomes a line, not 500 characters of markup).
"""

from __future__ import annotations

import email.utils
import html
import json
import re
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

import openai

from .client import proxy_for, redirect_advice
from .profiles import Profile

__all__ = ["StreamError", "KINDS", "failure_from_exception", "describe_exception",
           "server_text", "clean_text", "sentence", "is_transport"]

#: What a failure can be. ``server``: the endpoint reported an error inside a 200 answer or a
#: stream; ``protocol``: bytes that are no reply we can read; ``incomplete``: a stream that
#: ended before its finish reason; ``empty``: a stream with nothing in it (only from
#: ``astream_chat(retry_empty=False)``); ``interrupted``: stopped here (Stop, an interrupt);
#: ``invalid_output``: a reply that is not the JSON its ``--schema`` asks for (the text stays).
KINDS = ("connect", "timeout", "status", "redirect", "server", "protocol", "incomplete",
         "empty", "interrupted", "invalid_output")


@dataclass(frozen=True, slots=True)
class StreamError:
    """A failed request: the one message a user reads, and the facts it was made from."""

    message: str
    kind: str = "protocol"
    status: int | None = None
    retry_after: float | None = None  # seconds, when the server said how long to wait


_SURROGATE = re.compile("[\ud800-\udfff]")


def clean_text(text: str) -> str:
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
    return f"an HTML page ({words})" if words else "an HTML page"


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
    return clean_text(text)


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


def _retry_after(headers: Any) -> float | None:
    """Seconds to wait, from Retry-After (seconds or an HTTP date) or retry-after-ms."""
    try:
        millis = headers.get("retry-after-ms")
        if millis is not None:
            return max(0.0, float(millis) / 1000)
        value = headers.get("retry-after")
        if value is None:
            return None
        try:
            return max(0.0, float(value))
        except ValueError:
            when = email.utils.parsedate_to_datetime(value)
            return max(0.0, when.timestamp() - time.time())
    except (TypeError, ValueError, AttributeError, IndexError):
        return None


def _redirect(exc: openai.APIStatusError, profile: Profile, where: str) -> StreamError:
    """A 3xx the client did not follow: where it pointed, and the base_url to use instead."""
    status, response = exc.status_code, exc.response
    asked = str(response.request.url)
    location = response.headers.get("location")
    if not location:
        return StreamError(f"{where} answered HTTP {status} (a redirect) without saying where "
                           "to: check the profile's base_url.", "redirect", status)
    target = urljoin(asked, location)
    advice = redirect_advice(profile.base_url, asked, location)
    return StreamError(sentence(f"{where} answered HTTP {status}, sending the request to "
                                f"{target}: {advice}"), "redirect", status)


# LiteLLM's proxy without a database answers an unknown key with HTTP 400 "No connected db."
_KEY_WORDS = ("no connected db", "api key", "api_key", "authentication", "unauthorized")


def _about_the_key(said: str) -> bool:
    return any(words in said.lower() for words in _KEY_WORDS)


def _key_advice(profile: Profile) -> str:
    return (f"check the key (set {profile.api_key_env})" if profile.api_key_env
            else "check the profile's key")


def failure_from_exception(exc: BaseException, profile: Profile, model: str,
                           timeout: float | None = None) -> StreamError:
    """The failure a raised exception means: what happened, where, what to do. Never a key."""
    where = f"{profile.name} ({profile.base_url})"
    transport = is_transport(exc)
    if isinstance(exc, openai.APITimeoutError) or (transport and "Timeout" in type(exc).__name__):
        limit = f" within {timeout:g} s" if timeout else ""
        return StreamError(f"No answer from {where}{limit}: the endpoint is slow or stalled. "
                           "Try again, or raise --timeout.", "timeout")
    if isinstance(exc, openai.APIConnectionError):
        cause = type(exc.__cause__ or exc).__name__
        proxy = proxy_for(profile.base_url)
        if proxy:
            return StreamError(f"Cannot reach {where} through the proxy {proxy} ({cause}): is "
                               "the proxy right, or should NO_PROXY name this host?", "connect")
        return StreamError(f"Cannot reach {where} ({cause}): is the server running and the "
                           "base_url right?", "connect")
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        if 300 <= status < 400:
            return _redirect(exc, profile, where)
        said = server_text(exc.body) or server_text(_body_text(exc)) or exc.message
        advice = {
            401: _key_advice(profile),
            403: "the key lacks access to this model or endpoint",
            404: (f"check the model id '{model}' (%models lists what {profile.name} serves)"
                  if model else "check the profile's base_url"),
            429: "rate limited after retries: wait a little, or send fewer requests at once",
        }.get(status, "the endpoint failed: try again later" if status >= 500 else
              _key_advice(profile) if _about_the_key(said) else "check the options sent")
        return StreamError(f"{where} answered HTTP {status}: {said} — {advice}.",
                           "status", status, _retry_after(exc.response.headers))
    if transport:  # raised while reading the body, which the SDK does not wrap
        return StreamError(f"The connection to {where} broke during the reply "
                           f"({type(exc).__name__}): try again.", "connect")
    if isinstance(exc, openai.OpenAIError):
        return StreamError(sentence(clean_text(f"Request to {where} failed: {exc}")), "protocol")
    return StreamError(sentence(clean_text(f"Request to {where} failed: "
                                           f"{type(exc).__name__}: {exc}")), "protocol")


def _body_text(exc: openai.APIStatusError) -> str | None:
    try:
        return exc.response.text
    except Exception:  # noqa: BLE001 - a streamed body not read: nothing more to say
        return None


def describe_exception(exc: BaseException, profile: Profile, model: str,
                       timeout: float | None = None) -> str:
    """The message of `failure_from_exception` (for callers that only show words)."""
    return failure_from_exception(exc, profile, model, timeout).message
