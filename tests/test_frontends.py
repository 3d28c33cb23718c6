"""Terminal IPython streams plain text; the public surface is declared."""

from __future__ import annotations

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


def test_safe_markdown_neutralises_every_probe() -> None:
    safe = safe_markdown(XSS_REPLY)
    prose = safe.split("```html")[0].replace("`<b>not bold</b>`", "")
    assert "<" not in prose
    assert "javascript:" not in prose.split("hover me")[1] and "(data:" not in prose
    assert "`<b>not bold</b>`" in safe and "<script>shown, not run</script>" in safe
    html = markdown_html(XSS_REPLY)
    assert "<script" not in html and "onerror" not in html.replace("onerror=&quot;", "")
    assert 'href="javascript' not in html


TAG = "<img src=x onerror=alert(1)>"
TRICKY = [  # each fooled a line-by-line reading of code at some point
    f"Note:\u2028```\n{TAG}\n",  # U+2028 is no line end in Markdown
    f"Note:\x85```\n{TAG}\n",
    f"```a`b\n{TAG}\n",  # no fence: a backtick in a backtick fence's info string
    f"a \\`{TAG}` b\n",  # an escaped backtick opens no code span
    f"- item\n\n   ```\n{TAG}\n",  # the list item ends, and its fence with it
    f"[a](`x) {TAG} `y)\n",  # the link takes the first backtick
    "[x]:\n  javascript:alert(1)\n\n[x]\n",  # a definition's URL on the next line
    f"> ```\n{TAG}\n",  # a quoted fence ends with the quote
]


@pytest.mark.parametrize("probe", TRICKY)
def test_no_probe_renders_live_under_a_commonmark_parser(probe: str) -> None:
    from markdown_it import MarkdownIt

    renderer = MarkdownIt("commonmark", {"html": True}).enable("table")
    renderer.validateLink = lambda url: True  # as a renderer that checks no scheme would
    shown = renderer.render(safe_markdown(probe))
    assert "<img" not in shown and 'href="javascript' not in shown, shown


def test_code_keeps_its_angle_brackets() -> None:
    text = "Use `Vec<T>` here.\n\n```rust\nlet v: Vec<u8> = a << 2;\n```\n"
    assert safe_markdown(text) == text


def test_links_keep_safe_schemes_and_dollars_stay_money() -> None:
    text = safe_markdown("[ok](https://a.b) [bad](JaVa&#115;cript:x) costs $5 and $6, \\(x^2\\)")
    assert "(https://a.b)" in text and "#blocked-link" in text
    assert "\\$5 and \\$6" in text and "$x^2$" in text


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
