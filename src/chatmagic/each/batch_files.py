"""The Batch API's JSONL files: the input lines written from ``--each``'s requests, and the
output and error lines read back as ``--each``'s rows.

`input_files` groups the requests into one file per model (split where a file
would pass OpenAI's limits), each line a ``custom_id`` and the body ``--each``
would send, not streamed (`wire_body`). `result_lines` reads a downloaded
output or error file; `answered_rows` turns its lines into the table's rows in
input order, a row with no line saying what its batch came to; `read_fields`
reads each answer against the job's schema. Nothing here talks to an
endpoint: `chatmagic.each.batch` does.
"""

from __future__ import annotations

import json
from typing import Any, Sequence

from ..core import scrub
from ..core.failures import server_text
from ..core.errors import InvalidOutput
from ..core.schema import Schema
from ..core.table import Row
from ..engine.endpoints import Knowledge
from ..engine.request import Job
from ..store.batch_store import BatchJob

__all__ = ["input_files", "wire_body", "custom_id", "plain_key", "result_lines",
           "answered_rows", "read_fields", "ENDPOINT", "MAX_LINES", "MAX_BYTES"]

#: The one endpoint chatmagic batches.
ENDPOINT = "/v1/chat/completions"
#: The most lines and bytes one batch's input file holds (OpenAI's limits, the bytes with
#: room to spare): a larger job is sent as several batches.
MAX_LINES = 50_000
MAX_BYTES = 190 * 2**20
# create() keyword arguments that are the SDK's, not the body's.
_NOT_BODY = ("stream", "stream_options", "timeout", "extra_body", "extra_headers",
             "extra_query")


# -- in: the requests as input files ------------------------------------------------------

def wire_body(create_kwargs: dict[str, Any]) -> dict[str, Any]:
    """The JSON body of a ``chat.completions.create(**kwargs)`` call, as a batch line takes it
    (``extra_body`` merged in; the SDK's own arguments and streaming left out)."""
    body = {k: v for k, v in create_kwargs.items() if k not in _NOT_BODY}
    body.update(create_kwargs.get("extra_body") or {})
    return body


def custom_id(number: int) -> str:
    """The ``custom_id`` of the request at ``number`` among the job's rows."""
    return f"row-{number}"


def _body(job: Job, knowledge: Knowledge) -> dict[str, Any]:
    return wire_body(job.request.shaped(knowledge.mode_for(job.profile)))


def _groups(requests: Sequence[Job]) -> dict[str, list[int]]:
    """Row numbers per model label (one endpoint and model each; OpenAI takes one model per
    batch): one provider batch each, in first-seen order."""
    groups: dict[str, list[int]] = {}
    for number, request in enumerate(requests):
        groups.setdefault(request.label, []).append(number)
    return groups


def input_files(requests: Sequence[Job], knowledge: Knowledge, max_lines: int = MAX_LINES,
                max_bytes: int = MAX_BYTES) -> list[tuple[int, list[int], bytes]]:
    """(first, row numbers, JSONL file) per provider batch: one model label each, at most
    ``max_lines`` lines and ``max_bytes`` bytes (OpenAI's limits: 50,000 and 200 MB);
    ``first`` is where it starts among its label's rows. A schema goes in the way its
    endpoint is known to take it now (``knowledge``, the session's)."""
    out: list[tuple[int, list[int], bytes]] = []
    for numbers in _groups(requests).values():
        start, size = 0, 0
        chunk: list[int] = []
        lines: list[bytes] = []
        for position, number in enumerate(numbers):
            line = (json.dumps({"custom_id": custom_id(number), "method": "POST",
                                "url": ENDPOINT, "body": _body(requests[number], knowledge)},
                               ensure_ascii=False) + "\n").encode()
            if chunk and (len(chunk) >= max_lines or size + len(line) > max_bytes):
                out.append((start, chunk, b"".join(lines)))
                start, size, chunk, lines = position, 0, [], []
            chunk.append(number)
            lines.append(line)
            size += len(line)
        out.append((start, chunk, b"".join(lines)))
    return out


