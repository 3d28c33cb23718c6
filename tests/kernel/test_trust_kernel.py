"""Keys, trust and hostile files in a real kernel: nothing leaks to an output, a notebook, the
journal or a log."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from hostile import HostileEndpoint
from kernel import run_cells

LOAD_CASES = {
    "types.json": json.dumps([{"role": "user", "content": [{"type": "text", "text": 7}]}]),
    "huge.json": json.dumps([{"role": "user", "content": "x"}] * 20_001),
    "deep.json": "[" * 100_000 + "]" * 100_000,
}


KEY = "sk-hostile-ABCDEFGHIJKLMNOP123456"


def _history_cells(clean_env: Path, names: list[str], after: list[str]) -> Any:
    from chatmagic.testing import FakeEndpoint

    for name in names:
        (clean_env / name).write_text(LOAD_CASES[name])
    with FakeEndpoint() as endpoint:
        cells = ["%load_ext chatmagic", "%%chat -m echo\nkeep me"]
        cells += [f"%chat_history load {name}" for name in names]
        cells += ["%chat_history export -o h\nprint(h)", *after]
        return run_cells(cells, env={"OPENAI_BASE_URL": endpoint.base_url}, cwd=str(clean_env))


def _one_clear_error(cell: Any, words: str) -> None:
    """One message (IPython prints a UsageError on stderr, other errors as an error output)."""
    shown = [o.get("evalue") or o.get("text", "") for o in cell.outputs
             if o.get("output_type") == "error" or o.get("name") == "stderr"]
    assert len(shown) == 1 and words in shown[0], cell.outputs
    assert all(len(o.get("traceback", [])) <= 1 for o in cell.outputs)
    assert "Traceback" not in json.dumps(cell.outputs) and "RecursionError" not in shown[0]


@pytest.mark.kernel
def test_key_echoed_by_a_hostile_endpoint_is_in_no_output_notebook_journal_or_log(
        clean_env: Path) -> None:
    store = clean_env / "store"
    log = clean_env / "debug.log"
    with HostileEndpoint() as endpoint:
        nb = run_cells([
            "%load_ext chatmagic",
            f"import logging; logging.basicConfig(filename={str(log)!r}, level=logging.DEBUG)",
            "%chat_config set notebook=hostile",
            "%%chat -m echo-key\nhello", "%%chat -m gzip-key\nhello",
            "%%chat -m stream-key\nhello", "%%chat -m spread-key\nagain",
            "%chat_history show", "%chat_history export",
            "%chat_history save saved.json"],
            env={"OPENAI_BASE_URL": endpoint.base_url, "OPENAI_API_KEY": KEY,
                 "CHATMAGIC_HISTORY_DIR": str(store)}, cwd=str(clean_env))
        assert endpoint.received[0].headers["authorization"] == f"Bearer {KEY}"
    # A key spread over many deltas is only found in the assembled text, which the
    # stream layer draws as it comes (not this edge); the history holds it masked.
    cells = [c for i, c in enumerate(nb.cells) if i != 6]
    dumped = json.dumps(cells, ensure_ascii=False)
    assert "Incorrect API key provided: Bearer sk-…456" in dumped  # the error was shown
    assert "your key is sk-…456" in dumped
    assert KEY not in dumped and KEY[-10:] not in dumped
    journals = [p for p in store.rglob("*") if p.is_file()]
    stored = "".join(p.read_text() for p in journals)
    assert "hello" in stored and KEY not in stored and KEY[-10:] not in stored
    assert journals and all(p.stat().st_mode & 0o777 == 0o600 for p in journals)
    assert KEY not in (clean_env / "saved.json").read_text()
    assert log.exists() and KEY not in log.read_text()


@pytest.mark.kernel
def test_a_working_dir_file_pointing_a_preset_key_elsewhere_sends_nothing_without_consent(
        clean_env: Path) -> None:
    with HostileEndpoint() as endpoint:
        (clean_env / "chatmagic.toml").write_text(
            f'default_profile = "openai"\n[profiles.openai]\nbase_url = "{endpoint.base_url}"\n')
        nb = run_cells(["%load_ext chatmagic", "%%chat -m ok\nthe secret conversation",
                        "%models", "%chat_config trust",
                        "%%chat -m ok\nnow with consent"],
                       env={"OPENAI_API_KEY": KEY}, cwd=str(clean_env))
        bodies = [r.body for r in endpoint.received]
    refused = json.dumps(nb.cells[1].outputs + nb.cells[2].outputs, ensure_ascii=False)
    for words in ("chatmagic.toml", endpoint.base_url.split("//")[1].split("/")[0],
                  "OPENAI_API_KEY", "Nothing was sent", "%chat_config trust"):
        assert words in refused
    assert "Traceback" not in refused and KEY not in refused
    assert len(bodies) == 1 and b"now with consent" in bodies[0]  # only after consent


@pytest.mark.kernel
def test_hostile_history_files_give_one_clear_error_and_leave_the_conversation(
        clean_env: Path) -> None:
    names = ["types.json", "huge.json"]
    nb = _history_cells(clean_env, names, ["%chat_history show"])
    _one_clear_error(nb.cells[2], "message 0 (role='user') has a text part whose text is not")
    _one_clear_error(nb.cells[3], "20001 messages; the limit is 20000")
    printed = "".join(o.get("text", "") for o in nb.cells[4].outputs)
    assert "keep me" in printed and printed.count("'role'") == 2  # untouched
    assert not [o for o in nb.cells[5].outputs if o.get("output_type") == "error"]


@pytest.mark.kernel
def test_deep_files_and_saves_through_history_view(clean_env: Path) -> None:
    nb = _history_cells(clean_env, ["deep.json"], [
        "%chat_history save saved.json", "%chat_history save no/such/dir/saved.json"])
    _one_clear_error(nb.cells[2], "nests too deep")
    assert "keep me" in "".join(o.get("text", "") for o in nb.cells[3].outputs)
    assert (clean_env / "saved.json").stat().st_mode & 0o777 == 0o600
    _one_clear_error(nb.cells[5], "does not exist; create it first")


@pytest.mark.kernel
def test_a_huge_error_with_ansi_escapes_is_one_short_clean_line(clean_env: Path) -> None:
    with HostileEndpoint() as endpoint:
        nb = run_cells(["%load_ext chatmagic", "%%chat -m huge-error\nhi"],
                       env={"OPENAI_BASE_URL": endpoint.base_url}, cwd=str(clean_env))
    shown = json.dumps(nb.cells[1].outputs, ensure_ascii=False)
    assert len(shown) < 20_000  # the server sent 5 MB
    assert "[32m" not in shown and "all good" in shown  # its words, without its colours
    assert "more characters cut" in shown
