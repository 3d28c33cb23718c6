"""OpenAI's Files and Batches API for `chatmagic.testing.FakeEndpoint`.

`BatchService` serves ``POST /files`` (multipart, ``purpose=batch``),
``GET /files/{id}`` and ``/files/{id}/content``, ``POST /batches``,
``GET /batches`` and ``/batches/{id}``, and ``POST /batches/{id}/cancel``. A
batch answers each JSONL line with the endpoint's own chat answer to that body
(never streamed) on a worker thread, then writes an output file and, when some
lines failed, an error file, in OpenAI's line format::

    {"id": "batch_req_…", "custom_id": "…", "response": {"status_code": 200,
     "request_id": "…", "body": {…chat.completion…}}, "error": null}

It can be told to take ``seconds`` before it completes (status ``in_progress``
meanwhile), to fail some lines (``failures``: line numbers from 0), or not to
exist (the endpoint then answers 404, as most local servers do).
"""

from __future__ import annotations

import email.parser
import email.policy
import io
import itertools
import json
import re
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Collection
from urllib.parse import parse_qs, urlsplit

__all__ = ["BatchService", "StoredFile", "answer_offline"]

_ROUTES = [
    ("POST", re.compile(r"/files"), "upload"),
    ("GET", re.compile(r"/files/(?P<id>[^/]+)/content"), "content"),
    ("GET", re.compile(r"/files/(?P<id>[^/]+)"), "file"),
    ("POST", re.compile(r"/batches"), "create"),
    ("GET", re.compile(r"/batches"), "list"),
    ("GET", re.compile(r"/batches/(?P<id>[^/]+)"), "retrieve"),
    ("POST", re.compile(r"/batches/(?P<id>[^/]+)/cancel"), "cancel"),
]
_ACTIVE = ("validating", "in_progress", "finalizing")

#: What a handler gives back: (HTTP status, JSON payload) or (status, raw bytes).
Answer = tuple[int, Any]


@dataclass
class StoredFile:
    """An uploaded (or written) file: what ``GET /files/{id}`` describes."""

    id: str
    filename: str
    purpose: str
    data: bytes
    created_at: int

    def describe(self) -> dict[str, Any]:
        return {"id": self.id, "object": "file", "bytes": len(self.data),
                "created_at": self.created_at, "filename": self.filename,
                "purpose": self.purpose, "status": "processed"}


def _error(status: int, message: str, kind: str = "invalid_request_error",
           code: str | None = None) -> Answer:
    return status, {"error": {"message": message, "type": kind, "param": None, "code": code}}


def _multipart(content_type: str, raw: bytes) -> dict[str, tuple[str | None, bytes]]:
    """The parts of a multipart/form-data body: name -> (filename, bytes)."""
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + raw)
    parts: dict[str, tuple[str | None, bytes]] = {}
    if not message.is_multipart():
        return parts
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if name:
            payload = part.get_payload(decode=True)
            parts[str(name)] = (part.get_filename(),
                                payload if isinstance(payload, bytes) else b"")
    return parts


