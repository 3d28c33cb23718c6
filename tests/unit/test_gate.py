"""An endpoint's `Gate` over a sequence of outcomes: how many requests it lets in flight after
429s and successes (counts, no clock: every wait here is 0)."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack

from chatmagic.engine.endpoints import GROW_AFTER, Gate


async def _burst(gate: Gate, count: int) -> list[int]:
    """``count`` requests in flight at once, all ended: their slot numbers."""
    async with AsyncExitStack() as stack:
        return [(await stack.enter_async_context(gate.slot())).number for _ in range(count)]


def test_the_429s_of_one_burst_halve_the_limit_once_then_successes_restore_it() -> None:
    async def run() -> list[int]:
        gate = Gate(16)
        seen = []
        burst = await _burst(gate, 16)
        for number in burst:  # every request in flight answers 429
            gate.throttled(0, number)
        seen.append(gate.limit)  # halved once, not sixteen times
        later = await _burst(gate, 1)
        gate.throttled(0, later[0])  # a request sent after the halving: news, halved again
        seen.append(gate.limit)
        for _ in range(GROW_AFTER * 4):  # successes in a row: one more per GROW_AFTER
            gate.succeeded()
        seen.append(gate.limit)
        for _ in range(GROW_AFTER * 100):
            gate.succeeded()
        seen.append(gate.limit)  # back to the run's concurrency, never above
        return seen

    assert asyncio.run(run()) == [8, 4, 8, 16]


def test_a_429_between_successes_starts_the_count_again() -> None:
    async def run() -> list[int]:
        gate = Gate(8)
        first = await _burst(gate, 1)
        gate.throttled(0, first[0])
        seen = [gate.limit]
        for _ in range(GROW_AFTER - 1):
            gate.succeeded()
        again = await _burst(gate, 1)
        gate.throttled(0, again[0])
        seen.append(gate.limit)
        for _ in range(GROW_AFTER - 1):
            gate.succeeded()
        seen.append(gate.limit)  # not yet: the count began at the last 429
        gate.succeeded()
        seen.append(gate.limit)
        return seen

    assert asyncio.run(run()) == [4, 2, 2, 3]


def test_the_gate_lets_no_more_than_its_limit_in_flight() -> None:
    async def run() -> int:
        gate = Gate(8)
        burst = await _burst(gate, 8)
        gate.throttled(0, burst[0])  # 4 now
        most = 0

        async def one() -> None:
            nonlocal most
            async with gate.slot():
                most = max(most, len(gate.active))
                await asyncio.sleep(0)

        await asyncio.gather(*(one() for _ in range(20)))
        return most

    assert asyncio.run(run()) == 4


def test_a_request_that_waited_for_its_place_through_a_halving_is_news() -> None:
    # Numbered when sent, not when queued: a 429 to a request sent after the halving halves
    # again, even if it had been waiting for a place since before.
    async def run() -> list[int]:
        gate = Gate(4)
        release = asyncio.Event()
        numbers: list[int] = []

        async def one() -> None:
            async with gate.slot() as slot:
                numbers.append(slot.number)
                await release.wait()

        tasks = [asyncio.ensure_future(one()) for _ in range(6)]
        while len(numbers) < 4:
            await asyncio.sleep(0)
        for number in numbers:  # the four in flight answer 429; two wait for a place
            gate.throttled(0, number)
        seen = [gate.limit]
        release.set()
        await asyncio.gather(*tasks)
        gate.throttled(0, numbers[-1])  # one of the two that waited, sent after the halving
        seen.append(gate.limit)
        return seen

    assert asyncio.run(run()) == [2, 1]
