"""``%chat_history``'s subcommands: show, export, save, load, undo, clear, list and keep.

Each is a function of (parsed arguments, session, the user's namespace) that returns what to
show; the magic prints or displays it. Nothing here imports IPython.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Union

from ...store.conversation import Conversation, Turn
from ...store.messages import read_messages, write_private
from ...core.errors import HistoryError
from ...core.names import did_you_mean
from ...render.html import (clean_text, markdown_html, text_html, tool_call_html,
                             tool_call_text, view)
from ...engine.session import Session

__all__ = ["run", "COMMANDS", "Outcome", "transcript", "plain_transcript", "formatted"]


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text", "") if p.get("type") == "text" else "[image]" for p in content]
        return " ".join(parts)
    return ""


def _cost(cost: Any) -> str:
    """A turn's cost as its facts keep it (none kept where no price was known)."""
    if not isinstance(cost, dict) or not isinstance(cost.get("amount"), (int, float)):
        return ""
    from ...core.pricing import money

    return ("~" if cost.get("estimated") else "") + money(float(cost["amount"]),
                                                          str(cost.get("currency") or "USD"))


def _facts(turn: Turn) -> str:
    """The line under a reply: model, tokens, and whether it is incomplete."""
    meta = turn.meta
    facts = [str(meta.get("label") or meta.get("model") or "")]
    usage = meta.get("usage") or {}
    if usage:
        facts.append(f"{usage.get('prompt_tokens', 0)} → {usage.get('completion_tokens', 0)}"
                     f" tokens{' (estimated)' if usage.get('estimated') else ''}")
    facts.append(_cost(meta.get("cost")))
    if turn.incomplete:
        facts.append(f"⚠ incomplete: {meta.get('error', '')}")
    return " · ".join(f for f in facts if f)


@dataclass
class _Entry:
    """One thing a turn shows: a message's text (kind said or refused) or a tool call with
    its result (kind call)."""

    kind: str
    heading: str
    text: str
    result: str | None = None


def _entries(turn: Turn, i: int) -> list[_Entry]:
    """What turn ``i`` said, message by message; a tool call and its result are one entry."""
    entries: list[_Entry] = []
    calls: dict[str, _Entry] = {}
    last = max((n for n, m in enumerate(turn.messages) if m.get("role") == "assistant"),
               default=-1)
    for n, message in enumerate(turn.messages):
        role = str(message.get("role"))
        text = _text(message.get("content"))
        if role == "assistant":
            tool_calls = message.get("tool_calls") or []
            # The refusal is the answer's: its content is empty then.
            refusal = str(turn.meta.get("refusal") or "") if n == last else ""
            if text or not (tool_calls or refusal):
                entries.append(_Entry("said", f"assistant [{i}]", text))
            if refusal:
                entries.append(_Entry("refused", f"assistant [{i}] refused", refusal))
            for call in tool_calls:
                function = call.get("function") or {}
                entry = _Entry("call", str(function.get("name")),
                               str(function.get("arguments") or ""))
                calls[str(call.get("id"))] = entry
                entries.append(entry)
        elif role == "tool" and str(message.get("tool_call_id")) in calls:
            calls[str(message.get("tool_call_id"))].result = text
        elif role == "tool":
            entries.append(_Entry("said", f"tool result [{i}]", text))
        else:
            entries.append(_Entry("said", f"{role} [{i}]", text))
    return entries


def transcript(conv: Conversation) -> str:
    """A readable HTML transcript, with each reply's facts under it. Every message goes
    through the renderer on its own, so no text can change how the next one reads."""
    def said(heading: str, text: str, refused: bool = False) -> str:
        body = markdown_html(text)
        box = f'<div class="cm-refusal">{body}</div>' if refused else body
        return f"<p><b>{text_html(heading)}:</b></p>{box}"

    def shown(entry: _Entry) -> str:
        if entry.kind == "call":
            return tool_call_html(entry.heading, entry.text, entry.result,
                                  "" if entry.result is not None else "no result")
        return said(entry.heading, entry.text, entry.kind == "refused")

    parts = [f"<p><b>Conversation <code>{text_html(conv.name)}</code></b> · "
             f"{len(conv.turns)} exchange(s)</p>"]
    if conv.system:
        parts.append(said("system", conv.system))
    for i, turn in enumerate(conv.turns, 1):
        parts += [shown(entry) for entry in _entries(turn, i)]
        facts = _facts(turn)  # a loaded turn may have none
        parts += [f'<div class="cm-note">{text_html(facts)}</div>'] * bool(facts)
    return "".join(parts)


def plain_transcript(conv: Conversation) -> str:
    """The transcript as plain text (a terminal shows this), with the same facts and marks."""
    def shown(entry: _Entry) -> str:
        if entry.kind == "call":
            return tool_call_text(entry.heading, entry.text, entry.result)
        return f"{entry.heading}:\n{entry.text}"

    lines = [f"Conversation {conv.name} · {len(conv.turns)} exchange(s)"]
    if conv.system:
        lines.append(f"system:\n{conv.system}")
    for i, turn in enumerate(conv.turns, 1):
        lines += [shown(entry) for entry in _entries(turn, i)]
        facts = _facts(turn)
        lines += [f"({facts})"] * bool(facts)
    return "\n\n".join(lines)


def _markdown(message: dict[str, Any]) -> str:
    """One message as Markdown: its role, its text, and any tool calls it made."""
    text = f"**{message['role']}:** {_text(message.get('content'))}"
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        text += f"\n\n`{function.get('name')}({function.get('arguments')})`"
    return text


