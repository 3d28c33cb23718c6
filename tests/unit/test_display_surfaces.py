"""The plain-text surfaces a terminal or a notebook's text/plain shows: the --each table,
the --compare grid, an export, a failed cell's message. What the model or the endpoint sent
is shown with every control and bidirectional control as its escape (`core.visible`)."""

from __future__ import annotations

from typing import Any

import pytest
from IPython.core.error import UsageError

from chatmagic.core.errors import RequestFailed
from chatmagic.core.events import TextDelta
from chatmagic.engine.reply import Reply
from chatmagic.shell.sinks.columns import static_grid
from chatmagic.testing import FakeEndpoint

HOSTILE = "evil \u202eab\u202c and \x1b[2J clear"


def _raw(text: str) -> bool:
    return "\u202e" in text or "\x1b[2J" in text


def test_the_each_table_in_a_terminal_shows_the_models_text_escaped(
        shell: Any, endpoint: FakeEndpoint, capsys: pytest.CaptureFixture[str]) -> None:
    shell.user_ns["rows"] = [HOSTILE]
    shell.run_cell_magic("chat", "-m echo --each rows", "{item}")
    out = capsys.readouterr().out
    assert not _raw(out) and "evil \\u202eab" in out


def test_the_compare_grids_plain_text_shows_labels_and_text_escaped() -> None:
    reply = Reply("echo\u202e", "local", "http://127.0.0.1:1/v1")
    reply.feed(TextDelta(HOSTILE))
    plain = static_grid([("echo\u202e", reply, 0)])["text/plain"]
    assert not _raw(plain) and "== echo\\u202e ==" in plain and "\\x1b[2J" in plain


def test_an_export_shown_is_escaped_and_the_value_kept(
        shell: Any, endpoint: FakeEndpoint, capsys: pytest.CaptureFixture[str]) -> None:
    shell.run_cell_magic("chat", "-m echo", HOSTILE)
    capsys.readouterr()
    for fmt in ("json", "jsonl", "markdown"):
        shell.run_line_magic("chat_history", f"export --format {fmt}")
        out = capsys.readouterr().out
        assert not _raw(out) and "\\u202e" in out, fmt
    shell.run_line_magic("chat_history", "export -o h")
    assert shell.user_ns["h"][0]["content"] == HOSTILE  # the data is the model's, unchanged


def test_a_failed_cells_message_shows_the_listed_ids_escaped(
        shell: Any, endpoint: FakeEndpoint) -> None:
    endpoint.listed = [{"id": "echo\u202eevil"}, {"id": "ec\nho"}, {"id": "echo"}]
    with pytest.raises(RequestFailed) as failed:
        shell.run_cell_magic("chat", "-m ehco\u202e", "hi")
    said = str(failed.value)
    assert "Did you mean" in said and "ec\\nho" in said  # a line end in an id, as its escape
    assert "\n" not in said and "\u202e" not in said and "ehco\\u202e" in said


def test_models_skips_an_entry_that_is_no_model(
        shell: Any, endpoint: FakeEndpoint, capsys: pytest.CaptureFixture[str]) -> None:
    endpoint.listed = [{"id": "ok"}, "string-entry", None, ["list"]]
    shell.run_line_magic("models", "--refresh -o rows")
    assert [r["id"] for r in shell.user_ns["rows"]] == ["ok"]


def test_a_loaded_turn_shows_no_empty_facts(
        shell: Any, endpoint: FakeEndpoint, capsys: pytest.CaptureFixture[str],
        tmp_path: Any) -> None:
    import json

    (tmp_path / "h.json").write_text(json.dumps([{"role": "user", "content": "q"},
                                                  {"role": "assistant", "content": "a"}]))
    shell.run_line_magic("chat_history", f"load {tmp_path / 'h.json'}")
    capsys.readouterr()
    shell.run_line_magic("chat_history", "show")
    out = capsys.readouterr().out
    assert "assistant" in out and "()" not in out
