"""The events of one request's reply: the narrow contract every reader folds.

A stream yields text, reasoning and refusal pieces (per choice), pieces of
tool calls (`ToolCallDelta`, assembled by their index), at most one
`Usage`, a `Finish` per choice, `Note`s about what was done to get the reply,
with a schema, the `Parsed` value of the reply, and, on failure, one last
`StreamError` (see `chatmagic.core.failures`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Union

from .failures import StreamError

__all__ = ["TextDelta", "ReasoningDelta", "RefusalDelta", "ToolCallDelta", "Usage", "Finish",
           "Note", "Parsed", "Restart", "StreamError", "StreamEvent"]


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str
    choice: int = 0


@dataclass(frozen=True, slots=True)
class ReasoningDelta:
    text: str
    choice: int = 0


@dataclass(frozen=True, slots=True)
class RefusalDelta:
    text: str
    choice: int = 0


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """A piece of a tool call: the call is the one at ``index`` of its choice; ``id`` and
    ``name`` come once (usually first), ``arguments`` is JSON text arriving in pieces."""

    index: int
    id: str = ""
    name: str = ""
    arguments: str = ""
    choice: int = 0


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    reasoning_tokens: int = 0
    estimated: bool = False
    #: Prompt tokens the endpoint served from its cache (``prompt_tokens_details``), priced so.
    cached_tokens: int = 0
    #: What the endpoint says the request cost (OpenRouter's and LiteLLM's ``usage.cost``,
    #: LiteLLM's ``x-litellm-response-cost``), in US dollars; None when it says nothing.
    cost: float | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens, "reasoning_tokens": self.reasoning_tokens,
            "estimated": self.estimated}
        # Only when the endpoint said them: older journals and readers know the keys above.
        if self.cached_tokens:
            data["cached_tokens"] = self.cached_tokens
        if self.cost is not None:
            data["cost"] = self.cost
        return data


@dataclass(frozen=True, slots=True)
class Finish:
    reason: str
    choice: int = 0


@dataclass(frozen=True, slots=True)
class Note:
    """Something done to get this reply that its reader should know (shown in the footer)."""

    text: str


@dataclass(frozen=True, slots=True)
class Parsed:
    """The reply read as its schema's value (``--schema``), after its last text."""

    value: Any


@dataclass(frozen=True, slots=True)
class Restart:
    """The request is asked again from the start: what its last attempt said is void.

    ``note`` says why (a footer shows it); ``failure`` is what the last attempt ended
    in (None for a stream another request cut short), ``wait`` the seconds waited first.
    """

    note: str
    failure: StreamError | None = None
    wait: float = 0.0


StreamEvent = Union[TextDelta, ReasoningDelta, RefusalDelta, ToolCallDelta, Usage, Finish, Note,
                    Parsed, Restart, StreamError]
