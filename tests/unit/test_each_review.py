"""--each and the Batch API: the deadline, resume keys, invalid replies, the row store."""

from __future__ import annotations

from typing import Any

import pytest

from chatmagic.testing import FakeEndpoint


def _magic(shell: Any, line: str, cell: str) -> None:
    shell.run_cell_magic("chat", line, cell)


def _profile(shell: Any, name: str, base_url: str, **more: Any) -> None:
    from chatmagic.core.profiles import Profile

    magics = shell.magics_manager.registry["ChatMagics"]
    magics.session.profiles.set(Profile(name, base_url, needs_key=False, **more))


# -- --timeout is each attempt's, not the queue's ------------------------------------------

@pytest.mark.paced
def test_timeout_does_not_count_the_wait_for_a_free_slot(shell: Any,
                                                         endpoint: FakeEndpoint) -> None:
    _profile(shell, "one", endpoint.base_url, concurrency=1)
    shell.user_ns["xs"] = ["a", "b", "c", "d"]
    # one at a time, each row 0.3 s: the last waits 0.9 s for its slot, past its 0.8 s
    _magic(shell, "--each xs -p one -m echo/first=0.3 --timeout 0.8 -o t", "{item}")
    table = shell.user_ns["t"]
    assert table["error"].isna().all(), table["error"].tolist()
    assert table["text"].tolist() == ["a", "b", "c", "d"]
    assert endpoint.max_in_flight == 1


@pytest.mark.paced
def test_a_timed_out_row_keeps_the_text_that_came(shell: Any, endpoint: FakeEndpoint) -> None:
    shell.user_ns["xs"] = ["one two three four five six"]
    try:
        _magic(shell, "--each xs -m echo/delay=0.3 --timeout 1 -o t", "{item}")
    except Exception as exc:  # every row failed: the cell says so
        assert "within 1 s" in str(exc)
    row = shell.user_ns["t"].iloc[0]
    assert "within 1 s" in row["error"]
    assert row["text"] and "one two six".split()[0] in row["text"]
    assert "six" not in row["text"]


# -- resume keys do not change with what the session learned --------------------------------

def test_rows_resume_after_the_endpoint_refused_json_schema(shell: Any,
                                                            endpoint: FakeEndpoint) -> None:
    import chatmagic

    knowledge = chatmagic._magics.session.knowledge
    shell.user_ns["people"] = ["ann", "bob"]
    line = "--each people -m schema/refuse=json_schema --schema 'name, age int' -o t"
    _magic(shell, line, "Person {item}, age {index}")
    assert shell.user_ns["t"]["error"].isna().all()
    sent = len(endpoint.chat_requests)
    assert knowledge.modes == {endpoint.base_url: "json_object"}  # learned, for the session
    _magic(shell, line, "Person {item}, age {index}")
    assert len(endpoint.chat_requests) == sent  # nothing sent again
    assert shell.user_ns["t"]["age"].tolist() == [0, 1]
    knowledge.modes.clear()  # as after a kernel restart
    _magic(shell, line, "Person {item}, age {index}")
    assert len(endpoint.chat_requests) == sent


# -- an invalid reply is kept: its text shown, not bought again --------------------------

def test_an_invalid_reply_keeps_its_text_and_is_not_bought_again(
        shell: Any, endpoint: FakeEndpoint, clean_env: Any) -> None:
    import json

    shell.user_ns["people"] = ["ann"]
    line = "--each people -m schema/shape=wrong --schema 'name, age int' -o t"
    try:
        _magic(shell, line, "Person {item}")
    except Exception as exc:  # the one row failed: the cell says so
        assert "does not match the schema" in str(exc)
    row = shell.user_ns["t"].iloc[0]
    assert "does not match the schema" in row["error"]
    sent = endpoint.chat_requests[0]
    assert row["text"]  # the reply as it came
    try:
        _magic(shell, line, "Person {item}")
    except Exception:
        pass
    assert len(endpoint.chat_requests) == 1  # read again from the store, not sent again
    again = shell.user_ns["t"].iloc[0]
    assert again["error"] == row["error"] and again["text"] == row["text"]
    magics = shell.magics_manager.registry["ChatMagics"]
    store = magics.session.notebook.rows
    assert store._load(), "the reply is in the row store"
    assert sent.body["messages"]
    json.dumps(list(store._load().values()))


# -- a store that cannot be written does not end the run --------------------------------

