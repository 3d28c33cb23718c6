"""What an endpoint says of its models, shown in a real kernel before the reply."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chatmagic.testing import FakeEndpoint


# A 1x1 PNG: an image part without a file or a network fetch.
PIXEL = ("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"
         "+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")


LONG = " ".join(f"word{i}" for i in range(800))  # about 1,400 tokens by the estimate


@pytest.mark.kernel
def test_a_kernel_cell_shows_the_warning_before_the_reply(endpoint: FakeEndpoint,
                                                          clean_env: Path) -> None:
    from kernel import run_cells

    nb = run_cells(["%load_ext chatmagic", f"%%chat -m text-only -i {PIXEL}\nwhat is this?",
                    "p = " + repr(LONG), "%%chat -m small-context --no-history\n{p}"],
                   env={"OPENAI_BASE_URL": endpoint.base_url}, allow_errors=False)
    for index, words, asked in ((1, "may not see the image", "what is this?"),
                                (3, "more than its context of 600", LONG[:40])):
        outputs = nb.cells[index].outputs
        (warning,) = [o for o in outputs if o.get("name") == "stderr"]
        assert words in warning["text"] and warning["text"].startswith("warning: ")
        assert outputs.index(warning) < len(outputs) - 1  # the reply follows it
        assert asked in json.dumps(outputs, ensure_ascii=False)  # the reply (echo) came
