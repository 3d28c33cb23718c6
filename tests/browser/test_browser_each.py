"""The --each progress view in a real JupyterLab 4 (Debian's chromium): the line, Stop, the end.

Uses test_browser's fixtures (a FakeEndpoint, ``jupyter lab`` in a subprocess, chromium).
Run: ``pytest tests/browser/test_browser_each.py -x -v`` (screenshots in artifacts/screenshots/).
"""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.browser

from test_browser import chromium, lab, notebook, server  # noqa: E402,F401 - the fixtures

from browser import WIDGET_ERROR, Lab, LabServer  # noqa: E402


def test_each_progress_line_and_stop_keep_the_finished_rows(server: LabServer,  # noqa: F811
                                                           lab: Lab) -> None:  # noqa: F811
    name = notebook(server, "each.ipynb", [
        "%load_ext chatmagic\nxs = [f'row {i}' for i in range(200)]",
        "%%chat --each xs -m echo/first=0.3 --concurrency 4 -o t\nSay {item}",
        "print('kept', len(t), 'rows')",
    ])
    lab.open(name)
    lab.run(0)
    key = lab.run_cell(1)
    out = lab.output(1)
    stop = out.locator("button.jupyter-button", has_text="Stop")
    stop.wait_for(timeout=20_000)
    # The line counts up while the rows go (redrawn in place: one output, not one per row).
    out.get_by_text(re.compile(r"\b([4-9]|\d\d)/200 rows")).first.wait_for(timeout=20_000)
    line = lab.out_text(1)
    assert "tokens" in line and "rows/s" in line and "left" in line, line
    lab.screenshot("each-running")
    stop.click()
    lab.wait_done(key, timeout=30)  # 200 rows at 4 at a time would take 15 s: kept < 200 below
    lab.screenshot("each-stopped")
    text = lab.out_text(1)
    assert "of 200 rows answered" in text and "not sent (stopped" in text, text
    assert "Say row 0" in text  # the first rows of the table under the summary
    assert out.locator("button.jupyter-button").count() == 0  # static again: no dead widget
    assert out.locator("table").count() == 1
    kept = int(re.search(r"kept (\d+) rows", lab.run(2)).group(1))  # type: ignore[union-attr]
    assert 4 <= kept < 200
    assert WIDGET_ERROR not in lab.panel().inner_text()
