"""The stream layer against byte streams real servers send, through the openai SDK (answered in
process: the endpoint's bytes arrive as written, in the pieces it wrote them).

Each scripted model's bytes are fetched raw and read by `meaning`, a reading of
the SSE spec in one go (the whole body decoded, then split), and the reply the
stream layer built is compared with what the bytes mean.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
from typing import Any

import httpx2

import pytest

from chatmagic.core.profiles import Profile
from chatmagic.engine.reply import Reply
from chatmagic.core.events import StreamError, TextDelta
from chatmagic.transport.client import ClientPool
from chatmagic.transport.stream import astream_chat
from chatmagic.testing import (CONTEXT_ERROR, MISLABELLED_REPLY, SEPARATORS_REPLY, FakeEndpoint,
                               RawReply)
from chatmagic.testing.in_process import InProcessTransport

PROMPT = "one two three"


def collect(base_url: str, model: str, stream: bool = True, *, client: Any = None,
            on_event: Any = None, **extra: Any) -> Reply:
    """The Reply astream_chat builds for one request (events timed by ``on_event``)."""
    profile = Profile("local", base_url, needs_key=False)

    async def go() -> Reply:
        sdk = client() if client else ClientPool({}).async_(profile).with_options(max_retries=0)
        request = {"model": model, "messages": [{"role": "user", "content": PROMPT}],
                   "stream": stream, **extra}
        reply = Reply(model, "local", base_url)
        try:
            async for event in astream_chat(sdk, request, profile):
                if on_event:
                    on_event(event)
                reply.feed(event)
        finally:
            await sdk.close()
        reply.close()
        return reply

    return asyncio.run(go())


def raw(endpoint: FakeEndpoint, model: str) -> tuple[Any, bytes]:
    """The headers and exact bytes the endpoint sends for a streamed request."""
    body = {"model": model, "stream": True, "messages": [{"role": "user", "content": PROMPT}]}
    with httpx2.Client(transport=InProcessTransport(endpoint)) as http:
        response = http.post(f"{endpoint.base_url}/chat/completions", json=body)
        return response.headers, response.content


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "".join(p.get("text", "") for p in value if isinstance(p, dict))
    return ""


def meaning(body: bytes) -> str:
    """The reply text SSE bytes carry: UTF-8, one BOM dropped, lines split at CRLF/CR/LF only,
    events dispatched at blank lines, empty ones skipped; lone surrogates replaced."""
    text = body.decode("utf-8", "replace").removeprefix("\ufeff")
    events, data = [], []
    for line in re.split("\r\n|\r|\n", text):
        if not line:
            if "".join(data).strip():
                events.append("\n".join(data))
            data = []
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
    pieces = []
    for event in events:
        if event.strip() == "[DONE]":
            break
        for choice in json.loads(event).get("choices", []):
            pieces.append(_text((choice.get("delta") or {}).get("content")))
    return re.sub("[\ud800-\udfff]", "\ufffd", "".join(pieces))


@pytest.mark.parametrize("model", ["separators", "mislabelled", "content-parts", "surrogate",
                                   "empty-data", "bom", "echo/eol=cr", "echo/eol=crlf",
                                   "keepalive/eol=cr"])
def test_reply_is_what_the_bytes_mean(endpoint: FakeEndpoint, model: str) -> None:
    headers, body = raw(endpoint, model)
    expected = meaning(body)
    assert expected  # the oracle read something: the comparison below means something
    reply = collect(endpoint.base_url, model)
    assert reply.failure is None and reply.complete
    assert reply.text() == expected


def test_line_separators_inside_json_strings_are_text(endpoint: FakeEndpoint) -> None:
    _, body = raw(endpoint, "separators")
    assert "\u2028".encode() in body and "\u0085".encode() in body  # raw, not escaped
    reply = collect(endpoint.base_url, "separators")
    assert reply.text() == SEPARATORS_REPLY
    # the SDK reads the same bytes the same way
    sdk = ClientPool({}).sync(Profile("local", endpoint.base_url, needs_key=False))
    pieces = [c.choices[0].delta.content or "" for c in sdk.chat.completions.create(
        model="separators", stream=True, messages=[{"role": "user", "content": PROMPT}])
        if c.choices]
    assert "".join(pieces) == SEPARATORS_REPLY


def test_a_charset_label_does_not_make_utf8_mojibake(endpoint: FakeEndpoint) -> None:
    headers, _ = raw(endpoint, "mislabelled")
    assert "iso-8859-1" in headers["Content-Type"]
    assert collect(endpoint.base_url, "mislabelled").text() == MISLABELLED_REPLY


def test_content_and_reasoning_parts_are_joined(endpoint: FakeEndpoint) -> None:
    reply = collect(endpoint.base_url, "content-parts")
    assert reply.text() == PROMPT and reply.reasoning() == "Thinking in parts."
    assert reply.refusal() == ""  # refusal: false is no text


def test_a_whole_completion_answering_a_stream_is_the_reply(endpoint: FakeEndpoint) -> None:
    headers, body = raw(endpoint, "whole-json")
    assert headers["Content-Type"] == "application/json"
    assert json.loads(body)["object"] == "chat.completion"
    reply = collect(endpoint.base_url, "whole-json")
    assert reply.failure is None and reply.complete and reply.text() == PROMPT
    assert reply.usage is not None and not reply.usage.estimated


def test_a_lone_surrogate_is_replaced_and_the_text_can_be_sent(endpoint: FakeEndpoint) -> None:
    _, body = raw(endpoint, "surrogate")
    assert b"\\ud800" in body
    for stream in (True, False):
        text = collect(endpoint.base_url, "surrogate", stream).text()
        assert text == "lone \ufffd surrogate"
        text.encode("utf-8")  # what the kernel's message packing does: no error


@pytest.mark.paced
def test_a_lone_cr_dispatches_the_event_before_the_server_waits(
        transport: InProcessTransport) -> None:
    chunk = {"choices": [{"index": 0, "delta": {"content": "now"}, "finish_reason": None}]}
    end = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
    # The server falls silent after the CR-ended event, longer than the client waits for a read:
    # the text must have come out of the bytes already there, not out of the ones never sent.
    writes: list[bytes | float] = [b"data: " + json.dumps(chunk).encode() + b"\r\r", 5.0,
                                   b"data: " + json.dumps(end).encode() + b"\r\rdata: [DONE]\r\r"]
    endpoint = transport.add(FakeEndpoint(raw={"cr-wait": RawReply(writes)}))
    seen: list[str] = []
    reply = collect(endpoint.base_url, "cr-wait", timeout=1.0,
                    on_event=lambda e: seen.append(e.text) if isinstance(e, TextDelta) else None)
    assert seen == ["now"] and reply.text() == "now"
    assert reply.failure is not None and not reply.complete  # the rest never came


def test_a_crlf_split_between_writes_is_one_line_end(transport: InProcessTransport) -> None:
    chunk = {"choices": [{"index": 0, "delta": {"content": "a\u00e9b"}, "finish_reason": "stop"}]}
    data = b"data: " + json.dumps(chunk, ensure_ascii=False).encode()
    cut = data.index(b"\xc3") + 1  # inside the two bytes of e-acute
    writes: list[bytes | float] = [b"\xef\xbb\xbf" + data[:cut], 0.05, data[cut:] + b"\r", 0.05,
                                   b"\n\r\n", 0.05, b"data: [DONE]\r\n\r\n"]
    endpoint = transport.add(FakeEndpoint(raw={"split": RawReply(writes)}))
    reply = collect(endpoint.base_url, "split")
    assert reply.text() == "a\u00e9b" and reply.complete


def test_delta_next_to_a_full_message_is_not_doubled(transport: InProcessTransport) -> None:
    frames = [{"choices": [{"index": 0, "delta": {"content": "Hi"}}]},
              {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop",
                            "message": {"role": "assistant", "content": "Hi"}}]}]
    writes: list[bytes | float] = [b"".join(b"data: " + json.dumps(f).encode() + b"\n\n"
                                            for f in frames) + b"data: [DONE]\n\n"]
    endpoint = transport.add(FakeEndpoint(raw={"both": RawReply(writes)}))
    reply = collect(endpoint.base_url, "both")
    assert reply.text() == "Hi" and reply.complete


def test_event_error_without_an_error_key_is_the_servers_text(endpoint: FakeEndpoint) -> None:
    reply = collect(endpoint.base_url, "event-error/after=2")
    assert reply.failure is not None and reply.failure.kind == "server"
    assert "the model server ran out of memory" in reply.failure.message
    assert reply.text() == "one two "  # what arrived stays


def test_an_html_error_page_is_one_short_line(endpoint: FakeEndpoint) -> None:
    reply = collect(endpoint.base_url, "html-502")
    failure = reply.failure
    assert failure is not None and failure.kind == "status" and failure.status == 502
    assert "an HTML page (502 Bad Gateway)" in failure.message
    assert "<" not in failure.message and len(failure.message) < 200


def test_an_empty_stream_is_asked_again_without_streaming(endpoint: FakeEndpoint) -> None:
    reply = collect(endpoint.base_url, "context-overflow")
    failure = reply.failure
    assert failure is not None and failure.status == 400 and CONTEXT_ERROR in failure.message
    assert "empty stream" in failure.message
    bodies = [r.body for r in endpoint.chat_requests]
    assert [b.get("stream") for b in bodies] == [True, None]


def test_an_empty_stream_that_answers_without_streaming_is_the_reply(
        transport: InProcessTransport) -> None:
    whole = {"object": "chat.completion", "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "fine"}, "finish_reason": "stop"}]}
    plain = RawReply([json.dumps(whole).encode()], content_type="application/json")
    ep = transport.add(FakeEndpoint(raw={"flaky": RawReply([b"data: [DONE]\n\n"],
                                                           unstreamed=plain)}))
    reply = collect(ep.base_url, "flaky")
    assert [r.body.get("stream") for r in ep.chat_requests] == [True, None]
    assert reply.text() == "fine" and reply.complete
    assert reply.notes == ["the stream was empty; asked again without streaming"]


@pytest.mark.parametrize("base, to, advice", [
    ("/v1", "https://127.0.0.1:{port}/v1/chat/completions",
     'set base_url = "https://127.0.0.1:{port}/v1"'),
])
def test_a_redirect_says_where_and_what_base_url_to_use(endpoint: FakeEndpoint, base: str,
                                                         to: str, advice: str) -> None:
    base_url = f"http://127.0.0.1:{endpoint.port}{base}"

    reply = collect(base_url, "redirect")  # a ClientPool's client: another origin, not followed
    failure = reply.failure
    assert failure is not None and failure.kind == "redirect" and failure.status == 308
    assert to.format(port=endpoint.port).lstrip("/") in failure.message
    assert advice.format(port=endpoint.port) in failure.message
    assert len(endpoint.chat_requests) == 1  # not followed


def test_failures_carry_kind_status_and_retry_after(endpoint: FakeEndpoint) -> None:
    failure = collect(endpoint.base_url, "server-error").failure
    assert failure is not None and (failure.kind, failure.status) == ("status", 500)
    assert "The server had an error" in failure.message
    limited = collect(endpoint.base_url, "rate-limited/x=1").failure
    assert limited is not None and limited.status == 429 and limited.retry_after == 0.0
    gone = collect("http://127.0.0.1:9/v1", "echo").failure
    assert gone is not None and gone.kind == "connect" and gone.status is None
    dropped = collect(endpoint.base_url, "drop/after=1").failure
    assert dropped is not None and dropped.kind == "incomplete"
    # the message ends as a sentence: a caller may add one after it
    assert dropped.message.endswith("stopped.")


def test_an_interrupted_reply_has_an_interrupted_failure_and_no_error() -> None:
    reply = Reply("m", "p", "u")
    reply.close(interrupted=True)
    assert reply.failure is not None and reply.failure.kind == "interrupted"
    assert reply.error is None


GARBAGE = [
    b"data: {\"choices\": 5}\n\n",
    b"data: {\"choices\": [{\"index\": \"x\", \"delta\": {\"content\": {\"a\": 1}}}]}\n\n",
    b"data: {\"choices\": [{\"index\": 1000000000000, \"delta\": {\"content\": \"x\"}}]}\n\n",
    b"data: {\"choices\": [null, 3, {\"delta\": [1]}], \"usage\": {\"prompt_tokens\": \"a\"}}\n\n",
    b"data: [1, 2]\n\n", b"data: null\n\n", b"data: \"text\"\n\n", b"\xff\xfe\x00\x00garbage",
    b"data: {\"choices\": [{\"delta\": {\"reasoning\": 7, \"content\": true, "
    b"\"refusal\": []}}]}\n\n",
    b"data: {\"error\": null}\n\n", b"event: error\ndata: [\n\n", b"<html><b>oops</b></html>",
]


@pytest.mark.parametrize("body", GARBAGE + [bytes(random.Random(seed).randbytes(300))
                                            for seed in range(8)])
def test_any_bytes_are_a_reply_or_one_message_never_a_traceback(
        body: bytes, transport: InProcessTransport) -> None:
    endpoint = transport.add(FakeEndpoint(raw={"junk": RawReply([body])}))
    reply = collect(endpoint.base_url, "junk")
    assert reply.failure is not None or reply.text() or reply.finish_reason() is None
    if reply.failure is not None:
        assert isinstance(reply.failure, StreamError) and "Traceback" not in reply.failure.message
        assert len(reply.failure.message) < 600
    for choice in reply.choices:
        assert all(isinstance(piece, str) for piece in choice.text + choice.reasoning)
    assert len(reply.choices) < 10
