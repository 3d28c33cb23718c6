"""One prompt over many inputs: elements in, one request per element × model, a table out.

`elements` reads a list, tuple, dict, pandas Series or DataFrame (or another
finite iterable) into `Element`s: what ``{item}``, ``{key}``, ``{index}`` and
``{COLUMN}`` stand for in each row. `plan_each` checks the template against
them and builds every row's request, never with the conversation's history
(only ``-s``'s system message), raising an OptionError before anything is
sent. `EachRun` sends the rows not finished by an earlier run (`rowstore`)
through the `scheduler`, feeds a progress `View`, and gives the `table`.
`planned_requests` lists what a run would send (for a budget estimate).

With ``--schema`` (`chatmagic.core.schema`) each request asks for the schema the
way its endpoint takes it, the reply is read as its value, and the schema's
fields are the table's columns before ``text``; a reply that does not fit is
that row's error, its text in ``text`` (kept, and read again on the next run:
not asked again).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections import ChainMap
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Callable, Mapping, Protocol

from ..core import scrub
from ..transport.client import ClientPool
from ..core.context import ErrorLog, _kind
from ..core.errors import OptionError
from ..core.failures import sentence
from ..core.images import image_url
from ..core.interpolate import MAX_FIELD_CHARS, field_names, fill
from ..core.options import ChatOptions
from ..core.pricing import Estimate, check_budget, estimate_cost
from ..core.profiles import Profile, Profiles, split_model
from ..engine.request import Job, Request, build_request, user_message
from ..store.rowstore import RowStore, request_digest
from ..engine.endpoints import Knowledge
from ..engine.exchange import ROWS
from ..engine.scheduler import DEFAULT_CONCURRENCY, Progress, Scheduler
from ..engine.session import _unique_labels
from ..core.table import STAT_COLUMNS, TEXT_COLUMN, Row, build_table

if TYPE_CHECKING:
    from ..engine.session import UsageLedger

__all__ = ["Element", "elements", "EachPlan", "plan_each", "planned_requests", "estimate_run",
           "EachRun",
           "View", "NullView", "DEFAULT_CONCURRENCY"]

#: Fields a template may name in any row besides a DataFrame's columns.
_ROW_FIELDS = {"item", "key", "index"}


@dataclass(frozen=True)
class Element:
    """One input: its key or index, and the values its row's ``{fields}`` take."""

    key: Any
    fields: Mapping[str, Any]


def elements(value: Any, name: str = "the value",
             where: str | None = None) -> tuple[str, list[Element]]:
    """The elements of a collection and the name of the table's key column.

    A dict gives ``{key}`` and ``{item}`` (the value), key column ``key``; a
    DataFrame one element per row, ``{COLUMN}`` its values and ``{item}`` the
    row as a dict; a Series or list ``{item}``, with ``{index}`` the label or
    position. Anything else iterable (a set, a generator, a 1-D array) is read
    as a list. Text, bytes and non-iterables are refused, as is an empty one.
    """
    where = where or f"--each {name}"
    kind = _kind(value)
    items: list[Element]
    key_name = "index"
    if kind == "DataFrame":
        labels = list(value.index)
        records = value.to_dict("records")
        # A column named item or index is that column: {COLUMN} is what the SPEC promises.
        items = [Element(label, {"item": record, "index": label,
                                 **{str(c): v for c, v in record.items()}})
                 for label, record in zip(labels, records)]
    elif kind == "Series":
        items = [Element(label, {"item": v, "index": label}) for label, v in value.items()]
    elif isinstance(value, Mapping):
        key_name = "key"
        items = [Element(k, {"item": v, "key": k}) for k, v in value.items()]
    elif isinstance(value, (str, bytes, bytearray)):
        raise OptionError(f"{where}: {name} is text, not a collection: wrap it in a list "
                          f"([{name}]) to send it once, or split it into the inputs you mean")
    else:
        try:
            listed = list(value)
        except TypeError:
            raise OptionError(f"{where}: {name} is of type {type(value).__name__}, which holds "
                              "no elements to iterate over: give a list, tuple, dict, pandas "
                              "Series or DataFrame") from None
        items = [Element(i, {"item": v, "index": i}) for i, v in enumerate(listed)]
    if not items:
        raise OptionError(f"{where}: {name} is empty; nothing was sent")
    return key_name, items


