"""The fast tier: everything happens in this process.

A test here opens no connection and starts no process (both raise at once, naming the tier
to move the test to). The endpoint answers through `chatmagic.testing.in_process`: every
`ClientPool` made during a test (a session's, a test's own) sends its requests to this
test's `InProcessTransport`, inside the same scrubbing edge as the network would be, and
every chat body any endpoint added to it received is checked against OpenAI's schema at the
end. Scripted pauses are skipped unless the test is marked ``paced``.
"""

from __future__ import annotations

import os
import socket
import subprocess
from typing import Any, Iterator

import pytest

from chatmagic.testing import FakeEndpoint
from chatmagic.testing.in_process import InProcessTransport
from chatmagic.transport.client import ClientPool
from openapi import assert_bodies_valid

_NETWORK = (socket.AF_INET, socket.AF_INET6)

try:  # a fresh matplotlib builds its font cache with `fc-list` on first import: done here,
    import matplotlib.pyplot  # noqa: F401  # before subprocesses are refused, not in a test
except ImportError:
    pass


def _refuse(what: str) -> Any:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"a unit test {what}: tests/unit is in-process only; use the "
                             "in-process endpoint, or move the test to tests/shell or "
                             "tests/kernel")
    return refuse


@pytest.fixture(autouse=True)
def in_process_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """No connection over the network, no subprocess, no fork."""
    connect, connect_ex = socket.socket.connect, socket.socket.connect_ex

    def guarded(real: Any) -> Any:
        def call(sock: socket.socket, address: Any) -> Any:
            if sock.family in _NETWORK:
                _refuse(f"connected to {address!r}")()
            return real(sock, address)
        return call

    monkeypatch.setattr(socket.socket, "connect", guarded(connect))
    monkeypatch.setattr(socket.socket, "connect_ex", guarded(connect_ex))
    monkeypatch.setattr(subprocess.Popen, "__init__", _refuse("started a process"))
    monkeypatch.setattr(os, "fork", _refuse("forked"))


@pytest.fixture(autouse=True)
def transport(request: pytest.FixtureRequest,
              monkeypatch: pytest.MonkeyPatch) -> Iterator[InProcessTransport]:
    """The in-process transport every ClientPool of this test uses."""
    answers = InProcessTransport(pace=request.node.get_closest_marker("paced") is not None)
    made = ClientPool.__init__

    def in_process(pool: ClientPool, environ: Any = None, *, transport: Any = None) -> None:
        made(pool, environ, transport=transport or answers)

    monkeypatch.setattr(ClientPool, "__init__", in_process)
    yield answers
    for endpoint in answers.endpoints:
        assert_bodies_valid(endpoint)


@pytest.fixture
def endpoint(transport: InProcessTransport) -> FakeEndpoint:
    """A FakeEndpoint answering in process (its base_url names it; no port is bound). The
    shell fixture (tests/conftest.py) points its shell at this one."""
    return transport.add(FakeEndpoint())

