"""The account as the endpoint itself reports it: balance, used, limit (``%chat_usage --remote``).

Gateways answer such a query each their own way. `remote_account` asks one
profile's endpoint, with its own key and client (`ClientPool`), the routes in
turn and stops at the first that answers: new-api's ``/api/usage/token``,
OpenAI-style billing (``/dashboard/billing/subscription`` and ``/usage``, served
by one-api, new-api and proxies, at the host root or under ``/v1``), LiteLLM's ``/key/info``, OpenRouter's ``/key`` and
DeepSeek's ``/user/balance``. A route that answers a web page, an error with
HTTP 200 or a 5xx is named in the one message said when none answers.
"""

from __future__ import annotations

import datetime as _dt
import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable
from urllib.parse import urlsplit

import openai

from ..core import scrub
from ..core.errors import EndpointError
from ..core.failures import no_lone_surrogates, server_text
from ..core.profiles import Profile

if TYPE_CHECKING:
    from ..transport.client import ClientPool

__all__ = ["Account", "AccountLine", "remote_account", "NEW_API_QUOTA_PER_USD", "ROUTES"]

#: new-api's quota units per US dollar, as it ships (``QuotaPerUnit``).
NEW_API_QUOTA_PER_USD = 500_000

_TIMEOUT = 15.0


@dataclass(frozen=True)
class AccountLine:
    """The figures of one currency: what is left, what was used, the limit (None: not said)."""

    currency: str
    balance: float | None = None
    used: float | None = None
    limit: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"currency": self.currency, "balance": self.balance, "used": self.used,
                "limit": self.limit}


@dataclass(frozen=True)
class Account:
    """What one endpoint said about the account behind a key, and which route said it."""

    profile: str
    endpoint: str
    source: str  # which service's route answered, in words
    route: str  # the path that answered
    lines: list[AccountLine]
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"profile": self.profile, "endpoint": self.endpoint, "source": self.source,
                "route": self.route, "lines": [line.to_dict() for line in self.lines],
                "notes": list(self.notes)}


class _NotServed(Exception):
    """The route is not there (404, 405, a redirect): try the next one, say nothing."""


class _Problem(Exception):
    """The route answered, but not with figures: a web page, an error, a 5xx."""

    def __init__(self, route: str, what: str) -> None:
        super().__init__(f"{route} {what}")
        self.route, self.what = route, what


_Reader = Callable[["_Asker", str], Account]


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number == number and abs(number) != float("inf") else None


class _Asker:
    """GETs on one endpoint through its own client, classified into figures or problems."""

    def __init__(self, profile: Profile, clients: "ClientPool") -> None:
        self.profile = profile
        self.client = clients.sync(profile).with_options(max_retries=0, timeout=_TIMEOUT)
        base = profile.base_url.rstrip("/")
        parts = urlsplit(base)
        self.base = base
        self.root = f"{parts.scheme}://{parts.netloc}"
        # A gateway behind a path prefix (https://host/litellm/v1) has its root routes there.
        self.stem = re.sub(r"/(api/)?v\d+[a-z0-9]*$", "", base)

    def urls(self, path: str, root_first: bool = False) -> list[str]:
        """The route under the base URL, above its version part and at the host root
        (gateways serve one or another)."""
        tried = [self.stem + path, self.root + path, self.base + path] if root_first else \
            [self.base + path, self.stem + path, self.root + path]
        return list(dict.fromkeys(tried))

    def shown(self, url: str) -> str:
        return url[len(self.root):] or "/"

    def get(self, url: str, params: dict[str, str] | None = None) -> Any:
        """The JSON of a GET; _NotServed or _Problem (naming the route) otherwise."""
        import httpx2

        route = self.shown(url)
        try:
            response = self.client.get(url, cast_to=httpx2.Response,
                                       options={"params": params} if params else {})
        except openai.APIStatusError as exc:
            status = exc.status_code
            if status in (404, 405) or 300 <= status < 400:
                raise _NotServed(route) from None
            said = server_text(_body(exc.response)) or ""
            if status in (401, 403):
                raise _Problem(route, f"refused the key (HTTP {status}){_said(said)}") from None
            raise _Problem(route, f"answered HTTP {status}{_said(said)}") from None
        text = response.text
        kind = response.headers.get("content-type", "")
        if "html" in kind or text.lstrip()[:1] == "<":
            raise _Problem(route, "answered a web page (HTML), not JSON figures")
        try:
            payload = json.loads(text)
        except ValueError:
            raise _Problem(route, f"answered something that is not JSON: "
                                  f"{no_lone_surrogates(text[:80])!r}") from None
        if isinstance(payload, dict) and ("error" in payload or payload.get("success") is False
                                          or payload.get("code") is False):
            said = server_text(payload) or str(payload.get("message") or "")
            raise _Problem(route, f"answered HTTP 200 with an error{_said(said)}")
        return payload


