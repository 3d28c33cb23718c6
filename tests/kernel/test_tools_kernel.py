"""--tools in a real kernel: consent by input prompt, or a refusal when headless; interrupts;
probes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


from chatmagic.testing import FakeEndpoint
from cells import TOOLS_CELL
from kernel import errors, outputs, run_cells, visible
from openapi import errors as schema_errors


def _tool_messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [m for m in body["messages"] if m["role"] == "tool"]


def test_a_call_runs_once_and_the_answer_uses_its_result(endpoint: FakeEndpoint,
                                                         clean_env: Path) -> None:
    nb = run_cells(["%load_ext chatmagic", TOOLS_CELL,
                    "%%chat -m tools --tools add --yes\nWhat is 2 + 3?",
                    "print(ran)",
                    "%chat_history export -o h\nimport json; print(json.dumps(h))",
                    "%%chat -m echo\nthanks"],
                   env={"OPENAI_BASE_URL": endpoint.base_url}, allow_errors=False)
    assert "".join(outputs(nb.cells[3], "text/plain")).strip() == "[(2, 3)]"  # once
    shown = visible("".join(outputs(nb.cells[2])))
    assert "The tools said: 5" in shown  # the model's answer uses the result
    assert "add" in shown and '"a": 2' in shown and "→ result" in shown  # the call's block
    first, follow_up, after = [r.body for r in endpoint.chat_requests]
    # The schema: typed parameters and the docstring.
    assert first["tools"] == [{"type": "function", "function": {
        "name": "add", "description": "Add two whole numbers.",
        "parameters": {"type": "object", "additionalProperties": False,
                       "required": ["a", "b"],
                       "properties": {"a": {"type": "integer", "description": "The first number."},
                                      "b": {"type": "integer",
                                            "description": "The second number."}}}}}]
    # The follow-up: the assistant's tool_calls, and the tool message with the matching id.
    call = follow_up["messages"][-2]
    assert call["role"] == "assistant" and call["tool_calls"][0]["function"] == {
        "name": "add", "arguments": '{"a": 2, "b": 3}'}
    assert follow_up["messages"][-1] == {"role": "tool", "content": "5",
                                         "tool_call_id": call["tool_calls"][0]["id"]}
    # The history keeps the whole exchange, valid as OpenAI messages; the next turn sends it.
    history = json.loads("".join(outputs(nb.cells[4], "text/plain")))
    assert [m["role"] for m in history] == ["user", "assistant", "tool", "assistant"]
    assert history[-1] == {"role": "assistant", "content": "The tools said: 5"}
    assert not schema_errors({"model": "x", "messages": history})
    # ... with the calls' missing text as "" (llama-cpp-python refuses null).
    assert history[1]["content"] is None
    assert after["messages"][:4] == [history[0], {**history[1], "content": ""}, *history[2:]]


def test_headless_without_yes_runs_nothing(endpoint: FakeEndpoint, clean_env: Path) -> None:
    nb = run_cells(["%load_ext chatmagic", TOOLS_CELL,
                    "%%chat -m tools --tools add -o refused\nWhat is 2 + 3?",
                    "print(ran)",
                    "%chat_history export -o h\nimport json; print(json.dumps(h))",
                    "print(repr(refused))"],
                   env={"OPENAI_BASE_URL": endpoint.base_url})
    assert "".join(outputs(nb.cells[5], "text/plain")).strip() == "None"  # no answer: None
    [error] = errors(nb.cells[2])
    assert error["ename"] == "ToolsRefused" and "Nothing was run: add --yes" in error["evalue"]
    assert "headless" in error["evalue"]
    assert "".join(outputs(nb.cells[3], "text/plain")).strip() == "[]"
    assert len(endpoint.chat_requests) == 1  # the model is not asked again
    history = json.loads("".join(outputs(nb.cells[4], "text/plain")))
    assert [m["role"] for m in history] == ["user", "assistant", "tool"]
    assert history[-1]["content"].startswith("Not run:")
    assert not schema_errors({"model": "x", "messages": history})


def test_exceptions_parallel_calls_and_the_round_limit(endpoint: FakeEndpoint,
                                                       clean_env: Path) -> None:
    nb = run_cells(["%load_ext chatmagic", TOOLS_CELL,
                    "%%chat -m tools --tools boom --yes --no-history\nTry it",
                    "%%chat -m tools-parallel --tools add --yes --no-history\nTwo sums",
                    "print(sorted(ran))",
                    "%%chat -m tools-endless --tools add --yes --max-rounds 3 --no-history "
                    "-o endless\nGo",
                    "print(len(ran), repr(endless))"],
                   env={"OPENAI_BASE_URL": endpoint.base_url})
    bodies = [r.body for r in endpoint.chat_requests]
    # The exception went back to the model as the tool result; the cell did not crash.
    assert not errors(nb.cells[2])
    assert _tool_messages(bodies[1])[0]["content"] == "Error: ValueError: no luck with 2"
    assert "The tools said: Error: ValueError: no luck with 2" in visible(
        "".join(outputs(nb.cells[2])))
    # Two parallel calls, assembled by index from interleaved pieces: both ran.
    assert "".join(outputs(nb.cells[4], "text/plain")).strip() == "[(2, 3), (3, 4)]"
    ids = [c["id"] for c in bodies[3]["messages"][-3]["tool_calls"]]
    assert [m["tool_call_id"] for m in _tool_messages(bodies[3])] == ids and len(set(ids)) == 2
    assert [m["content"] for m in _tool_messages(bodies[3])] == ["5", "7"]
    # --max-rounds 3: three requests, two rounds of calls run, one clear message.
    assert len(bodies) == 4 + 3
    assert "".join(outputs(nb.cells[6], "text/plain")).strip() == f"{2 + 2} None"
    [error] = errors(nb.cells[5])
    assert error["ename"] == "TooManyRounds" and "--max-rounds 3" in error["evalue"]


def test_an_interrupt_during_a_call_ends_the_cell_and_keeps_a_valid_history(
        endpoint: FakeEndpoint, clean_env: Path) -> None:
    import time

    from kernel import Kernel

    with Kernel({"OPENAI_BASE_URL": endpoint.base_url,
                 "CHATMAGIC_HISTORY_DIR": str(clean_env / "h")}) as kernel:
        kernel.execute("%load_ext chatmagic\nimport time\n"
                       "def slow(seconds: int) -> str:\n"
                       "    '''Sleep.'''\n"
                       "    time.sleep(30)\n"
                       "    return 'woke'\n")
        interrupted_at: list[float] = []

        def interrupt_once_running(msg: dict[str, Any]) -> None:
            data = msg["content"].get("data", {})
            if not interrupted_at and "running…" in data.get("text/html", ""):
                interrupted_at.append(time.monotonic())
                time.sleep(0.2)  # inside the function by now
                kernel.manager.interrupt_kernel()

        reply, messages = kernel.execute("%%chat -m tools --tools slow --yes\nNap",
                                         during=interrupt_once_running, timeout=40)
        assert interrupted_at  # the call sleeps 30 s: its result below says it never ended
        assert reply["status"] == "error" and reply["ename"] == "ReplyInterrupted"
        assert len(endpoint.chat_requests) == 1  # no round after the interrupt
        _, out = kernel.execute("import json\nfrom chatmagic import history\n"
                                "print(json.dumps(history()))")
        history = json.loads("".join(m["content"].get("text", "") for m in out))
        assert [m["role"] for m in history] == ["user", "assistant", "tool"]
        assert history[-1]["content"] == "Not run: the kernel was interrupted while it ran"
        assert not schema_errors({"model": "x", "messages": history})
        reply, _ = kernel.execute("%%chat -m echo\nstill fine?")
        assert reply["status"] == "ok"


def test_a_kernel_whose_frontend_takes_input_asks_on_stdin(endpoint: FakeEndpoint,
                                                           clean_env: Path) -> None:
    from kernel import Kernel

    with Kernel({"OPENAI_BASE_URL": endpoint.base_url,
                 "CHATMAGIC_HISTORY_DIR": str(clean_env / "h")}) as kernel:
        kernel.execute("%load_ext chatmagic\n%chat_config set widgets=off\n" + TOOLS_CELL)
        reply, messages = kernel.execute("%%chat -m tools --tools add\n2 + 3?", typed="y")
        assert reply["status"] == "ok"
        assert kernel.prompted["prompt"].startswith('Run add({"a": 2, "b": 3})?')
        _, out = kernel.execute("print(ran)")
        assert "[(2, 3)]" in "".join(m["content"].get("text", "") for m in out)


def test_a_call_is_shown_as_its_pieces_arrive(endpoint: FakeEndpoint, clean_env: Path) -> None:
    from kernel import Kernel

    with Kernel({"OPENAI_BASE_URL": endpoint.base_url,
                 "CHATMAGIC_HISTORY_DIR": str(clean_env / "h")}) as kernel:
        kernel.execute("%load_ext chatmagic\n" + TOOLS_CELL)
        _, messages = kernel.execute("%%chat -m tools/delay=0.1 --tools add --yes\n2 + 3?")
    shown = [visible(m["content"]["data"]["text/html"]) for m in messages
             if m["msg_type"] in ("display_data", "update_display_data")
             and "tool call" in m["content"].get("data", {}).get("text/html", "")]
    arriving = [s for s in shown if "arriving" in s]
    # The block grew in place while the arguments streamed (4 characters a piece), before
    # it ran: some update showed part of them only.
    assert any('"b": 3' not in " ".join(s.split()) for s in arriving), arriving
    assert "ran" in shown[-1] and "5" in shown[-1]


def test_a_headless_kernel_that_looks_attached_refuses_instead_of_waiting_for_a_click(
        endpoint: FakeEndpoint, clean_env: Path) -> None:
    # papermill started from a notebook's terminal: JPY_SESSION_NAME is inherited (the
    # widgets frontend), but nobody can click, and the frontend takes no input.
    nb = run_cells(["%load_ext chatmagic", TOOLS_CELL,
                    "%%chat -m tools --tools add\nWhat is 2 + 3?",
                    "%chat_config set widgets=on",
                    "%%chat -m tools --tools add\nAnd now?", "print(ran)"],
                   env={"OPENAI_BASE_URL": endpoint.base_url,
                        "JPY_SESSION_NAME": str(clean_env / "from-jupyter.ipynb")}, timeout=20)
    for cell in (nb.cells[2], nb.cells[4]):
        [error] = errors(cell)
        assert error["ename"] == "ToolsRefused" and "headless" in error["evalue"]
    assert "".join(outputs(nb.cells[5], "text/plain")).strip() == "[]"


def test_probes_from_a_model_and_a_tool_stay_inert_in_a_kernel(endpoint: FakeEndpoint,
                                                              clean_env: Path) -> None:
    from inert import live_html

    probe = "<img src=x onerror=alert(1)>"
    nb = run_cells(["%load_ext chatmagic",
                    "def show(text: str) -> str:\n"
                    "    '''Show a text.'''\n"
                    f"    return {probe!r} + '<script>window.__xss = 1</script>' + text\n",
                    f'%%chat -m "tools/call={probe}" --tools show --yes --no-history\ngo',
                    "%%chat -m tools --tools show --yes\ngo", "%chat_history show"],
                   env={"OPENAI_BASE_URL": endpoint.base_url}, allow_errors=False)
    blocks = [data["text/html"] for cell in nb.cells[2:] for out in cell.outputs
              if "text/html" in (data := out.get("data", {}))]
    assert any("tool call" in html and "&lt;img src=x onerror" in html for html in blocks)
    assert any("&lt;script&gt;window.__xss" in html for html in blocks)
    for html in blocks:
        assert live_html(html) == [], html
