"""Money: a reply's cost (the endpoint's figure, the price table, chatmagic.toml), where it is
shown (footer, %chat_usage, history, Response.cost), the account as gateways report it
(%chat_usage --remote) and the budget guard. A real IPython shell and kernel, the real SDK,
real HTTP to FakeEndpoint; the pricing core also on its own."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Iterator

import pytest
from IPython.core.error import UsageError

from chatmagic.core.errors import OptionError, ProfileError
from chatmagic.core.events import Usage
from chatmagic.core.pricing import (Cost, Estimate, Pricer, PriceBook, check_budget, estimate_cost,
                               money)
from chatmagic.core.profiles import Profiles
from chatmagic.money.account import NEW_API_QUOTA_PER_USD
from chatmagic.testing import GATEWAYS, FakeEndpoint
from cells import echo_cost, write_prices


@pytest.fixture
def money_shell(endpoint: FakeEndpoint, clean_env: Path) -> Iterator[Any]:
    """A real shell with chatmagic loaded from a chatmagic.toml that prices the fake's models."""
    import chatmagic
    from IPython.testing.globalipapp import get_ipython

    write_prices(clean_env, endpoint.base_url)
    ip = get_ipython()
    chatmagic._magics = None
    chatmagic.load_ipython_extension(ip)
    yield ip
    chatmagic.unload_ipython_extension(ip)


def _footer(out: str) -> str:
    lines = [line for line in out.splitlines() if line.startswith("[") and "tokens" in line]
    assert lines, out
    return lines[-1]


# -- the footer, the totals, the history, Response.cost -------------------------------

def test_configured_prices_give_the_cost_in_footer_totals_and_history(
        money_shell: Any, capsys: Any) -> None:
    money_shell.run_cell_magic("chat", "-m echo/cached=4", "one two three")
    footer = _footer(capsys.readouterr().out)
    # The fake counts a prompt's words plus 3 a message: 6 in, 3 out, 4 of them cached.
    assert "6 → 3 tokens" in footer
    expected = echo_cost(6, 4, 3)
    assert money(expected, "USD") in footer and expected == pytest.approx(0.0324)
    money_shell.run_cell_magic("chat", "-m echo --no-history", "one two three")
    assert money(echo_cost(6, 0, 3), "USD") in _footer(capsys.readouterr().out)

    money_shell.run_line_magic("chat_usage", "-o rows")
    (row,) = money_shell.user_ns["rows"]
    assert row["requests"] == 2
    assert row["cost_USD"] == pytest.approx(echo_cost(6, 4, 3) + echo_cost(6, 0, 3))
    assert row["unpriced"] == 0
    shown = capsys.readouterr().out
    assert "cost USD" in shown and money(row["cost_USD"], "USD").split()[0] in shown

    import chatmagic
    turn = chatmagic._magics.session.notebook.get("default").turns[-1]
    assert turn.meta["cost"]["amount"] == pytest.approx(expected)
    assert turn.meta["cost"]["currency"] == "USD" and not turn.meta["cost"]["estimated"]
    assert turn.meta["cost"]["source"].endswith("chatmagic.toml")
    assert turn.meta["usage"]["cached_tokens"] == 4


def test_costs_sum_per_currency_and_a_known_zero_is_zero(money_shell: Any, capsys: Any) -> None:
    money_shell.run_cell_magic("chat", "-m long/tokens=10", "x")
    money_shell.run_cell_magic("chat", "-m markdown", "x")
    money_shell.run_cell_magic("chat", "-m echo --no-history", "a b")
    out = capsys.readouterr().out
    assert " CNY" in out and "0 USD" in out
    money_shell.run_line_magic("chat_usage", "--by model -o rows")
    rows = {r["model"]: r for r in money_shell.user_ns["rows"]}
    assert "cost_CNY" in rows["long/tokens=10"] and "cost_USD" not in rows["long/tokens=10"]
    assert rows["markdown"]["cost_USD"] == 0
    assert rows["echo"]["cost_USD"] == pytest.approx(echo_cost(5, 0, 2))
    table = capsys.readouterr().out
    assert "cost CNY" in table and "cost USD" in table


