"""Conversations as plain values, their OpenAI-messages wire format, and storage.

A `Conversation` is a system message and a list of `Turn`s; `messages()` is
exactly what ``chat.completions.create(messages=...)`` accepts. Per-turn facts
(model, usage, timings, "incomplete") stay in ``Turn.meta``, beside the
messages, never in them. `Notebook` holds one notebook's conversations and,
when it knows which notebook it serves, journals every change to an
append-only JSONL file: appending a turn writes one line (O(1) bytes), a line
cut short by a crash is skipped on load, and a file lock keeps two kernels of
the same notebook from interleaving their writes. Keys are never stored.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import HistoryError

try:  # POSIX file locks; elsewhere the append-only journal alone keeps lines whole
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["Turn", "Conversation", "Notebook", "validate_messages", "history_dir"]

_ROLES = {"system", "user", "assistant", "developer", "tool"}


@dataclass
class Turn:
    """One exchange: the user's message, the assistant's reply, and facts about it."""

    user: dict[str, Any]
    assistant: dict[str, Any] | None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def incomplete(self) -> bool:
        return bool(self.meta.get("incomplete"))

    def to_dict(self) -> dict[str, Any]:
        return {"user": self.user, "assistant": self.assistant, "meta": self.meta}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Turn":
        return cls(data["user"], data.get("assistant"), dict(data.get("meta") or {}))


@dataclass
class Conversation:
    """A named conversation: a system message and its turns."""

    name: str = "default"
    system: str | None = None
    turns: list[Turn] = field(default_factory=list)

    def messages(self) -> list[dict[str, Any]]:
        """The OpenAI messages list: system first, then user/assistant turns."""
        out: list[dict[str, Any]] = []
        if self.system:
            out.append({"role": "system", "content": self.system})
        for turn in self.turns:
            out.append(copy.deepcopy(turn.user))
            if turn.assistant is not None:
                out.append(copy.deepcopy(turn.assistant))
        return out

    @classmethod
    def from_messages(cls, messages: Any, name: str = "default") -> "Conversation":
        """A conversation from an OpenAI messages list, or a clear error."""
        validate_messages(messages)
        conv = cls(name)
        rest = list(messages)
        if rest and rest[0]["role"] in ("system", "developer"):
            conv.system = _content_text(rest.pop(0)["content"])
        pending: dict[str, Any] | None = None
        for message in rest:
            if message["role"] == "user":
                if pending is not None:
                    conv.turns.append(Turn(pending, None))
                pending = dict(message)
            elif message["role"] == "assistant":
                conv.turns.append(Turn(pending or {"role": "user", "content": ""},
                                       dict(message)))
                pending = None
        if pending is not None:
            conv.turns.append(Turn(pending, None))
        return conv


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return " ".join(p.get("text", "") for p in content if isinstance(p, dict))


def validate_messages(messages: Any) -> None:
    """Refuse anything that is not a list of OpenAI chat messages."""
    if not isinstance(messages, list):
        raise HistoryError(f"expected a list of messages, got {type(messages).__name__}")
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in _ROLES:
            raise HistoryError(f"item {i} is not a chat message (a dict with a role of "
                               f"{', '.join(sorted(_ROLES))}): {str(message)[:80]}")
        content = message.get("content")
        if not (isinstance(content, str) or content is None or (
                isinstance(content, list) and all(isinstance(p, dict) for p in content))):
            raise HistoryError(f"message {i} has content that is neither text nor a list of parts")


def history_dir() -> Path:
    """Where per-notebook histories are stored (the user data dir)."""
    import platformdirs

    return Path(platformdirs.user_data_dir("chatmagic", appauthor=False)) / "history"


def _file_for(notebook: str, directory: Path) -> Path:
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(notebook).stem)[:40] or "notebook"
    digest = hashlib.sha256(notebook.encode()).hexdigest()[:12]
    return directory / f"{stem}-{digest}.jsonl"


class Notebook:
    """One notebook's conversations, journaled to disk when the notebook is known."""

    def __init__(self, notebook: str | None = None, directory: Path | None = None) -> None:
        self.notebook = notebook
        self.conversations: dict[str, Conversation] = {}
        self.path: Path | None = None
        if notebook:
            self.path = _file_for(notebook, directory or history_dir())
            self._replay()

    # -- reading ---------------------------------------------------------------
    def get(self, name: str, create: bool = True) -> Conversation:
        if name not in self.conversations:
            if not create:
                known = ", ".join(self.conversations) or "none yet"
                raise HistoryError(f"no conversation named '{name}' (known: {known})")
            self.conversations[name] = Conversation(name)
        return self.conversations[name]

    def _replay(self) -> None:
        assert self.path is not None
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return
        for line in data.splitlines():
            try:
                op = json.loads(line)
                self._apply(op)
            except (ValueError, KeyError, TypeError, HistoryError):
                continue  # a line cut short by a crash, or damaged: skip it, keep the rest

    def _apply(self, op: dict[str, Any]) -> None:
        conv = self.get(op["conv"])
        kind = op["op"]
        if kind == "system":
            conv.system = op["text"]
        elif kind == "turn":
            conv.turns.append(Turn.from_dict(op))
        elif kind == "undo":
            if conv.turns:
                conv.turns.pop()
        elif kind == "clear":
            conv.turns.clear()
            conv.system = op.get("system")
        elif kind == "replace":
            conv.system = op.get("system")
            conv.turns = [Turn.from_dict(t) for t in op["turns"]]

    # -- changing (each change is applied, then journaled as one line) ---------
    def _do(self, op: dict[str, Any]) -> None:
        self._apply(op)
        if self.path is not None:
            self._append(op)

    def _append(self, op: dict[str, Any]) -> None:
        assert self.path is not None
        line = (json.dumps(op, ensure_ascii=False) + "\n").encode()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            # A torn previous write (a killed process) must not glue onto this line.
            size = os.fstat(fd).st_size
            if size and _last_byte(self.path, size) != b"\n":
                line = b"\n" + line
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)  # closing releases the lock

    def set_system(self, name: str, text: str | None) -> None:
        if self.get(name).system != text:
            self._do({"op": "system", "conv": name, "text": text})

    def add_turn(self, name: str, turn: Turn) -> None:
        self._do({"op": "turn", "conv": name, **turn.to_dict()})

    def undo(self, name: str) -> Turn:
        conv = self.get(name, create=False)
        if not conv.turns:
            raise HistoryError(f"conversation '{name}' has no exchange to undo")
        last = conv.turns[-1]
        self._do({"op": "undo", "conv": name})
        return last

    def clear(self, name: str) -> None:
        """Forget the conversation's turns and system message."""
        self._do({"op": "clear", "conv": name})

    def replace(self, name: str, conversation: Conversation) -> None:
        self._do({"op": "replace", "conv": name, "system": conversation.system,
                  "turns": [t.to_dict() for t in conversation.turns]})


def _last_byte(path: Path, size: int) -> bytes:
    with path.open("rb") as f:
        f.seek(size - 1)
        return f.read(1)
