"""The extension in a real InteractiveShell, over HTTP to the local endpoint."""

from __future__ import annotations

from typing import Any

import pytest
from IPython.core.error import UsageError

from chatmagic.testing import FakeEndpoint

KEY = "sk-test-SECRETKEY-0123456789abcdef"


def test_cell_magic_streams_reply_and_fills_vars(shell: Any, endpoint: FakeEndpoint,
                                                 capsys: Any) -> None:
    shell.user_ns["topic"] = "otters"
    shell.run_cell_magic("chat", "-m echo", "tell me about {topic} {unknown}")
    out = capsys.readouterr().out
    assert "tell me about otters {unknown}" in out
    assert endpoint.last_body["messages"] == [
        {"role": "user", "content": "tell me about otters {unknown}"}]
    assert endpoint.last_body["stream"] is True
    assert endpoint.last_body["stream_options"] == {"include_usage": True}


def test_line_form_and_out_variable(shell: Any, endpoint: FakeEndpoint) -> None:
    shell.run_line_magic("chat", "-m echo -o answer what's new?")
    assert shell.user_ns["answer"] == "what's new?"


def test_second_chat_carries_the_first_exchange(shell: Any, endpoint: FakeEndpoint) -> None:
    shell.run_cell_magic("chat", "-m echo -s 'be brief'", "first")
    shell.run_cell_magic("chat", "-m echo", "second")
    assert endpoint.last_body["messages"] == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "first"}, {"role": "assistant", "content": "first"},
        {"role": "user", "content": "second"}]


def test_no_history_sends_only_system_and_prompt(shell: Any, endpoint: FakeEndpoint) -> None:
    shell.run_cell_magic("chat", "-m echo", "remember me")
    shell.run_cell_magic("chat", "-m echo --no-history -s sys", "alone")
    assert endpoint.last_body["messages"] == [{"role": "system", "content": "sys"},
                                              {"role": "user", "content": "alone"}]
    shell.run_cell_magic("chat", "-m echo", "next")
    assert len(endpoint.last_body["messages"]) == 3  # the one-shot was not recorded


def test_no_interpolate_and_no_stream(shell: Any, endpoint: FakeEndpoint) -> None:
    shell.user_ns["x"] = 1
    shell.run_cell_magic("chat", "-m echo --no-interpolate --no-stream -o r", "{x} and {{x}}")
    assert endpoint.last_body["messages"][-1]["content"] == "{x} and {{x}}"
    assert endpoint.last_body["stream"] is False and "stream_options" not in endpoint.last_body
    assert shell.user_ns["r"] == "{x} and {{x}}"


@pytest.mark.parametrize("line, words", [
    ("-m echo --temperature 9", "--temperature must be between 0 and 2"),
    ("-m echo --nope", "unrecognized arguments: --nope"),
    ("-p nowhere -m echo", "Unknown profile 'nowhere'"),
    ("-m qwen:qwen-plus", "set the environment variable DASHSCOPE_API_KEY"),
])
def test_bad_input_is_one_usage_error_and_nothing_is_sent(
        shell: Any, endpoint: FakeEndpoint, line: str, words: str) -> None:
    with pytest.raises(UsageError, match=words.replace("(", r"\(")):
        shell.run_cell_magic("chat", line, "prompt")
    assert endpoint.chat_requests == []


def test_failed_request_is_an_error_result_without_traceback(shell: Any, endpoint: FakeEndpoint,
                                                              capsys: Any) -> None:
    result = shell.run_cell("%%chat -m error-midstream/after=2\nalpha beta gamma delta")
    out = capsys.readouterr().out
    assert not result.success
    assert "RequestFailed" in out and "upstream model crashed mid-stream" in out
    assert "Traceback" not in out
    assert "alpha beta" in out  # the partial text was shown
    history = shell.run_line_magic("chat_history", "export -o h")
    assert history is None and shell.user_ns["h"][-1] == {"role": "assistant",
                                                          "content": "alpha beta "}
    result = shell.run_cell("%%chat -m echo\nnext works")
    assert result.success


def test_unreachable_endpoint_names_the_url(shell: Any, capsys: Any) -> None:
    shell.run_line_magic("chat_config", "set profile=vllm")
    # conftest points the local presets at a loopback port that never listens
    base_url = shell.magics_manager.registry["ChatMagics"].session.profiles.get("vllm").base_url
    result = shell.run_cell("%%chat -m m --timeout 2\nhi")
    out = capsys.readouterr().out
    assert not result.success and f"Cannot reach vllm ({base_url})" in out


def test_a_model_set_for_one_profile_stays_with_it(shell: Any) -> None:
    shell.run_line_magic("chat_config", "set profile=openai")
    shell.run_line_magic("chat_config", "set model=echo")
    shell.run_line_magic("chat_config", "use qwen")
    profiles = shell.magics_manager.registry["ChatMagics"].session.profiles
    assert profiles.get("openai").model == "echo" and profiles.get("qwen").model != "echo"


