"""What a reader sees of a reply in JupyterLab (Debian's chromium), live and after reopening.

One reply holds every shape the renderer must get right (highlighted code with
``<`` in it, money, math, a titled link, a table, a remote image) and every
probe known to have run or fetched in JupyterLab (HTML, ``javascript:`` links,
MathJax macros, mermaid directives). A local server counts every request the
page makes to it: a reply must make none.
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator

import pytest

pytestmark = pytest.mark.browser

from browser import WIDGET_ERROR, Lab, LabServer  # noqa: E402
from test_browser import _missing, notebook  # noqa: E402

if _missing():
    pytest.skip(_missing(), allow_module_level=True)

from test_browser import chromium, lab, server  # noqa: E402,F401 - the shared fixtures


class _Counter(ThreadingHTTPServer):
    hits: list[str]


@pytest.fixture(scope="module")
def tracker() -> Iterator[_Counter]:
    """A loopback server that counts what the page fetches from it."""
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.server.hits.append(self.path)  # type: ignore[attr-defined]
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    counter = _Counter(("127.0.0.1", 0), Handler)
    counter.hits = []
    threading.Thread(target=counter.serve_forever, daemon=True).start()
    yield counter
    counter.shutdown()


def _reply(base: str) -> str:
    return "\n".join([
        "## Shapes", "",
        "```python", "def smaller(a, b):", "    if a < b:", "        return a  # the smaller",
        "    return b", "```", "",
        "It costs $5 and $6 today.", "",
        r"Euler: \(e^{i\pi}+1=0\) and a block:", "", r"\[\int_0^1 x\,dx = \frac{1}{2}\]", "",
        '[docs](https://example.org/docs "Docs title")', "",
        "| model | score |", "|-------|------:|", "| a     | 1     |", "| b     | 2     |", "",
        f"![chart]({base}/chart.png?d=secret)", "",
        "<img src=x onerror=\"window.__xss='img'\"> <script>window.__xss='script'</script>", "",
        "[click](javascript:window.__xss='link')", "",
        rf"\(\href{{javascript:window.__xss='href'}}{{x}}\) "
        rf"\(\style{{cursor:url({base}/cursor)}}{{y}}\) \(\unicode{{x41}}\)", "",
        rf"$$\bbox[background-image:url({base}/bbox)]{{z}}$$", "",
        r"$$\rule{200em}{200em}$$", "",
        "```mermaid", f"%%{{init: {{'themeCSS': 'body {{ background: url({base}/mermaid) }}'}}}}%%",
        "graph TD; A-->B", "```", "",
        "中文 and emoji 😀.",
    ])


def _check(lab: Lab, i: int, where: str, tracker: _Counter, copies: int = 1) -> None:
    out = lab.output(i)
    out.locator("pre").first.wait_for(timeout=20_000)
    text = lab.out_text(i)
    # code: highlighted, with its "<" shown as written
    code = out.locator("pre").filter(has_text="def smaller").first
    assert "if a < b:" in code.inner_text(), (where, code.inner_text())
    assert code.locator("k", has_text="if").count() >= 1, where  # a keyword element
    colour = code.locator("k").first.evaluate("e => getComputedStyle(e).color")
    plain = code.evaluate("e => getComputedStyle(e).color")
    assert colour != plain, (where, colour, plain)  # coloured, not plain text
    # money stays text; math is typeset as MathML; no MathJax anywhere in the reply
    assert "It costs $5 and $6 today." in text, (where, text)
    assert out.locator("mjx-container, .MathJax").count() == 0, where
    assert out.locator("math").count() >= 3 * copies, where
    assert "π" in (out.locator("math").first.text_content() or ""), where
    # a link keeps its title; a table is a table
    assert out.locator('a[title="Docs title"]').count() == copies, where
    assert out.locator("table td").count() >= 4 * copies, where
    # the remote image is a link showing its alt text, never an <img> the browser fetches
    assert out.locator("img").count() == 0, where
    assert out.locator("a", has_text="chart").count() == copies, where
    # mermaid is code; \rule draws no giant box
    assert "graph TD; A-->B" in text, where
    assert out.locator(".chatmagic svg").count() == 0, (where, out.locator("svg").first.evaluate("e => e.outerHTML.slice(0, 300)"))
    box = out.bounding_box()
    assert box is not None and box["height"] < 3000, (where, box)
    assert "中文" in text and "😀" in text, where
    assert WIDGET_ERROR not in text, where
    # nothing is fetched by showing the reply; nothing runs, even after hovering and
    # clicking every link (a click on the image's link opens it: that one is the reader's)
    # (a tab opened by an earlier click may ask for its favicon late)
    assert [h for h in tracker.hits if h != "/favicon.ico"] == [], (where, tracker.hits)
    lab.poke_links(out)
    assert lab.dangerous_nodes(out) == [], where
    assert lab.xss_values() == [], (where, lab.xss_values())
    clicked = {"/chart.png?d=secret", "/favicon.ico"}
    _settle(tracker)  # the tabs those clicks opened may fetch late: not the next check's hits
    assert set(tracker.hits) <= clicked, (where, tracker.hits)
    tracker.hits.clear()


def _settle(tracker: _Counter, quiet: float = 0.5, most: float = 5.0) -> None:
    """Wait until the tracker has seen no new request for ``quiet`` seconds."""
    end, seen, still = time.monotonic() + most, -1, time.monotonic()
    while time.monotonic() < end:
        if len(tracker.hits) != seen:
            seen, still = len(tracker.hits), time.monotonic()
        elif time.monotonic() - still >= quiet:
            return
        time.sleep(0.05)


def test_every_shape_shown_right_and_nothing_runs_or_fetches(
        server: LabServer, lab: Lab, tracker: _Counter) -> None:  # noqa: F811
    base = f"http://127.0.0.1:{tracker.server_address[1]}"
    name = notebook(server, "shapes.ipynb", [
        "%load_ext chatmagic",
        f"reply = {_reply(base)!r}",
        "%%chat -m echo --no-history\n{reply}",
        "%%chat --compare echo,echo/delay=0.001 --no-history\n{reply}",
    ])
    lab.open(name)
    lab.run_all_and_wait(timeout=120)
    lab.screenshot("shapes-live")
    _check(lab, 2, "single, live", tracker)
    columns = lab.output(3).locator('div[style*="display:grid"] > div')
    assert columns.count() == 2
    for k in range(2):  # each column scrolls on its own, with a bounded height
        height = columns.nth(k).evaluate("e => e.clientHeight")
        assert 0 < height <= 32 * 20, height
    _check(lab, 3, "compare, live", tracker, copies=2)
    lab.output(3).scroll_into_view_if_needed()
    lab.screenshot("shapes-compare")
    lab.save()
    lab.shutdown_kernel()
    lab.close_all()
    lab.open(name, wait_kernel=False)  # a reader without the kernel
    lab.screenshot("shapes-reopened")
    _check(lab, 2, "single, reopened", tracker)
    _check(lab, 3, "compare, reopened", tracker, copies=2)
    assert WIDGET_ERROR not in lab.panel().inner_text()


def test_a_code_block_stands_on_its_own_background_and_its_pieces_meet(
        server: LabServer, lab: Lab) -> None:  # noqa: F811
    """A long code block arrives as several outputs (pieces drawn once each): each piece
    has the code cell's background, and they touch, so the reader sees one block."""
    code = "\n".join(f"value_{i} = {i} * 2  # line {i} of a long block" for i in range(300))
    name = notebook(server, "code-background.ipynb", [
        "%load_ext chatmagic\n%chat_config set max_field_chars=0",
        f"reply = {('```python' + chr(10) + code + chr(10) + '```' + chr(10) * 2 + 'after')!r}",
        "%%chat -m echo/delay=0.002 --no-history\n{reply}",  # streamed: drawn in pieces
    ])
    lab.open(name)
    lab.run_all_and_wait(timeout=120)
    blocks = lab.output(2).locator(".chatmagic pre")
    count = blocks.count()
    assert count >= 2, count  # cut into pieces
    colours = {blocks.nth(k).evaluate("e => getComputedStyle(e).backgroundColor")
               for k in range(count)}
    page = lab.output(2).evaluate("e => getComputedStyle(e.closest('.jp-Notebook')"
                                  " || document.body).backgroundColor")
    assert len(colours) == 1 and not colours & {page, "rgba(0, 0, 0, 0)"}, (colours, page)
    boxes = [blocks.nth(k).bounding_box() for k in range(count)]
    gaps = [after["y"] - (before["y"] + before["height"]) for before, after in zip(boxes, boxes[1:])]
    assert all(abs(gap) <= 1 for gap in gaps), gaps
    lab.screenshot("code-background")


def test_markup_in_math_is_shown_and_hides_nothing_after_it(
        server: LabServer, lab: Lab) -> None:  # noqa: F811
    """``\\text{<style>…}`` in math: latex2mathml copied it into the MathML as markup, and
    the ``<style>`` swallowed the rest of the reply. Here it is text, and the rest shows."""
    name = notebook(server, "math-style.ipynb", [
        "%load_ext chatmagic",
        "reply = r'Before $\\text{<style>.jp-OutputArea-output</style>}$ and the words after it.'",
        "%%chat -m echo --no-history\n{reply}\n\nA second paragraph.",
    ])
    lab.open(name)
    lab.run_all_and_wait(timeout=120)
    out = lab.output(2)
    out.locator(".cm-note").last.wait_for(timeout=20_000)  # the footer: the reply is over
    text = lab.out_text(2)
    lab.screenshot("math-style")
    assert "and the words after it." in text and "A second paragraph." in text, text
    assert "<style>.jp-OutputArea-output" in text, text  # shown as the model wrote it
    assert out.locator(".chatmagic style").count() == 0
    assert not lab.errors, lab.errors
