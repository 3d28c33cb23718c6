"""The extension in a real kernel: nbclient for notebooks, jupyter_client for messages."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from chatmagic.testing import FakeEndpoint
from inert import live_html
from kernel import Kernel, errors, outputs, run_cells, visible
from wait import until

pytestmark = pytest.mark.kernel


def test_notebook_streams_markdown_and_keeps_it(endpoint: FakeEndpoint, clean_env: Path) -> None:
    nb = run_cells(["%load_ext chatmagic", "x = 'otters'",
                    "%%chat -m markdown\nshow me a table",
                    "%chat -m echo what about {x}?",
                    "%models echo"],
                   env={"OPENAI_BASE_URL": endpoint.base_url}, allow_errors=False)
    table_cell, line_cell, models_cell = nb.cells[2], nb.cells[3], nb.cells[4]
    shown = "".join(outputs(table_cell))
    assert "<td>echo" in shown and "<k>def</k> <f>greet</f>" in shown  # a table, code
    assert "def greet(name: str)" in visible(shown)
    assert any("tokens" in o and "first token" in o for o in outputs(table_cell))
    assert "what about otters?" in visible("".join(outputs(line_cell)))  # a question, not help
    assert "<td>echo" in "".join(outputs(models_cell))
    # a saved notebook holds no widget-only output and no leftover display ids
    for cell in nb.cells:
        for out in cell.outputs:
            assert "application/vnd.jupyter.widget-view+json" not in out.get("data", {})


def test_second_cell_carries_history_in_a_kernel(endpoint: FakeEndpoint, clean_env: Path) -> None:
    run_cells(["%load_ext chatmagic", "%%chat -m echo\nfirst", "%%chat -m echo\nsecond"],
              env={"OPENAI_BASE_URL": endpoint.base_url}, allow_errors=False)
    assert [m["content"] for m in endpoint.last_body["messages"]] == ["first", "first", "second"]


def test_compare_across_two_profiles(endpoint: FakeEndpoint, clean_env: Path) -> None:
    with FakeEndpoint(owned_by="other") as second:
        (clean_env / "chatmagic.toml").write_text(
            f'[profiles.one]\nbase_url = "{endpoint.base_url}"\n'
            f'[profiles.two]\nbase_url = "{second.base_url}"\n')
        nb = run_cells(["%load_ext chatmagic",
                        "%%chat --compare one:echo,two:markdown,one:echo -o out\nsame prompt",
                        "print(sorted(out))\nprint(out['one:echo#2'])"],
                       env={}, allow_errors=False, cwd=str(clean_env))
        assert second.last_body["model"] == "markdown"
    assert len(endpoint.chat_requests) == 2
    printed = "".join(outputs(nb.cells[2], "text/plain"))
    assert "['one:echo', 'one:echo#2', 'two:markdown']" in printed and "same prompt" in printed
    static = nb.cells[1].outputs[-1]["data"]
    assert "same prompt" in static["text/html"] and "A small table" in static["text/html"]
    assert "== two:markdown ==" in static["text/plain"]


def test_model_html_is_never_live_in_outputs(endpoint: FakeEndpoint, clean_env: Path) -> None:
    # xss sends probes in its thoughts, its answer and a refusal; history shows them again.
    nb = run_cells(["%load_ext chatmagic", "%%chat -m xss\nx", "%%chat --compare xss,echo\nx",
                    "%chat_history show", "%%chat -m xss --no-stream\nx"],
                   env={"OPENAI_BASE_URL": endpoint.base_url}, allow_errors=False)
    for cell in nb.cells[1:]:
        for out in cell.outputs:
            data = out.get("data", {})
            assert "text/markdown" not in data  # every surface is the renderer's HTML
            if "text/html" in data:
                assert live_html(data["text/html"]) == [], data
    reply = "".join(outputs(nb.cells[1]))
    assert "&lt;script&gt;window.__xss" in reply and "<code>&lt;b&gt;not bold" in reply  # text
    assert "&lt;script&gt;shown, not run" in visible(reply) or \
        "shown, not run" in visible(reply)  # code: shown, escaped
    assert "Thinking" in reply and "Refused" in reply and "refusal-fence" in reply


@pytest.mark.parametrize("model, message", [
    ("error-midstream/after=3", "upstream model crashed mid-stream"),
    ("drop/after=3", "stream ended before the reply finished"),
    ("error-200", "upstream: quota exhausted"),
    ("json-as-sse", "gateway: no channel available"),
    ("error-list", "Request contains an invalid argument."),
    ("unauthorized", "Incorrect API key provided"),
    ("server-error", "The server had an error"),
    ("nosuch", "did not exist".replace("did not", "does not")),
])
def test_every_failure_is_one_message_and_the_next_chat_works(
        endpoint: FakeEndpoint, clean_env: Path, model: str, message: str) -> None:
    nb = run_cells(["%load_ext chatmagic", f"%%chat -m {model}\none two three four five",
                    "%%chat -m echo\nstill working", "%chat_history export -o h\nprint(h[-3:])"],
                   env={"OPENAI_BASE_URL": endpoint.base_url})
    (error,) = errors(nb.cells[1])
    assert message in error["evalue"] and endpoint.base_url in error["evalue"]
    assert len(error["traceback"]) == 1  # one message, no traceback
    if "after=3" in model:
        assert "one two three" in visible("".join(outputs(nb.cells[1])))
        assert "'content': 'one two three '" in "".join(outputs(nb.cells[3], "text/plain"))
    assert not errors(nb.cells[2]) and "still working" in visible("".join(outputs(nb.cells[2])))


def test_interrupt_closes_the_stream_and_keeps_the_partial_text(
        endpoint: FakeEndpoint, clean_env: Path) -> None:
    with Kernel({"OPENAI_BASE_URL": endpoint.base_url, "CHATMAGIC_HISTORY_DIR":
                 str(clean_env / "h")}) as kernel:
        kernel.execute("%load_ext chatmagic")
        interrupted_at: list[float] = []

        def interrupt_once_text_arrives(msg: dict) -> None:
            data = msg["content"].get("data", {})
            if not interrupted_at and "w3" in data.get("text/html", ""):
                interrupted_at.append(time.monotonic())
                kernel.manager.interrupt_kernel()

        reply, messages = kernel.execute("%%chat -m long/tokens=3000,delay=0.01\ngo",
                                         during=interrupt_once_text_arrives)
        # 3,000 tokens take the server 30 s: the cell ended with a fraction of them (counted
        # below from the history), which no timing on a busy machine can move.
        assert interrupted_at
        # Still a KeyboardInterrupt (Run All stops), shown as one line without our frames
        assert reply["status"] == "error" and reply["ename"] == "ReplyInterrupted"
        (shown,) = [m["content"] for m in messages if m["msg_type"] == "error"]
        assert len(shown["traceback"]) == 1 and "text that arrived is kept" in shown["evalue"]
        until(lambda: endpoint.chat_requests[-1].disconnected,
              "the server seeing the client go away")
        reply, messages = kernel.execute(
            "from chatmagic import history\nh = history()\n"
            "print(h[-1]['content'].startswith('w0 w1 w2 w3'), len(h[-1]['content']) < 3000 * 3)")
        printed = "".join(m["content"].get("text", "") for m in messages)
        assert "True True" in printed
        reply, _ = kernel.execute("%chat_history show")
        reply, messages = kernel.execute("%%chat -m echo --no-history\nafter")
        assert reply["status"] == "ok"


def _cost(kernel: Kernel, tokens: int) -> tuple[int, int, float, int]:
    start = time.monotonic()
    reply, messages = kernel.execute(f"%%chat -m long/tokens={tokens} --no-history -o r\ngo")
    elapsed = time.monotonic() - start
    updates = [m for m in messages if m["msg_type"] in ("display_data", "update_display_data",
                                                        "comm_msg")]
    sent = sum(len(json.dumps(m["content"])) for m in updates)
    _, out = kernel.execute("print(len(r))")
    reply_bytes = int("".join(m["content"]["text"] for m in out if m["msg_type"] == "stream"))
    return len(updates), sent, elapsed, reply_bytes


@pytest.mark.parametrize("widgets", ["off", "on"])
def test_rendering_cost_grows_with_time_not_tokens(endpoint: FakeEndpoint, clean_env: Path,
                                                   widgets: str) -> None:
    with Kernel({"OPENAI_BASE_URL": endpoint.base_url}) as kernel:
        kernel.execute(f"%load_ext chatmagic\n%chat_config set widgets={widgets}")
        updates, sent, elapsed, reply_bytes = _cost(kernel, 20000)
        assert reply_bytes > 100_000
        # One message per refresh (the first token, one per throttle interval, the end); with
        # widgets, the header's own output and its Stop bar (up after 0.5 s, down at the end)
        # add three. Per-token or per-block updates would be thousands here.
        fixed = 3 if widgets == "off" else 6
        assert updates <= elapsed / 0.08 + fixed, (updates, elapsed)
        assert sent <= 1.5 * reply_bytes, (sent, reply_bytes)  # each block sent about once


def _screen(messages: list[dict]) -> list[dict]:
    """The cell's outputs as a frontend ends up showing them (display ids updated in place)."""
    shown: list[dict] = []
    where: dict[str, int] = {}
    for msg in messages:
        kind, content = msg["msg_type"], msg["content"]
        display_id = content.get("transient", {}).get("display_id")
        if kind == "display_data":
            where[display_id] = len(shown)
            shown.append(content["data"])
        elif kind == "update_display_data":
            shown[where[display_id]] = content["data"]
    return shown


