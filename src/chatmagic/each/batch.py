"""Rows sent through a provider's Batch API (OpenAI's ``/files`` + ``/batches``), and back.

`submit` uploads the rows of an ``--each`` run as one JSONL file per endpoint
and model (written by `chatmagic.each.batch_files`), creates the batches and
records the job in the notebook's `BatchStore`; `status` asks the endpoint how
far each batch is; `fetch` downloads the output and error files and builds the
same table as ``--each`` (rows in input order, a failed line's message in
``error``); `cancel` asks the endpoint to stop. Everything goes through the
session's clients; a failure is a `BatchError` carrying its `StreamError` and
one message.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

import openai

from ..store.batch_store import BatchJob, BatchPart, BatchStore
from ..core.errors import EndpointError
from ..core.failures import StreamError, server_text
from ..transport.failures import failure_from_exception
from ..core.profiles import Profile
from ..render.html import clean_text
from ..store.rowstore import RowStore
from ..engine.request import Job
from ..core.schema import Schema, resolve_schema
from ..core.table import build_table
from .batch_files import (ENDPOINT, MAX_BYTES, MAX_LINES, answered_rows, custom_id, input_files,
                          plain_key, read_fields, result_lines)

if TYPE_CHECKING:
    from ..engine.session import Session

__all__ = ["BatchError", "NotFinished", "JobStatus", "submit", "status", "fetch", "cancel",
           "ACTIVE", "TERMINAL"]

#: Batch states that may still change, and those that will not.
ACTIVE = ("validating", "in_progress", "finalizing", "cancelling")
TERMINAL = ("completed", "failed", "expired", "cancelled")


class BatchError(EndpointError):
    """A Batch API call that failed: ``failure`` holds the kind, status and message."""

    def __init__(self, failure: StreamError) -> None:
        super().__init__(failure.message)
        self.failure = failure


#: What a server says when it has the Files/Batches routes but serves no Batch API.
_UNSERVED = re.compile(r"files_settings|not (?:set|configured|supported|implemented|enabled)"
                       r"|unsupported|no batch", re.I)


def _failure(exc: BaseException, profile: Profile, call: str) -> BatchError:
    """What a failed Files/Batches call means, in words (no key)."""
    where = f"{profile.name} ({profile.base_url})"
    if isinstance(exc, openai.APIStatusError) and exc.status_code in (404, 405, 501) \
            and call in ("POST /files", "POST /batches"):
        return BatchError(StreamError(
            f"{where} does not serve the Batch API ({call} answered {exc.status_code}); use "
            "--each without --batch-api.", "status", exc.status_code))
    if isinstance(exc, openai.APIStatusError) and call in ("POST /files", "POST /batches") \
            and _UNSERVED.search(str(exc.message)):
        # A server with the routes but no Batch API set up (LiteLLM without files_settings
        # answers HTTP 500): trying again will not help, so say what will.
        said = clean_text(server_text(exc.body) or str(exc.message)).strip()[:200]
        return BatchError(StreamError(
            f"{where} does not serve the Batch API as it is set up ({call} answered "
            f"{exc.status_code}: {said}); set up its Batch API (LiteLLM: files_settings in "
            "its config.yaml), or use --each without --batch-api.", "status",
            exc.status_code))
    if isinstance(exc, openai.APIStatusError) and exc.status_code == 404:
        return BatchError(StreamError(
            f"{where} does not know what {call} asked for (HTTP 404): the batch or its file "
            "is gone (deleted or expired), or the profile now points elsewhere.",
            "status", 404))
    failure = failure_from_exception(exc, profile, "")
    return BatchError(StreamError(f"{call}: {failure.message}", failure.kind, failure.status,
                                  failure.retry_after))


def _client(session: "Session", part_or_profile: BatchPart | Profile) -> tuple[Any, Profile]:
    """The session's client for a part's endpoint; refused when the profile moved since."""
    if isinstance(part_or_profile, Profile):
        return session.clients.sync(part_or_profile), part_or_profile
    part = part_or_profile
    profile = session.profiles.get(part.profile)
    if profile.base_url.rstrip("/") != part.base_url.rstrip("/"):
        raise BatchError(StreamError(
            f"batch {part.batch_id} was sent to {part.base_url}, but profile '{part.profile}' "
            f"now points at {profile.base_url}: point it back to follow the batch. Nothing "
            "was sent.", "connect"))
    return session.clients.sync(profile), profile


# -- submit ---------------------------------------------------------------------------

def submit(session: "Session", store: BatchStore, requests: Sequence[Job], *,
           key_name: str = "index", schema: Schema | None = None,
           max_lines: int = MAX_LINES, max_bytes: int = MAX_BYTES) -> BatchJob:
    """Send the rows (``--each``'s requests, sent here unstreamed) as batch jobs and record
    them; nothing is recorded when one fails (and the batches already created are
    cancelled)."""
    if not requests:
        raise BatchError(StreamError("There are no rows to send.", "protocol"))
    parts: list[BatchPart] = []
    try:
        for first, numbers, data in input_files(requests, session.knowledge, max_lines,
                                                max_bytes):
            parts.append(_create_part(session, requests[numbers[0]], data, first))
    except BatchError:
        for part in parts:  # no half jobs: a job is all of its rows or none
            try:
                _client(session, part)[0].batches.cancel(part.batch_id)
            except (openai.OpenAIError, BatchError):
                pass
        raise
    labels = list(dict.fromkeys(r.label for r in requests))
    job = BatchJob(parts[0].batch_id, time.time(), parts,
                   [[custom_id(n), plain_key(r.key), r.label, r.digest]
                    for n, r in enumerate(requests)],
                   key_name, list(schema.fields) if schema is not None else None, labels,
                   {"name": schema.name, "json_schema": schema.json_schema} if schema else None)
    store.add(job)
    return job


def _create_part(session: "Session", request: Job, data: bytes, first: int) -> BatchPart:
    client, profile = _client(session, request.profile)
    call = "POST /files"
    try:
        uploaded = client.files.create(file=("chatmagic-batch.jsonl", data, "application/jsonl"),
                                       purpose="batch")
        call = "POST /batches"
        batch = client.batches.create(input_file_id=uploaded.id, endpoint=ENDPOINT,
                                      completion_window="24h",
                                      metadata={"created_by": "chatmagic"})
    except openai.OpenAIError as exc:
        raise _failure(exc, profile, call) from None
    return BatchPart(profile.name, profile.base_url, request.request.model,
                     request.label, batch.id, uploaded.id, _state(batch), first)


def _state(batch: Any) -> dict[str, Any]:
    """What the store keeps of a provider's Batch object."""
    counts = batch.request_counts
    errors = [{"code": e.code, "message": e.message, "line": e.line}
              for e in ((batch.errors.data or []) if batch.errors else [])]
    return {"status": batch.status, "total": counts.total if counts else None,
            "completed": counts.completed if counts else None,
            "failed": counts.failed if counts else None,
            "output_file_id": batch.output_file_id, "error_file_id": batch.error_file_id,
            "errors": errors}


# -- status -----------------------------------------------------------------------------

@dataclass
class JobStatus:
    """How far a job is: each part's state as the endpoint reported it just now."""

    job: BatchJob
    states: list[dict[str, Any]] = field(default_factory=list)

    @property
    def status(self) -> str:
        """One word for the job: the least advanced active state, else the final one(s)."""
        seen = [s.get("status") or "unknown" for s in self.states]
        active = [s for s in ACTIVE if s in seen]
        if active:
            return active[0]
        return "+".join(dict.fromkeys(seen))

    @property
    def finished(self) -> bool:
        return all(s.get("status") in TERMINAL for s in self.states)

    def count(self, name: str) -> int:
        return sum(int(s.get(name) or 0) for s in self.states)

    def summary(self) -> str:
        total = self.count("total") or len(self.job.rows)
        done, failed = self.count("completed"), self.count("failed")
        parts = f" in {len(self.job.parts)} batches" if len(self.job.parts) > 1 else ""
        return (f"batch job {self.job.id}: {self.status}, {done} of {total} rows answered"
                f"{f', {failed} failed' if failed else ''}{parts}")


def status(session: "Session", store: BatchStore, job: BatchJob) -> JobStatus:
    """Ask the endpoint about every batch of the job (one request each) and keep what it
    said."""
    states = []
    for part in job.parts:
        if part.state.get("status") in TERMINAL:  # final: no need to ask again
            states.append(part.state)
            continue
        client, profile = _client(session, part)
        try:
            batch = client.batches.retrieve(part.batch_id)
        except openai.OpenAIError as exc:
            raise _failure(exc, profile, f"GET /batches/{part.batch_id}") from None
        store.note(job, part, _state(batch))
        states.append(part.state)
    return JobStatus(job, states)


def cancel(session: "Session", store: BatchStore, job: BatchJob) -> JobStatus:
    """Ask the endpoint to stop every unfinished batch of the job; the rows answered so far
    stay fetchable."""
    for part, state in zip(job.parts, status(session, store, job).states):
        if state.get("status") in TERMINAL:  # finished meanwhile: nothing to stop
            continue
        client, profile = _client(session, part)
        try:
            batch = client.batches.cancel(part.batch_id)
        except openai.APIStatusError as exc:
            if exc.status_code not in (400, 409):  # 400/409: it finished meanwhile
                raise _failure(exc, profile, f"POST /batches/{part.batch_id}/cancel") from None
            continue
        except openai.OpenAIError as exc:
            raise _failure(exc, profile, f"POST /batches/{part.batch_id}/cancel") from None
        store.note(job, part, _state(batch))
    return status(session, store, job)


# -- fetch ------------------------------------------------------------------------------

class NotFinished(EndpointError):
    """A fetch asked of a job some of whose batches are still running."""


def fetch(session: "Session", store: BatchStore, job: BatchJob, rows: RowStore | None = None,
          use_pandas: bool | None = None) -> tuple[Any, JobStatus]:
    """The job's table (the same as ``--each`` gives) and its status; raises NotFinished
    while a batch still runs. The rows answered go into ``rows`` (the notebook's store of
    finished rows), so the same cell run with ``--each`` alone sends none of them again."""
    now = status(session, store, job)
    if not now.finished:
        raise NotFinished(f"{now.summary()}: not finished yet. %chat_batch status "
                          f"{job.id} follows it; fetch once it has completed.")
    answers: dict[str, dict[str, Any]] = {}
    for part, state in zip(job.parts, now.states):
        client, profile = _client(session, part)
        for name in ("output_file_id", "error_file_id"):
            if state.get(name):
                answers.update(_result_file(client, profile, str(state[name])))
    table = answered_rows(job, now.states, answers)
    if rows is not None:
        for row, (*_, digest) in zip(table, job.rows):
            if digest:
                rows.put(digest, row)  # before reading fields: the reply is what was bought
    if job.schema is not None:
        read_fields(table, resolve_schema(job.schema["json_schema"], label=job.schema["name"]))
    return build_table(table, key_name=job.key_name, schema_fields=job.schema_fields,
                       use_pandas=use_pandas), now


def _result_file(client: Any, profile: Profile, file_id: str) -> dict[str, dict[str, Any]]:
    """A result file's lines by custom_id."""
    try:
        text = client.files.content(file_id).text
    except openai.OpenAIError as exc:
        raise _failure(exc, profile, f"GET /files/{file_id}/content") from None
    return result_lines(text)
