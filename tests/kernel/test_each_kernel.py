"""--each in a real kernel: rows, grids, retries, interrupts, resuming, the progress widget."""

from __future__ import annotations

import json
import stat
import threading
import time
from pathlib import Path


from chatmagic.testing import FakeEndpoint
from kernel import Kernel, outputs, run_cells, visible


WIDGET = "application/vnd.jupyter.widget-view+json"


def _env(endpoint: FakeEndpoint, clean_env: Path, **more: str) -> dict[str, str]:
    return {"OPENAI_BASE_URL": endpoint.base_url,
            "CHATMAGIC_HISTORY_DIR": str(clean_env / "history"), **more}


def _printed(messages: list[dict]) -> str:
    return "".join(m["content"].get("text", "") for m in messages if m["msg_type"] == "stream")


def _prompts(endpoint: FakeEndpoint) -> list[str]:
    return [r.body["messages"][-1]["content"] for r in endpoint.chat_requests]


def test_twenty_half_second_rows_at_concurrency_ten_take_two_waves(
        endpoint: FakeEndpoint, clean_env: Path) -> None:
    with Kernel(_env(endpoint, clean_env)) as kernel:
        kernel.execute("%load_ext chatmagic\nxs = [f'row {i}' for i in range(20)]")
        reply, messages = kernel.execute("%%chat --each xs -m echo/first=0.5 --concurrency 10 "
                                         "-o t\nSay {item}")
        assert reply["status"] == "ok"
        # Bounded, and used: ten at once, so twenty rows went in two waves (counted by the
        # endpoint, not timed: a busy machine stretches the waves, not their number).
        assert endpoint.max_in_flight == 10 and len(endpoint.chat_requests) == 20
        _, out = kernel.execute("print(len(t), sorted(t['text'])[:2], t['error'].isna().all())")
    assert _printed(out).strip() == "20 ['Say row 0', 'Say row 1'] True"
    summary = visible("".join(m["content"]["data"].get("text/html", "") for m in messages
                              if m["msg_type"] == "display_data"))
    assert "20 of 20 rows answered" in summary and "Say row 0" in summary


def test_a_grid_of_five_by_two_and_dataframe_columns(endpoint: FakeEndpoint,
                                                     clean_env: Path) -> None:
    nb = run_cells(["%load_ext chatmagic",
                    "import pandas as pd\n"
                    "df = pd.DataFrame({'review': ['good', 'bad', 'fine', 'meh', 'great'],\n"
                    "                   'stars': [5, 1, 3, 2, 5]}, index=list('abcde'))",
                    "%%chat --each df --compare echo,echo/delay=0.001 -o grid\n"
                    "Review: {review} ({stars} stars)",
                    "print(grid.shape, list(grid.columns))\n"
                    "print(grid.groupby('model').size().to_dict())\n"
                    "print(grid['index'].tolist())"],
                   env=_env(endpoint, clean_env), allow_errors=False)
    shape, sizes, index = outputs(nb.cells[3], "text/plain")[0].splitlines()
    assert shape == ("(10, 9) ['index', 'model', 'text', 'finish_reason', 'prompt_tokens', "
                     "'completion_tokens', 'cost', 'seconds', 'error']")
    assert sizes == "{'echo': 5, 'echo/delay=0.001': 5}"
    assert index == str([k for k in "abcde" for _ in range(2)])
    assert sorted(set(_prompts(endpoint))) == sorted(
        f"Review: {r} ({s} stars)" for r, s in
        [("good", 5), ("bad", 1), ("fine", 3), ("meh", 2), ("great", 5)])
    # Never the conversation's history: one user message each, no system unless -s.
    assert all(len(r.body["messages"]) == 1 for r in endpoint.chat_requests)


