"""Fill ``{name}`` fields of a prompt from the notebook namespace.

Only names, plain attributes and items of built-in containers are looked up
(``{x}``, ``{cfg.name}``, ``{In[3]}``, ``{Out[3]}``, ``{cfg["key"]}``,
``{arr.shape}``); nothing is evaluated and no code of the user's objects runs
during the lookup: a property, a ``__getattr__`` hook or a custom
``__getitem__`` (a pandas ``df.shape`` or ``df["a"]``) is not called, and such
a field is left exactly as written, as is a field that does not resolve, a
private name, or a method (whose repr is no content). ``{{`` and ``}}`` always
stand for literal braces.

Secrets are refused, not sent: ``{os.environ}`` and any value whose text holds
a known API key raise an OptionError that names the field.

Notebook context (`chatmagic.core.context`): given an ErrorLog, ``{Err}`` is the last
error a cell raised and ``{Err[N]}`` the one cell N raised (keys in it masked);
with no such error the prompt is refused, saying so, rather than sent with a
question about nothing. A pandas DataFrame or Series or a numpy array is
written compactly, and any field longer than ``max_field_chars`` is cut, with a
note in the text; `fill` says which fields were cut.
"""

from __future__ import annotations

import ast
import inspect
import os
import re
import types
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Mapping

from . import scrub
from .context import ErrorLog, compact, cut
from .errors import OptionError

__all__ = ["interpolate", "fill", "field_names", "Filled", "Cut", "MAX_FIELD_CHARS"]

#: Default longest field (characters); longer ones are cut, saying so.
MAX_FIELD_CHARS = 4000

_FIELD = re.compile(
    r"\{\{|\}\}|\{(?P<path>[A-Za-z_]\w*(?:\.[A-Za-z_]\w*|\[[^\[\]{}\n]+\])*)\}")
_STEP = re.compile(r"\.(?P<attr>[A-Za-z_]\w*)|\[(?P<index>[^\[\]]+)\]")
_MISSING = object()
# Exact types whose item lookup is C code of their own (no __missing__, no override).
_CONTAINERS = (dict, list, tuple, str, bytes, OrderedDict, types.MappingProxyType)
# Descriptors implemented in C for plain slots and fields (``__slots__``, numpy's shape).
_PLAIN_DESCRIPTORS = (types.MemberDescriptorType, types.GetSetDescriptorType)


def _attribute(value: Any, name: str) -> Any:
    """A plain attribute, found without running any of the object's code; else _MISSING."""
    try:
        found = inspect.getattr_static(value, name)
    except AttributeError:
        return _MISSING  # includes what only a __getattr__ hook would make up
    if isinstance(found, _PLAIN_DESCRIPTORS):
        return found.__get__(value, type(value))
    if hasattr(type(found), "__get__"):
        return _MISSING  # a property, a method, a classmethod: code, not a value
    return found


def _item(value: Any, index: str) -> Any:
    if type(value) not in _CONTAINERS:
        return _MISSING
    return value[ast.literal_eval(index.strip())]


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
                value = _attribute(value, step.group("attr"))
            else:
                value = _item(value, step.group("index"))
        except Exception:  # noqa: BLE001 - any failed lookup leaves the field as written
            return _MISSING
    if inspect.isroutine(value) or inspect.isclass(value):
        return _MISSING  # "<bound method ...>" is no content: leave the field as written
    return value


def _refuse_secrets(token: str, value: Any, text: str) -> None:
    if value is os.environ or isinstance(value, type(os.environ)):
        raise OptionError(f"{token} is the process environment, which holds API keys; it is "
                          "not sent. Name the variables you mean, or write "
                          f"{{{token}}} to send the braces.")
    key = scrub.contains_key(text)
    if key is not None:
        raise OptionError(f"{token} holds an API key ({scrub.mask(key)}); nothing was sent. "
                          f"Leave the key out of the prompt, or write {{{token}}} to send "
                          "the braces.")


_ERR = re.compile(r"Err(?:\[\s*(?P<count>\d+)\s*\])?")


def _error(path: str, errors: ErrorLog) -> str | None:
    """The text of ``{Err}`` / ``{Err[N]}``; None for another path (``{Err.x}``)."""
    match = _ERR.fullmatch(path)
    if match is None:
        return None
    seen = errors.cells()
    raised = (f"errors were raised by cell{'s' if len(seen) > 1 else ''} "
              f"{', '.join(map(str, seen))}" if seen else "no cell has raised an error yet")
    if match.group("count") is None:
        last = errors.last()
        if last is None:
            raise OptionError(f"{{{path}}}: {raised}; nothing was sent. Write {{{{{path}}}}} "
                              "to send the braces.")
        count, text = last
    else:
        count = int(match.group("count"))
        found = errors.get(count)
        if found is None:
            raise OptionError(f"{{{path}}}: cell {count} raised no error ({raised}); nothing "
                              "was sent.")
        text = found
    return scrub.scrub(f"Cell In[{count}] raised {text}")


@dataclass(frozen=True)
class Cut:
    """A field cut to ``max_field_chars``: ``shown`` of its ``total`` characters."""

    field: str
    shown: int
    total: int


@dataclass(frozen=True)
class Filled:
    """An interpolated prompt, and the fields that were cut on the way."""

    text: str
    cut: list[Cut] = field(default_factory=list)


def fill(text: str, namespace: Mapping[str, Any], *, errors: ErrorLog | None = None,
         max_field_chars: int = MAX_FIELD_CHARS, register: bool = True) -> Filled:
    """The prompt with every resolvable ``{field}`` replaced by its value's text.

    The text is `context.compact`'s for a DataFrame, Series or array, ``str(value)``
    otherwise, cut to ``max_field_chars`` (0: never). With ``errors``, ``Err`` is
    chatmagic's name for the cells' errors (a notebook variable of that name is not
    used). Raises OptionError when a field would put a key (or the environment) in the
    prompt, or names an error no cell raised. ``register`` False: the caller has made the
    environment's keys known already (one template filled for many rows).
    """
    if register:
        scrub.register_environ()  # a key exported in this very cell counts too
    cuts: dict[str, Cut] = {}

    def replace(match: re.Match[str]) -> str:
        token = match.group()
        if token == "{{":
            return "{"
        if token == "}}":
            return "}"
        path = match.group("path")
        shown = _error(path, errors) if errors is not None else None
        if shown is None:
            value = _resolve(path, namespace)
            if value is _MISSING:
                return token
            shown = compact(value)
            if shown is None:
                shown = str(value)
            # The whole text is checked, not the part kept: half a key is a leak too.
            _refuse_secrets(token, value, shown)
        bounded = cut(shown, max_field_chars)
        if bounded != shown:
            cuts.setdefault(token, Cut(token, max_field_chars, len(shown)))
        return bounded

    return Filled(_FIELD.sub(replace, text), list(cuts.values()))


def interpolate(text: str, namespace: Mapping[str, Any], *, errors: ErrorLog | None = None,
                max_field_chars: int = MAX_FIELD_CHARS) -> str:
    """`fill`'s text alone."""
    return fill(text, namespace, errors=errors, max_field_chars=max_field_chars).text


def field_names(text: str) -> list[str]:
    """The names the ``{fields}`` of ``text`` start with, in order, each once (``{a.b}``
    and ``{a[0]}`` give ``a``; ``{{`` escapes are not fields)."""
    names: dict[str, None] = {}
    for match in _FIELD.finditer(text):
        path = match.group("path")
        if path:
            head = re.match(r"[A-Za-z_]\w*", path)
            assert head is not None
            names[head.group()] = None
    return list(names)
