"""OpenAI chat messages from outside, checked: what a file or a variable may bring in.

`validate_messages` refuses anything that is not a list of chat messages
(roles, content parts, tool calls and results) within the limits below, naming
the first bad message; `read_messages` loads such a list from a JSON or JSONL
file and `write_private` saves one readable by its owner only. Each failure is
one `HistoryError` that says what to fix.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from ..core.errors import HistoryError

__all__ = ["validate_messages", "read_messages", "write_private", "MAX_MESSAGES", "MAX_DEPTH",
           "MAX_TEXT", "MAX_FILE_BYTES", "text_chars"]

_ROLES = {"system", "user", "assistant", "developer", "tool"}

#: Limits of a history a file (or a variable) may bring in.
MAX_MESSAGES = 20_000
MAX_DEPTH = 12  # a message is a dict of parts of dicts: real ones nest 4 or 5 deep
MAX_TEXT = 64 * 1024 * 1024  # characters of text in all messages together
MAX_FILE_BYTES = 128 * 1024 * 1024


def _shape(value: Any, limit: int) -> tuple[int, int]:
    """(depth, characters of text) of a JSON-like value, without recursion."""
    depth, chars = 0, 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        depth = max(depth, level)
        if level > limit:
            return depth, chars
        if isinstance(item, str):
            chars += len(item)
        elif isinstance(item, dict):
            stack.extend((v, level + 1) for v in item.values())
            chars += sum(len(k) for k in item if isinstance(k, str))
        elif isinstance(item, (list, tuple)):
            stack.extend((v, level + 1) for v in item)
    return depth, chars


def _part_problem(part: Any) -> str | None:
    if not isinstance(part, dict) or not isinstance(part.get("type"), str):
        return "has a content part that is not an object with a \"type\""
    if part["type"] in ("text", "refusal") and not isinstance(part.get(part["type"]), str):
        return f"has a {part['type']} part whose {part['type']} is not a string"
    if part["type"] == "image_url":
        image = part.get("image_url")
        if not (isinstance(image, dict) and isinstance(image.get("url"), str)):
            return "has an image_url part without {\"url\": \"...\"}"
    return None


def _message_problem(message: Any) -> str | None:
    """What is wrong with one message, or None."""
    if not isinstance(message, dict) or message.get("role") not in _ROLES:
        return f"is not a chat message (an object with a role of {', '.join(sorted(_ROLES))})"
    depth, _ = _shape(message, MAX_DEPTH)
    if depth > MAX_DEPTH:
        return f"nests deeper than {MAX_DEPTH} levels"
    content = message.get("content")
    if isinstance(content, list):
        return next(filter(None, map(_part_problem, content)), None)
    if not (isinstance(content, str) or content is None):
        return "has content that is neither text nor a list of parts"
    if "name" in message and not isinstance(message["name"], str):
        return "has a name that is not a string"
    if message["role"] == "tool" and not isinstance(message.get("tool_call_id"), str):
        return "is a tool result without a \"tool_call_id\" string"
    if "tool_calls" in message:
        calls = message["tool_calls"]
        if message["role"] != "assistant" or not isinstance(calls, list):
            return "has tool_calls that are not an assistant's list of calls"
        return next(filter(None, map(_call_problem, calls)), None)
    return None


def _call_problem(call: Any) -> str | None:
    """What is wrong with one of an assistant's tool calls, or None."""
    function = call.get("function") if isinstance(call, dict) else None
    if not (isinstance(call, dict) and isinstance(call.get("id"), str)
            and call.get("type") == "function" and isinstance(function, dict)
            and isinstance(function.get("name"), str)
            and isinstance(function.get("arguments"), str)):
        return ("has a tool call that is not {\"id\": ..., \"type\": \"function\", "
                "\"function\": {\"name\": ..., \"arguments\": \"JSON text\"}}")
    return None


