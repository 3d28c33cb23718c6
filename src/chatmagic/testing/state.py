"""What a `FakeEndpoint` knows and records, however requests reach it (a socket on loopback
or the in-process transport): its models and settings, the requests received, the counters
its scripts read (arrivals, tries per prompt, requests in flight)."""

from __future__ import annotations

import random
import threading
from typing import Any

from .batch_server import BatchService
from .catalog import MODEL_INFO, MODELS
from .records import RawReply, RecordedRequest

__all__ = ["EndpointState"]


class EndpointState:
    """The part of `FakeEndpoint` its request handlers read and write (thread-safe)."""

    def __init__(self, *, models: tuple[str, ...] = MODELS, api_key: str | None = None,
                 owned_by: str = "chatmagic", raw: dict[str, RawReply] | None = None,
                 model_info: dict[str, dict[str, Any]] | None = None,
                 props: dict[str, Any] | None = None, batch_unset: bool = False) -> None:
        self.requests: list[RecordedRequest] = []
        self.model_info = MODEL_INFO if model_info is None else model_info
        self.props = props  # given: a llama.cpp server (GET /props, no /model_group/info)
        #: OpenAI's Files and Batches API over this endpoint's chat answers (None: not served,
        #: 404 as most local servers answer).
        self.batches: BatchService | None = None
        #: batch_api="unset": the routes are there but no Batch API is set up (LiteLLM's
        #: proxy without files_settings answers HTTP 500 so).
        self.batch_unset = batch_unset
        self.raw = dict(raw or {})
        self.models = models + tuple(name for name in self.raw if name not in models)
        #: What ``GET /models`` lists, given whole (a hostile list); None: one entry per model.
        self.listed: list[dict[str, Any]] | None = None
        self._arrivals = 0  # chat requests received so far (one-at-a-time watches it)
        self.api_key = api_key
        self.owned_by = owned_by
        self._lock = threading.Lock()
        self._rate_limited_once: set[str] = set()
        self._tries: dict[tuple[str, str], int] = {}  # (model, prompt) -> requests so far
        #: Chat requests being answered now, and the most at once (a scheduler's bound).
        self.in_flight = 0
        self.max_in_flight = 0
        #: Connections accepted on the socket (a client reusing its connections opens few).
        self.connections = 0
        # Which requests a ``faults`` model fails: random, but the same sequence every run.
        self._faults = random.Random(26)
        #: The faults a ``faults`` model sent so far, by kind ("429", "500", "cut").
        self.faults_sent = {"429": 0, "500": 0, "cut": 0}

    @property
    def port(self) -> int:
        """The port requests reach this endpoint at (`FakeEndpoint` knows it)."""
        raise NotImplementedError

    # -- what the tests read -------------------------------------------------
    @property
    def chat_requests(self) -> list[RecordedRequest]:
        """The chat completion requests received, oldest first."""
        with self._lock:
            return [r for r in self.requests if r.path.endswith("/chat/completions")]

    @property
    def batch_lines(self) -> list[dict[str, Any]]:
        """The chat bodies the Batch API answered, in the order it answered them."""
        return list(self.batches.lines) if self.batches else []

    @property
    def last_body(self) -> dict[str, Any]:
        return self.chat_requests[-1].body  # type: ignore[no-any-return]

    # -- what the handlers keep and ask ------------------------------------------
    def _record(self, request: RecordedRequest) -> int:
        """Keep a request; the number of chat requests received with it."""
        with self._lock:
            self.requests.append(request)
            if request.path.rstrip("/").endswith("/chat/completions"):
                self._arrivals += 1
            return self._arrivals

    def _arrived_since(self, arrival: int) -> bool:
        with self._lock:
            return self._arrivals > arrival

    def _try_number(self, model: str, prompt: str) -> int:
        """How many requests of this model and prompt arrived before this one."""
        with self._lock:
            seen = self._tries.get((model, prompt), 0)
            self._tries[(model, prompt)] = seen + 1
            return seen

    def _enter(self, delta: int) -> None:
        with self._lock:
            self.in_flight += delta
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def _connected(self) -> None:
        with self._lock:
            self.connections += 1

    def _fault(self, share: float) -> str:
        """For a ``faults`` model: "" (answer), else "429", "500" or "cut", in turn."""
        with self._lock:
            if self._faults.random() >= share:
                return ""
            kind = ("429", "500", "cut")[sum(self.faults_sent.values()) % 3]
            self.faults_sent[kind] += 1
            return kind

    def _first_rate_limit(self, key: str) -> bool:
        with self._lock:
            if key in self._rate_limited_once:
                return False
            self._rate_limited_once.add(key)
            return True
