"""A reply streamed as pieces: finished pieces are drawn once, only a small live one is redrawn.

Re-sending a whole reply on every refresh is O(n²) in bytes and in the
browser's work; so the text is cut into pieces at line boundaries, wherever
they fall: between blocks, between the lines of a long paragraph, list or
table, and inside a long code block. A piece is drawn once when frozen; only
the live piece, kept under ``freeze_at`` characters, is drawn again. A code
block cut in two is closed in the first piece and reopened (its fence line
carried over, hidden) in the next, whose styles join them into one box; a
table goes on with its header carried over and not shown.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .html import markdown_html

__all__ = ["Piece", "LiveText", "first_code_block", "GROWTH"]

#: The live piece is redrawn once it holds this many times what was last drawn of it, so
#: its redraws cost at most twice its size (the sum of a halving series), at any pace. A
#: redraw costs JupyterLab about 5 ms whatever its size: pieces of 4 kB keep them few.
GROWTH = 2.0

_FENCE = re.compile(r"^( {0,3})(`{3,}|~{3,})")
_TABLE_RULE = re.compile(r"^ {0,3}\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)\s*$")
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)")  # Markdown's line ends only (not U+2028)
_EOL = re.compile(r"\r\n|\r|\n")


def _next_fence(line: str, fence: str | None) -> str | None:
    """The code fence open after ``line``, given the one open before it."""
    opener = _FENCE.match(line)
    if fence is None:
        if opener is None or (opener.group(2)[0] == "`" and "`" in line[opener.end():]):
            return None  # a backtick fence's info string cannot hold a backtick
        return opener.group(2)
    closes = (opener is not None and opener.group(2)[0] == fence[0]
              and len(opener.group(2)) >= len(fence) and not line[opener.end():].strip())
    return None if closes else fence


@dataclass(frozen=True, slots=True)
class Piece:
    """A stretch of the reply drawn as one output.

    What is rendered is a hidden ``prefix`` (a code fence line or a table header carried
    over from the previous piece), the text itself, and a ``closing`` fence for a code
    block that goes on in the next piece. ``joins_prev``/``joins_next``: the piece goes on
    from, or into, its neighbour inside one block (the edges between them have no margin).
    """

    text: str
    prefix: str = ""
    closing: str = ""
    carries: str = ""  # "code" or "table": what the prefix carries over
    joins_prev: bool = False
    joins_next: bool = False

    def html(self, remote_images: bool = False) -> str:
        return markdown_html(self.prefix + self.text + self.closing,
                             remote_images=remote_images, drop_head=self.carries == "table")

    @property
    def classes(self) -> str:
        """The root element's classes that join it to its neighbours."""
        return " ".join(c for c, on in (("cm-cont", self.joins_prev),
                                        ("cm-open", self.joins_next)) if on)


@dataclass(frozen=True, slots=True)
class _Cut:
    index: int  # a cut before line `index` of the live lines
    strong: bool  # between blocks (nothing is split)
    carry: str  # the prefix the next piece needs
    carries: str
    closing: str


