"""bench/each_faults.py and bench/reply_memory.py in smoke mode: every side runs, answers every
row (or reads the whole reply), and chatmagic's connections stay within the concurrency plus
the streams the server cut (counts, not times)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _smoke(script: str, out: Path) -> dict[str, object]:
    done = subprocess.run([sys.executable, str(BENCH / script), "--smoke", "--json", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(out.read_text())
    return result


def test_each_faults_smoke(tmp_path: Path) -> None:
    result = _smoke("each_faults.py", tmp_path / "faults.json")
    assert result["rows"] == 100 and result["concurrency"] == 8
    assert result["chatmagic_unanswered"] == result["loop_unanswered"] == 0
    sides = result["sides"]
    assert isinstance(sides, dict)
    for side in sides.values():  # the endpoint did fail some requests, which were asked again
        assert all(run["requests"] > 100 for run in side)
    assert 1 <= result["chatmagic_connections"] <= result["chatmagic_connection_budget"]


def test_reply_memory_smoke(tmp_path: Path) -> None:
    result = _smoke("reply_memory.py", tmp_path / "memory.json")
    assert result["chatmagic_chars"] == result["sdk_chars"] == 5_000_000
    assert result["chatmagic_mb"] > 0 and result["sdk_mb"] > 0
