"""Slips a new user meets in the magics' messages and tables (issue 21), in a real shell
(answered in process)."""

from __future__ import annotations

import _thread
import html
import re
import threading
import time
from dataclasses import replace
from typing import Any, Iterator

import pytest

from chatmagic.core.profiles import PRESETS
from chatmagic.testing import FakeEndpoint


def test_a_chat_line_error_names_chat_not_the_cell_magic(shell: Any, capsys: Any) -> None:
    shell.run_cell("%chat -m echo --temperature hot hi")
    err = capsys.readouterr().err
    assert "%chat: argument -t/--temperature" in err and "See %chat? for the options" in err
    assert "%%chat" not in err
    shell.run_cell("%%chat --temperature hot\nhi")
    assert "%%chat: argument -t/--temperature" in capsys.readouterr().err


def test_a_mistyped_option_gets_did_you_mean(shell: Any, capsys: Any) -> None:
    shell.run_cell("%%chat --modle echo\nhi")
    err = capsys.readouterr().err
    assert "unrecognized arguments: --modle" in err and "Did you mean --model?" in err
    shell.run_cell("%chat --modle echo hi")
    assert "Did you mean --model?" in capsys.readouterr().err


def _usage_error(shell: Any, magic: str, line: str) -> str:
    from IPython.core.error import UsageError

    with pytest.raises(UsageError) as info:
        shell.run_line_magic(magic, line)
    return str(info.value)


def test_a_mistyped_setting_or_subcommand_gets_the_nearest_names(shell: Any) -> None:
    message = _usage_error(shell, "chat_config", "set modle=echo")
    assert "no setting named 'modle'. Did you mean model?" in message
    assert "The settings: profile, model," in message  # and every other one
    assert "Did you mean max_cost or max_compare?" in _usage_error(shell, "chat_config",
                                                                   "set max_cots=1")
    assert "Did you mean timeout?" in _usage_error(shell, "chat_config", "set Timeout=3")
    assert "write model=VALUE" in _usage_error(shell, "chat_config", "set model")
    message = _usage_error(shell, "chat_config", "sett model=echo")
    assert "no subcommand 'sett'. Did you mean set?" in message and "use PROFILE" in message
    assert "Did you mean profiles?" in _usage_error(shell, "chat_config", "profile")
    assert "Did you mean show?" in _usage_error(shell, "chat_history", "shwo")
    shell.run_line_magic("chat_config", "set model=echo")  # right, it works
    magics = shell.magics_manager.registry["ChatMagics"]
    assert magics.session.profiles.get().model == "echo"


def test_a_mistyped_tool_gets_the_nearest_functions(shell: Any, endpoint: FakeEndpoint) -> None:
    from IPython.core.error import UsageError

    shell.run_cell("def get_weather(city: str) -> str:\n    return 'rain'\n"
                   "def get_time(city: str) -> str:\n    return 'noon'\n"
                   "toolbox = [get_weather, get_time]\nget_wetter_data = 3")
    with pytest.raises(UsageError) as info:
        shell.run_cell_magic("chat", "-m echo --tools get_wether", "hi")
    message = str(info.value)
    assert "get_wether is not defined in the notebook" in message
    # The nearest functions (the shell is shared: an earlier test's may be among them), never
    # the number whose name is nearer still.
    assert "Did you mean get_weather" in message and "get_time" in message
    assert "get_wetter_data" not in message
    with pytest.raises(UsageError, match="Did you mean toolbox?"):
        shell.run_cell_magic("chat", "-m echo --tools get_time,tolbox", "hi")
    assert endpoint.chat_requests == []


def test_keep_with_a_mistyped_model_or_conversation_names_the_nearest(
        shell: Any, endpoint: FakeEndpoint) -> None:
    shell.run_cell("%%chat -c trip --compare echo,markdown\nhi")
    message = _usage_error(shell, "chat_history", "keep makrdown -c trip")
    assert "no reply from 'makrdown' to keep. Did you mean markdown?" in message
    assert "The replies: 1 echo, 2 markdown" in message
    message = _usage_error(shell, "chat_history", "keep 2 -c tirp")
    assert "nothing to keep in conversation 'tirp'" in message and "Did you mean trip?" in message
    message = _usage_error(shell, "chat_history", "keep 2")  # -c forgotten
    assert "Replies wait in 'trip': add -c NAME." in message
    assert "Did you mean trip?" in _usage_error(shell, "chat_history", "show -c tirp")
    shell.run_line_magic("chat_history", "keep markdown -c trip")
    magics = shell.magics_manager.registry["ChatMagics"]
    assert magics.session.notebook.get("trip").turns[-1].meta["label"] == "markdown"


def test_chat_usage_names_every_column(shell: Any, endpoint: FakeEndpoint, capsys: Any) -> None:
    shell.run_cell("%%chat -m echo\nhello there")
    capsys.readouterr()
    from chatmagic.shell.cmd.models import usage_table

    magics = shell.magics_manager.registry["ChatMagics"]
    table = usage_table(magics.session.usage.totals(None), None)
    head = re.search(r"<thead>(.*?)</thead>", table["text/html"]).group(1)
    cells = [c.strip() for c in re.split(r"<tr>|<th>", head) if c.strip()]
    assert all(cells) and len(cells) == 7, head
    assert table["text/plain"].splitlines()[0].split()[-1] == cells[-1]