WIDGET = "application/vnd.jupyter.widget-view+json"


@pytest.mark.parametrize("model, tail, failed", [
    ("long/tokens=300,delay=0.005", "w299", False),
    ("reasoning/first=0.8", "The answer is: one two", False),
    ("error-midstream/after=4,delay=0.2", "four", True),
])
def test_widgets_stop_bar_comes_and_goes_leaving_markdown(
        endpoint: FakeEndpoint, clean_env: Path, model: str, tail: str, failed: bool) -> None:
    with Kernel({"OPENAI_BASE_URL": endpoint.base_url}) as kernel:
        kernel.execute("%load_ext chatmagic\n%chat_config set widgets=on")
        reply, messages = kernel.execute(f"%%chat -m {model}\none two three four five six")
    assert (reply["status"] == "error") is failed
    # After half a second the header's output became the Stop bar...
    bars = [m for m in messages if WIDGET in m["content"].get("data", {})]
    assert bars and all(m["msg_type"] == "update_display_data" for m in bars)
    # ...and at the end every output is HTML again: header, text, footer last.
    screen = _screen(messages)
    assert all(WIDGET not in data for data in screen)
    shown = [data["text/html"] for data in screen]
    assert visible(shown[0]).startswith(model.split("/")[0])
    assert tail in visible("".join(shown)) and 'class="cm-note"' in shown[-1]
    assert ("incomplete" in shown[-1]) is failed