def _body(response: Any) -> Any:
    try:
        return response.json()
    except Exception:  # noqa: BLE001 - not JSON: its text
        return response.text


def _said(text: str) -> str:
    return f": {scrub.scrub(text)}" if text else ""


def _shape(route: str, what: str) -> _Problem:
    return _Problem(route, f"answered JSON without {what}")


# -- each gateway's route --------------------------------------------------------------

def _openai_billing(asker: _Asker, url: str) -> Account:
    route = asker.shown(url)
    sub = asker.get(url)
    if not isinstance(sub, dict) or not any(k in sub for k in (
            "hard_limit_usd", "soft_limit_usd", "system_hard_limit_usd")):
        raise _shape(route, "hard_limit_usd")
    limit = _number(sub.get("hard_limit_usd"))
    if limit is None:
        limit = _number(sub.get("system_hard_limit_usd"))
    today = _dt.date.today()
    usage_url = url.replace("/subscription", "/usage")
    notes = []
    used = None
    try:
        # OpenAI's own route takes at most 100 days; one-api and new-api ignore the dates.
        usage = asker.get(usage_url, {"start_date": (today - _dt.timedelta(days=99)).isoformat(),
                                      "end_date": (today + _dt.timedelta(days=1)).isoformat()})
        cents = _number(usage.get("total_usage")) if isinstance(usage, dict) else None
        if cents is None:
            raise _shape(asker.shown(usage_url), "total_usage")
        used = cents / 100  # in cents, whatever the dates
    except (_NotServed, _Problem) as exc:
        notes.append(f"used: unknown ({exc.args[0]})" if isinstance(exc, _Problem)
                     else f"used: unknown ({asker.shown(usage_url)} is not served)")
    balance = limit - used if limit is not None and used is not None else None
    return Account(asker.profile.name, asker.profile.base_url, "OpenAI-style billing", route,
                   [AccountLine("USD", balance, used, limit)], notes)


def _new_api_token(asker: _Asker, url: str) -> Account:
    route = asker.shown(url)
    payload = asker.get(url)
    data = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(data, dict) or "total_used" not in data:
        raise _shape(route, "data.total_used")

    def usd(name: str) -> float | None:
        units = _number(data.get(name))
        return None if units is None else units / NEW_API_QUOTA_PER_USD

    unlimited = data.get("unlimited_quota") is True
    line = AccountLine("USD", None if unlimited else usd("total_available"), usd("total_used"),
                       None if unlimited else usd("total_granted"))
    notes = [f"new-api quota units at {NEW_API_QUOTA_PER_USD:,} per USD (its default)"]
    if unlimited:
        notes.append("the key has no quota limit")
    return Account(asker.profile.name, asker.profile.base_url, "new-api token usage", route,
                   [line], notes)


