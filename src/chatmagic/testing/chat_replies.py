"""Chat completions as the scripted models give them: the reply text, its usage, the whole
``chat.completion`` body, and the event stream with every misbehaviour the scripts ask for
(cut streams, error frames, odd line ends, split characters, keep-alives, ...)."""

from __future__ import annotations

import json
import time
from typing import Any

from .base import Chunked, Cut, HandlerBase
from .catalog import (MARKDOWN_REPLY, MISLABELLED_REPLY, SEPARATORS_REPLY, SURROGATE_REPLY,
                      XSS_REFUSAL, XSS_REPLY, XSS_THOUGHTS)
from .records import RecordedRequest
from .schema import reply_for
from .script import (Script, choice_suffix, count_tokens, finish_reason, message_text,
                     sentiment, words)

__all__ = ["ChatReplies"]

#: Streams that break off (the connection closes mid-body): never chunked, never kept open.
_BREAKING = {"drop", "error-midstream", "event-error", "hang", "one-at-a-time"}


class ChatReplies(HandlerBase):
    """The text, usage and bytes of a scripted chat reply, streamed or whole."""

    def _rejected(self, body: dict[str, Any], script: Script) -> bool:
        """Answer ``reject`` as the servers do, with an HTTP 500 that asking again will not
        change; False when the request holds nothing it rejects."""
        if script.reject == "image":
            if not any(isinstance(m, dict) and isinstance(m.get("content"), list)
                       and any(isinstance(p, dict) and p.get("type") == "image_url"
                               for p in m["content"])
                       for m in body.get("messages") or []):
                return False
            # llama-server without an mmproj, word for word (LiteLLM's proxy passes it on).
            self._error(500, "image input is not supported - hint: if this is unexpected, "
                             "you may need to provide the mmproj", "server_error")
            return True
        if script.reject and script.reject in body:
            # llama-cpp-python's server: a pydantic validation error, as an HTTP 500.
            self._error(500, f"1 validation error:\n  {{'type': 'extra_forbidden', 'loc': "
                             f"('body', '{script.reject}'), 'msg': 'Extra inputs are not "
                             f"permitted', 'input': {body[script.reject]!r}}}",
                        "internal_server_error")
            return True
        return False

    def _reply_text(self, body: dict[str, Any], script: Script) -> str:
        base = script.base
        if base == "schema":
            return reply_for(body, script.shape)[0]
        if base == "markdown":
            return MARKDOWN_REPLY
        if base == "separators":
            return SEPARATORS_REPLY
        if base == "mislabelled":
            return MISLABELLED_REPLY
        if base == "surrogate":
            return SURROGATE_REPLY
        if base == "xss":
            return XSS_REPLY
        if base == "long":
            ids = [f"w{i}" for i in range(script.tokens)]
            return "".join(w + ("\n\n" if (i + 1) % 40 == 0 else " ") for i, w in enumerate(ids))
        users = [m for m in body.get("messages", []) if m.get("role") == "user"]
        text = message_text(users[-1]) if users else ""
        if base in ("reasoning", "reasoning-vllm"):
            return f"The answer is: {text}"
        if base == "sentiment":
            return sentiment(text, naive=script.naive)
        return text or "(empty prompt)"

    def _usage(self, body: dict[str, Any], completion: int, reasoning: int = 0,
               script: "Script | None" = None) -> dict[str, Any]:
        prompt = count_tokens(body.get("messages", []))
        usage: dict[str, Any] = {"prompt_tokens": prompt, "completion_tokens": completion,
                                 "total_tokens": prompt + completion}
        if reasoning:
            usage["completion_tokens_details"] = {"reasoning_tokens": reasoning}
        if script is not None and script.cached:
            usage["prompt_tokens_details"] = {"cached_tokens": min(script.cached, prompt)}
        if script is not None and script.cost is not None:
            usage["cost"] = script.cost  # OpenRouter's and LiteLLM's own figure, in USD
        return usage

    def _money_headers(self, script: Script) -> dict[str, str]:
        return ({} if script.cost_header is None
                else {"x-litellm-response-cost": repr(script.cost_header)})

    def _complete(self, body: dict[str, Any], script: Script) -> None:
        text = self._reply_text(body, script)
        n = script.count(body)
        # A server answering without streaming takes as long to generate, then sends it all.
        self._sleep(script.first + script.delay * len(words(text)))
        finish = finish_reason(body, script)
        choices = []
        for i in range(n):
            message: dict[str, Any] = {"role": "assistant", "content": text + choice_suffix(i, n),
                                       "refusal": None}
            if script.base == "refusal":
                message = {"role": "assistant", "content": None,
                           "refusal": "I can't help with that."}
            if script.base == "reasoning":
                message["reasoning_content"] = "Let me think."
            choices.append({"index": i, "message": message, "finish_reason": finish,
                            "logprobs": None})
        payload: dict[str, Any] = {"id": "chatcmpl-local", "object": "chat.completion",
                                   "created": int(time.time()), "model": body.get("model"),
                                   "choices": choices}
        if script.base != "no-usage":
            payload["usage"] = self._usage(body, len(words(text)) * n, script=script)
        self._send_json(200, payload, self._money_headers(script))

    def _stream(self, body: dict[str, Any], script: Script, record: RecordedRequest) -> None:
        base = script.base
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=iso-8859-1"
                         if base == "mislabelled" else "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        for key, value in self._money_headers(script).items():
            self.send_header(key, value)
        chunked = self.chunked_streams and base not in _BREAKING and not self._cut
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if chunked:
            raw = self.wfile
            chunks = Chunked(raw)
            self.wfile = chunks  # type: ignore[assignment]
            try:
                self._stream_body(body, script)
                chunks.end()
            except BaseException:
                self.close_connection = True
                raise
            finally:
                self.wfile = raw
        else:
            self._stream_body(body, script)

    def _stream_body(self, body: dict[str, Any], script: Script) -> None:
        base = script.base
        created = int(time.time())
        frame_head = {"id": "chatcmpl-local", "object": "chat.completion.chunk",
                      "created": created, "model": body.get("model")}
        eol = {"cr": b"\r", "crlf": b"\r\n"}.get(script.eol, b"\n")
        # pydantic's model_dump_json and Node's JSON.stringify leave non-ASCII unescaped.
        raw_text = base in ("separators", "mislabelled")
        if base == "bom":
            self.wfile.write(b"\xef\xbb\xbf")
        text_sent = 0

        def send(payload: Any) -> None:
            data = b"data: " + json.dumps(payload, ensure_ascii=not raw_text).encode() + eol + eol
            if base == "mislabelled" and "é".encode() in data:  # split inside a character
                cut = data.index("é".encode()) + 1
                self.wfile.write(data[:cut])
                self.wfile.flush()
                self._sleep(0.01)
                data = data[cut:]
            self.wfile.write(data)
            self.wfile.flush()

        def chunk(index: int, delta: dict[str, Any], finish: str | None = None) -> None:
            nonlocal text_sent
            if base == "one-at-a-time" and self.owner._arrived_since(self._arrival):
                # llama-cpp-python stops this stream for the request that just came in;
                # LiteLLM's proxy in front of it adds a finish reason.
                if script.via == "litellm":
                    send({**frame_head, "choices": [{"index": 0, "delta": {},
                                                      "finish_reason": "stop"}]})
                elif script.via == "litellm-error":  # what it sends when no word came yet
                    send({"error": {"message": "litellm.APIConnectionError: "
                                               "OpenAIException - Connection error."}})
                self.wfile.write(b"data: [DONE]" + eol + eol)
                self.wfile.flush()
                raise Cut
            if base == "content-parts" and isinstance(delta.get("content"), str) \
                    and delta["content"]:
                word = delta["content"]
                half = len(word) // 2
                delta = {"content": [{"type": "text", "text": word[:half]},
                                     {"type": "text", "text": word[half:]}]}
            send({**frame_head, "choices": [{"index": index, "delta": delta,
                                              "finish_reason": finish, "logprobs": None}]})
            if delta.get("content"):
                text_sent += 1
                if text_sent == 1 and base == "empty-data":
                    self.wfile.write(b"data:" + eol + eol + b"data: " + eol + eol
                                     + b"event: ping" + eol + b"data:" + eol + eol)
                    self.wfile.flush()
                if text_sent == 1 and script.pause:
                    self._sleep(script.pause)

        try:
            self._stream_chunks(body, script, send, chunk, eol)
        except Cut:
            return

    def _stream_chunks(self, body: dict[str, Any], script: Script, send: Any, chunk: Any,
                       eol: bytes) -> None:
        created = int(time.time())
        frame_head = {"id": "chatcmpl-local", "object": "chat.completion.chunk",
                      "created": created, "model": body.get("model")}

        if script.base == "hang":
            while True:  # until the client goes away: the write then fails
                time.sleep(0.05)
                self.wfile.write(b": waiting\n\n")
                self.wfile.flush()
        if script.first:
            self._sleep(script.first)
        n = script.count(body)
        text = self._reply_text(body, script)
        tokens = words(text)
        reasoning_tokens = 0
        if script.base != "bom":  # after a BOM, the first event carries text
            for i in range(n):
                chunk(i, {"role": "assistant", "content": ""})
        if script.base in ("reasoning", "reasoning-vllm", "xss"):
            field_name = "reasoning" if script.base == "reasoning-vllm" else "reasoning_content"
            thoughts = words(XSS_THOUGHTS if script.base == "xss" else
                              "Let me think about this step by step. The user asked a question.")
            reasoning_tokens = len(thoughts)
            for word in thoughts:
                chunk(0, {field_name: word})
                self._sleep(script.delay)
        if script.base == "content-parts":
            chunk(0, {"reasoning": [{"type": "text", "text": "Thinking in parts."}],
                      "content": None, "refusal": False})
        if script.base == "refusal":
            for word in words("I can't help with that."):
                chunk(0, {"refusal": word})
        else:
            for position, word in enumerate(tokens):
                if (script.base in ("error-midstream", "drop") and position == script.after
                        or self._cut and position == min(script.after, len(tokens) - 1)):
                    if script.base == "error-midstream":
                        send({"error": {"message": "upstream model crashed mid-stream",
                                        "type": "server_error", "code": 500}})
                    return  # close without finish_reason or [DONE]
                if script.base == "event-error" and position == script.after:
                    self.wfile.write(b"event: error" + eol + b'data: {"message": "the model '
                                     b'server ran out of memory"}' + eol + eol)
                    return
                for i in range(n):
                    chunk(i, {"content": word + (choice_suffix(i, n) if position == len(tokens) - 1
                                                 else "")})
                if script.base == "keepalive":
                    self.wfile.write(b": keep-alive" + eol + eol)
                self._sleep(script.delay)
        if script.base == "xss":  # and a refusal after the answer
            for word in words(XSS_REFUSAL):
                chunk(0, {"refusal": word})
        finish = finish_reason(body, script)
        for i in range(n):
            if i and script.via == "litellm":
                continue  # LiteLLM's proxy streams n > 1 without the later choices' finish
            chunk(i, {}, finish)
        options = body.get("stream_options") or {}
        if options.get("include_usage") and script.base != "no-usage":
            completion = (len(tokens) * n) + reasoning_tokens
            send({**frame_head, "choices": [],
                  "usage": self._usage(body, completion, reasoning_tokens, script)})
        self.wfile.write(b"data: [DONE]" + eol + eol)
        self.wfile.flush()


