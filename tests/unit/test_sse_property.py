"""The SSE decoder against generated streams: the same events however the bytes are cut.

Each stream is built from lines whose meaning is known by construction (data lines,
``event:`` names, comments, ``id``/``retry``, lines that are no field, a BOM, ``[DONE]``,
text with multi-byte UTF-8 and the separators ``str.splitlines`` wrongly splits at), with
every line ended by CRLF, LF or CR. The decoder must give exactly the events the
construction says, fed whole, one byte at a time, and cut at random points. A second
property feeds arbitrary bytes (invalid UTF-8, stray CRs) and asks only that every cut
reads the same as the whole; a third reads generated chat completions (chunks of JSON,
keep-alives, a finish and [DONE] or not) through `astream_chat` and the real SDK, and asks
for the same events however the body is cut. In-process: no sockets (a mock transport).
"""

from __future__ import annotations

import asyncio
import json
import random
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Callable, Iterator

import httpx2
import openai
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatmagic.core.profiles import Profile
from chatmagic.transport.sse import SSEDecoder, SSEMessage
from chatmagic.transport.stream import astream_chat

# -- what a stream says, by construction ----------------------------------------------

#: Field values: any text a line can hold (no CR or LF, no lone surrogate), and some that
#: matter here: the separators iter_lines splits at, emoji and CJK (bytes to cut inside),
#: a leading space (one is taken by the field syntax), [DONE], JSON.
_SPECIAL = ["[DONE]", " [DONE]", '{"choices": []}', '{"x": "\\r\\n"}', "日本語", "😀 emoji",
            "a\u2028b\u2029c\x85d", "\u2028", "\x85", "\u3000", "\x1c", "\xa0", " leading",
            "  two", " ", "\t", "\ufeff", "\ufeffdata: x", "", ":", "data: inner", "é" * 7]
_VALUES = st.one_of(
    st.sampled_from(_SPECIAL),
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"),
            max_size=10),
)
_NAMES = st.one_of(st.sampled_from(["", "message", "error", "ping", " spaced"]), _VALUES)
#: Lines that are no SSE field (a JSON body labelled text/event-stream), kept as stray.
_STRAY = st.sampled_from(['{"error": {"message": "no"}}', "hello", "{", "Data: x", "dat"])
_ENDS = st.sampled_from(["\n", "\r\n", "\r"])


@dataclass
class Expected:
    messages: list[SSEMessage] = field(default_factory=list)
    stray: list[str] = field(default_factory=list)


@st.composite
def _line(draw: st.DrawFn) -> tuple[str, str, str]:
    """(kind, line text, value): one line of an event block."""
    kind = draw(st.sampled_from(["data", "data", "data", "data-nospace", "data-bare", "event",
                                 "event-bare", "comment", "id", "retry", "id-bare", "stray"]))
    value = draw(_VALUES)
    if kind == "data":
        return kind, "data: " + value, value
    if kind == "data-nospace":  # "data:x"; "data: x" loses the one space, so " x" reads "x"
        return "data", "data:" + value, value[1:] if value[:1] == " " else value
    if kind == "data-bare":  # "data" alone: an empty data line
        return "data", "data", ""
    if kind == "event":
        name = draw(_NAMES)
        return kind, "event: " + name, name
    if kind == "event-bare":  # "event" alone: the name is empty (so "message")
        return "event", "event", ""
    if kind == "comment":
        return kind, ":" + value, value
    if kind in ("id", "retry"):
        return kind, f"{kind}: {value}", value
    if kind == "id-bare":
        return "id", "id", ""
    stray = draw(_STRAY)
    return kind, stray, stray


