"""Typed doors to the untyped parts of IPython the shell uses.

IPython's ``magic_arguments`` decorators, its argument parser and its completion
matcher decorator carry no annotations, and its ``line_magic`` says it returns either
the function or a decorator: under ``mypy --strict`` every magic they decorate would
become untyped (or uncallable). The shell calls these wrappers instead, so the magics
and everything they call are checked; the untyped calls happen here, through `Any`.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, Callable, TypeVar

from IPython.core import completer as _completer
from IPython.core import magic as _magic
from IPython.core import magic_arguments as _magic_arguments
from IPython.core.error import UsageError

__all__ = ["line_magic", "line_cell_magic", "Arg", "arguments", "parse_arguments",
           "context_matcher", "in_kernel"]

F = TypeVar("F", bound=Callable[..., Any])

# The untyped modules, reached through Any: calls on them are not "untyped calls".
_ARGS: Any = _magic_arguments
_COMPLETER: Any = _completer
_MAGIC: Any = _magic


def line_magic(method: F) -> F:
    """``@line_magic``: the method is the line magic of its name."""
    marked: F = _MAGIC.line_magic(method)
    return marked


def line_cell_magic(method: F) -> F:
    """``@line_cell_magic``: the method is the line and the cell magic of its name."""
    marked: F = _MAGIC.line_cell_magic(method)
    return marked


class Arg:
    """One ``argparse`` argument of a line magic: the flags and options of
    ``ArgumentParser.add_argument``."""

    def __init__(self, *flags: str, **options: Any) -> None:
        self.flags = flags
        self.options = options


def arguments(*args: Arg) -> Callable[[F], F]:
    """``@magic_arguments()`` with one ``@argument(...)`` per `Arg`, in the order given: the
    magic's parser, and its docstring (``%magic?``) made from it."""
    def decorate(function: F) -> F:
        for arg in reversed(args):  # as stacked decorators apply: the last one first
            function = _ARGS.argument(*arg.flags, **arg.options)(function)
        decorated: F = _ARGS.magic_arguments()(function)
        return decorated
    return decorate


def parse_arguments(magic: Callable[..., Any], line: str) -> argparse.Namespace:
    """The magic's arguments parsed from ``line``; a bad one is a UsageError, and ``-h``
    (on which argparse would exit) shows the magic's help as one."""
    try:
        parsed: argparse.Namespace = _ARGS.parse_argstring(magic, line)
    except UsageError:
        raise
    except SystemExit:
        raise UsageError(magic.__doc__ or "") from None
    return parsed


def context_matcher() -> Callable[[F], F]:
    """IPython's ``@context_matcher()`` (the completion matcher API v2), typed."""
    decorate: Callable[[F], F] = _COMPLETER.context_matcher()
    return decorate


def in_kernel(shell: object) -> bool:
    """Whether the shell is a Jupyter kernel's: ipykernel's ZMQInteractiveShell or a subclass
    (Colab's and Spyder's are). Terminal IPython never imports ipykernel, so neither do we."""
    zmqshell = sys.modules.get("ipykernel.zmqshell")
    return zmqshell is not None and isinstance(shell, zmqshell.ZMQInteractiveShell)
