"""chatmagic in a real JupyterLab 4 / Notebook 7, driven through Debian's chromium.

A module-scoped fixture starts a FakeEndpoint in this process and ``jupyter lab``
in a subprocess whose environment (inherited by its kernels) points chatmagic at
it. Each test writes its own notebook into the server's temporary root, so each
gets its own kernel and its own per-notebook history.

Run: ``pytest tests/browser/test_browser.py -x -v`` (screenshots in artifacts/screenshots/).
"""

from __future__ import annotations

import importlib.util
import json
import os
import time
import warnings
from pathlib import Path
from typing import Any, Iterator

import pytest

pytestmark = pytest.mark.browser

from browser import CHROMIUM, LAUNCH_ARGS, WIDGET_ERROR, Lab, LabServer, write_notebook  # noqa: E402


def _missing() -> str | None:
    if not os.path.exists(CHROMIUM):
        return f"{CHROMIUM} is not installed"
    for module in ("playwright", "jupyterlab", "notebook", "ipywidgets"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed"
    return None


if _missing():
    pytest.skip(_missing(), allow_module_level=True)

from playwright.sync_api import sync_playwright  # noqa: E402

from chatmagic.testing import FakeEndpoint  # noqa: E402


# -- fixtures ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    work = tmp_path_factory.mktemp("lab")
    root = work / "root"
    history = work / "history"
    root.mkdir()
    history.mkdir()
    endpoint = FakeEndpoint().start()
    lab = LabServer(root, work, {"OPENAI_BASE_URL": endpoint.base_url,
                                 "CHATMAGIC_HISTORY_DIR": str(history)})
    try:
        lab.start()
        yield lab
    finally:
        lab.stop()
        endpoint.stop()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def lab(server: LabServer, chromium: Any, request: pytest.FixtureRequest) -> Iterator[Lab]:
    context = chromium.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(30_000)
    page = context.new_page()
    driver = Lab(page, server)
    try:
        yield driver
    finally:
        driver.screenshot(f"{request.node.name}-end")
        context.close()
        server.shutdown_kernels()


def notebook(server: LabServer, name: str, cells: list[str]) -> str:
    write_notebook(server.root / name, cells)
    return name


# -- 1. streaming and rendering ----------------------------------------------------------
def test_streaming_renders_markdown_header_and_footer(server: LabServer, lab: Lab) -> None:
    name = notebook(server, "render.ipynb", [
        "%load_ext chatmagic",
        "%%chat -m markdown\nShow me a small table.",
        "%%chat -m echo\nhello from the echo model",
    ])
    lab.open(name)
    lab.run_all_and_wait(timeout=90)
    lab.screenshot("render")

    md = lab.output(1)
    assert md.locator(".jp-RenderedHTMLCommon table").count() >= 1, lab.out_text(1)
    assert md.locator(".jp-RenderedHTMLCommon table").first.is_visible()
    assert "greet" in md.locator(".jp-RenderedHTMLCommon pre code").first.inner_text()
    assert md.locator(".jp-RenderedHTMLCommon h2", has_text="A small table").count() == 1
    text = lab.out_text(1)
    assert "markdown ·" in text, text  # the header: model · profile (endpoint)
    assert "127.0.0.1" in text, text
    assert "tokens" in text and ("tok/s" in text or "first token" in text), text
    assert "finished" in text, text
    # the toolbar widget became a Markdown header: no Stop button is left
    assert md.locator("button.jupyter-button").count() == 0

    echo = lab.out_text(2)
    assert "hello from the echo model" in echo, echo
    assert "echo ·" in echo and "tokens" in echo, echo
    assert WIDGET_ERROR not in lab.panel().inner_text()
    assert not [e for e in lab.errors if "dialog" in e], lab.errors


# -- 2. the Stop button ------------------------------------------------------------------
def test_stop_button_keeps_partial_reply(server: LabServer, lab: Lab) -> None:
    name = notebook(server, "stop.ipynb", [
        "%load_ext chatmagic",
        "%%chat -m long/tokens=3000,delay=0.01\nWrite a very long text.",
        "%chat_history show",
    ])
    lab.open(name)
    lab.run(0)
    key = lab.run_cell(1)
    out = lab.output(1)
    out.locator(".jp-RenderedHTMLCommon", has_text="w1").first.wait_for(timeout=20_000)
    stop = out.locator("button.jupyter-button", has_text="Stop")
    stop.wait_for(timeout=10_000)
    lab.screenshot("stop-streaming")
    clicked = time.monotonic()
    stop.click()
    lab.wait_done(key, timeout=30)
    done = time.monotonic()
    print(f"stop: the cell ended {done - clicked:.2f}s after the click")
    lab.screenshot("stop-stopped")
    # 3000 tokens at 10 ms each would take 30 s: the Stop button cut it short (the last
    # token never shows, below; the times above are printed, not judged).
    text = lab.out_text(1)
    assert "stopped" in text, text
    assert "w1" in text
    assert "w2999" not in text, "the whole reply arrived: Stop did nothing"
    assert out.locator("button.jupyter-button").count() == 0
    # Stop is the user's choice, not a failure: no error output, no traceback
    assert "Traceback" not in text and "KeyboardInterrupt" not in text, text
    assert out.locator('[data-mime-type="application/vnd.jupyter.stderr"]').count() == 0

    history = lab.run(2)
    assert "incomplete" in history, history
    assert "w1" in history, history
    assert "Write a very long text." in history, history


# -- 3. model output never runs as script ------------------------------------------------------
XSS_CELLS = [
    "%load_ext chatmagic",
    "%%chat -m xss\nprobe the renderer",
    "%%chat --compare xss,xss\nprobe the grid",
    "%%chat -m xss/delay=0.05\nprobe while streaming",
    "%%chat --compare xss/delay=0.05,xss/delay=0.04\nprobe the live grid",
    # Controls, run last: raw HTML shown by other means does run, so the probes can see it.
    "from IPython.display import Markdown\n"
    "Markdown('<img src=x onerror=\"window.__xss_control = 1\">'"
    " '<a href=\"#\" onmouseover=\"window.__xss_hover_control = 1\">hover</a>'"
    " '[control](javascript:window.__xss_link_control=1)')",
]


def _assert_harmless(lab: Lab, i: int, where: str) -> None:
    out = lab.output(i)
    lab.poke_links(out)
    bad = lab.dangerous_nodes(out)
    assert not bad, f"{where}: cell {i} holds active HTML: {bad}"
    assert lab.xss_values() == [], f"{where}: cell {i} ran script: {lab.xss_values()}"


def test_xss_probes_never_run(server: LabServer, lab: Lab) -> None:
    name = notebook(server, "xss.ipynb", XSS_CELLS)
    lab.open(name)
    lab.run(0)
    for i in (1, 2):
        lab.run(i)
        text = lab.out_text(i)
        assert "Probes follow." in text, text
        assert "<b>not bold</b>" in text, text  # code stays literal, shown as written
        _assert_harmless(lab, i, "finished")
    lab.screenshot("xss-finished")

    # while streaming: the live Markdown tail, and the live widget columns
    for i in (3, 4):
        key = lab.run_cell(i)
        lab.output(i).get_by_text("Probes follow.").first.wait_for(timeout=20_000)
        pokes = 0
        while lab.page.evaluate("(k) => window.__runs[k]", key) == "running":
            _assert_harmless(lab, i, "streaming")
            pokes += 1
        assert pokes >= 1
        lab.wait_done(key)
        _assert_harmless(lab, i, "streamed")
        assert "finished" in lab.out_text(i)
    lab.screenshot("xss-streamed")

    # the static copies, after save and reopen (a saved notebook is trusted again)
    lab.save()
    lab.shutdown_kernel()
    lab.close_all()
    lab.open(name, wait_kernel=False)
    for i in (1, 2, 3, 4):
        lab.output(i).get_by_text("Probes follow.").first.wait_for(timeout=20_000)
        _assert_harmless(lab, i, "reopened")
    lab.screenshot("xss-reopened")
    assert lab.xss_values() == []

    # The probes are not blind: an unescaped <img onerror> in a trusted output runs.
    lab.wait_idle()
    lab.run(5)
    lab.page.wait_for_function("() => window.__xss_control === 1", timeout=10_000)
    assert lab.dangerous_nodes(lab.output(5)), "the control's onerror went unnoticed"
    lab.poke_links(lab.output(5))
    assert lab.page.evaluate("() => window.__xss_hover_control") == 1, "hovering is blind"
    print("javascript: link control ran:", lab.page.evaluate("() => window.__xss_link_control"))


# -- 4. compare ------------------------------------------------------------------------------
def test_compare_side_by_side_and_keep(server: LabServer, lab: Lab) -> None:
    name = notebook(server, "compare.ipynb", [
        "%load_ext chatmagic",
        "%%chat --compare echo,markdown\nhello compare",
        "%chat_history keep 2\n%chat_history show",
    ])
    lab.open(name)
    lab.run(0)
    lab.run(1)
    out = lab.output(1)
    grid = out.locator('div[style*="display:grid"]').first
    grid.wait_for(timeout=10_000)
    columns = grid.locator(":scope > div")
    assert columns.count() == 2
    left, right = columns.nth(0).bounding_box(), columns.nth(1).bounding_box()
    assert left and right
    assert right["x"] >= left["x"] + left["width"] - 1, (left, right)  # side by side
    assert abs(right["y"] - left["y"]) < 5, (left, right)
    assert "hello compare" in columns.nth(0).inner_text()
    assert columns.nth(1).locator("table").count() == 1
    assert "greet" in columns.nth(1).locator("pre code").inner_text()
    assert "echo ·" in columns.nth(0).inner_text() and "markdown ·" in columns.nth(1).inner_text()
    assert "tokens" in columns.nth(1).inner_text()

    # No Keep button (a widget a saved notebook could not show): a line says how to keep one
    assert "%chat_history keep N" in lab.out_text(1)
    assert out.locator("button.jupyter-button").count() == 0
    assert WIDGET_ERROR not in lab.out_text(1)
    lab.screenshot("compare")

    history = lab.run(2)
    assert "hello compare" in history, history
    assert "A small table" in history or "greet" in history, history
    assert "assistant [1]" in history, history
    lab.screenshot("compare-kept")


# -- 5. %models -------------------------------------------------------------------------------
def test_models_table(server: LabServer, lab: Lab) -> None:
    name = notebook(server, "models.ipynb", ["%load_ext chatmagic", "%models"])
    lab.open(name)
    lab.run(0)
    lab.run(1)
    table = lab.output(1).locator("table").first
    table.wait_for(timeout=10_000)
    assert table.is_visible()
    cells = [t.strip() for t in table.locator("td").all_inner_texts()]
    assert "echo" in cells, cells
    assert "markdown" in cells, cells
    lab.screenshot("models")


# -- 6. save, shut down, reopen -------------------------------------------------------------
def test_saved_notebook_reopens_with_replies(server: LabServer, lab: Lab) -> None:
    name = notebook(server, "reopen.ipynb", [
        "%load_ext chatmagic",
        "%%chat -m markdown\nA table, please.",
        "%%chat --compare echo,markdown\nside by side",
    ])
    lab.open(name)
    lab.run_all_and_wait()
    lab.output(2).get_by_text("%chat_history keep N").wait_for()
    lab.save()
    lab.shutdown_kernel()
    lab.close_all()

    saved = json.loads((server.root / name).read_text())
    widget_mime = "application/vnd.jupyter.widget-view+json"
    chat_outputs = saved["cells"][1]["outputs"]
    assert chat_outputs and not any(widget_mime in o.get("data", {}) for o in chat_outputs), \
        "the %%chat cell saved a widget output"
    assert all("text/html" in o.get("data", {}) for o in chat_outputs)

    lab.open(name, wait_kernel=False)
    md = lab.output(1)
    md.locator(".jp-RenderedHTMLCommon table").first.wait_for(timeout=20_000)
    assert md.locator(".jp-RenderedHTMLCommon pre code").count() >= 1
    text = lab.out_text(1)
    assert "markdown ·" in text and "tokens" in text, text
    assert WIDGET_ERROR not in text, text

    out = lab.output(2)
    grid = out.locator('div[style*="display:grid"]').first
    grid.wait_for(timeout=20_000)
    assert grid.locator(":scope > div").count() == 2
    assert grid.locator("table").count() == 1
    assert "side by side" in grid.inner_text()
    lab.screenshot("reopened")
    # With a new kernel connected too, nothing shows a widget error: none was left behind.
    lab.wait_idle()
    assert WIDGET_ERROR not in lab.panel().inner_text()


# -- 7. interrupt ------------------------------------------------------------------------------
def test_interrupt_ends_cell_and_keeps_text(server: LabServer, lab: Lab) -> None:
    name = notebook(server, "interrupt.ipynb", [
        "%load_ext chatmagic",
        "%%chat -m long/tokens=5000,delay=0.01\nWrite forever.",
        "print('after', 6 * 7)",
    ])
    lab.open(name)
    lab.run(0)
    key = lab.run_cell(1)
    out = lab.output(1)
    out.locator(".jp-RenderedHTMLCommon", has_text="w1").first.wait_for(timeout=20_000)
    sent = time.monotonic()
    lab.panel().locator('jp-button[data-command="notebook:interrupt-kernel"]').click()
    lab.wait_done(key, timeout=30)
    took = time.monotonic() - sent
    print(f"interrupt: the cell ended {took:.2f}s after the click")
    lab.screenshot("interrupted")
    text = lab.out_text(1)
    assert "ReplyInterrupted" in text and "Traceback" not in text, text
    assert "w1" in text, text
    assert "w4999" not in text
    lab.wait_idle(30)
    assert "after 42" in lab.run(2)


# -- 8. Notebook 7 ------------------------------------------------------------------------------
def test_notebook7_renders_reply(server: LabServer, lab: Lab) -> None:
    name = notebook(server, "nb7.ipynb", [
        "%load_ext chatmagic",
        "%%chat -m markdown\nA table from Notebook 7.",
    ])
    lab.open(name, app="notebooks")
    page = lab.page
    lab.cell(0).locator(".jp-InputArea-prompt").click()
    page.keyboard.press("Escape")
    page.keyboard.press("Shift+Enter")
    lab.cell(0).locator(".jp-InputPrompt", has_text="[1]").wait_for(timeout=30_000)
    page.keyboard.press("Escape")
    page.keyboard.press("Shift+Enter")
    md = lab.output(1)
    md.locator(".jp-RenderedHTMLCommon table").first.wait_for(timeout=30_000)
    lab.cell(1).locator(".jp-InputPrompt", has_text="[2]").wait_for(timeout=30_000)
    text = lab.out_text(1)
    assert "markdown ·" in text and "tokens" in text, text
    assert "greet" in md.locator(".jp-RenderedHTMLCommon pre code").first.inner_text()
    assert WIDGET_ERROR not in text
    lab.screenshot("notebook7")
