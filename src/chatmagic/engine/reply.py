"""`Reply`: everything one model said for one request, folded from its events as they come.

The renderer, the history and the usage counter read it; its `failure` is data
(kind, status, retry-after), its `error` the message made from it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from ..core.events import (Finish, Note, Parsed, ReasoningDelta, RefusalDelta, Restart, StreamError,
                           StreamEvent,
                     TextDelta, ToolCallDelta, Usage)
from ..core.tokens import estimate_tokens
from ..core.pricing import ENDPOINT_ONLY, Cost, Pricer

__all__ = ["Reply"]


@dataclass
class _Call:
    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


@dataclass
class _Choice:
    text: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    refusal: list[str] = field(default_factory=list)
    finish: str | None = None
    #: Tool calls by their index: [id, name, argument pieces] (parallel calls interleave).
    calls: dict[int, _Call] = field(default_factory=dict)


_INTERRUPTED = StreamError("stopped: the reply is incomplete", "interrupted")


#: Chunks this short on average are one token each (llama.cpp's server sends one chunk per
#: token and no usage in streams): counting them beats counting characters.
_TOKEN_SIZED = 6.0


def _completion_tokens(choice: _Choice) -> int:
    """A choice's completion tokens, estimated: its chunks, when they are token-sized."""
    pieces = [p for p in choice.text + choice.reasoning + choice.refusal if p]
    pieces += [p for call in choice.calls.values() for p in call.arguments if p]
    chars = sum(map(len, pieces))
    if pieces and chars / len(pieces) <= _TOKEN_SIZED:
        return len(pieces)
    return estimate_tokens("".join(pieces))


