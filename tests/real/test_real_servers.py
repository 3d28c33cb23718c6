"""chatmagic in a real kernel against llama-cpp-python's server, llama.cpp's own server and
LiteLLM's proxy.

Profiles (tests/real/conftest.py): ``llama`` is llama-cpp-python's server, ``llamacpp`` is
llama.cpp's own server (llama-server, two slots), ``lite`` is LiteLLM
in front of it (models ``gemma-a`` and ``gemma-b`` routed to it, ``gemma-down`` to a closed
port), ``lite_wrong`` is LiteLLM with a key it never issued. Gemma 3 270M's words are not
asserted: what text arrived, why it ended, the footer, the usage and the errors are.
"""

from __future__ import annotations

import ast
import os
import re
import time
from pathlib import Path
from typing import Any

import pytest

from realenv import LITELLM_URL, LLAMA_URL, LLAMACPP_URL, N_CTX, SAMPLING, assert_no_key
from kernel import Kernel, errors, run_cells, visible

# A footer as a reader sees it: why the reply ended, ..., its total time (the only figure
# written right after a "· ").
FOOTER = re.compile(r"(?:finished|cut at the token limit|⚠ incomplete|incomplete|⚠ failed|failed|"
                    r"stopped)"
                    r"[^\n]*?· \d+\.\d\d s")
ENDED = ("finished", "cut at the token limit")
URL = {"llama": LLAMA_URL, "llamacpp": LLAMACPP_URL, "lite": LITELLM_URL,
       "lite_wrong": LITELLM_URL}
#: The process that generates for each profile (its CPU use is measured).
PID = {"llama": "CHATMAGIC_REAL_LLAMA_PID", "lite": "CHATMAGIC_REAL_LLAMA_PID",
       "llamacpp": "CHATMAGIC_REAL_LLAMACPP_PID"}


def run(cwd: Path, cells: list[str], timeout: int = 240) -> Any:
    return run_cells(["%load_ext chatmagic", *cells], env={}, cwd=str(cwd), timeout=timeout)


def shown(data: dict[str, str]) -> str:
    """What a reader sees of one output's data (its HTML, else its Markdown)."""
    text = data.get("text/html") or data.get("text/markdown") or ""
    return visible(re.sub(r"<style>.*?</style>", "", text, flags=re.S))


def footers(cell: Any) -> list[str]:
    return FOOTER.findall("\n".join(shown(o.get("data", {})) for o in cell.outputs))


def printed(cell: Any) -> str:
    return "".join(o["text"] for o in cell.outputs if o.get("output_type") == "stream")


def values(cell: Any) -> Any:
    """What the cell printed, read back as a Python literal (one print per cell)."""
    return ast.literal_eval(printed(cell).strip())


def warnings(cell: Any) -> list[str]:
    """The warnings chatmagic printed in the cell before sending (its stderr lines)."""
    text = "".join(o["text"] for o in cell.outputs
                   if o.get("output_type") == "stream" and o.get("name") == "stderr")
    return [line for line in text.splitlines() if line.startswith("warning: ")]


def ok(nb: Any) -> None:
    for cell in nb.cells:
        assert not errors(cell), (cell.source, errors(cell))


USAGE = "%chat_usage --reset -o u\nprint(u[0] if u else None)"


