"""Several replies side by side: a compare cell, or the choices of ``-n`` > 1.

Live, each column is a widget (header, Markdown blocks as HTML, footer); one
Stop button stops all. At the end the live view is replaced by a static grid
(sanitized HTML, with a ``text/markdown`` fallback listing each reply under its
name) that a saved notebook keeps, and a row of Keep buttons appears.
Without widgets (headless runs) the static grid itself is updated as it goes.
"""

from __future__ import annotations

from typing import Any, Callable

from IPython.display import display

from ..runner import Run
from ..stream import Reply
from .figures import footer_text, header_text
from .lifetime import close_tree
from .markdown import Blocks, escape_html, markdown_html, safe_block, safe_markdown

__all__ = ["ColumnsRenderer", "static_grid"]

_GRID = ("display:grid;grid-template-columns:repeat(auto-fit,minmax(280px,1fr));gap:12px;"
         "align-items:start")
_CELL = "border:1px solid #d0d7de;border-radius:6px;padding:4px 10px;min-width:0;overflow-x:auto"
_SMALL = "color:#57606a;font-size:85%"


def static_grid(columns: list[tuple[str, Reply, str]]) -> dict[str, Any]:
    """The display bundle of finished columns: ``(label, reply, text)`` each."""
    cells, sections = [], []
    for label, reply, text in columns:
        header, footer = header_text(label, reply), footer_text(reply)
        cells.append(f'<div style="{_CELL}"><p><b>{escape_html(header)}</b></p>'
                     f'{markdown_html(text)}<p style="{_SMALL}">{escape_html(footer)}</p></div>')
        sections.append(f"### {safe_markdown(header)}\n\n{safe_block(text)}\n\n"
                        f"<sub>{safe_markdown(footer)}</sub>\n")
    plain = "\n\n".join(f"== {label} ==\n{text}" for label, _, text in columns)
    return {"text/html": f'<div style="{_GRID}">{"".join(cells)}</div>',
            "text/markdown": "\n---\n\n".join(sections), "text/plain": plain}


class _Column:
    def __init__(self, label: str) -> None:
        import ipywidgets as w

        self.label = label
        self.blocks = Blocks()
        self.seen = 0
        self.header = w.HTML()
        self.tail = w.HTML()
        self.body = w.VBox([self.tail])
        self.footer = w.HTML(f'<span style="{_SMALL}">waiting…</span>')
        self.box = w.VBox([self.header, self.body, self.footer],
                          layout=w.Layout(border="1px solid #d0d7de", padding="4px 10px",
                                          min_width="0", overflow_x="auto"))

    def refresh(self, reply: Reply, choice: int) -> None:
        import ipywidgets as w

        parts = reply.text_parts(choice)
        if len(parts) > self.seen:
            self.blocks.add("".join(parts[self.seen:]))
            self.seen = len(parts)
            frozen = self.blocks.freeze()
            if frozen is not None:
                self.body.children = (*self.body.children[:-1], w.HTML(markdown_html(frozen)),
                                      self.tail)
            self.tail.value = markdown_html(self.blocks.tail)
        if reply.error:
            self.footer.value = f'<b style="color:#cf222e">{escape_html(reply.error)}</b>'
        elif reply.first_token is not None:
            self.footer.value = (f'<span style="{_SMALL}">{self.seen} chunks · '
                                 f'{reply.elapsed:.1f} s</span>')



class ColumnsRenderer:
    """Draws every reply of a run (or every choice of one reply) side by side."""

    def __init__(self, labels: list[str], *, widgets: bool, choices: bool = False,
                 keep: Callable[[int], str] | None = None) -> None:
        self.labels = labels
        self.widgets = widgets
        self.choices = choices  # True: columns are the choices of replies[0]
        self.keep = keep
        self.handle: Any = None
        self._columns: list[_Column] = []
        self._root: Any = None
        self.settle_keep_bar: Callable[[], None] | None = None

    def _cells(self, run: Run) -> list[tuple[str, Reply, str]]:
        if self.choices:
            reply = run.replies[0]
            return [(label, reply, reply.text(i)) for i, label in enumerate(self.labels)]
        return [(label, reply, reply.text()) for label, reply in zip(self.labels, run.replies)]

    def begin(self, run: Run) -> None:
        if not self.widgets:
            self.handle = display(static_grid(self._cells(run)), raw=True, display_id=True)
            return
        import ipywidgets as w

        self._columns = [_Column(label) for label in self.labels]
        for column, (label, reply, _) in zip(self._columns, self._cells(run)):
            column.header.value = f"<b>{escape_html(header_text(label, reply))}</b>"
        stop = w.Button(description="Stop all", icon="stop", button_style="warning",
                        layout=w.Layout(width="auto"))
        stop.on_click(lambda _button: run.stop())
        grid = w.GridBox([c.box for c in self._columns], layout=w.Layout(
            grid_template_columns="repeat(auto-fit, minmax(280px, 1fr))", grid_gap="12px"))
        self._root = w.VBox([stop, grid])
        self.handle = display(self._root, display_id=True)

    def refresh(self, run: Run) -> None:
        if not self.widgets:
            self.handle.update(static_grid(self._cells(run)), raw=True)
            return
        for i, column in enumerate(self._columns):
            reply = run.replies[0] if self.choices else run.replies[i]
            column.refresh(reply, i if self.choices else 0)

    def end(self, run: Run) -> None:
        self.handle.update(static_grid(self._cells(run)), raw=True)
        if self._root is not None:
            close_tree(self._root)
        if self.widgets and self.keep is not None:
            self._keep_bar()

    def _keep_bar(self) -> None:
        import ipywidgets as w

        note = w.HTML()
        buttons = [w.Button(description=f"Keep {i + 1}: {label}"[:40], tooltip=
                            "Append the prompt and this reply to the conversation")
                   for i, label in enumerate(self.labels)]

        bar = w.HBox([*buttons, note], layout=w.Layout(flex_flow="row wrap", gap="6px"))
        handle = display(bar, display_id=True)

        def settle(text: str) -> None:
            # The bar becomes Markdown, so a saved notebook shows no dead widget.
            handle.update({"text/markdown": f"<sub>{safe_markdown(text)}</sub>",
                           "text/plain": text}, raw=True)
            close_tree(bar)

        def on_click(index: int) -> Callable[[Any], None]:
            def click(_button: Any) -> None:
                settle(self.keep(index))  # type: ignore[misc]
            return click

        for i, button in enumerate(buttons):
            button.on_click(on_click(i))

        def settle_unless_kept() -> None:
            if bar.comm is not None:  # still open: nothing was kept from this cell
                settle(f"To keep one of these replies: %chat_history keep N (1 to "
                       f"{len(self.labels)}) or keep MODEL.")

        self.settle_keep_bar = settle_unless_kept