def test_the_endpoints_own_figure_is_used_as_is(money_shell: Any, capsys: Any) -> None:
    # [prices] says 1 a million tokens for "priced"; the endpoint's usage.cost wins.
    money_shell.run_cell_magic("chat", "-m priced/cost=0.5", "one two")
    assert "0.5 USD" in _footer(capsys.readouterr().out)
    # LiteLLM's header, on a reply without streaming (a stream's headers precede its cost).
    money_shell.run_cell_magic("chat", "-m long/tokens=5&cost_header=0.25 --no-stream", "x")
    assert "0.25 USD" in _footer(capsys.readouterr().out)
    money_shell.run_line_magic("chat_usage", "--by model -o rows")
    rows = {r["model"]: r for r in money_shell.user_ns["rows"]}
    assert rows["priced/cost=0.5"]["cost_USD"] == 0.5
    assert rows["long/tokens=5&cost_header=0.25"]["cost_USD"] == 0.25


def test_response_cost_in_the_python_api(money_shell: Any) -> None:
    import chatmagic

    response = chatmagic.prompt("one two three", model="fake:echo")
    assert isinstance(response.cost, Cost)
    assert response.cost.amount == pytest.approx(echo_cost(6, 0, 3))
    assert response.cost.currency == "USD" and float(response.cost) == response.cost.amount
    assert chatmagic.prompt("x", model="fake:reasoning").cost is None


def test_no_cost_is_shown_where_no_price_is_known(shell: Any, capsys: Any) -> None:
    # The shell fixture's endpoint: loopback, no table knows it, no chatmagic.toml.
    shell.run_cell_magic("chat", "-m echo", "one two three")
    shell.run_cell_magic("chat", "-m no-usage", "one two three")
    out = capsys.readouterr().out
    assert not re.search(r"\b(USD|CNY|EUR)\b|\$|cost", out), out
    shell.run_line_magic("chat_usage", "-o rows")
    (row,) = shell.user_ns["rows"]
    assert not [k for k in row if k.startswith("cost_")] and row["unpriced"] == 2
    shown = capsys.readouterr().out
    assert "2 requests with no known price" in shown and " 0 USD" not in shown
    # how to give one, said where it is needed (a wheel has no docs/ beside it)
    assert "[prices]" in shown and "`chatmagic docs money`" in shown
    import chatmagic
    assert "cost" not in chatmagic._magics.session.notebook.get("default").turns[-1].meta


def test_a_group_partly_priced_says_so(money_shell: Any, capsys: Any) -> None:
    money_shell.run_cell_magic("chat", "-m echo", "a b")
    money_shell.run_cell_magic("chat", "-m reasoning", "a b")
    capsys.readouterr()
    money_shell.run_line_magic("chat_usage", "")
    shown = capsys.readouterr().out
    assert "+" in shown and "1 request with no known price" in shown


# -- %chat_usage --remote ----------------------------------------------------------------

REMOTE = """
[profiles.oneapi]
base_url = "{one}"
[profiles.newapi]
base_url = "{new}"
[profiles.litellm]
base_url = "{lite}"
[profiles.openrouter]
base_url = "{router}"
[profiles.ds]
base_url = "{deep}"
[profiles.plain]
base_url = "{plain}"
[profiles.web]
base_url = "{web}"
[profiles.err200]
base_url = "{err}"
[profiles.nodb]
base_url = "{nodb}"
"""


@pytest.fixture
def remote_shell(endpoint: FakeEndpoint, clean_env: Path) -> Iterator[Any]:
    import chatmagic
    from IPython.testing.globalipapp import get_ipython

    g = endpoint.gateway_url
    (clean_env / "chatmagic.toml").write_text(REMOTE.format(
        one=g("one-api"), new=g("new-api"), lite=g("litellm"), router=g("openrouter"),
        deep=g("deepseek"), plain=endpoint.base_url, web=g("web"), err=g("error-200"),
        nodb=g("litellm-nodb")), encoding="utf-8")
    ip = get_ipython()
    chatmagic._magics = None
    chatmagic.load_ipython_extension(ip)
    yield ip
    chatmagic.unload_ipython_extension(ip)


def _remote(shell: Any, profile: str) -> dict[str, Any]:
    shell.run_line_magic("chat_usage", f"--remote -p {profile} -o acct")
    return shell.user_ns["acct"]  # type: ignore[no-any-return]


