"""The failure a raised exception means: what the SDK or the HTTP layer raised, as data.

`failure_from_exception` names what happened, at which endpoint, and what to do
(`chatmagic.core.failures.StreamError`); it never shows a key.
"""

from __future__ import annotations

import email.utils
import re
import ssl
import time
from typing import Any
from urllib.parse import urljoin

import openai

from ..core.failures import StreamError, no_lone_surrogates, is_transport, sentence, server_text
from ..core.profiles import Profile
from .client import proxy_for, redirect_advice
from .limits import MB, TooLarge

__all__ = ["in_band_advice", "failure_from_exception", "describe_exception"]


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


# A server's words that the request itself is at fault, whatever status came with them
# (llama-server and llama-cpp-python answer both with HTTP 500, LiteLLM's proxy passes that
# on): asked again unchanged, it fails the same way.
_NO_IMAGES = re.compile(r"image input is not supported|images? (?:input )?(?:is |are )?not "
                        r"supported|(?:does not|doesn't) support (?:images?|vision)|not a "
                        r"multimodal model|not configured with a mmproj", re.IGNORECASE)
_BAD_REQUEST = re.compile(r"validation error|extra inputs are not permitted|unexpected keyword "
                          r"argument|unknown (?:parameter|field|argument)|unrecognized (?:request "
                          r")?(?:parameter|argument|field)|not supported|unsupported|invalid "
                          r"(?:value|parameter|argument|request|type)|is not a valid",
                          re.IGNORECASE)
#: Statuses that say the server or a gateway is in trouble, whatever words come with them.
_PASSING = (502, 503, 504)
_NO_IMAGES_ADVICE = "this model does not take images: drop the image, or choose a vision model"
_PAST_CONTEXT = re.compile(r"context (?:length|window|size)|maximum context|too many tokens|"
                           r"prompt is too long|exceeds? the (?:available )?context",
                           re.IGNORECASE)
_PAST_CONTEXT_ADVICE = ("the prompt and the history are past the model's context: start over "
                        "with --new, drop turns with %chat_history undo, or send with "
                        "--no-history")


def _refused_as_sent(status: int, said: str) -> str | None:
    """The advice for a request whose server says it is itself at fault (an image a model
    does not take, a field it does not know), or None. A 4xx says so by its status already:
    only its words about images get their own advice."""
    if status in _PASSING:
        return None
    if _NO_IMAGES.search(said):
        return _NO_IMAGES_ADVICE
    if _PAST_CONTEXT.search(said):
        return _PAST_CONTEXT_ADVICE
    if status >= 500 and _BAD_REQUEST.search(said):
        return ("check the options sent: the endpoint refuses the request itself, so "
                "asking again will not help")
    return None


def in_band_advice(said: str) -> str | None:
    """The advice for an error the endpoint sent inside a 200 answer or a stream (a proxy's
    error frame) whose words say the request itself is at fault, or None (asked again)."""
    return _refused_as_sent(500, said)


def failure_from_exception(exc: BaseException, profile: Profile, model: str,
                           timeout: float | None = None, *, kept: bool = False) -> StreamError:
    """The failure a raised exception means: what happened, where, what to do. Never a key.
    ``kept``: a stream's text came before the failure and stays."""
    where = f"{profile.name} ({profile.base_url})"
    if isinstance(exc, TooLarge):
        return StreamError(f"{where}: {exc.what} went past {exc.limit / MB:g} MB, so chatmagic "
                           "stopped reading it" + (" (the text that came before is kept)"
                                                   if kept else "") +
                           f". If it is meant to be that large, raise {exc.setting} in "
                           f"[profiles.{profile.name}] of chatmagic.toml.", "protocol")
    transport = is_transport(exc)
    if isinstance(exc, openai.APITimeoutError) or (transport and "Timeout" in type(exc).__name__):
        limit = f" within {timeout:g} s" if timeout else ""
        return StreamError(f"No answer from {where}{limit}: the endpoint is slow or stalled. "
                           "Try again, or raise --timeout.", "timeout")
    if isinstance(exc, openai.APIConnectionError):
        certificate = _certificate_failure(exc)
        if certificate is not None:
            return StreamError(f"Cannot reach {where}: {_certificate_advice(certificate)}",
                               "certificate")
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
        refused = _refused_as_sent(status, said)
        advice = {
            401: _key_advice(profile),
            403: "the key lacks access to this model or endpoint",
            404: (f"check the model id '{model}' (%models lists what {profile.name} serves)"
                  if model else "check the profile's base_url"),
            429: "rate limited after retries: wait a little, or send fewer requests at once",
        }.get(status, refused or ("the endpoint failed: try again later" if status >= 500 else
              _key_advice(profile) if _about_the_key(said) else "check the options sent"))
        return StreamError(f"{where} answered HTTP {status}: {said} — {advice}.",
                           "rejected" if refused and status >= 500 else "status", status,
                           _retry_after(exc.response.headers))
    if transport:  # raised while reading the body, which the SDK does not wrap
        return StreamError(f"The connection to {where} broke during the reply "
                           f"({type(exc).__name__}): try again.", "connect")
    if isinstance(exc, openai.OpenAIError):
        return StreamError(sentence(no_lone_surrogates(f"Request to {where} failed: {exc}")),
                           "protocol")
    return StreamError(sentence(no_lone_surrogates(f"Request to {where} failed: "
                                           f"{type(exc).__name__}: {exc}")), "protocol")


def _certificate_failure(exc: BaseException) -> ssl.SSLCertVerificationError | None:
    """The TLS certificate check that refused the server, anywhere in the exception's chain."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, ssl.SSLCertVerificationError):
            return exc
        for arg in exc.args:  # httpcore keeps the ssl error as an argument
            if isinstance(arg, ssl.SSLCertVerificationError):
                return arg
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return None


def _certificate_advice(refused: ssl.SSLCertVerificationError) -> str:
    """What the failed certificate check means, and the fix that fits its reason."""
    reason = no_lone_surrogates(str(refused.verify_message or refused.reason or "refused"))
    said = f"the server's TLS certificate failed the check ({reason})"
    if "hostname" in reason.lower() or "ip address mismatch" in reason.lower():
        return f"{said}: it is for another host; check the host name in base_url."
    if "expired" in reason.lower() or "not yet valid" in reason.lower():
        return f"{said}: the server's certificate is out of date, or this machine's clock is."
    return (f"{said}: it is signed by a certificate authority this machine does not trust "
            "(a company proxy, a self-signed server). Set SSL_CERT_FILE to that authority's "
            "PEM file (or SSL_CERT_DIR to its folder) before starting Python; the check is "
            "never turned off.")


def _body_text(exc: openai.APIStatusError) -> str | None:
    try:
        return exc.response.text
    except Exception:  # noqa: BLE001 - a streamed body not read: nothing more to say
        return None


def describe_exception(exc: BaseException, profile: Profile, model: str,
                       timeout: float | None = None) -> str:
    """The message of `failure_from_exception` (for callers that only show words)."""
    return failure_from_exception(exc, profile, model, timeout).message
