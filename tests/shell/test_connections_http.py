"""Connections over real HTTP: streamed requests reuse their connections (a stream is read to
its end after ``[DONE]``, so httpx returns the connection to its pool), and the local
endpoint counts the connections it accepts."""

from __future__ import annotations

import asyncio

import openai
import pytest

from chatmagic.core.profiles import Profile
from chatmagic.core.table import Row
from chatmagic.engine.endpoints import Knowledge
from chatmagic.engine.request import Job, Request
from chatmagic.engine.scheduler import Scheduler
from chatmagic.testing import FakeEndpoint
from chatmagic.transport.client import ClientPool

ROWS = 24


def _rows(endpoint: FakeEndpoint, concurrency: int, model: str = "echo",
          stream: bool = True) -> list[Row]:
    """``ROWS`` rows through the scheduler (each its own `exchange`), on one fresh pool."""
    profile = Profile("local", endpoint.base_url, needs_key=False)
    jobs = [(i, Job(Request(profile, model, ({"role": "user", "content": f"row {i}"},),
                            stream=stream), model, key=i)) for i in range(ROWS)]
    rows: list[Row] = []
    scheduler = Scheduler(ClientPool({}), concurrency, knowledge=Knowledge(),
                          on_row=lambda _position, _job, row: rows.append(row))
    asyncio.run(scheduler.arun(jobs))
    return rows


@pytest.mark.parametrize("concurrency", [1, 4])
def test_streamed_rows_reuse_their_connections(endpoint: FakeEndpoint, concurrency: int) -> None:
    rows = _rows(endpoint, concurrency)
    assert len(rows) == ROWS and all(row.ok and row.text for row in rows)
    assert len(endpoint.chat_requests) == ROWS
    # one connection per request in flight at most, not one per request
    assert 1 <= endpoint.connections <= concurrency


def test_the_endpoint_counts_connections_it_accepts(endpoint: FakeEndpoint) -> None:
    # A client that keeps no connection (a new client each time) opens one per request: the
    # counter counts accepted connections, not requests.
    for i in range(3):
        with openai.OpenAI(base_url=endpoint.base_url, api_key="x") as client:
            client.chat.completions.create(model="echo", messages=[{"role": "user",
                                                                     "content": f"r{i}"}])
    assert endpoint.connections == 3
    with openai.OpenAI(base_url=endpoint.base_url, api_key="x") as client:
        for i in range(3):
            client.chat.completions.create(model="echo", messages=[{"role": "user",
                                                                     "content": f"r{i}"}])
    assert endpoint.connections == 4


def test_a_stream_that_breaks_off_costs_its_connection_only(endpoint: FakeEndpoint) -> None:
    # A cut stream closes its connection (the server did); the rows after it still reuse.
    rows = _rows(endpoint, 1, model="echo/faults=0.25")
    assert len(rows) == ROWS and all(row.ok for row in rows)
    failed = len(endpoint.chat_requests) - ROWS  # each fault is one more request
    assert failed >= 2
    assert endpoint.connections <= 1 + failed
