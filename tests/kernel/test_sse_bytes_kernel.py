"""Bytes a kernel must show and keep: a lone surrogate."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chatmagic.testing import FakeEndpoint


@pytest.mark.kernel
def test_a_lone_surrogate_is_shown_and_kept_in_a_kernel(endpoint: FakeEndpoint,
                                                         clean_env: Any) -> None:
    from kernel import outputs, run_cells

    nb = run_cells(["%load_ext chatmagic", "%%chat -m surrogate\nx",
                    "%chat_history export -o h\nprint(repr(h[-1]['content']))"],
                   env={"OPENAI_BASE_URL": endpoint.base_url}, allow_errors=False)
    assert "lone \ufffd surrogate" in json.dumps(nb.cells[1].outputs, ensure_ascii=False)
    assert repr("lone \ufffd surrogate") in "".join(outputs(nb.cells[2], "text/plain"))
