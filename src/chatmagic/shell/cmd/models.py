"""``GET {base_url}/models`` for one or more profiles, cached, and the tables shown for it."""

from __future__ import annotations

import datetime as _dt
import fnmatch
import re
from typing import TYPE_CHECKING, Any, Iterable

import openai

from ...core.errors import EndpointError, ProfileError
from ...core.profiles import PRESETS, Profile
from ...render.html import shown_text, table_html, text_html, view
from ...transport.failures import describe_exception

if TYPE_CHECKING:
    from ...money.account import Account
    from ...engine.session import Session

__all__ = ["run", "list_models", "fetch_models", "models_table", "usage_table", "model_ids",
           "account_table"]


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _created(value: Any) -> str:
    """The day a model was made, from a Unix time or an ISO date; blank for anything else
    (a server may send 1e20, -1, NaN or words: the row is still shown)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        try:
            return _dt.datetime.fromtimestamp(value, _dt.timezone.utc).date().isoformat()
        except (OverflowError, OSError, ValueError):  # past the year 9999, or infinite
            return ""
    if isinstance(value, str) and _ISO_DATE.match(value):  # Claude's endpoint: created_at
        return value[:10]
    return ""


def fetch_models(session: "Session", profile: Profile) -> list[dict[str, Any]]:
    """The endpoint's models as rows (id, owned_by, created, profile), or a clear error."""
    client = session.clients.sync(profile)
    try:
        page = client.models.list()
        items = list(page)
    except openai.OpenAIError as exc:
        raise EndpointError(describe_exception(exc, profile, "")) from None
    rows = []
    for item in items:
        if getattr(item, "id", None) is None:
            continue  # an entry that is no model object (a bare string, null): nothing to list
        extra = getattr(item, "model_extra", None) or {}
        rows.append({"id": str(item.id), "owned_by": getattr(item, "owned_by", None)
                     or extra.get("display_name", ""),
                     "created": _created(getattr(item, "created", None)
                                         or extra.get("created_at")),
                     "profile": profile.name})
    return rows


def nearest_models(session: "Session", profile: Profile, model: str,
                   cache: dict[str, list[dict[str, Any]]]) -> list[str]:
    """The endpoint's model ids nearest ``model`` (for "did you mean" after a 404); none
    when the endpoint lists no models or cannot be asked."""
    import difflib

    if profile.name not in cache:
        try:
            cache[profile.name] = fetch_models(session, profile)
        except (EndpointError, ProfileError):
            return []
    ids = [str(row["id"]) for row in cache[profile.name]]
    return difflib.get_close_matches(model, ids, n=3, cutoff=0.5)


def _unconfigured_local(session: "Session", profile: Profile) -> bool:
    """A keyless preset as shipped (a local server's usual port), not the current profile and
    with no key variable set: nobody said one runs here, so ``--all`` does not ask it (a port
    that drops packets costs a connect timeout, and "Cannot reach" notes are noise)."""
    preset = PRESETS.get(profile.name)
    key_set = bool(profile.api_key_env and session.clients.environ.get(profile.api_key_env))
    return (preset is not None and not preset.needs_key and profile == preset and not key_set
            and profile.name != session.profiles.default)


def list_models(session: "Session", profiles: Iterable[Profile],
                cache: dict[str, list[dict[str, Any]]], refresh: bool, pattern: str | None,
                skip_keyless: bool) -> tuple[list[dict[str, Any]], list[str]]:
    """Rows of every profile (cached per profile) matching ``pattern``, and notes on skips."""
    rows: list[dict[str, Any]] = []
    notes: list[str] = []
    for profile in profiles:
        if skip_keyless and profile.needs_key and not profile.resolve_key(session.clients.environ):
            notes.append(f"{profile.name}: skipped, no key ({profile.api_key_env or 'api_key'})")
            continue
        if skip_keyless and _unconfigured_local(session, profile):
            notes.append(f"{profile.name}: skipped, a local server not configured here "
                         f"(%models -p {profile.name} asks it)")
            continue
        if refresh or profile.name not in cache:
            try:
                cache[profile.name] = fetch_models(session, profile)
            except (EndpointError, ProfileError) as exc:
                if not skip_keyless:
                    raise
                notes.append(f"{profile.name}: {exc}")
                continue
        rows += cache[profile.name]
    if pattern:
        glob = any(ch in pattern for ch in "*?[")
        rows = [r for r in rows if (fnmatch.fnmatchcase(r["id"], pattern) if glob
                                    else pattern.lower() in r["id"].lower())]
    return rows, notes


