"""What a reply cost, and what a run will cost: prices, where they come from, and the sums.

A reply's cost comes, in this order, from the endpoint's own figure (the
usage's ``cost``, which OpenRouter and LiteLLM send), else the maintained price
table of the `genai-prices` package (matched by the endpoint's base URL and the
model id), else the prices the user wrote in ``chatmagic.toml``
(``[profiles.NAME.prices]``, then ``[prices]``; per million tokens). Where none
is known the cost is None: "unknown" is never shown as 0.
"""

from __future__ import annotations

import fnmatch
import math
import re
import warnings
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterable, Mapping

from .errors import OptionError, ProfileError
from .events import Usage
from .tokens import prompt_tokens

__all__ = ["Price", "Cost", "Pricer", "PriceBook", "Estimate", "CURRENCIES", "money",
           "estimate_cost", "check_budget", "DEFAULT_OUTPUT_TOKENS",
           "ENDPOINT_ONLY"]

# ISO 4217 codes in use: a price in another "currency" is a typo we say, not a sum we keep.
CURRENCIES = frozenset("""
AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN BWP
BYN BZD CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP
GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR
KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK
MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR
SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS
UAH UGX USD UYU UZS VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG
""".split())

_PER = Decimal(1_000_000)  # prices are written per million tokens
_PRICE_KEYS = ("input", "cached_input", "output", "currency")

#: What a reply is taken to be, in tokens, for an estimate of a request without a token
#: limit (with --max-tokens, that limit: the estimate is then a ceiling).
DEFAULT_OUTPUT_TOKENS = 1000


def money(amount: float, currency: str) -> str:
    """An amount as shown: three significant digits below a cent, ``0.0042 USD``.

    The code, never a ``$``: two dollar signs in one output are typeset as math.
    """
    if amount == 0:
        text = "0"
    elif amount >= 0.01:
        text = f"{amount:,.4f}".rstrip("0").rstrip(".")
    else:
        digits = 2 - math.floor(math.log10(amount))
        text = f"{amount:.{digits}f}".rstrip("0")
    return f"{text} {currency}"


@dataclass(frozen=True)
class Cost:
    """What one request cost (or is estimated to cost), in one currency, and who said so."""

    amount: float
    currency: str = "USD"
    #: "endpoint" (its own figure), "price table" (genai-prices) or the chatmagic.toml path
    source: str = "endpoint"
    #: The tokens were counted by chatmagic (the endpoint reported none): so is the cost.
    estimated: bool = False

    def __float__(self) -> float:
        return self.amount

    def __str__(self) -> str:
        return ("~" if self.estimated else "") + money(self.amount, self.currency)

    def to_dict(self) -> dict[str, Any]:
        return {"amount": self.amount, "currency": self.currency, "source": self.source,
                "estimated": self.estimated}


@dataclass(frozen=True)
class Price:
    """A model's prices per million tokens, as chatmagic.toml sets them."""

    input: Decimal
    output: Decimal
    cached_input: Decimal | None = None  # None: cached input costs what input costs
    currency: str = "USD"
    source: str = "chatmagic.toml"

    def cost(self, usage: Usage) -> Cost:
        cached = min(usage.cached_tokens, usage.prompt_tokens)
        cached_price = self.input if self.cached_input is None else self.cached_input
        total = ((usage.prompt_tokens - cached) * self.input + cached * cached_price
                 + usage.completion_tokens * self.output) / _PER
        return Cost(float(total), self.currency, self.source, usage.estimated)


def _table_cost(usage: Usage, model: str, base_url: str) -> Cost | None:
    """The cost by genai-prices' table, when it knows this endpoint and model."""
    try:
        import genai_prices
    except ImportError:  # pragma: no cover - a declared dependency; a broken install: no table
        return None
    cached = min(usage.cached_tokens, usage.prompt_tokens)
    table_usage = genai_prices.Usage(input_tokens=usage.prompt_tokens, cache_read_tokens=cached,
                                     output_tokens=usage.completion_tokens)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # its notes on the data's age are not the user's
            found = genai_prices.calc_price(table_usage, model, provider_api_url=base_url)
    except (LookupError, ValueError):
        return None  # an endpoint or model the table does not know: no guess
    except Exception:  # noqa: BLE001 - a table that cannot price this is an unknown price
        return None
    return Cost(float(found.total_price), "USD", "price table", usage.estimated)


