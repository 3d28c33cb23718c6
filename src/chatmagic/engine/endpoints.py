"""What a session learns of its endpoints, and each endpoint's share of one run.

`Knowledge` belongs to the session (plain data, read from any loop): the endpoints
seen cutting a stream when another request arrived (llama-cpp-python's
``interrupt_requests``), which then get one request at a time, and the
structured-output mode an endpoint was seen to take after refusing a better one.

A `Gate` is one endpoint's share of one run on one event loop (a cell's columns,
an ``--each`` run's rows): how many of its requests may be in flight, when it may
be asked again after a 429, whether a request overlapped another, and whether the
endpoint has answered at all (one never reached is not asked again for every row).

After a 429 the limit halves: once for all the requests already in flight when it came, which
answer their 429s together, and again only for one sent after that. Each success adds one back,
up to the run's concurrency: one per reply, not TCP's one per round of replies, so a round
doubles it (as TCP's slow start does) and a limit halved from 64 is whole again after 32
replies; growing slower cost a tenth of the rows/s against random 429s (bench 12).
"""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import AsyncIterator

from ..core.profiles import Profile

__all__ = ["Knowledge", "Gate", "Gates", "Slot"]


@dataclass
class Knowledge:
    """What this session learned of its endpoints (by base URL)."""

    #: Endpoints that end a running stream when another request arrives: one at a time.
    serial: set[str] = field(default_factory=set)
    #: The structured-output mode an endpoint takes, learned when it refused a better one.
    modes: dict[str, str] = field(default_factory=dict)

    def one_at_a_time(self, profile: Profile) -> bool:
        """Whether the endpoint gets one request at a time (its profile says so, or it was
        seen cutting a stream for another request)."""
        return profile.one_at_a_time or profile.base_url in self.serial

    def mode_for(self, profile: Profile) -> str:
        """How a schema goes to this endpoint now: what it was seen to take, else what its
        profile says (``structured_output``)."""
        return self.modes.get(profile.base_url, profile.structured_output)


@dataclass
class Slot:
    """One request's place at its endpoint; ``overlapped`` is known once it has left."""

    number: int
    overlapped: bool = False


class Gate:
    """One endpoint's share of one run: how many of its requests may be in flight now."""

    def __init__(self, limit: int) -> None:
        self.ceiling = self.limit = max(1, limit)
        self.active: set[int] = set()
        self.overlapped: set[int] = set()
        self.halved_upto = 0  # the requests sent before the last halving: their 429s are its
        self.reached = False  # the endpoint has answered (a reply or an HTTP status)
        self.resume_at = 0.0  # loop time before which no request may start (after a 429)
        self.changed = asyncio.Condition()
        self._numbers = 0

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[Slot]:
        """Wait for a free place, hold it while the request runs, then free it."""
        slot = Slot(await self._enter())
        try:
            yield slot
        finally:
            slot.overlapped = await self._leave(slot.number)

    async def _enter(self) -> int:
        """Wait for a free place; its number (numbered as they are taken: in sending order)."""
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
            self._numbers += 1
            number = self._numbers
            self.active.add(number)
            if len(self.active) > 1:
                self.overlapped.update(self.active)
        return number

    async def _leave(self, number: int) -> bool:
        """Leave; whether another request was in flight here while this one was."""
        async with self.changed:
            self.active.discard(number)
            overlapped = number in self.overlapped
            self.overlapped.discard(number)
            self.changed.notify_all()
        return overlapped

    def succeeded(self) -> None:
        """A reply came: one more may be in flight (up to the run's concurrency)."""
        self.reached = True
        self.limit = min(self.ceiling, self.limit + 1)

    def throttled(self, wait: float, number: int) -> None:
        """A 429 to the request of slot ``number``: half as many in flight (unless it was sent
        before the last halving, which answered for it), and none starting until ``wait`` is
        over."""
        if number > self.halved_upto:
            self.limit = max(1, self.limit // 2)
            self.halved_upto = self._numbers
        loop = asyncio.get_running_loop()
        self.resume_at = max(self.resume_at, loop.time() + wait)

    def one_at_a_time(self) -> None:
        """From now on, one request at a time (the next waits for every other to end)."""
        self.limit = self.ceiling = 1


class Gates:
    """The gates of one run: one per endpoint, made on first use."""

    def __init__(self, knowledge: Knowledge, limit: int) -> None:
        self.knowledge = knowledge
        self.limit = limit
        self._gates: dict[str, Gate] = {}

    def __call__(self, profile: Profile) -> Gate:
        gate = self._gates.get(profile.base_url)
        if gate is None:
            limit = min(self.limit, profile.concurrency or self.limit)
            gate = self._gates[profile.base_url] = Gate(limit)
            if self.knowledge.one_at_a_time(profile):
                gate.one_at_a_time()
        return gate
