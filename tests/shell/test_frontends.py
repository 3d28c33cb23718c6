"""Terminal IPython streams plain text (the declared surface is tested in test_surface.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from chatmagic.testing import FakeEndpoint


def test_terminal_ipython_streams_plain_text(endpoint: FakeEndpoint, clean_env: Path) -> None:
    code = "%load_ext chatmagic\n%chat -m long/tokens=30,delay=0.01 go\n"
    (clean_env / "t.ipy").write_text(code)
    env = {"OPENAI_BASE_URL": endpoint.base_url, "PATH": "/usr/bin:/bin",
           "CHATMAGIC_HISTORY_DIR": str(clean_env / "h"), "HOME": str(clean_env)}
    out = subprocess.run([sys.executable, "-m", "IPython", "--colors=nocolor", "t.ipy"],
                         cwd=clean_env, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "w0 w1 w2" in out.stdout and "w29" in out.stdout
    assert "Widget" not in out.stdout and "HBox" not in out.stdout and "\x1b[" not in out.stdout
    assert "finished" in out.stdout
