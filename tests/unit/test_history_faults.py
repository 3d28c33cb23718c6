"""The history against a full disk, an exchange too large for it, and a link where a save goes."""

from __future__ import annotations

import errno
import importlib
import json
import os
from pathlib import Path
from typing import Any

import pytest
from IPython.core.error import UsageError

import chatmagic
from chatmagic.store.conversation import Notebook, Turn
from chatmagic.testing import FakeEndpoint

messages_module = importlib.import_module("chatmagic.store.messages")
SAID = "the history could not be saved"


class FullDisk:
    """``os.write`` on a disk with ``room`` bytes left: a write that does not fit writes what
    fits (a short write, as a real disk does), and the next one fails with ENOSPC."""

    def __init__(self, room: int) -> None:
        self.room = room

    def __call__(self, fd: int, data: memoryview) -> int:
        if self.room <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        written = os.write(fd, bytes(data[:self.room]))
        self.room -= written
        return written


def _turn(text: str) -> Turn:
    return Turn.of({"role": "user", "content": text}, {"role": "assistant", "content": text})


def _lines(path: Path) -> list[dict[str, Any]]:
    data = path.read_bytes()
    assert data.endswith(b"\n")  # no line cut short at the end
    return [json.loads(line) for line in data.splitlines()]  # every line whole


