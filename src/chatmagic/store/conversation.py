"""Conversations as plain values, their OpenAI-messages wire format, and a notebook's journal.

A `Conversation` is a system message and a list of `Turn`s; `messages()` is
exactly what ``chat.completions.create(messages=...)`` accepts. A turn is the
list of messages one exchange added (the user's, the assistant's with its
tool calls, the tool results, the answer); its facts (model, usage, timings,
"incomplete") stay in ``Turn.meta``, beside the messages, never in them.
`Notebook` holds one notebook's conversations and, when it knows which
notebook it serves, journals every change to an append-only JSONL file:
appending a turn writes one line (O(1) bytes), a line cut short by a crash is
skipped on load, and a file lock keeps two kernels of the same notebook from
interleaving their writes. A journal that cannot be written (a full disk) is
said once, and the conversations go on in memory; so does one conversation after
an exchange too large for its line (journalling it on would leave a gap). Keys
are never stored.
Messages that come from outside are checked by `chatmagic.store.messages`.
"""

from __future__ import annotations

import copy
import errno
import hashlib
import json
import os
import re
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.errors import HistoryError
from ..core.names import did_you_mean
from . import messages as limits
from .jsonl import Write, append_json_line
from .messages import text_chars, validate_messages
from .rowstore import RowStore

__all__ = ["Turn", "Conversation", "Notebook", "history_dir", "journal_path", "JOURNAL_VERSION"]


@dataclass
class Turn:
    """One exchange: the messages it added to the conversation, and facts about it.

    ``messages`` is what the exchange said, in order: the user's message, then
    the assistant's (with ``tool_calls`` when it called tools), the ``tool``
    results, and so on to the final answer; sent back as they are. ``meta`` holds
    the facts (model, usage, timings, "incomplete"), never sent.
    """

    messages: list[dict[str, Any]]
    meta: dict[str, Any] = field(default_factory=dict)
    #: Names the turn in the journal, so an undo takes this turn away and no other (two
    #: kernels of one notebook append to one journal).
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])

    def __post_init__(self) -> None:
        # Turn(user, assistant) was the shape before turns were messages: say so, loudly.
        if not isinstance(self.messages, list) or not isinstance(self.meta, dict):
            raise TypeError("Turn takes a list of messages and a dict of facts "
                            "(Turn.of(user, assistant) for a plain exchange)")

    @classmethod
    def of(cls, user: dict[str, Any], assistant: dict[str, Any] | None = None,
           meta: dict[str, Any] | None = None) -> "Turn":
        """A plain exchange: a user message and the assistant's answer (if any)."""
        return cls([user] + ([assistant] if assistant is not None else []), dict(meta or {}))

    @property
    def user(self) -> dict[str, Any]:
        """The message that opened the exchange (the user's, unless loaded otherwise)."""
        return self.messages[0] if self.messages else {"role": "user", "content": ""}

    @property
    def assistant(self) -> dict[str, Any] | None:
        """The assistant's last message: the answer (None before any came)."""
        return next((m for m in reversed(self.messages) if m.get("role") == "assistant"), None)

    @property
    def incomplete(self) -> bool:
        return bool(self.meta.get("incomplete"))

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "messages": self.messages, "meta": self.meta}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Turn":
        """A turn as the journal keeps it: ``messages`` (format 2), or ``user`` and
        ``assistant`` (format 1, and lines written before formats had numbers)."""
        if "messages" in data:
            messages = list(data["messages"])
        else:
            messages = [data["user"]] + ([data["assistant"]] if data.get("assistant") is not None
                                         else [])
        turn = cls(messages, dict(data.get("meta") or {}))
        if isinstance(data.get("id"), str):
            turn.id = data["id"]
        return turn


