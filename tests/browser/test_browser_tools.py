"""Tool calls in a real JupyterLab: the Run and Skip buttons under each call's block.

Uses the fixtures of test_browser (a FakeEndpoint, ``jupyter lab``, Debian's chromium).
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser

from test_browser import chromium, lab, notebook, server  # noqa: E402,F401 - the fixtures

from browser import WIDGET_ERROR, Lab, LabServer  # noqa: E402

TOOLS = '''
ran = []
def add(a: int, b: int) -> int:
    """Add two whole numbers."""
    ran.append((a, b))
    return a + b
'''


def test_run_and_skip_buttons_decide_each_call(server: LabServer, lab: Lab) -> None:
    name = notebook(server, "tools.ipynb", [
        "%load_ext chatmagic", TOOLS,
        "%%chat -m tools-parallel --tools add\nTwo sums, please.",
        "print(ran)",
        "%chat_history show",
    ])
    lab.open(name)
    lab.run(0)
    lab.run(1)
    key = lab.run_cell(2)
    out = lab.output(2)
    run = out.locator("button.jupyter-button", has_text="Run")
    skip = out.locator("button.jupyter-button", has_text="Skip")
    run.nth(1).wait_for(timeout=30_000)  # two calls, a pair of buttons each
    assert run.count() == 2 and skip.count() == 2
    text = lab.out_text(2)
    assert "waiting: Run or Skip" in text and '"a": 2' in text and '"a": 3' in text, text
    lab.screenshot("tools-waiting")
    run.first.click()  # the first call: Run
    skip.last.click()  # the second: Skip
    lab.wait_done(key, timeout=30)
    lab.screenshot("tools-decided")
    text = lab.out_text(2)
    assert "The tools said: 5; Not run: the user did not allow this call" in text, text
    assert "ran" in text and "skipped" in text, text
    assert out.locator("button.jupyter-button").count() == 0  # no widget left behind
    assert "[(2, 3)]" in lab.run(3)  # the allowed call ran once, the skipped one never
    history = lab.run(4)
    assert history.count("add") >= 2 and "→ result" in history, history
    assert WIDGET_ERROR not in lab.panel().inner_text()
    assert not lab.errors, lab.errors


BIDI_TOOL = '''
from typing import Literal
copied = []
def cp(src: Literal["invoice\\u202efdp.exe", "notes.txt"], dst: str) -> str:
    """Copy a file."""
    copied.append((src, dst))
    return "copied"
'''


def test_the_consent_block_shows_a_bidi_control_as_its_escape(server: LabServer,
                                                              lab: Lab) -> None:
    """A right-to-left override in a call's arguments would show ``invoice.pdf``-like text
    while the function gets another name: above the buttons it is ``\\u202e``, in sight."""
    name = notebook(server, "bidi.ipynb", [
        "%load_ext chatmagic", BIDI_TOOL,
        "%%chat -m tools --tools cp\nCopy the invoice.",
        "print(copied)",
    ])
    lab.open(name)
    lab.run(0)
    lab.run(1)
    key = lab.run_cell(2)
    out = lab.output(2)
    skip = out.locator("button.jupyter-button", has_text="Skip")
    skip.wait_for(timeout=30_000)
    text = lab.out_text(2)
    lab.screenshot("tools-bidi-consent")
    assert '"src": "invoice\\u202efdp.exe"' in text, text
    assert "\u202e" not in text and "waiting: Run or Skip" in text, text
    skip.click()
    lab.wait_done(key, timeout=30)
    assert "\u202e" not in lab.out_text(2)
    assert "[]" in lab.run(3)  # skipped: it never ran
    assert not lab.errors, lab.errors