def test_reasoning_refusal_length_and_estimates_are_shown(endpoint: FakeEndpoint,
                                                          clean_env: Path) -> None:
    nb = run_cells(["%load_ext chatmagic", "%%chat -m reasoning\nwhy", "%%chat -m refusal\nno",
                    "%%chat -m length\ncut", "%%chat -m no-usage\nquiet",
                    "%%chat -m echo -n 2\ntwo ways", "%%chat -m echo -f text\n**plain**"],
                   env={"OPENAI_BASE_URL": endpoint.base_url}, allow_errors=False)
    thinking, refusal, length, no_usage, choices, plain = nb.cells[1:]
    shown = "".join(outputs(thinking))
    assert "<details><summary>Thinking</summary>" in shown and "Let me think" in shown
    assert shown.index("Thinking") < shown.index("The answer is: why")
    assert "<b>Refused:</b><p>I can't help with that.</p>" in "".join(outputs(refusal))
    assert "cut at the token limit (finish_reason=length)" in visible("".join(outputs(length)))
    assert "(estimated)" in "".join(outputs(no_usage))
    grid = choices.outputs[-1]["data"]["text/html"]
    assert "two ways (choice 0)" in grid and "two ways (choice 1)" in grid
    assert "**plain**" in "".join(outputs(plain, "text/plain"))
    for message in [endpoint.chat_requests[i].body["messages"] for i in range(6)]:
        assert all("reasoning" not in m and "Thinking" not in str(m) for m in message)


