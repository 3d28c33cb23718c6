"""bench/run.py --smoke: judges what its small sizes can show, fails on a miss, leaves no files."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parents[2] / "bench" / "run.py"


def bench() -> Any:
    spec = importlib.util.spec_from_file_location("bench_run", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_run"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def test_smoke_judges_only_what_load_cannot_change() -> None:
    run = bench()
    rows = [run.ratio_row("2 bytes/reply byte (static)", 30, 10, "B", 2),          # misses
            run.ratio_row("6 append bytes", 1, 1000, "B", 0.01),
            run.ratio_row("3 updates/budget (fast x10, static)", 30, 20, "n", 1.2),  # the clock
            run.ratio_row("3 updates/budget (slow, static)", 6, 7, "n", 1.2),
            run.ratio_row("3 updates/floor (fast, static)", 3, 2, "n", 1.0),        # the clock
            run.ratio_row("1 stream time (static)", 2, 1, "s", 1.1),               # a time
            run.ratio_row("8 bytes/reply byte (table, fast, static)", 9, 1, "B", 1.5)]
    judged, missed = run.judge(rows, "smoke")
    assert [r.figure for r in judged] == ["2 bytes/reply byte (static)", "6 append bytes"]
    assert missed == ["2 bytes/reply byte (static)"]
    for row in rows[2:]:  # kept in the table with their target, judged by the full run only
        assert row.holds is None and row.target.endswith("(full run)"), row


def test_the_full_run_judges_every_target() -> None:
    run = bench()
    rows = [run.ratio_row("3 updates/budget (fast, static)", 3, 0.6, "n", 1.2),
            run.ratio_row("1 stream time (static)", 2, 1, "s", 1.1)]
    judged, missed = run.judge(rows, "full")
    assert len(judged) == 2 and len(missed) == 2


def test_smoke_results_go_to_a_temporary_folder_unless_asked(tmp_path: Path) -> None:
    run = bench()
    assert run.parse_args(["--smoke"]).results is None
    smoke = run.results_dir(None, "smoke")
    assert smoke.is_dir() and not smoke.is_relative_to(BENCH.parent) and not list(smoke.iterdir())
    smoke.rmdir()
    assert run.results_dir(None, "full") == BENCH.parent / "results"
    assert run.results_dir(tmp_path, "smoke") == tmp_path


def test_a_smoke_miss_fails_the_run() -> None:
    run = bench()
    assert run.exit_status(["2 bytes/reply byte (static)"], "smoke", False) == 1
    assert run.exit_status([], "smoke", False) == 0
    assert run.exit_status(["x"], "full", False) == 0 and run.exit_status(["x"], "full", True) == 1


