"""One planned run over many inputs (`each.plan`), sent: a table out.

`EachRun` takes the rows finished by an earlier run from the row store, sends
the rest through the `Scheduler` (each row one `exchange`), keeps each finished
row on disk at once, feeds a progress `View`, and gives the `table`. With
``--schema`` a reply that does not fit is that row's error, its text in
``text`` (kept, and read again on the next run: not asked again).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Callable, Protocol

from ..core.failures import sentence
from ..core.table import Row, build_table
from ..engine.endpoints import Knowledge
from ..engine.exchange import ROWS
from ..engine.request import Job
from ..engine.scheduler import Progress, Scheduler
from ..store.rowstore import RowStore
from ..transport.client import ClientPool
from .plan import EachPlan

if TYPE_CHECKING:
    from ..engine.session import UsageLedger

__all__ = ["EachRun", "View", "NullView"]


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
        """The blocking way: the requests run on the portal's long-lived loop (`portal`,
        where the clients and their connections are kept); the view is drawn from here, and
        a KeyboardInterrupt stops them, keeping the finished rows."""
        from ..engine.portal import PORTAL, Put

        async def work(put: Put) -> None:
            await self._send()

        def hook(cancel: Callable[[], object]) -> None:
            self._cancel = cancel  # thread-safe: cancels the task on the portal's loop

        self.view.begin(self)
        interrupted = False
        try:
            # A grace of 5 s: the rows that finish while the requests are being cancelled.
            PORTAL.serve(work, handle=lambda item: None, idle=lambda: self.view.refresh(self),
                         wait=lambda: self.throttle, hook=hook, grace=5.0)
        except KeyboardInterrupt:
            interrupted = True
            raise
        finally:
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