def plain_key(key: Any) -> Any:
    """An element's key as the store keeps it, so a table fetched after a restart has the
    keys one fetched before it has: numpy scalars as Python numbers, other objects (a
    timestamp) as their text."""
    if hasattr(key, "item") and callable(key.item) and not isinstance(key, (list, dict)):
        try:
            key = key.item()
        except (TypeError, ValueError):
            pass
    return key if isinstance(key, (str, int, float, bool, type(None))) else str(key)


# -- out: result files as rows ---------------------------------------------------------

def result_lines(text: str) -> dict[str, dict[str, Any]]:
    """An output or error file's lines by custom_id (a line that is no JSON object is
    skipped)."""
    out: dict[str, dict[str, Any]] = {}
    for line in text.splitlines():
        try:
            item = json.loads(line)
        except ValueError:
            continue
        if isinstance(item, dict) and item.get("custom_id") is not None:
            out[str(item["custom_id"])] = item
    return out


def answered_rows(job: BatchJob, states: list[dict[str, Any]],
                  answers: dict[str, dict[str, Any]]) -> list[Row]:
    """The job's rows in input order, from the result lines by custom_id; ``states`` are its
    parts' final states (what a row without a line is told)."""
    why = _reasons(job, states)
    return [_row(answers.get(ident), key, label, why[ident])
            for ident, key, label, *_ in job.rows]


def read_fields(rows: list[Row], schema: Schema) -> None:
    """Each answer read as the job's schema (as --each does): its fields, or the row's error
    naming the first problem (the text kept)."""
    for row in rows:
        if not row.ok or row.text is None:
            continue
        try:
            row.fields = schema.as_fields(schema.parse(row.text, row.finish_reason))
        except InvalidOutput as exc:
            row.error = str(getattr(exc, "problem", None) or exc)


def _reasons(job: BatchJob, states: list[dict[str, Any]]) -> dict[str, str]:
    """Per row, why it has no answer if it has none: what its batch came to."""
    by_batch = {part.batch_id: state for part, state in zip(job.parts, states)}
    seen: dict[str, int] = {}
    why: dict[str, str] = {}
    for ident, _, label, *_ in job.rows:
        position = seen[label] = seen.get(label, -1) + 1
        owners = [p for p in job.parts if p.label == label and p.first <= position]
        why[ident] = _unanswered(by_batch[owners[-1].batch_id]) if owners else "no answer"
    return why


def _unanswered(state: dict[str, Any]) -> str:
    """Why a row of this batch has no answer line."""
    if state.get("status") == "failed":
        errors = state.get("errors") or []
        first = errors[0] if errors else {}
        line = f" (line {first['line']})" if first.get("line") else ""
        said = first.get("message") or "no reason given"
        return f"the batch failed before answering: {said}{line}"
    if state.get("status") in ("cancelled", "expired"):
        return f"not answered: the batch was {state['status']} first"
    return "the batch's output has no answer for this row"


def _row(line: dict[str, Any] | None, key: Any, label: str, why: str) -> Row:
    """One table row from a result line (None: the row got none)."""
    if line is None:
        return Row(key, label, error=why)
    error = line.get("error")
    response = line.get("response") or {}
    body = response.get("body")
    code = response.get("status_code")
    if error or code != 200 or not isinstance(body, dict):
        said = server_text({"error": error}) if error else server_text(body)
        return Row(key, label, error=scrub.scrub(f"HTTP {code}: {said or 'no message'}"
                                                 if code else said or "failed, no message"))
    choices = body.get("choices") or [{}]
    message = choices[0].get("message") or {}
    usage = body.get("usage") or {}
    text, refusal = message.get("content"), message.get("refusal")
    return Row(key, label, scrub.scrub(text) if isinstance(text, str) else None,
               choices[0].get("finish_reason"), usage.get("prompt_tokens"),
               usage.get("completion_tokens"),
               error=scrub.scrub(f"refused: {refusal}") if text is None and refusal else None)
