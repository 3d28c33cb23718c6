"""The only place that constructs openai clients: one per profile, built lazily, reused.

Each client gets an HTTP client of ours (the SDK's ``http_client``) whose
transport is the edge every response passes (`chatmagic.transport.edge`): headers and
body bytes are scrubbed of every known key (streamed bodies too), a body is read within
the profile's ``max_response_mb``, only a 307/308 to the same origin is followed (any
other 3xx surfaces as an HTTP status error, so nothing is sent to another origin), and
the standard proxy variables are honoured as httpx reads them, with loopback exempt
whenever ``NO_PROXY`` names localhost, 127.0.0.1 or ::1.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import os
import re
import threading
import urllib.request
import weakref
from typing import Any, Mapping
from urllib.parse import urlsplit

import httpx2
import openai

from ..core.errors import ProfileError
from ..core.profiles import Profile
from ..core.scrub import install_log_scrubber, register, scrub
from ..core.trust import is_loopback
from .edge import AsyncScrubbingTransport, ScrubbingTransport
from .limits import limit_bytes

__all__ = ["ClientPool", "proxy_for", "redirect_advice"]

install_log_scrubber()

_SECRET_HEADER = re.compile(r"auth|key|token|secret|cookie|password", re.IGNORECASE)
_LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1", "[::1]"}


# -- proxies -------------------------------------------------------------------
def _environment_proxies(environ: Mapping[str, str] | None) -> dict[str, str]:
    """``{scheme: proxy, "no": ...}`` as urllib (and so httpx) reads the environment."""
    if environ is None:
        return dict(urllib.request.getproxies())
    proxies: dict[str, str] = {}
    # As urllib does: any case first, then lower-case names win.
    for lower_only in (False, True):
        for name, value in environ.items():
            if value and name.lower().endswith("_proxy") and (not lower_only or name.islower()):
                proxies[name[:-6].lower()] = value
    if "REQUEST_METHOD" in environ:
        proxies.pop("http", None)  # CGI: HTTP_PROXY may come from a request header (httpoxy)
    return proxies


def _no_proxy_matches(entry: str, host: str, port: int | None) -> bool:
    entry = entry.split("://", 1)[-1].strip("/")
    if "/" in entry:  # a network, 192.168.0.0/16
        try:
            return ipaddress.ip_address(host) in ipaddress.ip_network(entry, strict=False)
        except ValueError:
            return False
    name, want_port = entry, None
    if entry.startswith("["):
        name, _, rest = entry[1:].partition("]")
        want_port = rest[1:] or None
    elif entry.count(":") == 1:
        name, want_port = entry.split(":")
    if want_port is not None and str(port) != want_port:
        return False
    name = name.lstrip("*").lstrip(".")
    return host == name or host.endswith("." + name)


def _bypasses_proxy(host: str, port: int | None, no_proxy: str) -> bool:
    entries = [e.strip().lower() for e in no_proxy.split(",") if e.strip()]
    if "*" in entries:
        return True
    # One loopback name exempts them all: NO_PROXY=localhost must cover 127.0.0.1 and ::1.
    if is_loopback(host) and any(e.split("://")[-1].strip("/") in _LOOPBACK_NAMES
                                  for e in entries):
        return True
    return any(_no_proxy_matches(e, host, port) for e in entries)


def _proxy_url(url: str, environ: Mapping[str, str] | None = None) -> str | None:
    """The proxy a request to ``url`` goes through (credentials included), or None."""
    parts = urlsplit(url)
    proxies = _environment_proxies(environ)
    proxy = proxies.get(parts.scheme) or proxies.get("all")
    if not proxy:
        return None
    host = (parts.hostname or "").lower()
    if _bypasses_proxy(host, parts.port, proxies.get("no", "")):
        return None
    return proxy if "://" in proxy else f"http://{proxy}"


def proxy_for(url: str, environ: Mapping[str, str] | None = None) -> str | None:
    """The proxy a request to ``url`` goes through, without its credentials, or None.

    For messages: "Cannot reach X through the proxy P (from HTTPS_PROXY)".
    """
    proxy = _proxy_url(url, environ)
    if proxy is None:
        return None
    parts = urlsplit(proxy)
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{host}{f':{parts.port}' if parts.port else ''}"


# -- redirects -------------------------------------------------------------------
def redirect_advice(base_url: str, request_url: str, location: str) -> str:
    """One sentence on a redirect we did not follow, saying what to fix in base_url.

    ``request_url`` is the URL that answered 3xx; ``location`` its Location header.
    """
    from urllib.parse import urljoin

    target = urljoin(request_url, location)
    here, there = urlsplit(request_url), urlsplit(target)
    suffix = here.path[len(urlsplit(base_url).path.rstrip("/")):]
    new_path = there.path[:-len(suffix)] if suffix and there.path.endswith(suffix) \
        else there.path
    new_base = f"{there.scheme}://{there.netloc}{new_path.rstrip('/')}"
    base = base_url.rstrip("/")
    same_host = here.hostname == there.hostname
    if same_host and (here.scheme, there.scheme) == ("http", "https") and \
            there.port in (None, 443):
        return (f"the endpoint moved to https: set base_url = \"{new_base}\" "
                f"(it is {base}); a move to another origin is not followed")
    if not same_host or here.scheme != there.scheme or \
            (here.port or _port(here.scheme)) != (there.port or _port(there.scheme)):
        return (f"the endpoint redirects to another origin, {there.scheme}://{there.netloc}; "
                "chatmagic does not follow it, so neither the conversation nor a key went "
                f"there. If that host is the right one, set base_url = \"{new_base}\".")
    if new_path.rstrip("/") == urlsplit(base).path.rstrip("/") + "/v1":
        return (f"base_url is missing /v1: set base_url = \"{new_base}\" (it is {base}); "
                f"{_ONLY_307}")
    return (f"the endpoint redirects to {there.path or '/'} on the same host: set base_url = "
            f"\"{new_base}\" (it is {base}); {_ONLY_307}")


#: Which redirects are followed (`chatmagic.transport.edge`): a 301, 302 or 303 would turn
#: the POST into a GET, as browsers do, and the endpoint would answer that instead.
_ONLY_307 = "only a 307 or 308 on the same origin is followed"


def _port(scheme: str) -> int:
    return 443 if scheme == "https" else 80


# -- the pool --------------------------------------------------------------------
def _http_options(proxy: str | None) -> dict[str, Any]:
    # Our own transport means httpx reads no proxy variable itself: we pass the one we chose.
    # trust_env stays on for the TLS variables (SSL_CERT_FILE, SSL_CERT_DIR).
    return {"limits": openai.DEFAULT_CONNECTION_LIMITS, "proxy": proxy, "trust_env": True}


def _proxy_error(profile: Profile, shown: str | None, exc: Exception) -> ProfileError:
    reason = scrub(str(exc)).rstrip(".")
    return ProfileError(f"The proxy {shown or '(none)'} for {profile.host} cannot be used: "
                        f"{reason}. Fix HTTP_PROXY / HTTPS_PROXY / ALL_PROXY, or exempt the host "
                        "in NO_PROXY.")


class ClientPool:
    """Clients keyed by profile identity (the key only as a hash); async ones also by loop.

    An async client's connection pool belongs to the loop it first ran on, so
    a loop of its own (a worker thread, ``asyncio.run``) gets its own client.

    ``transport``, for tests: where every request goes instead of the network, one object
    that is both an ``httpx2.BaseTransport`` and an ``httpx2.AsyncBaseTransport`` (as
    ``httpx2.MockTransport`` and ``chatmagic.testing.in_process.InProcessTransport`` are).
    It sits where the network transport would, inside the scrubbing edge, so every response
    is still scrubbed of keys; no proxy applies to it.
    """

    def __init__(self, environ: Mapping[str, str] | None = None, *,
                 transport: httpx2.BaseTransport | None = None) -> None:
        if transport is not None and not isinstance(transport, httpx2.AsyncBaseTransport):
            raise TypeError("transport= must answer both blocking and async requests "
                            "(an httpx2.BaseTransport and an httpx2.AsyncBaseTransport)")
        self._environ = environ
        self._given = transport
        self._sync: dict[tuple[object, ...], openai.OpenAI] = {}
        self._async: dict[tuple[object, ...],
                          tuple[weakref.ref[asyncio.AbstractEventLoop], openai.AsyncOpenAI]] = {}
        self._lock = threading.Lock()  # the kernel's thread and the portal's both ask

    def _identity(self, profile: Profile) -> tuple[object, ...]:
        # A client is reused while what it was built from is unchanged. The key and the
        # headers (which may carry one) are kept only as a digest.
        secret = hashlib.sha256()
        for part in (profile.require_key(self._environ), *sorted(profile.headers.items()),
                     self.proxy(profile) or ""):
            secret.update(repr(part).encode() + b"\0")
        return (profile.name, profile.base_url, secret.hexdigest(), profile.timeout,
                profile.max_response_mb)

    def proxy(self, profile: Profile) -> str | None:
        """The proxy (with credentials) requests to this profile go through."""
        return _proxy_url(profile.base_url, self._environ)

    def _kwargs(self, profile: Profile, http_client: Any) -> dict[str, Any]:
        key = profile.require_key(self._environ)
        # What we send as a credential, no reply may show.
        register(key, *(v for n, v in profile.headers.items() if _SECRET_HEADER.search(n)))
        return {"base_url": profile.base_url, "api_key": key,
                "default_headers": dict(profile.headers) or None,
                "timeout": profile.timeout if profile.timeout else openai.NOT_GIVEN,
                "http_client": http_client}

    def _transport(self, profile: Profile, make: Any) -> Any:
        """The HTTP transport (sync or async: ``make``) for this profile, through its proxy."""
        if self._given is not None:
            return self._given
        proxy = self.proxy(profile)
        try:
            return make(**_http_options(proxy))
        except Exception as exc:  # noqa: BLE001 - a proxy scheme without its package
            raise _proxy_error(profile, proxy_for(profile.base_url, self._environ),
                               exc) from None

    def sync(self, profile: Profile) -> openai.OpenAI:
        """The blocking client for this profile (used for ``/models``)."""
        key = self._identity(profile)
        if key not in self._sync:
            transport = self._transport(profile, httpx2.HTTPTransport)
            http = httpx2.Client(transport=ScrubbingTransport(
                                     transport, limit_bytes(profile.max_response_mb)),
                                 timeout=openai.DEFAULT_TIMEOUT, follow_redirects=False)
            self._sync[key] = openai.OpenAI(**self._kwargs(profile, http))
        return self._sync[key]

    def async_(self, profile: Profile) -> openai.AsyncOpenAI:
        """The async client for this profile on the running event loop.

        Each loop keeps its own clients for as long as it runs (the kernel's, the
        portal's), so neither path throws the other's connections away; clients of
        loops that have closed are forgotten (their sockets went with the loop).
        """
        loop = asyncio.get_running_loop()
        key = (id(loop), *self._identity(profile))
        with self._lock:
            for gone in [k for k, (ref, _) in self._async.items()
                         if (old := ref()) is None or old.is_closed()]:
                del self._async[gone]
            if key not in self._async:
                transport = self._transport(profile, httpx2.AsyncHTTPTransport)
                http = httpx2.AsyncClient(transport=AsyncScrubbingTransport(
                                              transport, limit_bytes(profile.max_response_mb)),
                                          timeout=openai.DEFAULT_TIMEOUT,
                                          follow_redirects=False)
                self._async[key] = (weakref.ref(loop),
                                    openai.AsyncOpenAI(**self._kwargs(profile, http)))
            return self._async[key][1]

    async def aclose_loop(self) -> None:
        """Close and forget the async clients of the running loop (before that loop ends)."""
        loop = id(asyncio.get_running_loop())
        with self._lock:
            mine = [self._async.pop(k)[1] for k in list(self._async) if k[0] == loop]
        for client in mine:
            await client.close()

    @property
    def environ(self) -> Mapping[str, str]:
        return os.environ if self._environ is None else self._environ