def _check_fields(template: str, items: list[Element], namespace: Mapping[str, Any],
                  name: str, where: str) -> None:
    """Refuse a template field that is neither in the rows nor in the notebook."""
    first = items[0].fields
    for field_name in field_names(template):
        if field_name in first or field_name in namespace or field_name in ("Err", "In", "Out"):
            continue
        columns = [c for c in first if c not in _ROW_FIELDS]
        offered = ", ".join("{" + c + "}" for c in [*columns, *sorted(set(first) & _ROW_FIELDS)])
        raise OptionError(f"{where}: the prompt's {{{field_name}}} is in no row of {name} "
                          f"and names no notebook variable; a row offers {offered}. Nothing "
                          "was sent.")


@dataclass
class EachPlan:
    """Every row a run over many inputs sends, and how its table is shaped."""

    variable: str
    key_name: str
    labels: list[str]
    jobs: list[Job]  # element by element, each element's models in order
    concurrency: int = DEFAULT_CONCURRENCY
    fresh: bool = False
    schema_fields: list[str] | None = None
    #: With a schema: the reply text and finish reason → its fields (raise ValueError
    #: naming the problem).
    parse: Callable[[str, str | None], dict[str, Any]] | None = None


def _targets(options: ChatOptions, profiles: Profiles) -> list[tuple[str, Profile, str]]:
    """(label, profile, model) for each model of the run."""
    if options.compare:
        labels = _unique_labels(options.compare)  # model, model#2: as %%chat --compare
        return [(label, *split_model(m, profiles, options.profile))
                for label, m in zip(labels, options.compare)]
    if options.model:
        profile, model = split_model(options.model, profiles, options.profile)
    else:
        profile, model = profiles.get(options.profile), ""
    model = model or profile.model or ""
    if not model:
        raise OptionError(f"No model for profile '{profile.name}': pass -m MODEL, or set "
                          f"model in [profiles.{profile.name}] (%models lists them)")
    return [(options.model or model, profile, model)]


def _digest(request: Request) -> str:
    """A row's resume key: its request before a schema is put in it (how a schema is sent
    changes with what the session learned of the endpoint, `Knowledge.modes`), and the
    schema itself."""
    kwargs = request.kwargs()
    if request.schema is not None:
        kwargs["schema"] = request.schema.json_schema
    return request_digest(request.profile.base_url, kwargs)


def plan_each(options: ChatOptions, value: Any, profiles: Profiles,
              namespace: Mapping[str, Any] | None = None, *, environ: Mapping[str, str] | None = None,
              errors: ErrorLog | None = None, max_field_chars: int = MAX_FIELD_CHARS,
              interpolate: bool = True, where: str | None = None) -> EachPlan:
    """Every row's request; an OptionError (nothing sent) for bad input.

    ``options.prompt`` is the template (not yet interpolated); ``value`` the
    collection ``options.each`` names.
    """
    name = options.each or "items"
    where = where or f"--each {name}"
    namespace = namespace or {}
    if not options.prompt.strip():
        raise OptionError("The prompt is empty: write the template in the cell body, e.g. "
                          "Classify: {item}")
    key_name, items = elements(value, name, where)
    if interpolate:
        _check_fields(options.prompt, items, namespace, name, where)
    schema = None
    if options.schema is not None:
        from ..core.schema import resolve_schema

        schema = resolve_schema(options.schema, namespace)
    targets = _targets(options, profiles)
    for _, profile, _ in targets:
        profile.require_key(environ)  # a missing key is one clear message
    images = [image_url(s, namespace) for s in options.images]
    system = [{"role": "system", "content": options.system}] if options.system else []
    jobs = []
    if interpolate:
        scrub.register_environ()  # once for every row (a key exported in this cell counts)
    shared = dict(namespace)
    for element in items:
        if interpolate:
            text = fill(options.prompt, ChainMap(dict(element.fields), shared), errors=errors,
                        max_field_chars=max_field_chars, register=False).text
        else:
            text = options.prompt
        messages = [*system, user_message(text, images)]
        for label, profile, model in targets:
            request = build_request(options, profile, model, messages, schema)
            jobs.append(Job(request, label,
                            profiles.prices.pricer(profile.name, profile.base_url, model),
                            element.key, _digest(request)))
    plan = EachPlan(name, key_name, [t[0] for t in targets], jobs,
                    options.concurrency or DEFAULT_CONCURRENCY, options.fresh)
    if schema is not None:
        taken = sorted(set(schema.fields) & {key_name, "model", TEXT_COLUMN, *STAT_COLUMNS})
        if taken:
            raise OptionError(f"{where}: the schema's field {taken[0]!r} is also a column of "
                              "the table (its key, model, text, finish_reason, tokens, cost, "
                              "seconds, error): rename the field. Nothing was sent.")
        plan.schema_fields = list(schema.fields)
        plan.parse = lambda text, finish: dict(schema.as_fields(schema.parse(text, finish)))
    return plan