@pytest.mark.parametrize("profile", ["llama", "lite", "llamacpp"])
@pytest.mark.parametrize("stream", [True, False], ids=["stream", "no-stream"])
def test_a_reply_arrives_ends_and_is_counted(real: Path, profile: str, stream: bool) -> None:
    flag = "" if stream else " --no-stream"
    nb = run(real, [f"%%chat -p {profile}{flag} {SAMPLING} --max-tokens 24 -o r\n"
                    "Name three colours.", "print(repr(r))", USAGE])
    ok(nb)
    assert_no_key(nb)
    text = values(nb.cells[2])
    assert text.strip(), "no text arrived"
    (footer,) = footers(nb.cells[1])
    assert footer.startswith(ENDED), footer
    assert "tokens" in footer and (not stream or "first token" in footer), footer
    usage = values(nb.cells[3])
    assert usage["requests"] == 1 and usage["prompt_tokens"] > 5, usage
    if stream and profile == "llama":
        # llama.cpp's server sends no usage in a stream (it ignores stream_options) and one
        # chunk per token: chatmagic counts the chunks, and says the count is its own.
        assert usage["estimated"] is True and "estimated" in footer, (usage, footer)
        assert 1 <= usage["completion_tokens"] <= 24, usage
        if footer.startswith("cut at"):
            assert usage["completion_tokens"] == 24, usage  # characters / 4 gave about 10
    elif stream and profile == "lite":
        # LiteLLM counts a stream itself when the backend sends no usage: its figure, not
        # chatmagic's estimate, and one or two off (docs/real-servers.md).
        assert usage["estimated"] is False and "estimated" not in footer, (usage, footer)
        assert 1 <= usage["completion_tokens"] <= 24 + 2, usage
    else:
        # The server's own figures (llama.cpp's server sends them in a stream too, for
        # stream_options): at most --max-tokens, exactly that when cut there.
        assert usage["estimated"] is False and "estimated" not in footer, (usage, footer)
        assert 1 <= usage["completion_tokens"] <= 24, usage
        if footer.startswith("cut at"):
            assert usage["completion_tokens"] == 24, usage


@pytest.mark.parametrize("profile", ["llama", "llamacpp"])
def test_a_second_turn_sends_the_first(real: Path, profile: str) -> None:
    # --no-stream, so the prompt sizes are the server's own counts of what it received.
    ask = f"%%chat -p {profile} --no-stream {SAMPLING} --max-tokens 16"
    nb = run(real, [f"{ask} -o r1\nMy name is Ada. Say hello to me.", USAGE,
                    f"{ask}\nWhat is my name?", USAGE,
                    f"{ask} --no-history\nWhat is my name?", USAGE,
                    "import chatmagic\nprint([chatmagic.history(), r1])"])
    ok(nb)
    first, second, alone = values(nb.cells[2]), values(nb.cells[4]), values(nb.cells[6])
    # The second prompt holds the first question and its reply on top of what the same
    # question costs alone (the chat template's few tokens of framing aside).
    carried = second["prompt_tokens"] - alone["prompt_tokens"]
    assert carried >= first["prompt_tokens"] - 4 + first["completion_tokens"] // 2, \
        (first, second, alone)
    history, r1 = values(nb.cells[7])
    assert [m["role"] for m in history] == ["user", "assistant", "user", "assistant"]
    assert history[0]["content"] == "My name is Ada. Say hello to me."
    assert history[1]["content"].strip() and history[3]["content"].strip()
    assert history[1]["content"] == r1


def _cuts() -> int:
    """How many streams the llama server has ended for another request so far (its log)."""
    log = Path(os.environ["CHATMAGIC_REAL_LLAMA_LOG"])
    return log.read_text(errors="replace").count("\ndisconnected\n")


# Through LiteLLM the llama server's cut is not always recognisable. Seen on the wire
# (LiteLLM 1.108.7, llama-cpp-python 0.3.36): when llama-cpp-python cuts a stream after some
# text, LiteLLM ends it with its own `{"delta": {}, "finish_reason": "stop"}` chunk, the usage
# chunk it computes for what arrived, and `[DONE]` -- the same frames, field for field, as a
# reply that ended by itself; the headers were sent before the cut. Nothing in the bytes
# tells the two apart, so no client can. A cut before the first word is recognised (LiteLLM
# sends an "APIConnectionError ... Connection error." frame, or a stop with no text and
# completion_tokens 0) and that column is asked again, and from then on the endpoint gets
# one request at a time. Not strict: it passes when the cut came before a word; the profile
# setting one_at_a_time (``lite_serial``, below) makes it pass always.
LITE_CUT = pytest.mark.xfail(strict=False, reason=(
    "LiteLLM in front of llama-cpp-python: a stream cut after some text arrives as "
    "finish_reason=stop, byte for byte a short reply (profile one_at_a_time avoids it)"))
COMPARE = pytest.mark.parametrize("models", [
    pytest.param("llama:gemma-3-270m,llama:gemma-3-270m", id="llama"),
    pytest.param("lite:gemma-a,lite:gemma-b", id="lite", marks=LITE_CUT),
    pytest.param("lite_serial:gemma-a,lite_serial:gemma-b", id="lite-one-at-a-time")])


