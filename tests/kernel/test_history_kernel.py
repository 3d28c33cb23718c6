"""Conversations in a real kernel: export, a restart, a headless kernel."""

from __future__ import annotations

import json
from pathlib import Path


from chatmagic.testing import FakeEndpoint
from kernel import outputs, run_cells
from openapi import errors as schema_errors


def test_export_is_exactly_the_messages_and_valid(endpoint: FakeEndpoint, clean_env: Path) -> None:
    nb = run_cells(["%load_ext chatmagic",
                    "%%chat -m echo -s 'You are terse.'\nfirst",
                    "%%chat -m echo\nsecond",
                    "%chat_history export -o m\nimport json; print(json.dumps(m))"],
                   env={"OPENAI_BASE_URL": endpoint.base_url}, allow_errors=False)
    messages = json.loads("".join(outputs(nb.cells[3], "text/plain")))
    assert messages == [{"role": "system", "content": "You are terse."},
                        {"role": "user", "content": "first"},
                        {"role": "assistant", "content": "first"},
                        {"role": "user", "content": "second"},
                        {"role": "assistant", "content": "second"}]
    for message in messages:
        assert not schema_errors(message, "ChatCompletionRequestMessage")


def test_restart_restores_per_notebook(endpoint: FakeEndpoint, clean_env: Path) -> None:
    env = {"OPENAI_BASE_URL": endpoint.base_url, "JPY_SESSION_NAME": str(clean_env / "a.ipynb"),
           "CHATMAGIC_HISTORY_DIR": str(clean_env / "store")}
    run_cells(["%load_ext chatmagic", "%%chat -m echo\nremember otters"], env=env,
              allow_errors=False)
    nb = run_cells(["%load_ext chatmagic",
                    "from chatmagic import history; print(history())"], env=env,
                   allow_errors=False)
    assert "remember otters" in "".join(outputs(nb.cells[1], "text/plain"))
    other = {**env, "JPY_SESSION_NAME": str(clean_env / "b.ipynb")}
    nb = run_cells(["%load_ext chatmagic", "%chat_history list"], env=other, allow_errors=False)
    assert "No conversations yet" in "".join(outputs(nb.cells[1]))
    stored = "".join(p.read_text() for p in (clean_env / "store").glob("*.jsonl"))
    assert "remember otters" in stored and "authorization" not in stored.lower()


def test_headless_kernel_keeps_history_in_memory_only(endpoint: FakeEndpoint,
                                                      clean_env: Path) -> None:
    env = {"OPENAI_BASE_URL": endpoint.base_url, "CHATMAGIC_HISTORY_DIR": str(clean_env / "s")}
    run_cells(["%load_ext chatmagic", "%%chat -m echo\nonce"], env=env, allow_errors=False)
    assert not (clean_env / "s").exists()
    run_cells(["%load_ext chatmagic", "%chat_config set notebook=report",
               "%%chat -m echo\nnamed"], env=env, allow_errors=False)
    assert len(list((clean_env / "s").glob("report-*.jsonl"))) == 1