def estimate_run(plan: EachPlan, store: RowStore | None = None,
                 max_cost: float = 0.0) -> Estimate:
    """What the rows a run would send are estimated to cost (`chatmagic.core.pricing`); an
    OptionError, before anything is sent, when that is above ``max_cost`` (0: no limit)."""
    estimate = estimate_cost((job.pricer, job.request.body())
                             for job in planned_requests(plan, store))
    check_budget(estimate, max_cost)
    return estimate


def planned_requests(plan: EachPlan, store: RowStore | None = None) -> list[Job]:
    """The requests a run of ``plan`` would send: every row, less those ``store`` holds
    finished (unless the plan is ``fresh``). For an estimate before sending."""
    if store is None or plan.fresh:
        return list(plan.jobs)
    return [job for job in plan.jobs if store.get(job.digest, job.key) is None]


class View(Protocol):
    """What shows a run's progress: told when it starts, every throttle interval, at the end."""

    def begin(self, run: "EachRun") -> None: ...
    def refresh(self, run: "EachRun") -> None: ...
    def end(self, run: "EachRun") -> None: ...


class NullView:
    """Shows nothing (the Python API, benchmarks)."""

    def begin(self, run: "EachRun") -> None: pass
    def refresh(self, run: "EachRun") -> None: pass
    def end(self, run: "EachRun") -> None: pass


