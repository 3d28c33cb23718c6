"""What draws a run in a cell: live widgets or display handles, text in a terminal.

Every renderer that adds outputs takes ``display=``: where its outputs go, IPython's
``display`` unless given (a callable of the same shape, ``display(obj, raw=..., display_id=...)``
returning a handle with ``update(obj, raw=...)``). The tests give a recorder
(`chatmagic.testing.display.DisplayRecorder`) and read what a reader would see.
"""

from __future__ import annotations

from typing import Any, Callable

#: What a renderer sends its outputs to (IPython's ``display``, or a recorder).
Display = Callable[..., Any]


def ipython_display(*objs: Any, **kwargs: Any) -> Any:
    """``IPython.display.display``, imported when first used."""
    from IPython.display import display

    return display(*objs, **kwargs)