def test_key_never_appears_in_outputs_errors_or_reprs(
        shell: Any, endpoint: FakeEndpoint, monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    monkeypatch.setenv("ZOO_KEY", KEY)
    from chatmagic.core.profiles import Profile
    magics = shell.magics_manager.registry["ChatMagics"]
    magics.session.profiles.set(Profile("zoo", endpoint.base_url, "ZOO_KEY", model="echo"))
    shell.run_cell("%%chat -p zoo\nhello")
    shell.run_cell("%%chat -p zoo -m unauthorized\nhello")
    shell.run_line_magic("chat_config", "use zoo")
    shell.run_line_magic("chat_config", "show")
    shell.run_line_magic("chat_config", "profiles")
    shell.run_line_magic("chat_history", "show")
    out = capsys.readouterr().out
    assert endpoint.chat_requests[0].headers["authorization"] == f"Bearer {KEY}"
    assert KEY not in out and KEY[-12:] not in out
    assert "sk-…def" in out  # masked in %chat_config
    assert KEY not in repr(magics.session.profiles.get("zoo"))
    assert KEY not in repr(magics.session.clients.__dict__.keys())


def test_models_lists_the_endpoint(shell: Any, endpoint: FakeEndpoint, capsys: Any) -> None:
    shell.run_line_magic("models", "ech -o rows")
    out = capsys.readouterr().out
    assert "echo" in out and "markdown" not in out
    assert shell.user_ns["rows"][0] == {"id": "echo", "owned_by": "chatmagic",
                                        "created": "2023-11-14", "profile": "env"}
    shell.run_line_magic("models", "*-vllm -o rows")
    assert [r["id"] for r in shell.user_ns["rows"]] == ["reasoning-vllm"]
    gets = [r for r in endpoint.requests if r.method == "GET"]
    assert len(gets) == 1  # cached per profile
    shell.run_line_magic("models", "--refresh")
    assert len([r for r in endpoint.requests if r.method == "GET"]) == 2


def test_models_all_skips_profiles_without_keys(shell: Any, endpoint: FakeEndpoint,
                                                capsys: Any) -> None:
    shell.run_line_magic("models", "--all echo")
    out = capsys.readouterr().out
    assert "qwen: skipped, no key (DASHSCOPE_API_KEY)" in out
    assert "echo" in out


def test_format_code_puts_the_code_in_the_next_cell(shell: Any, endpoint: FakeEndpoint) -> None:
    shell.run_cell_magic("chat", "-m markdown -f code", "code please")
    assert "def greet(name: str) -> str:" in shell.rl_next_input


def test_help_is_the_option_table(shell: Any) -> None:
    doc = shell.find_cell_magic("chat").__doc__
    assert "--compare" in doc and "--no-interpolate" in doc


def test_a_chat_line_ending_in_a_question_mark_is_a_question(shell: Any,
                                                              endpoint: FakeEndpoint) -> None:
    # IPython would read it as `pinfo blue`: a help request, nothing sent
    assert shell.run_cell("%chat -m echo --no-history why is the sky blue?").success
    assert endpoint.last_body["messages"][-1]["content"] == "why is the sky blue?"
    shell.run_cell("%%chat -m echo --no-history\n%chat is text here?")
    assert endpoint.last_body["messages"][-1]["content"] == "%chat is text here?"
    sent = len(endpoint.chat_requests)
    assert shell.run_cell('s = """\n%chat is this a string?\n"""').success  # data, untouched
    assert shell.user_ns["s"] == "\n%chat is this a string?\n"
    assert len(endpoint.chat_requests) == sent
    # An apostrophe is no Python string (Python 3.12's tokenizer stops at it).
    assert shell.run_cell("%chat -m echo --no-history what's this?\n"
                          "%chat -m echo --no-history and that?").success
    assert [b["messages"][-1]["content"] for b in (r.body for r in endpoint.chat_requests[-2:])] == \
        ["what's this?", "and that?"]


def test_retry_sends_again_with_the_cells_options(shell: Any, endpoint: FakeEndpoint) -> None:
    shell.run_cell_magic("chat", "-m echo --max-tokens 5 -t 0.3 --param top_k=4", "hi there")
    shell.run_line_magic("chat_history", "retry")
    body = endpoint.last_body
    assert body["max_tokens"] == 5 and body["temperature"] == 0.3 and body["top_k"] == 4
    assert [m["content"] for m in body["messages"]] == ["hi there"]


def test_an_unknown_model_gets_the_nearest_ids_the_endpoint_lists(
        shell: Any, endpoint: FakeEndpoint, capsys: Any) -> None:
    result = shell.run_cell("%%chat -m ehco\nhi")
    out = capsys.readouterr()
    assert not result.success
    assert "Did you mean echo?" in out.out + out.err