def _litellm_key(asker: _Asker, url: str) -> Account:
    route = asker.shown(url)
    payload = asker.get(url)
    info = payload.get("info") if isinstance(payload, dict) else None
    if not isinstance(info, dict) or "spend" not in info:
        raise _shape(route, "info.spend")
    spend, budget = _number(info.get("spend")), _number(info.get("max_budget"))
    balance = budget - spend if budget is not None and spend is not None else None
    notes = [] if budget is not None else ["the key has no budget (max_budget)"]
    return Account(asker.profile.name, asker.profile.base_url, "LiteLLM key info", route,
                   [AccountLine("USD", balance, spend, budget)], notes)


def _openrouter_key(asker: _Asker, url: str) -> Account:
    route = asker.shown(url)
    payload = asker.get(url)
    data = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(data, dict) or "usage" not in data:
        raise _shape(route, "data.usage")
    limit = _number(data.get("limit"))
    notes = [] if limit is not None else ["the key has no credit limit"]
    return Account(asker.profile.name, asker.profile.base_url, "OpenRouter key", route,
                   [AccountLine("USD", _number(data.get("limit_remaining")),
                                _number(data.get("usage")), limit)], notes)


def _deepseek_balance(asker: _Asker, url: str) -> Account:
    route = asker.shown(url)
    payload = asker.get(url)
    infos = payload.get("balance_infos") if isinstance(payload, dict) else None
    if not isinstance(infos, list):
        raise _shape(route, "balance_infos")
    lines = [AccountLine(str(i.get("currency") or "?"), _number(i.get("total_balance")))
             for i in infos if isinstance(i, dict)]
    notes = [] if payload.get("is_available", True) else ["the balance is not enough to call "
                                                          "the API (is_available: false)"]
    return Account(asker.profile.name, asker.profile.base_url, "DeepSeek balance", route,
                   lines, notes)


#: (what it is, path, read at the host root first, reader), in the order they are tried.
#: new-api's own route first: it serves the billing routes too, but only this one tells an
#: unlimited key (billing shows it as a limit of 100,000,000 USD).
ROUTES: list[tuple[str, str, bool, _Reader]] = [
    ("new-api's /api/usage/token", "/api/usage/token", True, _new_api_token),
    ("OpenAI-style billing", "/dashboard/billing/subscription", False, _openai_billing),
    ("LiteLLM's /key/info", "/key/info", True, _litellm_key),
    ("OpenRouter's /key", "/key", False, _openrouter_key),
    ("DeepSeek's /user/balance", "/user/balance", True, _deepseek_balance),
]

# A host that is known to serve one route is asked that one first.
_HOST_FIRST = {"openrouter.ai": "/key", "api.deepseek.com": "/user/balance"}


def remote_account(profile: Profile, clients: "ClientPool") -> Account:
    """Ask the endpoint for the account behind the profile's key; the first route that
    answers wins. An EndpointError (one message, never the key) when none does."""
    asker = _Asker(profile, clients)
    routes = sorted(ROUTES, key=lambda r: r[1] != _HOST_FIRST.get(urlsplit(asker.base).hostname
                                                                   or ""))
    problems: dict[str, list[str]] = {}  # what went wrong -> the routes it went wrong on
    for _name, path, root_first, read in routes:
        for url in asker.urls(path, root_first):
            try:
                account = read(asker, url)
            except _NotServed:
                continue
            except _Problem as exc:
                problems.setdefault(exc.what, []).append(exc.route)
                continue
            except openai.APIConnectionError as exc:
                cause = exc.__cause__ or exc
                raise EndpointError(f"Cannot reach {profile.name} ({profile.base_url}) to ask "
                                    f"for the account: {type(cause).__name__}.") from None
            return account
    names = ", ".join(r[0] for r in ROUTES)
    words = (f"{profile.name} ({profile.base_url}) gave no account figures: none of {names} "
             "answered with them.")
    if problems:
        words += " What answered: " + "; ".join(f"{', '.join(routes)} {what.rstrip('.')}"
                                                for what, routes in problems.items()) + "."
    raise EndpointError(scrub.scrub(words))