def _store_at(shell: Any, path: Any) -> Any:
    from chatmagic.store.rowstore import RowStore

    magics = shell.magics_manager.registry["ChatMagics"]
    store = magics.session.notebook.rows = RowStore(path)
    return store


def test_a_failed_write_of_the_row_store_warns_once_and_the_run_goes_on(
        shell: Any, endpoint: FakeEndpoint, tmp_path: Any, capsys: Any) -> None:
    path = tmp_path / "nb.rows.jsonl"
    store = _store_at(shell, path)
    store._load()  # read (no file yet) ...
    path.mkdir()  # ... then it cannot be written: os.open fails (EISDIR), as on a full disk
    shell.user_ns["xs"] = ["a", "b", "c", "d"]
    _magic(shell, "--each xs -m echo --concurrency 2 -o t", "{item}")
    assert shell.user_ns["t"]["text"].tolist() == ["a", "b", "c", "d"]
    warned = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert len(warned) == 1 and "in memory" in warned[0], warned
    _magic(shell, "--each xs -m echo -o t", "{item}")
    assert len(endpoint.chat_requests) == 4  # kept in memory: not sent again


def test_an_unreadable_row_store_warns_and_the_run_goes_on(
        shell: Any, endpoint: FakeEndpoint, tmp_path: Any, capsys: Any) -> None:
    path = tmp_path / "nb.rows.jsonl"
    path.mkdir()
    _store_at(shell, path)
    shell.user_ns["xs"] = ["a", "b"]
    _magic(shell, "--each xs -m echo -o t", "{item}")
    assert shell.user_ns["t"]["text"].tolist() == ["a", "b"]
    warned = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert len(warned) == 1 and "cannot read" in warned[0], warned


def test_each_notebook_owns_its_finished_rows(tmp_path: Any) -> None:
    """No store shared by the process: two sessions' notebooks, or a notebook opened again
    after the setting changed, each have their own rows (on disk beside the journal)."""
    from chatmagic.core.table import Row
    from chatmagic.engine.session import Session
    from chatmagic.store.conversation import Notebook

    one, two = Session(environ={}), Session(environ={})
    one.notebook.rows.put("d" * 64, Row(0, "m", "one's"))
    assert one.notebook.rows.get("d" * 64, 0).text == "one's"
    assert two.notebook.rows.get("d" * 64, 0) is None
    named = Notebook("nb.ipynb", tmp_path)
    named.rows.put("e" * 64, Row(0, "m", "kept"))
    assert named.rows.path == tmp_path / (named.path.stem + ".rows.jsonl")
    assert Notebook("nb.ipynb", tmp_path).rows.get("e" * 64, 0).text == "kept"


# -- one locked append for every journal, with the torn-line guard ------------------------

def test_a_torn_last_line_in_the_row_store_does_not_swallow_the_next(tmp_path: Any) -> None:
    import json
    import stat

    from chatmagic.store.rowstore import RowStore
    from chatmagic.core.table import Row

    path = tmp_path / "nb.rows.jsonl"
    first = RowStore(path)
    first.put("a" * 64, Row(0, "m", "kept"))
    with path.open("ab") as f:
        f.write(b'{"v": 1, "id": "bbbb", "row": {"te')  # a crash in the middle of a line
    RowStore(path).put("c" * 64, Row(1, "m", "after the crash"))
    again = RowStore(path)
    assert again.get("a" * 64, 0).text == "kept"
    assert again.get("c" * 64, 1).text == "after the crash"
    assert again.unreadable == 1
    assert json.loads(path.read_bytes().splitlines()[-1])["id"] == "c" * 64
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


# -- a batch sends only the rows no earlier run finished ---------------------------------

def _completed(endpoint: FakeEndpoint) -> None:
    from wait import until

    until(lambda: all(b["status"] in ("completed", "failed")
                      for b in endpoint.batches.batches.values()),  # type: ignore[union-attr]
          "the batches' end")


