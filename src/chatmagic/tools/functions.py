"""Python functions as tools a model may call: their JSON schema, and running one call.

`describe` turns a function into a `Tool`: its name, the first paragraph of
its docstring as the description, and a JSON schema of its parameters made
from the type hints (int, float, str, bool, lists, dicts, Literal, Optional,
pydantic models; pydantic writes the schema) with each parameter's own
docstring line where one is written (Google, NumPy or Sphinx style). A
function that cannot be described is refused naming the parameter.

A `ToolCall` is what the model asked for; `check` tells whether it may run
(a tool that was not offered, arguments that are not JSON or do not fit the
schema are answered to the model instead; the fit, which runs the user's
pydantic validators, is checked only once the call is allowed), `execute` runs it in the calling
thread and turns whatever happens into the text the model gets back: the
return value as JSON when it serialises, else its ``repr``; an exception as
its type and message. Nothing here asks anyone: allowing a call is the
caller's (a cell's Run / Skip buttons, a terminal prompt, ``--yes``, the
Python API's ``allow=``).
"""

from __future__ import annotations

import inspect
import json
import re
import typing
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

from ..core.errors import ToolError
from ..core.names import did_you_mean

__all__ = ["Tool", "ToolCall", "ToolResult", "describe", "resolve", "check",
           "execute", "not_run", "assistant_message", "MAX_RESULT_CHARS"]

#: The most characters of one result sent to the model (a huge repr would fill its context).
MAX_RESULT_CHARS = 100_000


@dataclass(frozen=True)
class Tool:
    """A function offered to the model, with the schema it is called by."""

    name: str
    function: Callable[..., Any]
    description: str
    parameters: dict[str, Any]
    #: The pydantic model of the parameters: what the model's arguments are checked with.
    model: Any

    def spec(self) -> dict[str, Any]:
        """The entry of the request's ``tools`` list."""
        function: dict[str, Any] = {"name": self.name, "parameters": self.parameters}
        if self.description:
            function["description"] = self.description
        return {"type": "function", "function": function}


@dataclass(frozen=True)
class ToolCall:
    """One call the model asked for: its id, the tool's name, the arguments as JSON text."""

    id: str
    name: str
    arguments: str

    def message(self) -> dict[str, Any]:
        """The call as an assistant message's ``tool_calls`` entry."""
        return {"id": self.id, "type": "function",
                "function": {"name": self.name, "arguments": self.arguments}}

    @classmethod
    def from_message(cls, entry: Mapping[str, Any]) -> "ToolCall":
        function = entry.get("function") or {}
        return cls(str(entry.get("id") or ""), str(function.get("name") or ""),
                   str(function.get("arguments") or ""))


@dataclass(frozen=True)
class ToolResult:
    """What one call gave back, as the model will read it.

    ``outcome``: ``ok``, ``error`` (the function raised), ``skipped`` (the user said
    no), ``refused`` (nobody could be asked), ``unknown`` (not a tool offered),
    ``invalid`` (arguments not JSON or not fitting the schema), ``not-run`` (the
    round limit, an interrupt).
    """

    call: ToolCall
    content: str
    outcome: str = "ok"

    def message(self) -> dict[str, Any]:
        """The ``tool`` message that answers the call."""
        return {"role": "tool", "tool_call_id": self.call.id, "content": self.content}


def assistant_message(text: str, calls: Iterable[ToolCall]) -> dict[str, Any]:
    """The assistant message of a round that called tools (its text, if any, kept)."""
    return {"role": "assistant", "content": text or None,
            "tool_calls": [call.message() for call in calls]}


# -- describing a function -------------------------------------------------------------

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # what OpenAI accepts as a function name
_SECTION = re.compile(r"^\s*(Args|Arguments|Parameters|Params|Keyword Args|Returns|Return|"
                      r"Yields|Raises|Examples?|Notes?|See Also)\s*:?\s*$")


_PARAMETER_SECTIONS = ("Args", "Arguments", "Parameters", "Params", "Keyword Args")


def _description(doc: str) -> str:
    """The docstring's first paragraph, on one line."""
    first = re.split(r"\n\s*\n", doc.strip(), maxsplit=1)[0]
    if _SECTION.match(first.splitlines()[0] if first else ""):
        return ""
    return " ".join(first.split())


