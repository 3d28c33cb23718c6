"""Side by side: one prompt to several models at once; keep one reply."""

from __future__ import annotations

import re
from typing import Any

import pytest
from IPython.core.error import UsageError

import chatmagic
from chatmagic.testing import FakeEndpoint


def test_compare_out_dict_and_history_unchanged_until_kept(shell: Any,
                                                           endpoint: FakeEndpoint) -> None:
    shell.run_cell_magic("chat", "-m echo", "before")
    shell.run_cell_magic("chat", "--compare echo,markdown -o out", "which?")
    assert set(shell.user_ns["out"]) == {"echo", "markdown"}
    assert shell.user_ns["out"]["echo"] == "which?"
    bodies = [r.body for r in endpoint.chat_requests[-2:]]
    assert all(b["messages"][:2] == [{"role": "user", "content": "before"},
                                     {"role": "assistant", "content": "before"}] for b in bodies)
    assert len(chatmagic.history()) == 2  # unchanged until a reply is kept
    shell.run_line_magic("chat_history", "keep markdown")
    assert chatmagic.history()[-2:] == [
        {"role": "user", "content": "which?"},
        {"role": "assistant", "content": shell.user_ns["out"]["markdown"]}]


def test_keep_by_number_after_n_choices(shell: Any, endpoint: FakeEndpoint) -> None:
    shell.run_cell_magic("chat", "-m echo -n 3 -o outs", "pick")
    assert shell.user_ns["outs"] == [f"pick (choice {i})" for i in range(3)]
    assert chatmagic.history()[-1]["content"] == "pick (choice 0)"  # choice 0 by default
    shell.run_line_magic("chat_history", "keep 3")
    assert chatmagic.history()[-1]["content"] == "pick (choice 2)"
    assert len(chatmagic.history()) == 2


def test_keep_is_of_the_last_cell_only(shell: Any, endpoint: FakeEndpoint) -> None:
    shell.run_cell_magic("chat", "-m echo -n 2", "first")
    shell.run_cell_magic("chat", "-m echo", "second")
    with pytest.raises(UsageError, match="nothing to keep"):
        shell.run_line_magic("chat_history", "keep 2")  # not the older cell's choice 1
    assert [m["content"] for m in chatmagic.history()] == [
        "first", "first (choice 0)", "second", "second"]


def test_the_terminal_prints_each_choice_with_its_own_header_and_footer(
        shell: Any, endpoint: FakeEndpoint, capsys: Any) -> None:
    shell.run_cell_magic("chat", "-m echo/via=litellm -n 2 -o outs", "pick one")
    out = capsys.readouterr().out
    (head0, text0, foot0), (head1, text1, foot1) = _blocks(out)
    assert head0.startswith("echo/via=litellm · choice 0 · ")
    assert head1.startswith("echo/via=litellm · choice 1 · ")  # not "choice 0 · choice 1"
    assert (text0, text1) == ("pick one (choice 0)", "pick one (choice 1)")
    assert foot0.startswith("finished · ") and "incomplete" not in foot0
    assert foot1.startswith("incomplete: no finish reason · ")
    assert shell.user_ns["outs"] == ["pick one (choice 0)", "pick one (choice 1)"]


def test_the_history_records_choice_0_as_it_finished(shell: Any, endpoint: FakeEndpoint,
                                                     capsys: Any) -> None:
    shell.run_cell_magic("chat", "-m echo/via=litellm -n 2", "pick one")
    (turn,) = _turns()
    assert turn.assistant["content"] == "pick one (choice 0)"
    assert turn.meta["finish_reason"] == "stop" and "incomplete" not in turn.meta
    shell.run_line_magic("chat_history", "keep 2")  # the one that did not finish
    (kept,) = _turns()
    assert kept.assistant["content"] == "pick one (choice 1)"
    assert kept.meta["incomplete"] and kept.meta["error"] == "no finish reason"


def test_a_server_that_ignores_n_is_said_to(shell: Any, endpoint: FakeEndpoint,
                                            capsys: Any) -> None:
    shell.run_cell_magic("chat", "-m echo/choices=1 -n 2 -o outs", "pick one")
    out = capsys.readouterr().out
    ((_, text, footer),) = _blocks(out)
    assert text == "pick one" and shell.user_ns["outs"] == ["pick one"]
    assert footer.startswith("finished · ")
    assert footer.endswith(" · asked for 2 choices, the endpoint sent 1")
    shell.run_cell_magic("chat", "-m echo -n 2", "both")  # all sent: nothing said
    assert "asked for" not in capsys.readouterr().out


def _turns() -> list[Any]:
    import chatmagic

    return list(chatmagic._magics.session.notebook.get("default").turns)


def _blocks(out: str) -> list[tuple[str, str, str]]:
    """What a terminal printed for a cell, as (header, text, footer) per choice."""
    return re.findall(r"\[([^\]\n]*\(127[^\]\n]*\))\]\n(.*?)\n\[([^\]\n]*)\]", out, re.DOTALL)


def test_one_failure_does_not_stop_the_others(shell: Any, endpoint: FakeEndpoint,
                                              capsys: Any) -> None:
    result = shell.run_cell(
        "%%chat --compare echo,error-midstream/after=2,nosuch -o out\none two three four")
    out = capsys.readouterr().out
    assert result.success  # a compare cell fails only when every model failed
    assert shell.user_ns["out"]["echo"] == "one two three four"
    assert shell.user_ns["out"]["error-midstream/after=2"] == "one two "
    assert "upstream model crashed mid-stream" in out and "does not exist" in out


def test_all_failing_compare_is_an_error(shell: Any, endpoint: FakeEndpoint) -> None:
    assert not shell.run_cell("%%chat --compare nosuch,server-error\nhi").success


@pytest.mark.parametrize("line, words", [
    ("--compare echo", "at least two models"),
    ("--compare echo,,markdown", "empty entry"),
    ("--compare nowhere:echo,echo", "nowhere:echo"),
])
def test_bad_compare_refused_before_sending(shell: Any, endpoint: FakeEndpoint, line: str,
                                            words: str) -> None:
    if words == "nowhere:echo":  # not a profile: the whole string is a model id, sent as is
        shell.run_cell_magic("chat", line, "p")
        sent = sorted(r.body["model"] for r in endpoint.chat_requests)  # in either order
        assert sent == ["echo", "nowhere:echo"]
        return
    with pytest.raises(UsageError, match=words):
        shell.run_cell_magic("chat", line, "p")
    assert endpoint.chat_requests == []


def test_too_many_models_refused_with_the_setting_named(shell: Any,
                                                        endpoint: FakeEndpoint) -> None:
    with pytest.raises(UsageError, match="max_compare"):
        shell.run_cell_magic("chat", "--compare " + ",".join(["echo"] * 9), "p")


@pytest.mark.paced
def test_streams_run_at_the_same_time(endpoint: FakeEndpoint, clean_env: Any,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", endpoint.base_url)
    chatmagic._magics = None
    monkeypatch.setattr("chatmagic.engine.session._current", None)
    model = "long/tokens=20,delay=0.05"
    replies = chatmagic.compare("go", models=[model] * 4, no_history=True)
    assert [r.text().split()[-1] for r in replies.values()] == ["w19"] * 4
    assert endpoint.max_in_flight == 4  # all four streamed at once, none after another
    assert set(replies) == {model, f"{model}#2", f"{model}#3", f"{model}#4"}