@dataclass(frozen=True)
class Pricer:
    """How one model at one endpoint is priced: ask it the cost of a usage."""

    model: str
    base_url: str
    configured: Price | None = None
    table: bool = True  # consult genai-prices (off in tests of the configured path)

    def cost(self, usage: Usage | None) -> Cost | None:
        """The cost of a request that used ``usage``; None when no price is known."""
        if usage is None:
            return None
        if usage.cost is not None:
            return Cost(usage.cost, "USD", "endpoint", usage.estimated)
        if self.table and self.model:
            found = _table_cost(usage, self.model, self.base_url)
            if found is not None:
                return found
        if self.configured is not None:
            return self.configured.cost(usage)
        return None


#: For a reply planned without a pricer: only the endpoint's own figure counts.
ENDPOINT_ONLY = Pricer("", "", None, table=False)


# -- chatmagic.toml ----------------------------------------------------------------

@dataclass
class PriceBook:
    """The prices chatmagic.toml sets: per profile, and for any profile."""

    shared: dict[str, Price] = field(default_factory=dict)
    by_profile: dict[str, dict[str, Price]] = field(default_factory=dict)
    table: bool = True

    def price(self, profile: str, model: str) -> Price | None:
        """The configured price of ``model`` at ``profile`` (its own table first; an exact
        id before a glob such as ``"qwen-*"``)."""
        for prices in (self.by_profile.get(profile, {}), self.shared):
            if model in prices:
                return prices[model]
            for pattern, price in prices.items():
                if any(c in pattern for c in "*?[") and fnmatch.fnmatchcase(model, pattern):
                    return price
        return None

    def pricer(self, profile: str, base_url: str, model: str) -> Pricer:
        return Pricer(model, base_url, self.price(profile, model), self.table)

    @classmethod
    def from_toml(cls, data: Mapping[str, Any], path: Path | None, text: str = "") -> "PriceBook":
        """Read ``[prices]`` and every ``[profiles.NAME.prices]``; a bad price is one
        ProfileError naming the file and line."""
        book = cls()
        where = _Where(path, text)
        if "prices" in data:
            book.shared = _read_prices(data["prices"], ["prices"], where)
        profiles = data.get("profiles")
        for name, table in (profiles.items() if isinstance(profiles, dict) else ()):
            if isinstance(table, dict) and "prices" in table:
                book.by_profile[name] = _read_prices(table["prices"],
                                                     ["profiles", name, "prices"], where)
        return book


@dataclass(frozen=True)
class _Where:
    """Where in the file a key is, for messages (tomllib keeps no line numbers)."""

    path: Path | None
    text: str

    def __call__(self, keys: list[str]) -> str:
        shown = ".".join(_key_text(k) for k in keys)
        name = str(self.path) if self.path else "chatmagic.toml"
        line = _line_of(self.text, keys)
        return f"{name}, line {line} ({shown})" if line else f"{name}: {shown}"