@pytest.fixture
def ollama_here(monkeypatch: pytest.MonkeyPatch, transport: Any) -> Iterator[FakeEndpoint]:
    """The ollama preset as shipped, but pointing at a local endpoint we can watch."""
    ep = transport.add(FakeEndpoint())
    monkeypatch.setitem(PRESETS, "ollama", replace(PRESETS["ollama"], base_url=ep.base_url))
    yield ep


def test_models_all_leaves_local_presets_nobody_configured_alone(
        ollama_here: FakeEndpoint, shell: Any, endpoint: FakeEndpoint, capsys: Any) -> None:
    shell.run_line_magic("models", "--all")
    out = capsys.readouterr().out
    assert not ollama_here.requests
    assert "ollama: skipped, a local server not configured here (%models -p ollama asks it)" in out
    assert "echo" in out  # the current profile is listed
    shell.run_line_magic("models", "-p ollama")
    assert len(ollama_here.requests) == 1  # what --all would have seen, had it asked
    shell.run_line_magic("chat_config", "use ollama")
    shell.run_line_magic("models", "--all --refresh")
    assert len(ollama_here.requests) == 2  # the current profile is configured


def test_profiles_name_the_key_typed_in_not_the_unset_variable(
        shell: Any, monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    monkeypatch.setattr("getpass.getpass", lambda prompt="": "sk-typed-1234567890abcdef")
    shell.run_line_magic("chat_config", "key openai")
    capsys.readouterr()
    shell.run_line_magic("chat_config", "profiles")
    out = capsys.readouterr().out
    (line,) = [line for line in out.splitlines() if line.startswith("openai")]
    assert "OPENAI_API_KEY" not in line and "typed in" in line
    shell.run_line_magic("chat_config", "use openai")
    shell.run_line_magic("chat_config", "show")
    out = capsys.readouterr().out
    (line,) = [line for line in out.splitlines() if line.startswith("key:")]
    assert "OPENAI_API_KEY" not in line and "typed in" in line and "sk-…def" in line
    monkeypatch.setenv("DASHSCOPE_API_KEY", "sk-env-1234567890abcdef")
    shell.run_line_magic("chat_config", "profiles")
    (line,) = [line for line in capsys.readouterr().out.splitlines() if line.startswith("qwen")]
    assert "set (DASHSCOPE_API_KEY)" in line


def _interrupt_when_streaming(endpoint: FakeEndpoint) -> threading.Thread:
    def watch() -> None:
        deadline = time.monotonic() + 10
        while not endpoint.chat_requests and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.3)
        _thread.interrupt_main()
    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


@pytest.mark.paced
@pytest.mark.parametrize("no_history", [False, True])
def test_an_interrupted_reply_says_where_its_text_is_kept(
        no_history: bool, shell: Any, endpoint: FakeEndpoint, capsys: Any) -> None:
    flag = " --no-history" if no_history else ""
    watcher = _interrupt_when_streaming(endpoint)
    shell.run_cell(f"%%chat -m long/tokens=400,delay=0.02{flag}\nhi")
    watcher.join()
    out = capsys.readouterr().out
    (line,) = [line for line in out.splitlines() if "ReplyInterrupted" in line]
    if no_history:
        assert "history" not in line.replace("--no-history", "") and "kept in the cell" in line
    else:
        assert "kept in the cell and the history" in line


def test_a_refusal_shows_in_the_history_transcript(shell: Any, endpoint: FakeEndpoint,
                                                   capsys: Any) -> None:
    shell.run_cell("%%chat -m refusal\nhow do I pick a lock?")
    magics = shell.magics_manager.registry["ChatMagics"]
    conv = magics.session.notebook.get("default")
    refusal = conv.turns[-1].meta.get("refusal")
    assert refusal  # the endpoint refused, and the history kept it
    capsys.readouterr()
    shell.run_line_magic("chat_history", "show")  # a terminal shows the plain text
    assert f"assistant [1] refused:\n{refusal}" in capsys.readouterr().out
    from chatmagic.shell.cmd.history import transcript

    shown = transcript(conv)
    assert "<b>assistant [1] refused:</b>" in shown
    assert f'<div class="cm-refusal"><p>{html.escape(refusal, quote=False)}</p>' in shown


def test_the_terminal_transcript_marks_incomplete_replies(shell: Any, endpoint: FakeEndpoint,
                                                          capsys: Any) -> None:
    shell.run_cell("%%chat -m error-midstream/after=2\nalpha beta gamma delta")
    capsys.readouterr()
    shell.run_line_magic("chat_history", "show")
    out = capsys.readouterr().out
    assert "assistant [1]:\nalpha beta" in out and "⚠ incomplete: " in out
    assert "error-midstream" in out  # the model, under the reply


def test_errors_follow_the_shells_colours(shell: Any, capsys: Any,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shell, "colors", "linux")
    shell.run_cell("%%chat -m server-error\nhi")
    assert "\x1b[0;31mRequestFailed" in capsys.readouterr().out
    monkeypatch.setattr(shell, "colors", "nocolor")
    shell.run_cell("%%chat -m server-error\nhi")
    out = capsys.readouterr().out
    assert "RequestFailed: " in out and "\x1b[" not in out
