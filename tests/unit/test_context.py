"""Notebook context in prompts: {Err} from a real shell's and kernel's cells, cut fields."""

from __future__ import annotations

from typing import Any

import pytest

from chatmagic.core.context import ERROR_CHARS, ErrorLog, describe_error
from chatmagic.testing import FakeEndpoint


def _prompt(endpoint: FakeEndpoint) -> str:
    return str(endpoint.last_body["messages"][-1]["content"])


def _raise(exc: BaseException) -> BaseException:
    try:
        raise exc
    except BaseException as caught:  # noqa: BLE001 - caught to be described
        return caught


def test_an_error_is_its_type_message_and_traceback_without_colour() -> None:
    def inner() -> None:
        raise ValueError("\x1b[31mred\x1b[0m value")

    try:
        try:
            inner()
        except ValueError as exc:
            raise RuntimeError("while handling") from exc
    except RuntimeError as exc:
        text = describe_error(exc)
    assert text.startswith("RuntimeError: while handling\n\nTraceback (most recent call last):")
    assert "ValueError: red value" in text and "in inner" in text
    assert "direct cause" in text and "\x1b[" not in text


def test_a_long_error_is_cut_keeping_its_type_start_and_end() -> None:
    text = describe_error(_raise(ValueError("start " + "x" * 20_000 + " end")))
    assert len(text) < ERROR_CHARS + 500
    assert text.startswith("ValueError: start xxx") and text.endswith(" end")
    assert "characters of the traceback cut" in text


def test_the_hook_keeps_errors_by_execution_count(shell: Any, endpoint: FakeEndpoint) -> None:
    first = shell.run_cell("1/0", store_history=True)
    shell.run_cell("x = 1", store_history=True)
    second = shell.run_cell("def f():\n    return {}['missing']\nf()", store_history=True)
    broken = shell.run_cell("def (:", store_history=True)  # a SyntaxError, before running
    import chatmagic

    log: ErrorLog = chatmagic._magics.errors
    assert log.cells() == [first.execution_count, second.execution_count,
                           broken.execution_count]
    shell.run_cell_magic("chat", "-m echo", f"explain {{Err[{first.execution_count}]}}")
    sent = _prompt(endpoint)
    assert f"Cell In[{first.execution_count}] raised ZeroDivisionError: division by zero" \
        in sent and "1/0" in sent and "KeyError" not in sent
    assert "interactiveshell.py" not in sent and "\x1b[" not in sent  # IPython's frames: none
    shell.run_cell_magic("chat", "-m echo", f"{{Err[{second.execution_count}]}}")
    assert "KeyError: 'missing'" in _prompt(endpoint) and "in f" in _prompt(endpoint)
    shell.run_cell_magic("chat", "-m echo", "and {Err}")
    assert "SyntaxError" in _prompt(endpoint)


def test_chatmagics_own_failures_do_not_hide_the_error(shell: Any,
                                                       endpoint: FakeEndpoint) -> None:
    shell.run_cell("[][3]", store_history=True)
    refused = shell.run_cell("%%chat --no-such-option\nhi", store_history=True)
    failed = shell.run_cell("%%chat -m error-midstream/after=2\nalpha beta gamma delta",
                            store_history=True)
    assert refused.error_in_exec is not None and failed.error_in_exec is not None
    shell.run_cell_magic("chat", "-m echo", "{Err}")
    assert "IndexError: list index out of range" in _prompt(endpoint)


def test_err_before_any_error_is_refused_and_nothing_is_sent(shell: Any,
                                                             endpoint: FakeEndpoint) -> None:
    sent = len(endpoint.chat_requests)
    result = shell.run_cell("%%chat -m echo\nwhat went wrong? {Err}", store_history=True)
    assert "no cell has raised an error yet" in str(result.error_in_exec)
    assert len(endpoint.chat_requests) == sent


def test_unload_removes_the_hook(shell: Any) -> None:
    import chatmagic

    log: ErrorLog = chatmagic._magics.errors
    hooks = shell.events.callbacks["post_run_cell"]
    assert log.record in hooks
    chatmagic.unload_ipython_extension(shell)
    assert log.record not in hooks
    shell.run_cell("1/0", store_history=True)
    assert len(log) == 0
    chatmagic.load_ipython_extension(shell)
    assert [h for h in hooks if getattr(h, "__self__", None).__class__ is ErrorLog] == \
        [chatmagic._magics.errors.record]  # loaded again: one hook, not two


def test_a_cut_field_is_noted_before_the_reply(shell: Any, endpoint: FakeEndpoint,
                                               capsys: Any) -> None:
    shell.run_line_magic("chat_config", "set max_field_chars=100")
    shell.user_ns["log_text"] = "line of a log\n" * 500
    shell.run_cell_magic("chat", "-m echo", "summarise {log_text}")
    out = capsys.readouterr().out
    note = "note: {log_text} cut to 100 of 7,000 characters (max_field_chars)"
    assert note in out and out.index(note) < out.index("summarise line of a log")
    assert len(_prompt(endpoint)) < 200 and "[cut: 100 of 7,000 characters shown]" in \
        _prompt(endpoint)
    with pytest.raises(Exception, match="max_field_chars must be 0"):
        shell.run_line_magic("chat_config", "set max_field_chars=-1")


