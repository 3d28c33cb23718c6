"""Tool calls in the cell: one compact block per call, drawn as its pieces arrive.

A block shows the tool's name, its arguments (pretty JSON once they parse)
and, once the call is decided, its state and result (cut when long). It is
an output of its own, updated in place through its display id, and always
ends as ``text/html`` (or ``text/plain``), so a saved notebook keeps it.
Everything in it is the model's or the tool's text: it goes through
`html.tool_call_html`, which escapes it all.

While a call's arguments arrive, its block is drawn again only once they have doubled
since it was last drawn (as a reply's live piece is, `pieces.GROWTH`): the bytes sent for
arguments of any size, in any number of pieces, stay a few times their size.
"""

from __future__ import annotations

from typing import Any

from ...engine.reply import Reply
from ...render.html import document, tool_call_html, tool_call_text
from ...render.pieces import GROWTH
from . import Display, ipython_display

__all__ = ["CallBlocks", "TextCalls"]


class CallBlocks:
    """The blocks of one round's calls (in the order of their index)."""

    def __init__(self, plain: bool = False, display: Display | None = None) -> None:
        self.plain = plain
        self._display = display or ipython_display  # where its outputs go (see sinks)
        self.handles: list[Any] = []
        self.drawn: list[tuple[str, str, str, str | None]] = []  # name, arguments, state, result

    def bundle(self, name: str, arguments: str, state: str = "",
               result: str | None = None) -> dict[str, str]:
        if self.plain:
            return {"text/plain": tool_call_text(name, arguments, result, state)}
        return {"text/html": document(tool_call_html(name, arguments, result, state))}

    def _show(self, index: int, name: str, arguments: str, state: str = "",
              result: str | None = None) -> None:
        drawn = (name, arguments, state, result)
        if index < len(self.handles):
            if self.drawn[index] != drawn:
                self.handles[index].update(self.bundle(*drawn), raw=True)
                self.drawn[index] = drawn
            return
        self.handles.append(self._display(self.bundle(*drawn), raw=True, display_id=True))
        self.drawn.append(drawn)

    def draw(self, reply: Reply, final: bool = False) -> None:
        """Show the calls that arrived so far (a new block per call, grown in place)."""
        for index, call in enumerate(reply.tool_calls()):
            function = call["function"]
            arguments = function["arguments"]
            if index < len(self.drawn):
                _, shown, state, _ = self.drawn[index]
                if state not in ("", "arriving…"):
                    continue  # decided already: not redrawn as arriving
                if not final and len(arguments) < GROWTH * len(shown):
                    continue  # redrawn once doubled: O(size) bytes, however many pieces
            self._show(index, function["name"], arguments, "" if final else "arriving…")

    def state(self, index: int, state: str, result: str | None = None,
              show: bool = True) -> None:
        """Show what became of call ``index``: waiting, running, skipped, its result
        (``show=False``: only noted, for what `html` draws next)."""
        if index < len(self.drawn):
            name, arguments, _, _ = self.drawn[index]
            if show:
                self._show(index, name, arguments, state, result)
            else:
                self.drawn[index] = (name, arguments, state, result)

    def replace(self, index: int, widget: Any) -> None:
        """Show a widget where block ``index`` stands (the Run / Skip buttons with it)."""
        self.handles[index].update(widget)
        name, arguments, _, _ = self.drawn[index]
        self.drawn[index] = (name, arguments, "\0widget", None)  # the next state redraws it

    def html(self, index: int) -> str:
        """Block ``index`` as it stands, as HTML (what stands above the buttons)."""
        name, arguments, state, result = self.drawn[index]
        return tool_call_html(name, arguments, result, state)


class TextCalls:
    """The same for a terminal: each call printed once it has arrived, then its outcome."""

    def __init__(self) -> None:
        self.printed = 0
        self.calls: list[tuple[str, str]] = []

    def draw(self, reply: Reply, final: bool = False) -> None:
        if not final:
            return  # the arguments arrive in pieces: printed whole, at the end of the round
        for call in reply.tool_calls()[self.printed:]:
            function = call["function"]
            self.calls.append((function["name"], function["arguments"]))
            print(tool_call_text(function["name"], function["arguments"]), flush=True)
        self.printed = len(self.calls)

    def state(self, index: int, state: str, result: str | None = None) -> None:
        if index < len(self.calls):
            name, arguments = self.calls[index]
            print(tool_call_text(name, arguments, result, state), flush=True)
