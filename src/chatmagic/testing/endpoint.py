"""`FakeEndpoint`: the scripted endpoint on a loopback port (a thread serving HTTP), or
reached without a socket through `chatmagic.testing.in_process.InProcessTransport`."""

from __future__ import annotations

import sys
import threading
from http.server import ThreadingHTTPServer
from typing import Any, Collection

from .batch_server import BatchService, answer_offline
from .catalog import GATEWAYS, MODELS
from .handler import Handler
from .records import RawReply
from .state import EndpointState

__all__ = ["FakeEndpoint"]


class _QuietServer(ThreadingHTTPServer):
    """A client that hangs up (a retry, a Stop button) is normal here, not an error to print."""

    # The default backlog of 5 drops connections opened at once (a run at --concurrency 16),
    # and the client's SYN is resent a second later.
    request_queue_size = 128

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


class FakeEndpoint(EndpointState):
    """An OpenAI-compatible HTTP server on loopback that records what it receives.

    Use it as a context manager, or call `start()` and `stop()`::

        with FakeEndpoint() as endpoint:
            client = openai.OpenAI(base_url=endpoint.base_url, api_key="x")

    Not started, it can answer in process instead (no socket): see
    `chatmagic.testing.in_process.InProcessTransport`.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *,
                 models: tuple[str, ...] = MODELS, api_key: str | None = None,
                 owned_by: str = "chatmagic", raw: dict[str, RawReply] | None = None,
                 model_info: dict[str, dict[str, Any]] | None = None,
                 props: dict[str, Any] | None = None,
                 batch_api: bool | str = True, batch_seconds: float = 0.0,
                 batch_failures: Collection[int] = ()) -> None:
        super().__init__(models=models, api_key=api_key, owned_by=owned_by, raw=raw,
                         model_info=model_info, props=props, batch_unset=batch_api == "unset")
        # ``batch_seconds`` before a batch completes, ``batch_failures`` the input lines
        # (from 0) that fail with HTTP 500.
        self.batches = BatchService(answer_offline(Handler, self), seconds=batch_seconds,
                                    failures=batch_failures) if batch_api is True else None
        self._host, self._port = host, port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        #: The port an in-process transport answers this endpoint at (0: none yet).
        self.in_process_port = 0

    # -- lifecycle -----------------------------------------------------------
    def start(self) -> "FakeEndpoint":
        endpoint = self

        class Served(Handler):
            owner = endpoint

            def setup(self) -> None:
                super().setup()
                endpoint._connected()  # once per connection, however many requests it carries

        self._server = _QuietServer((self._host, self._port), Served)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name="chatmagic-fake-endpoint", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "FakeEndpoint":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- where it answers ------------------------------------------------------
    @property
    def started(self) -> bool:
        """Whether it listens on a port (`start` was called, `stop` not yet)."""
        return self._server is not None

    @property
    def port(self) -> int:
        """The port it listens on; not started, the one an in-process transport gave it."""
        if self._server is not None:
            return int(self._server.server_address[1])
        assert self.in_process_port, "the endpoint is not started (nor in process)"
        return self.in_process_port

    @property
    def base_url(self) -> str:
        return f"http://{self._host}:{self.port}/v1"

    def gateway_url(self, gateway: str) -> str:
        """The base URL under which this endpoint answers as ``gateway`` (see `GATEWAYS`)."""
        if gateway not in GATEWAYS:
            raise ValueError(f"no gateway {gateway!r}; known: {', '.join(GATEWAYS)}")
        tail = "/api/v1" if gateway == "openrouter" else "/v1"
        return f"http://{self._host}:{self.port}/{gateway}{tail}"
