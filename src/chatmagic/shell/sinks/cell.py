"""One reply streamed into the cell as HTML outputs that a saved notebook keeps.

The reply is a run of ``text/html`` outputs (see `html` for why they are
safe), each updated in place through its display id. The text is cut into
pieces (see `pieces`): a frozen piece's output is sent a last time and never
again, and the live piece goes on in a new output, so the bytes sent stay
O(reply) whatever its shape. The live piece is redrawn only once it has doubled
since it was last drawn, which bounds its redraws to twice its size.

The header (with the stylesheet) is an output of its own, shown at once and
never sent again; the footer rides on the last output. With widgets, a reply
still running after ``bar_after`` seconds turns the header into a bar with a
Stop button (only where a click can be handled: the awaited path), and the end
turns it back into HTML. Nothing is left widget-only, so nbconvert, GitHub and
a kernel-less reader see it all.
"""

from __future__ import annotations

from typing import Any

from ...core.events import TextDelta
from ...engine.runner import Events, Run
from ...engine.reply import Reply
from .calls import CallBlocks
from .figures import footer_text, header_text
from ...render.html import STYLE, clean_text, document, markdown_html, text_html
from .lifetime import close_tree
from ...render.pieces import LiveText, Piece
from . import Display, ipython_display

__all__ = ["CellRenderer"]

_THINKING_LIVE = 800  # characters of reasoning shown while it streams (all of it at the end)


class CellRenderer:
    """Draws one reply (choice 0) as HTML; `plain` shows it as text instead."""

    def __init__(self, label: str, *, widgets: bool, plain: bool = False,
                 stoppable: bool = True, remote_images: bool = False,
                 bar_after: float = 0.5, freeze_at: int = 4096, schema: Any = None,
                 display: Display | None = None) -> None:
        self.label = label
        self._display = display or ipython_display  # where its outputs go (see sinks)
        #: --schema: the JSON is shown as code as it comes, then the object as a table.
        self.schema = schema
        self.plain = plain
        self.stoppable = stoppable and widgets  # a Stop button only where clicks are handled
        self.remote_images = remote_images
        self.bar_after = bar_after  # a reply over sooner than this needs no Stop button
        self.text = LiveText(freeze_at)
        self.fenced = False  # --schema: the JSON shows as code, inside a fence opened once
        self.header = ""
        self.head: Any = None  # the header's output (a display handle)
        self.tail: Any = None  # the live piece's output
        self.shown = 0  # characters of the live piece that its output shows
        self.thinking: Any = None
        self.thought_shown = 0
        self.bar: Any = None  # with widgets: the Stop bar that the header turns into
        self.calls = CallBlocks(plain, display=self._display)  # a block per tool call

    # -- outputs -------------------------------------------------------------------
    def _bundle(self, body_html: str, plain: str, classes: str = "") -> dict[str, str]:
        if self.plain:
            return {"text/plain": clean_text(plain)}
        return {"text/html": document(body_html, classes=classes)}

    def _head_bundle(self) -> dict[str, str]:
        if self.plain:
            return {"text/plain": f"[{self.header}]"}
        head = f'<div class="cm-note"><b>{text_html(self.header)}</b></div>'
        return {"text/html": document(head, style=True)}

    def _show(self, handle: Any, bundle: dict[str, str]) -> Any:
        """Update an output, or add one below the others; return its handle."""
        if handle is None:
            return self._display(bundle, raw=True, display_id=True)
        handle.update(bundle, raw=True)
        return handle

    def _show_piece(self, piece: Piece, extra_html: str = "", extra_plain: str = "") -> None:
        body = "" if self.plain else piece.html(self.remote_images)
        self.tail = self._show(self.tail, self._bundle(body + extra_html,
                                                       piece.text + extra_plain,
                                                       piece.classes))

    # -- Sink ----------------------------------------------------------------------
    def begin(self, run: Run) -> bool:
        self.header = header_text(self.label, run.replies[0])
        self.head = self._show(None, self._head_bundle())
        return self.stoppable  # to be called again when the Stop bar is due

    def refresh(self, run: Run, events: Events) -> bool:
        reply = run.replies[0]
        self._draw_thinking(reply, final=False)
        self._take(events)
        held_back = self._draw_text()
        self.calls.draw(reply)
        if self.stoppable and self.bar is None:
            if reply.elapsed < self.bar_after:
                return True  # come back when the bar is due
            self._show_bar(run)
        return held_back

    def end(self, run: Run, events: Events) -> None:
        reply = run.replies[0]
        if self.head is None:  # the run failed before it began
            self.begin(run)
        self._draw_thinking(reply, final=True)
        self._take(events)
        self.calls.draw(reply, final=True)
        footer = footer_text(reply, with_error=False)  # the cell's error output says it
        extra_html = ""
        extra_plain = f"\n\n[{footer}]"
        refusal = reply.refusal()
        if refusal:
            extra_html += ('<div class="cm-refusal"><b>Refused:</b>'
                           f"{markdown_html(refusal, remote_images=self.remote_images)}</div>")
            extra_plain = f"\n\nRefused: {refusal}" + extra_plain
        if self.schema is not None and reply.parsed is not None:
            from ...render.structured import parsed_html, parsed_text

            extra_html += parsed_html(self.schema, reply.parsed)
            extra_plain = f"\n\n{parsed_text(self.schema, reply.parsed)}" + extra_plain
        extra_html += f'<div class="cm-note">{text_html(footer)}</div>'
        self._show_piece(self.text.live(), extra_html, extra_plain)
        if self.bar is not None:
            # The bar becomes the plain header again: a saved notebook shows no dead widget.
            self.head.update(self._head_bundle(), raw=True)
            close_tree(self.bar)

    # -- pieces ----------------------------------------------------------------------
    def _take(self, events: Events) -> None:
        """The text that arrived into the live text. A cell's request restarts only before
        its first word (it is asked again only then), so a restart has nothing to undo."""
        pieces = [event.text for _, event in events
                  if type(event) is TextDelta and event.choice == 0]
        if not pieces:
            return
        if self.schema is not None and not self.fenced and not self.plain:
            from ...render.structured import JSON_FENCE

            self.text.add(JSON_FENCE)  # the JSON as code: a fence that the JSON won't close
            self.fenced = True
        self.text.add("".join(pieces))

    def _draw_text(self) -> bool:
        """Show the text that arrived, in one message; True if some is held back."""
        frozen = self.text.freeze()
        if frozen is not None:
            # The finished piece is sent once, now; the rest goes to a new output next time.
            self._show_piece(frozen)
            self.tail, self.shown = None, 0
            return self.text.size > 0
        size = self.text.size
        if self.tail is None and not self.text.visible().strip():
            return False  # leading blank lines (some send them before the reasoning) wait
        if self.tail is None or self.text.due(self.shown):
            self._show_piece(self.text.live())
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
        plain = f"Thinking: {thought}" if final else ""
        self.thinking = self._show(self.thinking, self._bundle(body, plain))

    def _show_bar(self, run: Run) -> None:
        import ipywidgets as w

        stop = w.Button(description="Stop", icon="stop", button_style="warning",
                        tooltip="Stop the reply (keeps what arrived)",
                        layout=w.Layout(width="auto"))
        stop.on_click(lambda _button: run.stop())
        # The stylesheet stays on the page while the bar stands where the header was.
        children: list[Any] = [w.HTML(f"{STYLE}<b>{text_html(self.header)}</b>"), stop]
        self.bar = w.HBox(children, layout=w.Layout(align_items="center", gap="12px"))
        self.head.update(self.bar)
