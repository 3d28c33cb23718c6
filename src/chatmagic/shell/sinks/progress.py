"""The progress view of a run over many inputs (``--each``), and its summary at the end.

One line of counts (done/total, failed, tokens, cost, rows per second, time
left), redrawn at most once per throttle interval whatever the number of rows:
an ipywidgets HTML line (with a Stop button where the kernel serves clicks) in
a notebook, one ``\\r``-updated line in a terminal, nothing until the end in a
headless run. At the end, every frontend gets the same static output: the
summary and the first rows of the table, through `html.table_html` (model
output is text there, never markup), so a saved notebook needs no kernel.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from ...each.run import EachRun
from ...engine.scheduler import Progress, serial_note
from ...render.html import document, shown_text, table_html, text_html
from .lifetime import close_tree
from . import Display, ipython_display

__all__ = ["ProgressView", "progress_line", "summary_line", "HEAD_ROWS"]

#: Rows of the table shown under the summary.
HEAD_ROWS = 5
#: Characters of a text cell shown in that preview.
_CELL = 80
#: Seconds between redraws of the line at least, and the share of the run's time after which
#: it is redrawn at the latest (elapsed / SLOWING).
SPACING = 0.25
SLOWING = 30


def _seconds(value: float) -> str:
    if value < 60:
        return f"{value:.1f} s"
    minutes, seconds = divmod(int(value), 60)
    return f"{minutes} min {seconds:02d} s" if minutes < 60 else \
        f"{minutes // 60} h {minutes % 60:02d} min"


def _money(progress: Progress) -> str:
    if progress.cost is None:
        return ""  # no price known: no cost said (never a 0)
    if len(progress.currencies) == 1:
        from ...core.pricing import money

        return f" · cost {money(progress.cost, next(iter(progress.currencies)))}"
    return " · cost in several currencies (%chat_usage sums each)"


def progress_line(progress: Progress) -> str:
    """The running line: done/total, failed, tokens, cost, rate, time left."""
    parts = [f"{progress.done:,}/{progress.total:,} rows"]
    if progress.failed:
        parts.append(f"{progress.failed:,} failed")
    if progress.reused:
        parts.append(f"{progress.reused:,} from earlier runs")
    parts.append(f"tokens {progress.prompt_tokens:,} in / {progress.completion_tokens:,} out"
                 + _money(progress))
    rate = progress.rate()
    if rate:
        parts.append(f"{rate:.1f} rows/s")
    left = progress.left()
    if left is not None and progress.done < progress.total:
        parts.append(f"{_seconds(left)} left")
    if progress.slowed:
        parts.append("slowed down (rate limited)")
    parts += _serial(progress)
    return " · ".join(parts)


def _serial(progress: Progress) -> list[str]:
    return [serial_note(url) for url in sorted(progress.serial)]


def summary_line(run: EachRun) -> str:
    """The line the cell keeps: what was done, what came from earlier runs, what is left."""
    p = run.progress
    finished = len(run.finished)
    ok = finished - sum(1 for row in run.finished if not row.ok)
    words = [f"{ok:,} of {p.total:,} rows answered"]
    if finished - ok:
        words.append(f"{finished - ok:,} failed (see the error column)")
    if p.reused:
        words.append(f"{p.reused:,} from earlier runs (--fresh sends them again)")
    if finished < p.total:
        words.append(f"{p.total - finished:,} not sent (stopped: run the cell again to send "
                     "only those)")
    words.append(f"tokens {p.prompt_tokens:,} in / {p.completion_tokens:,} out" + _money(p))
    if p.retries:
        words.append(f"{p.retries:,} retried")
    words += _serial(p)
    rate = p.rate()
    words.append(_seconds(p.elapsed) + (f", {rate:.1f} rows/s" if rate else ""))
    return " · ".join(words)


def _cell(value: Any) -> str:
    """A table cell on one line, with what could hide or reorder text shown as its escape
    (the model's text and the endpoint's finish reason go to a terminal as they are)."""
    text = "" if value is None else shown_text(" ".join(str(value).split()), lines=False)
    return text if len(text) <= _CELL else text[:_CELL - 1] + "…"


def _head(run: EachRun) -> tuple[list[str], list[list[str]]]:
    rows = run.finished[:HEAD_ROWS]
    records = [row.record(run.plan.key_name, run.plan.schema_fields) for row in rows]
    header = list(records[0]) if records else []
    return header, [[_cell(v) for v in record.values()] for record in records]


class ProgressView:
    """Draws one run: ``frontend`` is widgets, static (headless) or text (a terminal)."""

    def __init__(self, frontend: str, *, stoppable: bool = False, out: Any = None,
                 display: Display | None = None) -> None:
        self.frontend = frontend
        self._display = display or ipython_display  # where its outputs go (see sinks)
        self.stoppable = stoppable and frontend == "widgets"
        self.out = out or sys.stdout
        self.handle: Any = None
        self.box: Any = None
        self.label: Any = None
        self.shown = ""
        self.drawn = 0.0  # when the line was last redrawn
        self.updates = 0  # redraws sent (what the tests bound)

    # -- View ------------------------------------------------------------------
    def begin(self, run: EachRun) -> None:
        if self.frontend == "widgets":
            import ipywidgets as w

            # The colour in the widget's style, sent once: each redraw sends only the line.
            self.label = w.HTML(self._html(progress_line(run.progress)),
                                style={"text_color": "var(--jp-ui-font-color2, #57606a)"})
            children: list[Any] = [self.label]
            if self.stoppable:
                stop = w.Button(description="Stop", icon="stop", button_style="warning",
                                tooltip="Stop the run (keeps the finished rows)",
                                layout=w.Layout(width="auto"))
                stop.on_click(lambda _button: run.stop())
                children.append(stop)
            self.box = w.HBox(children, layout=w.Layout(align_items="center", gap="12px"))
            self.handle = self._display(self.box, display_id=True)
        elif self.frontend == "text":
            self._line(progress_line(run.progress))

    def refresh(self, run: EachRun) -> None:
        # Redrawn at most every SPACING s, and less often as the run goes on (every 2 s after a
        # minute, 20 s after ten): a long run sends a few hundred small updates, not thousands.
        now = time.perf_counter()
        if now - self.drawn < max(SPACING, run.progress.elapsed / SLOWING):
            return
        line = progress_line(run.progress)
        if line == self.shown:
            return  # nothing new: nothing sent
        self.drawn = now
        if self.frontend == "widgets" and self.label is not None:
            self.label.value = self._html(line)
            self.updates += 1
        elif self.frontend == "text":
            self._line(line)

    def end(self, run: EachRun) -> None:
        summary = summary_line(run)
        header, rows = _head(run)
        table = table_html(header, rows) if rows else ""
        more = len(run.finished) - len(rows)
        tail = f"… and {more:,} more rows (-o VAR gets the table)" if more > 0 else ""
        if self.frontend == "text":
            self.out.write("\r\x1b[2K" if self.shown else "")
            self.out.flush()
            lines = [summary] + [" | ".join(header)] * bool(rows) + \
                [" | ".join(r) for r in rows] + [tail] * bool(tail)
            print("\n".join(lines), file=self.out)
            return
        body = (f'<div class="cm-note"><b>{text_html(summary)}</b></div>{table}'
                + (f'<div class="cm-note">{text_html(tail)}</div>' if tail else ""))
        plain = "\n".join([summary] + [" | ".join(header)] * bool(rows)
                          + [" | ".join(r) for r in rows] + [tail] * bool(tail))
        bundle = {"text/html": document(body, style=True), "text/plain": plain}
        if self.handle is not None:
            # The widget line becomes the static summary: a saved notebook shows no dead widget.
            self.handle.update(bundle, raw=True)
            close_tree(self.box)
        else:
            self._display(bundle, raw=True)

    # -- drawing ------------------------------------------------------------------
    def _html(self, line: str) -> str:
        self.shown = line
        return text_html(line)

    def _line(self, line: str) -> None:
        self.shown = line
        self.out.write("\r\x1b[2K" + line)
        self.out.flush()