def test_a_failing_row_is_recorded_while_the_others_finish(endpoint: FakeEndpoint,
                                                           clean_env: Path) -> None:
    nb = run_cells(["%load_ext chatmagic", "xs = ['one', 'two poison', 'three', 'four']",
                    "%%chat --each xs -m echo/fail=poison -s 'Be brief.' -o t\n{item}",
                    "print(t['error'].notna().tolist())\nprint(t['text'].fillna('-').tolist())"],
                   env=_env(endpoint, clean_env))
    assert not [o for o in nb.cells[2].outputs if o.get("output_type") == "error"]
    failed, texts = outputs(nb.cells[3], "text/plain")[0].splitlines()
    assert failed == "[False, True, False, False]"
    assert texts == "['one', '-', 'three', 'four']"
    summary = visible("".join(outputs(nb.cells[2])))
    assert "3 of 4 rows answered" in summary and "1 failed" in summary
    assert "HTTP 400" in summary  # the error column, in the preview
    assert endpoint.chat_requests[0].body["messages"][0] == {"role": "system",
                                                            "content": "Be brief."}


def test_the_cell_fails_only_when_every_row_failed(endpoint: FakeEndpoint,
                                                   clean_env: Path) -> None:
    nb = run_cells(["%load_ext chatmagic", "xs = ['a', 'b']",
                    "%%chat --each xs -m unauthorized -o t\n{item}", "print(len(t))"],
                   env=_env(endpoint, clean_env))
    (error,) = [o for o in nb.cells[2].outputs if o.get("output_type") == "error"]
    assert error["ename"] == "EachFailed" and "every row failed" in error["evalue"]
    assert "HTTP 401" in error["evalue"] and len(error["traceback"]) == 1
    assert outputs(nb.cells[3], "text/plain") == ["2\n"]  # the table is there all the same


def test_429s_and_503s_are_retried_and_slow_the_endpoint(endpoint: FakeEndpoint,
                                                         clean_env: Path) -> None:
    nb = run_cells(["%load_ext chatmagic", "xs = list(range(6))",
                    "%%chat --each xs -m echo/busy=2,wait=0.2 -o a\nbusy {item}",
                    "%%chat --each xs -m echo/flaky=1 -o b\nflaky {item}",
                    "print(a['error'].isna().all(), b['error'].isna().all(), "
                    "(a['seconds'] >= 0.4).all())"],
                   env=_env(endpoint, clean_env), allow_errors=False)
    # a row's seconds include its retries: two 429s each asking to wait 0.2 s
    assert outputs(nb.cells[4], "text/plain") == ["True True True\n"]
    prompts = _prompts(endpoint)
    assert all(prompts.count(f"busy {i}") == 3 for i in range(6))  # two 429s, then the reply
    assert all(prompts.count(f"flaky {i}") == 2 for i in range(6))
    summary = visible("".join(outputs(nb.cells[2])))
    assert "12 retried" in summary and "6 of 6 rows answered" in summary


def test_the_same_cell_again_sends_nothing_and_fresh_sends_all(endpoint: FakeEndpoint,
                                                               clean_env: Path) -> None:
    cell = "%%chat --each xs -m echo -o t\nSay {item}"
    nb = run_cells(["%load_ext chatmagic\n%chat_config set notebook=each-test",
                    "xs = {'a': 1, 'b': 2, 'c': 3}", cell, cell, cell.replace("-o t", "-o t --fresh"),
                    "print(t['key'].tolist(), t['text'].tolist())"],
                   env=_env(endpoint, clean_env), allow_errors=False)
    assert len(endpoint.chat_requests) == 6  # 3, then none, then 3 with --fresh
    assert "3 from earlier runs" in visible("".join(outputs(nb.cells[3])))
    assert "from earlier runs" not in visible("".join(outputs(nb.cells[4])))
    assert outputs(nb.cells[5], "text/plain") == ["['a', 'b', 'c'] ['Say 1', 'Say 2', 'Say 3']\n"]
    # On disk next to the history journal, readable by its owner only, and without a key.
    (rows,) = (clean_env / "history").glob("*.rows.jsonl")
    assert stat.S_IMODE(rows.stat().st_mode) == 0o600
    lines = [json.loads(line) for line in rows.read_text().splitlines()]
    assert {line["row"]["text"] for line in lines} == {"Say 1", "Say 2", "Say 3"}


