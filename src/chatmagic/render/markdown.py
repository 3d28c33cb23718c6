"""Model Markdown made safe to show, and cut into blocks that can be frozen.

JupyterLab trusts a cell's outputs, so raw HTML inside a ``text/markdown``
output runs (``<img onerror>``, ``<script>``). `safe_markdown` escapes ``<``
outside code (inside code it would show as ``&lt;``) and blanks links whose
scheme could run script. `markdown_html` renders Markdown to HTML with raw HTML
disabled, for widgets and the compare grid. `Blocks` cuts a growing reply at
block boundaries so that only a small live tail is ever re-sent.
"""

from __future__ import annotations

import html
import re
from functools import lru_cache
from typing import Any

__all__ = ["safe_markdown", "markdown_html", "escape_html", "Blocks", "close_fence",
           "first_code_block"]

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_CODE_SPAN = re.compile(r"(?<![\\`])(`+)(.+?)(?<!`)\1(?!`)")  # not after a backslash escape
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$")  # Markdown's line ends only
_LINK_DEST = re.compile(r"(\]\(\s*<?)([^)\s>]*)")
_REF_DEF = re.compile(r"^( {0,3}\[[^\]]+\]:\s*<?)(\S*)")
_SAFE_SCHEMES = ("http", "https", "mailto")
_CONTROL = re.compile(r"[\x00-\x20\x7f]+")


def escape_html(text: str) -> str:
    return html.escape(text, quote=True)


def _safe_url(url: str) -> str:
    plain = _CONTROL.sub("", html.unescape(url)).lower()
    scheme = re.match(r"([a-z][a-z0-9+.-]*):", plain)
    if scheme and scheme.group(1) not in _SAFE_SCHEMES:
        return "#blocked-link"
    return url


def _math_fixes(text: str) -> str:
    # "$5 and $6" would be typeset as math; LLMs write \( \) and \[ \], which JupyterLab ignores.
    text = re.sub(r"\$(?=\d)", r"\\$", text)
    text = re.sub(r"\\\((.+?)\\\)", r"$\1$", text)
    return re.sub(r"\\\[(.+?)\\\]", r"$$\1$$", text)


def _escape_prose(text: str) -> str:
    """Escape what could become HTML in a stretch of prose (no code in it)."""
    text = text.replace("<", "&lt;")
    text = _LINK_DEST.sub(lambda m: m.group(1) + _safe_url(m.group(2)), text)
    text = _REF_DEF.sub(lambda m: m.group(1) + _safe_url(m.group(2)), text)
    return _math_fixes(text)


def _escape_line(line: str) -> str:
    out: list[str] = []
    pos = 0
    for span in _CODE_SPAN.finditer(line):
        out.append(_escape_prose(line[pos:span.start()]))
        out.append(span.group())
        pos = span.end()
    out.append(_escape_prose(line[pos:]))
    return "".join(out)


def _lines(text: str) -> list[str]:
    """The lines of a Markdown text with their ends (``str.splitlines`` also splits on
    characters such as U+2028 that Markdown does not treat as line ends)."""
    return _LINE.findall(text)


def _next_fence(line: str, fence: str | None) -> str | None:
    """The code fence open after ``line``, given the one open before it."""
    opener = _FENCE.match(line)
    if fence is None:
        if opener and opener.group(1)[0] == "`" and "`" in line[opener.end():]:
            return None  # a backtick fence's info string cannot hold a backtick
        return opener.group(1) if opener else None
    closes = (opener is not None and opener.group(1)[0] == fence[0]
              and len(opener.group(1)) >= len(fence)
              and not line[opener.end():].strip(" \t\r\n"))
    return None if closes else fence


def safe_markdown(text: str) -> str:
    """Markdown whose raw HTML and script links are neutralised; code left as written.

    Code (fences, code spans) is found line by line, cheaply; then, if anything that
    could be live survived, a CommonMark parser double-checks the result and any block
    where it still finds raw HTML or a script link is escaped whole, code and all.
    """
    out: list[str] = []
    fence: str | None = None
    for line in _lines(text):
        after = _next_fence(line, fence)
        code = fence is not None or after is not None  # inside a fence, or its opening line
        out.append(line if code else _escape_line(line))
        fence = after
    result = "".join(out)
    if "<" in result or "[" in result:
        result = _double_check(result)
    return result


