"""The Batch API in a real kernel: jobs sent, listed, fetched, kept across a restart; endpoints
without it."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from chatmagic.testing import FakeEndpoint
from kernel import errors, outputs, run_cells, visible
from openapi import errors as schema_errors


KEY = "sk-batch-test-0123456789abcdefghij"


def _env(endpoint: FakeEndpoint, notebook: Path) -> dict[str, str]:
    return {"OPENAI_BASE_URL": endpoint.base_url, "OPENAI_API_KEY": KEY,
            "JPY_SESSION_NAME": str(notebook)}


def _text(cell: object) -> str:
    return visible("".join(outputs(cell))) + "".join(outputs(cell, "text/plain"))


def _valid_lines(endpoint: FakeEndpoint) -> None:
    for body in endpoint.batch_lines:
        assert not schema_errors(body), schema_errors(body)
        assert "stream" not in body and "stream_options" not in body


@pytest.mark.kernel
def test_batch_api_then_status_and_fetch_give_the_table(clean_env: Path) -> None:
    with FakeEndpoint(batch_seconds=3) as endpoint:  # in progress for the status cell
        nb = run_cells(["%load_ext chatmagic",
                        "reviews = ['great', 'awful', 'fine']",
                        "%%chat --each reviews --batch-api -m echo -s 'Be brief.'\n"
                        "Classify: {item}",
                        "%chat_batch status",
                        "import time; time.sleep(3.5)",
                        "%chat_batch fetch -o table",
                        "import json; print(json.dumps(table[['index', 'model', 'text', "
                        "'finish_reason', 'prompt_tokens', 'error']].to_dict('records')))"],
                       env=_env(endpoint, clean_env / "a.ipynb"), allow_errors=False)
        sent, status, fetched, printed = nb.cells[2], nb.cells[3], nb.cells[5], nb.cells[6]
        job = endpoint.batches.batches  # type: ignore[union-attr]
        (batch_id,) = job
        said = _text(sent)
        assert f"job {batch_id}" in said and "%chat_batch status" in said
        assert "in_progress" in _text(status) or "validating" in _text(status)
        assert "3 rows, 0 with an error" in _text(fetched) and "Classify: great" in _text(fetched)
        rows = json.loads("".join(outputs(printed, "text/plain")))
        assert [r["text"] for r in rows] == ["Classify: great", "Classify: awful", "Classify: fine"]
        assert [r["index"] for r in rows] == [0, 1, 2]
        assert {r["model"] for r in rows} == {"echo"} and rows[0]["finish_reason"] == "stop"
        assert rows[0]["prompt_tokens"] > 0 and all(r["error"] is None for r in rows)
    # One request per element with only the system message: no history, not streamed.
    assert [b["messages"][0] for b in endpoint.batch_lines] == \
        [{"role": "system", "content": "Be brief."}] * 3
    assert all(len(b["messages"]) == 2 for b in endpoint.batch_lines)
    _valid_lines(endpoint)
    assert endpoint.chat_requests == []  # nothing outside the batch


@pytest.mark.kernel
def test_jobs_survive_a_kernel_restart_and_a_failed_line_shows_in_error(clean_env: Path) -> None:
    with FakeEndpoint(batch_failures={1}) as endpoint:
        env = _env(endpoint, clean_env / "a.ipynb")
        first = run_cells(["%load_ext chatmagic", "rows = {'x': 'one', 'y': 'two', 'z': 'three'}",
                           "%%chat --each rows --batch-api -m echo\n{key} is {item}"],
                          env=env, allow_errors=False)
        assert not errors(first.cells[2])
        second = run_cells(["%load_ext chatmagic", "%chat_batch list",
                            "%chat_batch fetch -o t",
                            "print(t['key'].tolist()); print(t['text'].tolist()); "
                            "print(t['error'].tolist())"],
                           env=env, allow_errors=False)
        other = run_cells(["%load_ext chatmagic", "%chat_batch list"],
                          env={**env, "JPY_SESSION_NAME": str(clean_env / "b.ipynb")},
                          allow_errors=False)
    (batch_id,) = endpoint.batches.batches  # type: ignore[union-attr]
    assert batch_id in _text(second.cells[1]) and "completed" in _text(second.cells[1])
    assert "3 rows, 1 with an error" in _text(second.cells[2])
    printed = "".join(outputs(second.cells[3], "text/plain")).splitlines()
    assert printed[0] == "['x', 'y', 'z']"
    assert printed[1].startswith("['x is one', nan, 'z is three']")
    assert "HTTP 500: The server had an error" in printed[2] and printed[2].startswith("[nan,")
    assert "No batch jobs in this notebook yet" in _text(other.cells[1])  # per notebook
    # The store is the owner's alone and holds no key and no prompt.
    (store,) = (clean_env / "history").glob("a-*.batches.jsonl")
    assert stat.S_IMODE(store.stat().st_mode) == 0o600
    assert KEY not in store.read_text() and "is one" not in store.read_text()


@pytest.mark.kernel
def test_an_endpoint_without_the_batch_api_is_one_message_and_nothing_else(
        clean_env: Path) -> None:
    with FakeEndpoint(batch_api=False) as endpoint:
        nb = run_cells(["%load_ext chatmagic", "items = [1, 2]",
                        "%%chat --each items --batch-api -m echo\nTwice {item}",
                        "%chat_batch list"],
                       env=_env(endpoint, clean_env / "a.ipynb"))
        base_url = endpoint.base_url
    said = "".join(o.get("text", "") for o in nb.cells[2].outputs)
    assert said == (f"UsageError: env ({base_url}) does not serve the Batch API "
                    "(POST /files answered 404); use --each without --batch-api.\n")
    assert [(r.method, r.path) for r in endpoint.requests] == [("POST", "/v1/files")]
    assert "No batch jobs" in _text(nb.cells[3])


@pytest.mark.kernel
def test_a_server_with_no_batch_api_set_up_says_what_to_do(clean_env: Path) -> None:
    # LiteLLM's proxy without files_settings answers POST /files with HTTP 500: not "try
    # again later" (it never will work), but what will.
    with FakeEndpoint(batch_api="unset") as endpoint:
        nb = run_cells(["%load_ext chatmagic", "items = [1, 2]",
                        "%%chat --each items --batch-api -m echo\nTwice {item}"],
                       env=_env(endpoint, clean_env / "a.ipynb"))
        base_url = endpoint.base_url
    said = "".join(o.get("text", "") for o in nb.cells[2].outputs)
    assert said.startswith(f"UsageError: env ({base_url}) does not serve the Batch API as it "
                           "is set up (POST /files answered 500: files_settings is not set")
    assert "use --each without --batch-api" in said and "try again" not in said
    assert {r.path for r in endpoint.requests} == {"/v1/files"}  # no chat request, no batch