def formatted(conv: Conversation, fmt: str) -> str:
    messages = conv.messages()
    if fmt == "jsonl":
        return "".join(json.dumps(m, ensure_ascii=False) + "\n" for m in messages)
    if fmt == "markdown":
        return "\n\n".join(map(_markdown, messages)) + "\n"
    return json.dumps(messages, ensure_ascii=False, indent=2)


def _read(source: str, namespace: dict[str, Any], fmt: str) -> Conversation:
    if source.isidentifier() and source in namespace and not Path(source).exists():
        return Conversation.from_messages(namespace[source])
    path = Path(source).expanduser()
    if not path.exists():
        raise HistoryError(f"load: no file {path} (nor a variable named {source!r})")
    # Sizes, depth and the chat shape are checked there: a hostile file is one message.
    return Conversation.from_messages(read_messages(path, fmt))


#: What a subcommand gives back for the magic to show: a message to print, a display
#: bundle (``text/html`` and ``text/plain``), or nothing.
Outcome = Union[str, dict[str, str], None]


def _list(args: Any, session: Session, namespace: dict[str, Any]) -> Outcome:
    rows = [(n, len(c.turns)) for n, c in session.notebook.conversations.items()]
    if not rows:
        return view("<p><em>No conversations yet.</em></p>", "No conversations yet.")
    html = "<ul>" + "".join(f"<li><code>{text_html(n)}</code>: {t} exchange(s)"
                            for n, t in rows) + "</ul>"
    return view(html, "\n".join(f"{n}: {t}" for n, t in rows))


def _keep(args: Any, session: Session, namespace: dict[str, Any]) -> Outcome:
    if not args.target:
        raise HistoryError("keep takes a reply number (1, 2, ...) or a model id")
    name, which = args.conversation, str(args.target)
    if name not in session.pending:
        waiting = list(session.pending)  # conversations whose compare awaits a keep
        hint = did_you_mean(name, waiting) or (
            f" Replies wait in {', '.join(repr(w) for w in waiting)}: add -c NAME." if waiting
            else "")
        raise HistoryError(f"nothing to keep in conversation '{name}': run %%chat --compare or "
                           f"-n 2 first.{hint}")
    labels = [label for label, _, _ in session.pending[name][1]]
    if not which.isdigit() and which not in labels:
        raise HistoryError(f"no reply from '{which}' to keep.{did_you_mean(which, labels)} The "
                           f"replies: {', '.join(f'{i} {label}' for i, label in enumerate(labels, 1))}")
    return session.keep(name, which)


def _load(args: Any, session: Session, namespace: dict[str, Any]) -> Outcome:
    if not args.target:
        raise HistoryError("load takes a PATH (JSON messages list) or a variable name")
    conv = _read(args.target, namespace, args.format)
    session.notebook.replace(args.conversation, conv)
    return f"Loaded {len(conv.turns)} exchange(s) into conversation '{args.conversation}'."


def _clear(args: Any, session: Session, namespace: dict[str, Any]) -> Outcome:
    session.notebook.clear(args.conversation)
    session.pending.pop(args.conversation, None)
    return f"Cleared conversation '{args.conversation}'."


def _undo(args: Any, session: Session, namespace: dict[str, Any]) -> Outcome:
    turn = session.notebook.undo(args.conversation)
    return f"Removed the last exchange ({_text(turn.user.get('content'))[:60]!r})."


def _conversation(args: Any, session: Session, namespace: dict[str, Any]) -> Conversation:
    """The conversation shown, exported or saved (stored in ``-o`` too)."""
    notebook, name = session.notebook, args.conversation
    if name == "default" and name not in notebook.conversations:
        conv = Conversation(name)  # nothing said yet: an empty transcript, not an error
    else:
        conv = notebook.get(name, create=False)
    if args.out:
        namespace[args.out] = conv.messages()
    return conv


def _show(args: Any, session: Session, namespace: dict[str, Any]) -> Outcome:
    conv = _conversation(args, session, namespace)
    return view(transcript(conv), plain_transcript(conv))


def _export(args: Any, session: Session, namespace: dict[str, Any]) -> Outcome:
    conv = _conversation(args, session, namespace)
    # Shown, the model's text and the tools' words cannot hide or reorder what is read (the
    # saved file and -o keep them as they are).
    return None if args.out else {"text/plain": clean_text(formatted(conv, args.format))}


def _save(args: Any, session: Session, namespace: dict[str, Any]) -> Outcome:
    if not args.target:
        raise HistoryError("save takes a PATH")
    conv = _conversation(args, session, namespace)
    path = Path(args.target).expanduser()
    fmt = "jsonl" if path.suffix == ".jsonl" else args.format
    replaced = write_private(path, formatted(conv, fmt))  # owner-only, like the journals
    was = " (it replaces the file that was there)" if replaced else ""
    return f"Saved {len(conv.messages())} messages of '{conv.name}' to {path}{was}."


#: The subcommands, each a function of (parsed arguments, session, the user's namespace).
#: ``retry`` is not among them: it runs a cell, which is the magic's to do.
COMMANDS: dict[str, Callable[[Any, Session, dict[str, Any]], Outcome]] = {
    "show": _show, "export": _export, "save": _save, "load": _load, "undo": _undo,
    "clear": _clear, "list": _list, "keep": _keep,
}


def run(args: Any, session: Session, namespace: dict[str, Any]) -> Outcome:
    """Carry out one %chat_history subcommand (not ``retry``)."""
    command = COMMANDS.get(args.action)
    if command is None:
        near = did_you_mean(args.action, [*COMMANDS, "retry"])
        raise HistoryError(f"unknown action '{args.action}'.{near} %chat_history takes show, "
                           "export, save, load, undo, retry, clear, list or keep")
    return command(args, session, namespace)