def test_key_is_in_no_output_history_file_or_log(endpoint: FakeEndpoint, clean_env: Path) -> None:
    key = "sk-live-ZXCVBNMASDFGHJKL1234567890"
    secured = FakeEndpoint(api_key=key).start()
    try:
        (clean_env / "chatmagic.toml").write_text(
            f'[profiles.safe]\nbase_url = "{secured.base_url}"\napi_key_env = "SAFE_KEY"\n'
            'model = "echo"\n')
        store = clean_env / "store"
        nb = run_cells(["%load_ext chatmagic", "%chat_config set notebook=secret",
                        "%chat_config use safe", "%%chat\nhello", "%%chat -m unauthorized\nx",
                        "%chat_config", "%chat_config profiles", "%chat_history show",
                        "%chat_history export", "%models", "import chatmagic; print(chatmagic._magics.session.profiles.get('safe'))"],
                       env={"SAFE_KEY": key, "CHATMAGIC_HISTORY_DIR": str(store)},
                       cwd=str(clean_env))
        assert secured.chat_requests[0].headers["authorization"] == f"Bearer {key}"
    finally:
        secured.stop()
    dumped = json.dumps(nb.dict(), ensure_ascii=False)
    assert key not in dumped and key[-10:] not in dumped
    assert "sk-…890" in dumped  # masked
    stored = "".join(p.read_text() for p in store.rglob("*"))
    assert "hello" in stored and key not in stored and key[-10:] not in stored


def test_key_typed_without_echo_is_used_and_never_shown(clean_env: Path) -> None:
    key = "sk-typed-QWERTYUIOPASDFGH0987654321"
    with FakeEndpoint(api_key=key) as secured, Kernel() as kernel:
        (clean_env / "chatmagic.toml").write_text(
            f'[profiles.safe]\nbase_url = "{secured.base_url}"\napi_key_env = "SAFE_KEY"\n'
            'model = "echo"\n')
        kernel.execute("%load_ext chatmagic")
        reply, typed = kernel.execute("%chat_config key safe", typed=key)
        assert reply["status"] == "ok"
        assert kernel.prompted["password"] is True and "safe" in kernel.prompted["prompt"]
        reply, chatted = kernel.execute("%%chat -p safe --no-history\nhello")
        assert reply["status"] == "ok"
        assert secured.chat_requests[-1].headers["authorization"] == f"Bearer {key}"
        _, shown = kernel.execute("%chat_config profiles\n%chat_config use safe\n%chat_config")
    dumped = json.dumps([m["content"] for m in typed + chatted + shown], ensure_ascii=False)
    assert key not in dumped and key[-10:] not in dumped and "sk-…321" in dumped


