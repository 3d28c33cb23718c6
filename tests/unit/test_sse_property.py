"""The SSE decoder: data that is only a line separator is an event, not blank."""

from __future__ import annotations

from chatmagic.transport.sse import SSEDecoder, SSEMessage


def read(pieces: list[bytes]) -> tuple[list[SSEMessage], list[str]]:
    decoder = SSEDecoder()
    messages: list[SSEMessage] = []
    for piece in pieces:
        messages += decoder.feed(piece)
    messages += decoder.end()
    return messages, decoder.stray


def test_data_that_is_only_a_line_separator_is_an_event_not_blank() -> None:
    """``str.strip()`` took U+2028 (and U+0085, U+3000, ...)
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

