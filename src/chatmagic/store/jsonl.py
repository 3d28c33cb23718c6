"""Journals of JSON lines readable by their owner only: one locked append per line.

The history journal (`conversation`), the store of finished rows (`rowstore`)
and the Batch API's job store (`batch_store`) all append this way: the file
and its directory created private (0600 / 0700), the line written whole under
an exclusive lock (two kernels of one notebook), and never glued onto a last
line a crash left torn (that one stays unreadable, the new one is read). A line
that cannot be written whole (a full disk) is cut off again: the file ends where
it did, every line in it readable.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
from pathlib import Path
from typing import Any, Callable

try:
    import fcntl
except ImportError:  # Windows: appends of one short line each
    fcntl = None  # type: ignore[assignment]

__all__ = ["append_json_line", "private_dir", "Write"]

#: How bytes reach an open file: ``os.write``, or a test's disk that fills up.
Write = Callable[[int, memoryview], int]


def private_dir(directory: Path) -> None:
    """Create a directory readable by its owner only (an existing one is left as it is)."""
    if not directory.is_dir():
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)


def append_json_line(path: Path, entry: dict[str, Any], *, sync: bool = True,
                     default: Any = None, write: Write = os.write) -> None:
    """Append ``entry`` as one JSON line to ``path`` (owner-only; OSError when it cannot).

    The line is written whole or not at all: when a write fails part-way (a full disk),
    the file is cut back to its length before, and the OSError raised. ``sync`` waits
    for the disk (a journal); ``default`` is json.dumps' for odd values.
    """
    line = (json.dumps(entry, ensure_ascii=False, default=default) + "\n").encode()
    private_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.fchmod(fd, 0o600)  # a file written by an older version may be 0644
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        # A torn previous write (a killed process) must not glue onto this line.
        size = os.fstat(fd).st_size
        if size and _last_byte(path, size) != b"\n":
            line = b"\n" + line
        try:
            _write_all(fd, line, write)
            if sync:
                os.fsync(fd)
        except OSError:
            with contextlib.suppress(OSError):  # the first error is the one to tell
                os.ftruncate(fd, size)  # no part of this line stays
            raise
    finally:
        os.close(fd)  # closing releases the lock


def _write_all(fd: int, data: bytes, write: Write) -> None:
    """All of ``data``: a write may take only part of it (a disk filling up), then fail."""
    view = memoryview(data)
    while view:
        written = write(fd, view)
        if written <= 0:  # nothing taken and no error: no room
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        view = view[written:]


def _last_byte(path: Path, size: int) -> bytes:
    with path.open("rb") as f:
        f.seek(size - 1)
        return f.read(1)