def test_remote_reads_each_gateways_figures(remote_shell: Any, capsys: Any) -> None:
    one = GATEWAYS["one-api"]
    acct = _remote(remote_shell, "oneapi")
    assert acct["source"] == "OpenAI-style billing"
    # one-api's usage is in cents: 1234 -> 12.34 used of 25.
    assert acct["lines"] == [{"currency": "USD", "limit": one["hard_limit_usd"],
                              "used": one["total_usage"] / 100,
                              "balance": pytest.approx(one["hard_limit_usd"]
                                                       - one["total_usage"] / 100)}]
    assert "answered by OpenAI-style billing" in capsys.readouterr().out

    new = GATEWAYS["new-api"]
    acct = _remote(remote_shell, "newapi")
    assert acct["route"].endswith("/api/usage/token")  # its own route, before its billing
    assert acct["lines"][0] == {"currency": "USD",
                                "balance": new["total_available"] / NEW_API_QUOTA_PER_USD,
                                "used": new["total_used"] / NEW_API_QUOTA_PER_USD,
                                "limit": new["total_granted"] / NEW_API_QUOTA_PER_USD}

    lite = GATEWAYS["litellm"]
    acct = _remote(remote_shell, "litellm")
    assert acct["source"] == "LiteLLM key info" and acct["lines"][0]["used"] == lite["spend"]
    assert acct["lines"][0]["limit"] == lite["max_budget"]

    router = GATEWAYS["openrouter"]
    acct = _remote(remote_shell, "openrouter")
    assert acct["lines"][0] == {"currency": "USD", "balance": router["limit_remaining"],
                                "used": router["usage"], "limit": router["limit"]}

    acct = _remote(remote_shell, "ds")
    assert acct["lines"] == [{"currency": "CNY", "balance": 110.0, "used": None, "limit": None}]
    out = capsys.readouterr().out
    assert "DeepSeek balance" in out and "110" in out


def test_remote_against_an_endpoint_with_none_is_one_message(remote_shell: Any) -> None:
    with pytest.raises(UsageError) as caught:
        remote_shell.run_line_magic("chat_usage", "--remote -p plain")
    message = str(caught.value)
    assert "gave no account figures" in message and "/key/info" in message
    assert "What answered" not in message  # every route was simply not there


@pytest.mark.parametrize("profile, words", [
    ("web", "answered a web page (HTML)"),
    ("err200", "answered HTTP 200 with an error: invalid token: quota query disabled"),
    ("nodb", "/litellm-nodb/key/info answered HTTP 500: No connected db"),
])
def test_remote_routes_that_answer_badly_are_named(remote_shell: Any, profile: str,
                                                    words: str) -> None:
    with pytest.raises(UsageError) as caught:
        remote_shell.run_line_magic("chat_usage", f"--remote -p {profile}")
    assert words in str(caught.value)
    assert str(caught.value).count("\n") == 0  # one message


def test_remote_sends_the_profiles_key_and_never_shows_it(
        endpoint: FakeEndpoint, clean_env: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: Any) -> None:
    import chatmagic
    from IPython.testing.globalipapp import get_ipython

    key = "sk-money-SECRET-0123456789abcdef"
    monkeypatch.setenv("GW_KEY", key)
    (clean_env / "chatmagic.toml").write_text(
        f'[profiles.lite]\nbase_url = "{endpoint.gateway_url("litellm")}"\n'
        'api_key_env = "GW_KEY"\n', encoding="utf-8")
    ip = get_ipython()
    chatmagic._magics = None
    chatmagic.load_ipython_extension(ip)
    try:
        ip.run_line_magic("chat_usage", "--remote -p lite -o acct")
    finally:
        chatmagic.unload_ipython_extension(ip)
    asked = [r for r in endpoint.requests if r.path.endswith("/key/info")]
    assert asked and asked[0].headers["authorization"] == f"Bearer {key}"
    assert key not in capsys.readouterr().out and key not in repr(ip.user_ns["acct"])


# -- bad price configuration -------------------------------------------------------------

