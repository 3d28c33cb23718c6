"""The words around a reply: its header and its footer of figures (plain text)."""

from __future__ import annotations

from ...core.visible import visible
from ...engine.reply import Reply

__all__ = ["header_text", "footer_text", "status_text", "arrived"]

_FINISH = {
    "stop": "finished",
    "length": "cut at the token limit (finish_reason=length): raise --max-tokens",
    "content_filter": "stopped by the endpoint's content filter",
    "tool_calls": "called tools",
}


def header_text(label: str, reply: Reply) -> str:
    """The model, profile and endpoint, on one line whatever their names hold."""
    return visible(f"{label} · {reply.profile} ({reply.endpoint.split('://', 1)[-1]})",
                   lines=False)


def arrived(reply: Reply) -> bool:
    """Whether anything of a reply arrived (text, reasoning, a refusal or a tool call)."""
    return any(reply.text(i) or reply.reasoning(i) or reply.refusal(i) or reply.tool_calls(i)
               for i in range(len(reply.choices)))


def status_text(reply: Reply, with_error: bool = True, choice: int | None = None) -> str:
    """Why the reply ended, in words: "incomplete" only for a reply of which something
    arrived; one of which nothing did failed, or was stopped, before it began. With
    ``choice``, that choice's own finish only (a column of ``-n``)."""
    if reply.error:
        what = "incomplete" if arrived(reply) else "failed"
        return f"{what}: {reply.error}" if with_error else f"⚠ {what}: see the error below"
    if reply.interrupted:
        return ("stopped: the reply is incomplete" if arrived(reply)
                else "stopped before anything arrived")
    reasons = ({c.finish for c in reply.choices} if choice is None
               else {reply.finish_reason(choice)})
    if None in reasons:
        return "incomplete: no finish reason"
    return "; ".join(_FINISH.get(r, f"finish_reason={r}") for r in sorted(reasons))  # type: ignore


def footer_text(reply: Reply, with_error: bool = True, choice: int | None = None) -> str:
    """Finish reason (of ``choice`` only, when given), tokens in/out, time to first token,
    speed, total time, what was done to get the reply, and the choices asked for that a
    server which ignores ``n`` did not send."""
    parts = [status_text(reply, with_error, choice)]
    usage = reply.usage
    if usage is not None:
        mark = "~" if usage.estimated else ""
        tokens = f"{usage.prompt_tokens} → {mark}{usage.completion_tokens} tokens"
        if usage.reasoning_tokens:
            tokens += f" ({usage.reasoning_tokens} reasoning)"
        if usage.estimated:
            tokens += " (estimated)"
        parts.append(tokens)
    cost = reply.cost
    if cost is not None:  # no price known: nothing said (never a 0)
        parts.append(str(cost))
    if reply.ttft is not None:
        parts.append(f"first token {reply.ttft:.2f} s")
    speed = reply.tokens_per_second()
    if speed:
        parts.append(f"{speed:.1f} tok/s")
    parts.append(f"{reply.elapsed:.2f} s")
    parts += reply.notes  # what was done to get the reply (asked again on its own, ...)
    if reply.missing_choices:
        parts.append(f"asked for {reply.asked} choices, the endpoint sent "
                     f"{len(reply.choices)}")
    return visible(" · ".join(parts))  # the finish reason and the error are the endpoint's
