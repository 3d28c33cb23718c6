"""The exchange engine: the one place that asks a model, from a request to its events.

`exchange` sends a `Request` and hands every event to ``emit`` as it comes, in
order, until the request is answered or has failed for good. It owns every
attempt: the whole-attempt deadline (``--timeout``; the SDK's own timeout bounds
each read only, and a server sending ``: keep-alive`` comments never times out),
retries with backoff (the server's ``Retry-After`` first; one policy for every
entry point, the SDK retrying nothing), a stream another request to the same
endpoint cut short (llama-cpp-python's ``interrupt_requests``: asked again
alone, and that endpoint served one request at a time from then on), an empty
stream sent alone (the server hiding an error, a prompt past its context: asked
again without streaming, which says why), and a schema: put into the body the
way the endpoint takes it, asked again the next way when it refuses that, and
the reply read back as its value.

A failure that will be retried is never emitted: the reader gets a `Restart`
saying why, and what the last attempt said is void. Cells, compare columns,
``--each`` rows and the Python API differ only in how many exchanges they run
at once (`Gate`) and where the events go.
"""

from __future__ import annotations

import asyncio
import random
from contextlib import aclosing
from dataclasses import dataclass, replace
from typing import AsyncIterator, Awaitable, Callable

import openai

from ..core.events import (Finish, Note, ReasoningDelta, RefusalDelta, Restart, StreamError,
                           StreamEvent, TextDelta, ToolCallDelta)
from ..core.failures import sentence
from ..core.profiles import Profile
from ..core.schema import MODES
from ..transport.stream import aretry_without_stream, astream_chat
from ..transport.structured import aread_parsed, refuses_mode
from ..transport.client import ClientPool
from .endpoints import Gate, Gates, Knowledge
from .request import Request

__all__ = ["Policy", "CELL", "ROWS", "Route", "Routes", "Emit", "exchange", "retryable", "deadline_failure",
           "REDO_NOTE", "Watch"]

#: Where an exchange's events go, one at a time, in order.
Emit = Callable[[StreamEvent], None]

#: What counts as the endpoint having said something (a cell's text is then on screen).
SAID = (TextDelta, ReasoningDelta, RefusalDelta, ToolCallDelta)

REDO_NOTE = ("asked again on its own: the endpoint ended the first stream without a finish "
             "reason when another request reached it (it now gets one request at a time)")

_WORDS = {"json_schema": "json_schema (structured outputs)",
          "json_object": "json_object with the schema beside it",
          "none": "the schema in the prompt only"}


@dataclass(frozen=True)
class Policy:
    """How hard an exchange tries: attempts at a retryable failure, redoes of a cut stream,
    the backoff between attempts, whether a reply that showed text may be asked again (a
    row's text is shown only once it is finished; a cell's is shown as it comes), and
    whether a connection failure is asked again before the endpoint ever answered in this
    run (a cell: yes, as the SDK did, a pooled connection the server closed is one; a run
    over many rows: no, or a dead endpoint would be asked again for every row)."""

    attempts: int = 3
    redos: int = 3
    backoff: float = 0.5
    max_wait: float = 60.0
    retry_after_text: bool = False
    retry_unreached: bool = True


#: A cell, a compare column, the Python API: as the SDK did, the first and two retries,
#: while nothing has been shown.
CELL = Policy()
#: An --each row: the first and four retries, whatever came before the failure.
ROWS = Policy(attempts=5, retry_after_text=True, retry_unreached=False)


@dataclass
class Route:
    """Where one run's requests to one endpoint go: its client (the SDK retrying nothing:
    the engine does), its gate in this run, and what the session knows of it."""

    client: openai.AsyncOpenAI
    gate: Gate
    knowledge: Knowledge


def retryable(failure: StreamError) -> bool:
    """Whether asking again may succeed: rate limits, server errors, dropped connections
    (not a server error whose words say the request itself is at fault: ``rejected``)."""
    status = failure.status
    if failure.kind == "rejected":
        return False
    if status is not None:
        return status == 429 or status >= 500
    return failure.kind in ("connect", "incomplete")


