"""What an endpoint's bytes may do to a reply, in process: figures that are no numbers,
surrogate pairs cut in two, reasoning in the fields other servers use, same-origin moves,
bodies and lines past their limit, and a line that never ends (counted work, not time).

The raw-socket twins of these (a loopback server, the raw openai SDK beside chatmagic) are
in tests/shell/test_hostile_bytes_http.py.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import ssl
import zlib
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest

from chatmagic.core.events import ReasoningDelta, TextDelta
from chatmagic.core.profiles import Profile
from chatmagic.engine.reply import Reply
from chatmagic.shell.sinks.figures import footer_text
from chatmagic.testing import FakeEndpoint, RawReply
from chatmagic.testing.in_process import InProcessTransport
from chatmagic.transport.chunks import Frames
from chatmagic.transport.client import ClientPool
from chatmagic.transport.edge import _PIECE, _Body
from chatmagic.transport.failures import failure_from_exception
from chatmagic.transport.limits import TooLarge
from chatmagic.transport.sse import SSEDecoder, SSEMessage
from chatmagic.transport.stream import astream_chat

HI = [{"role": "user", "content": "hi"}]


def frame(delta: dict[str, Any] | None = None, finish: str | None = None,
          **extra: Any) -> bytes:
    chunk = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "m",
             "choices": [{"index": 0, "delta": delta or {}, "finish_reason": finish}], **extra}
    return b"data: " + json.dumps(chunk).encode() + b"\n\n"


def sse(*frames: bytes) -> bytes:
    return b"".join(frames) + b"data: [DONE]\n\n"


def collect(profile: Profile, model: str, *, pool: ClientPool | None = None,
            stream: bool = True) -> Reply:
    """The Reply astream_chat builds for one request, as a cell's exchange reads it."""

    async def go() -> Reply:
        client = (pool or ClientPool({})).async_(profile).with_options(max_retries=0)
        request = {"model": model, "messages": HI, "stream": stream}
        reply = Reply(model, profile.name, profile.base_url)
        try:
            async for event in astream_chat(client, request, profile):
                reply.feed(event)
        finally:
            await client.close()
        reply.close()
        return reply

    return asyncio.run(go())


def serve(transport: InProcessTransport, **raw: RawReply) -> FakeEndpoint:
    return transport.add(FakeEndpoint(raw=raw))


def local(endpoint: FakeEndpoint, **fields: Any) -> Profile:
    return Profile("local", endpoint.base_url, needs_key=False, **fields)


# -- 1. figures that are no numbers ------------------------------------------------------

@pytest.mark.parametrize("figure", [b"NaN", b"Infinity", b"-Infinity", b"1e400", b"\"1e400\"",
                                    b"1" + b"0" * 30, b"1" + b"0" * 400])
def test_a_usage_figure_that_is_no_number_keeps_the_reply(transport: InProcessTransport,
                                                          figure: bytes) -> None:
    usage = (b'{"prompt_tokens": 5, "completion_tokens": ' + figure +
             b', "total_tokens": 7, "cost": ' + (figure if figure[:1] != b'"' else b"0.1") + b'}')
    body = sse(frame({"content": "kept"}), frame(finish="stop")[:-3]
               + b', "usage": ' + usage + b'}\n\n')
    endpoint = serve(transport, odd=RawReply([body]))
    reply = collect(local(endpoint), "odd")
    assert reply.failure is None and reply.complete and reply.text() == "kept"
    usage_seen = reply.usage
    assert usage_seen is not None and usage_seen.estimated  # unknown: estimated, marked so
    assert "(estimated)" in footer_text(reply)


