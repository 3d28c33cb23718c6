"""The renderer in-process: safe by construction, every shape right, pieces that lose nothing.

The browser tests (test_browser_render.py) show the same in JupyterLab; these run in
milliseconds and try far more inputs.
"""

from __future__ import annotations

import random
import re
from html.parser import HTMLParser

import pytest

from chatmagic.render.html import document, markdown_html, text_html
from chatmagic.render.pieces import LiveText, first_code_block
from chatmagic.testing import XSS_REFUSAL, XSS_REPLY, XSS_THOUGHTS

ACTIVE_TAGS = {"script", "iframe", "object", "embed", "svg", "style", "link", "meta", "base",
               "form", "input", "frame", "frameset", "audio", "video", "source", "track"}
TEXT_SKIPPED_BY_MATHJAX = {"code", "pre", "math"}


class Audit(HTMLParser):
    """What in some HTML could run, fetch or reach MathJax, as a browser's parser reads it."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.active: list[str] = []
        self.math_text: list[str] = []  # text nodes holding "$" or "\" with other text
        self.open: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ACTIVE_TAGS:
            self.active.append(tag)
        for name, value in attrs:
            url = re.sub(r"[\x00-\x20]", "", value or "").lower()
            if name.startswith("on") or name in ("style", "srcset", "background", "formaction"):
                self.active.append(f"{tag} {name}")
            if name == "href" and not url.startswith(("http:", "https:", "mailto:", "#")):
                self.active.append(f"{tag} href={value}")
            if name == "src" and not re.match(r"data:image/(png|jpeg|gif|webp);", url):
                self.active.append(f"{tag} src={value}")  # the browser would fetch it
        if tag not in ("br", "hr", "img", "mspace"):
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in self.open:
            while self.open and self.open.pop() != tag:
                pass

    def handle_data(self, data: str) -> None:
        if set(self.open) & TEXT_SKIPPED_BY_MATHJAX:
            return
        if re.search(r"[$\\]", data) and data not in ("$", "\\"):
            self.math_text.append(data)


def audit(html: str) -> Audit:
    found = Audit()
    found.feed(html)
    return found


PROBES = [
    XSS_REPLY, XSS_THOUGHTS, XSS_REFUSAL,
    "<img src=x onerror=alert(1)>", "<svg onload=alert(1)>", "<iframe src=javascript:alert(1)>",
    "[x](javascript:alert(1)) [y](JaVa&#115;cript:x) [z](java\tscript:x) [w](vbscript:x)",
    "[d](data:text/html,<script>alert(1)</script>) ![i](data:image/svg+xml,<svg onload=x>)",
    "<a href=# onmouseover=alert(1)>hover</a>", "[a]: javascript:alert(1)\n\n[a]",
    '![$x" onerror="alert(1)//$](y)', '[a]($x" onmouseover="alert(1)//$)',
    '```python" onmouseover="alert(1)" x="\nprint(1)\n```\n',
    r"\(\href{javascript:alert(1)}{x}\) \(\style{cursor:url(http://e/x)}{y}\)",
    r"$$\bbox[background-image:url(http://e/x)]{z}$$ $$\rule{200em}{200em}$$ \(\unicode{x41}\)",
    r"\(\mathbackground{red}{x}\) \(\color{red}{x}\) $$\href{http://e}{\text{<b>x</b>}}$$",
    "```mermaid\n%%{init: {'themeCSS': 'body{background:url(http://e/x)}'}}%%\ngraph TD; A-->B\n```",
    "![chart](http://e/c.png?d=secret) ![r][ref] ![p](//e/p.png)\n\n[ref]: https://e/r.png",
    "<style>body{background:url(http://e/x)}</style> <link rel=stylesheet href=http://e/x>",
    "It costs $5 and $6. \\$7 \\\\(x\\\\) $$ $ \\begin{align}x\\end{align} \\[ y",
]


@pytest.mark.parametrize("probe", PROBES)
def test_no_probe_can_run_fetch_or_reach_mathjax(probe: str) -> None:
    found = audit(markdown_html(probe))
    assert found.active == [] and found.math_text == [], (found.active, found.math_text)


def test_random_mixes_of_syntax_stay_inert() -> None:
    pieces = ["`", "```", "~~~", "\\", "$", "$$", "\\(", "\\)", "\\[", "\\]", "\n", "\r", "\t",
              " ", "> ", "- ", "1. ", "| a |", "|--|", "[a]", "](", "]:", "javascript:x",
              "&#106;", "<img src=x onerror=alert(1)>", "<b>", "http://a.b/", '"', "py",
              "![", "\\begin{x}", "\ufeff", "\x00", "\ud800", "```mermaid", "{", "}", "*", "_"]
    rng = random.Random(13)
    for _ in range(1500):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 40)))
        found = audit(markdown_html(text))
        assert found.active == [] and found.math_text == [], (text, found.active)


def test_what_the_reader_sees() -> None:
    html = markdown_html(
        "```python\nif a < b:\n    return a  # small\n```\n\nIt costs $5 and $6.\n\n"
        "Euler \\(e^{i\\pi}+1=0\\), $$x^2$$ and\n\n\\[\\frac{1}{2}\\]\n\n"
        '[docs](https://e.org "Docs title")\n\n| a | b |\n|--:|---|\n| 1 | 2 |\n\n中文 😀\n')
    assert "<k>if</k> a &lt; b:" in html and "<c># small</c>" in html  # highlighted, "<" kept
    assert "It costs <span>$</span>5 and <span>$</span>6." in html  # money, inert
    assert html.count("<math") == 3 and "π" in html  # \( \), $$ $$ and \[ \] typeset
    assert 'title="Docs title"' in html and '<td align="right">1' in html
    assert "中文 😀" in html


def test_images_are_links_unless_allowed() -> None:
    remote = "![chart](https://e/c.png?d=1 \"Chart\")"
    shown = markdown_html(remote)
    assert "<img" not in shown and '<a href="https://e/c.png?d=1"' in shown and "chart" in shown
    assert '<img src="https://e/c.png?d=1"' in markdown_html(remote, remote_images=True)
    png = "![dot](data:image/png;base64,iVBORw0KGgo=)"
    assert '<img src="data:image/png;base64,iVBORw0KGgo="' in markdown_html(png)
    assert "<img" not in markdown_html("![s](data:image/svg+xml;base64,PHN2Zz4=)")
    assert "<img" not in markdown_html("![f](file:///etc/passwd)", remote_images=True)


def test_math_macros_that_could_act_are_gone() -> None:
    html = markdown_html(r"\(\href{javascript:alert(1)}{x}\) $$\rule{200em}{200em}$$"
                         r" \(\quad\qquad\)")
    assert "href" not in html and "javascript" not in html and "200em" not in html
    assert 'width="1em"' in html or "mspace" in html  # small spaces stay


def test_mermaid_and_unknown_languages_are_only_code() -> None:
    html = markdown_html("```mermaid\ngraph TD; A-->B\n```\n```nosuchlang\nx\n```")
    assert html.count("<pre><code>") == 2 and "graph TD; A--&gt;B" in html


def test_text_html_is_inert_and_document_ignores_mathjax() -> None:
    assert text_html("a $5 \\( <b> \x00") == \
        "a <span>$</span>5 <span>\\</span>( &lt;b&gt; <span>\\</span>x00"
    assert 'class="chatmagic tex2jax_ignore mathjax_ignore"' in document("x")


SHAPES = {
    "code": "Intro:\n\n```python\n" + "".join(f"x{i} = f({i})  # c\n" for i in range(300))
            + "```\n\nDone.\n",
    "list": "".join(f"{i}. item {i} with a few words\n" for i in range(1, 300)),
    "table": "| n | sq |\n|--:|---|\n" + "".join(f"| {i} | {i * i} |\n" for i in range(300)),
    "paragraph": "A sentence that goes on. " * 800,
    "mixed": "".join(f"Para {i}.\n\n```js\nlet x{i} = {i};\n```\n\n- a {i}\n- b\n\n"
                     for i in range(60)),
    "quote": "".join(f"> line {i}\n" for i in range(300)),
    "crlf": "".join(f"line {i}\r\n" for i in range(300)),
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_pieces_lose_nothing_and_stay_small(shape: str) -> None:
    text = SHAPES[shape]
    rng = random.Random(shape)
    live = LiveText(freeze_at=512)
    pieces = []
    pos = 0
    while pos < len(text):
        step = rng.randint(1, 40)
        live.add(text[pos:pos + step])
        pos += step
        piece = live.freeze()
        if piece is not None:
            pieces.append(piece)
        assert live.size < 4 * 512, (shape, live.size)  # the live piece stays small
    pieces.append(live.live())
    assert "".join(p.text for p in pieces) == text
    assert len(pieces) > 3, shape  # a long block is cut, not one growing tail
    for before, after in zip(pieces, pieces[1:]):
        assert before.joins_next == after.joins_prev
    if shape in ("code", "mixed"):
        for piece in pieces[1:-1]:
            if piece.carries == "code":
                assert piece.html().startswith("<pre><code>"), piece.html()[:80]
    if shape == "table":
        rows = sum(p.html().count("<tr>") for p in pieces)
        assert rows == 301  # the header once, every row once
        assert all("<thead>" not in p.html() for p in pieces[1:])
    if shape == "list":
        assert '<ol start="' in pieces[1].html()  # the numbering goes on


def _hostile(n: float) -> dict[str, str]:
    """The shapes bench/hostile_render.py times, at n of their size there."""
    return {"code lines": "```python\n" + "value = compute(value) + 1  # again\n" * int(10_000 * n),
            "line ends": "a\n" * int(64_000 * n), "fences": "```\n" * int(50_000 * n),
            "no break": "x" * int(1_000_000 * n), "quotes": "> " * int(2000 * n) + "x",
            "lists": "- " * int(2000 * n) + "y", "brackets": "[" * int(20_000 * n),
            "emphasis": "*a " * int(30_000 * n), "backticks": "`" * int(50_000 * n)}


def _streamed(text: str) -> tuple[str, int]:
    """The text the pieces hold and the bytes of their HTML, streamed 2,000 characters at a
    time with every frozen piece drawn, as a cell does."""
    live, pieces = LiveText(), []
    for i in range(0, len(text), 2000):
        live.add(text[i:i + 2000])
        while (piece := live.freeze()) is not None:
            pieces.append(piece)
    pieces.append(live.live())
    return "".join(p.text for p in pieces), sum(len(p.html()) for p in pieces)


def test_rendering_is_linear_on_hostile_shapes() -> None:
    # Bytes, not seconds: twice the input draws at most about twice the HTML, and loses
    # nothing. (The time of the same shapes, and its growth, is bench/hostile_render.py's.)
    halves, wholes = _hostile(1 / 8), _hostile(1 / 4)
    for name, whole in wholes.items():
        kept_half, half = _streamed(halves[name])
        kept, drawn = _streamed(whole)
        assert (kept_half, kept) == (halves[name], whole), name
        assert drawn <= 2.2 * half + 2000, (name, half, drawn)
        assert drawn <= 8 * len(whole) + 2000, (name, len(whole), drawn)
    assert first_code_block("```\n" * 100_000) is not None


def test_an_unclosed_fence_is_code_to_the_end_and_nothing_after_it_is_lost() -> None:
    html = markdown_html("Look:\n\n```python\nif a < b:\n    print('<b>')")
    assert "<p>Look:</p>" in html and "<k>if</k> a &lt; b:" in html and "&lt;b&gt;" in html


def test_first_code_block() -> None:
    assert first_code_block("see:\n\n```py\nx = 1\n```\n\n```\ny\n```") == "x = 1\n"
    assert first_code_block("no code") is None and first_code_block("```\nopen\n") is None


def test_a_key_spread_over_deltas_is_masked_where_it_is_shown() -> None:
    from chatmagic.core import scrub

    key = "sk-render-QWERTYUIOPASDFGHJKL0987"
    scrub.register(key)
    live = LiveText()
    for i in range(0, len(key), 3):  # as a model would spell it out, a few letters a delta
        live.add(("Your key is " if i == 0 else "") + key[i:i + 3])
    shown = live.live().html() + text_html(key)
    assert key not in shown and "sk-…987" in shown


def test_call_blocks_drawn_one_after_another_keep_one_calls_arguments_not_several() -> None:
    """The arguments' HTML is cached for the redraws of a call, not for the kernel's life:
    four calls of 1 MB of arguments drawn in turn leave one call's bytes behind, not four."""
    import gc
    import tracemalloc

    from chatmagic.render.html import tool_call_html

    size = 1_000_000
    tool_call_html("warm", '{"a": 1}')  # the lexers' imports are not what is measured
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        drawn = 0
        for i in range(4):
            drawn = len(tool_call_html("put", f'{{"data": "{i}{"x" * size}"}}'))
        gc.collect()
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert drawn > size and kept < 2 * (size + drawn)  # one call's arguments and block