def test_many_chats_and_compares_keep_memory_bounded(endpoint: FakeEndpoint,
                                                     clean_env: Path) -> None:
    with Kernel({"OPENAI_BASE_URL": endpoint.base_url, "JPY_SESSION_NAME":
                 str(clean_env / "load.ipynb"), "CHATMAGIC_HISTORY_DIR": str(clean_env / "h")}) \
            as kernel:
        kernel.execute("%load_ext chatmagic\nimport resource\n"
                       "from ipywidgets.widgets.widget import _instances\n"
                       "def rss(): return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss")

        def batch(n: int) -> None:
            for i in range(n):
                kernel.execute(f"%%chat -m markdown -c load\nchat {i}")
                if i % 10 == 0:
                    kernel.execute("%%chat --compare echo,markdown,echo,markdown --no-history\nc")

        batch(40)
        _, out = kernel.execute("print(rss(), len(_instances))")
        rss_before, widgets_before = map(int, "".join(
            m["content"]["text"] for m in out if m["msg_type"] == "stream"
            and m["content"]["name"] == "stdout").split())
        batch(160)
        _, out = kernel.execute("print(rss(), len(_instances))")
        rss_after, widgets_after = map(int, "".join(
            m["content"]["text"] for m in out if m["msg_type"] == "stream"
            and m["content"]["name"] == "stdout").split())
    assert widgets_after - widgets_before < 20  # finished views close their widgets
    assert rss_after - rss_before < 60_000  # KiB: no growth per chat beyond the history itself
    from chatmagic.store.conversation import Notebook
    assert len(Notebook(str(clean_env / "load.ipynb"), clean_env / "h").get("load").turns) == 200


@pytest.mark.parametrize("widgets", ["off", "on"])
def test_compare_on_a_one_at_a_time_server_shows_both_replies(
        endpoint: FakeEndpoint, clean_env: Path, widgets: str) -> None:
    # llama-cpp-python cuts a running stream when another request arrives: the cut column
    # is asked again on its own, starts over, and says so in its footer.
    with Kernel({"OPENAI_BASE_URL": endpoint.base_url}) as kernel:
        kernel.execute(f"%load_ext chatmagic\n%chat_config set widgets={widgets}")
        reply, messages = kernel.execute(
            "%%chat --compare one-at-a-time/delay=0.02,one-at-a-time/delay=0.02 --no-history"
            "\none two three four five six seven eight")
    assert reply["status"] == "ok"
    grid = _screen(messages)[-1]["text/html"]
    assert visible(grid).count("one two three four five six seven eight") == 2, visible(grid)
    assert "asked again on its own" in grid and "incomplete" not in grid


def test_no_stop_button_where_a_click_cannot_be_handled(endpoint: FakeEndpoint,
                                                         clean_env: Path) -> None:
    # A %chat line inside a larger cell runs blocking: the kernel would handle the click
    # only after the reply ended, so no Stop button is shown (the awaited %%chat has one).
    with Kernel({"OPENAI_BASE_URL": endpoint.base_url}) as kernel:
        kernel.execute("%load_ext chatmagic\n%chat_config set widgets=on")
        reply, blocking = kernel.execute(
            "x = 1\n%chat -m long/tokens=200,delay=0.006 --no-history go\ny = 2")
        assert reply["status"] == "ok"
        _, awaited = kernel.execute("%%chat -m long/tokens=200,delay=0.006 --no-history\ngo")
    assert not [m for m in blocking if WIDGET in m["content"].get("data", {})]
    assert [m for m in awaited if WIDGET in m["content"].get("data", {})]


def test_remote_images_are_links_unless_the_user_opts_in(endpoint: FakeEndpoint,
                                                         clean_env: Path) -> None:
    image = "![chart](https://example.org/chart.png?d=secret)"
    nb = run_cells(["%load_ext chatmagic", f"%%chat -m echo --no-history\n{image}",
                    "%chat_config set remote_images=on",
                    f"%%chat -m echo --no-history\n{image}"],
                   env={"OPENAI_BASE_URL": endpoint.base_url}, allow_errors=False)
    off, on = "".join(outputs(nb.cells[1])), "".join(outputs(nb.cells[3]))
    assert "<img" not in off and '<a href="https://example.org/chart.png?d=secret"' in off
    assert '<img src="https://example.org/chart.png?d=secret" alt="chart">' in on


