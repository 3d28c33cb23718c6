"""What one response may cost in memory and work, and the failure of a response past it.

An endpoint's bytes are untrusted: a gzip bomb (under 1 MB on the wire, gigabytes
decoded) or a line that never ends must not exhaust the kernel. Two limits hold for
every response but a Batch API file's content (the user's own data, read whole), each a
profile setting (`chatmagic.core.profiles.Profile`):
``max_response_mb``, the bytes of one response's body after decompression (counted by
the scrubbing edge in `chatmagic.transport.edge`), and ``max_line_mb``, one line, or
one event, of a stream (counted by `chatmagic.transport.sse`). Past either, reading
stops with `TooLarge`; a stream's text that arrived before stays.
"""

from __future__ import annotations

import openai

__all__ = ["TooLarge", "MB", "limit_bytes"]

#: A megabyte, as the settings count it.
MB = 1_000_000


def limit_bytes(megabytes: float) -> int:
    """A setting in MB as a whole number of bytes (at least one)."""
    return max(1, int(megabytes * MB))


class TooLarge(openai.OpenAIError):
    """A response past one of the limits: ``what`` went past ``limit`` bytes (``setting``).

    An `openai.OpenAIError`, so the SDK passes it on as raised (never retried, never taken
    for a connection failure) and every caller that reads the SDK's errors reads this one.
    """

    def __init__(self, what: str, limit: int, setting: str) -> None:
        super().__init__(f"{what} went past {limit / MB:g} MB ({setting})")
        self.what, self.limit, self.setting = what, limit, setting
