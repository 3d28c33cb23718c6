"""One reply streamed into the cell as Markdown outputs that a saved notebook keeps.

The reply is a run of ``text/markdown`` outputs, each updated in place
through its display id. A finished stretch of blocks is frozen (its output is
sent a last time and never again) and the live tail goes on in a new output,
so the bytes sent stay O(reply). Each refresh sends one message: a refresh
that freezes holds the rest back for the next one. The footer rides on the
last output and, without widgets, the header on the first, so a short reply
costs two messages: its first token and its end.

With widgets, the header is an output of its own, shown at once; a reply still
running after ``bar_after`` seconds turns it into a bar with a Stop button,
and the end turns it back into Markdown. Nothing is left widget-only, so
nbconvert, GitHub and a kernel-less reader see it all.
"""

from __future__ import annotations

from typing import Any

from IPython.display import display

from ..runner import Run
from ..stream import Reply
from .figures import footer_text, header_text
from .lifetime import close_tree
from .markdown import Blocks, escape_html, safe_block, safe_markdown

__all__ = ["CellRenderer"]


def _bundle(header: tuple[str, str] | None, markdown: str | None,
            plain: str | None) -> dict[str, str]:
    """A display bundle: the header (Markdown, plain) on top, if given, then the body."""
    out = {}
    if markdown is not None:
        out["text/markdown"] = (f"**{header[0]}**\n\n" if header else "") + markdown
    if plain is not None:
        out["text/plain"] = (f"[{header[1]}]\n\n" if header else "") + plain
    return out


class _Output:
    """One display output of the reply, rewritten in place through its display id."""

    def __init__(self, handle: Any, header: tuple[str, str] | None = None) -> None:
        self.handle = handle
        self.header = header  # the header this output carries on top, if any

    def show(self, markdown: str | None, plain: str | None = None) -> None:
        self.handle.update(_bundle(self.header, markdown, plain), raw=True)