@pytest.mark.parametrize("entry, words", [
    ('"m" = { input = "0.8", output = 2 }', r"line 4 \(profiles.p.prices.m.input\): input must "
                                            r"be a number"),
    ('"m" = { input = -1, output = 2 }', r"line 4 .*input is negative"),
    ('"m" = { input = 1, output = 2, currency = "RMB" }', r"line 4 .*'RMB' is not a currency"),
    ('"m" = { input = 1 }', r"line 4 .*needs 'output'"),
    ('"m" = { input = 1, output = 2, cache = 1 }', r"line 4 .*unknown price key 'cache'"),
])
def test_bad_prices_name_the_file_and_line(clean_env: Path, entry: str, words: str) -> None:
    (clean_env / "chatmagic.toml").write_text(
        f'[profiles.p]\nbase_url = "http://127.0.0.1:9/v1"\n[profiles.p.prices]\n{entry}\n',
        encoding="utf-8")
    with pytest.raises(ProfileError, match=words) as caught:
        Profiles.load(environ={}, cwd=clean_env)
    assert str(clean_env / "chatmagic.toml") in str(caught.value)


def test_bad_shared_prices_name_the_line(clean_env: Path) -> None:
    (clean_env / "chatmagic.toml").write_text(
        '# prices\n\n[prices]\n"a" = { input = 1, output = 1 }\n"b" = { input = 1, output = true }\n',
        encoding="utf-8")
    with pytest.raises(ProfileError, match=r"line 5 \(prices.b.output\): output must be a number"):
        Profiles.load(environ={}, cwd=clean_env)


# -- the core on its own ---------------------------------------------------------------------

def test_cached_input_is_priced_as_cached_and_defaults_to_input() -> None:
    book = PriceBook.from_toml({"prices": {"m": {"input": 2, "output": 8, "cached_input": 0.5},
                                           "n": {"input": 2, "output": 8}}}, None)
    usage = Usage(1_000_000, 1_000_000, 2_000_000, cached_tokens=400_000)
    assert book.pricer("x", "http://h/v1", "m").cost(usage) == Cost(
        0.6 * 2 + 0.4 * 0.5 + 8, "USD", "chatmagic.toml")
    assert book.pricer("x", "http://h/v1", "n").cost(usage).amount == pytest.approx(10.0)


def test_the_price_table_knows_the_big_providers_by_their_url() -> None:
    usage = Usage(1_000_000, 1_000_000, 2_000_000)
    cached = Usage(1_000_000, 1_000_000, 2_000_000, cached_tokens=1_000_000)
    pricer = Pricer("gpt-4o-mini", "https://api.openai.com/v1")
    full, part = pricer.cost(usage), pricer.cost(cached)
    assert full is not None and part is not None and full.source == "price table"
    assert 0 < part.amount < full.amount  # cached input is cheaper
    # DashScope is not in the table: a configured price serves, else nothing.
    qwen = "https://dashscope.aliyuncs.com/compatible-mode/v1"
    assert Pricer("qwen-plus", qwen).cost(usage) is None
    book = PriceBook.from_toml({"profiles": {"qwen": {"prices": {"qwen-plus": {
        "input": 0.8, "output": 2.0, "cached_input": 0.16, "currency": "CNY"}}}}}, None)
    assert book.pricer("qwen", qwen, "qwen-plus").cost(usage) == Cost(2.8, "CNY",
                                                                      "chatmagic.toml")


def test_money_is_never_a_dollar_sign_and_keeps_small_amounts() -> None:
    assert money(0.0000360, "USD") == "0.000036 USD"
    assert money(0.0324, "USD") == "0.0324 USD"
    assert money(1234.5, "CNY") == "1,234.5 CNY"
    assert money(0, "USD") == "0 USD"
    assert str(Cost(0.01, "EUR", estimated=True)) == "~0.01 EUR"


def test_an_estimate_and_the_budget_guard() -> None:
    priced = Pricer("m", "http://h/v1", PriceBook.from_toml(
        {"prices": {"m": {"input": 1000, "output": 1000}}}, None).price("p", "m"), table=False)
    body = {"messages": [{"role": "user", "content": "word " * 40}], "max_tokens": 100}
    estimate = estimate_cost([(priced, body)] * 10 + [(None, body)])
    # 40 words ~ 50 tokens of text + 4 framing; 100 out: (54 + 100) * 1000 / 1e6 a request.
    assert estimate.requests == 11 and estimate.unpriced == 1 and not estimate.assumed_output
    assert estimate.totals["USD"] == pytest.approx(10 * (54 + 100) / 1000)
    check_budget(estimate, 2.0)  # 1.54 USD: under
    with pytest.raises(OptionError, match=r"estimated at ~1.54 USD for 11 requests.*1 with no "
                                          r"known price left out.*above max_cost=1"):
        check_budget(estimate, 1.0)
    check_budget(Estimate({}, 5, 5, True), 0.01)  # nothing priced: nothing to refuse
    unlimited = estimate_cost([(priced, {"messages": []})])
    assert unlimited.assumed_output and "assuming 1000 output tokens" in unlimited.text()


