"""Several replies side by side: a compare cell, or the choices of ``-n`` > 1.

Each column is the same HTML live and at the end (see `html`): its header,
the thinking folded above the answer, the answer with code highlighted and
math typeset, a refusal set apart, and its footer, in a box of bounded height
that scrolls on its own. Live, each column is a widget whose pieces are
frozen as they finish (only the live piece is redrawn); one Stop button stops
all, where a click can be handled. At the end the live view is replaced by a
static grid that a saved notebook keeps, and a line says how to keep a reply:
a Keep button would be a widget left in the saved notebook, which a reader
without the kernel sees as "Error displaying widget".
"""

from __future__ import annotations

from typing import Any, Iterable

from ...core.events import Restart, StreamEvent, TextDelta
from ...engine.runner import Events, Run
from ...engine.reply import Reply
from .figures import footer_text, header_text
from ...render.html import STYLE, clean_text, document, markdown_html, shown_text, text_html
from .lifetime import close_tree
from ...render.pieces import LiveText
from . import Display, ipython_display

__all__ = ["ColumnsRenderer", "static_grid"]

_GRID = ("display:grid;grid-template-columns:repeat(auto-fit,minmax(280px,1fr));gap:12px;"
         "align-items:start")
# A bounded height with a scroll of its own: a long reply does not push the others away.
_BOX = ("border:1px solid var(--jp-border-color2,#d0d7de);border-radius:6px;padding:4px 10px;"
        "min-width:0;max-height:32em;overflow:auto")


def _thinking(reply: Reply, choice: int, images: bool) -> str:
    thought = reply.reasoning(choice)
    return (f"<details><summary>Thinking</summary>"
            f"{markdown_html(thought, remote_images=images)}</details>"
            if thought else "")


def _refusal(reply: Reply, choice: int, images: bool) -> str:
    refusal = reply.refusal(choice)
    return (f'<div class="cm-refusal"><b>Refused:</b>'
            f"{markdown_html(refusal, remote_images=images)}</div>"
            if refusal else "")


def _column_html(label: str, reply: Reply, choice: int, images: bool) -> str:
    """One column's inner HTML: header, thinking, answer, refusal, footer."""
    body = markdown_html(reply.text(choice), remote_images=images)
    return (f'<div class="cm-note"><b>{text_html(header_text(label, reply))}</b></div>'
            f"{_thinking(reply, choice, images)}{body}{_refusal(reply, choice, images)}"
            f'<div class="cm-note">{text_html(footer_text(reply, choice=choice))}</div>')


def static_grid(columns: list[tuple[str, Reply, int]], note: str = "",
                remote_images: bool = False) -> dict[str, Any]:
    """The display bundle of finished columns: ``(label, reply, choice)`` each."""
    cells = "".join(f'<div style="{_BOX}">{_column_html(label, reply, choice, remote_images)}'
                    "</div>" for label, reply, choice in columns)
    tail = f'<div class="cm-note">{text_html(note)}</div>' if note else ""
    plain = "\n\n".join(f"== {shown_text(label)} ==\n{clean_text(reply.text(choice))}"
                          for label, reply, choice in columns)
    return {"text/html": document(f'<div style="{_GRID}">{cells}</div>{tail}', style=True),
            "text/plain": plain}


# A widget's HTML is not inside JupyterLab's rendered-output styles: the class brings them,
# so a live column looks as its final form does (no jump at the end).
_LIKE_AN_OUTPUT = "jp-OutputArea-output jp-RenderedHTMLCommon jp-RenderedHTML"


def _widget_html(body: str, classes: str = "") -> str:
    return document(body, classes=f"{_LIKE_AN_OUTPUT} {classes}".strip())