def model_ids(cache: dict[str, list[dict[str, Any]]]) -> list[str]:
    return [row["id"] for rows in cache.values() for row in rows]


def _table(header: list[str], rows: list[list[Any]]) -> tuple[str, str]:
    """The table as HTML (every value inert: servers send what they like) and as text, each
    value on one line with whatever could hide or reorder it shown as its escape."""
    rows = [[shown_text(str(v), lines=False) for v in row] for row in rows]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)] if rows else []
    plain = [" ".join(str(v).ljust(w) for v, w in zip(row, widths)) for row in [header, *rows]]
    return table_html(header, rows), "\n".join(plain)


def models_table(rows: list[dict[str, Any]], notes: list[str]) -> dict[str, str]:
    html, plain = _table(["id", "owned_by", "created", "profile"],
                         [[r["id"], r["owned_by"], r["created"], r["profile"]] for r in rows])
    count = f"{len(rows)} model{'s' if len(rows) != 1 else ''}"
    tail = "".join(f'<div class="cm-note">{text_html(n)}</div>' for n in notes)
    return view(f"{html}<p>{count}</p>{tail}", plain + f"\n\n{count}" +
                "".join(f"\n{n}" for n in notes))


def usage_table(rows: list[dict[str, Any]], by: str | None) -> dict[str, str]:
    key = by or "scope"
    names = ["requests", "prompt_tokens", "completion_tokens", "reasoning_tokens", "total_tokens"]
    currencies = sorted({k[5:] for r in rows for k in r if k.startswith("cost_")})
    # "estimated": a request the endpoint reported no usage for, so chatmagic counted tokens.
    body = [[r[key], *(r[n] for n in names), "yes" if r["estimated"] else "no",
             *_cost_cells(r, currencies)] for r in rows]
    html, plain = _table([key, *names, "estimated", *(f"cost {c}" for c in currencies)], body)
    if not rows:
        return view("<p><em>No requests yet.</em></p>", "No requests yet.")
    unpriced = sum(int(r.get("unpriced") or 0) for r in rows)
    if unpriced:
        note = (f"{unpriced} request{'s' if unpriced != 1 else ''} with no known price: "
                "not in the cost. Give one in chatmagic.toml, per million tokens: [prices] "
                '"MODEL" = { input = 0.15, output = 0.6 } (the money guide: `chatmagic docs '
                'money` in a terminal, docs/money.md in the sources)')
        html += f'<div class="cm-note">{text_html(note)}</div>'
        plain += f"\n\n{note}"
    return view(html, plain)


def _cost_cells(row: dict[str, Any], currencies: list[str]) -> list[str]:
    """A group's cost in each currency; "unknown" where it had requests but no known price
    (a 0 would claim they were free), a ``+`` where only some of them were priced."""
    from ...core.pricing import money

    cells = []
    for currency in currencies:
        amount = row.get(f"cost_{currency}")
        if amount is None:
            cells.append("unknown" if row.get("unpriced") else "")
        else:
            text = money(amount, currency).rsplit(" ", 1)[0]
            cells.append(text + ("+" if row.get("unpriced") else ""))
    return cells


def account_table(account: "Account") -> dict[str, str]:
    """``%chat_usage --remote``: which route answered, and its figures per currency."""
    def cell(value: float | None) -> str:
        return "" if value is None else f"{value:,.4f}".rstrip("0").rstrip(".")

    rows = [[line.currency, cell(line.balance), cell(line.used), cell(line.limit)]
            for line in account.lines]
    html, plain = _table(["currency", "balance", "used", "limit"], rows)
    head = (f"{account.profile} ({account.endpoint}): answered by {account.source} "
            f"({account.route})")
    notes = [*account.notes, "an empty cell: the endpoint does not say"]
    tail = "".join(f'<div class="cm-note">{text_html(n)}</div>' for n in notes)
    return view(f"<p>{text_html(head)}</p>{html}{tail}",
                f"{head}\n{plain}" + "".join(f"\n{n}" for n in notes))


def run(args: Any, session: "Session", namespace: dict[str, Any],
        cache: dict[str, list[dict[str, Any]]]) -> dict[str, str]:
    """``%models [PATTERN] [-p PROFILE | --all] [--refresh] [-o VAR]``: the table to show
    (the rows also in ``-o VAR``); ``cache`` keeps each profile's list."""
    profiles = (list(session.profiles) if args.all
                else [session.profiles.get(args.profile)])
    rows, notes = list_models(session, profiles, cache, args.refresh, args.pattern,
                              skip_keyless=args.all)
    if args.out:
        namespace[args.out] = rows
    return models_table(rows, notes)