@dataclass
class Conversation:
    """A named conversation: a system message and its turns."""

    name: str = "default"
    system: str | None = None
    turns: list[Turn] = field(default_factory=list)

    def messages(self) -> list[dict[str, Any]]:
        """The OpenAI messages list: system first, then every turn's messages in order."""
        out: list[dict[str, Any]] = []
        if self.system:
            out.append({"role": "system", "content": self.system})
        for turn in self.turns:
            out.extend(copy.deepcopy(turn.messages))
        return out

    @classmethod
    def from_messages(cls, messages: Any, name: str = "default") -> "Conversation":
        """A conversation from an OpenAI messages list, or a clear error.

        A leading system (or developer) message becomes the system message; each
        user message opens a turn, and what follows it (assistant messages with
        their tool calls, tool results, a later system message) belongs to that turn,
        so exporting it again gives the same list.
        """
        validate_messages(messages)
        conv = cls(name)
        rest = [dict(m) for m in messages]
        if rest and rest[0]["role"] in ("system", "developer"):
            conv.system = _content_text(rest.pop(0)["content"])
        for message in rest:
            if message["role"] == "user" or not conv.turns:
                conv.turns.append(Turn([message]))
            else:
                conv.turns[-1].messages.append(message)
        return conv


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    return " ".join(p["text"] for p in content if isinstance(p, dict) and p.get("type") == "text"
                    and isinstance(p.get("text"), str))


def history_dir() -> Path:
    """Where per-notebook histories are stored (the user data dir)."""
    import platformdirs

    return Path(platformdirs.user_data_dir("chatmagic", appauthor=False)) / "history"


