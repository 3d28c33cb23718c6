"""The runner over real HTTP: a stop or an interrupt reaches a stream whose server says nothing,
and the client hangs up its connection."""

from __future__ import annotations

import _thread
import socket
import threading
import time
from typing import Any

import pytest

from chatmagic.transport.client import ClientPool
from wait import until
from chatmagic.core.profiles import Profile
from chatmagic.engine.request import Job, Request
from chatmagic.engine.runner import Run


def _job(base_url: str, model: str, prompt: str, timeout: float | None = None) -> Job:
    profile = Profile("local", base_url, needs_key=False)
    return Job(Request(profile, model, ({"role": "user", "content": prompt},), timeout=timeout),
               model)


def _run(base_url: str, model: str, prompt: str = "hi", sink: Any = None) -> Run:
    return Run([_job(base_url, model, prompt)], ClientPool({}), sink)


@pytest.fixture
def silent_server() -> Any:
    """Answers 200 with SSE headers, then sends nothing; records when each client hangs up."""
    server = socket.create_server(("127.0.0.1", 0))
    hung_up: list[float] = []

    def handle(conn: socket.socket) -> None:
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n")
        try:
            conn.recv(1)
        except OSError:
            pass
        hung_up.append(time.monotonic())

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}/v1", hung_up
    server.close()


@pytest.mark.parametrize("how", ["stop", "interrupt"])
def test_stop_and_interrupt_reach_a_silent_stream(silent_server: Any, how: str) -> None:
    base_url, hung_up = silent_server
    run = _run(base_url, "m")
    timer = threading.Timer(0.5, run.stop if how == "stop" else _thread.interrupt_main)
    timer.start()
    try:
        (reply,) = run.run()
    except KeyboardInterrupt:
        reply = run.replies[0]
    # The server never sends a byte and the read timeout is the SDK's ten minutes: only the
    # stop (or interrupt) can have ended the run.
    assert reply.interrupted
    until(lambda: hung_up, "the server seeing the client hang up")
    assert not [t for t in threading.enumerate() if t.name == "chatmagic-streams"]