@COMPARE
def test_compare_on_one_server_fills_every_column(real: Path, models: str) -> None:
    # llama-cpp-python's server ends a running stream ([DONE], no finish reason) when another
    # request arrives (interrupt_requests, on by default): the cut column is asked again.
    before = _cuts()
    nb = run(real, [f"%%chat --compare {models} {SAMPLING} --max-tokens 24 -o out\n"
                    "Name three colours.", "print(out)"])
    ok(nb)
    if "serial" in models:  # declared: sent one after the other, so nothing was cut
        assert _cuts() == before, "one_at_a_time sent the columns together"
    else:
        assert _cuts() > before, "the server cut no stream: this test proved nothing"
    texts = values(nb.cells[2])
    assert len(texts) == 2 and all(t.strip() for t in texts.values()), texts
    ends = footers(nb.cells[1])
    assert len(ends) == 2 and all(f.startswith(ENDED) for f in ends), ends
    assert not any(" 0 tokens" in f or "~0 tokens" in f for f in ends), ends


def test_compare_says_which_column_was_asked_again(real: Path) -> None:
    before = _cuts()
    nb = run(real, [f"%%chat --compare llama:gemma-3-270m,llama:gemma-3-270m {SAMPLING} "
                    "--max-tokens 8\nName three colours."])
    ok(nb)
    assert _cuts() > before, "the server cut no stream: this test proved nothing"
    assert "asked again" in "\n".join(shown(o.get("data", {})) for o in nb.cells[1].outputs)


def _failure(nb: Any, index: int = 1) -> str:
    (error,) = errors(nb.cells[index])
    assert len(error["traceback"]) == 1, error  # one message, no traceback
    return str(error["evalue"])


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "no-stream"])
def test_unknown_model_through_litellm(real: Path, stream: bool) -> None:
    flag = "" if stream else " --no-stream"
    nb = run(real, [f"%%chat -p lite -m nosuch-model{flag}\nhello",
                    f"%%chat -p lite {SAMPLING} --max-tokens 4\nstill working?"])
    message = _failure(nb)
    assert "nosuch-model" in message and LITELLM_URL in message, message
    assert "400" in message or "404" in message, message
    assert not errors(nb.cells[2]) and footers(nb.cells[2])[0].startswith(ENDED)
    assert_no_key(nb)


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "no-stream"])
def test_wrong_key_through_litellm(real: Path, stream: bool) -> None:
    flag = "" if stream else " --no-stream"
    nb = run(real, [f"%%chat -p lite_wrong{flag}\nhello"])
    message = _failure(nb)
    assert LITELLM_URL in message and "lite_wrong" in message, message
    # LiteLLM without a database answers a key it does not know with an error of its own
    # (see docs/real-servers.md); the message is the server's, never the key.
    assert re.search(r"HTTP (400|401|403)", message), message
    assert_no_key(nb)


def test_wrong_key_message_points_at_the_key(real: Path) -> None:
    nb = run(real, ["%%chat -p lite_wrong --no-stream\nhello"])
    assert "CHATMAGIC_REAL_WRONG_KEY" in _failure(nb)


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "no-stream"])
def test_backend_down_behind_litellm(real: Path, stream: bool) -> None:
    flag = "" if stream else " --no-stream"
    nb = run(real, [f"%%chat -p lite -m gemma-down{flag}\nhello",
                    f"%%chat -p lite {SAMPLING} --max-tokens 4\nstill working?"])
    message = _failure(nb)
    assert LITELLM_URL in message and "gemma-down" in message, message
    assert re.search(r"HTTP 5\d\d|connect", message, re.I), message
    assert not errors(nb.cells[2])
    assert_no_key(nb)


def _too_long() -> str:
    # Several tokens per item: well past the context whatever the tokenizer does.
    return " ".join(f"item{i}," for i in range(N_CTX * 2))


@pytest.mark.parametrize("profile, stream", [
    ("llama", True), ("llama", False),
    ("lite", True), ("lite", False),
    ("llamacpp", True), ("llamacpp", False)])