def deadline_failure(profile: Profile, seconds: float) -> StreamError:
    """The failure of a request that did not end within its --timeout."""
    return StreamError(f"No complete answer from {profile.name} ({profile.base_url}) within "
                       f"{seconds:g} s (--timeout, the whole request's limit). Raise --timeout "
                       "for longer replies.", "timeout")


class Watch:
    """What one attempt's stream showed, noted as its events pass on to the reader."""

    def __init__(self) -> None:
        self.finished = self.said = self.broke_first = self.overlapped = False
        self.answered = False  # the endpoint answered (a stream, even an empty one)
        self.failure: StreamError | None = None  # held back: the exchange decides
        self.empty: StreamError | None = None  # an empty stream
        self.slot = 0  # the number of the gate's slot it held

    async def pass_on(self, stream: AsyncIterator[StreamEvent], emit: Emit) -> None:
        """Every event of ``stream`` to ``emit``, but its failure (kept in ``failure``)."""
        async with aclosing(stream):  # type: ignore[type-var]  # closes the HTTP response
            async for event in stream:
                if isinstance(event, SAID):
                    self.said = True
                elif isinstance(event, Finish):
                    self.finished = True
                elif isinstance(event, StreamError):
                    if event.kind == "empty":
                        self.empty = event
                        self.answered = True
                    else:
                        self.failure = event
                        # A proxy's error frame before a word (LiteLLM's "Connection error"
                        # when llama-cpp-python dropped the stream for another request).
                        self.broke_first = event.kind == "server" and not self.said
                    continue
                emit(event)

    @property
    def cut(self) -> bool:
        """Whether another request in flight to the endpoint cut this streamed attempt:
        nothing at all, a stream that ended as streams end but with no finish reason (or one
        and not a word), or a proxy's error before a word. A failed attempt is no such
        evidence: a stream that broke off (``incomplete``: no finish reason, no [DONE]) or a
        dropped connection is retried as the failure it is, and the endpoint keeps its
        concurrency."""
        failed = self.failure is not None
        return self.overlapped and (self.empty is not None or self.broke_first
                                    or not failed and not (self.finished and self.said))


async def _within(seconds: float | None, work: Awaitable[None], watch: Watch,
                  profile: Profile) -> None:
    """``work``, ended as a timeout failure once ``seconds`` have passed (the text that came
    stays); a reply that had finished stays a reply (the deadline fell while what follows
    [DONE] was read)."""
    if not seconds:
        await work
        return
    try:
        await asyncio.wait_for(work, seconds)
    except asyncio.TimeoutError:
        if not (watch.finished and watch.failure is None):
            watch.failure, watch.empty = deadline_failure(profile, seconds), None


def _events(client: openai.AsyncOpenAI, kwargs: dict[str, object], request: Request, *,
            streamed: bool = True) -> AsyncIterator[StreamEvent]:
    """One attempt's events (streamed, or asked again without streaming), then with a
    schema the reply read as its value."""
    profile = request.profile
    events = (astream_chat(client, kwargs, profile, retry_empty=False) if streamed
              else aretry_without_stream(client, kwargs, profile))
    return events if request.schema is None else aread_parsed(events, request.schema)


async def _attempt(request: Request, kwargs: dict[str, object], route: Route,
                   emit: Emit) -> Watch:
    """One try, holding a place at the endpoint while it streams."""
    watch = Watch()
    profile = request.profile
    async with route.gate.slot() as slot:
        await _within(request.timeout, watch.pass_on(
            _events(route.client, kwargs, request), emit), watch, profile)
    watch.overlapped, watch.slot = slot.overlapped and request.stream, slot.number
    if watch.empty is not None and not slot.overlapped:
        # Alone, an empty stream is the server hiding an error: asked again without
        # streaming, which says why. (Overlapped, it is a cut stream: asked again alone.)
        watch.empty = None
        for _ in range(2):
            watch.failure = None
            await _within(request.timeout, watch.pass_on(
                _events(route.client, kwargs, request, streamed=False), emit),
                watch, profile)
            # llama-cpp-python leaves the connection its failed stream came on broken: the
            # question may meet it closed, and is asked once more on a fresh one.
            if watch.failure is None or watch.failure.kind != "connect":
                break
    return watch