def test_a_full_disk_leaves_no_torn_line_and_the_chat_goes_on(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    book = Notebook("full.ipynb", tmp_path)
    for i in range(3):
        book.add_turn("default", _turn(f"q{i}"))
    path = book.path
    assert path is not None
    before = path.read_bytes()
    book.write = FullDisk(room=40)  # the next line (~200 bytes) fits only in part
    book.add_turn("default", _turn("crosses the limit"))
    book.add_turn("default", _turn("later"))
    book.set_system("default", "later still")
    book.undo("default")
    assert path.read_bytes() == before  # the part written was cut off again
    assert [t.user["content"] for t in book.get("default").turns] == [
        "q0", "q1", "q2", "crosses the limit"]  # in memory, all of it
    assert book.get("default").system == "later still"
    err = capsys.readouterr().err
    assert err.count(SAID) == 1 and str(path) in err and "the disk is full" in err
    assert "in memory only" in err and "%chat_history save" in err
    assert len(_lines(path)) == 3
    reopened = Notebook("full.ipynb", tmp_path)
    assert reopened.unreadable == 0 and len(reopened.get("default").turns) == 3


def test_a_write_that_takes_nothing_is_no_room_either(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    book = Notebook("zero.ipynb", tmp_path)
    book.add_turn("default", _turn("kept"))
    assert book.path is not None
    path = book.path
    book.write = lambda fd, data: 0  # a write that neither writes nor fails must not spin
    book.add_turn("default", _turn("in memory"))
    assert len(_lines(path)) == 1 and len(book.get("default").turns) == 2
    assert capsys.readouterr().err.count(SAID) == 1


def test_a_full_disk_in_a_cell_is_said_once_and_the_conversation_goes_on(
        shell: Any, endpoint: FakeEndpoint, capsys: pytest.CaptureFixture[str]) -> None:
    shell.run_line_magic("chat_config", "set notebook=full")  # a journal on disk
    shell.run_cell_magic("chat", "-m echo", "saved")
    book = chatmagic._magics.session.notebook
    path = book.path
    assert path is not None
    book.write = FullDisk(room=10)
    capsys.readouterr()
    shell.run_cell_magic("chat", "-m echo -o first", "not saved")  # no traceback: no raise
    shell.run_cell_magic("chat", "-m echo -o second", "nor this")
    assert shell.user_ns["first"] == "not saved" and shell.user_ns["second"] == "nor this"
    assert [m["content"] for m in endpoint.last_body["messages"]] == [
        "saved", "saved", "not saved", "not saved", "nor this"]  # the chat goes on
    out = capsys.readouterr()
    assert out.err.count(SAID) == 1 and str(path) in out.err
    assert "Traceback" not in out.out + out.err
    assert [op["messages"][0]["content"] for op in _lines(path) if op["op"] == "turn"] == [
        "saved"]


def test_an_exchange_over_the_limit_keeps_its_conversation_in_memory_and_said_once(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    book = Notebook("big.ipynb", tmp_path)
    book.add_turn("default", _turn("small"))
    huge = "x" * (messages_module.MAX_TEXT + 1)  # the real limit: 64 MiB of text
    big = Turn.of({"role": "user", "content": "q"}, {"role": "assistant", "content": huge})
    book.add_turn("default", big)
    book.add_turn("default", _turn("after"))
    book.set_system("default", "later")
    book.add_turn("default", big)  # another: nothing more to say
    book.add_turn("other", _turn("elsewhere"))  # another conversation is journalled still
    assert [t.user["content"] for t in book.get("default").turns] == [
        "small", "q", "after", "q"]
    err = capsys.readouterr().err
    text = len(huge) + len("q" "user" "assistant") + 2 * len("role" "content")  # keys count
    assert err.count("warning:") == 1 and f"holds {text:,} characters of text" in err
    assert "at most 67,108,864 (64 MiB)" in err and "no setting raises it" in err
    assert book.path is not None and str(book.path) in err
    assert "in memory only from now on" in err and "%chat_history save FILE -c default" in err
    reopened = Notebook("big.ipynb", tmp_path)  # as it was before: no gap where "q" was
    assert [t.user["content"] for t in reopened.get("default").turns] == ["small"]
    assert reopened.get("default").system is None
    assert [t.user["content"] for t in reopened.get("other").turns] == ["elsewhere"]
    assert reopened.unreadable == 0


def test_a_reply_over_the_limit_in_a_cell_fills_out_and_raises_nothing(
        shell: Any, endpoint: FakeEndpoint, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    shell.run_line_magic("chat_config", "set notebook=big")
    monkeypatch.setattr(messages_module, "MAX_TEXT", 1000)  # a 64 MiB reply, made small
    prompt = "y" * 600  # the echo model says it back: 1200 characters in the exchange
    shell.run_cell_magic("chat", "-m echo -o reply", prompt)
    assert shell.user_ns["reply"] == prompt
    out = capsys.readouterr()
    assert "history file keeps at most" in out.err and "Traceback" not in out.out + out.err
    shell.run_cell_magic("chat", "-m echo", "next")
    assert [m["content"] for m in endpoint.last_body["messages"]] == [prompt, prompt, "next"]


# -- %chat_history save -------------------------------------------------------------------

def test_save_refuses_a_planted_link_and_leaves_its_target_alone(
        shell: Any, endpoint: FakeEndpoint, clean_env: Path) -> None:
    shell.run_cell_magic("chat", "-m echo", "hello")
    target = clean_env / "precious.txt"
    target.write_text("keep me")
    target.chmod(0o644)
    (clean_env / "out.json").symlink_to(target)
    with pytest.raises(UsageError, match="is a symbolic link .* Nothing was written"):
        shell.run_line_magic("chat_history", "save out.json")
    assert target.read_text() == "keep me" and target.stat().st_mode & 0o777 == 0o644
    assert (clean_env / "out.json").is_symlink()
    assert sorted(p.name for p in clean_env.iterdir() if p.name.endswith(".tmp")) == []


def test_save_writes_a_new_file_and_replaces_an_old_one_without_touching_it(
        shell: Any, endpoint: FakeEndpoint, clean_env: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    shell.run_cell_magic("chat", "-m echo", "hello")
    capsys.readouterr()
    shell.run_line_magic("chat_history", "save new.json")
    new = clean_env / "new.json"
    assert json.loads(new.read_text())[0] == {"role": "user", "content": "hello"}
    assert new.stat().st_mode & 0o777 == 0o600 and "replaces" not in capsys.readouterr().out
    old = clean_env / "old.json"
    old.write_text("old")
    old.chmod(0o644)
    twin = clean_env / "twin.json"
    os.link(old, twin)  # another name of the old file: it keeps the old text and mode
    shell.run_line_magic("chat_history", "save old.json")
    assert "replaces the file that was there" in capsys.readouterr().out
    assert json.loads(old.read_text())[1] == {"role": "assistant", "content": "hello"}
    assert old.stat().st_mode & 0o777 == 0o600
    assert twin.read_text() == "old" and twin.stat().st_mode & 0o777 == 0o644
    (clean_env / "adir").mkdir()
    with pytest.raises(UsageError, match="is a directory"):
        shell.run_line_magic("chat_history", "save adir")
    os.mkfifo(clean_env / "pipe")
    with pytest.raises(UsageError, match="is not a regular file"):
        shell.run_line_magic("chat_history", "save pipe")