def test_a_prompt_past_the_context_is_a_failure(real: Path, profile: str, stream: bool) -> None:
    flag = "" if stream else " --no-stream"
    prompt = _too_long()
    # In the cell itself: a {field} would be cut to max_field_chars (4,000), which the
    # estimate (4 characters a token) puts under the context, though gemma's tokenizer does not.
    nb = run(real, ["p = None", f"%%chat -p {profile}{flag} --max-tokens 8\n{prompt}",
                    f"%%chat -p {profile} {SAMPLING} --max-tokens 4\nstill working?"])
    message = _failure(nb, 2)
    assert URL[profile] in message and "context" in message.lower(), message
    assert str(N_CTX) in message, message  # the server's own words: its context size
    # Said before sending where the endpoint tells its context (LiteLLM's /model_group/info
    # from gemma-a's model_info, llama.cpp's /props); llama-cpp-python tells nothing, so
    # nothing is said.
    warned = warnings(nb.cells[2])
    if profile in ("lite", "llamacpp"):
        assert len(warned) == 1 and f"more than its context of {N_CTX:,}" in warned[0], warned
    else:
        assert warned == [], warned
    assert not errors(nb.cells[3]), errors(nb.cells[3])  # the overlong turn is not resent
    (footer,) = footers(nb.cells[3])
    assert footer.startswith(ENDED), footer


def test_models_lists_what_each_server_serves(real: Path) -> None:
    nb = run(real, ["%models -p lite -o a\nprint(sorted(r['id'] for r in a))",
                    "%models -p llama -o b\nprint(sorted(r['id'] for r in b))",
                    "%models -p llamacpp -o c\nprint(sorted(r['id'] for r in c))"])
    ok(nb)
    assert values(nb.cells[1]) == ["gemma-a", "gemma-b", "gemma-down"]
    assert "gemma-3-270m" in values(nb.cells[2])
    assert values(nb.cells[3]) == ["gemma-3-270m"]  # llama.cpp's server: the alias only
    assert_no_key(nb)


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _busy(pid: int, seconds: float = 1.0) -> float:
    """The share of one core the process used over the next ``seconds``."""
    start, t0 = _cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    return (_cpu_seconds(pid) - start) / (time.monotonic() - t0)


@pytest.mark.parametrize("profile", ["llama", "lite", "llamacpp"])
def test_interrupt_stops_the_server_generating(real: Path, profile: str) -> None:
    pid = int(os.environ[PID[profile]])
    with Kernel({"CHATMAGIC_HISTORY_DIR": str(real / "h")}) as kernel:
        kernel.execute("%load_ext chatmagic")
        seen: dict[str, float] = {}

        def interrupt_once_text_arrives(msg: dict) -> None:
            text = shown(msg["content"].get("data", {}))
            text = re.sub(r"\S+ · \S+ \([^)]*\)", "", text)  # not the header
            if "generating" not in seen and len("".join(text.split())) > 20:
                seen["generating"] = _busy(pid, 0.5)  # the control: generating is measurable
                seen["at"] = time.monotonic()
                kernel.manager.interrupt_kernel()

        reply, messages = kernel.execute(
            f"%%chat -p {profile} {SAMPLING} --max-tokens 400\n"
            "Count from 1 to 1000, one number per line.",
            timeout=240, during=interrupt_once_text_arrives)
        assert seen, "no text arrived to interrupt"
        assert reply["status"] == "error" and reply["ename"] == "ReplyInterrupted", reply
        time.sleep(1.0)  # the server notices the closed connection at its next token
        after = _busy(pid, 1.5)
        assert seen["generating"] > 0.3 and after < 0.15, (seen, after)
        _, out = kernel.execute("import chatmagic\nh = chatmagic.history()\n"
                                "print(len(h), bool(h[-1]['content'].strip()))")
        assert "".join(m["content"].get("text", "") for m in out).strip() == "2 True"
        _, out = kernel.execute("%chat_usage -o u\nprint(u[0]['requests'], "
                                "u[0]['completion_tokens'])")
        requests, tokens = "".join(m["content"].get("text", "") for m in out).split()[-2:]
        assert requests == "1" and 1 <= int(tokens) < 400, (requests, tokens)


