"""A bounded scheduler for many requests: at most N in flight, each an `exchange`.

`Scheduler.arun` sends `Job`s through ``concurrency`` workers (so memory and
tasks do not grow with the number of rows) and hands each finished one to
``on_row`` as a `Row`. Every row is one `exchange` with the rows' policy
(`ROWS`: retried with backoff whatever came before the failure); per endpoint
its `Gate` bounds what is in flight (a 429 halves it, each success adds one back),
and an endpoint seen cutting a stream for another request gets one at a time.
Any failure left is the row's ``error``: the other rows go on.

`Progress` is the run's counters; a view reads it as often as it likes (it is
a few numbers, whatever the number of rows). Replies are not streamed to any
screen: only the finished rows come out.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field, replace
from typing import Callable, Iterable

from ..core import scrub
from ..core.events import Restart, StreamEvent
from ..core.failures import sentence
from ..core.table import Row
from ..core.tokens import prompt_tokens
from ..transport.client import ClientPool
from .endpoints import Knowledge
from .exchange import ROWS, Policy, Routes, exchange
from .reply import Reply
from .request import Job

__all__ = ["Progress", "Scheduler", "row_of", "DEFAULT_CONCURRENCY", "serial_note"]

#: Requests in flight at most when a run names no --concurrency.
DEFAULT_CONCURRENCY = 8


def serial_note(base_url: str) -> str:
    """What says a run's endpoint gets one request at a time for the rest of the session (this
    run or an earlier one saw it cut a stream for another request): the run's rate drops."""
    return (f"{base_url} gets one request at a time in this session (it ended a stream without a "
            "finish reason when another request arrived; profile setting one_at_a_time)")


@dataclass
class Progress:
    """What a progress view shows: counts, tokens, cost, rate and time left."""

    total: int
    done: int = 0  # finished rows, failed ones included
    failed: int = 0
    reused: int = 0  # rows taken from earlier runs (counted in done)
    retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float | None = None
    started: float = field(default_factory=time.perf_counter)
    ended: float | None = None
    stopped: bool = False
    slowed: set[str] = field(default_factory=set)  # endpoints that answered 429
    #: Endpoints this run sends one at a time because they cut a stream for another request
    #: (found by this run, or earlier in the session).
    serial: set[str] = field(default_factory=set)
    currencies: set[str] = field(default_factory=set)  # of the costs summed in ``cost``

    def count(self, row: Row, reused: bool = False) -> None:
        """One finished row; one from an earlier run adds no tokens or cost (this run paid
        nothing for it: %chat_usage does not count it either)."""
        self.done += 1
        self.reused += reused
        self.failed += not row.ok
        if reused:
            return
        self.prompt_tokens += row.prompt_tokens or 0
        self.completion_tokens += row.completion_tokens or 0
        if row.cost is not None:
            self.cost = (self.cost or 0.0) + row.cost
            self.currencies.add(row.currency or "USD")

    @property
    def elapsed(self) -> float:
        return (self.ended or time.perf_counter()) - self.started

    @property
    def sent(self) -> int:
        """Rows finished by this run (not taken from earlier ones)."""
        return self.done - self.reused

    def rate(self) -> float | None:
        """Rows per second finished by this run."""
        elapsed = self.elapsed
        return self.sent / elapsed if self.sent and elapsed > 0 else None

    def left(self) -> float | None:
        """Seconds left at the current rate."""
        rate = self.rate()
        return (self.total - self.done) / rate if rate else None


def row_of(job: Job, reply: Reply) -> Row:
    """The table's row for one reply (text and error scrubbed: they end up on screen).

    With a schema, a finished reply that does not fit it is a row with its text and no
    error yet: it was paid for, so it is kept (`rowstore`) and read against the schema by
    whoever shows it (`each.EachRun`, each run again, with no new request).
    """
    usage = reply.usage
    error = reply.error
    failure = reply.endpoint_failure
    schema = job.request.schema
    if (schema is not None and failure is not None and failure.kind == "invalid_output"
            and reply.text().strip()):
        error = None  # a finished reply (only those are read against the schema)
    elif error is None and not reply.complete:
        error = ("stopped before the reply finished" if reply.interrupted
                 else "the reply ended without a finish reason")
    cost = reply.cost  # None where no price is known: never a 0
    text = scrub.scrub(reply.text()) or (None if error else "")  # a failure before a word
    fields = (schema.as_fields(reply.parsed)
              if schema is not None and reply.parsed is not None and not error else None)
    return Row(job.key, job.label, text, reply.finish_reason(),
               usage.prompt_tokens if usage else None,
               usage.completion_tokens if usage else None,
               cost.amount if cost is not None else None,
               round(reply.elapsed, 3), scrub.scrub(error) if error else None, fields,
               cost.currency if cost is not None else None,
               bool(usage and usage.estimated))


class Scheduler:
    """Many requests, at most ``concurrency`` in flight, each finished one to ``on_row``."""

    def __init__(self, clients: ClientPool, concurrency: int = DEFAULT_CONCURRENCY, *,
                 on_row: Callable[[int, Job, Row], None] | None = None,
                 progress: Progress | None = None, policy: Policy = ROWS,
                 knowledge: Knowledge | None = None) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.clients = clients
        self.concurrency = concurrency
        self.on_row = on_row
        self.progress = progress or Progress(0)
        self.policy = policy
        self.knowledge = knowledge if knowledge is not None else Knowledge()

    async def _row(self, routes: Routes, position: int, job: Job) -> None:
        began = time.perf_counter()
        request = job.request
        if job.profile.base_url in self.knowledge.serial:  # found by an earlier run: say so too
            self.progress.serial.add(job.profile.base_url)
        reply = Reply(request.model, job.profile.name, job.profile.base_url,
                      prompt_estimate=prompt_tokens(list(request.messages)), pricer=job.pricer)

        def fold(event: StreamEvent) -> None:
            nonlocal reply
            if isinstance(event, Restart):
                self.progress.retries += 1
                if event.failure is not None and event.failure.status == 429:
                    self.progress.slowed.add(job.profile.base_url)
                elif event.failure is None:  # a stream another request cut: one at a time
                    self.progress.serial.add(job.profile.base_url)
                reply = reply.restarted(event)
            else:
                reply.feed(event)

        try:
            await exchange(request, routes(job.profile), fold, self.policy)
            reply.close()
            row = row_of(job, reply)
        except Exception as exc:  # noqa: BLE001 - one row's failure is that row's
            row = Row(job.key, job.label,
                      error=scrub.scrub(sentence(f"{type(exc).__name__}: {exc}")))
        # The row's time is all its attempts' and the waits between them, not the last one's.
        row = replace(row, seconds=round(time.perf_counter() - began, 3))
        self.progress.count(row)
        if self.on_row is not None:
            self.on_row(position, job, row)

    async def arun(self, jobs: Iterable[tuple[int, Job]]) -> None:
        """Send every ``(position, job)``; return when all are done (or raise when cancelled:
        the rows finished so far have been handed to ``on_row``)."""
        queue = iter(jobs)
        routes = Routes(self.clients, self.knowledge, self.concurrency)

        async def worker() -> None:
            for position, job in queue:  # one shared iterator: each job taken once
                await self._row(routes, position, job)

        workers = [asyncio.ensure_future(worker()) for _ in range(self.concurrency)]
        try:
            await asyncio.gather(*workers)
        finally:
            for task in workers:
                task.cancel()  # a stop or an interrupt: close the HTTP responses in flight
            await asyncio.gather(*workers, return_exceptions=True)
            self.progress.ended = time.perf_counter()