def _preview(message: Any) -> str:
    text = repr(message) if not isinstance(message, (dict, list)) else type(message).__name__
    if isinstance(message, dict):
        text = f"role={str(message.get('role'))[:20]!r}"
    return text[:60]


def validate_messages(messages: Any) -> None:
    """Refuse anything that is not a list of OpenAI chat messages (within the limits),
    naming the first bad message."""
    if not isinstance(messages, list):
        raise HistoryError(f"expected a list of messages, got {type(messages).__name__}")
    if len(messages) > MAX_MESSAGES:
        raise HistoryError(f"{len(messages)} messages; the limit is {MAX_MESSAGES}")
    total = 0
    for i, message in enumerate(messages):
        problem = _message_problem(message)
        if problem:
            raise HistoryError(f"message {i} ({_preview(message)}) {problem}; nothing was "
                               "changed")
        total += _shape(message, MAX_DEPTH)[1]
        if total > MAX_TEXT:
            raise HistoryError(f"the messages hold more than {MAX_TEXT // 2**20} MiB of text "
                               f"(the limit is reached at message {i}); nothing was changed")


def read_messages(path: Path, fmt: str = "json") -> list[Any]:
    """The messages list in a JSON (or JSONL) file, validated, or one HistoryError."""
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise HistoryError(f"load: {path} is {size / 2**20:.0f} MiB; the limit is "
                               f"{MAX_FILE_BYTES // 2**20} MiB; the history is unchanged")
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise HistoryError(f"load: no file {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise HistoryError(f"load: cannot read {path}: {exc}; the history is unchanged") from None
    try:
        if path.suffix == ".jsonl" or fmt == "jsonl":
            data: Any = [json.loads(line) for line in raw.splitlines() if line.strip()]
        else:
            data = json.loads(raw)
    except RecursionError:
        raise HistoryError(f"load: {path} nests too deep to be chat messages; the history is "
                           "unchanged") from None
    except ValueError as exc:
        raise HistoryError(f"load: {path} is not valid JSON ({exc}); the history is unchanged")\
            from None
    try:
        validate_messages(data)
    except HistoryError as exc:
        raise HistoryError(f"load: {path}: {exc}") from None
    return data  # type: ignore[no-any-return]


def text_chars(messages: list[Any]) -> int:
    """The characters of text in ``messages``, as `MAX_TEXT` counts them."""
    return sum(_shape(message, MAX_DEPTH)[1] for message in messages)


def write_private(path: Path, text: str) -> bool:
    """Write a saved history readable by its owner only, or raise one HistoryError; True
    when it replaced a file that was there.

    Never through a link: a symbolic link at ``path`` (one planted where the file goes) is
    refused. The text goes to a new private file in the same directory, renamed over
    ``path`` when whole: a file that was there is replaced, never opened, so no other
    file's content or mode changes, and a failed write leaves it as it was. What ``path``
    names afterwards is private (0600) like every saved history: a conversation is not made
    readable by others because an older file there was.
    """
    if not path.parent.is_dir():
        raise HistoryError(f"save: the directory {path.parent} does not exist; create it first "
                           "or pick another path. Nothing was written.")
    if path.is_symlink():
        raise HistoryError(f"save: {path} is a symbolic link (to {os.readlink(path)}); a "
                           "history is never written through a link. Remove the link or pick "
                           "another path. Nothing was written.")
    if path.exists() and not path.is_file():
        kind = "a directory" if path.is_dir() else "not a regular file"
        raise HistoryError(f"save: {path} is {kind}; pick another path. Nothing was written.")
    replaced = path.exists()
    try:
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise HistoryError(f"save: cannot write {path}: {exc.strerror}. Nothing was written.")\
            from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:  # mkstemp made it 0600
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, path)  # a link put there since is replaced, not followed
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise HistoryError(f"save: cannot write {path}: {exc.strerror or exc}. Nothing was "
                           "written.") from None
    return replaced
