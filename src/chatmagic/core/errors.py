"""The exceptions chatmagic raises: each carries one message a user can act on.

A cell shows a `ChatError` as that one message, without a traceback (``--debug``,
or ``debug = True`` on the error, shows it); the Python API raises them as they are.
Failures at an endpoint are not exceptions in the Python API: they are data on the
response (``r.failure``, a `chatmagic.core.failures.StreamError`). The tree::

    Exception
     └── ChatError                 a failure shown as one message
          ├── OptionError          (also a ValueError) a bad option or value; nothing sent
          │    ├── ParameterError  one option's value refused: .option, .problem
          │    ├── SchemaError     a --schema / schema= spec that is no schema
          │    └── ToolError       a function that cannot be offered as a tool
          ├── ProfileError         an unknown profile, a missing key, a broken config file
          ├── EndpointError        a request the endpoint refused or broke
          │    ├── BatchError      a Batch API call that failed: .failure    (each.batch)
          │    └── NotFinished     a fetched Batch API job still running     (each.batch)
          ├── HistoryError         a conversation not found, loaded or changed as asked
          ├── InvalidOutput        a reply that is not the JSON its schema asks: .problem, .text
          ├── RequestFailed        a cell whose every request failed
          ├── EachFailed           a --each cell whose every row failed
          ├── ToolsRefused         tool calls nobody could allow; none ran   (engine.rounds)
          └── TooManyRounds        still calling tools at --max-rounds      (engine.rounds)
    KeyboardInterrupt
     └── ReplyInterrupted          a kernel interrupt stopped a reply; what arrived is kept
          └── EachInterrupted      ... stopped a --each run; the finished rows are kept
    UserWarning
     └── EndpointWarning           what the Python API warns with  (engine.capabilities)

The classes marked with a module are defined there (they belong to that layer and
this module may not import it); every other one is defined here.
"""

from __future__ import annotations

__all__ = ["ChatError", "OptionError", "ParameterError", "SchemaError", "ToolError",
           "ProfileError", "EndpointError", "HistoryError", "InvalidOutput", "RequestFailed",
           "EachFailed", "ReplyInterrupted", "EachInterrupted"]


class ChatError(Exception):
    """A failure shown to the user as one message, without a traceback."""

    #: Show the traceback too (set from a cell's --debug).
    debug: bool = False


class OptionError(ChatError, ValueError):
    """A bad option or option value; raised before anything is sent."""


class ParameterError(OptionError):
    """A refused option value: ``option`` is the field, ``problem`` what is wrong with it;
    the message names ``label`` (the option as the cell wrote it) or the field."""

    def __init__(self, option: str, problem: str, label: str | None = None) -> None:
        super().__init__(f"{label or option} {problem}")
        self.option = option
        self.problem = problem


class SchemaError(OptionError):
    """A ``--schema`` spec that is no schema: refused before anything is sent."""


class ToolError(OptionError):
    """A function that cannot be offered as a tool (one clear message, nothing sent)."""


class ProfileError(ChatError):
    """An unknown profile, a missing key, or a broken configuration file."""


class EndpointError(ChatError):
    """A request that failed at the endpoint (HTTP error, broken or empty stream)."""


class HistoryError(ChatError):
    """A conversation that cannot be found, loaded or changed as asked."""


class InvalidOutput(ChatError):
    """A reply that is not the JSON its schema asks for: ``problem`` says the first thing
    wrong, ``text`` is the reply as it came (kept wherever the reply is)."""

    def __init__(self, problem: str, text: str) -> None:
        super().__init__(problem)
        self.problem = problem
        self.text = text


class RequestFailed(ChatError):
    """A cell whose every request failed (shown as one message)."""

    def __init__(self, message: str, *, debug: bool = False) -> None:
        super().__init__(message)
        self.debug = debug


class EachFailed(ChatError):
    """A ``--each`` run whose every row failed (shown as one message)."""

    def __init__(self, message: str, *, debug: bool = False) -> None:
        super().__init__(message)
        self.debug = debug


class ReplyInterrupted(KeyboardInterrupt):
    """A kernel interrupt that stopped a reply. Still a KeyboardInterrupt (Run All stops),
    shown as one line: what arrived is kept."""

    def __init__(self) -> None:
        super().__init__("the kernel interrupt stopped the reply; the text that arrived is "
                         "kept in the cell and the history, marked incomplete")


class EachInterrupted(ReplyInterrupted):
    """A kernel interrupt that stopped a ``--each`` run: the finished rows are kept."""

    def __init__(self, finished: int, left: int) -> None:
        super().__init__()
        self.args = (f"the kernel interrupt stopped the run; {finished:,} finished rows are "
                     f"kept (and stored): run the cell again to send only the {left:,} left",)
