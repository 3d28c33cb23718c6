"""The Python API over real HTTP: blocking calls reuse one connection."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest

import chatmagic
from chatmagic.engine.session import use_session
from chatmagic.testing import FakeEndpoint


@pytest.fixture
def api(endpoint: FakeEndpoint, clean_env: Path,
        monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """chatmagic with no extension loaded: a plain session pointed at the endpoint."""
    monkeypatch.setenv("OPENAI_BASE_URL", endpoint.base_url)
    monkeypatch.setattr(chatmagic, "_magics", None)
    use_session(None)
    yield chatmagic
    use_session(None)


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads Linux's TCP table")
def test_blocking_calls_reuse_one_connection(api: Any, endpoint: FakeEndpoint) -> None:
    # The FakeEndpoint closes the connection after each stream, so one-shot replies here.
    for _ in range(5):
        assert api.prompt("hi", model="echo", no_stream=True).text() == "hi"
    assert len(_client_ports(endpoint.port)) == 1


def _client_ports(port: int) -> set[int]:
    """Client-side ports of the TCP connections to ``port`` still in the kernel's table."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, remote, state = line.split()[1:4]
            local_port, remote_port = int(local.rsplit(":", 1)[1], 16), \
                int(remote.rsplit(":", 1)[1], 16)
            if state == "0A":
                continue  # a listening socket
            if local_port == port:
                found.add(remote_port)
            elif remote_port == port:
                found.add(local_port)
    return found