def _key_text(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else f'"{key}"'


_HEADER = re.compile(r"^\s*\[\s*([^\[\]]+?)\s*\]\s*(#.*)?$")
_KEY = re.compile(r"""^\s*("(?:[^"\\]|\\.)*"|'[^']*'|[A-Za-z0-9_-]+)\s*[=.]""")


def _split_keys(dotted: str) -> list[str]:
    parts = re.findall(r""""((?:[^"\\]|\\.)*)"|'([^']*)'|([A-Za-z0-9_-]+)""", dotted)
    return [a or b or c for a, b, c in parts]


def _line_of(text: str, keys: list[str]) -> int | None:
    """The line that sets ``keys`` (a table header, or a key under its table), if found."""
    table: list[str] = []
    best: int | None = None
    for number, line in enumerate(text.splitlines(), 1):
        header = _HEADER.match(line)
        if header:
            table = _split_keys(header.group(1))
            if table == keys:
                return number
            continue
        key = _KEY.match(line)
        if key is None:
            continue
        path = table + _split_keys(key.group(1))
        if path == keys[:len(path)] and len(path) >= 1 and (best is None or path == keys):
            best = number
            if path == keys:
                return number
    return best


def _read_prices(table: Any, keys: list[str], where: _Where) -> dict[str, Price]:
    if not isinstance(table, dict):
        raise ProfileError(f"{where(keys)}: prices must be a table of models, e.g. "
                           '"gpt-4o-mini" = { input = 0.15, output = 0.6 }')
    return {model: _read_price(entry, [*keys, model], where) for model, entry in table.items()}


def _read_price(entry: Any, keys: list[str], where: _Where) -> Price:
    if not isinstance(entry, dict):
        raise ProfileError(f"{where(keys)}: a price is a table such as "
                           "{ input = 0.8, output = 2.0, cached_input = 0.16, currency = \"CNY\" }")
    unknown = sorted(set(entry) - set(_PRICE_KEYS))
    if unknown:
        raise ProfileError(f"{where([*keys, unknown[0]])}: unknown price key "
                           f"'{unknown[0]}'; a price takes {', '.join(_PRICE_KEYS)}")
    for needed in ("input", "output"):
        if needed not in entry:
            raise ProfileError(f"{where(keys)}: the price needs '{needed}' (per million "
                               "tokens)")
    amounts: dict[str, Decimal] = {}
    for name in ("input", "cached_input", "output"):
        if name not in entry:
            continue
        value = entry[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not math.isfinite(value):
            raise ProfileError(f"{where([*keys, name])}: {name} must be a number (per million "
                               f"tokens), not {value!r}")
        if value < 0:
            raise ProfileError(f"{where([*keys, name])}: {name} is negative ({value}); a "
                               "price is 0 or more")
        amounts[name] = Decimal(str(value))
    currency = entry.get("currency", "USD")
    if not isinstance(currency, str) or currency.upper() not in CURRENCIES:
        raise ProfileError(f"{where([*keys, 'currency'])}: {currency!r} is not a currency "
                           "code (ISO 4217, such as USD, CNY, EUR)")
    return Price(amounts["input"], amounts["output"], amounts.get("cached_input"),
                 currency.upper(), str(where.path or "chatmagic.toml"))


# -- before sending: the budget guard ----------------------------------------------------

@dataclass(frozen=True)
class Estimate:
    """What a run of requests is estimated to cost: per currency, and what it leaves out."""

    totals: dict[str, float]
    requests: int
    unpriced: int  # requests whose model has no known price (not in the totals)
    assumed_output: bool  # some request has no token limit: DEFAULT_OUTPUT_TOKENS assumed

    @property
    def known(self) -> bool:
        return bool(self.totals)

    def text(self) -> str:
        if not self.totals:
            return f"cost unknown ({self.requests} requests, no price known)"
        sums = " + ".join(money(a, c) for c, a in sorted(self.totals.items()))
        words = [f"~{sums} for {self.requests} request{'s' if self.requests != 1 else ''}"]
        if self.assumed_output:
            words.append(f"assuming {DEFAULT_OUTPUT_TOKENS} output tokens a reply where no "
                         "--max-tokens limits it")
        if self.unpriced:
            words.append(f"{self.unpriced} with no known price left out")
        return "; ".join(words)


def _limit(body: Mapping[str, Any]) -> int | None:
    for name in ("max_completion_tokens", "max_tokens"):
        value = body.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def estimate_cost(requests: Iterable[tuple[Pricer | None, Mapping[str, Any]]]) -> Estimate:
    """Estimate a run before sending it: each request body with the pricer of its model.

    Prompt tokens are counted from the messages (as for an endpoint that reports
    no usage); output tokens are the body's token limit, else DEFAULT_OUTPUT_TOKENS,
    times ``n``.
    """

    totals: dict[str, float] = {}
    count = unpriced = 0
    assumed = False
    for pricer, body in requests:
        count += 1
        limit = _limit(body)
        assumed = assumed or limit is None
        choices = body.get("n") if isinstance(body.get("n"), int) else 1
        prompt = prompt_tokens(list(body.get("messages") or []))
        output = (limit or DEFAULT_OUTPUT_TOKENS) * max(1, int(choices or 1))
        cost = None if pricer is None else pricer.cost(Usage(prompt, output, prompt + output,
                                                             estimated=True))
        if cost is None:
            unpriced += 1
            continue
        totals[cost.currency] = totals.get(cost.currency, 0.0) + cost.amount
    return Estimate(totals, count, unpriced, assumed)


def check_budget(estimate: Estimate, max_cost: float | None) -> None:
    """Refuse (an OptionError, before anything is sent) a run estimated above ``max_cost``
    in any currency its prices are in. No limit, or no price known: nothing to refuse."""
    if not max_cost or max_cost <= 0:
        return
    over = {c: a for c, a in estimate.totals.items() if a > max_cost}
    if over:
        raise OptionError(f"Not sent: this run is estimated at {estimate.text()}, above "
                          f"max_cost={max_cost:g}. Raise it (%chat_config set max_cost=N), "
                          "send fewer requests, or lower --max-tokens.")

