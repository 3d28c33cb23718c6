"""%%chat options: parsed into ChatOptions, refused with one clear message when bad."""

from __future__ import annotations

import pytest

from chatmagic.core.errors import OptionError
from chatmagic.core.options import CHAT_PARSER, parse_chat_line


def test_cell_form_takes_prompt_from_body() -> None:
    opts = parse_chat_line("-m echo -t 0.5 --stop a --stop b", "hello\nworld")
    assert (opts.model, opts.temperature, opts.stop, opts.prompt) == \
        ("echo", 0.5, ["a", "b"], "hello\nworld")


def test_line_form_keeps_prompt_as_written() -> None:
    opts = parse_chat_line("-m echo what's \"up\" -t 1?", None)
    assert opts.model == "echo"
    assert opts.prompt == "what's \"up\" -t 1?"  # options after the prompt are prompt text


def test_line_form_option_values_with_quotes() -> None:
    opts = parse_chat_line("-s 'be brief' -m echo hi", None)
    assert (opts.system, opts.prompt) == ("be brief", "hi")


@pytest.mark.parametrize("line, words", [
    ("-t 3", "--temperature must be between 0 and 2"),
    ("--top-p 1.5", "--top-p must be between 0 and 1"),
    ("-n 0", "-n must be at least 1"),
    ("--presence-penalty -3", "--presence-penalty must be between -2 and 2"),
    ("--logit-bias '{\"a\": 1}'", "--logit-bias keys are token ids"),
    ("--logit-bias '{\"5\": 200}'", "-100 to 100"),
    ("--logit-bias nope", "JSON object"),
    ("--max-tokens x", "--max-tokens takes a whole number"),
    ("--bogus", "unrecognized arguments: --bogus"),
    ("--compare a", "--compare needs at least two models"),
    ("--compare a,,b", "--compare has an empty entry"),
    ("--param temperature=1", "--param temperature=... would shadow a named option"),
    ("--param nokey", "--param takes KEY=VALUE"),
    ("-m x --compare a,b", "--compare names the models itself"),
    ("-f html", "invalid choice: 'html'"),
    ("-s 'unbalanced", "No closing quotation"),
])
def test_bad_options_are_refused_with_the_option_named(line: str, words: str) -> None:
    with pytest.raises(OptionError) as info:
        parse_chat_line(line, "prompt")
    assert words in str(info.value)


def test_words_in_the_options_line_of_a_cell_are_refused() -> None:
    with pytest.raises(OptionError, match="prompt goes in the cell body"):
        parse_chat_line("-m echo hello", "body")


def test_param_values_parse_as_json_when_they_parse() -> None:
    opts = parse_chat_line("--param top_k=5 --param mode=fast --param obj='{\"a\": [1]}'", "p")
    assert opts.params == {"top_k": 5, "mode": "fast", "obj": {"a": [1]}}


def test_help_lists_every_spec_option() -> None:
    text = CHAT_PARSER.format_help()
    for option in ["--model", "--profile", "--system", "--conversation", "--new", "--no-history",
                   "--compare", "--temperature", "--top-p", "-n", "--stop", "--max-tokens",
                   "--presence-penalty", "--frequency-penalty", "--logit-bias", "--seed",
                   "--user", "--json", "--param", "--image", "--no-stream", "--out", "--format",
                   "--no-interpolate", "--timeout"]:
        assert option in text


def test_options_check_every_assignment() -> None:
    from chatmagic.core.errors import ParameterError
    from chatmagic.core.options import ChatOptions

    with pytest.raises(ParameterError, match="^temperature must be between 0 and 2, not 9$"):
        ChatOptions(temperature=9)
    opts = ChatOptions(stop="END", logit_bias={50256: -100}, n=2.0, timeout=5)
    assert (opts.stop, opts.logit_bias, opts.n) == (["END"], {"50256": -100}, 2)
    with pytest.raises(ParameterError) as info:
        opts.timeout = -1  # set later, as the magic does with its default timeout
    assert info.value.option == "timeout" and opts.timeout == 5.0
    with pytest.raises(OptionError, match="cannot be combined with compare"):
        ChatOptions(compare=["a", "b"], model="c")


@pytest.mark.parametrize("line, words", [
    ("--stop a --stop b --stop c --stop d --stop e", "--stop takes 1 to 4 stop sequences"),
    ("--timeout 0", "--timeout must be a number of seconds above 0, not 0"),
    ("--timeout x", "--timeout takes a number, not 'x'"),
    ("--seed 1.5", "--seed takes a whole number, not '1.5'"),
    ("--max-tokens 0", "--max-tokens must be at least 1, not 0"),
    ("--frequency-penalty 2.5", "--frequency-penalty must be between -2 and 2, not 2.5"),
    ("--logit-bias '[1]'", "--logit-bias takes a mapping of token id -> bias"),
    ("--logit-bias '{\"5\": 1.5}'", "--logit-bias values are whole numbers from -100 to 100"),
])
def test_the_value_checks_name_the_cell_option(line: str, words: str) -> None:
    with pytest.raises(OptionError) as info:
        parse_chat_line(line, "prompt")
    assert words in str(info.value)


def test_a_profile_default_is_held_to_the_same_bounds() -> None:
    from chatmagic.core.options import ChatOptions
    from chatmagic.core.profiles import Profile
    from chatmagic.engine.request import build_request

    messages = [{"role": "user", "content": "hi"}]
    good = Profile("zoo", "http://127.0.0.1:1/v1", params={"temperature": 1, "stop": "END"})
    body = build_request(ChatOptions(prompt="hi"), good, "m", messages).body()
    assert (body["temperature"], body["stop"]) == (1.0, ["END"])
    bad = Profile("zoo", "http://127.0.0.1:1/v1", params={"temperature": 9})
    with pytest.raises(OptionError, match="^profile 'zoo': params.temperature must be between "
                                          "0 and 2, not 9$"):
        build_request(ChatOptions(prompt="hi"), bad, "m", messages)
