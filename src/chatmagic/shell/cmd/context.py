"""What a ``%%chat`` cell needs of the shell besides the session and the namespace.

The magic takes this snapshot as the cell starts (`CellContext`) and hands it to
the cell's functions (`chat`, `each`): where the cell draws and whether anyone can
be asked, and the settings that shape it. No function of a cell takes the magic.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Literal

from ...core.context import ErrorLog

__all__ = ["CellContext", "Frontend"]

#: ``widgets``: a notebook frontend is attached; ``static``: a kernel with no known
#: frontend (nbclient, papermill); ``text``: a terminal.
Frontend = Literal["widgets", "static", "text"]


def _no_next_input(code: str) -> None:
    """Where no shell can put a new cell below: nothing happens."""


@dataclass(frozen=True)
class CellContext:
    """One cell's view of the shell (taken as the cell starts)."""

    frontend: Frontend = "text"
    #: On the kernel's own loop: a Stop button (and Run/Skip buttons) can be clicked.
    awaited: bool = False
    #: The frontend takes input: a tool call can be asked about (no: headless, refused).
    stdin: bool = True
    throttle: float = 0.08
    remote_images: bool = False
    max_field_chars: int = 0
    #: The default per-request timeout in seconds (0: the SDK's).
    timeout: float = 0.0
    #: The errors cells raised, for ``{Err}``.
    errors: ErrorLog = field(default_factory=ErrorLog)
    #: Model lists already fetched, per profile (the nearest ids after an HTTP 404).
    models_cache: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    #: Puts code in a new cell below (``-f code``).
    next_input: Callable[[str], None] = _no_next_input
