"""``%%chat --each VAR --batch-api`` and ``%chat_batch list | status | fetch | cancel``.

Each is a function of (what the user asked, the session, the notebook's
`BatchStore`, the namespace) that returns what to show, over `batch_api`; the
magic prints or displays it. Nothing here imports IPython. Every value a
server or a model sent is shown through `render.html` (inert).
"""

from __future__ import annotations

import datetime as _dt
import re
from collections import ChainMap
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Mapping, Union

from . import batch_api
from .batch_store import BatchJob, BatchStore, store_path
from .errors import ChatError, OptionError
from .failures import sentence
from .options import ChatOptions
from .render.html import table_html, text_html, view
from .session import Session
from .table import TEXT_COLUMN

__all__ = ["submit", "run", "store_for", "each_requests", "elements", "Outcome"]

Outcome = Union[str, dict[str, str], None]
#: (template, row fields) -> the prompt of that row, as the cell fills ``{fields}``.
Filler = Callable[[str, Mapping[str, Any]], str]
#: Rows shown under a fetch (the whole table goes to -o VAR).
SHOWN_ROWS = 5


def store_for(notebook: str | None, persist: bool, directory: str | None = None) -> BatchStore:
    """The notebook's job store: on disk beside its history (in memory when persist is off)."""
    if not persist:
        return BatchStore()
    return BatchStore(store_path(notebook, Path(directory) if directory else None))


# -- the rows (a seam: --each's own expansion replaces this when it lands) ----------------

def elements(value: Any, name: str) -> tuple[str, list[tuple[Any, dict[str, Any]]]]:
    """The key column's name and (key, fields) per element of an --each collection:
    ``{item}`` the element (``{key}`` a dict's key), a DataFrame's columns by name."""
    kind = type(value).__name__
    if isinstance(value, (str, bytes)) or value is None:
        raise OptionError(f"--each {name} is a {kind}, not a collection: give a list, "
                          "tuple, dict, pandas Series or DataFrame")
    if isinstance(value, dict):
        return "key", [(k, {"item": v, "key": k}) for k, v in value.items()]
    if kind == "DataFrame" and hasattr(value, "iterrows"):
        return "index", [(i, {"index": i, **{str(c): v for c, v in row.items()}})
                         for i, row in value.iterrows()]
    if kind == "Series" and hasattr(value, "items"):
        return "index", [(i, {"item": v, "index": i}) for i, v in value.items()]
    try:
        items = list(value)
    except TypeError:
        raise OptionError(f"--each {name} is a {kind}, which cannot be iterated: give a list, "
                          "tuple, dict, pandas Series or DataFrame") from None
    return "index", [(i, {"item": v, "index": i}) for i, v in enumerate(items)]


_ROOT = re.compile(r"(?<!\{)\{([A-Za-z_]\w*)")


def each_requests(session: Session, options: ChatOptions, namespace: dict[str, Any],
                  fill_row: Filler) -> tuple[str, list[batch_api.BatchRequest]]:
    """The requests --each sends (one per element × model, never with the conversation's
    history, not streamed) and the key column's name; raises before anything is sent."""
    name = options.each or ""
    if name not in namespace:
        raise OptionError(f"--each {name}: no variable named {name!r} in the notebook")
    key_name, rows = elements(namespace[name], name)
    if not rows:
        raise OptionError(f"--each {name} is empty: there is nothing to send")
    known = set(namespace) | {"In", "Out", "Err"}
    for field_name in _ROOT.findall(options.prompt):
        if not options.no_interpolate and field_name not in rows[0][1] and \
                field_name not in known:
            raise OptionError(f"the prompt's {{{field_name}}} is neither a field of the "
                              f"rows of {name} ({', '.join(rows[0][1])}) nor a variable")
    one = replace(options, each=None, batch_api=False, no_history=True, no_stream=True,
                  out=None)
    requests = []
    for key, fields in rows:
        prompt = options.prompt if options.no_interpolate else \
            fill_row(options.prompt, ChainMap(fields, namespace))
        plan = session.plan(replace(one, prompt=prompt), namespace)
        requests += [batch_api.BatchRequest(key, job.label, job.profile,
                                            batch_api.wire_body(job.request))
                     for job in plan.jobs]
    return key_name, requests


# -- %%chat --each VAR --batch-api ---------------------------------------------------------

def submit(session: Session, store: BatchStore, options: ChatOptions,
           namespace: dict[str, Any], fill_row: Filler) -> Outcome:
    """Send the cell's rows as one job; say its id and how to follow it."""
    key_name, requests = each_requests(session, options, namespace, fill_row)
    job = batch_api.submit(session, store, requests, key_name=key_name)
    if options.out:
        namespace[options.out] = job.id  # the table comes with fetch -o VAR
    where = ", ".join(dict.fromkeys(f"{p.profile} ({p.base_url})" for p in job.parts))
    models = ", ".join(p.label for p in job.parts)
    batches = f"{len(job.parts)} batches" if len(job.parts) > 1 else "one batch"
    head = (f"Sent {len(requests)} requests to the Batch API of {where} as job {job.id} "
            f"({batches}: {models}). It runs on the endpoint, within 24 hours; the job is kept "
            "with this notebook, across kernel restarts.")
    follow = [("%chat_batch status", "how far it is"),
              ("%chat_batch fetch -o VAR", "the table, once it has completed"),
              ("%chat_batch cancel", "stop it (the rows answered so far stay)")]
    html = f"<p>{text_html(head)}</p><ul>" + "".join(
        f"<li><code>{text_html(c)}</code>: {text_html(w)}" for c, w in follow) + "</ul>"
    return view(html, head + "".join(f"\n  {c:<26} {w}" for c, w in follow))


