"""One reply streamed into the cell as HTML outputs that a saved notebook keeps.

The reply is a run of ``text/html`` outputs (see `html` for why they are
safe), each updated in place through its display id. The text is cut into
pieces (see `pieces`): a frozen piece's output is sent a last time and never
again, and the live piece goes on in a new output, so the bytes sent stay
O(reply) whatever its shape. The live piece is redrawn only once it has grown
by half since it was last drawn, which bounds its re-sends to twice its size.
The header rides on the first output and the footer on the last, so a short
reply costs two messages: its first token and its end.

With widgets, the header is an output of its own, shown at once; a reply still
running after ``bar_after`` seconds turns it into a bar with a Stop button
(only where a click can be handled: the awaited path), and the end turns it
back into HTML. Nothing is left widget-only, so nbconvert, GitHub and a
kernel-less reader see it all.
"""

from __future__ import annotations

from typing import Any

from IPython.display import display

from ..runner import Run
from ..stream import Reply
from .figures import footer_text, header_text
from .html import document, markdown_html, text_html
from .lifetime import close_tree
from .pieces import LiveText, Piece

__all__ = ["CellRenderer"]

_GROWTH = 1.5  # the live piece is redrawn when it holds this many times what it showed
_THINKING_LIVE = 800  # characters of reasoning shown while it streams (all of it at the end)


class _Output:
    """One display output of the reply, rewritten in place through its display id."""

    def __init__(self, handle: Any, first: bool, style: bool) -> None:
        self.handle = handle
        self.first = first  # carries the header on top
        self.style = style  # carries the stylesheet

    def show(self, bundle: dict[str, str]) -> None:
        self.handle.update(bundle, raw=True)


