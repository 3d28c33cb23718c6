"""The fast tier keeps to its process: no connection, no subprocess; every ClientPool made in a
test answers through that test's in-process transport."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from chatmagic.core.profiles import Profile
from chatmagic.testing import FakeEndpoint
from chatmagic.testing.in_process import InProcessTransport
from chatmagic.transport.client import ClientPool


def test_a_connection_or_a_process_fails_the_test_at_once(closed_port: int) -> None:
    with pytest.raises(AssertionError, match="tests/unit is in-process only"):
        socket.create_connection(("127.0.0.1", closed_port))
    with pytest.raises(AssertionError, match="tests/unit is in-process only"):
        subprocess.run([sys.executable, "-c", "pass"], check=True)
    left, right = socket.socketpair()  # a local pair (asyncio's wake-up) is not the network
    left.close(), right.close()


def test_every_pool_answers_in_process(transport: InProcessTransport,
                                       endpoint: FakeEndpoint) -> None:
    assert transport.endpoints == [endpoint]
    other = transport.add(FakeEndpoint(owned_by="other"))
    pool = ClientPool({})  # as a session makes its own
    models = pool.sync(Profile("o", other.base_url, needs_key=False)).models.list()
    assert models.data[0].owned_by == "other" and len(other.requests) == 1
    assert not endpoint.requests


@pytest.mark.paced
def test_a_paced_test_gets_a_paced_transport(transport: InProcessTransport) -> None:
    assert transport.pace


def test_every_test_file_is_in_a_tier_folder() -> None:
    from pathlib import Path

    tests = Path(__file__).resolve().parents[1]
    assert sorted(p.name for p in tests.glob("test_*.py")) == []  # none outside a tier
    tiers = {p.name for p in tests.iterdir() if p.is_dir() and any(p.glob("test_*.py"))}
    assert tiers == {"unit", "shell", "kernel", "browser", "real"}
