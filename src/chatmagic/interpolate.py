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
"""

from __future__ import annotations

import ast
import inspect
import os
import re
import types
from collections import OrderedDict
from typing import Any, Mapping

from . import scrub
from .errors import OptionError

__all__ = ["interpolate"]

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


def interpolate(text: str, namespace: Mapping[str, Any]) -> str:
    """The prompt with every resolvable ``{field}`` replaced by ``str(value)``.

    Raises OptionError when a field would put a key (or the environment) in the prompt.
    """
    scrub.register_environ()  # a key exported in this very cell counts too

    def replace(match: re.Match[str]) -> str:
        token = match.group()
        if token == "{{":
            return "{"
        if token == "}}":
            return "}"
        value = _resolve(match.group("path"), namespace)
        if value is _MISSING:
            return token
        shown = str(value)
        _refuse_secrets(token, value, shown)
        return shown

    return _FIELD.sub(replace, text)
