"""Renderers: the thin shell that draws a `Run` in a notebook or a terminal."""

from .cell import CellRenderer
from .columns import ColumnsRenderer, static_grid
from .text import TextRenderer

__all__ = ["CellRenderer", "ColumnsRenderer", "TextRenderer", "static_grid"]
