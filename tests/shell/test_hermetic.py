"""The tests talk to no server of the developer's: local presets point at a closed port."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from chatmagic.core.profiles import Profiles


@pytest.mark.parametrize("name", ["ollama", "vllm", "llamacpp", "demo"])
def test_local_presets_point_at_a_port_that_refuses(name: str, closed_port: int,
                                                    clean_env: Path) -> None:
    profile = Profiles.load({}).get(name)
    assert profile.base_url == f"http://127.0.0.1:{closed_port}/v1"
    with socket.socket() as sock, pytest.raises(ConnectionRefusedError):
        sock.connect(("127.0.0.1", closed_port))