def _backoff(attempt: int, failure: StreamError, policy: Policy) -> float:
    """Seconds before attempt ``attempt + 1``: the server's word, else exponential + jitter."""
    if failure.retry_after is not None:
        return min(policy.max_wait, float(failure.retry_after))
    return float(min(policy.max_wait, policy.backoff * 2.0 ** (attempt - 1))
                 * random.uniform(0.5, 1.0))


def _retry_note(failure: StreamError, wait: float) -> str:
    what = f"HTTP {failure.status}" if failure.status is not None else {
        "connect": "a dropped connection", "incomplete": "a stream that broke off"}.get(
        failure.kind, failure.kind)
    return f"asked again after {what}" + (f" (waited {wait:.1f} s)" if wait >= 0.1 else "")


async def exchange(request: Request, route: Route, emit: Emit, policy: Policy = CELL) -> None:
    """Ask ``request`` until it is answered or has failed for good; every event to ``emit``
    (the last one a `StreamError` when it failed)."""
    profile, schema, knowledge, gate = request.profile, request.schema, route.knowledge, route.gate
    mode = knowledge.mode_for(profile) if schema is not None else "none"
    if schema is not None and mode != profile.structured_output:
        emit(Note(f"sent with {_WORDS[mode]}: {profile.name} refused "
                  f"{profile.structured_output} earlier in this session"))
    kwargs = request.shaped(mode)
    tries = redos = 0
    while True:
        watch = await _attempt(request, kwargs, route, emit)
        if watch.cut and redos < policy.redos:
            redos += 1
            knowledge.serial.add(profile.base_url)
            gate.one_at_a_time()  # the next attempt waits until every other has ended
            emit(Restart(REDO_NOTE))
            continue
        failure = watch.failure or watch.empty
        if failure is None:
            gate.succeeded()
            return
        gate.reached = (gate.reached or failure.status is not None or watch.said
                        or watch.answered)
        if schema is not None and not watch.said and refuses_mode(failure, mode) \
                and mode != MODES[-1]:
            following = MODES[MODES.index(mode) + 1]
            knowledge.modes[profile.base_url] = following
            emit(Note(f"asked again with {_WORDS[following]}: {profile.name} refused {mode} "
                      f"({_said(failure)})"))
            mode, kwargs = following, request.shaped(following)
            continue
        tries += 1
        # An endpoint never reached (nothing listening, a wrong base_url) is not asked again:
        # only a connection that dropped once it had answered is.
        unreachable = (failure.kind == "connect" and not gate.reached
                       and not policy.retry_unreached)
        if (retryable(failure) and not unreachable and tries < policy.attempts
                and (policy.retry_after_text or not watch.said)):
            wait = _backoff(tries, failure, policy)
            if failure.status == 429:
                gate.throttled(wait, watch.slot)
            emit(Restart(_retry_note(failure, wait), failure, wait))
            await asyncio.sleep(wait)
            continue
        if tries > 1 and retryable(failure):
            failure = replace(failure, message=sentence(f"{failure.message} (after {tries} "
                                                        "attempts)"))
        emit(failure)
        return


def _said(failure: StreamError) -> str:
    """The server's words in a refusal, short (the footer is one line)."""
    text = failure.message.split(": ", 1)[-1].split(" — ")[0]
    return text if len(text) <= 120 else text[:117].rstrip() + "…"


class Routes:
    """The routes of one run, made on first use on the run's own loop: one gate per
    endpoint (at most ``limit`` of its requests in flight, or its profile's
    ``concurrency``), one client per profile."""

    def __init__(self, clients: ClientPool, knowledge: Knowledge, limit: int) -> None:
        self.clients = clients
        self.gates = Gates(knowledge, limit)
        # By profile: the pool's lookup hashes the key and reads the proxy environment, a
        # cost not to pay per row. The profiles are kept, so their ids are not reused.
        self._routes: dict[int, tuple[Profile, Route]] = {}

    def __call__(self, profile: Profile) -> Route:
        known = self._routes.get(id(profile))
        if known is None:
            client = self.clients.async_(profile).with_options(max_retries=0)
            known = self._routes[id(profile)] = (
                profile, Route(client, self.gates(profile), self.gates.knowledge))
        return known[1]
