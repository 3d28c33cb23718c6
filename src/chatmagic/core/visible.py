"""Text from an endpoint or a model made safe to show: nothing in it can hide or reorder
what the user reads.

A bidirectional control (U+202E makes ``cp a b`` read backwards), a control character (an
escape sequence repaints a terminal, a carriage return overwrites a line) or an invisible
format character would let a model show one thing while another runs. `visible` writes each
such character as its Python escape (``\\u202e``, ``\\x1b``, ``\\U000e0041``): it stays in
sight, and says what it is. The text is otherwise unchanged (a backslash the model wrote is
not doubled: an escape shown may be the model's own four characters, never a hidden one).
"""

from __future__ import annotations

import re

__all__ = ["visible", "is_visible"]

# Escaped in every text: C0 controls but tab and line feed (a carriage return only where it
# ends a line, in prose), DEL and C1 (U+009B starts an escape sequence in some terminals), the
# bidirectional controls (the Arabic letter mark U+061C, LRM and RLM U+200E-U+200F,
# embeddings and overrides U+202A-U+202E, isolates U+2066-U+2069), lone surrogates (the
# kernel cannot send one), and the tag characters (U+E0000-U+E007F: invisible, they can
# carry words to a model that no reader sees).
_PROSE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u061c\u200e\u200f"
                    "\u202a-\u202e\u2066-\u2069\ud800-\udfff\U000e0000-\U000e007f]"
                    "|\r(?!\n)")
# In names, arguments, ids and figures also every other invisible format character (Unicode
# category Cf: zero width spaces and joiners, a soft hyphen, a byte order mark, ...), the
# Hangul fillers (letters that draw nothing), line and paragraph separators (a line end
# where one line is shown) and a carriage return anywhere: a name that looks like another is
# a name that hides one.
_STRICT = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\xad\u0600-\u0605\u061c\u06dd\u070f"
                     "\u0890\u0891\u08e2\u115f\u1160\u180e\u200b-\u200f\u2028-\u202e"
                     "\u2060-\u2064\u2066-\u206f\u3164\ud800-\udfff\ufeff\uffa0\ufff9-\ufffb"
                     "\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3"
                     "\U0001d173-\U0001d17a\U000e0000-\U000e007f]")
_LINES = re.compile("[\t\n]")


def _escape(match: re.Match[str]) -> str:
    return ascii(match.group())[1:-1]  # "\u202e", "\x1b", "\r", "\U000e0041", "\ud800"


def visible(text: str, *, prose: bool = False, lines: bool = True) -> str:
    """``text`` with every character that could hide or reorder text written as its escape.

    ``prose`` (a reply's text, in a cell or a terminal): only the controls, the
    bidirectional controls, tag characters and lone surrogates; joiners and other format
    characters that writing needs (an emoji sequence's U+200D) and U+2028 stay. Else
    (a tool call's name and arguments, a model id, a header, a footer, an endpoint's
    words) every format character too. ``lines=False`` escapes tab and line feed as well,
    for a value that must stay on one line (a model id, a table cell)."""
    text = (_PROSE if prose else _STRICT).sub(_escape, text)
    return text if lines else _LINES.sub(_escape, text)


def is_visible(text: str) -> bool:
    """Whether ``text`` shows as it is on one line: nothing in it `visible` would escape."""
    return visible(text, lines=False) == text
