"""A ``--schema`` reply as a reader sees it: the JSON as code while it streams, then the
object as a field/value table (inert HTML from `html`, never markup from the model)."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from ..core.schema import Schema
from .html import clean_text, table_html, text_html

__all__ = ["JSON_FENCE", "parsed_html", "parsed_text", "shown_value"]

#: What the reply's text is shown inside while it streams: a fence of tildes long enough
#: that JSON (even one a model wrapped in a ``` fence) does not close it.
JSON_FENCE = "~~~~~~~~json\n"


def _plain(value: Any) -> Any:
    """A value as JSON-like data (a nested model or dataclass as its fields)."""
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return value


def shown_value(value: Any) -> str:
    """One field's value as text: a string as it is, anything else as compact JSON."""
    value = _plain(value)
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return repr(value)


_KIND_WORDS = {"pydantic": "pydantic model", "dataclass": "dataclass", "typeddict": "TypedDict",
               "dict": "JSON schema", "concise": "fields"}


def _caption(schema: Schema, value: Any) -> str:
    """What the object is: ``Person (pydantic model)``, ``dict (JSON schema)``."""
    name = getattr(schema.target, "__name__", None) or type(value).__name__
    return f"{name} ({_KIND_WORDS.get(schema.kind, schema.kind)})"


def parsed_html(schema: Schema, value: Any) -> str:
    """The object as a table of its fields (every cell escaped)."""
    rows = [[name, shown_value(item)] for name, item in schema.as_fields(value).items()]
    return (f'<div class="cm-note"><b>{text_html(_caption(schema, value))}</b></div>'
            + table_html(["field", "value"], rows))


def parsed_text(schema: Schema, value: Any) -> str:
    """The object as ``field: value`` lines (a terminal, a text/plain output)."""
    fields = schema.as_fields(value)
    width = max((len(name) for name in fields), default=0)
    lines = [f"{name.ljust(width)}  {shown_value(item)}" for name, item in fields.items()]
    return clean_text("\n".join([_caption(schema, value), *lines]))
