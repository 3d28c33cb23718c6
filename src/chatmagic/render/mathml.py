"""LaTeX the model wrote, typeset here as MathML, so no frontend's MathJax ever reads it.

MathJax macros can load things (``\\style{cursor:url(...)}``), link
(``\\href``) or cover the page (``\\rule{200em}{200em}``). Converting to
MathML ourselves and keeping only an allowlist of presentation elements and
attributes (no ``href``, no ``style``, no colours, lengths bounded) leaves
nothing that can fetch, link or run; browsers draw MathML natively.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["latex_mathml", "MATHML_TAGS", "MATHML_ATTRIBUTES", "mathml_attribute"]

#: MathML presentation elements kept by the sanitizer (no maction, semantics or annotations:
#: annotation-xml may carry HTML).
MATHML_TAGS = frozenset({
    "math", "mrow", "mi", "mn", "mo", "ms", "mtext", "mspace", "msup", "msub", "msubsup",
    "mfrac", "msqrt", "mroot", "munder", "mover", "munderover", "mtable", "mtr", "mtd",
    "mstyle", "mpadded", "mphantom", "menclose", "merror", "mmultiscripts", "mprescripts",
    "none",
})

MATHML_ATTRIBUTES = frozenset({
    "display", "mathvariant", "stretchy", "fence", "separator", "accent", "accentunder",
    "movablelimits", "largeop", "symmetric", "lspace", "rspace", "width", "height", "depth",
    "columnalign", "rowalign", "columnspacing", "rowspacing", "linethickness", "notation",
    "displaystyle", "scriptlevel", "form", "minsize", "maxsize",
})

_LENGTH = re.compile(r"\s*(-?\d*\.?\d+)\s*(em|ex|px|pt|mu)?\s*")
_LENGTH_ATTRIBUTES = {"lspace", "rspace", "width", "height", "depth", "minsize", "maxsize",
                      "columnspacing", "rowspacing", "linethickness"}
_MAX_EM = 4.0  # \quad is 1em, \qquad 2em; \rule{200em}{200em} would cover the notebook
_MAX_SOURCE = 4000  # characters of LaTeX converted at once; longer math is shown as code
# latex2mathml writes a symbol as the text "&#x0003C;" and unescapes its whole output, so
# the text of \text{<style>...} would arrive as markup: its text nodes are read here, and
# the tree serialized with everything in them escaped.
_ENTITY = re.compile(r"&#x([0-9a-fA-F]{1,6});")


def _entity(match: re.Match[str]) -> str:
    code = int(match.group(1), 16)
    return chr(code) if 0 < code < 0x110000 and not 0xD800 <= code < 0xE000 else "\ufffd"


def _escaped(tree: Any) -> str:
    """The MathML tree as markup, every text in it escaped."""
    from xml.etree.ElementTree import tostring

    for node in tree.iter():
        node.text = node.text and _ENTITY.sub(_entity, node.text)
        node.tail = node.tail and _ENTITY.sub(_entity, node.tail)
    return tostring(tree, encoding="unicode")


def mathml_attribute(name: str, value: str) -> str | None:
    """The attribute value to keep (None drops it): lengths bounded, everything else as is."""
    if name not in MATHML_ATTRIBUTES:
        return None
    if name in _LENGTH_ATTRIBUTES:
        for part in value.split():
            found = _LENGTH.fullmatch(part)
            if found is None:
                return None  # "thin", "veryverythickmathspace", url(...): not a number we know
            size = abs(float(found.group(1)))
            unit = found.group(2) or "em"
            if size / {"em": 1, "ex": 2, "mu": 18, "px": 16, "pt": 12}[unit] > _MAX_EM:
                return None
    return value


def latex_mathml(latex: str, display: bool) -> str | None:
    """MathML for ``latex`` (not yet sanitized), or None when it cannot be converted."""
    if len(latex) > _MAX_SOURCE or not latex.strip():
        return None
    from latex2mathml.converter import convert_to_element

    try:
        mathml = _escaped(convert_to_element(latex, display="block" if display else "inline"))
    except Exception:  # noqa: BLE001 - any LaTeX it cannot read is shown as its source
        return None
    # A macro it does not know comes out as its name in letters: show the source instead.
    return None if "<mi>\\" in mathml or "<mo>\\" in mathml else mathml
