"""The tool-calling models (``tools``, ``tools-parallel``, ``tools-endless``): calls made
from the tools a request offers, their arguments streamed in pieces, then an answer made of
the results they get back."""

from __future__ import annotations

import json
import time
from typing import Any

from .chat_replies import ChatReplies
from .script import Script, example_arguments, message_text, words

__all__ = ["ToolReplies"]


class ToolReplies(ChatReplies):
    """Tool calls, and answers with their results (see the ``tools`` models)."""

    # -- tool-calling models ------------------------------------------------------
    def _tools(self, body: dict[str, Any], script: Script) -> None:
        """Call tools, or answer with the results received (see the ``tools`` models)."""
        messages = body.get("messages") or []
        results: list[str] = []
        for message in reversed(messages):  # the results of the last round of calls
            if message.get("role") != "tool":
                break
            results.insert(0, message_text(message))
        if results and script.base != "tools-endless":
            return self._say(body, f"The tools said: {'; '.join(results)}")
        offered = [t.get("function") or {} for t in body.get("tools") or []]
        if not offered and not script.call:
            return self._say(body, "No tools were offered.")
        picks = offered[:2] if script.base == "tools-parallel" else offered[:1]
        if script.base == "tools-parallel" and len(picks) == 1:
            picks = picks * 2
        if script.call:
            picks = [{"name": script.call, "parameters": {}}] * len(picks or [{}])
        round_ = 1 + sum(1 for m in messages if m.get("tool_calls"))
        bearer = str(self.headers.get("Authorization") or "").removeprefix("Bearer ")
        text = bearer if script.args == "key" else "Paris"
        calls = []
        for i, function in enumerate(picks):
            arguments = ('{"a": 2,' if script.args == "broken"
                         else json.dumps(example_arguments(function.get("parameters") or {},
                                                            start=2 + i, text=text)))
            calls.append({"id": f"call_{round_}_{i}", "name": function.get("name", ""),
                          "arguments": arguments})
        if not body.get("stream"):
            message = {"role": "assistant", "content": None, "tool_calls": [
                {"id": c["id"], "type": "function",
                 "function": {"name": c["name"], "arguments": c["arguments"]}} for c in calls]}
            return self._send_json(200, {
                "id": "chatcmpl-local", "object": "chat.completion", "created": int(time.time()),
                "model": body.get("model"), "usage": self._usage(body, 10),
                "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls",
                             "logprobs": None}]})
        head = {"id": "chatcmpl-local", "object": "chat.completion.chunk",
                "created": int(time.time()), "model": body.get("model")}
        frames: list[dict[str, Any]] = [{"role": "assistant", "content": None}]
        frames += [{"tool_calls": [{"index": i, "id": c["id"], "type": "function",
                                    "function": {"name": c["name"], "arguments": ""}}]}
                   for i, c in enumerate(calls)]
        pieces = [[c["arguments"][j:j + 4] for j in range(0, len(c["arguments"]), 4)]
                  for c in calls]
        for j in range(max(map(len, pieces), default=0)):  # parallel calls interleave
            frames += [{"tool_calls": [{"index": i, "function": {"arguments": p[j]}}]}
                       for i, p in enumerate(pieces) if j < len(p)]
        self._start_stream()
        for delta in frames:
            self._frame({**head, "choices": [{"index": 0, "delta": delta, "finish_reason": None,
                                              "logprobs": None}]})
            self._sleep(script.delay)
        self._frame({**head, "choices": [{"index": 0, "delta": {},
                                          "finish_reason": "tool_calls", "logprobs": None}]})
        if (body.get("stream_options") or {}).get("include_usage"):
            self._frame({**head, "choices": [], "usage": self._usage(body, 10)})
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()

    def _say(self, body: dict[str, Any], text: str) -> None:
        """Answer with ``text`` (streamed word by word when asked to stream)."""
        if not body.get("stream"):
            return self._send_json(200, {
                "id": "chatcmpl-local", "object": "chat.completion", "created": int(time.time()),
                "model": body.get("model"), "usage": self._usage(body, len(words(text))),
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                             "finish_reason": "stop", "logprobs": None}]})
        head = {"id": "chatcmpl-local", "object": "chat.completion.chunk",
                "created": int(time.time()), "model": body.get("model")}
        self._start_stream()
        for word in words(text):
            self._frame({**head, "choices": [{"index": 0, "delta": {"content": word},
                                              "finish_reason": None, "logprobs": None}]})
        self._frame({**head, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop",
                                          "logprobs": None}]})
        if (body.get("stream_options") or {}).get("include_usage"):
            self._frame({**head, "choices": [], "usage": self._usage(body, len(words(text)))})
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()

