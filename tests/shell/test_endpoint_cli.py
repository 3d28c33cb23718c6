"""`python -m chatmagic.testing` (also `chatmagic serve`): a busy port is one message."""

from __future__ import annotations

import socket
import subprocess
import sys


def test_a_busy_port_is_one_message_naming_it() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = subprocess.run([sys.executable, "-m", "chatmagic.testing", "--port", str(port)],
                             capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert f"127.0.0.1:{port}" in out.stderr and "--port" in out.stderr