class CellRenderer:
    """Draws one reply (choice 0) as HTML; `plain` shows it as text instead."""

    def __init__(self, label: str, *, widgets: bool, plain: bool = False,
                 stoppable: bool = True, remote_images: bool = False,
                 bar_after: float = 0.5, freeze_at: int = 512) -> None:
        self.label = label
        self.widgets = widgets
        self.plain = plain
        self.stoppable = stoppable and widgets  # a Stop button only where clicks are handled
        self.remote_images = remote_images
        self.bar_after = bar_after  # a reply over sooner than this needs no Stop button
        self.text = LiveText(freeze_at)
        self.seen = 0  # text chunks folded into the live text
        self.begun = False
        self.header = ""  # plain text of the header
        self.header_pending = True  # until an output shows it
        self.style_pending = True  # until an output that stays HTML carries the stylesheet
        self.head_only: _Output | None = None  # an output showing the header and nothing else
        self.tail: _Output | None = None  # the output of the live piece
        self.shown = 0  # characters of the live piece that its output shows
        self.thinking: _Output | None = None
        self.thought_shown = 0
        self.head: _Output | None = None  # with widgets: the header's own output
        self.bar: Any = None  # with widgets: the Stop bar that the header turns into

    # -- bundles -------------------------------------------------------------------
    def _bundle(self, body_html: str, plain: str, out: _Output) -> dict[str, str]:
        """One output's bundle: the header on top of the first, the stylesheet in one."""
        if self.plain:
            head = f"[{self.header}]\n\n" if out.first else ""
            return {"text/plain": head + plain}
        head = f'<div class="cm-note"><b>{text_html(self.header)}</b></div>' if out.first else ""
        return {"text/html": document(head + body_html, style=out.style)}

    def _new_output(self, body_html: str, plain: str, *, head: bool = False) -> _Output:
        """An output for the next piece, below the ones before; the first carries the header."""
        if self.head_only is not None:  # the header alone was showing: it gets the piece
            out, self.head_only = self.head_only, None
            out.show(self._bundle(body_html, plain, out))
            return out
        # With widgets the header's output becomes the Stop bar for a while: the stylesheet
        # rides on the first output that stays HTML.
        out = _Output(None, self.header_pending, self.style_pending and not head)
        self.header_pending = False
        self.style_pending = self.style_pending and head
        out.handle = display(self._bundle(body_html, plain, out), raw=True, display_id=True)
        return out

    def _show(self, out: _Output | None, body_html: str, plain: str) -> _Output:
        if out is None:
            return self._new_output(body_html, plain)
        out.show(self._bundle(body_html, plain, out))
        return out

    def _piece_html(self, piece: Piece) -> str:
        return "" if self.plain else piece.html(self.remote_images)

    # -- Sink ----------------------------------------------------------------------
    def begin(self, run: Run) -> bool:
        self.header = header_text(self.label, run.replies[0])
        self.begun = True
        if self.widgets:
            # Its own output, where the Stop bar will go, above the text, at a fixed place.
            self.head = self._new_output("", "", head=True)
        return True  # to show the header while waiting, or the Stop bar when it is due

    def refresh(self, run: Run) -> bool:
        reply = run.replies[0]
        self._draw_thinking(reply, final=False)
        self._fold_text(reply)
        held_back = self._draw_text()
        if self.header_pending:  # nothing arrived yet: show whose reply is coming
            self.head_only = self._new_output("", "")
        if self.stoppable and self.bar is None:
            if reply.elapsed < self.bar_after:
                return True  # come back when the bar is due
            self._show_bar(run)
        return held_back

    def end(self, run: Run) -> None:
        reply = run.replies[0]
        if not self.begun:  # the run failed before it began
            self.begin(run)
        self._draw_thinking(reply, final=True)
        self._fold_text(reply)
        piece = self.text.live()
        footer = footer_text(reply, with_error=False)  # the cell's error output says it
        refusal = reply.refusal()
        body, plain = self._piece_html(piece), piece.text
        if refusal:
            body += ('<div class="cm-refusal"><b>Refused:</b>'
                     f"{markdown_html(refusal, remote_images=self.remote_images)}</div>")
            plain += f"\n\nRefused: {refusal}"
        body += f'<div class="cm-note">{text_html(footer)}</div>'
        plain += f"\n\n[{footer}]"
        self.tail = self._show(self.tail, body, plain)
        if self.bar is not None:
            # The bar becomes the plain header again: a saved notebook shows no dead widget.
            assert self.head is not None
            self.head.show(self._bundle("", "", self.head))
            close_tree(self.bar)

    # -- pieces ----------------------------------------------------------------------
    def _fold_text(self, reply: Reply) -> None:
        parts = reply.text_parts()
        if len(parts) > self.seen:
            self.text.add("".join(parts[self.seen:]))
            self.seen = len(parts)

    def _draw_text(self) -> bool:
        """Show the text that arrived, in one message; True if some is held back."""
        frozen = self.text.freeze()
        if frozen is not None:
            # The finished piece is sent once, now; the rest goes to a new output next time.
            self.tail = self._show(self.tail, self._piece_html(frozen), frozen.text)
            self.tail, self.shown = None, 0
            return self.text.size > 0
        size = self.text.size
        if self.tail is None and not self.text.visible().strip():
            return False  # leading blank lines (some send them before the reasoning) wait
        if size > self.shown and (self.tail is None or size >= self.shown * _GROWTH):
            piece = self.text.live()
            self.tail = self._show(self.tail, self._piece_html(piece), piece.text)
            self.shown = size
        return False

    def _draw_thinking(self, reply: Reply, final: bool) -> None:
        thought = reply.reasoning()
        if not thought:
            return
        fresh = len(thought) - self.thought_shown
        if not final and self.thinking is not None and fresh < _THINKING_LIVE // 4:
            return  # redrawn once a quarter of what it shows is new: bytes stay O(reasoning)
        self.thought_shown = len(thought)
        shown = thought if final else thought[-_THINKING_LIVE:]
        # Open while it streams, folded above the answer once the reply is over.
        state = "" if final else " open"
        body = (f"<details{state}><summary>Thinking</summary>"
                f"{markdown_html(shown, remote_images=self.remote_images)}</details>")
        self.thinking = self._show(self.thinking, body, f"Thinking: {thought}" if final else "")

    def _show_bar(self, run: Run) -> None:
        import ipywidgets as w

        stop = w.Button(description="Stop", icon="stop", button_style="warning",
                        tooltip="Stop the reply (keeps what arrived)",
                        layout=w.Layout(width="auto"))
        stop.on_click(lambda _button: run.stop())
        assert self.head is not None  # shown by begin
        children: list[Any] = [w.HTML(f"<b>{text_html(self.header)}</b>"), stop]
        self.bar = w.HBox(children, layout=w.Layout(align_items="center", gap="12px"))
        self.head.handle.update(self.bar)
