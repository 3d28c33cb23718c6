"""Structured output: a schema spec turned into what to send and how to read the reply.

`resolve_schema(spec, namespace)` takes what ``--schema`` (or ``schema=``) names
and returns a `Schema`, or raises `SchemaError` (an `OptionError`: nothing is
sent) naming what is wrong. A spec is:

- a pydantic model class: the reply becomes an instance of it (pydantic validates);
- a dataclass or a TypedDict class: an instance of it (validated by pydantic's
  ``TypeAdapter``; a TypedDict instance is a dict);
- a JSON-schema dict: a dict (validated by ``jsonschema``);
- the concise form, a string ``"name, age int, tags list[str]"``: fields
  separated by commas (or one a line), each ``NAME [TYPE] [: description]``;
  TYPE is ``str`` (the default), ``int``, ``float``, ``bool``, ``dict`` or
  ``list[TYPE]``; a dict (validated by ``jsonschema``);
- a name (``Person``, ``models.Person``) of one of those in ``namespace``.
  A bare word is a name, never a one-field concise form (write ``"name str"``).

The API other modules use (kept small and stable; ``--each`` makes `fields`
its table's columns)::

    schema = resolve_schema("name, age int")    # or resolve_schema(Person), ("Person", ns)
    schema.name                # "Person", or "reply": the name sent with the schema
    schema.fields              # ("name", "age"): the top-level field names, in order
    schema.json_schema         # the JSON schema (a dict)
    schema.response_format("json_schema")   # the body's response_format for a mode
    schema.instruction()       # the words asking for JSON of this schema (modes without
                               # json_schema put them in the prompt)
    schema.parse(text, finish_reason=None)  # the object, or raises InvalidOutput
    schema.as_fields(value)    # {field: value} of a parsed object

`InvalidOutput` carries ``problem`` (one sentence naming the first problem) and
``text`` (the reply as it came). `MODES` are the ways an endpoint takes a schema.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, cast

from .concise import ConciseError, parse_concise
from .errors import InvalidOutput, SchemaError

__all__ = ["Schema", "resolve_schema", "MODES",
           "parse_concise"]

#: How an endpoint takes a schema: ``json_schema`` (OpenAI's structured outputs, strict where
#: the schema allows), ``json_object`` (JSON mode with the schema beside it, as
#: llama-cpp-python constrains by grammar; the schema also goes in the prompt), ``none`` (no
#: response_format: the schema goes in the prompt only).
MODES = ("json_schema", "json_object", "none")

_KINDS_HINT = ("a schema is a pydantic model, a dataclass, a TypedDict or a JSON-schema dict "
               "from the notebook, or the concise form in quotes: \"name, age int, tags "
               "list[str]\"")
_DOTTED = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*")
# Keywords one of which a JSON schema has at its root (a data dict has none of them).
_SCHEMA_WORDS = {"type", "properties", "$ref", "$defs", "definitions", "anyOf", "oneOf",
                 "allOf", "enum", "const", "items", "$schema"}


@dataclass(frozen=True)
class Schema:
    """A resolved schema: what to send, and how to turn a reply into a value."""

    name: str
    json_schema: dict[str, Any]
    fields: tuple[str, ...]
    kind: str  # pydantic, dataclass, typeddict, dict, concise
    target: Any = field(default=None, repr=False, compare=False)  # the class given, if any
    _validate: Callable[[Any], Any] = field(default=lambda v: v, repr=False, compare=False)

    # -- what to send -------------------------------------------------------------
    @property
    def strict_schema(self) -> dict[str, Any] | None:
        """The schema as OpenAI's strict mode takes it, or None when strict would change its
        meaning (an optional field, a default, open additional properties)."""
        return _strict(self.json_schema)

    def response_format(self, mode: str = "json_schema") -> dict[str, Any] | None:
        """The ``response_format`` body field for a mode (`MODES`); None for ``none``."""
        if mode == "json_schema":
            strict = self.strict_schema
            spec: dict[str, Any] = {"name": self.name,
                                    "schema": strict if strict is not None else self.json_schema,
                                    "strict": strict is not None}
            return {"type": "json_schema", "json_schema": spec}
        if mode == "json_object":
            # llama-cpp-python turns "schema" into a grammar; others ignore it.
            return {"type": "json_object", "schema": self.json_schema}
        if mode == "none":
            return None
        raise ValueError(f"unknown structured output mode {mode!r}: one of {', '.join(MODES)}")

    def instruction(self) -> str:
        """The words that ask for this schema, for modes where the body cannot."""
        compact = json.dumps(self.json_schema, separators=(",", ":"), ensure_ascii=False)
        return ("Answer with one JSON object and nothing else (no prose, no code fence), "
                f"matching this JSON schema:\n{compact}")

    # -- what came back -----------------------------------------------------------------
    def parse(self, text: str, finish_reason: str | None = None) -> Any:
        """The reply as a value of this schema; `InvalidOutput` naming the first problem."""
        cut = finish_reason == "length"
        try:
            data = _load_json(text)
        except ValueError as exc:
            if cut:
                raise InvalidOutput(_CUT, text) from None
            raise InvalidOutput(f"the reply is not JSON ({exc}); {self._called} asks for a JSON "
                                "object", text) from None
        try:
            return self._validate(data)
        except InvalidOutput:
            raise
        except Exception as exc:  # noqa: BLE001 - pydantic's or jsonschema's complaint
            if cut:
                raise InvalidOutput(_CUT, text) from None
            raise InvalidOutput(f"the reply's JSON does not match {self._called}: "
                                f"{_first_problem(exc)}", text) from None

    @property
    def _called(self) -> str:
        return "the schema" if self.name == "reply" else f"the schema {self.name}"

    def as_fields(self, value: Any) -> dict[str, Any]:
        """A parsed value as ``{field: value}`` over `fields` (a missing one is None)."""
        if isinstance(value, dict):
            return {name: value.get(name) for name in self.fields}
        return {name: getattr(value, name, None) for name in self.fields}


_CUT = ("the reply was cut at the token limit (finish_reason=length) before its JSON was "
        "complete: raise --max-tokens")


def _load_json(text: str) -> Any:
    """The JSON of a reply: as it is, else inside a code fence, else from its first ``{`` to
    its last ``}`` (a model told in words only may wrap it in prose)."""
    stripped = text.strip()
    try:
        return json.loads(stripped)
    except ValueError as first:
        fence = re.search(r"```[\w-]*\n(.*?)```", stripped, re.S)
        candidates = [fence.group(1)] if fence else []
        start, end = stripped.find("{"), stripped.rfind("}")
        if 0 <= start < end:
            candidates.append(stripped[start:end + 1])
        for candidate in candidates:
            try:
                return json.loads(candidate)
            except ValueError:
                continue
        error = first if isinstance(first, json.JSONDecodeError) else None
        if error is None:
            raise
        where = f"line {error.lineno} column {error.colno}"
        raise ValueError(f"{error.msg} at {where}" if stripped else "it is empty") from None


def _path(parts: Any) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return f"at {out}" if out else "at the top level"


def _first_problem(exc: Exception) -> str:
    """One sentence for the first thing a validator found wrong (and how many more)."""
    errors = getattr(exc, "errors", None)
    if callable(errors):  # pydantic's ValidationError
        found = errors()
        first = found[0]
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        return f"{_path(first.get('loc', ()))}: {first.get('msg', exc)}{more}"
    path = getattr(exc, "absolute_path", None)
    message = getattr(exc, "message", None)
    if path is not None and message is not None:  # jsonschema's ValidationError
        return f"{_path(path)}: {message}"
    return str(exc)


# -- strict mode -------------------------------------------------------------------------

def _strict(schema: dict[str, Any]) -> dict[str, Any] | None:
    """OpenAI's strict structured outputs: every object closed, every property required,
    no defaults. A schema that needs more to get there is sent as it is, not strict."""
    if schema.get("type") != "object":
        return None
    out = copy.deepcopy(schema)
    ok = True

    def walk(node: Any) -> None:
        nonlocal ok
        if isinstance(node, list):
            for item in node:
                walk(item)
            return
        if not isinstance(node, dict):
            return
        if "default" in node:
            ok = False
        props = node.get("properties")
        if isinstance(props, dict) or node.get("type") == "object":
            props = props if isinstance(props, dict) else {}
            if set(props) - set(node.get("required", [])):
                ok = False
            extra = node.get("additionalProperties", False)
            if extra is not False:
                ok = False
            node["additionalProperties"] = False
            for sub in props.values():
                walk(sub)
        for key, sub in node.items():
            if key not in ("properties", "default", "const", "enum", "examples"):
                walk(sub)

    walk(out)
    return out if ok else None


# -- resolving a spec ----------------------------------------------------------------------

def _short(value: Any) -> str:
    shown = repr(value)
    return shown if len(shown) <= 40 else shown[:37] + "..."


def _what(value: Any) -> str:
    """A value as a message names it."""
    if isinstance(value, type):
        return f"the class {value.__name__}"
    if callable(value) and hasattr(value, "__name__"):
        return f"a function ({value.__name__})"
    kind = type(value).__name__
    return f"{'an' if kind[0] in 'aeiou' else 'a'} {kind} ({_short(value)})"


def _safe_name(text: str) -> str:
    """A name OpenAI takes for a schema: letters, digits, _ and -, at most 64."""
    name = re.sub(r"[^A-Za-z0-9_-]", "_", text)[:64]
    return name or "reply"


def _top_fields(schema: dict[str, Any]) -> tuple[str, ...]:
    node = schema
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        for part in ref[2:].split("/"):
            node = node.get(part, {}) if isinstance(node, dict) else {}
    props = node.get("properties") if isinstance(node, dict) else None
    return tuple(props) if isinstance(props, dict) else ()


def _is_typeddict(value: Any) -> bool:
    import typing_extensions

    return bool(typing_extensions.is_typeddict(value))


def _portable_typeddict(value: type) -> Any:
    """A ``typing.TypedDict`` as ``typing_extensions`` writes it: pydantic refuses the former
    before Python 3.12, and a notebook imports it from ``typing``."""
    import typing

    import typing_extensions

    hints = typing.get_type_hints(value, include_extras=True)
    required = getattr(value, "__required_keys__", frozenset(hints))
    fields = {name: hint if name in required else typing_extensions.NotRequired[hint]
              for name, hint in hints.items()}
    return typing_extensions.TypedDict(value.__name__, fields)  # type: ignore[operator]


def _from_class(value: type, label: str) -> Schema:
    import pydantic

    if issubclass(value, pydantic.BaseModel):
        model = value
        return Schema(_safe_name(value.__name__), model.model_json_schema(),
                      tuple(model.model_fields), "pydantic", value, model.model_validate)
    if dataclasses.is_dataclass(value) or _is_typeddict(value):
        kind = "dataclass" if dataclasses.is_dataclass(value) else "typeddict"
        adapter: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(
            _portable_typeddict(value) if kind == "typeddict" else value)
        try:
            schema = adapter.json_schema()
        except pydantic.PydanticUserError as exc:
            raise SchemaError(f"--schema {label}: {value.__name__} has no JSON schema "
                              f"({exc})") from None
        names = tuple(f.name for f in dataclasses.fields(cast(Any, value))) if kind == "dataclass" \
            else _top_fields(schema)
        return Schema(_safe_name(value.__name__), schema, names, kind, value,
                      adapter.validate_python)
    raise SchemaError(f"--schema {label}: {_what(value)} is neither a pydantic model, a "
                      f"dataclass nor a TypedDict; {_KINDS_HINT}")


def _from_dict(value: dict[str, Any], label: str, name: str) -> Schema:
    import jsonschema  # type: ignore[import-untyped, unused-ignore]

    if not _SCHEMA_WORDS & set(value):
        raise SchemaError(f"--schema {label}: the dict has none of a JSON schema's keys (type, "
                          f"properties, ...): it looks like data, not a schema; {_KINDS_HINT}")
    validator_class = jsonschema.validators.validator_for(value)
    try:
        validator_class.check_schema(value)
    except jsonschema.SchemaError as exc:
        raise SchemaError(f"--schema {label}: not a valid JSON schema "
                          f"({_path(exc.absolute_path)}: {exc.message})") from None
    validator = validator_class(value)

    def validate(data: Any) -> Any:
        error = jsonschema.exceptions.best_match(validator.iter_errors(data))
        if error is not None:
            raise error
        return data

    title = value.get("title")
    return Schema(_safe_name(title if isinstance(title, str) else name), copy.deepcopy(value),
                  _top_fields(value), "dict", None, validate)


def _lookup(spec: str, namespace: Mapping[str, Any]) -> Any:
    head, *rest = spec.split(".")
    if head not in namespace:
        raise SchemaError(f"--schema {spec}: no variable named {head} in the notebook; "
                          f"{_KINDS_HINT}")
    value = namespace[head]
    for depth, attr in enumerate(rest, 1):
        try:
            value = getattr(value, attr)
        except AttributeError:
            raise SchemaError(f"--schema {spec}: {'.'.join([head, *rest[:depth - 1]])} has no "
                              f"attribute {attr}") from None
    return value


def resolve_schema(spec: Any, namespace: Mapping[str, Any] | None = None,
                   label: str | None = None) -> Schema:
    """The `Schema` a spec means (see the module docstring); `SchemaError` if none.

    A string that is a (dotted) name is looked up in ``namespace`` when one is given
    (``--schema Person``); any other string is the concise form.
    """
    if isinstance(spec, Schema):
        return spec
    label = label or (spec if isinstance(spec, str) else getattr(spec, "__name__", None)
                      or _short(spec))
    if isinstance(spec, str):
        text = spec.strip()
        if not text:
            raise SchemaError(f"--schema got an empty spec; {_KINDS_HINT}")
        if namespace is not None and _DOTTED.fullmatch(text):
            value = _lookup(text, namespace)
            if isinstance(value, str):
                return _concise(value, text)
            return resolve_schema(value, None, text)
        return _concise(text, "reply")
    if isinstance(spec, dict):
        return _from_dict(spec, label, label if _DOTTED.fullmatch(label) else "reply")
    if isinstance(spec, type):
        return _from_class(spec, label)
    if dataclasses.is_dataclass(spec):
        raise SchemaError(f"--schema {label}: a dataclass instance, not the class: pass "
                          f"{type(spec).__name__} itself")
    raise SchemaError(f"--schema {label}: {_what(spec)} is not a schema; {_KINDS_HINT}")


def _concise(text: str, name: str) -> Schema:
    try:
        schema = parse_concise(text)
    except ConciseError as exc:
        raise SchemaError(str(exc)) from None
    resolved = _from_dict(schema, text, name)
    return dataclasses.replace(resolved, kind="concise")
