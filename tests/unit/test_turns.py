"""Turns as messages: a turn is the list of messages its exchange added (tool calls and
results included); journals of the format before (v1, and lines without "v") still load."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from chatmagic.store.conversation import JOURNAL_VERSION, Conversation, Notebook, Turn
from chatmagic.core.errors import HistoryError
from chatmagic.shell.cmd.history import plain_transcript, transcript
from openapi import errors as schema_errors

# An exchange in which the model called a tool, got its result, then answered.
TOOL_EXCHANGE: list[dict[str, Any]] = [
    {"role": "user", "content": "What is 2 + 3?"},
    {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_1", "type": "function",
         "function": {"name": "add", "arguments": '{"a": 2, "b": 3}'}}]},
    {"role": "tool", "tool_call_id": "call_1", "content": "5"},
    {"role": "assistant", "content": "2 + 3 = 5."},
]


def test_a_v1_journal_as_chatmagic_wrote_it_still_loads(tmp_path: Path) -> None:
    # Byte for byte what the version before wrote: "v": 1, ids, user/assistant, an undo by id,
    # and a line from before formats had numbers.
    book = Notebook("old.ipynb", tmp_path)
    assert book.path is not None
    lines = [
        {"v": 1, "op": "system", "conv": "default", "text": "Be brief."},
        {"v": 1, "op": "turn", "conv": "default", "id": "aaaaaaaaaaaa",
         "user": {"role": "user", "content": "first"},
         "assistant": {"role": "assistant", "content": "one"},
         "meta": {"model": "echo", "usage": {"prompt_tokens": 3, "completion_tokens": 1}}},
        {"v": 1, "op": "turn", "conv": "default", "id": "bbbbbbbbbbbb",
         "user": {"role": "user", "content": "gone"}, "assistant": None, "meta": {}},
        {"v": 1, "op": "undo", "conv": "default", "id": "bbbbbbbbbbbb"},
        {"op": "turn", "conv": "default", "user": {"role": "user", "content": "second"},
         "assistant": {"role": "assistant", "content": "two"}, "meta": {}},
        {"v": 1, "op": "replace", "conv": "copy", "system": None, "turns": [
            {"id": "cccccccccccc", "user": {"role": "user", "content": "q"},
             "assistant": {"role": "assistant", "content": "a"}, "meta": {}}]},
    ]
    book.path.parent.mkdir(parents=True, exist_ok=True)
    book.path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    again = Notebook("old.ipynb", tmp_path)
    assert again.unreadable == 0
    assert again.get("default").messages() == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "first"}, {"role": "assistant", "content": "one"},
        {"role": "user", "content": "second"}, {"role": "assistant", "content": "two"}]
    assert again.get("default").turns[0].meta["model"] == "echo"
    assert again.get("copy").messages()[1] == {"role": "assistant", "content": "a"}
    # New lines go on in the new format, after the old ones; the mix loads.
    again.add_turn("default", Turn(list(TOOL_EXCHANGE), {"model": "echo"}))
    last = json.loads(again.path.read_text().splitlines()[-1])  # type: ignore[union-attr]
    assert last["v"] == JOURNAL_VERSION == 2 and last["messages"] == TOOL_EXCHANGE
    third = Notebook("old.ipynb", tmp_path)
    assert third.get("default").messages()[-4:] == TOOL_EXCHANGE and third.unreadable == 0
    third.undo("default")  # the tool exchange goes as one turn
    assert len(Notebook("old.ipynb", tmp_path).get("default").messages()) == 5


def test_a_turn_keeps_its_tool_messages_and_export_is_valid() -> None:
    conv = Conversation.from_messages([{"role": "system", "content": "s"}, *TOOL_EXCHANGE,
                                       {"role": "user", "content": "thanks"}])
    assert [len(t.messages) for t in conv.turns] == [4, 1]
    assert conv.turns[0].user["content"] == "What is 2 + 3?"
    assert conv.turns[0].assistant == TOOL_EXCHANGE[-1]
    messages = conv.messages()
    assert messages[1:5] == TOOL_EXCHANGE
    body = {"model": "x", "messages": messages}
    assert not schema_errors(body), schema_errors(body)


def test_the_old_constructor_shape_is_refused_loudly() -> None:
    with pytest.raises(TypeError, match=r"Turn.of\(user, assistant\)"):
        Turn({"role": "user", "content": "q"}, {"role": "assistant", "content": "a"})  # type: ignore[arg-type]
    assert Turn.of({"role": "user", "content": "q"}).messages == [{"role": "user",
                                                                     "content": "q"}]


@pytest.mark.parametrize("message, words", [
    ({"role": "tool", "content": "5"}, "tool result without a \"tool_call_id\""),
    ({"role": "assistant", "content": None, "tool_calls": [{"id": "c", "type": "function",
                                                            "function": {"name": "f",
                                                                         "arguments": {}}}]},
     "has a tool call that is not"),
    ({"role": "user", "content": "x", "tool_calls": []}, "not an assistant's list"),
])
def test_bad_tool_messages_are_named(message: dict[str, Any], words: str) -> None:
    with pytest.raises(HistoryError, match=words):
        Conversation.from_messages([{"role": "user", "content": "q"}, message])


def test_show_renders_a_call_compactly() -> None:
    conv = Conversation.from_messages([*TOOL_EXCHANGE[:2],
                                       {**TOOL_EXCHANGE[2], "content": "<img src=x onerror=1>"},
                                       TOOL_EXCHANGE[3]])
    html = transcript(conv)
    assert html.count('class="cm-tool"') == 1  # the call and its result in one block
    assert "add" in html and "→ result" in html and "<img" not in html
    assert "&lt;img src=x onerror=1&gt;" in html
    plain = plain_transcript(conv)
    assert "[tool] add({ \"a\": 2, \"b\": 3 })" not in plain  # arguments as written, one line
    assert '[tool] add({"a": 2, "b": 3})' in plain and "→ <img src=x onerror=1>" in plain
    assert plain.count("assistant [1]") == 1  # the call has no text of its own to show


def test_load_keeps_tool_messages_and_sends_them_back(shell: Any, endpoint: Any,
                                                      clean_env: Path) -> None:
    (clean_env / "tools.json").write_text(json.dumps(TOOL_EXCHANGE))
    shell.run_line_magic("chat_history", "load tools.json")
    shell.run_cell_magic("chat", "-m echo", "and 4 + 4?")
    # Sent as loaded, but for the calls' missing text: "" (llama-cpp-python refuses null).
    sent = [{**m, "content": ""} if m.get("tool_calls") else m for m in TOOL_EXCHANGE]
    assert endpoint.last_body["messages"] == [*sent, {"role": "user", "content": "and 4 + 4?"}]
    shell.run_line_magic("chat_history", "export -o h")
    assert shell.user_ns["h"][:4] == TOOL_EXCHANGE  # kept as loaded
