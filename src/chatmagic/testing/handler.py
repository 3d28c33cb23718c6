"""The endpoint's HTTP request handler: which route a request takes, and which scripted
answer a chat request gets (see the package docstring for the model ids)."""

from __future__ import annotations

import json
from typing import Any

from .base import lower_headers
from .catalog import CONTEXT_ERROR, HTML_502
from .gateways import GatewayRoutes
from .records import RawReply, RecordedRequest
from .schema import refusal
from .script import Script, message_text
from .tool_replies import ToolReplies

__all__ = ["Handler"]


class Handler(ToolReplies, GatewayRoutes):
    """One request to a `FakeEndpoint` (``owner``), on a socket or in process."""

    # -- routes --------------------------------------------------------------
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.owner._record(RecordedRequest("GET", self.path, lower_headers(self.headers), None,
                                           peer=self.client_address[1]))
        if not self._authorized():
            return self._error(401, "Incorrect API key provided.", code="invalid_api_key")
        if self._account_route():
            return
        if self._batch_route("GET", b""):
            return
        if self.path.rstrip("/").endswith("/models"):
            data = [{"id": m, "object": "model", "created": 1700000000 + i,
                     "owned_by": self.owner.owned_by} for i, m in enumerate(self.owner.models)]
            return self._send_json(200, {"object": "list", "data": self.owner.listed or data})
        if self._capabilities():
            return None
        self._error(404, f"No route for GET {self.path}")

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        if len(raw) < length:
            # The client went away before its body arrived (a run stopped while sending):
            # no request reached this server, so none is recorded or answered.
            self.close_connection = True
            return
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = raw.decode("utf-8", "replace")
        record = RecordedRequest("POST", self.path, lower_headers(self.headers), body,
                                 peer=self.client_address[1])
        self._arrival = self.owner._record(record)
        if self._batch_route("POST", raw):
            return
        if not self.path.rstrip("/").endswith("/chat/completions"):
            return self._error(404, f"No route for POST {self.path}")
        if not isinstance(body, dict):
            return self._error(400, "The body is not a JSON object.")
        if not self._authorized():
            return self._error(401, "Incorrect API key provided.", code="invalid_api_key")
        self.owner._enter(1)
        try:
            self._chat(body, record)
        except (BrokenPipeError, ConnectionResetError):
            record.disconnected = True
        finally:
            self.owner._enter(-1)

    def _batch_route(self, method: str, raw: bytes) -> bool:
        """Answer a Files or Batches request (see batch_server); False when it is none."""
        if self.owner.batch_unset and self.path.split("?")[0].rstrip("/").endswith(
                ("/files", "/batches")):
            self._error(500, "files_settings is not set, set it on your config.yaml file.",
                        kind="internal_server_error")
            return True
        service = self.owner.batches
        if service is None or not service.serves(method, self.path):
            return False
        if not self._authorized():
            self._error(401, "Incorrect API key provided.", code="invalid_api_key")
            return True
        status, payload = service.route(method, self.path, self.headers.get("Content-Type", ""),
                                        raw)
        if isinstance(payload, bytes):
            self._raw(RawReply([payload], status, "application/octet-stream",
                               {"Content-Length": str(len(payload))}))
        else:
            self._send_json(status, payload)
        return True

    # -- chat ------------------------------------------------------------------
    def _chat(self, body: dict[str, Any], record: RecordedRequest) -> None:
        model = str(body.get("model", ""))
        if model in self.owner.raw:
            reply = self.owner.raw[model]
            return self._raw(reply if body.get("stream") else reply.unstreamed or reply)
        script = Script.parse(model)
        known = {m.partition("/")[0] for m in self.owner.models}
        if script.base not in known:
            return self._error(404, f"The model `{model}` does not exist or you do not have "
                                    "access to it.", code="model_not_found")
        if script.refuse:
            refused = refusal(body, script.refuse)
            if refused is not None:
                return self._error(refused[0], refused[1], "internal_server_error"
                                   if refused[0] == 500 else "invalid_request_error")
        if self._rejected(body, script) or self._failed(body, script) \
                or self._turned_away(body, script):
            return None
        if script.base in ("tools", "tools-parallel", "tools-endless"):
            return self._tools(body, script)
        if script.base == "whole-json" and body.get("stream"):
            return self._complete(body, script)
        if body.get("stream"):
            self._stream(body, script, record)
        else:
            self._complete(body, script)

    def _failed(self, body: dict[str, Any], script: Script) -> bool:
        """Answer as the models that always fail do; False for every other model."""
        base = script.base
        if base == "unauthorized":
            self._error(401, "Incorrect API key provided: sk-***.", "authentication_error",
                        "invalid_api_key")
        elif base == "server-error":
            self._error(500, "The server had an error while processing your request.",
                        "server_error")
        elif base == "error-list":
            self._send_json(400, [{"error": {"code": 400, "status": "INVALID_ARGUMENT",
                                             "message": "Request contains an invalid "
                                                        "argument."}}])
        elif base == "error-200":
            self._send_json(200, {"error": {"message": "upstream: quota exhausted",
                                            "type": "new_api_error"}})
        elif base == "json-as-sse":
            self._send_json(200, {"error": {"message": "gateway: no channel available"}},
                            content_type="text/event-stream")
        elif base == "html-502":
            page = HTML_502.encode()
            self._raw(RawReply([page], 502, "text/html", {"Content-Length": str(len(page))}))
        elif base == "redirect":
            self._redirect(script)
        elif base == "context-overflow":
            self._context_overflow(body, script)
        else:
            return False
        return True

    def _context_overflow(self, body: dict[str, Any], script: Script) -> None:
        if body.get("stream") and script.via == "litellm":
            # LiteLLM's proxy turns llama's empty stream into a silent "stop".
            silent = {"id": "c", "object": "chat.completion.chunk",
                      "model": str(body.get("model", "")),
                      "choices": [{"index": 0, "delta": {"role": "assistant"},
                                   "finish_reason": "stop"}]}
            return self._raw(RawReply([b"data: " + json.dumps(silent).encode() + b"\n\n",
                                       b"data: [DONE]\n\n"]))
        if body.get("stream"):  # headers, then an empty body: nothing says why
            return self._raw(RawReply([]))
        return self._error(400, CONTEXT_ERROR)

    def _turned_away(self, body: dict[str, Any], script: Script) -> bool:
        """Answer ``fail``, ``busy``, ``flaky`` and ``rate-limited`` refusals; False: none."""
        model = str(body.get("model", ""))
        if script.fail or script.busy or script.flaky:
            messages = body.get("messages") or [{}]
            prompt = message_text(messages[-1]) if isinstance(messages[-1], dict) else ""
            if script.fail and script.fail in prompt:
                self._error(400, f"The model `{model}` cannot answer this input "
                                 f"(it holds '{script.fail}').")
                return True
            tries = self.owner._try_number(model, prompt) if script.busy or script.flaky else 0
            if tries < script.busy:
                self._error(429, "Rate limit reached for requests.", "rate_limit_error",
                            headers={"Retry-After": f"{script.wait:g}"})
                return True
            if tries < script.busy + script.flaky:
                self._error(503, "The server is overloaded.", "server_error")
                return True
        fault = self.owner._fault(script.faults) if script.faults else ""
        if fault == "429":
            self._error(429, "Rate limit reached for requests.", "rate_limit_error",
                        headers={"Retry-After": f"{script.wait:g}"})
            return True
        if fault == "500" or fault == "cut" and not body.get("stream"):
            self._error(500, "The server had an error while processing your request.",
                        "server_error")
            return True
        self._cut = fault == "cut"
        if script.base == "rate-limited" and self.owner._first_rate_limit(model):
            self._error(429, "Rate limit reached. Please try again in 0s.",
                        "rate_limit_error", headers={"Retry-After": "0"})
            return True
        return False
