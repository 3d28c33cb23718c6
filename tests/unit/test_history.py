"""Conversations: exported as OpenAI messages, per notebook, surviving restarts and crashes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from IPython.core.error import UsageError

from chatmagic.store.conversation import Conversation, Notebook, Turn
from chatmagic.core.errors import HistoryError
from chatmagic.testing import FakeEndpoint


def test_undo_then_prompt_sends_exactly_the_rest(shell: Any, endpoint: FakeEndpoint) -> None:
    shell.run_cell_magic("chat", "-m echo", "one")
    shell.run_cell_magic("chat", "-m echo", "two")
    shell.run_line_magic("chat_history", "undo")
    shell.run_cell_magic("chat", "-m echo", "three")
    assert [m["content"] for m in endpoint.last_body["messages"]] == ["one", "one", "three"]


def test_retry_replaces_the_last_reply(shell: Any, endpoint: FakeEndpoint) -> None:
    shell.run_cell_magic("chat", "-m echo", "again")
    shell.run_line_magic("chat_history", "retry")
    assert endpoint.last_body["messages"] == [{"role": "user", "content": "again"}]
    shell.run_line_magic("chat_history", "export -o h")
    assert shell.user_ns["h"] == [{"role": "user", "content": "again"},
                                  {"role": "assistant", "content": "again"}]


def test_named_conversations_new_clear_list(shell: Any, endpoint: FakeEndpoint,
                                            capsys: Any) -> None:
    shell.run_cell_magic("chat", "-m echo -c a", "in a")
    shell.run_cell_magic("chat", "-m echo -c b", "in b")
    shell.run_cell_magic("chat", "-m echo -c a", "more a")
    assert [m["content"] for m in endpoint.last_body["messages"]] == ["in a", "in a", "more a"]
    shell.run_cell_magic("chat", "-m echo -c a --new", "fresh")
    assert endpoint.last_body["messages"] == [{"role": "user", "content": "fresh"}]
    shell.run_line_magic("chat_history", "list")
    assert "a: 1\nb: 1" in capsys.readouterr().out
    import chatmagic
    assert chatmagic.history("b")[-1] == {"role": "assistant", "content": "in b"}
    shell.run_line_magic("chat_history", "clear -c b")
    assert chatmagic.history("b") == []


def test_save_and_load_round_trip(shell: Any, endpoint: FakeEndpoint, clean_env: Path) -> None:
    shell.run_cell_magic("chat", "-m echo -s sys", "hello")
    for name in ("h.json", "h.jsonl"):
        shell.run_line_magic("chat_history", f"save {name}")
        shell.run_line_magic("chat_history", f"load {name} -c copy")
        assert shell.run_line_magic("chat_history", "export -c copy -o x") is None
        assert shell.user_ns["x"] == [{"role": "system", "content": "sys"},
                                      {"role": "user", "content": "hello"},
                                      {"role": "assistant", "content": "hello"}]
    shell.user_ns["msgs"] = [{"role": "user", "content": "from a variable"}]
    shell.run_line_magic("chat_history", "load msgs -c v")
    shell.run_cell_magic("chat", "-m echo -c v", "next")
    assert endpoint.last_body["messages"][0] == {"role": "user", "content": "from a variable"}


@pytest.mark.parametrize("content, words", [
    (None, "no file"), ("{not json", "is not valid JSON"), ('[{"x": 1}]', "not a chat message"),
    ("\x00\xff garbage", "is not valid JSON"),
])
def test_bad_load_is_refused_and_history_untouched(shell: Any, endpoint: FakeEndpoint,
                                                   clean_env: Path, content: Any,
                                                   words: str) -> None:
    shell.run_cell_magic("chat", "-m echo", "keep me")
    if content is not None:
        (clean_env / "bad.json").write_text(content, encoding="utf-8", errors="replace")
    with pytest.raises(UsageError, match=words):
        shell.run_line_magic("chat_history", "load bad.json")
    import chatmagic
    assert chatmagic.history()[0] == {"role": "user", "content": "keep me"}


def test_clear_messages_for_empty_and_unknown(shell: Any) -> None:
    with pytest.raises(UsageError, match="no conversation named 'nope'"):
        shell.run_line_magic("chat_history", "export -c nope")
    shell.run_line_magic("chat_history", "clear -c empty")
    with pytest.raises(UsageError, match="no exchange to undo"):
        shell.run_line_magic("chat_history", "undo -c empty")


def test_append_is_one_line_and_a_torn_write_is_skipped(tmp_path: Path) -> None:
    book = Notebook("nb.ipynb", tmp_path)
    for i in range(50):
        book.add_turn("default", Turn.of({"role": "user", "content": f"q{i}"},
                                      {"role": "assistant", "content": f"a{i}"}))
    assert book.path is not None
    before = book.path.stat().st_size
    turn = Turn.of({"role": "user", "content": "last"}, {"role": "assistant", "content": "x"})
    book.add_turn("default", turn)
    line = json.dumps({"v": 2, "op": "turn", "conv": "default", **turn.to_dict()}) + "\n"
    assert book.path.stat().st_size - before == len(line.encode())  # O(1) bytes per turn
    with book.path.open("ab") as f:
        f.write(b'{"op": "turn", "conv": "default", "user": {"ro')  # a crash mid-write
    reloaded = Notebook("nb.ipynb", tmp_path)
    assert len(reloaded.get("default").turns) == 51 and reloaded.unreadable == 1
    reloaded.add_turn("default", turn)  # the next write starts on a fresh line
    assert len(Notebook("nb.ipynb", tmp_path).get("default").turns) == 52


def test_from_messages_round_trip_with_image_parts() -> None:
    messages = [{"role": "system", "content": "s"},
                {"role": "user", "content": [{"type": "text", "text": "look"},
                                             {"type": "image_url",
                                              "image_url": {"url": "https://x/y.png"}}]},
                {"role": "assistant", "content": "a cat"}]
    assert Conversation.from_messages(messages).messages() == messages
    with pytest.raises(HistoryError, match="expected a list of messages"):
        Conversation.from_messages({"role": "user"})


# -- hostile files ----------------------------------------------------------------------
import importlib  # noqa: E402

messages_module = importlib.import_module("chatmagic.store.messages")
from chatmagic.store.messages import read_messages, validate_messages, write_private  # noqa: E402


def _deep(levels: int) -> Any:
    value: Any = "x"
    for _ in range(levels):
        value = [value]
    return value


@pytest.mark.parametrize("messages, words", [
    ([{"role": "user", "content": "ok"}, {"role": "user", "content": [{"type": "text",
                                                                        "text": 42}]}],
     "message 1 (role='user') has a text part whose text is not a string"),
    ([{"role": "user", "content": _deep(100_000)}], "message 0 (role='user') nests deeper"),
    ([{"role": "user", "content": [{"type": "text", "text": "a"}, "bare"]}],
     "message 0 (role='user') has a content part that is not an object"),
    ([{"role": "wizard", "content": "x"}], "message 0 (role='wizard') is not a chat message"),
    ([{"role": "user", "content": [{"type": "image_url", "image_url": "https://x"}]}],
     "has an image_url part without"),
    ([{"role": "user", "content": {"text": "x"}}], "neither text nor a list of parts"),
])
def test_bad_messages_name_the_first_bad_one(messages: Any, words: str) -> None:
    with pytest.raises(HistoryError) as info:
        validate_messages(messages)
    assert words in str(info.value) and "nothing was changed" in str(info.value)


def test_too_many_or_too_much_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(HistoryError, match="the limit is 20000"):
        validate_messages([{"role": "user", "content": "x"}] * 20_001)
    monkeypatch.setattr(messages_module, "MAX_TEXT", 1000)
    with pytest.raises(HistoryError, match="limit is reached at message 1"):
        validate_messages([{"role": "user", "content": "x" * 600}] * 3)


def test_hostile_files_give_one_clear_error(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    cases = {"deep.json": "[" * 200_000 + "]" * 200_000, "binary.json": b"\xff\xfe\x00garbage",
             "types.json": json.dumps([{"role": "user", "content": [{"type": "text",
                                                                     "text": None}]}]),
             "lines.jsonl": '{"role": "user", "content": "a"}\n[1, 2]\n',
             "object.json": '{"messages": []}'}
    expected = {"deep.json": "nests too deep", "binary.json": "cannot read",
                "types.json": "message 0", "lines.jsonl": "message 1",
                "object.json": "expected a list of messages"}
    for name, data in cases.items():
        path = tmp_path / name
        path.write_bytes(data if isinstance(data, bytes) else data.encode())
        with pytest.raises(HistoryError) as info:
            read_messages(path)
        assert expected[name] in str(info.value) and str(path) in str(info.value), name
    monkeypatch.setattr(messages_module, "MAX_FILE_BYTES", 10)
    with pytest.raises(HistoryError, match="the limit is 0 MiB"):
        read_messages(tmp_path / "types.json")


def test_saved_histories_and_journals_are_private(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    target.write_text("old")
    target.chmod(0o644)
    write_private(target, "[]")
    assert target.read_text() == "[]" and target.stat().st_mode & 0o777 == 0o600
    with pytest.raises(HistoryError, match="does not exist; create it first"):
        write_private(tmp_path / "missing" / "out.json", "[]")
    book = Notebook("private.ipynb", tmp_path / "journals")
    book.add_turn("default", Turn.of({"role": "user", "content": "q"}, None))
    assert book.path is not None and book.path.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "journals").stat().st_mode & 0o777 == 0o700


def test_a_damaged_journal_line_is_skipped_not_loaded(tmp_path: Path) -> None:
    book = Notebook("dmg.ipynb", tmp_path)
    book.add_turn("default", Turn.of({"role": "user", "content": "good"}, None))
    assert book.path is not None
    with book.path.open("a") as f:
        f.write(json.dumps({"op": "turn", "conv": "default", "user": {
            "role": "user", "content": [{"type": "text", "text": {"not": "text"}}]}}) + "\n")
        f.write("[" * 100_000 + "\n")
    turns = Notebook("dmg.ipynb", tmp_path).get("default").turns
    assert [t.user["content"] for t in turns] == ["good"]


def test_undo_takes_away_its_own_turn_when_two_kernels_share_a_journal(tmp_path: Path) -> None:
    from chatmagic.store.conversation import Notebook, Turn

    def turn(text: str) -> Turn:
        return Turn.of({"role": "user", "content": text}, {"role": "assistant", "content": text})

    first = Notebook("shared.ipynb", tmp_path)
    first.add_turn("default", turn("from the first kernel"))
    second = Notebook("shared.ipynb", tmp_path)  # opened later: it sees the first turn
    second.add_turn("default", turn("from the second kernel"))
    first.undo("default")  # the first kernel's last turn is its own
    reopened = Notebook("shared.ipynb", tmp_path)
    assert [t.user["content"] for t in reopened.get("default").turns] == ["from the second kernel"]


def test_unreadable_journal_lines_are_counted_and_the_rest_loaded(tmp_path: Path) -> None:
    import json

    from chatmagic.store.conversation import Notebook, Turn

    book = Notebook("n.ipynb", tmp_path)
    book.add_turn("default", Turn.of({"role": "user", "content": "kept"}, None))
    assert book.path is not None
    with book.path.open("a", encoding="utf-8") as f:
        f.write("{not json\n")
        f.write(json.dumps({"v": 99, "op": "turn", "conv": "default"}) + "\n")  # the future
        f.write(json.dumps({"op": "teleport", "conv": "default"}) + "\n")  # unknown
    # a journal line written before versions and ids (an older chatmagic) still loads
    with book.path.open("a", encoding="utf-8") as f:
        f.write(json.dumps({"op": "turn", "conv": "default",
                            "user": {"role": "user", "content": "old"}, "assistant": None,
                            "meta": {}}) + "\n")
    again = Notebook("n.ipynb", tmp_path)
    assert [t.user["content"] for t in again.get("default").turns] == ["kept", "old"]
    assert again.unreadable == 3
