"""Fixtures every tier shares: a local endpoint that validates every body it received, a real
IPython shell, and local-server presets that point at a closed port (a developer's own vLLM or
Ollama never answers a test). tests/unit overrides the endpoint and the shell to answer in
process; the other tiers talk HTTP on loopback.

The tiers are folders: a test under tests/kernel is marked ``kernel``, under tests/browser
``browser``, under tests/unit ``unit``, under tests/shell ``shell`` (tests/real marks its own);
the markers are declared in pyproject.toml.
"""

from __future__ import annotations

import socket
import sys
from dataclasses import replace
from pathlib import Path
from typing import Iterator

import pytest

# The helpers every tier imports: kernel, browser, hostile, openapi, inert, wait.
sys.path.insert(0, str(Path(__file__).parent / "support"))

from chatmagic.core.profiles import PRESETS  # noqa: E402
from chatmagic.testing import FakeEndpoint  # noqa: E402
from openapi import assert_bodies_valid  # noqa: E402

KEY_VARIABLES = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "CHATMAGIC_PROFILE", "CHATMAGIC_MODEL",
                 "CHATMAGIC_DEMO_URL", "JPY_SESSION_NAME", "DASHSCOPE_API_KEY")

HERE = Path(__file__).parent
#: folder -> the marker its tests get
TIERS = {"unit": "unit", "shell": "shell", "kernel": "kernel", "browser": "browser"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        path = Path(str(item.fspath))
        parts = path.relative_to(HERE).parts if path.is_relative_to(HERE) else ()
        if len(parts) > 1 and parts[0] in TIERS:  # not the gallery notebooks nbval collects
            item.add_marker(TIERS[parts[0]])


@pytest.fixture(scope="session")
def closed_port() -> Iterator[int]:
    """A loopback port that refuses connections: bound for the session, never listening."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


@pytest.fixture(autouse=True)
def local_presets_closed(closed_port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """ollama (:11434), vllm (:8000), llamacpp (:8080) and demo (:8765) at the closed port.

    Whatever listens on those ports on a developer's machine is not ours to talk to. This
    reaches the profiles loaded in this process; kernels the tests start load the presets
    as shipped (no test there uses a local preset).
    """
    for name, preset in list(PRESETS.items()):
        if preset.host.rsplit(":", 1)[0] in ("localhost", "127.0.0.1", "[::1]"):
            monkeypatch.setitem(PRESETS, name, replace(
                preset, base_url=f"http://127.0.0.1:{closed_port}/v1"))


@pytest.fixture
def endpoint() -> Iterator[FakeEndpoint]:
    """A FakeEndpoint on loopback; at teardown every chat body it got must match OpenAI's
    schema."""
    with FakeEndpoint() as ep:
        yield ep
    assert_bodies_valid(ep)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No key or endpoint from the developer's environment; history in a temp dir."""
    for name in KEY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CHATMAGIC_HISTORY_DIR", str(tmp_path / "history"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def shell(endpoint: FakeEndpoint, clean_env: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """A real IPython InteractiveShell with chatmagic loaded, pointed at the endpoint."""
    import chatmagic
    from IPython.testing.globalipapp import get_ipython

    monkeypatch.setenv("OPENAI_BASE_URL", endpoint.base_url)
    ip = get_ipython()
    chatmagic._magics = None
    chatmagic.load_ipython_extension(ip)
    yield ip
    chatmagic.unload_ipython_extension(ip)
