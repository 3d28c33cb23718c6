"""The exceptions chatmagic raises: each carries one message a user can act on."""

from __future__ import annotations

__all__ = ["ChatError", "OptionError", "ProfileError", "EndpointError", "HistoryError",
           "ReplyInterrupted"]


class ChatError(Exception):
    """A failure shown to the user as one message, without a traceback."""


class OptionError(ChatError, ValueError):
    """A bad option or option value; raised before anything is sent."""


class ProfileError(ChatError):
    """An unknown profile, a missing key, or a broken configuration file."""


class EndpointError(ChatError):
    """A request that failed at the endpoint (HTTP error, broken or empty stream)."""


class HistoryError(ChatError):
    """A conversation that cannot be found, loaded or changed as asked."""


class ReplyInterrupted(KeyboardInterrupt):
    """A kernel interrupt that stopped a reply. Still a KeyboardInterrupt (Run All stops),
    shown as one line: what arrived is kept."""

    def __init__(self) -> None:
        super().__init__("the kernel interrupt stopped the reply; the text that arrived is "
                         "kept in the cell and the history, marked incomplete")