@st.composite
def streams(draw: st.DrawFn) -> tuple[bytes, Expected]:
    """A stream's bytes and what it means: the events in order, and the stray lines."""
    blocks = draw(st.lists(st.lists(_line(), max_size=5), max_size=6))
    closed = draw(st.booleans())  # whether the last block ends with its blank line
    expected = Expected()
    lines: list[str] = []
    for number, block in enumerate(blocks):
        data: list[str] = []
        name = ""
        for kind, text, value in block:
            lines.append(text)
            if kind == "data":
                data.append(value)
            elif kind == "event":
                name = value
            elif kind == "stray":
                expected.stray.append(value)
        if number < len(blocks) - 1 or closed:
            lines.append("")  # the blank line that dispatches
        joined = "\n".join(data)
        if data and joined.strip(" \t\n"):  # empty (or JSON-blank) data is no event
            expected.messages.append(SSEMessage(joined, name or "message"))
    ends = [draw(_ENDS) for _ in lines]
    for i in range(1, len(lines)):
        if ends[i - 1] == "\r" and lines[i] == "" and ends[i] == "\n":
            ends[i] = "\r\n"  # CR then LF would be one line end, not an end and a blank line
    if lines and draw(st.booleans()):
        ends[-1] = ""  # the body stops without ending its last line
    text = "".join(line + end for line, end in zip(lines, ends))
    bom = "\ufeff" if draw(st.booleans()) else ""
    return (bom + text).encode("utf-8"), expected


# -- reading ---------------------------------------------------------------------------

def read(pieces: list[bytes]) -> tuple[list[SSEMessage], list[str]]:
    decoder = SSEDecoder()
    messages: list[SSEMessage] = []
    for piece in pieces:
        messages += decoder.feed(piece)
    messages += decoder.end()
    return messages, decoder.stray


def cut(data: bytes, points: list[int]) -> list[bytes]:
    bounds = [0, *sorted(set(points)), len(data)]
    return [data[a:b] for a, b in zip(bounds, bounds[1:])]


def random_cuts(data: bytes, rng: random.Random) -> list[bytes]:
    if len(data) < 2:
        return [data]
    return cut(data, rng.sample(range(1, len(data)), rng.randint(1, min(12, len(data) - 1))))


#: Streams per run: at least 2,000 built streams (the floor asked of this test), and a
#: quarter as many byte soups (the cheaper check, on top).
EXAMPLES = 2000


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams(), st.randoms(use_true_random=False))
def test_a_stream_means_the_same_whole_byte_by_byte_and_cut_anywhere(
        stream: tuple[bytes, Expected], rng: random.Random) -> None:
    data, expected = stream
    meaning = (expected.messages, expected.stray)
    assert read([data]) == meaning
    assert read([data[i:i + 1] for i in range(len(data))]) == meaning
    for _ in range(3):
        assert read(random_cuts(data, rng)) == meaning


_BYTES = st.lists(st.sampled_from([b"\r", b"\n", b"\r\n", b"data:", b"data: ", b":", b"event:",
                                   b"error", b"[DONE]", b"x", b" ", b"\xef\xbb\xbf", b"\xf0\x9f",
                                   b"\x98\x80", b"\xe6\x97", b"\xa5", b"\xff", b"\xc3", b"\xa9",
                                   b"\xe2\x80\xa8", b"\xc2\x85"]),
                  max_size=40).map(b"".join)