@dataclass
class EachRun:
    """One run of a plan: rows from earlier runs, the rest sent, a view kept up to date."""

    plan: EachPlan
    clients: ClientPool
    store: RowStore = field(default_factory=RowStore)
    view: View = field(default_factory=NullView)
    throttle: float = 0.25
    backoff: float = 0.5
    #: What the session knows of its endpoints (one at a time, structured-output modes).
    knowledge: Knowledge = field(default_factory=Knowledge)

    def __post_init__(self) -> None:
        jobs = self.plan.jobs
        self.rows: list[Row | None] = [None] * len(jobs)
        self.progress = Progress(len(jobs))
        self.stopped = False
        self._pending: list[tuple[int, Job]] = []
        self.sent: set[int] = set()  # positions answered by this run (not earlier ones)
        for position, job in enumerate(jobs):
            kept = None if self.plan.fresh else self.store.get(job.digest, job.key)
            if kept is not None:
                kept.model = job.label
                self._finish(kept)
                self.rows[position] = kept
                self.progress.count(kept, reused=True)
            else:
                self._pending.append((position, job))
        self._cancel: Callable[[], object] | None = None

    # -- rows ----------------------------------------------------------------
    def _finish(self, row: Row) -> None:
        """Parse a kept row's text into its schema fields (an invalid reply is its error)."""
        if self.plan.parse is None or not row.ok or row.text is None or row.fields is not None:
            return
        try:
            row.fields = self.plan.parse(row.text, row.finish_reason)
        except Exception as exc:  # noqa: BLE001 - an invalid reply is that row's error
            row.error = sentence(str(getattr(exc, "problem", None) or exc))

    def _on_row(self, position: int, job: Job, row: Row) -> None:
        self.store.put(job.digest, row)  # before parsing: the reply is what was bought
        ok = row.ok
        self._finish(row)
        if ok and not row.ok:
            self.progress.failed += 1  # the scheduler counted it before its fields were read
        self.rows[position] = row
        self.sent.add(position)

    @property
    def finished(self) -> list[Row]:
        """The rows with a result so far, in the plan's order."""
        return [row for row in self.rows if row is not None]

    def table(self) -> Any:
        """The SPEC's table of the finished rows (a DataFrame, or a list of dicts)."""
        return build_table(self.finished, key_name=self.plan.key_name,
                           schema_fields=self.plan.schema_fields)

    def record_usage(self, ledger: "UsageLedger", conversation: str | None = None) -> None:
        """Each request this run sent into the session's usage (%chat_usage, under
        ``conversation``: ``--each VAR`` by default); rows from earlier runs are not counted
        again."""
        conversation = conversation or f"--each {self.plan.variable}"
        for position in sorted(self.sent):
            row = self.rows[position]
            if row is not None:
                job = self.plan.jobs[position]
                ledger.add_row(row, job.request.model, job.profile.name, conversation)

    @property
    def all_failed(self) -> bool:
        rows = self.finished
        return bool(rows) and all(not r.ok for r in rows) and len(rows) == len(self.rows)

    # -- running ----------------------------------------------------------------
    def _scheduler(self) -> Scheduler:
        return Scheduler(self.clients, self.plan.concurrency, on_row=self._on_row,
                         progress=self.progress, policy=replace(ROWS, backoff=self.backoff),
                         knowledge=self.knowledge)

    async def _send(self) -> None:
        if self._pending:
            await self._scheduler().arun(self._pending)
        self.progress.ended = self.progress.ended or self.progress.started

    async def arun(self) -> "EachRun":
        """Run on the running loop (a kernel's: the Stop button's clicks are served meanwhile).

        A cancellation (a kernel interrupt) ends it keeping the finished rows, then
        propagates; a Stop ends it quietly.
        """
        loop = asyncio.get_running_loop()
        task = asyncio.ensure_future(self._send())
        self._cancel = lambda: loop.call_soon_threadsafe(task.cancel)
        self.view.begin(self)
        try:
            while not task.done():
                await asyncio.wait([task], timeout=self.throttle)
                if not task.done():
                    self.view.refresh(self)
            try:
                task.result()
            except asyncio.CancelledError:
                if not self.stopped:
                    raise
        finally:
            if not task.done():
                task.cancel()  # the cell itself was cancelled: stop the requests
                await asyncio.gather(task, return_exceptions=True)
            self._cancel = None
            self.progress.stopped = self.stopped or not task.done() or task.cancelled()
            self.view.end(self)
        return self

    def run(self) -> "EachRun":
        """The blocking twin: the requests run on the portal's long-lived loop (`_portal`,
        where the clients and their connections are kept); the view is drawn from here, and
        a KeyboardInterrupt stops them, keeping the finished rows."""
        from ..engine.portal import PORTAL

        started, ended = threading.Event(), threading.Event()

        async def main() -> None:
            started.set()
            try:
                await self._send()
            finally:
                ended.set()

        future = PORTAL.submit(main())
        self._cancel = future.cancel  # thread-safe: cancels the task on the portal's loop
        self.view.begin(self)
        interrupted = False
        try:
            while True:
                try:
                    future.result(timeout=self.throttle)
                    break
                except concurrent.futures.TimeoutError:
                    self.view.refresh(self)
                except concurrent.futures.CancelledError:
                    break  # stopped
        except KeyboardInterrupt:
            interrupted = True
            raise
        finally:
            if not future.done():
                self.stop(user=False)
            if started.is_set():
                ended.wait(5)  # the rows that finish while the requests are being cancelled
            self._cancel = None
            self.progress.stopped = self.stopped or interrupted
            self.view.end(self)
        return self

    def stop(self, user: bool = True) -> None:
        """End the run, keeping the finished rows (the Stop button; thread-safe)."""
        if user:
            self.stopped = True
        cancel = self._cancel
        if cancel is not None:
            try:
                cancel()
            except RuntimeError:
                pass  # the worker's loop already closed

