"""A bounded scheduler for many requests: at most N in flight, retried, slowed when told.

`Scheduler.arun` sends `RowJob`s through ``concurrency`` workers (so memory
and tasks do not grow with the number of rows) and hands each finished one to
``on_row`` as a `Row`. Per endpoint a `_Gate` bounds what is in flight:

- a 429, 5xx or dropped connection is retried with exponential backoff (the
  server's ``Retry-After`` when it gave one); a 429 also halves that endpoint's
  limit and holds all its requests until the wait is over; successes raise the
  limit again one at a time (additive increase, multiplicative decrease);
- a stream that ended without a finish reason while another request to the
  same endpoint was in flight (llama-cpp-python cuts a stream when another
  request arrives, see `attempt`) is asked again, and that endpoint gets one
  request at a time from then on (`runner.ONE_AT_A_TIME`);
- any other failure is the row's ``error``: the other rows go on.

`Progress` is the run's counters; a view reads it as often as it likes (it is
a few numbers, whatever the number of rows). Replies are not streamed to any
screen: only the finished rows come out.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable

import openai

from ..core import scrub
from .attempt import Watch, events_of, unstreamed
from ..transport.client import ClientPool
from ..core.failures import StreamError, sentence
from ..core.profiles import Profile
from .reply import Reply
from ..core.tokens import prompt_tokens
from .runner import ONE_AT_A_TIME, deadline_failure
from ..core.table import Row

if TYPE_CHECKING:
    from ..core.pricing import Pricer
    from ..core.schema import Schema

__all__ = ["RowJob", "Progress", "Scheduler", "retryable", "row_of", "MAX_ATTEMPTS",
           "DEFAULT_CONCURRENCY"]

#: Requests in flight at most when a run names no --concurrency.
DEFAULT_CONCURRENCY = 8
#: Attempts per row for retryable failures (the first and four retries).
MAX_ATTEMPTS = 5
#: Redoes per row of a stream another request cut (each one with less concurrency).
MAX_REDOS = 3
#: Longest wait between attempts, whatever a server's Retry-After says (seconds).
MAX_WAIT = 60.0

@dataclass
class RowJob:
    """One request of a run over many inputs: which element, which model, what body.

    ``digest`` identifies the request for the store of finished rows (endpoint,
    model and body; never the key).
    """

    key: Any
    label: str
    profile: Profile
    request: dict[str, Any]
    digest: str = ""
    schema: Schema | None = None  # --schema: the reply is read as its value (its fields)
    pricer: "Pricer | None" = None  # how its reply is priced (None: no price known)


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


def retryable(failure: StreamError) -> bool:
    """Whether asking again may succeed: rate limits, server errors, dropped connections."""
    status = failure.status
    if status is not None:
        return status == 429 or status >= 500
    return failure.kind in ("connect", "incomplete")


class _Gate:
    """One endpoint's share of a run: how many of its requests may be in flight now."""

    def __init__(self, limit: int) -> None:
        self.ceiling = self.limit = max(1, limit)
        self.active: set[int] = set()
        self.overlapped: set[int] = set()
        self.calm = 0  # successes since the limit last changed
        self.reached = False  # the endpoint has answered (a reply or an HTTP status)
        self.resume_at = 0.0  # loop time before which no request may start (after a 429)
        self.changed = asyncio.Condition()

    async def enter(self, slot: int) -> None:
        async with self.changed:
            while True:
                wait = self.resume_at - asyncio.get_running_loop().time()
                if wait > 0:
                    try:
                        await asyncio.wait_for(self.changed.wait(), wait)
                    except asyncio.TimeoutError:
                        pass
                    continue
                if len(self.active) < self.limit:
                    break
                await self.changed.wait()
            self.active.add(slot)
            if len(self.active) > 1:
                self.overlapped.update(self.active)

    async def leave(self, slot: int) -> bool:
        """Leave; whether another request was in flight here while this one was."""
        async with self.changed:
            self.active.discard(slot)
            overlapped = slot in self.overlapped
            self.overlapped.discard(slot)
            self.changed.notify_all()
        return overlapped

    def succeeded(self) -> None:
        self.calm += 1
        if self.limit < self.ceiling and self.calm >= self.limit:
            self.limit += 1
            self.calm = 0

    def throttled(self, wait: float) -> None:
        """A 429: half as many in flight, and none starting until ``wait`` is over."""
        self.limit = max(1, self.limit // 2)
        self.calm = 0
        loop = asyncio.get_running_loop()
        self.resume_at = max(self.resume_at, loop.time() + wait)

    def one_at_a_time(self) -> None:
        self.limit = self.ceiling = 1


def _backoff(attempt: int, failure: StreamError, base: float) -> float:
    """Seconds before attempt ``attempt + 1``: the server's word, else exponential + jitter."""
    if failure.retry_after is not None:
        return min(MAX_WAIT, float(failure.retry_after))
    return float(min(MAX_WAIT, base * 2.0 ** (attempt - 1)) * random.uniform(0.5, 1.0))


def row_of(job: RowJob, reply: Reply) -> Row:
    """The table's row for one reply (text and error scrubbed: they end up on screen).

    With a schema, a finished reply that does not fit it is a row with its text and no
    error yet: it was paid for, so it is kept (`rowstore`) and read against the schema by
    whoever shows it (`each.EachRun`, each run again, with no new request).
    """
    usage = reply.usage
    error = reply.error
    failure = reply.endpoint_failure
    if (job.schema is not None and failure is not None and failure.kind == "invalid_output"
            and reply.text().strip()):
        error = None  # a finished reply (only those are read against the schema)
    elif error is None and not reply.complete:
        error = ("stopped before the reply finished" if reply.interrupted
                 else "the reply ended without a finish reason")
    cost = reply.cost  # None where no price is known: never a 0
    text = scrub.scrub(reply.text()) or (None if error else "")  # a failure before a word
    fields = (job.schema.as_fields(reply.parsed)
              if job.schema is not None and reply.parsed is not None and not error else None)
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
                 on_row: Callable[[int, RowJob, Row], None] | None = None,
                 progress: Progress | None = None, backoff: float = 0.5) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.clients = clients
        self.concurrency = concurrency
        self.on_row = on_row
        self.progress = progress or Progress(0)
        self.backoff = backoff
        self._gates: dict[str, _Gate] = {}
        self._sdk: dict[int, openai.AsyncOpenAI] = {}
        self._profiles: list[Profile] = []

    def _gate(self, profile: Profile) -> _Gate:
        url = profile.base_url
        gate = self._gates.get(url)
        if gate is None:
            limit = min(self.concurrency, profile.concurrency or self.concurrency)
            gate = self._gates[url] = _Gate(limit)
            if url in ONE_AT_A_TIME or profile.one_at_a_time:
                gate.one_at_a_time()
        return gate

    def _client(self, profile: Profile) -> openai.AsyncOpenAI:
        # One client per profile for the run (the pool's lookup hashes the key and reads the
        # proxy environment: not a cost to pay per row). Retries are this scheduler's (it
        # slows the endpoint down on a 429), not the SDK's.
        mine = self._sdk.get(id(profile))
        if mine is None:
            client = self.clients.async_(profile)
            mine = self._sdk[id(profile)] = client.with_options(max_retries=0)
            self._profiles.append(profile)  # keeps the id from being reused by another
        return mine

    async def _attempt(self, slot: int, job: RowJob, gate: _Gate, alone: bool,
                       ) -> tuple[Reply, bool]:
        """One try: the reply, and whether another request to its endpoint cut it."""
        profile, request = job.profile, job.request
        reply = Reply(str(request.get("model", "")), profile.name, profile.base_url,
                      prompt_estimate=prompt_tokens(request.get("messages") or []),
                      pricer=job.pricer)
        client = self._client(profile)
        await gate.enter(slot)
        # --timeout bounds this attempt from the moment it is sent: not the wait for a free
        # slot before it, nor the backoff between attempts.
        seconds = float(request.get("timeout") or 0)
        deadline = asyncio.get_running_loop().time() + seconds if seconds else None
        watch = Watch()
        try:
            async with asyncio.timeout_at(deadline):
                async for event in watch.events(events_of(client, request, profile, job.schema,
                                                          alone=alone)):
                    reply.feed(event)
        except TimeoutError:
            reply.feed(deadline_failure(profile, seconds))  # the text that came stays
            watch.empty, watch.failed = None, True  # not a cut stream: not redone
        finally:
            overlapped = await gate.leave(slot)
        if watch.empty is not None and not overlapped:
            try:
                async with asyncio.timeout_at(deadline):
                    async for event in unstreamed(client, request, profile, job.schema):
                        reply.feed(event)
            except TimeoutError:
                reply.feed(deadline_failure(profile, seconds))
        elif watch.empty is not None:
            reply.feed(watch.empty)
        reply.close()
        cut = watch.cut(bool(request.get("stream")), overlapped)
        return reply, cut

    async def _answer(self, slot: int, job: RowJob) -> Reply:
        """The row's reply after retries and redoes."""
        gate = self._gate(job.profile)
        attempt = redos = 0
        alone = False
        while True:
            reply, cut = await self._attempt(slot, job, gate, alone)
            if cut and redos < MAX_REDOS:
                redos += 1
                ONE_AT_A_TIME.add(job.profile.base_url)
                gate.one_at_a_time()
                alone = True
                self.progress.retries += 1
                continue
            failure = reply.endpoint_failure
            if failure is None:
                gate.reached = True
                gate.succeeded()
                return reply
            gate.reached = gate.reached or failure.status is not None or reply.ttft is not None
            attempt += 1
            # An endpoint never reached (nothing listening, a wrong base_url) is not asked
            # again for every row: only a connection that dropped once it had answered is.
            unreachable = failure.kind == "connect" and not gate.reached
            if not retryable(failure) or unreachable or attempt >= MAX_ATTEMPTS:
                if failure.status == 429:
                    reply.error = sentence(f"{failure.message} (after {attempt} attempts)")
                return reply
            wait = _backoff(attempt, failure, self.backoff)
            if failure.status == 429:
                gate.throttled(wait)
                self.progress.slowed.add(job.profile.base_url)
            self.progress.retries += 1
            await asyncio.sleep(wait)

    async def _row(self, slot: int, position: int, job: RowJob) -> None:
        began = time.perf_counter()
        try:
            row = row_of(job, await self._answer(slot, job))  # --timeout: per attempt
        except Exception as exc:  # noqa: BLE001 - one row's failure is that row's
            row = Row(job.key, job.label,
                      error=scrub.scrub(sentence(f"{type(exc).__name__}: {exc}")))
        # The row's time is all its attempts' and the waits between them, not the last one's.
        row.seconds = round(time.perf_counter() - began, 3)
        self.progress.count(row)
        if self.on_row is not None:
            self.on_row(position, job, row)

    async def arun(self, jobs: Iterable[tuple[int, RowJob]]) -> None:
        """Send every ``(position, job)``; return when all are done (or raise when cancelled:
        the rows finished so far have been handed to ``on_row``)."""
        queue = iter(jobs)

        async def worker(slot: int) -> None:
            for position, job in queue:  # one shared iterator: each job taken once
                await self._row(slot, position, job)

        workers = [asyncio.ensure_future(worker(i)) for i in range(self.concurrency)]
        try:
            await asyncio.gather(*workers)
        finally:
            for task in workers:
                task.cancel()  # a stop or an interrupt: close the HTTP responses in flight
            await asyncio.gather(*workers, return_exceptions=True)
            self.progress.ended = time.perf_counter()
