"""Server-sent events read from raw bytes, splitting lines only where SSE does.

`SSEDecoder` turns the byte chunks of an HTTP body into `SSEMessage` values as
the WHATWG spec reads them: lines end at CRLF, CR or LF and nowhere else (not
at U+2028, U+2029 or U+0085, which ``str.splitlines`` and so httpx's
``iter_lines`` split at), the bytes are UTF-8 whatever the charset header says,
one leading BOM is dropped, and an event whose data is empty or JSON's
whitespace (a ``data:  `` keep-alive) is never dispatched; other data, U+2028
or U+0085 alone included, goes to the reader (which says it is no JSON).
A line is handed on as soon as its end arrives, a lone CR included. Lines that
are no SSE field at all (a JSON body labelled ``text/event-stream``) are kept
apart in `stray` for the caller to read.
"""

from __future__ import annotations

import codecs
import re
from typing import NamedTuple

from .limits import TooLarge

__all__ = ["SSEMessage", "SSEDecoder"]

_LINE_END = re.compile("\r\n|\r|\n")
_BLANKS = re.compile("(?:\r\n|\r|\n){3,}")
#: JSON's whitespace; str.strip() would also take U+2028, U+0085 and the like, which are
#: data here (as they are no line ends).
_BLANK = " \t\n"


class SSEMessage(NamedTuple):
    """One dispatched event: its name (``message`` unless the server named it) and data."""

    data: str
    event: str = "message"


class SSEDecoder:
    """An incremental SSE reader: `feed` it byte chunks, then call `end` once.

    Its work is linear in the bytes fed, whatever their shape: each chunk's text is
    scanned for line ends once, and the start of a line still open is kept as a list of
    pieces, joined once when its end comes (a stream with no line end at all once took
    quadratic time, copying the line so far on every chunk). One line, and one event's
    data (its data lines joined, each joining line break a byte, so an event of empty
    ``data:`` lines counts too), may hold at most ``max_line`` bytes; past it `feed` raises
    `TooLarge`.
    """

    def __init__(self, max_line: int | None = None) -> None:
        # Incremental, so a multi-byte character split across two chunks survives.
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._tail: list[str] = []  # the start of a line whose end has not arrived, in pieces
        self._tail_size = 0  # its bytes
        self._data_size = 0  # the bytes of the event's data lines so far
        self._max_line = max_line
        self._skip_lf = False  # the last chunk ended in CR: a LF first in the next is its pair
        self._started = False
        self._data: list[str] = []
        self._event = ""
        self.stray: list[str] = []  # lines that are not SSE (a plain body); kept for the caller
        #: Characters scanned for line ends and copied into lines, for the tests of linearity.
        self.work = 0

    def feed(self, chunk: bytes) -> list[SSEMessage]:
        """The events completed by this chunk of the body."""
        return self._text(self._decoder.decode(chunk))

    def end(self) -> list[SSEMessage]:
        """The events left when the body ends.

        The spec drops an event the body ends inside of; a server that closes
        without the last blank line still sent that event whole, so it is kept.
        """
        messages = self._text(self._decoder.decode(b"", final=True))
        if self._tail:
            line = "".join(self._tail)
            self.work += len(line)
            messages += self._lines([line])
            self._tail = []
        return messages + self._lines([""])

    def _text(self, text: str) -> list[SSEMessage]:
        if not text:
            return []
        if self._skip_lf:
            self._skip_lf = False
            if text[0] == "\n":
                text = text[1:]
        if not self._started:
            self._started = True
            if text[0] == "\ufeff":
                text = text[1:]
        self.work += len(text)
        # A CR ends its line now (no waiting for a LF that may never come).
        self._skip_lf = text[-1:] == "\r"
        if "\n\n\n" in text or "\r\r\r" in text or "\r\n\r\n\r\n" in text:
            # Blank lines after the first do nothing: a run of them is read as one (a body of
            # nothing but line ends would otherwise cost a step per byte).
            text = _BLANKS.sub("\n\n", text)
        # Only the new text is scanned: the line's start held in _tail has no line end.
        if "\r" in text:
            lines = _LINE_END.split(text)
        else:
            lines = text.split("\n")
        rest = lines.pop()
        if lines and self._tail:
            self._tail.append(lines[0])
            lines[0] = "".join(self._tail)
            self.work += len(lines[0])
            self._tail, self._tail_size = [], 0
        if rest:
            self._tail.append(rest)
            self._tail_size += _size(rest)
            if self._max_line is not None and self._tail_size > self._max_line:
                raise TooLarge("one line of the stream", self._max_line, "max_line_mb")
        return self._lines(lines) if lines else []

    def _lines(self, lines: list[str]) -> list[SSEMessage]:
        messages: list[SSEMessage] = []
        data = self._data
        for line in lines:
            if not line:
                if data:
                    text = "\n".join(data)
                    data.clear()
                    self._data_size = 0
                    if text.strip(_BLANK):  # blank data is no event
                        messages.append(SSEMessage(text, self._event or "message"))
                self._event = ""
                continue
            if line.startswith("data:"):
                value = line[5:]
                data.append(value[1:] if value[:1] == " " else value)
                self._count(data)
                continue
            if line[0] == ":":
                continue  # a comment: DeepSeek's ": keep-alive"
            name, _, value = line.partition(":")
            if value[:1] == " ":
                value = value[1:]
            if name == "event":
                self._event = value
            elif name == "data":  # "data" alone: an empty data line
                data.append("")
                self._count(data)
            elif name not in ("id", "retry"):
                self.stray.append(line)
        return messages

    def _count(self, data: list[str]) -> None:
        """Hold the event's data, one line more, to ``max_line``: its bytes as joined."""
        if self._max_line is None or len(data) < 2:  # one line: held to it as a line
            return
        if len(data) == 2:
            self._data_size = _size(data[0])
        self._data_size += 1 + _size(data[-1])  # the "\n" that joins it to the line before
        if self._data_size > self._max_line:
            raise TooLarge("one event of the stream", self._max_line, "max_line_mb")


def _size(text: str) -> int:
    """The UTF-8 bytes of a piece of text (its length when it is ASCII, as SSE mostly is)."""
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))
