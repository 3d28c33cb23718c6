"""--each against llama-cpp-python's server, directly and through LiteLLM's proxy.

llama-cpp-python ends a running stream when another request arrives (``interrupt_requests``):
a run at ``--concurrency 4`` straight at it sees its streams cut, asks those rows again, and
sends that endpoint one request at a time from then on. Through LiteLLM a cut after some text
looks like a short reply (see test_real_servers.py), so there the profile says
``one_at_a_time`` or the run uses ``--concurrency 1``. Gemma 3 270M's words are not asserted:
that every row has text, a finish reason, tokens and no error is.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from realenv import SAMPLING, assert_no_key
from test_real_servers import _cuts, ok, printed, run, shown

ROWS = "colours = ['red', 'green', 'blue', 'yellow']"
CHECK = ("print(len(t), t['error'].isna().all(), t['text'].str.strip().astype(bool).all(), "
         "set(t['finish_reason']) <= {'stop', 'length'}, (t['completion_tokens'] > 0).all())")


def seen(cell: object) -> str:
    return "\n".join(shown(o.get("data", {})) for o in cell.outputs)  # type: ignore[attr-defined]


@pytest.mark.parametrize("profile, flags", [
    pytest.param("llama", "--concurrency 4", id="llama-cut-then-one-at-a-time"),
    pytest.param("lite_serial", "--concurrency 4", id="litellm-one_at_a_time-profile"),
    pytest.param("lite", "--concurrency 1", id="litellm-concurrency-1"),
])
def test_each_row_is_answered_and_a_second_run_sends_nothing(real: Path, profile: str,
                                                             flags: str) -> None:
    cell = (f"%%chat --each colours -p {profile} {flags} {SAMPLING} --max-tokens 16 -o t\n"
            "Name one thing that is {item}.")
    before = _cuts()
    nb = run(real, [ROWS, cell, CHECK, cell, CHECK])
    ok(nb)
    assert_no_key(nb)
    assert printed(nb.cells[3]).split() == ["4", "True", "True", "True", "True"], \
        printed(nb.cells[3])
    assert "4 of 4 rows answered" in seen(nb.cells[2]), seen(nb.cells[2])
    if profile == "llama":
        assert _cuts() > before, "the server cut no stream: this test proved nothing"
        assert "retried" in seen(nb.cells[2])  # the cut rows were asked again
    elif profile == "lite_serial":
        assert _cuts() == before, "one_at_a_time sent rows together"
    again = seen(nb.cells[4])
    assert "4 from earlier runs" in again, again
    assert printed(nb.cells[5]).split()[0] == "4"


def test_each_with_a_schema_on_llama_gives_its_fields_as_columns(real: Path) -> None:
    # llama-cpp-python refuses json_schema (HTTP 500) and takes json_object with the schema
    # beside it, which it enforces: each row's reply is read into the columns.
    nb = run(real, [ROWS,
                    f'%%chat --each colours -p llama --concurrency 2 {SAMPLING} --max-tokens 40 '
                    '--schema "thing, colour" -o t\nName one thing that is {item}.',
                    "print(list(t.columns)[:4], t['error'].isna().all(), "
                    "t['thing'].map(lambda v: isinstance(v, str)).all())"])
    ok(nb)
    assert printed(nb.cells[3]).split("] ")[0] == "['index', 'model', 'thing', 'colour'", \
        printed(nb.cells[3])
    assert printed(nb.cells[3]).split("] ")[1].split() == ["True", "True"], printed(nb.cells[3])
