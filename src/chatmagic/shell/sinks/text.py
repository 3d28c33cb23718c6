"""Replies as plain text on stdout, for terminal IPython (no widgets, no display updates)."""

from __future__ import annotations

import sys
from typing import Any

from ...core.events import TextDelta
from ...engine.runner import Events, Run
from ...render.html import clean_text
from .calls import TextCalls
from .figures import footer_text, header_text

__all__ = ["TextRenderer"]


class TextRenderer:
    """Streams a single reply's text as it arrives; prints side-by-side replies one after another."""

    def __init__(self, labels: list[str], schema: Any = None) -> None:
        self.labels = labels
        self.calls = TextCalls()  # the tool calls, printed once each has arrived
        self.schema = schema  # --schema: the object's fields are printed after the JSON
        self._held = ""  # a carriage return the next piece may make a line end (see refresh)

    def begin(self, run: Run) -> None:
        self._held = ""
        if len(run.replies) == 1:
            print(f"[{header_text(self.labels[0], run.replies[0])}]", flush=True)

    def refresh(self, run: Run, events: Events, final: bool = False) -> None:
        if len(run.replies) != 1:
            return  # interleaved columns would be unreadable: print them at the end
        # A single request restarts only before its first word: nothing printed to undo.
        text = self._held + "".join(event.text for _, event in events
                                    if type(event) is TextDelta and event.choice == 0)
        # A "\r" at the end may be half of a "\r\n" the next piece ends: shown now, alone,
        # it would be an escape ("\\r"). Held back until the next piece or the end.
        self._held = "\r" if text.endswith("\r") and not final else ""
        text = text[:len(text) - len(self._held)]
        if text:
            sys.stdout.write(clean_text(text))  # an escape sequence is shown, never obeyed
            sys.stdout.flush()

    def end(self, run: Run, events: Events) -> None:
        if len(run.replies) == 1:
            self.refresh(run, events, final=True)  # what arrived since the last refresh
            reply = run.replies[0]
            if reply.tool_calls():
                print()
                self.calls.draw(reply, final=True)
            if self.schema is not None and reply.parsed is not None:
                from ...render.structured import parsed_text

                print(f"\n\n{parsed_text(self.schema, reply.parsed)}", end="")
            print(f"\n[{footer_text(reply, choice=0)}]", flush=True)
            # The other choices of -n, each under its own header and over its own footer.
            for i in range(1, len(reply.choices)):
                print(f"\n[{header_text(self._label(i), reply)}]\n{clean_text(reply.text(i))}\n"
                      f"[{footer_text(reply, choice=i)}]", flush=True)
            return
        for label, reply in zip(self.labels, run.replies):
            text = clean_text(reply.text())
            print(f"[{header_text(label, reply)}]\n{text}\n[{footer_text(reply)}]\n", flush=True)

    def _label(self, choice: int) -> str:
        """Choice ``choice``'s label: the plan's (one per choice asked), else numbered."""
        if choice < len(self.labels):
            return self.labels[choice]
        # More choices than asked: -n 1's one label has no number, -n N's have theirs.
        return (f"{self.labels[0]} · " if len(self.labels) == 1 else "") + f"choice {choice}"