def test_after_an_interrupt_the_next_run_sends_only_the_rest(endpoint: FakeEndpoint,
                                                            clean_env: Path) -> None:
    env = _env(endpoint, clean_env)
    setup = "%load_ext chatmagic\n%chat_config set notebook=interrupted\nxs = list(range(12))"
    cell = "%%chat --each xs -m echo/first=0.3 --concurrency 2 -o t\nnumber {item}"
    with Kernel(env) as kernel:
        kernel.execute(setup)
        # A headless kernel shows nothing while the run goes: interrupt on a timer.
        timer = threading.Timer(1.1, kernel.manager.interrupt_kernel)
        timer.start()
        reply, messages = kernel.execute(cell, timeout=30)
        timer.join()
        assert reply["status"] == "error" and reply["ename"] == "EachInterrupted"
        (shown,) = [m["content"] for m in messages if m["msg_type"] == "error"]
        assert "finished rows are kept" in shown["evalue"] and len(shown["traceback"]) == 1
        _, out = kernel.execute("print(len(t))")
        kept = int(_printed(out))
        assert 2 <= kept < 12
    sent_before = len(endpoint.chat_requests)
    with Kernel(env) as kernel:  # a kernel restart: the rows come from disk
        kernel.execute(setup)
        reply, messages = kernel.execute(cell)
        assert reply["status"] == "ok"
        _, out = kernel.execute("print(len(t), t['error'].isna().all())")
    assert _printed(out).strip() == "12 True"
    again = _prompts(endpoint)[sent_before:]
    assert len(again) == 12 - kept
    assert f"{kept} from earlier runs" in visible(json.dumps([m["content"] for m in messages]))


def test_progress_widget_with_stop_then_static_summary(endpoint: FakeEndpoint,
                                                       clean_env: Path) -> None:
    with Kernel(_env(endpoint, clean_env)) as kernel:
        kernel.execute("%load_ext chatmagic\n%chat_config set widgets=on\n"
                       "xs = list(range(300))")
        start = time.monotonic()
        reply, messages = kernel.execute("%%chat --each xs -m echo/first=0.02 --concurrency 16"
                                         "\nn {item}")
        elapsed = time.monotonic() - start
    assert reply["status"] == "ok"
    opened = [m for m in messages if m["msg_type"] == "comm_open"]
    labels = {m["content"]["data"]["state"].get("_model_name") for m in opened}
    assert {"HTMLModel", "ButtonModel", "HBoxModel"} <= labels
    (button,) = [m for m in opened if m["content"]["data"]["state"].get("_model_name")
                 == "ButtonModel"]
    assert button["content"]["data"]["state"]["description"] == "Stop"
    # Traffic grows with time, not rows: one label update per throttle interval at most.
    updates = [m for m in messages if m["msg_type"] == "comm_msg"
               and m["content"]["data"].get("method") == "update"]
    value_updates = [m for m in updates if "value" in m["content"]["data"].get("state", {})]
    assert len(value_updates) <= elapsed / 0.25 + 2, (len(value_updates), elapsed)
    # At the end the widget's output is static HTML: the summary and the first rows.
    final = [m["content"]["data"] for m in messages if m["msg_type"] == "update_display_data"]
    assert final and WIDGET not in final[-1]
    assert "300 of 300 rows answered" in visible(final[-1]["text/html"])
    assert "… and 295 more rows" in visible(final[-1]["text/html"])


def test_model_output_in_the_preview_is_inert(endpoint: FakeEndpoint, clean_env: Path) -> None:
    nb = run_cells(["%load_ext chatmagic", "xs = ['<script>window.x=1</script>', '<b>hi</b>']",
                    "%%chat --each xs -m echo\n{item}"], env=_env(endpoint, clean_env),
                   allow_errors=False)
    html = "".join(outputs(nb.cells[2]))
    assert "<script>" not in html and "<b>hi" not in html and "&lt;b&gt;hi" in html
