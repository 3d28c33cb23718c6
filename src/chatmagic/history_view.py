"""``%chat_history``: show, export, save, load, undo, retry, clear, list and keep."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from IPython.display import display

from .conversation import Conversation, Turn, read_messages, write_private
from .errors import HistoryError
from .render.html import markdown_html, text_html, view

if TYPE_CHECKING:
    from .magics import ChatMagics

__all__ = ["run", "transcript", "plain_transcript", "formatted"]


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text", "") if p.get("type") == "text" else "[image]" for p in content]
        return " ".join(parts)
    return ""


def _facts(turn: Turn) -> str:
    """The line under a reply: model, tokens, and whether it is incomplete."""
    meta = turn.meta
    facts = [str(meta.get("label") or meta.get("model") or "")]
    usage = meta.get("usage") or {}
    if usage:
        facts.append(f"{usage.get('prompt_tokens', 0)} → {usage.get('completion_tokens', 0)}"
                     f" tokens{' (estimated)' if usage.get('estimated') else ''}")
    if turn.incomplete:
        facts.append(f"⚠ incomplete: {meta.get('error', '')}")
    return " · ".join(f for f in facts if f)


def _replies(turn: Turn, i: int) -> list[tuple[str, str]]:
    """(heading, text) of what the model answered: its text, and its refusal if it refused."""
    parts = []
    text = _text(turn.assistant["content"]) if turn.assistant is not None else ""
    refusal = str(turn.meta.get("refusal") or "")
    if turn.assistant is not None and (text or not refusal):
        parts.append((f"assistant [{i}]", text))
    if refusal:  # the message's content is empty then: the refusal is all it said
        parts.append((f"assistant [{i}] refused", refusal))
    return parts


def transcript(conv: Conversation) -> str:
    """A readable HTML transcript, with each reply's facts under it. Every message goes
    through the renderer on its own, so no text can change how the next one reads."""
    def said(heading: str, text: str, refused: bool = False) -> str:
        body = markdown_html(text)
        box = f'<div class="cm-refusal">{body}</div>' if refused else body
        return f"<p><b>{text_html(heading)}:</b></p>{box}"

    parts = [f"<p><b>Conversation <code>{text_html(conv.name)}</code></b> · "
             f"{len(conv.turns)} exchange(s)</p>"]
    if conv.system:
        parts.append(said("system", conv.system))
    for i, turn in enumerate(conv.turns, 1):
        parts.append(said(f"user [{i}]", _text(turn.user.get("content"))))
        parts += [said(heading, text, heading.endswith("refused"))
                  for heading, text in _replies(turn, i)]
        parts.append(f'<div class="cm-note">{text_html(_facts(turn))}</div>')
    return "".join(parts)


def plain_transcript(conv: Conversation) -> str:
    """The transcript as plain text (a terminal shows this), with the same facts and marks."""
    lines = [f"Conversation {conv.name} · {len(conv.turns)} exchange(s)"]
    if conv.system:
        lines.append(f"system:\n{conv.system}")
    for i, turn in enumerate(conv.turns, 1):
        lines.append(f"user [{i}]:\n{_text(turn.user.get('content'))}")
        lines += [f"{heading}:\n{text}" for heading, text in _replies(turn, i)]
        lines.append(f"({_facts(turn)})")
    return "\n\n".join(lines)


def formatted(conv: Conversation, fmt: str) -> str:
    messages = conv.messages()
    if fmt == "jsonl":
        return "".join(json.dumps(m, ensure_ascii=False) + "\n" for m in messages)
    if fmt == "markdown":
        return "\n\n".join(f"**{m['role']}:** {_text(m.get('content'))}" for m in messages) + "\n"
    return json.dumps(messages, ensure_ascii=False, indent=2)


def _read(source: str, magics: "ChatMagics", fmt: str) -> Conversation:
    ns = magics.shell.user_ns
    if source.isidentifier() and source in ns and not Path(source).exists():
        return Conversation.from_messages(ns[source])
    path = Path(source).expanduser()
    if not path.exists():
        raise HistoryError(f"load: no file {path} (nor a variable named {source!r})")
    # Sizes, depth and the chat shape are checked there: a hostile file is one message.
    return Conversation.from_messages(read_messages(path, fmt))


def run(magics: "ChatMagics", args: Any) -> Any:
    """Carry out one %chat_history command."""
    notebook = magics.session.notebook
    name, action = args.conversation, args.action
    if action == "list":
        rows = [(n, len(c.turns)) for n, c in notebook.conversations.items()]
        html = "<ul>" + "".join(f"<li><code>{text_html(n)}</code>: {t} exchange(s)"
                                for n, t in rows) + "</ul>" if rows else \
            "<p><em>No conversations yet.</em></p>"
        display(view(html, "\n".join(f"{n}: {t}" for n, t in rows) or "No conversations yet."),
                raw=True)
        return None
    if action == "keep":
        if not args.target:
            raise HistoryError("keep takes a reply number (1, 2, ...) or a model id")
        print(magics.session.keep(name, args.target))
        return None
    if action == "load":
        if not args.target:
            raise HistoryError("load takes a PATH (JSON messages list) or a variable name")
        conv = _read(args.target, magics, args.format)
        notebook.replace(name, conv)
        print(f"Loaded {len(conv.turns)} exchange(s) into conversation '{name}'.")
        return None
    if action == "clear":
        notebook.clear(name)
        magics.session.pending.pop(name, None)
        print(f"Cleared conversation '{name}'.")
        return None
    if action == "undo":
        turn = notebook.undo(name)
        print(f"Removed the last exchange ({_text(turn.user.get('content'))[:60]!r}).")
        return None
    if action == "retry":
        magics.retry(name)
        return None
    if action not in ("show", "export", "save"):
        raise HistoryError(f"unknown action '{action}': use show, export, save, load, undo, "
                           "retry, clear, list or keep")
    if name == "default" and name not in notebook.conversations:
        conv = Conversation(name)  # nothing said yet: an empty transcript, not an error
    else:
        conv = notebook.get(name, create=False)
    if args.out:
        magics.shell.user_ns[args.out] = conv.messages()
    if action == "show":
        display(view(transcript(conv), plain_transcript(conv)),
                 raw=True)
    elif action == "export":
        text = formatted(conv, args.format)
        if not args.out:
            display({"text/plain": text}, raw=True)
    elif action == "save":
        if not args.target:
            raise HistoryError("save takes a PATH")
        path = Path(args.target).expanduser()
        fmt = "jsonl" if path.suffix == ".jsonl" else args.format
        write_private(path, formatted(conv, fmt))  # owner-only, like the journals
        print(f"Saved {len(conv.messages())} messages of '{name}' to {path}.")
    return None
