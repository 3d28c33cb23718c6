"""The concise form of a schema: ``"name, age int, tags list[str]"`` as a JSON schema.

Fields are separated by commas (or one a line, when there are several lines, so that a
description may hold a comma), each ``NAME [TYPE] [: description]``; TYPE is ``str`` (the
default), ``int``, ``float``, ``bool``, ``dict`` or ``list[TYPE]``. Every field is
required and no other is allowed. `chatmagic.core.schema` resolves it into a `Schema`.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["parse_concise", "ConciseError"]


class ConciseError(ValueError):
    """A concise spec that cannot be read (the message names the field and the problem)."""


_SIMPLE = {"str": "string", "string": "string", "int": "integer", "integer": "integer",
           "float": "number", "number": "number", "bool": "boolean", "boolean": "boolean",
           "dict": "object", "object": "object"}
_FIELD = re.compile(r"\s*([A-Za-z_][\w-]*)\s*([^:]*?)\s*(?::\s*(.*))?\s*")


def _concise_type(text: str, where: str) -> dict[str, Any]:
    word = text.strip()
    if not word:
        return {"type": "string"}
    inner = re.fullmatch(r"list\s*\[(.*)\]", word)
    if inner:
        return {"type": "array", "items": _concise_type(inner.group(1), where)}
    if word in ("list", "array"):
        return {"type": "array"}
    if word in _SIMPLE:
        return {"type": _SIMPLE[word]}
    raise ConciseError(f"--schema: unknown type {word!r} for {where} (types: str, int, float, "
                      "bool, dict, list[TYPE])")


def _split_fields(spec: str) -> list[str]:
    """Fields one a line when there are several lines (a description may hold commas),
    else separated by commas outside brackets."""
    lines = [ln for ln in spec.splitlines() if ln.strip()]
    if len(lines) > 1:
        return lines
    parts, depth, current = [], 0, ""
    for char in spec:
        depth += {"[": 1, "]": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    return [*parts, current]


def parse_concise(spec: str) -> dict[str, Any]:
    """``"name, age int, tags list[str]"`` as a JSON schema (every field required)."""
    properties: dict[str, Any] = {}
    for raw in _split_fields(spec):
        if not raw.strip():
            raise ConciseError(f"--schema {spec!r}: an empty field (two commas in a row, or one "
                              "at the end)")
        match = _FIELD.fullmatch(raw)
        if match is None:
            raise ConciseError(f"--schema: {raw.strip()!r} is no field: write NAME [TYPE] "
                              "[: description], e.g. \"age int\"")
        name, type_text, description = match.groups()
        if name in properties:
            raise ConciseError(f"--schema {spec!r}: the field {name} is named twice")
        prop = _concise_type(type_text, f"the field {name}")
        if description:
            prop["description"] = description.strip()
        properties[name] = prop
    return {"type": "object", "properties": properties, "required": list(properties),
            "additionalProperties": False}
