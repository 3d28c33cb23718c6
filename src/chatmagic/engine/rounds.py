"""The rounds of one exchange with tools: the model calls, the allowed calls run, it goes on.

A round is one request. When its reply asks for tool calls, `Rounds.calls`
gives them; the caller (a cell, the Python API) decides which may run and
runs them (`chatmagic.tools.functions.execute`, in its own thread), `Rounds.settle`
adds the assistant's calls and every call's result to the exchange, and
`Rounds.next_run` asks the model again with them. Rounds go on until the
model answers without calling, or ``max_rounds`` requests were sent; then the
last calls are answered "not run" so the history stays a valid messages list.
Every message joins the exchange through `Rounds.join`, which masks every known
key in its text, its calls' arguments and its results: a key a tool returned or
the model passed on (in pieces the HTTP edge never saw whole) reaches neither the
model, the history and its journal, nor ``Response.messages()``.
Nothing here asks anyone or imports IPython.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

from ..core import scrub
from ..core.errors import ChatError
from ..render.html import shown_text
from .runner import Run, Sink
from ..tools.functions import ToolCall, ToolResult, assistant_message, check, execute, not_run

if TYPE_CHECKING:
    from .session import Plan, Session
    from ..engine.reply import Reply

__all__ = ["Rounds", "ToolsRefused", "TooManyRounds", "decide", "scrubbed", "ask",
           "INLINE_ARGUMENTS"]


class ToolsRefused(ChatError):
    """Calls that nobody could allow (a headless run without --yes): none ran."""


class TooManyRounds(ChatError):
    """The model was still calling tools when --max-rounds requests had been sent."""


class Rounds:
    """The tool rounds of one planned exchange (one model, one choice)."""

    def __init__(self, plan: Plan, session: Session) -> None:
        self.plan = plan
        self.session = session
        self.tools = {tool.name: tool for tool in plan.tools}
        self.max_rounds = plan.options.max_rounds or 10
        self.sent = 1  # requests sent so far: the first round's
        self._first = plan.jobs[0]
        #: Set when the rounds ended without an answer: one message, after the turn is kept.
        self.problem: ChatError | None = None

    def calls(self, reply: Reply) -> list[ToolCall]:
        """The calls a finished round asked for (none if it failed, was stopped, or offered
        no tools; a stopped round's half-sent calls are not run)."""
        if not self.tools or reply.failure is not None:
            return []
        return [ToolCall.from_message(entry) for entry in reply.tool_calls()]

    @property
    def at_limit(self) -> bool:
        """Whether no further request may be sent (``--max-rounds``)."""
        return self.sent >= self.max_rounds

    def refusal(self, call: ToolCall) -> ToolResult | None:
        """The result that answers a call without asking anyone: the model called a tool
        that was not offered, or with arguments that are no JSON object. None: it is the
        user's to allow. Whether the arguments fit the parameters is checked when it runs
        (`execute`): a pydantic model's validators are the user's code, not run unasked."""
        return check(call, self.tools, validate=False)

    def run(self, call: ToolCall) -> ToolResult:
        """Run one allowed call here, in the caller's thread."""
        return execute(call, self.tools)

    def settle(self, reply: Reply, results: Iterable[ToolResult]) -> None:
        """The round is over: its calls and their results join the exchange."""
        results = list(results)
        self.join([assistant_message(reply.text(), [r.call for r in results]),
                   *(result.message() for result in results)])

    def join(self, messages: Iterable[dict[str, Any]]) -> None:
        """Messages join the exchange (sent next round, kept in the history), keys masked."""
        self.plan.added += [scrubbed(message) for message in messages]

    def stop_at_limit(self, reply: Reply, calls: list[ToolCall]) -> None:
        """The last round called again: its calls are answered "not run", and the cell says
        why once."""
        why = (f"the round limit was reached (--max-rounds {self.max_rounds}) before the "
               "model answered")
        self.join([assistant_message(reply.text(), calls),
                   *(not_run(call, why).message() for call in calls)])
        self.problem = TooManyRounds(
            f"The model was still calling tools after {self.sent} request(s) (--max-rounds "
            f"{self.max_rounds}); its last {len(calls)} call(s) were not run. Raise "
            "--max-rounds, or ask for an answer without tools.")

    def refuse_all(self, reply: Reply, calls: list[ToolCall], why: str) -> None:
        """Nobody can allow these calls: none runs, the model is not asked again."""
        self.join([assistant_message(reply.text(), calls),
                   *(not_run(call, why, "refused").message() for call in calls)])
        names = ", ".join(sorted({call.name for call in calls}))
        self.problem = ToolsRefused(
            f"The model asked to call {names}, and {why}. Nothing was run: add --yes to allow "
            "the calls of this cell (or run it in a notebook or a terminal to be asked).")

    @property
    def next_label(self) -> str:
        """What the next round is shown as: the model, and which request it is."""
        return f"{self._first.label} · round {self.sent + 1}"

    def next_run(self, previous: Run, sink: Sink) -> Run:
        """The next round's run: the first request with the exchange so far, drawn by
        ``sink``."""
        label = self.next_label
        self.sent += 1
        # The round before goes to the ledger now; the last one is counted with the turn.
        self.session.usage.add(previous.replies[0], self.plan.options.conversation)
        first = self._first
        request = first.request.with_messages(*self.plan.added)
        return Run([replace(first, label=label, request=request)], previous.clients, sink,
                   previous.throttle, previous.knowledge)


def scrubbed(message: dict[str, Any]) -> dict[str, Any]:
    """A message with every known key masked in its text and its calls (a masked
    key holds no quote or backslash: JSON arguments stay JSON)."""
    out = dict(message)
    if isinstance(out.get("content"), str):
        out["content"] = scrub.scrub(out["content"])
    if out.get("tool_calls"):
        out["tool_calls"] = [
            {**call, "function": {**call["function"],
                                  "name": scrub.scrub(call["function"]["name"]),
                                  "arguments": scrub.scrub(call["function"]["arguments"])}}
            for call in out["tool_calls"]]
    return out


def decide(rounds: Rounds, calls: list[ToolCall], allow: Callable[[int, ToolCall], bool],
           run: Callable[[int, ToolCall], ToolResult] | None = None) -> Iterator[ToolResult]:
    """Each call answered, in order: refused without asking when it cannot run, else run
    (by ``run``, default `Rounds.run`) if ``allow(index, call)`` says so, else skipped (the
    model reads which). A generator: when a call is interrupted (KeyboardInterrupt), the
    results yielded before it are the caller's to keep."""
    for index, call in enumerate(calls):
        result = rounds.refusal(call)
        if result is None and allow(index, call):
            result = run(index, call) if run is not None else rounds.run(call)
        elif result is None:
            result = not_run(call, "the user did not allow this call (skipped)", "skipped")
        yield result


#: What ``ask`` shows inline; longer arguments are printed whole above the question.
INLINE_ARGUMENTS = 300


def ask(call: ToolCall, choices: str = "[y/N]") -> str:
    """Ask on stdin whether ``call`` may run, with all of its arguments in sight (a model
    cannot pad past a cut what it passes); the answer, stripped and lower-cased, or ``""``
    when nobody can answer (no stdin: EOF, a headless kernel's StdinNotImplementedError)."""
    inline = " ".join(shown_text(call.arguments).split())  # escaped first: U+2028 is no space
    if len(inline) <= INLINE_ARGUMENTS:
        question = f"Run {shown_text(call.name)}({inline})? {choices}: "
    else:
        try:
            whole = json.dumps(json.loads(call.arguments), indent=2, ensure_ascii=False)
        except (ValueError, RecursionError):
            whole = call.arguments
        name = shown_text(call.name)
        print(f"{name} is called with these arguments ({len(call.arguments):,} "
              f"characters):\n{shown_text(whole)}", flush=True)
        question = (f"Run {name}(all {len(call.arguments):,} characters of its "
                    f"arguments printed above)? {choices}: ")
    try:
        answer = input(question)
    except (EOFError, OSError, RuntimeError, NotImplementedError):
        return ""  # nobody answers: not allowed
    return answer.strip().lower()