class LiveText:
    """A growing reply: `add` text, `freeze` finished pieces, show `live`, `rest` at the end.

    Each line is classified once, when it is complete, so the work is O(reply).
    """

    def __init__(self, freeze_at: int = 4096) -> None:
        self.freeze_at = freeze_at
        self._lines: list[str] = []  # complete lines of the live piece
        self._size = 0  # characters in _lines
        self._partial = ""
        self._prefix, self._carries = "", ""
        self._joined = False  # the live piece goes on from the last frozen one, in one block
        self._cuts: list[_Cut] = []
        # Where the scan stands after the last complete line:
        self._fence: str | None = None
        self._opener = ""
        self._table = ""  # the header and rule lines of the table being read
        self._math = False  # inside $$ or \[ display math
        self._blank = True  # the previous line was blank

    @property
    def size(self) -> int:
        """Characters of reply text in the live piece."""
        return self._size + len(self._partial)

    def add(self, text: str) -> None:
        # The partial line holds no line end (but perhaps a final CR, half of a CRLF), so
        # only the new text is searched: linear however the reply is cut into chunks.
        held = len(self._partial)
        text = self._partial + text
        end = len(text) - 1 if text.endswith("\r") else len(text)
        pos = 0
        for match in _EOL.finditer(text, max(0, held - 1), end):
            self._line(text[pos:match.end()])
            pos = match.end()
        self._partial = text[pos:]
        while len(self._partial) > 2 * self.freeze_at:
            # One enormous line: the next piece goes on after a space near its end.
            limit = 2 * self.freeze_at
            cut = self._partial.rfind(" ", self.freeze_at, limit) + 1 or limit
            head, self._partial = self._partial[:cut], self._partial[cut:]
            self._line(head)

    def _line(self, line: str) -> None:
        index = len(self._lines)
        fence = self._fence
        stripped = line.strip()
        if index:
            if fence is not None:
                if _next_fence(line, fence) is not None:  # not the closing line
                    indent = _FENCE.match(self._opener).group(1)  # type: ignore[union-attr]
                    self._cuts.append(_Cut(index, False, self._opener, "code",
                                           f"{indent}{fence}\n"))
            elif self._blank or _FENCE.match(line):
                self._cuts.append(_Cut(index, True, "", "", ""))
            elif not self._math and not line[:1].isspace() and not _SETEXT.match(line):
                table = self._table if stripped.startswith("|") or "|" in stripped else ""
                self._cuts.append(_Cut(index, False, table, "table" if table else "", ""))
        # The state after this line.
        after = _next_fence(line, fence)
        if fence is None and after is not None:
            self._opener = line
        self._fence = after
        if fence is None and after is None:
            previous = self._lines[-1] if self._lines else ""
            if _TABLE_RULE.match(line) and "|" in previous:
                self._table = previous + line
            elif not stripped or "|" not in stripped:
                self._table = ""
            self._math ^= (line.count("$$") % 2 == 1) or ("\\[" in line) != ("\\]" in line)
        self._blank = not stripped
        self._lines.append(line)
        self._size += len(line)

    def freeze(self) -> Piece | None:
        """The finished piece to draw once, if the live piece has grown past ``freeze_at``."""
        if self.size < self.freeze_at or not self._cuts:
            return None
        cut = self._cuts[-1]
        strong = [c for c in self._cuts if c.strong]
        if strong and self._size - self._offset(strong[-1]) <= self.freeze_at // 2:
            cut = strong[-1]  # nothing is split, and the live piece stays small
        text = "".join(self._lines[:cut.index])
        piece = Piece(text, self._prefix, cut.closing, self._carries, self._joined,
                      not cut.strong)
        self._lines = self._lines[cut.index:]
        self._size -= len(text)
        self._prefix, self._carries, self._joined = cut.carry, cut.carries, not cut.strong
        self._cuts = [_Cut(c.index - cut.index, c.strong, c.carry, c.carries, c.closing)
                      for c in self._cuts if c.index > cut.index]
        return piece

    def _offset(self, cut: _Cut) -> int:
        return sum(len(line) for line in self._lines[:cut.index])

    def due(self, shown: int) -> bool:
        """Whether the live piece, of which ``shown`` characters are drawn, is due a redraw."""
        return self.size > shown and (shown == 0 or self.size >= shown * GROWTH)

    def live(self) -> Piece:
        """The live piece as it stands (redrawn until it is frozen)."""
        return Piece("".join(self._lines) + self._partial, self._prefix, "", self._carries,
                     self._joined)

    def visible(self) -> str:
        """The live piece's own text (no hidden prefix)."""
        return "".join(self._lines) + self._partial


def first_code_block(text: str) -> str | None:
    """The body of the reply's first fenced code block (for ``-f code``), in linear time."""
    fence: str | None = None
    body: list[str] = []
    for line in _LINE.findall(text) + ([text[text.rfind("\n") + 1:]] if text else []):
        after = _next_fence(line, fence)
        if fence is None:
            fence = after
            continue
        if after is None:
            return "".join(body)
        body.append(line)
    return None
