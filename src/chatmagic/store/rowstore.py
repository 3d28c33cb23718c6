"""Finished rows of runs over many inputs, kept so that running a cell again resumes it.

A row is keyed by its request (`request_digest`: endpoint, model and body,
never the key or the headers), so the same cell run again, after a Stop, an
interrupt, failures or a kernel restart, sends only the rows with no finished
result. Only rows that finished without an error are kept.

Each `chatmagic.store.conversation.Notebook` owns its store (``rows``): a
notebook the kernel can name keeps them on disk next to its history journal
(``<journal>.rows.jsonl``, one JSON line per row, readable by its owner only);
one it cannot name (nbclient, terminal IPython) keeps them in memory for the
session, as does one whose file cannot be read or written (a warning says so
once; the run goes on).
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any, Protocol

from .jsonl import append_json_line
from ..core.table import Row

__all__ = ["RowStore", "request_digest", "store_for", "ROWS_VERSION"]

#: The line format of the rows file; lines of another version are skipped.
ROWS_VERSION = 1

# What changes how a request is sent, not what it asks: left out of its identity.
_TRANSPORT_FIELDS = ("stream", "stream_options", "timeout")

_KEPT = ("model", "text", "finish_reason", "prompt_tokens", "completion_tokens", "cost",
         "seconds", "currency")


def request_digest(base_url: str, request: dict[str, Any]) -> str:
    """A request's identity: its endpoint and body (headers and key are not part of it)."""
    body = {k: v for k, v in request.items() if k not in _TRANSPORT_FIELDS}
    text = json.dumps({"endpoint": base_url.rstrip("/"), "body": body}, sort_keys=True,
                      ensure_ascii=False, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()


class RowStore:
    """Finished rows by request digest, on disk (``path``) or in memory (no path)."""

    @classmethod
    def beside(cls, journal: Path | None) -> "RowStore":
        """The store next to a history journal (``<journal>.rows.jsonl``); in memory without
        one."""
        return cls(journal.with_name(journal.stem + ".rows.jsonl") if journal else None)

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._rows: dict[str, dict[str, Any]] | None = None
        self.unreadable = 0

    def _load(self) -> dict[str, dict[str, Any]]:
        if self._rows is not None:
            return self._rows
        self._rows = {}
        if self.path is None:
            return self._rows
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return self._rows
        except OSError as exc:
            self._in_memory("read", exc)
            return self._rows
        for line in data.splitlines():
            try:
                entry = json.loads(line)
                if entry.get("v") != ROWS_VERSION or not isinstance(entry.get("row"), dict):
                    raise ValueError("another format")
                self._rows[str(entry["id"])] = entry["row"]
            except (ValueError, KeyError, TypeError, AttributeError):
                if line.strip():
                    self.unreadable += 1  # cut short by a crash, or a newer chatmagic's
        return self._rows

    def get(self, digest: str, key: Any) -> Row | None:
        """The finished row of this request, as the row of element ``key``; else None."""
        kept = self._load().get(digest)
        if kept is None:
            return None
        values: dict[str, Any] = {name: kept.get(name) for name in _KEPT}
        return Row(key, **values)

    def put(self, digest: str, row: Row) -> None:
        """Keep a row that finished without an error (failed ones are sent again)."""
        if not row.ok:
            return
        record = {name: getattr(row, name) for name in _KEPT}
        self._load()[digest] = record
        if self.path is not None:
            try:
                self._append({"v": ROWS_VERSION, "id": digest, "row": record})
            except OSError as exc:  # a full disk, a read-only directory: the run goes on
                self._in_memory("write", exc)

    def _in_memory(self, doing: str, exc: OSError) -> None:
        """The file cannot be used: say so once (one line), and keep the rows in memory."""
        print(f"warning: cannot {doing} the store of finished rows {self.path} "
              f"({exc.strerror or type(exc).__name__}); this session keeps them in memory "
              "only", file=sys.stderr)
        self.path = None

    def _append(self, entry: dict[str, Any]) -> None:
        assert self.path is not None
        append_json_line(self.path, entry, sync=False)  # one line per row: no wait per row


class _HasRows(Protocol):
    @property
    def rows(self) -> RowStore: ...


def store_for(notebook: _HasRows) -> RowStore:
    """A notebook's finished rows: ``notebook.rows``. Kept only until its last callers
    (`chatmagic.api.functions.map`, `chatmagic.shell.each_cell`) read ``notebook.rows``."""
    return notebook.rows