@dataclass
class Reply:
    """Everything one model said for one request, as it arrives."""

    model: str
    profile: str
    endpoint: str
    started: float = field(default_factory=time.perf_counter)
    first_token: float | None = None
    ended: float | None = None
    usage: Usage | None = None
    interrupted: bool = False
    prompt_estimate: int = 0  # used when the endpoint reports no usage
    choices: list[_Choice] = field(default_factory=lambda: [_Choice()])
    notes: list[str] = field(default_factory=list)  # what was done to get it (footer words)
    endpoint_failure: StreamError | None = None
    #: With a schema: the reply read as its value (None until then, or if it did not fit).
    parsed: Any = None
    #: How this model at this endpoint is priced (`chatmagic.core.pricing`); None: not known.
    pricer: Pricer | None = field(default=None, repr=False)
    #: The choices asked for (``n``): a server that ignores ``n`` sends fewer.
    asked: int = 1

    @property
    def cost(self) -> Cost | None:
        """What the request cost, when the endpoint said it or a price is known; else None."""
        return (self.pricer or ENDPOINT_ONLY).cost(self.usage)

    @property
    def failure(self) -> StreamError | None:
        """Why the reply is incomplete, as data: the endpoint's failure, else a stop here."""
        if self.endpoint_failure is None and self.interrupted:
            return _INTERRUPTED
        return self.endpoint_failure

    @property
    def error(self) -> str | None:
        """The message of the endpoint's failure (a stop here is `interrupted`, not an error)."""
        return None if self.endpoint_failure is None else self.endpoint_failure.message

    @error.setter
    def error(self, message: str | None) -> None:
        self.endpoint_failure = None if message is None else StreamError(message)

    def _peek(self, index: int) -> _Choice:
        """A choice to read: one the server never sent reads as empty, and is not made up
        (asking for choice 1 of a server that sent one must not add an unfinished one)."""
        return self.choices[index] if 0 <= index < len(self.choices) else _Choice()

    def _choice(self, index: int) -> _Choice:
        while index >= len(self.choices):
            self.choices.append(_Choice())
        return self.choices[index]

    def feed(self, event: StreamEvent) -> None:
        """Fold one event into the reply."""
        if isinstance(event, (TextDelta, ReasoningDelta, RefusalDelta)):
            if self.first_token is None:
                self.first_token = time.perf_counter()
            choice = self._choice(event.choice)
            parts = (choice.text if isinstance(event, TextDelta) else
                     choice.reasoning if isinstance(event, ReasoningDelta) else choice.refusal)
            parts.append(event.text)
        elif isinstance(event, ToolCallDelta):
            if self.first_token is None:
                self.first_token = time.perf_counter()
            call = self._choice(event.choice).calls.setdefault(event.index, _Call())
            call.id = call.id or event.id
            call.name = call.name or event.name
            if event.arguments:
                call.arguments.append(event.arguments)
        elif isinstance(event, Finish):
            self._choice(event.choice).finish = event.reason
        elif isinstance(event, Usage):
            self.usage = event
        elif isinstance(event, StreamError):
            self.endpoint_failure = event
        elif isinstance(event, Note):
            self.notes.append(event.text)
        elif isinstance(event, Parsed):
            self.parsed = event.value

    def restarted(self, restart: Restart) -> "Reply":
        """The reply of the same request asked again from the start: what this one said is
        void, its notes stay and the restart's is added."""
        fresh = Reply(self.model, self.profile, self.endpoint,
                      prompt_estimate=self.prompt_estimate, pricer=self.pricer,
                      asked=self.asked)
        fresh.notes = [*self.notes, restart.note]
        return fresh

    def close(self, *, interrupted: bool = False) -> None:
        self.ended = time.perf_counter()
        self.interrupted = self.interrupted or interrupted
        # No usage from the endpoint: estimate it, for an interrupted or failed reply too
        # once anything arrived (those tokens were generated, and billed).
        if self.usage is None and (self.first_token is not None
                                   or not self.error and not interrupted):
            done = sum(_completion_tokens(c) for c in self.choices)
            self.usage = Usage(self.prompt_estimate, done, self.prompt_estimate + done,
                               estimated=True)

    # -- what readers ask ----------------------------------------------------
    def text_parts(self, choice: int = 0) -> list[str]:
        """The text pieces of one choice as they arrived (renderers read new ones by index)."""
        return self._peek(choice).text

    def text(self, choice: int = 0) -> str:
        return "".join(self._peek(choice).text)

    def reasoning(self, choice: int = 0) -> str:
        return "".join(self._peek(choice).reasoning)

    def refusal(self, choice: int = 0) -> str:
        return "".join(self._peek(choice).refusal)

    def tool_calls(self, choice: int = 0) -> list[dict[str, Any]]:
        """The tool calls of one choice as an assistant message's ``tool_calls`` (in index
        order; a call the server sent without an id gets one, the history needs it)."""
        return [{"id": call.id or f"call_{index}", "type": "function",
                 "function": {"name": call.name, "arguments": "".join(call.arguments)}}
                for index, call in sorted(self._peek(choice).calls.items())]

    def finish_reason(self, choice: int = 0) -> str | None:
        return self._peek(choice).finish

    @property
    def complete(self) -> bool:
        """Finished normally: a finish reason for every choice, no error, not interrupted."""
        return (not self.error and not self.interrupted
                and all(c.finish is not None for c in self.choices))

    def choice_complete(self, choice: int = 0) -> bool:
        """One choice finished normally: its own finish reason, no error, not interrupted
        (LiteLLM's proxy streams ``n`` > 1 without the later choices' finish: that leaves
        those incomplete, never the ones that finished)."""
        return (not self.error and not self.interrupted
                and self._peek(choice).finish is not None)

    @property
    def missing_choices(self) -> int:
        """Choices asked for that a reply which ended normally did not hold (a server that
        ignores ``n``); 0 when it held them all, or did not end normally."""
        return max(0, self.asked - len(self.choices)) if self.complete else 0

    @property
    def ttft(self) -> float | None:
        return None if self.first_token is None else self.first_token - self.started

    @property
    def elapsed(self) -> float:
        return (self.ended or time.perf_counter()) - self.started

    def tokens_per_second(self) -> float | None:
        if self.usage is None or self.first_token is None or self.ended is None:
            return None
        span = self.ended - self.first_token
        # A reply that arrived in one burst has no meaningful speed.
        return self.usage.completion_tokens / span if span > 0.05 else None