def _parameter_docs(doc: str) -> dict[str, str]:
    """Each parameter's description in a Google, NumPy or Sphinx style docstring."""
    found: dict[str, str] = {}
    for match in re.finditer(r":param\s+(?:[^:\s]+\s+)?(\w+)\s*:\s*(.+(?:\n(?!\s*:)\s+.+)*)",
                             doc):
        found[match.group(1)] = " ".join(match.group(2).split())
    lines = doc.expandtabs().splitlines()
    section, numpy = "", False
    current: str | None = None
    indent = 0
    for i, line in enumerate(lines):
        stripped = line.strip()
        underline = i + 1 < len(lines) and set(lines[i + 1].strip()) == {"-"}
        heading = _SECTION.match(line)
        if heading and (stripped.endswith(":") or underline):
            section, numpy, current = heading.group(1), underline, None
            continue
        if not stripped or set(stripped) == {"-"} or section not in _PARAMETER_SECTIONS:
            continue
        depth = len(line) - len(line.lstrip())
        if current is not None and depth > indent:  # the description goes on
            found[current] = " ".join(filter(None, [found.get(current, ""), stripped]))
            continue
        # NumPy: "name : type", the description below; Google: "name (type): description".
        entry = (re.match(r"^\*{0,2}(\w+)\s*(?::.*)?()$", stripped) if numpy else
                 re.match(r"^\*{0,2}(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$", stripped))
        if entry:
            current, indent = entry.group(1), depth
            found[current] = entry.group(2).strip()
    return {name: text for name, text in found.items() if text}


def _strip_titles(schema: Any) -> Any:
    """pydantic's schema without the ``title`` it puts on everything (noise to a model)."""
    if isinstance(schema, dict):
        return {key: _strip_titles(value) for key, value in schema.items()
                if not (key == "title" and isinstance(value, str))}
    if isinstance(schema, list):
        return [_strip_titles(value) for value in schema]
    return schema


def describe(function: Any, name: str | None = None) -> Tool:
    """The tool a function makes, or a `ToolError` saying why it cannot be one."""
    import pydantic

    label = name or getattr(function, "__name__", repr(function))
    if not callable(function):
        raise ToolError(f"--tools: {label} is of type {type(function).__name__}, not a "
                        "function")
    tool_name = str(name or getattr(function, "__name__", ""))
    if not _NAME.match(tool_name or ""):
        raise ToolError(f"--tools: {label!r} cannot be a tool name (letters, digits, _ and -, "
                        "at most 64): wrap the callable in a def with such a name")
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        raise ToolError(f"--tools: {tool_name} has no signature Python can read "
                        "(a builtin?): wrap it in a def with typed parameters") from None
    try:
        hints = typing.get_type_hints(function, include_extras=True)
    except Exception as exc:  # noqa: BLE001 - a hint naming something undefined, say so
        raise ToolError(f"--tools: {tool_name}'s type hints cannot be read ({exc})") from None
    doc = inspect.getdoc(function) or ""
    docs = _parameter_docs(doc)
    fields: dict[str, Any] = {}
    for parameter in signature.parameters.values():
        where = f"--tools: {tool_name}'s parameter {parameter.name}"
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            star = "*" if parameter.kind == parameter.VAR_POSITIONAL else "**"
            raise ToolError(f"{where} ({star}{parameter.name}) cannot be described to a model: "
                            "name each parameter")
        if parameter.kind == parameter.POSITIONAL_ONLY:
            raise ToolError(f"{where} is positional-only: a model passes arguments by name")
        hint = hints.get(parameter.name, Any)
        default = ... if parameter.default is parameter.empty else parameter.default
        fields[parameter.name] = (hint, pydantic.Field(default, description=docs.get(
            parameter.name)))
    try:
        model = pydantic.create_model(f"{tool_name}_arguments",
                                      __config__=pydantic.ConfigDict(extra="forbid",
                                                                     arbitrary_types_allowed=False),
                                      **fields)
        schema = model.model_json_schema()
    except Exception as exc:  # noqa: BLE001 - find the parameter pydantic could not describe
        raise ToolError(f"--tools: {tool_name}'s parameter {_culprit(fields)} has a type that "
                        f"has no JSON schema ({type(exc).__name__}): use int, float, str, bool, "
                        "lists, Literal, Optional or a pydantic model") from None
    parameters = _strip_titles(schema)
    parameters.setdefault("properties", {})
    return Tool(tool_name, function, _description(doc), parameters, model)


def _culprit(fields: dict[str, Any]) -> str:
    """The first parameter whose type alone has no JSON schema."""
    import pydantic

    for name, (hint, _) in fields.items():
        try:
            pydantic.TypeAdapter(hint).json_schema()
        except Exception:  # noqa: BLE001 - this one
            return f"{name} ({getattr(hint, '__name__', hint)})"
    return "?"


def offerable(namespace: Mapping[str, Any]) -> list[str]:
    """The names ``--tools`` could take in a namespace: its functions, and its lists of
    functions (not those whose name starts with ``_``, nor IPython's own)."""
    def functions(value: Any) -> bool:
        return inspect.isfunction(value) or inspect.ismethod(value) or inspect.isbuiltin(value)

    return [name for name, value in namespace.items()
            if not name.startswith("_") and name != "get_ipython"
            and (functions(value) or isinstance(value, (list, tuple)) and bool(value)
                 and all(functions(v) for v in value))]


