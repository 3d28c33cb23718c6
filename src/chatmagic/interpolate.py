"""Fill ``{name}`` fields of a prompt from the notebook namespace.

Only names, attributes and literal indexes are looked up (``{df.shape}``,
``{In[3]}``, ``{Out[3]}``, ``{cfg["key"]}``); nothing is evaluated. A field
that does not resolve is left exactly as written, so code with braces survives;
``{{`` and ``}}`` always stand for literal braces.
"""

from __future__ import annotations

import ast
import re
from typing import Any, Mapping

__all__ = ["interpolate"]

_FIELD = re.compile(
    r"\{\{|\}\}|\{(?P<path>[A-Za-z_]\w*(?:\.[A-Za-z_]\w*|\[[^\[\]{}\n]+\])*)\}")
_STEP = re.compile(r"\.(?P<attr>[A-Za-z_]\w*)|\[(?P<index>[^\[\]]+)\]")
_MISSING = object()


def _resolve(path: str, namespace: Mapping[str, Any]) -> Any:
    head = re.match(r"[A-Za-z_]\w*", path)
    assert head is not None
    value = namespace.get(head.group(), _MISSING)
    for step in _STEP.finditer(path, head.end()):
        if value is _MISSING:
            return _MISSING
        try:
            if step.group("attr"):
                if step.group("attr").startswith("_"):
                    return _MISSING  # never reach into private attributes
                value = getattr(value, step.group("attr"))
            else:
                value = value[ast.literal_eval(step.group("index").strip())]
        except Exception:  # noqa: BLE001 - any failed lookup leaves the field as written
            return _MISSING
    return value


def interpolate(text: str, namespace: Mapping[str, Any]) -> str:
    """The prompt with every resolvable ``{field}`` replaced by ``str(value)``."""
    def replace(match: re.Match[str]) -> str:
        token = match.group()
        if token == "{{":
            return "{"
        if token == "}}":
            return "}"
        value = _resolve(match.group("path"), namespace)
        return token if value is _MISSING else str(value)

    return _FIELD.sub(replace, text)
