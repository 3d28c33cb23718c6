"""The provider Batch API: ``%%chat --each VAR --batch-api`` and ``%chat_batch``, through the
real SDK to FakeEndpoint's ``/files`` and ``/batches`` (in real kernels, and in a shell)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx2
import openai
import pytest

from chatmagic.testing import FakeEndpoint
from openapi import errors as schema_errors
from wait import until

KEY = "sk-batch-test-0123456789abcdefghij"


# -- in a shell (fast): list, cancel, grids, DataFrames, bad input ---------------------------

@pytest.fixture
def slow(clean_env: Path, monkeypatch: pytest.MonkeyPatch, transport):  # type: ignore[no-untyped-def]
    """A shell with chatmagic loaded, pointed at an endpoint whose batches take 30 s."""
    import chatmagic
    from IPython.testing.globalipapp import get_ipython

    ep = transport.add(FakeEndpoint(batch_seconds=30))
    monkeypatch.setenv("OPENAI_BASE_URL", ep.base_url)
    ip = get_ipython()
    chatmagic._magics = None
    chatmagic.load_ipython_extension(ip)
    yield ip, ep
    chatmagic.unload_ipython_extension(ip)


def test_list_and_cancel(slow, capsys) -> None:  # type: ignore[no-untyped-def]
    shell, endpoint = slow
    shell.user_ns["xs"] = ["a", "b"]
    shell.run_cell_magic("chat", "--each xs --batch-api -m echo -o first", "{item}")
    shell.run_cell_magic("chat", "--each xs --batch-api -m echo", "again {item}")
    first = shell.user_ns["first"]
    capsys.readouterr()
    listed = shell.run_line_magic("chat_batch", "list -o jobs")
    assert listed is None
    jobs = shell.user_ns["jobs"]
    assert [j["job"] for j in jobs][1] == first and len(jobs) == 2  # newest first
    assert {j["status"] for j in jobs} <= {"validating", "in_progress"}
    shell.run_line_magic("chat_batch", f"cancel {first}")
    said = capsys.readouterr().out
    assert "Asked to cancel" in said and first in said
    until(lambda: endpoint.batches.batches[first]["status"] == "cancelled",  # type: ignore
          "the cancel")
    shell.run_line_magic("chat_batch", f"fetch {first} -o t")
    table = shell.user_ns["t"]
    assert table["error"].tolist() == ["not answered: the batch was cancelled first"] * 2
    assert [r.path for r in endpoint.requests if r.path.endswith("/cancel")] == \
        [f"/v1/batches/{first}/cancel"]  # the other job runs on
    shell.run_line_magic("chat_batch", "status")
    assert "in_progress" in capsys.readouterr().out
    with pytest.raises(Exception, match="not finished yet"):
        shell.run_line_magic("chat_batch", "fetch")


def test_a_grid_over_a_dataframe_is_one_batch_per_model(shell, endpoint: FakeEndpoint,
                                                        capsys) -> None:  # type: ignore[no-untyped-def]
    import pandas as pd

    shell.user_ns["df"] = pd.DataFrame({"name": ["Ann", "Bo"], "city": ["Oslo", "Rome"]},
                                       index=["r1", "r2"])
    shell.run_cell_magic("chat", "--each df --batch-api --compare echo,length",
                         "{name} lives in {city}")
    assert "2 batches: echo, length" in capsys.readouterr().out
    assert [b["model"] for b in endpoint.batch_lines] in (
        ["echo", "echo", "length", "length"], ["length", "length", "echo", "echo"])
    until(lambda: all(b["status"] == "completed"
                      for b in endpoint.batches.batches.values()),  # type: ignore[union-attr]
          "the batches' end")
    shell.run_line_magic("chat_batch", "fetch -o t")
    t = shell.user_ns["t"]
    assert t["index"].tolist() == ["r1", "r1", "r2", "r2"]  # element × model, input order
    assert t["model"].tolist() == ["echo", "length"] * 2
    assert t["text"].tolist()[:2] == ["Ann lives in Oslo", "Ann lives in Oslo"]
    assert t["finish_reason"].tolist() == ["stop", "length"] * 2
    assert endpoint.chat_requests == []


@pytest.mark.parametrize("line, ns, said", [
    ("--batch-api -m echo", {}, "--batch-api sends the rows of --each VAR"),
    ("--each nowhere --batch-api -m echo", {}, "--each nowhere: no variable named nowhere"),
    ("--each xs --batch-api -m echo", {"xs": []}, "--each xs: xs is empty; nothing was sent"),
    ("--each xs --batch-api -m echo", {"xs": "text"}, "xs is text, not a collection"),
    ("--each xs --batch-api -m echo", {"xs": 3}, "xs is of type int, which holds no elements"),
    ("--each xs --batch-api -m echo", {"xs": [1]}, "the prompt's {colour} is in no row of xs"),
])
def test_bad_input_is_one_message_and_nothing_sent(shell, endpoint: FakeEndpoint, line: str,
                                                   ns: dict, said: str) -> None:  # type: ignore[no-untyped-def]
    from IPython.core.error import UsageError

    shell.user_ns.update(ns)
    with pytest.raises(UsageError, match=__import__("re").escape(said)):
        shell.run_cell_magic("chat", line, "{item} in {colour}" if "colour" in said else "{item}")
    assert endpoint.requests == []


def test_no_job_yet_and_an_unknown_id(shell, endpoint: FakeEndpoint) -> None:  # type: ignore[no-untyped-def]
    from IPython.core.error import UsageError

    with pytest.raises(UsageError, match="no batch job in this notebook yet"):
        shell.run_line_magic("chat_batch", "status")
    with pytest.raises(UsageError, match="no batch job 'batch_x'"):
        shell.run_line_magic("chat_batch", "fetch batch_x")
    with pytest.raises(UsageError, match="not a subcommand"):
        shell.run_line_magic("chat_batch", "delete")
    assert endpoint.requests == []


# -- the fake endpoint's Batch API itself, against OpenAI's published shapes ----------------

def test_fake_batch_api_answers_in_openai_shapes(endpoint: FakeEndpoint,
                                                 transport: httpx2.BaseTransport) -> None:
    client = openai.OpenAI(base_url=endpoint.base_url, api_key="x",
                           http_client=httpx2.Client(transport=transport))
    line = {"custom_id": "a", "method": "POST", "url": "/v1/chat/completions",
            "body": {"model": "echo", "messages": [{"role": "user", "content": "hi"}]}}
    upload = client.files.with_raw_response.create(
        file=("in.jsonl", json.dumps(line).encode()), purpose="batch")
    assert not schema_errors(upload.http_response.json(), "OpenAIFile")
    created = client.batches.with_raw_response.create(
        input_file_id=upload.parse().id, endpoint="/v1/chat/completions", completion_window="24h")
    assert not schema_errors(created.http_response.json(), "Batch")
    batch = created.parse()
    for _ in range(100):
        batch = client.batches.retrieve(batch.id)
        if batch.status == "completed":
            break
        time.sleep(0.02)
    listed = client.batches.with_raw_response.list()
    assert not schema_errors(listed.http_response.json(), "ListBatchesResponse")
    out = json.loads(client.files.content(batch.output_file_id or "").text)
    assert out["custom_id"] == "a" and out["response"]["status_code"] == 200
    assert not schema_errors(out["response"]["body"], "CreateChatCompletionResponse")
    mixed = [line, {**line, "custom_id": "b", "body": {**line["body"], "model": "markdown"}}]
    upload2 = client.files.create(file=("in.jsonl", "\n".join(map(json.dumps, mixed)).encode()),
                                  purpose="batch")
    failed = client.batches.create(input_file_id=upload2.id, endpoint="/v1/chat/completions",
                                   completion_window="24h")
    for _ in range(100):
        failed = client.batches.retrieve(failed.id)
        if failed.status == "failed":
            break
        time.sleep(0.02)
    assert failed.status == "failed" and failed.errors and failed.errors.data
    assert failed.errors.data[0].code == "mismatched_model"


# -- the same table as --each -------------------------------------------------------------------

def _completed(endpoint: FakeEndpoint) -> None:
    until(lambda: all(b["status"] in ("completed", "failed")
                      for b in endpoint.batches.batches.values()),  # type: ignore[union-attr]
          "the batches' end")


@pytest.mark.parametrize("options, cell, compared", [
    ("--compare echo,length -s 'Short.'", "Say {item}",
     ["index", "model", "text", "finish_reason", "prompt_tokens", "completion_tokens"]),
    ("--compare schema,schema/shape=wrong --schema 'name, age int'", "Person {item}, age {index}",
     ["index", "model", "name", "age"]),
])
def test_fetch_gives_the_table_each_gives(shell, endpoint: FakeEndpoint, options: str, cell: str,
                                          compared: list[str]) -> None:  # type: ignore[no-untyped-def]
    shell.user_ns["people"] = ["ann", "bob", "cy"]
    shell.run_cell_magic("chat", f"--each people {options} -o direct", cell)
    shell.run_cell_magic("chat", f"--each people {options} --batch-api --fresh", cell)
    _completed(endpoint)
    shell.run_line_magic("chat_batch", "fetch -o batched")
    direct, batched = shell.user_ns["direct"], shell.user_ns["batched"]
    assert list(batched.columns) == list(direct.columns)
    assert batched[compared].astype(str).values.tolist() == \
        direct[compared].astype(str).values.tolist()
    assert batched["error"].isna().tolist() == direct["error"].isna().tolist()
    if "schema" in options:  # the wrong shape's rows fail alike, naming the problem
        assert batched["error"].dropna().str.contains("does not match the schema").all()
        assert len(batched["error"].dropna()) == 3
    # The batch's bodies are --each's, unstreamed.
    streamed = [{k: v for k, v in r.body.items() if k not in ("stream", "stream_options")}
                for r in endpoint.chat_requests]
    assert sorted(map(json.dumps, endpoint.batch_lines)) == sorted(map(json.dumps, streamed))


def test_a_job_whose_profile_moved_is_refused_and_nothing_sent(shell, endpoint: FakeEndpoint
                                                               ) -> None:  # type: ignore[no-untyped-def]
    from IPython.core.error import UsageError

    import chatmagic

    shell.user_ns["xs"] = ["a"]
    shell.run_cell_magic("chat", "--each xs --batch-api -m echo", "{item}")
    profiles = chatmagic._magics.session.profiles
    profiles.update(profiles.default, base_url="http://127.0.0.1:9/v1")
    before = len(endpoint.requests)
    with pytest.raises(UsageError, match="was sent to .* but profile .* now points at "
                                         "http://127.0.0.1:9/v1: point it back"):
        shell.run_line_magic("chat_batch", "status")
    assert len(endpoint.requests) == before
    # list keeps its table narrow: the status says unknown, the reason goes under the table
    shell.run_line_magic("chat_batch", "list -o jobs")
    (job,) = shell.user_ns["jobs"]
    assert job["status"] == "unknown (see below)" and job["answered"] == ""


def test_the_batch_routes_want_the_key(clean_env: Path, transport: httpx2.BaseTransport) -> None:
    endpoint = transport.add(FakeEndpoint(api_key="sk-right-key-000000000000"))
    client = openai.OpenAI(base_url=endpoint.base_url, api_key="sk-wrong-key-0000000000000",
                           http_client=httpx2.Client(transport=transport))
    with pytest.raises(openai.AuthenticationError):
        client.files.create(file=("in.jsonl", b"{}\n"), purpose="batch")
    with pytest.raises(openai.AuthenticationError):
        client.batches.list()
    assert endpoint.batches.files == {}  # type: ignore[union-attr]


def test_keys_are_kept_as_plain_values() -> None:
    import numpy as np
    import pandas as pd

    from chatmagic.each.batch_files import plain_key

    assert [plain_key(k) for k in (np.int64(3), 2, "a", None, 1.5)] == [3, 2, "a", None, 1.5]
    assert type(plain_key(np.int64(3))) is int
    assert plain_key(pd.Timestamp("2026-01-02")) == "2026-01-02 00:00:00"


def test_fetched_rows_are_finished_rows_for_each(shell, endpoint: FakeEndpoint) -> None:  # type: ignore[no-untyped-def]
    shell.user_ns["people"] = ["ann", "bob"]
    shell.run_cell_magic("chat", "--each people -m echo --batch-api", "Hi {item}")
    _completed(endpoint)
    shell.run_line_magic("chat_batch", "fetch -o batched")
    shell.run_cell_magic("chat", "--each people -m echo -o direct", "Hi {item}")
    assert endpoint.chat_requests == []  # every row came from the batch
    assert shell.user_ns["direct"]["text"].tolist() == ["Hi ann", "Hi bob"]


def test_max_cost_refuses_a_batch_before_anything_is_sent(shell, endpoint: FakeEndpoint,
                                                          capsys) -> None:  # type: ignore[no-untyped-def]
    from IPython.core.error import UsageError

    from chatmagic.core.pricing import PriceBook

    magics = shell.magics_manager.registry["ChatMagics"]
    magics.session.profiles.prices = PriceBook.from_toml(
        {"prices": {"echo": {"input": 1000, "output": 1000}}}, None)
    shell.user_ns["ys"] = [f"row {i}" for i in range(50)]
    shell.run_line_magic("chat_config", "set max_cost=0.01")
    with pytest.raises(UsageError, match=r"Not sent: this run is estimated at .* for 50 "
                                         r"requests"):
        shell.run_cell_magic("chat", "--each ys -m echo --max-tokens 100 --batch-api", "{item}")
    assert endpoint.requests == []
    shell.run_line_magic("chat_config", "set max_cost=0")
    shell.run_cell_magic("chat", "--each ys -m echo --max-tokens 100 --batch-api", "{item}")
    assert "Estimate at the usual prices: ~" in capsys.readouterr().out


def test_with_persist_off_jobs_are_kept_for_the_session(shell, endpoint: FakeEndpoint,
                                                         clean_env: Path) -> None:  # type: ignore[no-untyped-def]
    shell.run_line_magic("chat_config", "set persist=off")
    shell.user_ns["xs"] = ["a", "b"]
    shell.run_cell_magic("chat", "--each xs --batch-api -m echo -o job", "{item}")
    _completed(endpoint)
    shell.run_line_magic("chat_batch", "list -o jobs")
    assert [j["job"] for j in shell.user_ns["jobs"]] == [shell.user_ns["job"]]
    shell.run_line_magic("chat_batch", "fetch -o t")
    assert shell.user_ns["t"]["text"].tolist() == ["a", "b"]
    assert not list(clean_env.rglob("*.batches.jsonl"))  # nothing on disk


def test_with_persist_off_each_session_keeps_its_own_jobs(clean_env: Path) -> None:
    from chatmagic.engine.session import Session
    from chatmagic.shell.cmd.batch import store_for
    from chatmagic.store.batch_store import BatchJob

    one, two = Session(environ={}), Session(environ={})
    store_for(one, None, persist=False).add(BatchJob("batch_1", 0.0, [], []))
    assert store_for(one, None, persist=False).find("batch_1") is not None
    assert store_for(two, None, persist=False).jobs == {}
    assert not list(clean_env.rglob("*.batches.jsonl"))


def test_rows_past_one_batchs_limits_go_as_several_batches(endpoint: FakeEndpoint,
                                                           clean_env: Path) -> None:
    from chatmagic.each import batch as batch_api
    from chatmagic.store.batch_store import BatchStore
    from chatmagic.each.plan import plan_each
    from chatmagic.core.options import ChatOptions
    from chatmagic.engine.session import Session

    session = Session(environ={"OPENAI_BASE_URL": endpoint.base_url, "OPENAI_API_KEY": KEY})
    options = ChatOptions(prompt="Say {item}", compare=["echo", "length"], no_stream=True,
                          each="xs")
    plan = plan_each(options, [f"w{i}" for i in range(5)], session.profiles, {},
                     environ=session.clients.environ)
    store = BatchStore(clean_env / "jobs.jsonl")
    job = batch_api.submit(session, store, plan.jobs, max_lines=2)
    assert [(p.label, p.first) for p in job.parts] == \
        [("echo", 0), ("echo", 2), ("echo", 4), ("length", 0), ("length", 2), ("length", 4)]
    _completed(endpoint)
    batch_api.cancel(session, store, job)  # all finished: nothing to cancel, nothing sent
    assert not [r for r in endpoint.requests if r.path.endswith("/cancel")]
    table, now = batch_api.fetch(session, BatchStore(store.path), job, use_pandas=False)
    assert now.status == "completed" and now.count("completed") == 10
    assert [(r["index"], r["model"], r["text"]) for r in table][:4] == \
        [(0, "echo", "Say w0"), (0, "length", "Say w0"), (1, "echo", "Say w1"),
         (1, "length", "Say w1")]
    assert [r["index"] for r in table] == [i for i in range(5) for _ in range(2)]
    # A byte limit splits too (a line alone may pass it: it is sent on its own).
    assert len(batch_api.submit(session, store, plan.jobs[:2], max_bytes=10).parts) == 2
