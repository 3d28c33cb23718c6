"""An endpoint's `Gate` over a sequence of outcomes: how many requests it lets in flight after
429s and successes (counts, no clock: every wait here is 0)."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack

from chatmagic.engine.endpoints import Gate


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
        for _ in range(4):  # successes in a row: one more each
            gate.succeeded()
        seen.append(gate.limit)
        for _ in range(100):
            gate.succeeded()
        seen.append(gate.limit)  # back to the run's concurrency, never above
        return seen

    assert asyncio.run(run()) == [8, 4, 8, 16]


def test_a_429_after_successes_halves_what_they_grew_to() -> None:
    async def run() -> list[int]:
        gate = Gate(8)
        first = await _burst(gate, 1)
        gate.throttled(0, first[0])
        seen = [gate.limit]
        gate.succeeded()
        gate.succeeded()
        seen.append(gate.limit)  # each success adds one, the first after a 429 included
        again = await _burst(gate, 1)
        gate.throttled(0, again[0])  # sent after the halving: halves what the successes made
        seen.append(gate.limit)
        gate.succeeded()
        seen.append(gate.limit)  # and the next success adds one at once: nothing is counted
        return seen

    assert asyncio.run(run()) == [4, 6, 3, 4]


def test_an_endpoint_sent_one_request_at_a_time_never_grows_again() -> None:
    async def run() -> int:
        gate = Gate(8)
        gate.one_at_a_time()
        for _ in range(10):
            gate.succeeded()
        return gate.limit

    assert asyncio.run(run()) == 1


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