# -- counts and capabilities -------------------------------------------------------------------

def test_llama_streamed_tokens_are_its_chunks(real: Path) -> None:
    # llama.cpp's server sends no usage in a stream, one chunk per token: chatmagic counts
    # the chunks. The same greedy request without streaming gets the server's own count.
    ask = f"%%chat -p llama --no-history {SAMPLING} --max-tokens 20"
    nb = run(real, [f"{ask}\nName three colours.", USAGE,
                    f"{ask} --no-stream\nName three colours.", USAGE])
    ok(nb)
    streamed, plain = values(nb.cells[2]), values(nb.cells[4])
    assert streamed["estimated"] is True and plain["estimated"] is False, (streamed, plain)
    assert streamed["completion_tokens"] == plain["completion_tokens"], (streamed, plain)


PIXEL = ("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"
         "+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")


def test_an_image_for_gemma_through_litellm_is_warned_and_sent(real: Path) -> None:
    # LiteLLM's /model_group/info says supports_vision false for gemma-a; llama-cpp-python
    # serves neither /model_group/info nor /props, so straight to it nothing is said.
    ask = f"{SAMPLING} --max-tokens 8 -i {PIXEL}\nWhat is in this image?"
    nb = run(real, [f"%%chat -p lite {ask}", f"%%chat -p lite {ask}", f"%%chat -p llama {ask}"])
    ok(nb)
    (warned,) = warnings(nb.cells[1])
    assert "gemma-a may not see the image" in warned, warned
    assert "LiteLLM's /model_group/info" in warned and LITELLM_URL.removesuffix("/v1") in warned
    assert warnings(nb.cells[2]) == [warned]  # every such cell says it (asked once)
    assert warnings(nb.cells[3]) == []
    for cell in nb.cells[1:]:  # warned, and sent
        (footer,) = footers(cell)
        assert footer.startswith(ENDED), footer
    assert_no_key(nb)


def test_what_the_real_servers_say_of_their_models() -> None:
    import httpx

    from chatmagic.engine.capabilities import read_model_group_info, read_props, server_root
    from realenv import LITELLM_KEY

    auth = {"Authorization": f"Bearer {LITELLM_KEY}"}
    info = httpx.get(f"{server_root(LITELLM_URL)}/model_group/info", headers=auth, timeout=10)
    models = read_model_group_info(info.json())
    assert models is not None and {"gemma-a", "gemma-b", "gemma-down"} <= set(models), models
    assert models["gemma-a"].vision is False and models["gemma-a"].context == N_CTX
    # LiteLLM keys model_info by the backend model (openai/gemma-3-270m): gemma-b, routed to
    # the same one, says the same.
    assert models["gemma-b"] == models["gemma-a"]
    # llama-cpp-python (0.3.x) serves neither route; were it to serve /props, it must read.
    root = server_root(LLAMA_URL)
    assert httpx.get(f"{root}/model_group/info", timeout=10).status_code == 404
    props = httpx.get(f"{root}/props", timeout=10)
    assert props.status_code == 404 or read_props(props.json()) is not None, props.text[:200]


def test_the_gemma_chat_format_drops_the_system_message(real: Path) -> None:
    # Documented, not warned (nothing the endpoint serves says so): llama-cpp-python's
    # --chat_format gemma leaves the system message out of the prompt. The server's own
    # prompt count is the same with a 40-word system message as without one.
    system = " ".join(["Always answer in French, briefly and politely."] * 5)
    ask = f"%%chat -p llama --no-history --no-stream {SAMPLING} --max-tokens 2"
    nb = run(real, [f"{ask}\nName three colours.", USAGE,
                    f"{ask} -s {system!r}\nName three colours.", USAGE,
                    f"{ask}\n{system}\nName three colours.", USAGE])
    ok(nb)
    alone, with_system, in_prompt = (values(nb.cells[i]) for i in (2, 4, 6))
    assert with_system["prompt_tokens"] == alone["prompt_tokens"], (alone, with_system)
    # The control: the same words in the user message are counted (chatmagic sending -s is
    # tested against FakeEndpoint, which records the body).
    assert in_prompt["prompt_tokens"] >= alone["prompt_tokens"] + 30, (alone, in_prompt)