def journal_path(notebook: str, directory: Path) -> Path:
    """The journal of a notebook in ``directory``; the other files kept for it share its stem."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(notebook).stem)[:40] or "notebook"
    digest = hashlib.sha256(notebook.encode()).hexdigest()[:12]
    return directory / f"{stem}-{digest}.jsonl"


#: The journal's line format. 2: a turn is its list of messages (tool calls and results
#: included). 1: a turn was ``user`` and ``assistant``; lines without "v" are version 1
#: (written before it was named). Both still load; new lines are written as 2.
JOURNAL_VERSION = 2
_READABLE_VERSIONS = (1, 2)


class Notebook:
    """One notebook's conversations, journaled to disk when the notebook is known, and the
    finished rows of its runs over many inputs (``rows``, beside the journal)."""

    def __init__(self, notebook: str | None = None, directory: Path | None = None) -> None:
        self.notebook = notebook
        self.conversations: dict[str, Conversation] = {}
        self.path: Path | None = None
        #: Journal lines that could not be read (damaged, or from a newer chatmagic): skipped,
        #: the rest loaded; the magics say so once.
        self.unreadable = 0
        #: How the journal's bytes reach the file: ``os.write`` (a test's disk that fills).
        self.write: Write = os.write
        #: Conversations kept in memory only since an exchange too large for the journal: a
        #: later line of theirs would follow a turn the file does not have.
        self.unjournalled: set[str] = set()
        if notebook:
            self.path = journal_path(notebook, directory or history_dir())
            self._replay()
        #: Rows of --each runs that finished, so running a cell again sends only the others.
        self.rows = RowStore.beside(self.path)

    # -- reading ---------------------------------------------------------------
    def get(self, name: str, create: bool = True) -> Conversation:
        if name not in self.conversations:
            if not create:
                known = ", ".join(self.conversations) or "none yet"
                near = did_you_mean(name, self.conversations)
                raise HistoryError(f"no conversation named '{name}'.{near} Known: {known}")
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
            except (ValueError, KeyError, TypeError, AttributeError, RecursionError,
                    HistoryError):
                # A line cut short by a crash, damaged, or written by a newer chatmagic:
                # skip it, keep the rest, and count it.
                if line.strip():
                    self.unreadable += 1

    def _apply(self, op: dict[str, Any]) -> None:
        if not isinstance(op.get("conv"), str):
            raise HistoryError("a journal line without a conversation name")
        if op.get("v", 1) not in _READABLE_VERSIONS:
            raise HistoryError(f"a journal line of format {op.get('v')!r}")
        kind = op["op"]
        if kind not in ("system", "turn", "undo", "clear", "replace"):
            raise HistoryError(f"an unknown journal operation {kind!r}")
        if kind == "system":
            if not isinstance(op["text"], (str, type(None))):
                raise HistoryError("a system message that is not text")
        elif kind == "turn":
            _check_turn(op)
        elif kind == "replace":
            for turn in op["turns"]:
                _check_turn(turn)
        conv = self.get(op["conv"])
        if kind == "system":
            conv.system = op["text"]
        elif kind == "turn":
            conv.turns.append(Turn.from_dict(op))
        elif kind == "undo":
            if isinstance(op.get("id"), str):  # this turn, wherever it is now
                conv.turns = [t for t in conv.turns if t.id != op["id"]]
            elif conv.turns:  # journals written before turns had ids
                conv.turns.pop()
        elif kind == "clear":
            conv.turns.clear()
            conv.system = op.get("system")
        elif kind == "replace":
            conv.system = op.get("system")
            conv.turns = [Turn.from_dict(t) for t in op["turns"]]

    # -- changing (each change is applied, then journaled as one line) ---------
    def _do(self, op: dict[str, Any]) -> None:
        op = {"v": JOURNAL_VERSION, **op}
        self._apply(op)
        if self.path is not None and op["conv"] not in self.unjournalled:
            try:
                self._append(op)
            except OSError as exc:  # a full disk, a read-only directory: the chat goes on
                self._in_memory(exc)

    def _append(self, op: dict[str, Any]) -> None:
        assert self.path is not None
        append_json_line(self.path, op, write=self.write)

    def _in_memory(self, exc: OSError) -> None:
        """The journal cannot be written: say so once, and journal nothing more (a later
        line would leave a gap); every conversation goes on in memory."""
        print(f"warning: the history could not be saved to {self.path}: {_why(exc)}. This "
              "kernel keeps its conversations in memory only from now on; the file holds them "
              "as they were before this change. To keep them, free space and save each one "
              "(%chat_history list, then %chat_history save FILE -c NAME; load brings it "
              "back); a restarted kernel journals again, from what the file holds.",
              file=sys.stderr)
        self.path = None

    def set_system(self, name: str, text: str | None) -> None:
        if self.get(name).system != text:
            self._do({"op": "system", "conv": name, "text": text})

    def add_turn(self, name: str, turn: Turn) -> None:
        """Add an exchange. One over the journal's limit of text is kept in memory only, and
        so is the rest of its conversation (the journal would have a gap): said once."""
        try:
            self._do({"op": "turn", "conv": name, **turn.to_dict()})
        except HistoryError:
            chars = text_chars(turn.messages)
            if chars <= limits.MAX_TEXT:
                raise
            self.get(name).turns.append(turn)
            if self.path is not None and name not in self.unjournalled:
                self.unjournalled.add(name)
                print(f"warning: this exchange holds {chars:,} characters of text; the history "
                      f"file keeps at most {limits.MAX_TEXT:,} ({limits.MAX_TEXT / 2**20:g} MiB) "
                      "per exchange, a fixed limit (no setting raises it). Conversation "
                      f"'{name}' is kept in memory only from now on, this exchange and every "
                      f"later change to it: {self.path} keeps it as it was before, and so will "
                      "a restarted kernel. To keep it, save it (%chat_history save FILE -c "
                      f"{name}).", file=sys.stderr)

    def undo(self, name: str) -> Turn:
        conv = self.get(name, create=False)
        if not conv.turns:
            raise HistoryError(f"conversation '{name}' has no exchange to undo")
        last = conv.turns[-1]
        self._do({"op": "undo", "conv": name, "id": last.id})
        return last

    def clear(self, name: str) -> None:
        """Forget the conversation's turns and system message."""
        self._do({"op": "clear", "conv": name})

    def replace(self, name: str, conversation: Conversation) -> None:
        self._do({"op": "replace", "conv": name, "system": conversation.system,
                  "turns": [t.to_dict() for t in conversation.turns]})


def _why(exc: OSError) -> str:
    """Why a write failed, in words (a full disk named as one)."""
    said = exc.strerror or str(exc) or type(exc).__name__
    if exc.errno == errno.ENOSPC:
        return f"the disk is full ({said})"
    if exc.errno == getattr(errno, "EDQUOT", None):
        return f"the disk quota is used up ({said})"
    return said


def _check_turn(data: Any) -> None:
    """A journaled turn must hold real messages (a damaged one would break every show)."""
    if not isinstance(data, dict):
        raise HistoryError("a turn that is not an object")
    if "messages" in data:
        messages = data["messages"]
    else:  # format 1
        messages = [data["user"]] + ([data["assistant"]] if data.get("assistant") is not None
                                     else [])
    validate_messages(messages)
    if not isinstance(data.get("meta") or {}, dict):
        raise HistoryError("a turn whose facts are not an object")