@settings(max_examples=EXAMPLES // 4, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(_BYTES, st.randoms(use_true_random=False))
def test_any_bytes_read_the_same_however_they_are_cut(data: bytes, rng: random.Random) -> None:
    whole = read([data])
    assert read([data[i:i + 1] for i in range(len(data))]) == whole
    for _ in range(3):
        assert read(random_cuts(data, rng)) == whole


# -- what the properties found, kept as examples ----------------------------------------

def test_data_that_is_only_a_line_separator_is_an_event_not_blank() -> None:
    """Found by the first property: ``str.strip()`` took U+2028 (and U+0085, U+3000, ...)
    for blank and dropped the event. They are data here, as they are no line ends; only
    JSON's whitespace is blank (a ``data:  `` keep-alive)."""
    from chatmagic.core.events import StreamError
    from chatmagic.transport.chunks import Frames

    assert read([b"data: \xe2\x80\xa8\n"]) == ([SSEMessage("\u2028")], [])
    assert read([b"data: \xc2\x85\n\n", b"data:\xe3\x80\x80\n\n"]) == \
        ([SSEMessage("\x85"), SSEMessage("\u3000")], [])
    assert read([b"data:  \t\r\ndata:\n\n: keep-alive\n\n"]) == ([], [])
    said = Frames().read(SSEMessage("\u2028"))
    assert len(said) == 1 and isinstance(said[0], StreamError)
    assert "not JSON" in said[0].message



# -- the stream layer on top: chunks of JSON, events the same however the body is cut ----

_PIECES = st.one_of(st.sampled_from(["", "h", "é", "日本", "😀", "\u2028", "\x85", "\\", '"',
                                     "\ufeff", "[DONE]", "data: x\n\n"]),
                    st.text(st.characters(blacklist_categories=("Cs",)), max_size=6))


@st.composite
def _chunk(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["content", "content", "reasoning_content", "reasoning",
                                 "refusal", "tool", "usage"]))
    if kind == "usage":
        return {"choices": [], "usage": {"prompt_tokens": draw(st.integers(0, 9)),
                                         "completion_tokens": draw(st.integers(0, 9))}}
    if kind == "tool":
        call = {"index": draw(st.integers(0, 2)),
                "function": {"name": draw(_PIECES), "arguments": draw(_PIECES)}}
        return {"choices": [{"index": 0, "delta": {"tool_calls": [call]}}]}
    return {"choices": [{"index": draw(st.integers(0, 1)), "delta": {kind: draw(_PIECES)}}]}


@st.composite
def chat_streams(draw: st.DrawFn) -> bytes:
    """A streamed chat completion as a server might send it: chunks (JSON escaped to ASCII or
    not), comments between them, any line ends, a finish and [DONE] or neither."""
    chunks = draw(st.lists(_chunk(), max_size=8))
    if draw(st.booleans()):
        chunks.append({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    frames = [f"data: {json.dumps(c, ensure_ascii=draw(st.booleans()))}" for c in chunks]
    if draw(st.booleans()):
        frames.append("data: [DONE]")
    out = []
    for frame in frames:
        if draw(st.booleans()):
            out.append(": keep-alive" + draw(_ENDS) * 2)
        end = draw(_ENDS)
        out.append(frame + end + (end if end != "\r" or draw(st.booleans()) else "\r\n"))
    return "".join(out).encode()


async def _body(pieces: list[bytes]) -> AsyncIterator[bytes]:
    for piece in pieces:
        yield piece


@pytest.fixture(scope="module")
def stream_events() -> Iterator[Callable[[list[bytes]], list[Any]]]:
    """Reads a body, as pieces, through `astream_chat` and the real SDK: an in-process mock
    transport answers (one client and loop for the module, as building them costs more than
    reading a stream)."""
    sent: list[list[bytes]] = []

    def answer(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers={"content-type": "text/event-stream"},
                               content=_body(sent[-1]))

    loop = asyncio.new_event_loop()
    client = openai.AsyncOpenAI(base_url="http://stream.invalid/v1", api_key="x", max_retries=0,
                                http_client=httpx2.AsyncClient(
                                    transport=httpx2.MockTransport(answer)))
    profile = Profile("p", "http://stream.invalid/v1", needs_key=False)
    request = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True}

    async def events() -> list[Any]:
        return [e async for e in astream_chat(client, request, profile, retry_empty=False)]

    def read_events(pieces: list[bytes]) -> list[Any]:
        sent.append(pieces)
        return loop.run_until_complete(events())

    yield read_events
    loop.run_until_complete(client.close())
    loop.run_until_complete(loop.shutdown_asyncgens())
    loop.close()


@settings(max_examples=EXAMPLES // 8, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(chat_streams(), st.randoms(use_true_random=False))
def test_a_streamed_reply_reads_as_the_same_events_however_its_body_is_cut(
        stream_events: Callable[[list[bytes]], list[Any]], data: bytes,
        rng: random.Random) -> None:
    whole = stream_events([data])
    assert stream_events([data[i:i + 1] for i in range(len(data))]) == whole
    assert stream_events(random_cuts(data, rng)) == whole
