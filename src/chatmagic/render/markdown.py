"""Model Markdown made safe to show, and cut into blocks that can be frozen.

JupyterLab trusts a cell's outputs, so raw HTML inside a ``text/markdown``
output runs (``<img onerror>``, ``<script>``). `safe_markdown` makes sure no
``<`` the model wrote is left raw anywhere, code included, and that no link
target anywhere has a script scheme. Both hold whatever a frontend's parser
makes of the text (JupyterLab strips math first and reads GFM; VS Code and
nbconvert read CommonMark), because neither relies on where a parser thinks
code starts or ends. `markdown_html` renders Markdown to HTML with raw HTML
disabled, for widgets and the compare grid. `Blocks` cuts a growing reply at
block boundaries so that only a small live tail is ever re-sent.
"""

from __future__ import annotations

import bisect
import html
import re
from functools import lru_cache
from typing import Any

__all__ = ["safe_markdown", "safe_block", "code_html", "markdown_html", "escape_html", "Blocks",
           "close_fence", "first_code_block"]

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$")  # Markdown's line ends only
_BACKTICKS = re.compile(r"`+")
_FENCE_LIKE = re.compile(r"[ \t]*(`{3,}|~{3,})")
# Where a link's or a definition's URL starts. Whitespace (JavaScript's \s, which marked
# uses, also takes U+FEFF) and a quote's ">" may come first; skipping too much only means
# checking more.
_LINK_TARGET = re.compile(r"\][(:][\s\ufeff>]*")
_URL = re.compile(r"[^\s\]]{0,2001}")  # a longer target counts as unsafe: checking stays linear
# What browsers or Markdown renderers may run or open as a document (markdown-it's list);
# any other scheme ("note:", "python:") is left alone, as prose often has "[1]: word:".
_SCRIPT_SCHEMES = ("javascript", "vbscript", "file", "data")
_SCHEME = re.compile(r"([a-z][a-z0-9+.-]*):")
_NOT_IN_URL = re.compile(r"[\x00-\x20\x7f\s\ufeff\\]+")  # browsers drop these, Markdown drops \\
_TAG = re.compile(r"<[^>]*>?")
# Inline HTML's contents are still read as Markdown (and by the math pass): every ASCII
# punctuation character becomes an entity, which no reading turns back into syntax.
_PUNCTUATION = re.compile(r"[!-/:-@\[-`{-~]")
# A <pre> block's contents are raw HTML to CommonMark and GFM; these are what HTML, the
# math pass (``$``, ``\\begin``) or a code span could still read in it.
_PRE_SPECIAL = re.compile(r"[&<>\"'$\\`\[\]\n]")


def escape_html(text: str) -> str:
    return html.escape(text, quote=True)


def _entities(pattern: re.Pattern[str], text: str) -> str:
    return pattern.sub(lambda m: f"&#{ord(m.group())};", text)


def code_html(text: str) -> str:
    """Inline code as HTML that shows ``text`` verbatim in any Markdown frontend."""
    return f"<code>{_entities(_PUNCTUATION, text)}</code>"


def _math_fixes(text: str) -> str:
    # "$5 and $6" would be typeset as math; LLMs write \( \) and \[ \], which JupyterLab ignores.
    text = re.sub(r"\$(?=\d)", r"\\$", text)
    # No backslash inside but other escapes: "\\(" repeated would make a lazy .+? quadratic.
    text = re.sub(r"\\\(((?:[^\\\n]|\\(?![()]))+?)\\\)", r"$\1$", text)
    return re.sub(r"\\\[((?:[^\\\n]|\\(?![\[\]]))+?)\\\]", r"$$\1$$", text)


def _escape_prose(text: str) -> str:
    """A stretch of prose (no code span in it) with no ``<`` and no backtick left raw."""
    # JupyterLab cuts math out before Markdown and pastes it back into the HTML after,
    # escaping only & < >: math that lands in an attribute (an image's alt, a link) could
    # end it with a '"'. So no '"' is left raw outside code blocks kept as Markdown, and
    # those stand between blank lines, where the math pass gives up.
    text = text.replace("<", "&lt;").replace('"', "&quot;")
    # A stray backtick could pair up with another in some parser's eyes, and a code span
    # there would show our own markup; as an entity it is only a backtick. An odd
    # backslash before it escaped it, and would now escape the entity's "&": drop it.
    text = re.sub(r"(?<!\\)((?:\\\\)*)\\?`", r"\1&#96;", text)
    return _math_fixes(text)


def _code_spans(line: str) -> list[tuple[int, int, int, int]]:
    """(start, content start, content end, end) of each code span in a line.

    CommonMark's rule, in linear time: an opening backtick run pairs with the next run of
    the same length; a backslash before a run escapes its first backtick only.
    """
    runs = [m.span() for m in _BACKTICKS.finditer(line)]
    by_length: dict[int, list[int]] = {}
    for i, (start, end) in enumerate(runs):
        by_length.setdefault(end - start, []).append(i)
    spans = []
    i = 0
    while i < len(runs):
        start, end = runs[i]
        slashes = 0
        while start - slashes > 0 and line[start - slashes - 1] == "\\":
            slashes += 1
        if slashes % 2:
            start += 1  # an escaped backtick is text; the rest of the run may open a span
        same = by_length.get(end - start, [])
        j = bisect.bisect_right(same, i)
        if end > start and j < len(same):
            close_start, close_end = runs[same[j]]
            spans.append((start, end, close_start, close_end))
            i = same[j] + 1
        else:
            i += 1
    return spans