class _Column:
    """A live column: frozen pieces as HTML widgets, then the live piece."""

    def __init__(self, label: str, images: bool) -> None:
        import ipywidgets as w

        self.label = label
        self.images = images
        self.text = LiveText()
        self.shown = 0  # characters of the live piece its widget shows
        self.thought = 0
        self.head = w.HTML()
        self.thinking = w.HTML()
        self.tail = w.HTML()
        self.body = w.VBox([self.tail])
        self.foot = w.HTML()
        self.box = w.VBox([self.head, self.thinking, self.body, self.foot],
                          layout=w.Layout(border="1px solid #d0d7de", padding="4px 10px",
                                          min_width="0", max_height="32em", overflow="auto"))

    def refresh(self, reply: Reply, choice: int, events: Iterable[StreamEvent]) -> None:
        import ipywidgets as w

        pieces: list[str] = []
        for event in events:
            if isinstance(event, Restart):  # asked again: the column starts over
                for child in self.body.children[:-1]:
                    close_tree(child)
                self.body.children = (self.tail,)
                self.text, self.shown, self.thought, pieces = LiveText(), 0, 0, []
            elif type(event) is TextDelta and event.choice == choice:
                pieces.append(event.text)
        self.head.value = _widget_html(f'<div class="cm-note"><b>'
                                   f"{text_html(header_text(self.label, reply))}</b></div>")
        thought = reply.reasoning(choice)
        if len(thought) > self.thought * 1.25 + 200:  # bytes stay O(reasoning)
            self.thought = len(thought)
            self.thinking.value = _widget_html(
                f"<details open><summary>Thinking</summary>"
                f"{markdown_html(thought[-800:], remote_images=self.images)}"
                "</details>")
        if pieces:
            self.text.add("".join(pieces))
            frozen = self.text.freeze()
            if frozen is not None:
                self.body.children = (*self.body.children[:-1],
                                      w.HTML(_widget_html(frozen.html(self.images),
                                                          frozen.classes)),
                                      self.tail)
                self.shown = 0
            if self.text.due(self.shown):
                live = self.text.live()
                self.tail.value = _widget_html(live.html(self.images), live.classes)
                self.shown = self.text.size
        # While it streams, the footer says so (its figures come at the end).
        words = (footer_text(reply, choice=choice) if reply.ended is not None
                 else f"streaming… {reply.elapsed:.1f} s")
        self.foot.value = _widget_html(f'<div class="cm-note">{text_html(words)}</div>')


class ColumnsRenderer:
    """Draws every reply of a run (or every choice of one reply) side by side."""

    def __init__(self, labels: list[str], *, widgets: bool, choices: bool = False,
                 keep_hint: bool = False, stoppable: bool = True,
                 remote_images: bool = False, display: Display | None = None) -> None:
        self.labels = labels
        self._display = display or ipython_display  # where its outputs go (see sinks)
        self.widgets = widgets
        self.choices = choices  # True: columns are the choices of replies[0]
        self.keep_hint = keep_hint  # the conversation can take one of the replies
        self.stoppable = stoppable and widgets  # a Stop button only where clicks are handled
        self.remote_images = remote_images
        self.handle: Any = None
        self._drawn = 0  # characters the static grid showed when last drawn
        self._columns: list[_Column] = []
        self._root: Any = None

    def _cells(self, run: Run) -> list[tuple[str, Reply, int]]:
        if self.choices:
            reply = run.replies[0]
            # A server may send fewer choices than asked: show the ones it sent.
            count = max(1, min(len(self.labels), len(reply.choices)))
            return [(label, reply, i) for i, label in enumerate(self.labels[:count])]
        return [(label, reply, 0) for label, reply in zip(self.labels, run.replies)]

    def _grid(self, run: Run, note: str = "") -> dict[str, Any]:
        return static_grid(self._cells(run), note, self.remote_images)

    def _note(self, run: Run) -> str:
        shown = len(self._cells(run))
        if not self.keep_hint or shown < 2:
            return ""
        return (f"To keep one of these replies in the conversation: %chat_history keep N "
                f"(1 to {shown}) or keep MODEL.")

    def begin(self, run: Run) -> None:
        if not self.widgets:
            self.handle = self._display(self._grid(run), raw=True, display_id=True)
            return
        import ipywidgets as w

        self._columns = [_Column(label, self.remote_images) for label in self.labels]
        style = w.HTML(STYLE)  # the stylesheet for every column's code
        grid = w.GridBox([c.box for c in self._columns], layout=w.Layout(
            grid_template_columns="repeat(auto-fit, minmax(280px, 1fr))", grid_gap="12px"))
        children: list[Any] = [style, grid]
        if self.stoppable:
            stop = w.Button(description="Stop all", icon="stop", button_style="warning",
                            layout=w.Layout(width="auto"))
            stop.on_click(lambda _button: run.stop())
            children.insert(0, stop)
        self._root = w.VBox(children)
        self.handle = self._display(self._root, display_id=True)
        self.refresh(run, ())

    def refresh(self, run: Run, events: Events) -> None:
        if not self.widgets:
            # The whole grid is redrawn: only once it has grown by half, so O(size) in all.
            size = sum(len(reply.text(choice)) + len(reply.reasoning(choice))
                       for _, reply, choice in self._cells(run))
            if size >= self._drawn * 1.5 + 64:
                self._drawn = size
                self.handle.update(self._grid(run), raw=True)
            return
        for i, column in enumerate(self._columns):
            # The choices of one reply are its columns (-n), else each request is one.
            reply = run.replies[0] if self.choices else run.replies[i]
            mine = [event for c, event in events if c == (0 if self.choices else i)]
            column.refresh(reply, i if self.choices else 0, mine)

    def end(self, run: Run, events: Events) -> None:
        self.handle.update(self._grid(run, self._note(run)), raw=True)
        if self._root is not None:
            close_tree(self._root)