class CellRenderer:
    """Draws one reply (choice 0) as Markdown; `plain` shows it as text instead."""

    def __init__(self, label: str, *, widgets: bool, plain: bool = False,
                 bar_after: float = 0.5, freeze_at: int = 2000) -> None:
        self.label = label
        self.widgets = widgets
        self.plain = plain
        self.bar_after = bar_after  # a reply over sooner than this needs no Stop button
        self.blocks = Blocks(freeze_at)
        self.seen = 0  # text chunks folded into blocks
        self.seen_reasoning = 0
        self.begun = False
        self.header: tuple[str, str] | None = None  # until the first output shows it
        self.head_only: _Output | None = None  # an output showing the header and nothing else
        self.tail: _Output | None = None  # the output of the live text
        self.shown = 0  # characters of blocks.tail that the tail output shows
        self.thinking: _Output | None = None
        self.head: _Output | None = None  # with widgets: the header's own output
        self.bar: Any = None  # with widgets: the Stop bar that the header turns into

    # -- Sink ----------------------------------------------------------------
    def begin(self, run: Run) -> bool:
        text = header_text(self.label, run.replies[0])
        self.header = (safe_markdown(text), text)
        self.begun = True
        if self.widgets:
            # Its own output, where the Stop bar will go, above the text, at a fixed place.
            self.head = self._new_output("", "")
        return True  # to show the header while waiting, or the Stop bar when it is due

    def refresh(self, run: Run) -> bool:
        reply = run.replies[0]
        if self._fold_reasoning(reply):
            self._show_thinking(reply.reasoning(), final=False)
        self._fold_text(reply)
        held_back = self._draw_text()
        if self.header is not None:  # nothing arrived yet: show whose reply is coming
            self.head_only = self._new_output("", "")
        if self.widgets and self.bar is None:
            if reply.elapsed < self.bar_after:
                return True  # come back when the bar is due
            self._show_bar(run)
        return held_back

    def end(self, run: Run) -> None:
        reply = run.replies[0]
        if not self.begun:  # the run failed before it began
            self.begin(run)
        if self._fold_reasoning(reply) or self.thinking is not None:
            self._show_thinking(reply.reasoning(), final=True)
        self._fold_text(reply)
        footer = footer_text(reply, with_error=False)  # the cell's error output says it
        refusal = reply.refusal()
        md, plain = self._text_bundle(self.blocks.tail)
        if self.plain:
            refused = f"\n\nRefused: {refusal}" if refusal else ""
            plain = f"{plain}{refused}\n\n[{footer}]"
        else:
            if refusal:
                # On lines of its own: safe_markdown's output is safe as a whole document.
                md = f"{md}\n\n**Refused:**\n\n{safe_block(refusal)}"
            md = f"{md}\n\n<sub>{safe_markdown(footer)}</sub>"
        if self.tail is not None:
            self.tail.show(md, plain)
        else:
            self._new_output(md, plain)
        if self.bar is not None:
            # The bar becomes the Markdown header again: a saved notebook shows no dead widget.
            self.head.show("", "")  # type: ignore[union-attr]
            close_tree(self.bar)

    # -- pieces ----------------------------------------------------------------
    def _fold_reasoning(self, reply: Reply) -> bool:
        count = len(reply.choices[0].reasoning)
        grew, self.seen_reasoning = count > self.seen_reasoning, count
        return grew

    def _fold_text(self, reply: Reply) -> None:
        parts = reply.choices[0].text
        if len(parts) > self.seen:
            self.blocks.add("".join(parts[self.seen:]))
            self.seen = len(parts)

    def _text_bundle(self, text: str) -> tuple[str | None, str | None]:
        """The (Markdown, plain) bodies of a stretch of reply text; one MIME type only, since
        a text/plain twin would double the bytes sent and every notebook renders Markdown."""
        return (None, text) if self.plain else (safe_block(text), None)

    def _draw_text(self) -> bool:
        """Show the text that arrived, in one message; True if some is held back."""
        frozen = self.blocks.freeze(self.shown)
        if frozen is not None:
            # The finished blocks are sent once, now; the rest goes to a new output next time.
            if self.tail is None:
                self._new_output(*self._text_bundle(frozen))
            else:
                self.tail.show(*self._text_bundle(frozen))
            self.tail, self.shown = None, 0
            return bool(self.blocks.tail)
        text = self.blocks.tail
        if self.tail is None and not text.strip():
            return False  # leading blank lines (some send them before the reasoning) wait
        if len(text) > self.shown:
            if self.tail is None:
                self.tail = self._new_output(*self._text_bundle(text))
            else:
                self.tail.show(*self._text_bundle(text))
            self.shown = len(text)
        return False

    def _new_output(self, markdown: str | None, plain: str | None = None) -> _Output:
        """An output for the next piece, below the ones before; the first carries the header."""
        if self.head_only is not None:  # the header alone was showing: it gets the piece
            out, self.head_only = self.head_only, None
            out.show(markdown, plain)
        else:
            out = _Output(display(_bundle(self.header, markdown, plain), raw=True,
                                  display_id=True), self.header)
        self.header = None
        return out

    def _show_bar(self, run: Run) -> None:
        import ipywidgets as w

        stop = w.Button(description="Stop", icon="stop", button_style="warning",
                        tooltip="Stop the reply (keeps what arrived)",
                        layout=w.Layout(width="auto"))
        stop.on_click(lambda _button: run.stop())
        assert self.head is not None and self.head.header is not None  # shown by begin
        children: list[Any] = [w.HTML(f"<b>{escape_html(self.head.header[1])}</b>"), stop]
        self.bar = w.HBox(children, layout=w.Layout(align_items="center", gap="12px"))
        self.head.handle.update(self.bar)

    def _show_thinking(self, text: str, final: bool) -> None:
        shown = text if final else text[-2000:]  # the live view needs only the latest thoughts
        # Not a blockquote: JupyterLab's math pass gives up at a blank line, and a quoted
        # blank line ("> ") is none (see markdown._escape_prose).
        body = safe_block(shown)
        markdown = f"<details><summary>Thinking</summary>\n\n{body}\n\n</details>\n"
        plain = f"Thinking: {text}" if final else None
        if self.thinking is None:
            self.thinking = self._new_output(markdown, plain)
        else:
            self.thinking.show(markdown, plain)
