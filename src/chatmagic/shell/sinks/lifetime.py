"""Closing a finished view's widgets, so 200 chats do not leave 2,000 live widgets behind."""

from __future__ import annotations

from typing import Any

__all__ = ["close_tree"]


def close_tree(widget: Any) -> None:
    """Close a widget, its children, and the Layout and Style widgets each one owns
    (``Widget.close`` alone leaves those open in the kernel and the frontend)."""
    for child in getattr(widget, "children", ()):
        close_tree(child)
    for part in ("layout", "style"):
        owned = getattr(widget, part, None)
        if owned is not None and hasattr(owned, "close"):
            owned.close()
    widget.close()
