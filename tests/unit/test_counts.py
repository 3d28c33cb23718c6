"""Token counts where the endpoint sends none, and requests cut short, as %chat_usage and the
footer show them: in a real shell, through the openai SDK to FakeEndpoint (in process)."""

from __future__ import annotations

import _thread
import threading
import time
from typing import Any

import pytest

from chatmagic.testing import FakeEndpoint


def _usage(shell: Any) -> list[dict[str, Any]]:
    shell.run_line_magic("chat_usage", "-o _u")
    return list(shell.user_ns["_u"])


def test_one_chunk_per_token_is_counted_and_marked_estimated(shell: Any,
                                                            endpoint: FakeEndpoint,
                                                            capsys: Any) -> None:
    # no-usage streams one word per chunk and no usage, as llama.cpp's server does: ten
    # chunks are ten tokens (characters / 4 would say 5).
    shell.run_cell("%%chat -m no-usage\na b c d e f g h i j")
    out = capsys.readouterr().out
    (row,) = _usage(shell)
    assert row["completion_tokens"] == 10 and row["estimated"] is True
    assert "(estimated)" in out  # the footer says so too


def test_a_reported_count_is_not_marked(shell: Any, endpoint: FakeEndpoint, capsys: Any) -> None:
    shell.run_cell("%%chat -m echo\na b c d e f g h i j")
    assert "estimated" not in capsys.readouterr().out
    (row,) = _usage(shell)
    assert row["completion_tokens"] == 10 and row["estimated"] is False


@pytest.mark.paced
def test_an_interrupted_request_is_counted(shell: Any, endpoint: FakeEndpoint,
                                           capsys: Any) -> None:
    def interrupt_once_streaming() -> None:
        deadline = time.monotonic() + 10
        while not endpoint.chat_requests and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.3)
        _thread.interrupt_main()

    watcher = threading.Thread(target=interrupt_once_streaming, daemon=True)
    watcher.start()
    shell.run_cell("%%chat -m long/tokens=400,delay=0.02\nhi")
    watcher.join()
    assert "ReplyInterrupted" in capsys.readouterr().out
    (row,) = _usage(shell)
    # The tokens that arrived were generated (and billed): counted, as an estimate.
    assert row["requests"] == 1 and 1 <= row["completion_tokens"] < 400
    assert row["estimated"] is True
