"""Where a notebook's Batch API jobs are kept, so they survive kernel restarts.

A job is what one ``%%chat --each VAR --batch-api`` cell sent: one provider
batch per endpoint and model (OpenAI takes one model per batch), and the rows
in input order (each row's ``custom_id``, element key and model label), which
is what ``fetch`` needs to rebuild the table in order. The store is a journal
of JSON lines next to the notebook's history journal (``NAME-DIGEST.batches.jsonl``),
readable by its owner only; it holds ids, labels and the element keys, never a
key or a prompt. Two kernels of one notebook append to it under a lock.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .conversation import history_dir, journal_path
from .jsonl import append_json_line

__all__ = ["BatchPart", "BatchJob", "BatchStore", "store_path", "STORE_VERSION"]

#: The store's line format.
STORE_VERSION = 1


@dataclass
class BatchPart:
    """One provider batch of a job: the requests of one model on one endpoint."""

    profile: str
    base_url: str
    model: str
    label: str
    batch_id: str
    input_file_id: str
    #: The last state the endpoint reported (status, counts, file ids), as of ``seen_at``.
    state: dict[str, Any] = field(default_factory=dict)
    #: Where it starts among its model's rows (a model's rows past one batch's limits are
    #: sent as several batches).
    first: int = 0


@dataclass
class BatchJob:
    """What one cell sent to the Batch API, and how to put its answers back in order."""

    id: str
    created_at: float
    parts: list[BatchPart]
    #: Per row, in input order: [custom_id, element key, model label, request digest (the
    #: key of --each's store of finished rows)].
    rows: list[list[Any]]
    key_name: str = "index"
    schema_fields: list[str] | None = None
    #: The models' labels in the order the cell named them.
    labels: list[str] = field(default_factory=list)
    #: With --schema: its name and JSON schema, to read the answers as --each does.
    schema: dict[str, Any] | None = None

    def part(self, batch_id: str) -> BatchPart | None:
        return next((p for p in self.parts if p.batch_id == batch_id), None)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "BatchJob":
        parts = [BatchPart(**p) for p in data["parts"]]
        return cls(**{**data, "parts": parts})


def store_path(notebook: str | None, directory: Path | None = None) -> Path:
    """The store of a notebook's jobs (beside its history); an unnamed notebook (a terminal,
    a script) shares one store, so a paid-for job is not lost with the kernel either."""
    return journal_path(notebook or "unnamed", directory or history_dir()).with_suffix(
        ".batches.jsonl")


class BatchStore:
    """A notebook's jobs, newest last; on disk when ``path`` is given, else in memory."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self.jobs: dict[str, BatchJob] = {}
        #: Lines that could not be read (damaged, or from a newer chatmagic): skipped.
        self.unreadable = 0
        self.reload()

    def reload(self) -> None:
        """Read the journal again (another kernel of this notebook may have added to it)."""
        self.jobs = {}
        self.unreadable = 0
        if self.path is None or not self.path.exists():
            return
        for line in self.path.read_text(encoding="utf-8", errors="replace").splitlines():
            if not line.strip():
                continue
            try:
                self._apply(json.loads(line))
            except (ValueError, KeyError, TypeError):
                self.unreadable += 1

    def _apply(self, op: dict[str, Any]) -> None:
        if op.get("v", STORE_VERSION) > STORE_VERSION:
            raise ValueError("a newer format")
        if op["op"] == "job":
            job = BatchJob.from_dict(op["job"])
            self.jobs[job.id] = job
        elif op["op"] == "state":
            job = self.jobs[op["job"]]
            part = job.part(op["batch"])
            if part is not None:
                part.state = dict(op["state"])
        else:
            raise ValueError(f"unknown op {op['op']!r}")

    def _append(self, op: dict[str, Any]) -> None:
        op = {"v": STORE_VERSION, **op}
        if self.path is None:
            return
        append_json_line(self.path, op, default=str)

    # -- what the operations write -------------------------------------------------
    def add(self, job: BatchJob) -> None:
        self._append({"op": "job", "job": job.to_dict()})
        self.jobs[job.id] = job  # the caller's object is the store's: notes reach both

    def note(self, job: BatchJob, part: BatchPart, state: dict[str, Any]) -> None:
        """Keep the state the endpoint reported for a part (only when it changed)."""
        state = {**state, "seen_at": round(time.time(), 3)}
        if {k: v for k, v in part.state.items() if k != "seen_at"} != \
                {k: v for k, v in state.items() if k != "seen_at"}:
            part.state = state
            self._append({"op": "state", "job": job.id, "batch": part.batch_id, "state": state})

    # -- lookups -------------------------------------------------------------------
    def latest(self) -> BatchJob | None:
        return max(self.jobs.values(), key=lambda j: j.created_at, default=None)

    def find(self, ident: str) -> BatchJob | None:
        """A job by its id or by the id of any of its provider batches."""
        if ident in self.jobs:
            return self.jobs[ident]
        return next((j for j in self.jobs.values() if j.part(ident) is not None), None)
