"""Terminal IPython streams plain text; the public surface is declared."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import chatmagic
from chatmagic.render.markdown import Blocks, close_fence, markdown_html, safe_markdown
from chatmagic.testing import XSS_REPLY, FakeEndpoint


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


def test_public_surface() -> None:
    assert sorted(chatmagic.__all__) == sorted([
        "__version__", "load_ipython_extension", "unload_ipython_extension", "history", "chat",
        "compare"])
    for name in chatmagic.__all__:
        assert hasattr(chatmagic, name)


# The only "<" that safe_markdown may leave raw: its own code markup.
OUR_TAGS = re.compile(r"<pre><code(?: class=language-[\w+#.-]+)?>|</code></pre>|</?code>")
# A code block kept as Markdown: a plain info string, between blank lines (or the ends).
KEPT_FENCE = re.compile(r"(?:^|\n)\n( *)(`{3,}|~{3,})[\w+#.-]*\n.*?(?:\n\1\2\n(?:\n|$)|$)", re.S)


def model_html_left(markdown: str) -> str:
    """What remains of the text that could still be read as HTML: should be nothing.

    That is any "<" but our own markup's; and any '"' outside kept code blocks, which
    JupyterLab's math pass could carry into an attribute (see markdown._escape_prose).
    """
    rest = OUR_TAGS.sub("", markdown)
    prose = KEPT_FENCE.sub("\n", rest)
    return "".join(re.findall(r"<\S{0,20}", rest) + re.findall(r'\S{0,10}"\S{0,10}', prose))


def test_safe_markdown_neutralises_every_probe() -> None:
    safe = safe_markdown(XSS_REPLY)
    assert model_html_left(safe) == ""
    assert re.search(r"\]\(\s*(javascript|data):", safe) is None
    assert "[click me](#javascript:" in safe and "&#60;b&#62;not bold" in safe
    html = markdown_html(XSS_REPLY)
    assert "<script" not in html and "onerror" not in html.replace("onerror=&quot;", "")
    assert 'href="javascript' not in html


TAG = "<img src=x onerror=alert(1)>"
TRICKY = [  # each fooled some reading of where code starts and ends
    f"Note:\u2028```\n{TAG}\n",  # U+2028 is no line end in Markdown
    f"Note:\x85```\n{TAG}\n",
    f"```a`b\n{TAG}\n",  # no fence: a backtick in a backtick fence's info string
    f"a \\`{TAG}` b\n",  # an escaped backtick opens no code span
    f"- item\n\n   ```\n{TAG}\n",  # the list item ends, and its fence with it
    f"[a](`x) {TAG} `y)\n",  # the link takes the first backtick
    "[x]:\n  javascript:alert(1)\n\n[x]\n",  # a definition's URL on the next line
    "> [x]: javascript:alert(1)\n\n[x]\n",  # a definition inside a quote
    "[x](\nJava&#115;cript:alert(1))\n",  # a link's URL on the next line, spelled with an entity
    f"> ```\n{TAG}\n",  # a quoted fence ends with the quote
    # JupyterLab (marked, after its math pass) read these six differently from CommonMark:
    f"```\n```~\n{TAG}\n```\n",  # marked closes a fence with "```~"
    f"```\na\n```\t\n```\n{TAG}\n```\n",  # ... and not with a tab after it
    f"see http://a.b/`{TAG}`\n",  # a GFM autolink takes the backtick
    f"see www.a.b`{TAG}`\n",
    f"$a\n ```\nb$ {TAG}\n ```\n",  # the math pass takes an indented fence's opener
    f"$a\n```\nb$ {TAG}\n",  # ... or an unclosed one's
    f"hmm\n\n```\r{TAG}\n```\n",  # a lone CR ends a line (and a quote made by \\n)
    # JupyterLab pastes math back into the HTML with '"' raw, and a fence's info string
    # into a class attribute as it is:
    '![$x" onerror="alert(1)//$](y)',  # math in an image's alt
    '[a]($x" onmouseover="alert(1)//$)',  # ... in a link's URL
    '![\\begin{x}" onerror="alert(1)//\\end{x}](y)',
    '![$a\n```\n" onerror="alert(1)//\n```\nb$](y)',  # ... over a code block
    '![$a\n```\n<" onerror="alert(1)//\n```\nb$](y)',
    '```python" onmouseover="alert(1)" x="\nprint(1)\n```\n',  # an info string
    '~~~\n~~~`\n```py" onmouseover="alert(1)" x="\nprint(1)\n```\n~~~\n',  # marked closes at ~~~`
    '- a\n  ```\nx\n```py" onmouseover="alert(1)" x="\nprint(1)\n```\n  ```\n',
    "> [click](\n> javascript:alert(1))",  # a URL after a quote's marker
    "> [a]:\n> javascript:alert(1)\n\n[a]",
    "[click](\ufeffjavascript:alert(1))",  # JavaScript's \\s takes U+FEFF
    '- a\n  ```\n![$x" onerror="alert(1)//$](y)\n  ```\n',  # the line ends the list item
    '1. a\n   ```\n ![$x" onerror="alert(1)//$](y)\n   ```\n',
]


def handlers(html: str) -> list[str]:
    """The event-handler attributes of the tags in some HTML, as a browser parses it."""
    from html.parser import HTMLParser

    found: list[str] = []

    class Parser(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            found.extend(name for name, _ in attrs if name.startswith("on"))

    Parser().feed(html)
    return found


@pytest.mark.parametrize("probe", TRICKY)
def test_no_probe_leaves_html_or_a_script_link(probe: str) -> None:
    from markdown_it import MarkdownIt

    safe = safe_markdown(probe)
    assert model_html_left(safe) == "", safe  # whatever a parser makes of it
    renderer = MarkdownIt("commonmark", {"html": True, "linkify": True}).enable("table")
    renderer.validateLink = lambda url: True  # as a renderer that checks no scheme would
    shown = renderer.render(safe)
    assert handlers(shown) == [], shown
    assert 'href="javascript' not in shown.lower(), shown


def test_random_mixes_of_code_markers_leave_no_html() -> None:
    import random

    pieces = ["`", "``", "```", "~~~", "\\", "$", "\n", "\r", "\t", " ", "   ", "> ", "- ", "1. ",
              "[a]", "](", "]:", "javascript:x", "&#106;", TAG, "<b>", "http://a.b/", "www.a.b",
              "x", "\u2028", '"', "py", "![", "\\begin{x}", "\ufeff"]
    rng = random.Random(7)
    for _ in range(3000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 40)))
        safe = safe_markdown(text)
        assert model_html_left(safe) == "", (text, safe)
        for target in re.findall(r"\][(:]\s*(\S*)", safe):
            assert not re.match(r"(?i)\s*(javascript|j&#106;)", target), (text, safe)


def test_code_shows_its_angle_brackets() -> None:
    from markdown_it import MarkdownIt

    text = ("Use `Vec<T>` here.\n\n1. Then:\n\n   ```rust\n   let v: Vec<u8> = a << 2;\n\n"
            "   x\n   ```\n\n```py\nprint(1)\n```\n")
    safe = safe_markdown(text)
    html = MarkdownIt("commonmark", {"html": True}).render(safe)
    assert "<code>Vec&lt;T&gt;</code>" in html
    # The code with "<" is one HTML line, inside its list item.
    assert '<li>\n<p>Then:</p>\n<pre><code class=language-rust>let v: Vec&#60;u8&#62; = ' \
        "a &#60;&#60; 2;&#10;&#10;x</code></pre>\n</li>" in html
    assert "\n\n```py\nprint(1)\n```\n\n" in safe  # code without "<" stays Markdown: highlighted
    # A closing fence every parser reads; the info string's first word, if a plain name.
    assert safe_markdown('```py {x}\na = "b"\n```\t\n') == '\n```py\na = "b"\n```\n\n'


def test_safe_markdown_stays_linear_on_backtick_runs() -> None:
    import time

    def cost(n: int) -> float:
        line = "".join("`" * i + " x " for i in range(1, n))
        start = time.perf_counter()
        safe_markdown(line)
        return time.perf_counter() - start

    cost(40)
    assert cost(160) < 0.25  # 13 kB; a backtracking regex took seconds
    for text in ["\\(" * 10000, "](" * 10000, "](<" * 6666]:  # 20 kB each
        start = time.perf_counter()
        safe_markdown(text)
        assert time.perf_counter() - start < 0.25, text[:6]


def test_links_keep_safe_schemes_and_dollars_stay_money() -> None:
    text = safe_markdown("[ok](https://a.b) [bad](JaVa&#115;cript:x) costs $5 and $6, \\(x^2\\)"
                         " note[1]: python:3")
    assert "(https://a.b)" in text and "(#JaVa&#115;cript:x)" in text
    assert "\\$5 and \\$6" in text and "$x^2$" in text and "[1]: python:3" in text
    code = "```py\nfor k in d[x]:\n    data: list = []\n```\n"
    assert code in safe_markdown(code)  # code holds no links


def test_blocks_freeze_only_outside_code_fences() -> None:
    blocks = Blocks(freeze_at=10)
    blocks.add("```\ncode\n\nstill code\n")
    assert blocks.freeze() is None
    blocks.add("```\n\nafter\n")
    assert blocks.freeze(shown=len(blocks.tail)) is None  # the screen shows past the cut
    assert blocks.freeze(shown=10) == "```\ncode\n\nstill code\n```\n\n"
    assert blocks.tail == "after\n"


def test_close_fence_ends_an_open_code_block_only() -> None:
    assert close_fence("text\n\n```py\nx = 1") == "text\n\n```py\nx = 1\n```\n"
    assert close_fence("~~~~\ncode\n") == "~~~~\ncode\n~~~~\n"
    assert close_fence("```\ndone\n```\nprose") == "```\ndone\n```\nprose"