class BatchService:
    """The Files and Batches API of one endpoint; ``answer(body)`` is its chat answer."""

    def __init__(self, answer: Callable[[dict[str, Any]], Answer], *, seconds: float = 0.0,
                 failures: Collection[int] = ()) -> None:
        self.answer = answer
        self.seconds = seconds
        self.failures = set(failures)
        self.files: dict[str, StoredFile] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        #: The chat bodies the batches answered, in the order they were answered.
        self.lines: list[dict[str, Any]] = []
        self._stops: dict[str, threading.Event] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def _id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):06d}"

    # -- routing ---------------------------------------------------------------
    def _match(self, method: str, path: str) -> tuple[str, str | None] | None:
        local = urlsplit(path).path.rstrip("/")
        local = local[3:] if local.startswith("/v1/") else local
        for verb, pattern, name in _ROUTES:
            match = pattern.fullmatch(local)
            if match and verb == method:
                return name, match.groupdict().get("id")
        return None

    def serves(self, method: str, path: str) -> bool:
        """Whether this is a Files or Batches request."""
        return self._match(method, path) is not None

    def route(self, method: str, path: str, content_type: str, raw: bytes) -> Answer:
        """The answer to a Files or Batches request (one that `serves`)."""
        found = self._match(method, path)
        assert found is not None, "not a Files or Batches request"
        name, item = found
        query = {k: v[-1] for k, v in parse_qs(urlsplit(path).query).items()}
        return getattr(self, f"_{name}")(item, content_type, raw, query)  # type: ignore[no-any-return]

    # -- files -----------------------------------------------------------------
    def _upload(self, _id: str | None, content_type: str, raw: bytes,
                _query: dict[str, str]) -> Answer:
        if not content_type.startswith("multipart/form-data"):
            return _error(400, "Files are uploaded as multipart/form-data.")
        parts = _multipart(content_type, raw)
        purpose = parts.get("purpose", (None, b""))[1].decode()
        if "file" not in parts:
            return _error(400, "Missing required parameter: 'file'.", code="missing_required_parameter")
        if purpose not in ("batch", "batch_output", "user_data", "fine-tune", "assistants",
                           "vision", "evals"):
            return _error(400, f"Invalid value for 'purpose': {purpose!r}.")
        filename, data = parts["file"]
        stored = self._store(filename or "upload", purpose, data)
        return 200, stored.describe()

    def _store(self, filename: str, purpose: str, data: bytes) -> StoredFile:
        with self._lock:
            stored = StoredFile(self._id("file-"), filename, purpose, data, int(time.time()))
            self.files[stored.id] = stored
            return stored

    def _file(self, file_id: str | None, *_: Any) -> Answer:
        stored = self.files.get(file_id or "")
        if stored is None:
            return _error(404, f"No such File object: {file_id}")
        return 200, stored.describe()

    def _content(self, file_id: str | None, *_: Any) -> Answer:
        stored = self.files.get(file_id or "")
        if stored is None:
            return _error(404, f"No such File object: {file_id}")
        return 200, stored.data

    # -- batches -------------------------------------------------------------------
    def _create(self, _id: str | None, _type: str, raw: bytes, _query: dict[str, str]) -> Answer:
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            return _error(400, "The body is not JSON.")
        if not isinstance(body, dict):
            return _error(400, "The body is not a JSON object.")
        for name in ("input_file_id", "endpoint", "completion_window"):
            if not body.get(name):
                return _error(400, f"Missing required parameter: '{name}'.",
                              code="missing_required_parameter")
        if body["completion_window"] != "24h":
            return _error(400, "Invalid value for 'completion_window': only '24h' is supported.")
        if body["endpoint"] != "/v1/chat/completions":
            return _error(400, f"This endpoint serves batches of /v1/chat/completions, not "
                               f"{body['endpoint']}.")
        source = self.files.get(body["input_file_id"])
        if source is None or source.purpose != "batch":
            return _error(400, f"No such File object with purpose 'batch': "
                               f"{body['input_file_id']}")
        now = int(time.time())
        batch: dict[str, Any] = {
            "id": self._id("batch_"), "object": "batch", "endpoint": body["endpoint"],
            "input_file_id": source.id, "completion_window": "24h", "status": "validating",
            "created_at": now, "expires_at": now + 86400,
            "request_counts": {"total": 0, "completed": 0, "failed": 0},
            "metadata": body.get("metadata") or {}}
        cancel = threading.Event()
        with self._lock:
            self.batches[batch["id"]] = batch
            self._stops[batch["id"]] = cancel
        created = self._view(batch)  # as OpenAI: a new batch is "validating"
        threading.Thread(target=self._run, args=(batch, source.data, cancel),
                         name="chatmagic-fake-batch", daemon=True).start()
        return 200, created

    def _view(self, batch: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            return json.loads(json.dumps(batch))  # type: ignore[no-any-return]

    def _retrieve(self, batch_id: str | None, *_: Any) -> Answer:
        batch = self.batches.get(batch_id or "")
        if batch is None:
            return _error(404, f"No such Batch object: {batch_id}")
        return 200, self._view(batch)

    def _list(self, _id: str | None, _type: str, _raw: bytes, query: dict[str, str]) -> Answer:
        newest = sorted(self.batches.values(), key=lambda b: b["id"], reverse=True)
        if query.get("after"):
            ids = [b["id"] for b in newest]
            newest = newest[ids.index(query["after"]) + 1:] if query["after"] in ids else []
        limit = max(1, min(100, int(query.get("limit") or 20)))
        page = [self._view(b) for b in newest[:limit]]
        payload: dict[str, Any] = {"object": "list", "data": page,
                                   "has_more": len(newest) > limit}
        if page:
            payload.update(first_id=page[0]["id"], last_id=page[-1]["id"])
        return 200, payload

    def _cancel(self, batch_id: str | None, *_: Any) -> Answer:
        batch = self.batches.get(batch_id or "")
        if batch is None:
            return _error(404, f"No such Batch object: {batch_id}")
        with self._lock:
            if batch["status"] not in _ACTIVE:
                status = batch["status"]
                return _error(400, f"Cannot cancel a batch with status '{status}'.")
            batch["status"] = "cancelling"
            batch["cancelling_at"] = int(time.time())
        self._stops[batch["id"]].set()
        return 200, self._view(batch)

    # -- the work ------------------------------------------------------------------
    def _fail(self, batch: dict[str, Any], errors: list[dict[str, Any]]) -> None:
        with self._lock:
            batch.update(status="failed", failed_at=int(time.time()),
                         errors={"object": "list", "data": errors})

    def _lines(self, data: bytes, endpoint: str) -> tuple[list[dict[str, Any]],
                                                          list[dict[str, Any]]]:
        """The input's requests, and what is wrong with it (OpenAI checks this first)."""
        requests: list[dict[str, Any]] = []
        problems: list[dict[str, Any]] = []
        seen: set[str] = set()
        models: set[str] = set()
        for number, line in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except ValueError:
                item = None
            if not isinstance(item, dict) or not isinstance(item.get("body"), dict):
                problems.append({"code": "invalid_json_line", "line": number,
                                 "message": "This line is not a JSON request object."})
                continue
            custom_id = str(item.get("custom_id") or "")
            if not custom_id or custom_id in seen:
                problems.append({"code": "duplicate_custom_id", "line": number, "message":
                                 "custom_id is missing or used by an earlier line."})
            if item.get("method") != "POST" or item.get("url") != endpoint:
                problems.append({"code": "invalid_url", "line": number, "message":
                                 f"Each line must be a POST to {endpoint}."})
            seen.add(custom_id)
            models.add(str(item["body"].get("model")))
            requests.append(item)
        if len(models) > 1:  # as OpenAI: one model per batch
            problems.append({"code": "mismatched_model", "line": None, "message":
                             "All requests of a batch must use the same model."})
        if not requests and not problems:
            problems.append({"code": "empty_file", "line": None,
                             "message": "The input file has no requests."})
        return requests, problems

    def _run(self, batch: dict[str, Any], data: bytes, cancel: threading.Event) -> None:
        requests, problems = self._lines(data, batch["endpoint"])
        if problems:
            return self._fail(batch, problems)
        with self._lock:
            batch.update(status="in_progress", in_progress_at=int(time.time()))
            batch["request_counts"]["total"] = len(requests)
        if self.seconds:  # the time a provider's queue takes before it answers
            cancel.wait(self.seconds)
        outputs: list[str] = []
        errors: list[str] = []
        for number, item in enumerate(requests):
            if cancel.is_set():
                break
            line = self._answer_line(number, item)
            ok = line["response"]["status_code"] == 200
            (outputs if ok else errors).append(json.dumps(line))
            with self._lock:
                batch["request_counts"]["completed" if ok else "failed"] += 1
        self._finish(batch, outputs, errors, cancelled=cancel.is_set())

    def _answer_line(self, number: int, item: dict[str, Any]) -> dict[str, Any]:
        body = dict(item["body"])
        with self._lock:
            self.lines.append(body)
        if number in self.failures:
            status, payload = _error(500, "The server had an error processing this request.",
                                     "server_error")
        else:
            status, payload = self.answer({**body, "stream": False})
        if isinstance(payload, bytes):  # a raw answer: what it said, as OpenAI would wrap it
            payload = {"error": {"message": payload.decode("utf-8", "replace")[:200]}}
        return {"id": self._id("batch_req_"), "custom_id": item.get("custom_id"),
                "response": {"status_code": status, "request_id": self._id("req_"),
                             "body": payload}, "error": None}

    def _finish(self, batch: dict[str, Any], outputs: list[str], errors: list[str],
                cancelled: bool) -> None:
        with self._lock:
            batch["status"] = "finalizing"
            batch["finalizing_at"] = int(time.time())
        ids: dict[str, str] = {}
        for name, lines in (("output_file_id", outputs), ("error_file_id", errors)):
            if lines:
                data = ("\n".join(lines) + "\n").encode()
                ids[name] = self._store(f"{batch['id']}_{name[:-8]}.jsonl", "batch_output",
                                        data).id
        now = int(time.time())
        with self._lock:
            batch.update(ids)
            if cancelled:
                batch.update(status="cancelled", cancelled_at=now)
            else:
                batch.update(status="completed", completed_at=now)


def answer_offline(handler_class: Any, owner: Any) -> Callable[[dict[str, Any]], Answer]:
    """The endpoint's own chat answer to a body, made without a socket: its handler writes
    the HTTP response into memory, which is read back as (status, JSON or bytes)."""
    def answer(body: dict[str, Any]) -> Answer:
        handler = handler_class.__new__(handler_class)
        handler.owner = owner
        handler.wfile = io.BytesIO()
        handler.request_version = "HTTP/1.1"
        handler.requestline = "POST /v1/chat/completions HTTP/1.1"
        handler.command, handler.path = "POST", "/v1/chat/completions"
        handler.client_address = ("127.0.0.1", 0)
        handler.headers = {}
        handler.close_connection = True
        handler._arrival = 0
        handler._chat(body, None)
        head, _, payload = handler.wfile.getvalue().partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        try:
            return status, json.loads(payload)
        except ValueError:
            return status, payload
    return answer
