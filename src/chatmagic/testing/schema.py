"""The local endpoint's structured-output scripts (`chatmagic.testing`'s ``schema`` model).

`schema_of` finds the JSON schema a request carries (``response_format``'s
``json_schema`` or ``json_object`` + ``schema``, else the one written in the
prompt, as chatmagic writes it for endpoints that take none); `reply_for`
builds the reply text: JSON valid and typed for that schema, with its strings
and numbers taken from the prompt (so rows of a table differ), or wrong on
purpose. `refusal` answers a response_format an endpoint would refuse, in the
words llama-cpp-python's server uses.
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["schema_of", "reply_for", "refusal", "SHAPES"]

#: ``shape=`` of the schema model: ``valid``; ``wrong`` (the first field of the wrong type);
#: ``prose`` (no JSON at all); ``cut`` (the JSON cut in half, finish_reason=length).
SHAPES = ("valid", "wrong", "prose", "cut")

_IN_PROMPT = re.compile(r"JSON schema:\s*(\{.*\})\s*$", re.S)


def _prompt(body: dict[str, Any]) -> str:
    for message in reversed(body.get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):
                return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
            return str(content or "")
    return ""


def schema_of(body: dict[str, Any]) -> dict[str, Any] | None:
    """The JSON schema the request asks for, if any."""
    fmt = body.get("response_format")
    if isinstance(fmt, dict):
        inner = fmt.get("json_schema")
        if isinstance(inner, dict) and isinstance(inner.get("schema"), dict):
            return dict(inner["schema"])
        if isinstance(fmt.get("schema"), dict):
            return dict(fmt["schema"])
    found = _IN_PROMPT.search(_prompt(body))
    if found:
        try:
            value = json.loads(found.group(1))
        except ValueError:
            return None
        return value if isinstance(value, dict) else None
    return None


class _Source:
    """Words and numbers of the prompt (before any schema instruction), handed out in turn."""

    def __init__(self, prompt: str) -> None:
        text = prompt.split("\n\nAnswer with one JSON object", 1)[0]
        self.words = re.findall(r"[^\W\d_][\w'-]*", text) or ["value"]
        self.numbers = [float(n) for n in re.findall(r"-?\d+(?:\.\d+)?", text)] or [3.0]
        self.w = self.n = 0
        self.size = len(text)

    def word(self) -> str:
        self.w += 1
        return str(self.words[(self.w - 1) % len(self.words)])

    def number(self) -> float:
        self.n += 1
        return self.numbers[(self.n - 1) % len(self.numbers)]


def _resolve(node: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        target: Any = root
        for part in ref[2:].split("/"):
            target = target.get(part, {}) if isinstance(target, dict) else {}
        return target if isinstance(target, dict) else {}
    return node


def _example(node: Any, root: dict[str, Any], source: _Source, depth: int = 0) -> Any:
    """A value valid for ``node``."""
    if not isinstance(node, dict) or depth > 8:
        return None
    node = _resolve(node, root)
    if "const" in node:
        return node["const"]
    if isinstance(node.get("enum"), list) and node["enum"]:
        return node["enum"][source.size % len(node["enum"])]
    for key in ("anyOf", "oneOf", "allOf"):
        options = node.get(key)
        if isinstance(options, list) and options:
            usable = [o for o in options if not (isinstance(o, dict) and o.get("type") == "null")]
            return _example((usable or options)[0], root, source, depth + 1)
    kind = node.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind is None:
        kind = "object" if "properties" in node else "string"
    if kind == "object":
        props = node.get("properties") if isinstance(node.get("properties"), dict) else {}
        return {name: _example(sub, root, source, depth + 1) for name, sub in props.items()}
    if kind == "array":
        return [_example(node.get("items", {}), root, source, depth + 1) for _ in range(2)]
    if kind == "integer":
        return int(source.number())
    if kind == "number":
        return source.number()
    if kind == "boolean":
        return source.size % 2 == 0
    if kind == "null":
        return None
    if node.get("format") == "date":
        return "2024-05-17"
    if node.get("format") == "date-time":
        return "2024-05-17T09:30:00Z"
    return source.word()


def _wrong(value: Any) -> Any:
    """The value with its first field of another type than the schema says."""
    if isinstance(value, dict) and value:
        first = next(iter(value))
        item = value[first]
        value = dict(value)
        value[first] = "not a number" if isinstance(item, (int, float)) and not isinstance(
            item, bool) else 12345
        return value
    return "not an object"


def reply_for(body: dict[str, Any], shape: str = "valid") -> tuple[str, str]:
    """The reply text and its finish reason for the schema the request carries."""
    if shape == "prose":
        return "Sure! The person you mean is called Ada, and she is 36 years old.", "stop"
    schema = schema_of(body)
    if schema is None:
        return "There is no schema in this request (no response_format, none in the prompt).", \
            "stop"
    value = _example(schema, schema, _Source(_prompt(body)))
    if shape == "wrong":
        value = _wrong(value)
    text = json.dumps(value, ensure_ascii=False, indent=1)
    if shape == "cut":
        return text[: max(1, len(text) // 2)], "length"
    return text, "stop"


def refusal(body: dict[str, Any], refuse: str) -> tuple[int, str] | None:
    """The error an endpoint that refuses ``refuse`` (``json_schema``, or ``json_object``:
    any response_format) answers this request with, or None when it takes it."""
    fmt = body.get("response_format")
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind == "json_schema" and refuse in ("json_schema", "json_object"):
        # llama-cpp-python's server, word for word (HTTP 500, a pydantic validation error).
        return 500, ("1 validation error:\n  {'type': 'literal_error', 'loc': ('body', "
                     "'response_format', 'type'), 'msg': \"Input should be 'text' or "
                     "'json_object'\", 'input': 'json_schema', 'ctx': {'expected': \"'text' "
                     "or 'json_object'\"}}")
    if kind == "json_object" and refuse == "json_object":
        return 400, "response_format is not supported by this model"
    return None