# -- %chat_batch ------------------------------------------------------------------------------

def _job(store: BatchStore, ident: str | None) -> BatchJob:
    if ident:
        job = store.find(ident)
        if job is None:
            raise ChatError(f"no batch job {ident!r} in this notebook (%chat_batch list shows "
                            "them)")
        return job
    latest = store.latest()
    if latest is None:
        raise ChatError("no batch job in this notebook yet: send one with "
                        "%%chat --each VAR --batch-api")
    return latest


def _when(seconds: float) -> str:
    return _dt.datetime.fromtimestamp(seconds).strftime("%Y-%m-%d %H:%M")


def _list(args: Any, session: Session, store: BatchStore, namespace: dict[str, Any]) -> Outcome:
    if not store.jobs:
        return view("<p><em>No batch jobs in this notebook yet.</em></p>",
                    "No batch jobs in this notebook yet.")
    header = ["job", "created", "models", "rows", "status", "answered", "failed"]
    rows = []
    for job in sorted(store.jobs.values(), key=lambda j: j.created_at, reverse=True):
        try:
            now = batch_api.status(session, store, job)
            state, done, failed = now.status, now.count("completed"), now.count("failed")
        except ChatError as exc:  # one endpoint down: the others still listed
            state, done, failed = f"unknown: {exc}", "", ""
        rows.append([job.id, _when(job.created_at), ", ".join(job.labels), len(job.rows),
                     state, done, failed])
    if args.out:
        namespace[args.out] = [dict(zip(header, r)) for r in rows]
    return view(table_html(header, rows), _plain(header, rows))


def _plain(header: list[str], rows: list[list[Any]]) -> str:
    cells = [[" ".join(str(v).split()) for v in row] for row in [header, *rows]]
    widths = [max(len(c[i]) for c in cells) for i in range(len(header))]
    return "\n".join(" ".join(v.ljust(w) for v, w in zip(row, widths)) for row in cells)


def _status(args: Any, session: Session, store: BatchStore, namespace: dict[str, Any]) -> Outcome:
    job = _job(store, args.id)
    now = batch_api.status(session, store, job)
    header = ["batch", "model", "endpoint", "status", "answered", "failed", "total"]
    rows = [[p.batch_id, p.label, p.base_url, s.get("status"), s.get("completed"),
             s.get("failed"), s.get("total")] for p, s in zip(job.parts, now.states)]
    hint = ("fetch -o VAR gets the table" if now.finished else
            "%chat_batch status again to follow it")
    head = f"{sentence(now.summary())} {hint}."
    return view(f"<p>{text_html(head)}</p>{table_html(header, rows)}",
                f"{head}\n{_plain(header, rows)}")


def _fetch(args: Any, session: Session, store: BatchStore, namespace: dict[str, Any]) -> Outcome:
    job = _job(store, args.id)
    table, now = batch_api.fetch(session, store, job)
    if args.out:
        namespace[args.out] = table
    records = table.to_dict("records") if hasattr(table, "to_dict") else list(table)
    failed = sum(1 for r in records if isinstance(r.get("error"), str))
    where = f"in {args.out}" if args.out else "not kept: add -o VAR"
    head = (f"Fetched batch job {job.id} ({now.status}): {len(records)} rows, "
            f"{failed} failed; the table is {where}.")
    if not records:
        return view(f"<p>{text_html(head)}</p>", head)
    header = list(records[0])
    shown = [[_cell(r[c], c) for c in header] for r in records[:SHOWN_ROWS]]
    more = f"… and {len(records) - SHOWN_ROWS} more rows" if len(records) > SHOWN_ROWS else ""
    return view(f"<p>{text_html(head)}</p>{table_html(header, shown)}"
                + (f"<p>{text_html(more)}</p>" if more else ""),
                f"{head}\n{_plain(header, shown)}" + (f"\n{more}" if more else ""))


def _cell(value: Any, column: str) -> str:
    """A value as a short line (an answer or an error cut to 80 characters)."""
    if value is None or value != value:  # None, NaN
        return ""
    if isinstance(value, float) and value.is_integer() and column.endswith("_tokens"):
        value = int(value)  # a column with gaps is float in pandas
    text = " ".join(str(value).split())
    limit = 80 if column in (TEXT_COLUMN, "error") else 40
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _cancel(args: Any, session: Session, store: BatchStore, namespace: dict[str, Any]) -> Outcome:
    job = _job(store, args.id)
    before = batch_api.status(session, store, job)
    if before.finished:
        return f"Nothing to cancel: {before.summary()}."
    now = batch_api.cancel(session, store, job)
    return (f"Asked to cancel: {now.summary()}. The rows answered before it stops "
            "come with %chat_batch fetch once it has.")


COMMANDS: dict[str, Callable[[Any, Session, BatchStore, dict[str, Any]], Outcome]] = {
    "list": _list, "status": _status, "fetch": _fetch, "cancel": _cancel}


def run(args: Any, session: Session, store: BatchStore, namespace: dict[str, Any]) -> Outcome:
    """Do what ``%chat_batch ACTION [ID] [-o VAR]`` asks; return what to show."""
    if args.action not in COMMANDS:
        raise ChatError(f"%chat_batch {args.action}: not a subcommand; use one of "
                        f"{' | '.join(COMMANDS)}")
    return COMMANDS[args.action](args, session, store, namespace)
