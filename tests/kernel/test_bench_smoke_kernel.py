"""bench/each_throughput.py --smoke runs both sides (its progress view in a real kernel)."""

from __future__ import annotations

import sys
from pathlib import Path


BENCH = Path(__file__).resolve().parents[2] / "bench" / "run.py"


def test_each_throughput_smoke_runs_both_sides(tmp_path: Path) -> None:
    import subprocess

    script = BENCH.parent / "each_throughput.py"
    out = tmp_path / "each.json"
    done = subprocess.run([sys.executable, str(script), "--smoke", "--json", str(out)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    import json

    result = json.loads(out.read_text())
    assert result["rows"] == 64 and len(result["chatmagic_s"]) == len(result["loop_s"]) == 2
    assert result["chatmagic_rows_per_s"] > 0 and result["loop_stream_rows_per_s"] > 0
    front = result["frontend"]  # the progress view's bytes, in a real kernel
    assert front["100"]["bytes"] > 0 and front["1000"]["bytes"] >= front["100"]["bytes"]
    assert "goal >= 0.95" not in done.stdout  # a smoke run judges no timing