def test_n_2_from_a_server_that_sends_one_choice(endpoint: FakeEndpoint, clean_env: Path) -> None:
    # The server ignores n: one column, finished; nothing empty to keep.
    nb = run_cells(["%load_ext chatmagic", "%%chat -m echo/choices=1 -n 2 -o out\ntwo ways",
                    "print(out)", "%chat_history keep 2", "%chat_history export -o h\nprint(h)"],
                   env={"OPENAI_BASE_URL": endpoint.base_url})
    grid = nb.cells[1].outputs[-1]["data"]["text/html"]
    assert "choice 1" not in grid and "incomplete" not in grid and "finished" in grid
    assert "['two ways']" in "".join(outputs(nb.cells[2], "text/plain"))
    assert "keep N" not in grid and "nothing to keep" in "".join(outputs(nb.cells[3], "text/plain"))
    assert "'content': 'two ways'" in "".join(outputs(nb.cells[4], "text/plain"))


def test_autoawait_off_still_runs_chat_cells(endpoint: FakeEndpoint, clean_env: Path) -> None:
    nb = run_cells(["%load_ext chatmagic", "%autoawait False", "%%chat -m echo\nstill here"],
                   env={"OPENAI_BASE_URL": endpoint.base_url}, allow_errors=False)
    assert "still here" in visible("".join(outputs(nb.cells[2])))


def test_a_kernel_shell_subclass_is_a_kernel() -> None:
    # Colab's and Spyder's shells subclass ipykernel's: widgets and the awaited path are theirs.
    from ipykernel.zmqshell import ZMQInteractiveShell
    from IPython.core.interactiveshell import InteractiveShell

    from chatmagic.shell.magics import in_kernel

    class ColabShell(ZMQInteractiveShell):
        pass

    assert in_kernel(object.__new__(ColabShell)) and in_kernel(object.__new__(ZMQInteractiveShell))
    assert not in_kernel(object.__new__(InteractiveShell)) and not in_kernel(None)


def test_blocking_cells_reuse_one_connection_and_keep_the_kernel_loops(
        endpoint: FakeEndpoint, clean_env: Path) -> None:
    # Every blocking run goes to one long-lived loop (the portal) whose client is kept: two
    # blocking cells, one connection. The awaited cells' client, on the kernel's own loop, is
    # not thrown away by a blocking run in between.
    blocking = "%chat -m echo --no-stream one\n%chat -m echo --no-stream two"
    awaited = "%chat -m echo --no-stream three"
    nb = run_cells(["%load_ext chatmagic", blocking, blocking, awaited, blocking, awaited],
                   env={"OPENAI_BASE_URL": endpoint.base_url}, allow_errors=False)
    assert not any(errors(c) for c in nb.cells)
    peers = [r.peer for r in endpoint.chat_requests]
    assert len(peers) == 8
    assert len(set(peers[:4] + peers[5:7])) == 1, peers  # the blocking ones: one connection
    assert peers[4] == peers[7] != peers[0], peers  # the awaited ones: the kernel loop's own


def test_no_stream_interrupted_says_nothing_arrived(endpoint: FakeEndpoint, clean_env: Path) -> None:
    # Without streaming a reply comes whole at its end: an interrupt before then has nothing to
    # keep, and the cell says so rather than pointing at kept text that does not exist.
    with Kernel({"OPENAI_BASE_URL": endpoint.base_url, "CHATMAGIC_HISTORY_DIR":
                 str(clean_env / "h")}) as kernel:
        kernel.execute("%load_ext chatmagic")
        import threading

        timer = threading.Timer(1.0, kernel.manager.interrupt_kernel)
        timer.start()
        reply, messages = kernel.execute("%%chat -m long/tokens=400,delay=0.01 --no-stream\ngo")
        timer.join()
        # The server answers after 4 s: a cell that waited for it would have a reply.
        assert endpoint.chat_requests
        assert reply["status"] == "error" and reply["ename"] == "ReplyInterrupted"
        assert "before any reply arrived (--no-stream" in reply["evalue"]
        assert "kept" not in reply["evalue"]
        reply, messages = kernel.execute("from chatmagic import history\nprint(len(history()))")
        assert "0" in "".join(m["content"].get("text", "") for m in messages)
        reply, _ = kernel.execute("%%chat -m echo --no-stream\nafter")
        assert reply["status"] == "ok"