def resolve(names: str | Iterable[Any], namespace: Mapping[str, Any]) -> list[Tool]:
    """The tools ``--tools`` names: comma-separated names of functions in the namespace, or
    of a variable holding a list of functions; or, from Python, the functions themselves."""
    found: list[Tool] = []
    if isinstance(names, str):
        for word in (w.strip() for w in names.split(",")):
            if not word:
                raise ToolError(f"--tools has an empty name in {names!r}: write F1,F2,...")
            if word not in namespace:
                hint = did_you_mean(word, offerable(namespace))
                raise ToolError(f"--tools: {word} is not defined in the notebook (run the "
                                f"cell that defines it first).{hint}")
            value = namespace[word]
            if isinstance(value, (list, tuple)):
                for i, item in enumerate(value):
                    if not callable(item):
                        raise ToolError(f"--tools: {word}[{i}] is of type "
                                        f"{type(item).__name__}, not a function")
                    found.append(describe(item))
            elif not callable(value):
                raise ToolError(f"--tools: {word} is of type {type(value).__name__}, not a "
                                "function (nor a list of functions)")
            else:
                found.append(describe(value))
    else:
        found = [item if isinstance(item, Tool) else describe(item) for item in names]
    seen: set[str] = set()
    for tool in found:
        if tool.name in seen:
            raise ToolError(f"--tools names two tools called {tool.name}")
        seen.add(tool.name)
    return found


# -- one call -----------------------------------------------------------------------------

def check(call: ToolCall, tools: Mapping[str, Tool], validate: bool = True) -> ToolResult | None:
    """None when the call may run; else the result that tells the model what was wrong.
    ``validate=False``: only that the tool was offered and the arguments are a JSON object,
    not the parameters' pydantic validation, which may run the user's own validators (code:
    it runs only once the call is allowed)."""
    tool = tools.get(call.name)
    if tool is None:
        offered = ", ".join(tools) or "none"
        return ToolResult(call, f"Error: there is no tool named {call.name!r}; the tools are: "
                                f"{offered}. Nothing was run.", "unknown")
    try:
        arguments = json.loads(call.arguments or "{}")
    except (ValueError, RecursionError) as exc:
        return ToolResult(call, f"Error: the arguments are not JSON ({exc}). Nothing was run; "
                                "call it again with a JSON object.", "invalid")
    if not isinstance(arguments, dict):
        return ToolResult(call, "Error: the arguments must be a JSON object of the parameters. "
                                "Nothing was run.", "invalid")
    if not validate:
        return None
    fitted = _fit(call, tool, arguments)
    return fitted if isinstance(fitted, ToolResult) else None


def _fit(call: ToolCall, tool: Tool, arguments: dict[str, Any]) -> Any:
    """The arguments validated by the tool's pydantic model (its validators run here), or
    the result saying why they do not fit."""
    import pydantic

    try:
        return tool.model.model_validate(arguments)
    except pydantic.ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'arguments'}: {e['msg']}"
                             for e in exc.errors())
        return ToolResult(call, f"Error: the arguments do not fit {call.name}'s parameters "
                                f"({problems}). Nothing was run.", "invalid")


def execute(call: ToolCall, tools: Mapping[str, Tool]) -> ToolResult:
    """Run one allowed call in this thread (its arguments checked first, once); what it
    returned or raised, as the model will read it. Only a KeyboardInterrupt goes through."""
    refused = check(call, tools, validate=False)
    if refused is not None:
        return refused
    tool = tools[call.name]
    validated = _fit(call, tool, json.loads(call.arguments or "{}"))
    if isinstance(validated, ToolResult):
        return validated
    # The validated values (a pydantic model parameter arrives as that model), only those
    # given: the function's own defaults stand for the rest.
    arguments = {name: getattr(validated, name) for name in validated.model_fields_set}
    try:
        value = tool.function(**arguments)
    except Exception as exc:  # noqa: BLE001 - the model is told, so it can recover
        return ToolResult(call, f"Error: {type(exc).__name__}: {exc}"[:MAX_RESULT_CHARS],
                          "error")
    return ToolResult(call, _as_text(value))


def _as_text(value: Any) -> str:
    """A return value for the model: JSON when it serialises (pydantic models too), else
    its repr; cut at `MAX_RESULT_CHARS`, saying so."""
    import pydantic

    try:
        text = (value if isinstance(value, str) else
                json.dumps(pydantic.TypeAdapter(Any).dump_python(value, mode="json")
                           if isinstance(value, pydantic.BaseModel) else value,
                           ensure_ascii=False, default=_refuse))
    except (TypeError, ValueError, RecursionError):
        text = repr(value)
    if len(text) > MAX_RESULT_CHARS:
        text = (f"{text[:MAX_RESULT_CHARS]}... [cut: {len(text) - MAX_RESULT_CHARS:,} more "
                "characters]")
    return text


def _refuse(value: Any) -> Any:
    raise TypeError(f"{type(value).__name__} is not JSON")


def not_run(call: ToolCall, why: str, outcome: str = "not-run") -> ToolResult:
    """The result of a call that did not run, saying why (the model reads it)."""
    return ToolResult(call, f"Not run: {why}", outcome)
