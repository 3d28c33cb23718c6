"""``-n`` on servers that do it their own way: LiteLLM's proxy streams the later choices
without their finish chunk; llama-cpp-python's server ignores ``n`` and sends one choice.
Each choice is judged by its own chunks, and fewer choices than asked is said."""

from __future__ import annotations

from pathlib import Path

from realenv import SAMPLING
from test_real_servers import ENDED, footers, ok, run, shown, values

ASKED = "asked for 2 choices, the endpoint sent "


def seen(cell: object) -> str:
    return "\n".join(shown(o.get("data", {})) for o in cell.outputs)  # type: ignore[attr-defined]


def test_n_2_through_litellm_ends_choice_0_as_it_ended(real: Path) -> None:
    nb = run(real, [f"%%chat -p lite -n 2 {SAMPLING} --max-tokens 8\nName three colours.",
                    "%chat_history export -o h\nprint(repr(h[-1]['content']))"])
    ok(nb)
    ends = footers(nb.cells[1])
    # Choice 0 got its finish chunk: it ended, whatever the later choices' chunks did
    # (before, every column said "incomplete: no finish reason").
    assert ends and ends[0].startswith(ENDED), ends
    if len(ends) == 1:  # the proxy passed on one choice: said, not silent
        assert ASKED + "1" in seen(nb.cells[1]), seen(nb.cells[1])
    # The history holds choice 0, with its text.
    assert values(nb.cells[2]).strip()


def test_a_server_that_ignores_n_is_said_to(real: Path) -> None:
    nb = run(real, [f"%%chat -p llama -n 2 {SAMPLING} --max-tokens 8\nName three colours."])
    ok(nb)
    ends = footers(nb.cells[1])
    assert len(ends) == 1 and ends[0].startswith(ENDED), ends  # one choice came, and ended
    assert ASKED + "1" in seen(nb.cells[1]), seen(nb.cells[1])
