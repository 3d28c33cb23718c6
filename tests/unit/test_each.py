"""One prompt over many inputs: %%chat --each, chatmagic.map, the scheduler and the row store.

Kernel tests run cells in a real kernel (the awaited path a notebook takes); shell tests
use a real IPython shell (the blocking path). Every request goes over HTTP to FakeEndpoint.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from IPython.core.error import UsageError

from chatmagic.testing import FakeEndpoint


def _prompts(endpoint: FakeEndpoint) -> list[str]:
    return [r.body["messages"][-1]["content"] for r in endpoint.chat_requests]


# -- kernel tests (the awaited path) ---------------------------------------------------


# -- shell tests (the blocking path, bad input) -------------------------------------------

def _magic(shell: Any, line: str, cell: str) -> None:
    shell.run_cell_magic("chat", line, cell)


@pytest.mark.parametrize("setup, line, cell, says", [
    ({}, "--each nothing -m echo", "{item}", "no variable named nothing"),
    ({"n": 5}, "--each n -m echo", "{item}", "n is of type int, which holds no elements"),
    ({"s": "text"}, "--each s -m echo", "{item}", "s is text, not a collection"),
    ({"xs": []}, "--each xs -m echo", "{item}", "xs is empty; nothing was sent"),
    ({"xs": [1, 2]}, "--each xs -m echo", "{itme}", "the prompt's {itme} is in no row of xs"),
    ({"xs": [1]}, "--each xs -m echo --concurrency 0", "{item}",
     "--concurrency must be at least 1, not 0"),
    ({"xs": [1]}, "-m echo --concurrency 4", "{item}", "--concurrency goes with --each"),
    ({"xs": [1]}, "--each xs -m echo -n 2", "{item}", "-n > 1 and --each cannot be combined"),
])
def test_bad_input_is_one_message_and_nothing_sent(shell: Any, endpoint: FakeEndpoint,
                                                   setup: dict, line: str, cell: str,
                                                   says: str) -> None:
    shell.user_ns.update(setup)
    with pytest.raises(UsageError) as caught:
        _magic(shell, line, cell)
    assert says in str(caught.value)
    assert endpoint.chat_requests == []


def test_dataframe_column_missing_names_the_columns(shell: Any, endpoint: FakeEndpoint) -> None:
    import pandas as pd

    shell.user_ns["df"] = pd.DataFrame({"review": ["x"], "stars": [1]})
    with pytest.raises(UsageError, match=r"\{rating\} is in no row of df .* offers "
                                         r"\{review\}, \{stars\}"):
        _magic(shell, "--each df -m echo", "{review} {rating}")
    assert endpoint.chat_requests == []


def test_notebook_variables_fill_fields_rows_do_not_have(shell: Any,
                                                         endpoint: FakeEndpoint) -> None:
    shell.user_ns.update(xs=("a", "b"), task="Translate")
    _magic(shell, "--each xs -m echo -o t", "{task}: {item} #{index}")
    assert sorted(_prompts(endpoint)) == ["Translate: a #0", "Translate: b #1"]
    assert [r["text"] for r in shell.user_ns["t"].to_dict("records")] == ["Translate: a #0",
                                                                         "Translate: b #1"]


def test_terminal_draws_one_line_and_a_summary(shell: Any, endpoint: FakeEndpoint,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    shell.user_ns["xs"] = list(range(5))
    _magic(shell, "--each xs -m echo/first=0.3", "{item}")
    out = capsys.readouterr().out
    assert "\r" in out and "/5 rows" in out
    assert "5 of 5 rows answered" in out and "index | model | text" in out


@pytest.mark.paced  # the rows' requests overlap
def test_a_profile_lowers_the_concurrency(shell: Any, endpoint: FakeEndpoint) -> None:
    from chatmagic.core.profiles import Profile

    magics = shell.magics_manager.registry["ChatMagics"]
    magics.session.profiles.set(Profile("small", endpoint.base_url, needs_key=False,
                                        concurrency=2))
    shell.user_ns["xs"] = list(range(8))
    _magic(shell, "--each xs -p small -m echo/first=0.1 --concurrency 8", "{item}")
    assert endpoint.max_in_flight == 2


@pytest.mark.paced  # the streams overlap, so one-at-a-time cuts one
def test_a_cut_stream_is_redone_one_at_a_time(shell: Any, endpoint: FakeEndpoint) -> None:
    import chatmagic

    shell.user_ns["xs"] = ["a b c d", "e f g h", "i j k l"]
    _magic(shell, "--each xs -m one-at-a-time/delay=0.05 -o t", "{item}")
    table = shell.user_ns["t"]
    assert table["error"].isna().all()
    assert table["text"].tolist() == ["a b c d", "e f g h", "i j k l"]
    assert chatmagic._magics.session.knowledge.serial == {endpoint.base_url}


def test_usage_counts_the_rows(shell: Any, endpoint: FakeEndpoint) -> None:
    shell.user_ns["xs"] = [1, 2, 3]
    _magic(shell, "--each xs -m echo", "{item}")
    shell.run_line_magic("chat_usage", "-o u")
    assert shell.user_ns["u"][0]["requests"] == 3


# -- the Python API --------------------------------------------------------------------

def test_map_returns_the_same_table(endpoint: FakeEndpoint, clean_env: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    import chatmagic

    monkeypatch.setenv("OPENAI_BASE_URL", endpoint.base_url)
    monkeypatch.setattr("chatmagic.engine.session._current", None)
    monkeypatch.setattr(chatmagic, "_magics", None)
    table = chatmagic.map("Say {item}", ["x", "y"], models=["echo", "echo/delay=0.001"],
                          concurrency=3, temperature=0.2)
    assert table[["index", "model", "text"]].values.tolist() == [
        [0, "echo", "Say x"], [0, "echo/delay=0.001", "Say x"],
        [1, "echo", "Say y"], [1, "echo/delay=0.001", "Say y"]]
    assert all(r.body["temperature"] == 0.2 for r in endpoint.chat_requests)
    again = chatmagic.map("Say {item}", ["x", "y"], models=["echo", "echo/delay=0.001"],
                          temperature=0.2)
    assert len(endpoint.chat_requests) == 4 and len(again) == 4  # kept rows: none sent
    with pytest.raises(chatmagic.OptionError, match="map\\(\\): items is empty"):
        chatmagic.map("{item}", [], model="echo")
    with pytest.raises(chatmagic.OptionError, match="unknown keyword"):
        chatmagic.map("{item}", [1], model="echo", tempreature=1)


def test_map_without_pandas_gives_dicts(endpoint: FakeEndpoint, clean_env: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import chatmagic
    from chatmagic.core import table

    monkeypatch.setenv("OPENAI_BASE_URL", endpoint.base_url)
    monkeypatch.setattr("chatmagic.engine.session._current", None)
    monkeypatch.setattr(chatmagic, "_magics", None)
    monkeypatch.setattr(table, "have_pandas", lambda: False)
    rows = chatmagic.map("{item}", {"k": "v"}, model="echo")
    assert rows == [{"key": "k", "model": "echo", "text": "v", "finish_reason": "stop",
                     "prompt_tokens": rows[0]["prompt_tokens"],
                     "completion_tokens": rows[0]["completion_tokens"], "cost": None,
                     "seconds": rows[0]["seconds"], "error": None}]
    assert rows[0]["prompt_tokens"] > 0 and rows[0]["seconds"] > 0


def test_planned_requests_lists_what_a_run_would_send(endpoint: FakeEndpoint) -> None:
    from chatmagic.each.plan import plan_each, planned_requests
    from chatmagic.core.options import ChatOptions
    from chatmagic.core.profiles import Profile, Profiles
    from chatmagic.store.rowstore import RowStore
    from chatmagic.core.table import Row

    profiles = Profiles.load({})
    profiles.set(Profile("ep", endpoint.base_url, needs_key=False, model="echo"))
    options = ChatOptions(prompt="{item}", profile="ep", each="xs")
    plan = plan_each(options, ["a", "b", "c"], profiles)
    store = RowStore()
    store.put(plan.jobs[1].digest, Row(1, "echo", "b"))
    assert [j.request.messages[-1]["content"] for j in planned_requests(plan, store)] == \
        ["a", "c"]
    assert endpoint.chat_requests == []


def test_the_request_digest_ignores_transport_and_never_holds_a_key() -> None:
    from chatmagic.store.rowstore import request_digest

    body = {"model": "m", "messages": [{"role": "user", "content": "x"}]}
    same = request_digest("http://h/v1", {**body, "stream": True, "timeout": 5})
    assert same == request_digest("http://h/v1/", body)
    assert same != request_digest("http://other/v1", body)
    assert same != request_digest("http://h/v1", {**body, "temperature": 0.1})
    # The key is never part of it: see test_each_review's store-file check.


def test_schema_fields_become_columns(shell: Any, endpoint: FakeEndpoint) -> None:
    shell.user_ns["people"] = ["ann", "bob"]
    _magic(shell, "--each people --compare schema,schema/shape=wrong --schema 'name, age int' "
           "-o t", "Person {item}, age {index}")
    table = shell.user_ns["t"]
    assert list(table.columns)[:4] == ["index", "model", "name", "age"]
    assert list(table.columns)[4] == "text"  # only a reply that did not fit has its text
    good = table[table["model"] == "schema"]
    assert good["age"].tolist() == [0, 1] and good["error"].isna().all()
    assert good["text"].isna().all()
    bad = table[table["model"] == "schema/shape=wrong"]
    assert bad["error"].str.contains("does not match the schema").all()
    assert bad["text"].notna().all()
    assert all(r.body["response_format"]["type"] == "json_schema"
               for r in endpoint.chat_requests)
    # Every reply was kept (paid for) and is read again the same way: none asked again.
    _magic(shell, "--each people --compare schema,schema/shape=wrong --schema 'name, age int' "
           "-o t", "Person {item}, age {index}")
    assert len(endpoint.chat_requests) == 4
    assert shell.user_ns["t"]["error"].tolist() == table["error"].tolist()
    assert shell.user_ns["t"][["name", "age"]].values.tolist()[0] == \
        table[["name", "age"]].values.tolist()[0]


def test_an_endpoint_never_reached_is_not_asked_again_per_row(
        shell: Any, endpoint: FakeEndpoint, closed_port: int, transport: Any) -> None:
    from chatmagic.core.profiles import Profile

    magics = shell.magics_manager.registry["ChatMagics"]
    magics.session.profiles.set(Profile("down", f"http://127.0.0.1:{closed_port}/v1",
                                        needs_key=False, model="echo"))
    shell.user_ns["xs"] = list(range(20))
    with pytest.raises(Exception, match="every row failed.*Cannot reach"):
        _magic(shell, "--each xs -p down -o t", "{item}")
    # one try a row: a connection refused is not retried (nor waited for) row after row
    assert transport.refused == [f"127.0.0.1:{closed_port}"] * 20
    assert len(shell.user_ns["t"]) == 20


def test_cost_column_usage_and_the_budget_guard(shell: Any, endpoint: FakeEndpoint,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    shell.user_ns["xs"] = ["a", "b", "c"]
    _magic(shell, "--each xs -m priced/cost=0.25 -o t", "{item}")
    assert shell.user_ns["t"]["cost"].tolist() == [0.25, 0.25, 0.25]
    assert "cost 0.75 USD" in capsys.readouterr().out
    shell.run_line_magic("chat_usage", "-o u")
    assert shell.user_ns["u"][0]["requests"] == 3
    assert shell.user_ns["u"][0]["cost_USD"] == pytest.approx(0.75)
    # max_cost counts the rows still to send, estimated before anything is sent.
    from chatmagic.core.pricing import PriceBook

    magics = shell.magics_manager.registry["ChatMagics"]
    magics.session.profiles.prices = PriceBook.from_toml(
        {"prices": {"echo": {"input": 1000, "output": 1000}}}, None)
    shell.run_line_magic("chat_config", "set max_cost=0.01")
    shell.user_ns["ys"] = [f"row {i}" for i in range(50)]
    before = len(endpoint.chat_requests)
    with pytest.raises(UsageError, match=r"Not sent: this run is estimated at .* for 50 "
                                         r"requests"):
        _magic(shell, "--each ys -m echo --max-tokens 100", "{item}")
    assert len(endpoint.chat_requests) == before


def test_usage_says_estimated_for_an_endpoint_reporting_none(shell: Any,
                                                             endpoint: FakeEndpoint) -> None:
    shell.user_ns["xs"] = ["one two", "three four"]
    _magic(shell, "--each xs -m no-usage", "{item}")
    _magic(shell, "--each xs -m echo", "{item}")
    shell.run_line_magic("chat_usage", "--by model -o u")
    by_model = {row["model"]: row for row in shell.user_ns["u"]}
    assert by_model["no-usage"]["estimated"] and by_model["no-usage"]["completion_tokens"] > 0
    assert not by_model["echo"]["estimated"]


def test_a_dataframe_column_named_item_is_that_column(shell: Any, endpoint: FakeEndpoint) -> None:
    import pandas as pd

    shell.user_ns["df"] = pd.DataFrame({"item": ["pen", "cup"], "price": [2, 3]},
                                       index=["a", "b"])
    _magic(shell, "--each df -m echo", "{item} costs {price} (row {index})")
    assert sorted(_prompts(endpoint)) == ["cup costs 3 (row b)", "pen costs 2 (row a)"]


def test_a_schema_field_named_like_a_column_is_refused(shell: Any, endpoint: FakeEndpoint) -> None:
    shell.user_ns["xs"] = ["a"]
    with pytest.raises(UsageError, match="the schema's field 'error' is also a column"):
        _magic(shell, "--each xs -m schema --schema 'label, error'", "{item}")
    assert endpoint.chat_requests == []


@pytest.mark.paced
def test_blocking_run_interrupted_keeps_finished_rows_and_connections(
        shell: Any, endpoint: FakeEndpoint) -> None:
    # The blocking path (a terminal, a %%chat inside a larger cell): its requests run on the
    # portal's long-lived loop; a KeyboardInterrupt in this thread ends the run, keeping the
    # rows that finished; the next run sends only the rest.
    import _thread

    def interrupt_at_the_fourth_request() -> None:
        # At concurrency 2 the fourth request starts once two rows have finished.
        for _ in range(1000):
            if len(endpoint.chat_requests) >= 4:
                break
            time.sleep(0.01)
        _thread.interrupt_main()

    shell.user_ns["xs"] = list(range(12))
    watcher = threading.Thread(target=interrupt_at_the_fourth_request, daemon=True)
    watcher.start()
    with pytest.raises(KeyboardInterrupt):
        _magic(shell, "--each xs -m echo/first=0.2 --concurrency 2 -o t", "number {item}")
    watcher.join()
    kept = len(shell.user_ns["t"])
    assert 2 <= kept < 12
    sent = len(endpoint.chat_requests)
    _magic(shell, "--each xs -m echo/first=0.2 --concurrency 4 -o t", "number {item}")
    assert len(shell.user_ns["t"]) == 12
    assert len(endpoint.chat_requests) - sent == 12 - kept


def test_map_refuses_n_above_one_before_sending(endpoint: FakeEndpoint, clean_env: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    # One reply per row: n=3 would pay for three and keep one (the magic refuses -n 2 too).
    import chatmagic
    from chatmagic.core.errors import OptionError

    monkeypatch.setenv("OPENAI_BASE_URL", endpoint.base_url)
    monkeypatch.setattr("chatmagic.engine.session._current", None)
    monkeypatch.setattr(chatmagic, "_magics", None)
    with pytest.raises(OptionError, match="n above 1 cannot be combined with each"):
        chatmagic.map("{item}", ["a"], models="echo", n=3)
    assert endpoint.chat_requests == []
