"""One reply streamed into the cell as Markdown outputs that a saved notebook keeps.

The reply is a run of ``text/markdown`` outputs: finished blocks are frozen
(sent once) and only the live tail is updated through its display id, so the
bytes sent stay O(reply) and every update is throttled by the `Run`. Above
them, a toolbar widget (header, Stop button, live figures) becomes a plain
Markdown header when the reply ends; the footer is Markdown too. Nothing here
is left widget-only, so nbconvert, GitHub and a kernel-less reader see it all.
"""

from __future__ import annotations

from typing import Any

from IPython.display import display

from ..runner import Run
from .figures import footer_text, header_text
from .lifetime import close_tree
from .markdown import Blocks, escape_html, safe_markdown

__all__ = ["CellRenderer"]




class CellRenderer:
    """Draws one reply (choice 0) as Markdown; `plain` shows it as text instead."""

    def __init__(self, label: str, *, widgets: bool, plain: bool = False) -> None:
        self.label = label
        self.widgets = widgets
        self.plain = plain
        self.blocks = Blocks()
        self.seen = 0
        self.seen_reasoning = 0
        self.tail_handle: Any = None
        self.thinking_handle: Any = None
        self.bar_handle: Any = None
        self._stats: Any = None
        self._stats_shown = 0.0

    def _bundle(self, text: str) -> dict[str, Any]:
        # One MIME type per block: a text/plain twin would double the bytes sent, and every
        # notebook frontend renders Markdown (the header and footer carry text/plain).
        return {"text/plain": text} if self.plain else {"text/markdown": safe_markdown(text)}

    # -- Sink ----------------------------------------------------------------
    def begin(self, run: Run) -> None:
        header = header_text(self.label, run.replies[0])
        if self.widgets:
            import ipywidgets as w

            stop = w.Button(description="Stop", icon="stop", button_style="warning",
                            tooltip="Stop the reply (keeps what arrived)",
                            layout=w.Layout(width="auto"))
            stop.on_click(lambda _button: run.stop())
            self._stats = w.HTML("<i>waiting for the first token…</i>")
            bar = w.HBox([w.HTML(f"<b>{escape_html(header)}</b>"), stop, self._stats],
                         layout=w.Layout(align_items="center", gap="12px"))
            self._bar = bar
            self.bar_handle = display(bar, display_id=True)
        else:
            self.bar_handle = display({"text/markdown": f"**{safe_markdown(header)}**",
                                       "text/plain": header}, raw=True, display_id=True)

    def refresh(self, run: Run) -> None:
        reply = run.replies[0]
        choice = reply.choices[0]
        if len(choice.reasoning) > self.seen_reasoning:
            self.seen_reasoning = len(choice.reasoning)
            self._show_thinking(reply.reasoning(), final=False)
        if len(choice.text) > self.seen:
            new = "".join(choice.text[self.seen:])
            self.seen = len(choice.text)
            frozen = self.blocks.add(new)
            if frozen is not None:
                self._set_tail(frozen)
                self.tail_handle = None
            if self.blocks.tail:
                self._set_tail(self.blocks.tail)
        if self._stats is not None and reply.elapsed - self._stats_shown >= 0.5:
            self._stats_shown = reply.elapsed  # live figures twice a second are plenty
            self._stats.value = (f"<small>{len(choice.text)} chunks · "
                                 f"{reply.elapsed:.1f} s</small>")

    def end(self, run: Run) -> None:
        reply = run.replies[0]
        if reply.reasoning():
            self._show_thinking(reply.reasoning(), final=True)
        if self.blocks.tail:
            self._set_tail(self.blocks.tail)
        if reply.refusal():
            display({"text/markdown": f"> **Refused:** {safe_markdown(reply.refusal())}",
                     "text/plain": f"Refused: {reply.refusal()}"}, raw=True)
        footer = footer_text(reply, with_error=False)  # the cell's error output says it
        display({"text/markdown": f"<sub>{safe_markdown(footer)}</sub>", "text/plain": footer},
                raw=True)
        header = header_text(self.label, reply)
        if self.widgets:
            # The widget becomes Markdown: a saved notebook shows no dead widget.
            self.bar_handle.update({"text/markdown": f"**{safe_markdown(header)}**",
                                    "text/plain": header}, raw=True)
            close_tree(self._bar)

    # -- pieces ----------------------------------------------------------------
    def _set_tail(self, text: str) -> None:
        bundle = self._bundle(text)
        if self.tail_handle is None:
            self.tail_handle = display(bundle, raw=True, display_id=True)
        else:
            self.tail_handle.update(bundle, raw=True)

    def _show_thinking(self, text: str, final: bool) -> None:
        shown = text if final else text[-2000:]  # the live view needs only the latest thoughts
        body = safe_markdown(shown).replace("\n", "\n> ")
        bundle = {"text/markdown": f"<details><summary>Thinking</summary>\n\n> {body}\n\n"
                                   "</details>\n"}
        if final:
            bundle["text/plain"] = f"Thinking: {text}"
        if self.thinking_handle is None:
            self.thinking_handle = display(bundle, raw=True, display_id=True)
        else:
            self.thinking_handle.update(bundle, raw=True)