def test_max_cost_refuses_a_cell_before_anything_is_sent(money_shell: Any,
                                                        endpoint: FakeEndpoint) -> None:
    money_shell.run_line_magic("chat_config", "set max_cost=0.001")
    before = len(endpoint.chat_requests)
    with pytest.raises(UsageError, match=r"Not sent: this run is estimated at ~.* USD"):
        money_shell.run_cell_magic("chat", "-m echo --max-tokens 500", "one two three")
    assert len(endpoint.chat_requests) == before
    money_shell.run_cell_magic("chat", "-m reasoning", "no price known: sent")
    assert len(endpoint.chat_requests) == before + 1


# -- in a real kernel ------------------------------------------------------------------------


# -- --each: the cost column, the totals, the estimate and max_cost -------------------------

def test_each_prices_every_row_and_says_the_estimate_first(
        money_shell: Any, endpoint: FakeEndpoint, capsys: Any) -> None:
    money_shell.user_ns["words"] = ["a b", "c d", "e f"]
    money_shell.run_cell_magic("chat", "--each words -m echo --max-tokens 50 -o table", "{item}")
    out = capsys.readouterr().out
    # Before sending: each prompt "a b" ~ 1 token of text + 4 framing; 50 out at most.
    first = out.splitlines()[0]
    assert first.startswith("estimate: ~") and "for 3 requests" in first
    assert money(3 * (5 * 1000 + 50 * 10000) / 1e6, "USD") in first
    rows = money_shell.user_ns["table"]
    rows = rows.to_dict("records") if hasattr(rows, "to_dict") else rows
    # The fake counts 2 words + 3 in, 2 words out.
    assert [r["cost"] for r in rows] == [pytest.approx(echo_cost(5, 0, 2))] * 3
    money_shell.run_line_magic("chat_usage", "--by conversation -o usage")
    (group,) = [u for u in money_shell.user_ns["usage"]
                if u["conversation"] == "--each words"]
    assert group["cost_USD"] == pytest.approx(3 * echo_cost(5, 0, 2))


def test_each_above_max_cost_is_refused_saying_the_estimate(
        money_shell: Any, endpoint: FakeEndpoint) -> None:
    money_shell.user_ns["words"] = [f"w{i}" for i in range(40)]
    money_shell.run_line_magic("chat_config", "set max_cost=0.1")
    with pytest.raises(UsageError, match=r"Not sent: this run is estimated at ~.* USD for 40 "
                                         r"requests; assuming 1000 output tokens"):
        money_shell.run_cell_magic("chat", "--each words -m echo", "{item}")
    assert endpoint.chat_requests == []
    # A model with no known price: nothing to estimate, so nothing refused.
    money_shell.run_cell_magic("chat", "--each words -m reasoning -o t", "{item}")
    assert len(endpoint.chat_requests) == 40


def test_compare_columns_and_history_show_say_each_cost(money_shell: Any, capsys: Any) -> None:
    money_shell.run_cell_magic("chat", "--compare echo,markdown,reasoning", "one two three")
    out = capsys.readouterr().out
    footers = [line for line in out.splitlines() if line.startswith("[") and "tokens" in line]
    assert len(footers) == 3
    assert money(echo_cost(6, 0, 3), "USD") in footers[0]
    assert "0 USD" in footers[1]
    assert "USD" not in footers[2]  # reasoning: no price known
    money_shell.run_line_magic("chat_history", "keep 1")
    money_shell.run_line_magic("chat_history", "show")
    assert money(echo_cost(6, 0, 3), "USD") in capsys.readouterr().out


def test_an_endpoints_figure_counts_even_for_a_reply_planned_without_prices() -> None:
    from chatmagic.engine.reply import Reply

    reply = Reply("m", "p", "http://h/v1")
    assert reply.cost is None
    reply.feed(Usage(10, 5, 15, cost=0.3))
    assert reply.cost == Cost(0.3, "USD", "endpoint")


