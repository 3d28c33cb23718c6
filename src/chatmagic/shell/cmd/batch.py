"""``%%chat --each VAR --batch-api`` and ``%chat_batch list | status | fetch | cancel``.

Each is a function of (what the user asked, the session, the notebook's
`BatchStore`, the namespace) that returns what to show, over `batch_api`; the
magic prints or displays it. Nothing here imports IPython. Every value a
server or a model sent is shown through `render.html` (inert).
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Union

from ...each import batch as batch_api
from ...store.batch_store import BatchJob, BatchStore, store_path
from ...core.context import ErrorLog
from ...each.plan import EachPlan, estimate_run, plan_each, planned_requests
from ...core.errors import ChatError, OptionError
from ...core.failures import sentence
from ...core.interpolate import MAX_FIELD_CHARS
from ...core.options import ChatOptions
from ...render.html import table_html, text_html, view
from ...engine.session import Session
from ...core.table import TEXT_COLUMN

__all__ = ["submit", "run", "store_for", "each_requests", "Outcome"]

Outcome = Union[str, dict[str, str], None]
#: Rows shown under a fetch (the whole table goes to -o VAR).
SHOWN_ROWS = 5


def store_for(session: Session, notebook: str | None, persist: bool,
              directory: str | None = None) -> BatchStore:
    """The notebook's job store: on disk beside its history, read afresh (another kernel may
    have added a job); with persist off, the session's own, in memory."""
    if not persist:
        return session.batch_jobs
    return BatchStore(store_path(notebook, Path(directory) if directory else None))


# -- the rows: what --each would send ---------------------------------------------------------

def each_requests(session: Session, options: ChatOptions, namespace: dict[str, Any], *,
                  errors: ErrorLog | None = None,
                  max_field_chars: int = MAX_FIELD_CHARS) -> EachPlan:
    """The rows of the cell as ``--each`` plans them (one request per element × model, no
    history), not streamed: a batch line is one JSON answer. Raises before anything is sent."""
    name = options.each or ""
    if name not in namespace:
        raise OptionError(f"--each {name}: no variable named {name} in the notebook; "
                          "nothing was sent.")
    session.register_keys()
    unstreamed = replace(options, no_stream=True)
    return plan_each(unstreamed, namespace[name], session.profiles, namespace,
                     environ=session.clients.environ, errors=errors,
                     max_field_chars=max_field_chars, interpolate=not options.no_interpolate)


# -- %%chat --each VAR --batch-api ---------------------------------------------------------

def submit(session: Session, store: BatchStore, options: ChatOptions,
           namespace: dict[str, Any], *, errors: ErrorLog | None = None,
           max_field_chars: int = MAX_FIELD_CHARS) -> Outcome:
    """Send the cell's rows as one job; say its id and how to follow it."""
    plan = each_requests(session, options, namespace, errors=errors,
                         max_field_chars=max_field_chars)
    # Only the rows no earlier run finished (--fresh: all), as --each sends them.
    finished = session.notebook.rows
    requests = planned_requests(plan, finished)
    earlier = len(plan.jobs) - len(requests)
    if not requests:
        said = (f"Nothing sent: all {earlier} rows were answered by earlier runs. Run the cell "
                "without --batch-api for their table (nothing is sent), or add --fresh to send "
                "them again.")
        return said
    # The budget guard as --each has it, at the price table's prices (a Batch API usually
    # charges less, so this errs high).
    estimate = estimate_run(plan, finished, session.max_cost)
    schema = requests[0].request.schema
    job = batch_api.submit(session, store, requests, key_name=plan.key_name, schema=schema)
    if options.out:
        namespace[options.out] = job.id  # the table comes with fetch -o VAR
    where = ", ".join(dict.fromkeys(f"{p.profile} ({p.base_url})" for p in job.parts))
    models = ", ".join(p.label for p in job.parts)
    batches = f"{len(job.parts)} batches" if len(job.parts) > 1 else "one batch"
    head = (f"Sent {len(requests)} requests to the Batch API of {where} as job {job.id} "
            f"({batches}: {models}). It runs on the endpoint, within 24 hours; the job is kept "
            "with this notebook, across kernel restarts.")
    if earlier:
        head += (f" {earlier} rows came from earlier runs and were not sent (the fetched table "
                 "holds the rows sent; the cell without --batch-api gives them all once "
                 "fetched).")
    if estimate.known:
        head += f" Estimate at the usual prices: {estimate.text()}."
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
    # "failed": requests the endpoint failed; a fetched row can also have an error of its
    # own (an answer that does not fit the schema), which only fetch can tell.
    header = ["job", "created", "models", "rows", "status", "answered", "failed requests"]
    rows, notes = [], []
    for job in sorted(store.jobs.values(), key=lambda j: j.created_at, reverse=True):
        done: int | None = None
        failed: int | None = None
        try:
            now = batch_api.status(session, store, job)
            state, done, failed = now.status, now.count("completed"), now.count("failed")
        except ChatError as exc:  # one endpoint down: the others still listed
            state = "unknown (see below)"
            notes.append(f"{job.id}: {exc}")
        rows.append([job.id, _when(job.created_at), ", ".join(job.labels), len(job.rows),
                     state, "" if done is None else done, "" if failed is None else failed])
    if args.out:
        namespace[args.out] = [dict(zip(header, r)) for r in rows]
    html = table_html(header, rows) + "".join(f'<div class="cm-note">{text_html(n)}</div>'
                                              for n in notes)
    return view(html, "\n".join([_plain(header, rows), *notes]))


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
    table, now = batch_api.fetch(session, store, job, session.notebook.rows)
    if args.out:
        namespace[args.out] = table
    records = table.to_dict("records") if hasattr(table, "to_dict") else list(table)
    failed = sum(1 for r in records if isinstance(r.get("error"), str))
    where = f"in {args.out}" if args.out else "not kept: add -o VAR"
    head = (f"Fetched batch job {job.id} ({now.status}): {len(records)} rows, "
            f"{failed} with an error; the table is {where}.")
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