@lru_cache(maxsize=1)
def _inspector() -> Any:
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": True, "linkify": False}).enable("table")
    md.validateLink = lambda url: True  # let every link through, to inspect its scheme
    return md


def _live_blocks(markdown: str) -> list[tuple[int, int, str]] | None:
    """Line ranges (start, end, what) of blocks holding raw HTML or a script link, as a
    CommonMark parser reads them; None if some such part cannot be placed."""
    found: list[tuple[int, int, str]] = []
    for token in _inspector().parse(markdown):
        kinds = set()
        if token.type == "html_block":
            kinds.add("<")
        for child in token.children or ():
            if child.type == "html_inline":
                kinds.add("<")
            elif child.type in ("link_open", "image"):
                url = child.attrGet("href") or child.attrGet("src") or ""
                if _safe_url(str(url)) != url:
                    kinds.add("[")
        for kind in kinds:
            if token.map is None:
                return None
            found.append((token.map[0], token.map[1], kind))
    return found


def _double_check(markdown: str) -> str:
    for _ in range(3):
        live = _live_blocks(markdown)
        if live == []:
            return markdown
        if live is None:
            break
        lines = _lines(markdown)
        for start, end, kind in live:
            for i in range(start, min(end, len(lines))):
                # "<" can start no tag once escaped; "\[" can start no link.
                lines[i] = lines[i].replace("<", "&lt;") if kind == "<" else \
                    re.sub(r"(?<!\\)\[", r"\\[", lines[i])
        markdown = "".join(lines)
    return re.sub(r"(?<!\\)\[", r"\\[", markdown.replace("<", "&lt;"))  # the last resort


@lru_cache(maxsize=1)
def _renderer() -> Any:
    from markdown_it import MarkdownIt

    # html=False escapes raw HTML; markdown-it's validateLink drops javascript:, vbscript:,
    # file: and non-image data: links.
    return MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")


def markdown_html(text: str) -> str:
    """Markdown rendered to HTML that cannot run script."""
    return str(_renderer().render(_math_fixes(text)))


class Blocks:
    """A growing Markdown text whose finished blocks can be frozen (sent once, never again).

    `add` appends what arrived; `freeze` cuts the tail at its last blank line
    outside a code fence and returns the part before it, so only a small live
    tail is ever re-sent. Freezing waits until the tail holds ``freeze_at``
    characters, so short replies stay one output.
    """

    def __init__(self, freeze_at: int = 1200) -> None:
        self.freeze_at = freeze_at
        self.tail = ""

    def add(self, text: str) -> None:
        self.tail += text

    def freeze(self, shown: int = 0) -> str | None:
        """Cut off the finished blocks, if the cut lies at or after ``shown`` characters
        (what the screen already shows of the tail must not shrink); None if no cut."""
        if len(self.tail) < self.freeze_at:
            return None
        cut = self._last_boundary()
        if cut <= 0 or cut < shown:
            return None
        frozen, self.tail = self.tail[:cut], self.tail[cut:]
        return frozen

    def _last_boundary(self) -> int:
        """The end of the last blank line outside a fence (the tail always starts outside)."""
        fence: str | None = None
        pos, best = 0, -1
        for line in _lines(self.tail):
            pos += len(line)
            fence_before, fence = fence, _next_fence(line, fence)
            if fence_before is None and fence is None and not line.strip() \
                    and line.endswith("\n") and pos < len(self.tail):
                best = pos
        return best


def close_fence(text: str) -> str:
    """The text with a code fence it leaves open closed, so what follows is not code."""
    fence: str | None = None
    for line in _lines(text):
        fence = _next_fence(line, fence)
    if fence is None:
        return text
    newline = "" if text.endswith("\n") else "\n"
    return f"{text}{newline}{fence}\n"


def first_code_block(text: str) -> str | None:
    """The body of the reply's first fenced code block (for ``-f code``)."""
    match = re.search(r"^ {0,3}(`{3,}|~{3,})[^\n]*\n(.*?)^ {0,3}\1\s*$", text, re.S | re.M)
    return match.group(2) if match else None
