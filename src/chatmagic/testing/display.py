"""A recording display for the renderers (`chatmagic.shell.sinks`), as ipywidgets' DummyComm
records a widget's messages: renderers tested in milliseconds, without a kernel or a browser.

    shown = DisplayRecorder()
    renderer = CellRenderer("echo", widgets=False, display=shown)
    ...  # begin, refresh, end with a run
    shown.updates, shown.sent_bytes(), shown.final_html()

Each call of the recorder is one new output (what ``IPython.display.display`` adds); its
handle's ``update`` replaces what that output shows (``update_display_data``). Widgets send
their state through comms: `create_comm` makes comms that keep their messages here too
(install it as ``comm.create_comm`` for a test, as ipywidgets' own tests do). What a reader of
the saved notebook sees is `final`: each output's last state.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

__all__ = ["DisplayRecorder", "Output", "RecordingComm"]


@dataclass
class Output:
    """One output in the cell and everything it showed, first to last (bundles, or widgets)."""

    index: int
    states: list[Any] = field(default_factory=list)

    @property
    def last(self) -> Any:
        return self.states[-1]


class _Handle:
    """What ``display(..., display_id=True)`` returns: a way to update that output."""

    def __init__(self, recorder: "DisplayRecorder", output: Output) -> None:
        self._recorder, self._output = recorder, output
        self.display_id = f"recorded-{output.index}"

    def update(self, obj: Any, *, raw: bool = False, **_: Any) -> None:
        self._recorder._keep("update", self._output, obj)


class RecordingComm:
    """A widget's comm that keeps what it would send (its opening state, then its updates)."""

    kernel = "recorded"  # not None: ipywidgets sends state only through a comm with a kernel

    def __init__(self, recorder: "DisplayRecorder", data: Any = None, **_: Any) -> None:
        self._recorder = recorder
        self.comm_id = f"comm-{len(recorder.comms)}"
        recorder.comms.append(self)
        recorder.widget_messages.append(("open", data))

    def open(self, *args: Any, **kwargs: Any) -> None:
        pass

    def on_msg(self, *args: Any, **kwargs: Any) -> None:
        pass

    def on_close(self, *args: Any, **kwargs: Any) -> None:
        pass

    def send(self, data: Any = None, metadata: Any = None, buffers: Any = None) -> None:
        self._recorder.widget_messages.append(("send", data))

    def close(self, *args: Any, **kwargs: Any) -> None:
        self._recorder.widget_messages.append(("close", None))


class DisplayRecorder:
    """A stand-in for ``IPython.display.display`` that keeps every output and update."""

    def __init__(self) -> None:
        self.outputs: list[Output] = []
        #: ("display" | "update", output index), in the order they happened.
        self.log: list[tuple[str, int]] = []
        #: Every bundle or object sent, in order (a display's or an update's).
        self.sent: list[Any] = []
        self.comms: list[RecordingComm] = []
        #: ("open" | "send" | "close", data) of every widget comm made through `create_comm`.
        self.widget_messages: list[tuple[str, Any]] = []

    def __call__(self, *objs: Any, raw: bool = False, display_id: Any = None,
                 **_: Any) -> _Handle | None:
        handle = None
        for obj in objs:
            output = Output(len(self.outputs))
            self.outputs.append(output)
            self._keep("display", output, obj)
            handle = _Handle(self, output)
        return handle if display_id else None

    def _keep(self, kind: str, output: Output, obj: Any) -> None:
        output.states.append(obj)
        self.log.append((kind, output.index))
        self.sent.append(obj)

    def create_comm(self, *args: Any, **kwargs: Any) -> RecordingComm:
        """A comm for a widget (install as ``comm.create_comm``)."""
        return RecordingComm(self, **kwargs)

    # -- what a reader sees ------------------------------------------------------
    @property
    def displays(self) -> int:
        """Outputs added."""
        return sum(1 for kind, _ in self.log if kind == "display")

    @property
    def updates(self) -> int:
        """Updates of outputs already there."""
        return sum(1 for kind, _ in self.log if kind == "update")

    @property
    def widget_updates(self) -> int:
        """State updates sent by widgets after they opened."""
        return sum(1 for kind, _ in self.widget_messages if kind == "send")

    def sent_bytes(self) -> int:
        """The bytes a kernel would send for all of it: each bundle shown or updated, and each
        widget message, as JSON (a widget displayed is its comm's, not its repr's)."""
        bundles = sum(len(json.dumps(obj)) for obj in self.sent if isinstance(obj, dict))
        widgets = sum(len(json.dumps(data, default=str)) for _, data in self.widget_messages)
        return bundles + widgets

    def final(self) -> list[Any]:
        """What each output shows at the end (what a saved notebook keeps), in order."""
        return [output.last for output in self.outputs]

    def final_text(self, mime: str = "text/html") -> str:
        """The ``mime`` part of every final bundle, joined."""
        return "".join(shown.get(mime, "") for shown in self.final() if isinstance(shown, dict))

    def final_html(self) -> str:
        return self.final_text("text/html")

    def widgets_left(self) -> list[Any]:
        """Outputs that end as a widget (a saved notebook would show "Error displaying
        widget" for each)."""
        return [shown for shown in self.final() if not isinstance(shown, dict)]