def _escape_line(line: str) -> str:
    out: list[str] = []
    pos = 0
    for start, inner, inner_end, end in _code_spans(line):
        out.append(_escape_prose(line[pos:start]))
        code = line[inner:inner_end]
        if len(code) > 2 and code[0] == code[-1] == " " and code.strip(" "):
            code = code[1:-1]  # as CommonMark strips one space off each side
        out.append(code_html(code))
        pos = end
    out.append(_escape_prose(line[pos:]))
    return "".join(out)


def _lines(text: str) -> list[str]:
    """The lines of a Markdown text with their ends (``str.splitlines`` also splits on
    characters such as U+2028 that Markdown does not treat as line ends)."""
    return _LINE.findall(text)


def _newline(line: str) -> str:
    """The line with its end written as ``\\n`` (a lone ``\\r`` ends a line too, which
    text composed around safe Markdown by ``\\n`` would not see)."""
    return line.rstrip("\r\n") + "\n" if line.endswith(("\r", "\n")) else line


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


def _pre_html(indent: str, lang: str, code_lines: list[str]) -> str:
    """A fenced code block's lines as one line of HTML showing the code verbatim.

    One line, because a frontend that reads the block differently (a list item or a
    blockquote it ends early, a math pass) can then only split it at its edges.
    """
    width = len(indent)  # as CommonMark, drop up to the opener's indent from each line
    code = "".join(_newline(line[min(width, len(line) - len(line.lstrip(" "))):])
                   for line in code_lines)
    attr = f" class=language-{lang}" if lang else ""  # no quote: see _escape_prose
    return f"{indent}<pre><code{attr}>{_entities(_PRE_SPECIAL, code.removesuffix(chr(10)))}" \
           f"</code></pre>\n"


def _unsafe_url(url: str) -> bool:
    """Whether a link target could have a script scheme, as any parser and browser read it."""
    plain = html.unescape(url)
    for candidate in (plain, _TAG.sub("", plain)):
        candidate = _NOT_IN_URL.sub("", candidate).lower().lstrip("<>\"'(")
        scheme = _SCHEME.match(candidate)
        if scheme and scheme.group(1) in _SCRIPT_SCHEMES:
            return True
    return False


def _block_script_links(markdown: str) -> str:
    """Every link target in the text that could have a script scheme, made a fragment.

    Every ``](`` and ``]:`` counts, wherever it stands, so no parser can find a link we
    missed; a ``#`` in front makes the target a harmless in-page link.
    """
    out: list[str] = []
    pos = 0
    for start in _LINK_TARGET.finditer(markdown):
        url = _URL.match(markdown, start.end())
        if url is not None and (len(url.group()) > 2000 or _unsafe_url(url.group())):
            out.append(markdown[pos:start.end()] + "#")
            pos = start.end()
    out.append(markdown[pos:])
    return "".join(out)


def safe_markdown(text: str) -> str:
    """Markdown that shows ``text`` and can run no script in any frontend.

    Prose keeps its Markdown with every ``<`` and ``"`` escaped and script links made
    in-page links (code has none: ``d[x]:`` then ``data:`` stays as written). Code
    spans become ``<code>`` HTML with their contents as entities. A fenced code block
    stays Markdown (and highlighted) when every reader agrees on it (see `_fenced`);
    otherwise it becomes a ``<pre>`` line with its contents escaped. Line ends come out
    as ``\\n``.
    """
    out: list[str] = []
    prose: list[str] = []  # prose lines since the last code block
    block: list[str] = []  # the fenced code block being read
    fence: str | None = None
    for line in _lines(text):
        after = _next_fence(line, fence)
        if fence is None and after is None:
            prose.append(_newline(_escape_line(line)))
            continue
        if prose:
            out.append(_block_script_links("".join(prose)))
            prose = []
        block.append(line)
        fence = after
        if fence is None:  # the block closed
            out.append(_fenced(block))
            block = []
    if block:
        out.append(_fenced(block))
    out.append(_block_script_links("".join(prose)))
    return "".join(out)


def safe_block(text: str) -> str:
    """`safe_markdown` that stands as a block of its own: a code block it leaves open is
    closed, so whatever is written after it (a footer, ``</details>``) is no code."""
    return close_fence(safe_markdown(text))


def _fenced(block: list[str]) -> str:
    """A fenced code block: Markdown (highlighted by JupyterLab) if every reader agrees on
    where it ends and it holds no ``<``; else one line of HTML.

    Markdown when no line inside looks like a fence (parsers differ on which of those
    close it) or is indented less than the opener (it would end a list item, and the
    code with it), and its info string is a plain language name (JupyterLab pastes it into a
    class attribute as it is), between blank lines (see _escape_prose).
    """
    found = _FENCE.match(block[0])
    assert found is not None
    fence = found.group(1)
    closed = len(block) > 1 and _next_fence(block[-1], fence) is None
    inside = block[1:-1] if closed else block[1:]
    info = block[0][found.end():].strip()
    lang = re.match(r"[A-Za-z0-9_+#.-]*", info).group()  # type: ignore[union-attr]
    indent = found.group()[:-len(fence)]
    if any("<" in line for line in block) or any(_FENCE_LIKE.match(line) for line in inside) \
            or lang != info.split(" ")[0] \
            or any(line.strip() and not line.startswith(indent) for line in inside):
        return _pre_html(indent, lang, inside)
    closer = [indent + fence + "\n", "\n"] if closed else []
    return "".join(["\n", indent + fence + lang + "\n", *map(_newline, inside), *closer])


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