def test_a_row_with_a_usage_figure_that_is_no_number_is_no_error(
        transport: InProcessTransport, clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import chatmagic

    body = sse(frame({"content": "fine"}), frame(finish="stop")[:-3]
               + b', "usage": {"prompt_tokens": NaN, "completion_tokens": 2, '
                 b'"total_tokens": Infinity}}\n\n')
    endpoint = serve(transport, nan=RawReply([body]))
    monkeypatch.setenv("OPENAI_BASE_URL", endpoint.base_url)
    monkeypatch.setattr("chatmagic.engine.session._current", None)
    monkeypatch.setattr(chatmagic, "_magics", None)
    rows = chatmagic.map("Say {item}", ["x"], model="nan")
    assert rows["text"].tolist() == ["fine"] and rows["error"].isna().all()
    chatmagic.map("Say {item}", ["x"], model="nan")
    assert len(endpoint.chat_requests) == 1  # a finished row: not bought again


# -- 2. a surrogate pair cut in two --------------------------------------------------------

def test_a_surrogate_pair_split_across_chunks_is_one_emoji(transport: InProcessTransport) -> None:
    half = [b'data: {"choices": [{"index": 0, "delta": {"content": "smile \\ud83d"}}]}\n\n',
            b'data: {"choices": [{"index": 0, "delta": {"content": "\\ude00 done"}}]}\n\n',
            b'data: {"choices": [{"index": 0, "delta": {"reasoning_content": "\\ud83d"}}]}\n\n',
            b'data: {"choices": [{"index": 0, "delta": {"reasoning_content": "\\ude03"}}]}\n\n',
            b'data: {"choices": [{"index": 0, "delta": {"content": " and \\ud83d"}}]}\n\n',
            frame(finish="stop"), b"data: [DONE]\n\n"]
    endpoint = serve(transport, pair=RawReply(half))
    reply = collect(local(endpoint), "pair")
    assert reply.text() == "smile \U0001F600 done and \ufffd"  # the last half never paired
    assert reply.reasoning() == "\U0001F603"
    reply.text().encode("utf-8")  # what the kernel's message packing does


def test_a_tool_calls_arguments_keep_a_pair_split_across_chunks() -> None:
    frames = Frames()
    pieces = ['{"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "c1", '
              '"function": {"name": "f", "arguments": "{\\"s\\": \\"\\ud83d"}}]}}]}',
              '{"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, '
              '"function": {"arguments": "\\ude00\\"}"}}]}}]}']
    events = [e for p in pieces for e in frames.read(SSEMessage(p))]
    assert "".join(getattr(e, "arguments", "") for e in events) == '{"s": "\U0001F600"}'
    assert [getattr(e, "name", "") for e in events][0] == "f"


@pytest.mark.parametrize("end", [b"data: [DONE]\n\n", b""])
def test_a_half_left_when_the_stream_ends_without_a_finish_is_kept_as_ufffd(
        transport: InProcessTransport, end: bytes) -> None:
    """No finish reason to let the held half go: [DONE], or the body's end, does."""
    half = [b'data: {"choices": [{"index": 0, "delta": {"content": "smile \\ud83d"}}]}\n\n',
            b'data: {"choices": [{"index": 0, "delta": {"refusal": "no \\ud83d"}}]}\n\n', end]
    endpoint = serve(transport, half=RawReply([piece for piece in half if piece]))
    reply = collect(local(endpoint), "half")
    assert reply.text() == "smile \ufffd" and reply.refusal() == "no \ufffd"
    assert (reply.failure is None) == bool(end)  # without [DONE]: a stream cut short


# -- 3. a certificate nobody here trusts -----------------------------------------------------

def _refused(reason: str) -> openai.APIConnectionError:
    cause = ssl.SSLCertVerificationError(1, f"[SSL: CERTIFICATE_VERIFY_FAILED] {reason}")
    cause.verify_message = reason
    try:
        try:
            raise httpx2.ConnectError(str(cause)) from cause
        except httpx2.ConnectError as inner:
            raise openai.APIConnectionError(
                request=httpx2.Request("POST", "https://llm.example/v1")) from inner
    except openai.APIConnectionError as exc:
        return exc


@pytest.mark.parametrize("reason, says", [
    ("self-signed certificate", "Set SSL_CERT_FILE"),
    ("unable to get local issuer certificate", "Set SSL_CERT_FILE"),
    ("Hostname mismatch, certificate is not valid for 'llm.example'.", "check the host name"),
    ("certificate has expired", "out of date"),
])
def test_a_certificate_failure_names_the_check_and_the_fix(reason: str, says: str) -> None:
    profile = Profile("corp", "https://llm.example/v1", needs_key=False)
    failure = failure_from_exception(_refused(reason), profile, "m")
    assert failure.kind == "certificate"
    assert "TLS certificate failed the check" in failure.message and reason in failure.message
    assert says in failure.message and "is the server running" not in failure.message


# -- 4. a move on the same origin -------------------------------------------------------------

def _moving(status: int, to: str) -> tuple[httpx2.MockTransport, list[httpx2.Request]]:
    """A server whose /old/ path moves to ``to``; elsewhere it answers a reply."""
    seen: list[httpx2.Request] = []

    def answer(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        if request.url.path.startswith("/old/"):
            return httpx2.Response(status, headers={"Location": to})
        return httpx2.Response(200, content=sse(frame({"content": "moved ok"}), frame(
            finish="stop")), headers={"Content-Type": "text/event-stream"})

    return httpx2.MockTransport(answer), seen


@pytest.mark.parametrize("status", [307, 308])
@pytest.mark.parametrize("to", ["/v1/chat/completions", "http://h.test/v1/chat/completions",
                                "http://h.test:80/v1/chat/completions"])
def test_a_307_or_308_on_the_same_origin_is_followed(status: int, to: str) -> None:
    mock, seen = _moving(status, to)
    profile = Profile("moved", "http://h.test/old", needs_key=False)
    reply = collect(profile, "m", pool=ClientPool({}, transport=mock))
    assert reply.failure is None and reply.text() == "moved ok"
    assert [str(r.url) for r in seen] == ["http://h.test/old/chat/completions",
                                          "http://h.test/v1/chat/completions"]
    assert seen[0].method == seen[1].method == "POST"
    assert seen[0].content == seen[1].content  # the same body
    # The blocking client (as %models uses it) follows it too.
    sync = ClientPool({}, transport=mock).sync(profile)
    assert sync.with_options(max_retries=0).chat.completions.create(
        model="m", messages=HI, stream=True) is not None  # type: ignore[call-overload]


@pytest.mark.parametrize("status, to", [
    (307, "http://other.test/v1/chat/completions"), (308, "https://h.test/v1/chat/completions"),
    (307, "http://h.test:8080/v1/chat/completions"), (301, "/v1/chat/completions"),
    (302, "/v1/chat/completions")])
def test_any_other_redirect_is_refused_as_before(status: int, to: str) -> None:
    mock, seen = _moving(status, to)
    profile = Profile("moved", "http://h.test/old", needs_key=False)
    reply = collect(profile, "m", pool=ClientPool({}, transport=mock))
    failure = reply.failure
    assert failure is not None and (failure.kind, failure.status) == ("redirect", status)
    assert "set base_url" in failure.message and len(seen) == 1


def test_a_same_origin_redirect_loop_ends_as_a_redirect_failure() -> None:
    mock, seen = _moving(307, "/old/chat/completions")
    reply = collect(Profile("loop", "http://h.test/old", needs_key=False), "m",
                    pool=ClientPool({}, transport=mock))
    assert reply.failure is not None and reply.failure.kind == "redirect"
    assert len(seen) == 6  # the request and five moves followed, no more


# -- 5. reasoning in the other servers' fields -------------------------------------------------

def test_reasoning_details_and_thinking_parts_are_reasoning(transport: InProcessTransport) -> None:
    details = [{"type": "reasoning.text", "text": "Weigh it. "},
               {"type": "reasoning.encrypted", "data": "opaque"},
               {"type": "reasoning.summary", "summary": "Done."}]
    thinking = [{"type": "thinking", "thinking": [{"type": "text", "text": "Magistral thinks."}]},
                {"type": "text", "text": "Answer."}]
    openrouter = sse(frame({"reasoning_details": details}), frame({"content": "Yes."}),
                     frame(finish="stop"))
    magistral = sse(frame({"content": thinking}), frame(finish="stop"))
    # OpenRouter sends `reasoning` beside `reasoning_details`: shown once, not twice.
    both = sse(frame({"reasoning": "Once.", "reasoning_details": [
        {"type": "reasoning.text", "text": "Once."}]}), frame({"content": "x"}),
        frame(finish="stop"))
    endpoint = serve(transport, openrouter=RawReply([openrouter]),
                     magistral=RawReply([magistral]), both=RawReply([both]))
    reply = collect(local(endpoint), "openrouter")
    assert (reply.reasoning(), reply.text()) == ("Weigh it. Done.", "Yes.")
    reply = collect(local(endpoint), "magistral")
    assert (reply.reasoning(), reply.text()) == ("Magistral thinks.", "Answer.")
    assert collect(local(endpoint), "both").reasoning() == "Once."


def test_thinking_comes_before_the_text_of_the_same_chunk() -> None:
    events = Frames().read(SSEMessage(json.dumps({"choices": [{"index": 0, "delta": {
        "content": [{"type": "thinking", "thinking": "hm"}, {"type": "text", "text": "A"}]}}]})))
    assert events == [ReasoningDelta("hm"), TextDelta("A")]


# -- 6. bodies and lines past their limit ------------------------------------------------------

def _gzip_bomb(prefix: bytes, size: int, fill: bytes = b"x") -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    out = [packer.compress(prefix)]
    block = fill * (1 << 20)
    for _ in range(size >> 20):
        out.append(packer.compress(block))
    return b"".join(out) + packer.flush()


def test_a_gzip_bomb_stops_at_max_line_mb_keeping_the_text(transport: InProcessTransport) -> None:
    text = sse(frame({"content": "before the bomb"}))[:-len(b"data: [DONE]\n\n")]
    bomb = _gzip_bomb(text + b"data: ", 64 << 20)  # 64 MB in one line, about 64 kB sent
    endpoint = serve(transport, bomb=RawReply([bomb[i:i + 8192]
                                               for i in range(0, len(bomb), 8192)],
                                              headers={"Content-Encoding": "gzip"}))
    reply = collect(local(endpoint, max_line_mb=1), "bomb")
    failure = reply.failure
    assert failure is not None and failure.kind == "protocol"
    assert "one line of the stream went past 1 MB" in failure.message
    assert "raise max_line_mb in [profiles.local]" in failure.message
    assert reply.text() == "before the bomb" and len(endpoint.chat_requests) == 1


def test_a_response_past_max_response_mb_stops_keeping_the_text(
        transport: InProcessTransport) -> None:
    many = sse(*[frame({"content": "word "}) for _ in range(20_000)], frame(finish="stop"))
    endpoint = serve(transport, long=RawReply([gzip.compress(many)],
                                              headers={"Content-Encoding": "gzip"}),
                     plain=RawReply([many], unstreamed=RawReply([b'{"choices": [], "x": "'
                                                                 + b"y" * 300_000 + b'"}'],
                                                                content_type="application/json")))
    reply = collect(local(endpoint, max_response_mb=0.5), "long")
    failure = reply.failure
    assert failure is not None and failure.kind == "protocol"
    assert "the response went past 0.5 MB" in failure.message and "max_response_mb" in failure.message
    assert "(the text that came before is kept)" in failure.message
    kept = reply.text()
    assert kept and set(kept.split()) == {"word"} and len(kept) < len(many)
    assert len(endpoint.chat_requests) == 1  # never asked again
    unstreamed = collect(local(endpoint, max_response_mb=0.1), "plain", stream=False)
    assert unstreamed.failure is not None and "past 0.1 MB" in unstreamed.failure.message
    assert "kept" not in unstreamed.failure.message  # nothing came before: nothing is kept
    assert collect(local(endpoint), "long").failure is None  # the default holds it


def test_an_event_of_many_data_lines_is_held_to_max_line_mb() -> None:
    decoder = SSEDecoder(max_line=1000)
    with pytest.raises(TooLarge, match="one event of the stream"):
        for _ in range(200):
            decoder.feed(b"data: 0123456789\n")


@pytest.mark.parametrize("line", [b"data:\n", b"data\n", b"data: \n"])
def test_an_event_of_empty_data_lines_is_held_to_max_line_mb(line: bytes) -> None:
    """Empty data lines add no text but one line break each: held to the limit too (an
    event of them once grew without end)."""
    decoder = SSEDecoder(max_line=1000)
    with pytest.raises(TooLarge, match="one event of the stream"):
        decoder.feed(line * 1002)  # joined: 1001 line breaks
    # 999 empty lines and an "x": 1000 bytes joined, the limit itself
    assert SSEDecoder(max_line=1000).feed(line * 999 + b"data: x\n\n") == [
        SSEMessage("\n" * 999 + "x")]


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "raw-deflate"])
def test_decompression_makes_bounded_pieces_and_stops_at_the_limit(encoding: str) -> None:
    wbits = {"gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS,
             "raw-deflate": -zlib.MAX_WBITS}[encoding]
    packer = zlib.compressobj(9, zlib.DEFLATED, wbits)
    bomb = packer.compress(b"\0" * (32 << 20)) + packer.flush()  # 32 MB in about 32 kB
    from chatmagic.transport.edge import _decoder

    body = _Body(_decoder("gzip" if encoding == "gzip" else "deflate"), 5_000_000)
    largest = 0
    with pytest.raises(TooLarge):
        for piece in body.feed(bomb):  # one network chunk holding all of it
            largest = max(largest, len(piece))
    assert largest <= _PIECE and body.size <= 5_000_000 + _PIECE
    whole = _Body(_decoder("gzip" if encoding == "gzip" else "deflate"), None)
    assert sum(map(len, whole.feed(bomb))) + len(whole.end()) == 32 << 20


