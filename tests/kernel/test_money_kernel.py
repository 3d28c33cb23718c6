"""Money in a real kernel: the footer's totals, --remote, and prices that refuse loading."""

from __future__ import annotations

from pathlib import Path

import pytest

from cells import PRICES, echo_cost, write_prices
from chatmagic.core.pricing import money
from chatmagic.testing import FakeEndpoint
from kernel import outputs, run_cells, visible


def test_bad_prices_refuse_loading_the_extension_with_one_message(
        clean_env: Path, endpoint: FakeEndpoint) -> None:
    (clean_env / "chatmagic.toml").write_text(
        '[prices]\n"m" = { input = 1, output = 2, currency = "dollars" }\n', encoding="utf-8")
    nb = run_cells(["%load_ext chatmagic"], cwd=str(clean_env))
    text = "".join(o.get("evalue", "") + o.get("text", "") for o in nb.cells[0].outputs)
    assert "chatmagic.toml, line 2" in text and "'dollars' is not a currency" in text


def test_kernel_footer_totals_and_remote(endpoint: FakeEndpoint, clean_env: Path) -> None:
    write_prices(clean_env, endpoint.base_url, PRICES + '\n[profiles.gw]\nbase_url = "'
                 + endpoint.gateway_url("openrouter") + '"\n')
    nb = run_cells(["%load_ext chatmagic", "%%chat -m echo/cached=4\none two three",
                    "%%chat -m priced/cost=0.5\none two",
                    "%chat_usage -o rows\nprint(rows[0]['cost_USD'])",
                    "%chat_usage --remote -p gw"], cwd=str(clean_env))
    first = visible("".join(outputs(nb.cells[1])))
    assert money(echo_cost(6, 4, 3), "USD") in first
    assert "0.5 USD" in visible("".join(outputs(nb.cells[2])))
    printed = "".join(o.get("text", "") for o in nb.cells[3].outputs)
    assert float(printed.split()[-1]) == pytest.approx(echo_cost(6, 4, 3) + 0.5)
    remote = visible("".join(outputs(nb.cells[4])))
    assert "answered by OpenRouter key" in remote and "6.5" in remote


@pytest.mark.parametrize("toml", [
    '[prices]\n"echo" = { input = -1, output = 1 }\n',
    '[profiles.zoo]\nmodel = "x"\n',
    '[prices\n',
])
def test_a_bad_configuration_is_one_message_at_load(clean_env: Path, toml: str) -> None:
    # %load_ext with a chatmagic.toml it cannot use: one line naming the file, no traceback;
    # fixed, the next %load_ext loads.
    from kernel import errors, run_cells

    (clean_env / "chatmagic.toml").write_text(toml)
    nb = run_cells(["%load_ext chatmagic",
                    "import pathlib; pathlib.Path('chatmagic.toml').unlink()",
                    "%load_ext chatmagic", "%chat_config show"], cwd=str(clean_env))
    # IPython shows a UsageError as one line on stderr
    (said,) = [o["text"] for o in nb.cells[0].outputs]
    assert said.startswith("UsageError: chatmagic is not loaded: ") and "chatmagic.toml" in said
    assert said.strip().endswith("run %load_ext chatmagic again.") and said.count("\n") == 1
    assert not errors(nb.cells[0]) and not errors(nb.cells[2]) and not errors(nb.cells[3])
    assert "profile" in "".join(o.get("data", {}).get("text/plain", "")
                                for o in nb.cells[3].outputs)