def test_a_batch_sends_only_the_rows_not_finished_before(shell: Any, endpoint: FakeEndpoint,
                                                         capsys: Any) -> None:
    shell.user_ns["xs"] = ["a", "b"]
    _magic(shell, "--each xs -m echo", "{item}")
    shell.user_ns["xs"] = ["a", "b", "c"]
    capsys.readouterr()
    _magic(shell, "--each xs --batch-api -m echo", "{item}")
    said = capsys.readouterr().out
    _completed(endpoint)
    assert [line["messages"][-1]["content"] for line in endpoint.batch_lines] == ["c"]
    assert "Sent 1 requests" in said and "2 rows came from earlier runs" in said
    _magic(shell, "--each xs --batch-api -m echo", "{item}")  # c is not finished: sent again
    _magic(shell, "--each xs --batch-api -m echo --fresh", "{item}")
    _completed(endpoint)
    assert len(endpoint.batch_lines) == 1 + 1 + 3


def test_a_batch_of_rows_all_finished_before_sends_nothing(shell: Any, endpoint: FakeEndpoint,
                                                           capsys: Any) -> None:
    shell.user_ns["xs"] = ["a", "b"]
    _magic(shell, "--each xs -m echo", "{item}")
    capsys.readouterr()
    _magic(shell, "--each xs --batch-api -m echo", "{item}")
    assert "Nothing sent: all 2 rows were answered by earlier runs" in capsys.readouterr().out
    assert endpoint.batch_lines == [] and endpoint.batches.files == {}


# -- usage: rows from earlier runs are not this run's; map() counts in %chat_usage ----------

def test_rows_from_earlier_runs_add_no_tokens_to_this_runs_line(shell: Any,
                                                                endpoint: FakeEndpoint,
                                                                capsys: Any) -> None:
    shell.user_ns["xs"] = ["one two", "three four"]
    _magic(shell, "--each xs -m echo", "{item}")
    first = [line for line in capsys.readouterr().out.split("\r") if "answered" in line]
    assert first and "tokens 10 in / 4 out" in first[-1], first
    _magic(shell, "--each xs -m echo", "{item}")
    again = [line for line in capsys.readouterr().out.split("\r") if "answered" in line][-1]
    assert "2 from earlier runs" in again and "tokens 0 in / 0 out" in again, again
    shell.run_line_magic("chat_usage", "-o u")
    assert shell.user_ns["u"][0]["requests"] == 2


def test_map_counts_in_chat_usage(shell: Any, endpoint: FakeEndpoint) -> None:
    import chatmagic

    chatmagic.map("Say {item}", ["x", "y", "z"], model="echo")
    chatmagic.map("Say {item}", ["x", "y", "z"], model="echo")  # kept rows: not counted again
    shell.run_line_magic("chat_usage", "-o u")
    assert shell.user_ns["u"][0]["requests"] == 3
    assert shell.user_ns["u"][0]["prompt_tokens"] > 0


# -- keys never reach the row store ------------------------------------------------------

def test_the_key_is_in_no_stored_row_and_changes_no_resume_key(
        shell: Any, endpoint: FakeEndpoint, tmp_path: Any, monkeypatch: Any) -> None:
    path = tmp_path / "nb.rows.jsonl"
    _store_at(shell, path)
    key = "sk-proj-" + "K3y" * 12
    monkeypatch.setenv("OPENAI_API_KEY", key)
    shell.user_ns["xs"] = ["a", "b"]
    _magic(shell, "--each xs -m echo", "say {item}")
    assert endpoint.chat_requests[0].headers["authorization"] == f"Bearer {key}"
    data = path.read_bytes()
    assert len(data.splitlines()) == 2
    assert key.encode() not in data and b"K3yK3y" not in data
    other = "sk-proj-" + "Z9x" * 12
    monkeypatch.setenv("OPENAI_API_KEY", other)
    _magic(shell, "--each xs -m echo", "say {item}")
    assert len(endpoint.chat_requests) == 2  # another key: the same rows, not sent again


# -- one exchange engine for %%chat and --each ----------------------------------------------

def test_a_tool_call_counts_as_said_and_without_a_finish_reason_is_a_cut() -> None:
    import asyncio

    from chatmagic.core.events import StreamEvent, ToolCallDelta
    from chatmagic.engine.exchange import Watch

    async def stream() -> Any:
        yield ToolCallDelta(0, "call_1", "f", "{}")

    watch, passed = Watch(), []
    asyncio.run(watch.pass_on(stream(), passed.append))
    assert passed == [ToolCallDelta(0, "call_1", "f", "{}")]
    assert watch.said and not watch.cut  # alone: a stream that merely ended early
    watch.overlapped = True  # another request to the endpoint was in flight meanwhile
    assert watch.cut
    _: list[StreamEvent] = passed