def test_limits_are_profile_settings_checked_when_read(tmp_path: Path) -> None:
    from chatmagic.core.errors import ProfileError
    from chatmagic.core.profiles import Profiles

    (tmp_path / "chatmagic.toml").write_text(
        '[profiles.big]\nbase_url = "http://127.0.0.1:1/v1"\nmax_response_mb = 1024\n'
        'max_line_mb = 0.5\n')
    big = Profiles.load({}, tmp_path).get("big")
    assert (big.max_response_mb, big.max_line_mb) == (1024, 0.5)
    for bad in ("0", "-1", "nan", '"big"', "true"):
        (tmp_path / "chatmagic.toml").write_text(
            f'[profiles.big]\nbase_url = "http://127.0.0.1:1/v1"\nmax_line_mb = {bad}\n')
        with pytest.raises(ProfileError, match="max_line_mb must be a number of megabytes"):
            Profiles.load({}, tmp_path)


# -- 7. a line that never ends: linear work ----------------------------------------------------

@pytest.mark.parametrize("shape", ["no line end", "short lines", "CR line ends"])
def test_the_sse_reader_does_linear_work_whatever_the_lines(shape: str) -> None:
    """Each byte is scanned once for line ends and copied once into its line: the work per
    byte is the same at 1 MB and at 4 MB (it grew with the line's length: quadratic)."""
    per_byte = []
    for size in (1 << 20, 4 << 20):
        body = {"no line end": b"data: " + b"x" * size,
                "short lines": b"data: {}\n\n" * (size // 10),
                "CR line ends": b"data: {}\r\r" * (size // 10)}[shape]
        decoder = SSEDecoder()
        for i in range(0, len(body), 4096):
            decoder.feed(body[i:i + 4096])
        decoder.end()
        per_byte.append(decoder.work / len(body))
    assert per_byte[0] <= 2.01 and per_byte[1] <= 2.01, per_byte


def test_a_certificate_failure_is_not_asked_again() -> None:
    from chatmagic.engine.exchange import retryable

    profile = Profile("corp", "https://llm.example/v1", needs_key=False)
    refused = failure_from_exception(_refused("self-signed certificate"), profile, "m")
    unreachable = failure_from_exception(
        openai.APIConnectionError(request=httpx2.Request("POST", "https://llm.example/v1")),
        profile, "m")
    assert not retryable(refused)  # the same certificate fails the same check again
    assert retryable(unreachable)  # while a server that is not up yet may come up


def test_a_batch_files_content_is_read_whole_past_max_response_mb(
        transport: InProcessTransport) -> None:
    """A Batch API result file is the user's own data, as large as the batch: no cap on it
    (as a profile's max_response_mb once failed every fetch of a result past 256 MB)."""
    endpoint = transport.add(FakeEndpoint())
    client = ClientPool({}).sync(local(endpoint, max_response_mb=0.001)).with_options(
        max_retries=0)
    rows = b"".join(b'{"custom_id": "r%d", "body": "%s"}\n' % (i, b"x" * 90)
                    for i in range(100))  # 10 kB: ten times the profile's limit
    uploaded = client.files.create(file=("in.jsonl", rows), purpose="batch")
    assert client.files.content(uploaded.id).content == rows
    with pytest.raises(TooLarge):  # the same bytes anywhere else stay held to the limit
        client.models.list()  # the fake serves more than 1 kB of models
