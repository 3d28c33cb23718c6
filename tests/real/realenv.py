"""Where the real servers are (from `scripts/real-servers run`) and helpers the tests share."""

from __future__ import annotations

import os
from typing import Any

LLAMA_URL = os.environ.get("CHATMAGIC_REAL_LLAMA_URL", "")
LITELLM_URL = os.environ.get("CHATMAGIC_REAL_LITELLM_URL", "")
LITELLM_KEY = os.environ.get("CHATMAGIC_REAL_LITELLM_KEY", "")
#: llama-cpp-python's server again, with --chat_format chatml-function-calling (tools).
LLAMA_TOOLS_URL = os.environ.get("CHATMAGIC_REAL_LLAMA_TOOLS_URL", "")
#: llama.cpp's own server (llama-server, from the xllamacpp wheel), with this many slots.
LLAMACPP_URL = os.environ.get("CHATMAGIC_REAL_LLAMACPP_URL", "")
LLAMACPP_SLOTS = int(os.environ.get("CHATMAGIC_REAL_LLAMACPP_SLOTS", "2"))
N_CTX = int(os.environ.get("CHATMAGIC_REAL_N_CTX", "2048"))
WRONG_KEY = "sk-wrong-" + "7" * 24  # a key LiteLLM never issued

# Deterministic sampling and short replies: a tiny model's words vary with everything, so the
# tests look at structure (text arrived, why it ended, the footer, the error) not at words.
SAMPLING = "-t 0 --seed 7"


def all_text(nb: Any) -> str:
    """Every output of every cell as one string (to look for what must never show)."""
    import json

    return json.dumps([cell.get("outputs", []) for cell in nb.cells])


def assert_no_key(nb: Any) -> None:
    text = all_text(nb)
    assert LITELLM_KEY not in text and WRONG_KEY not in text
