"""The Python API against the local endpoint: prompt, aprompt, conversation, chat, compare.

Plain Python (no IPython loaded into the session), answered in process; the real kernel's
top-level ``await`` is in tests/kernel/test_python_api_kernel.py.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Iterator

import pytest

import chatmagic
from chatmagic.engine.session import use_session
from chatmagic.testing import FakeEndpoint
from wait import until


@pytest.fixture
def api(endpoint: FakeEndpoint, clean_env: Path,
        monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """chatmagic with no extension loaded: a plain session pointed at the endpoint."""
    monkeypatch.setenv("OPENAI_BASE_URL", endpoint.base_url)
    monkeypatch.setattr(chatmagic, "_magics", None)
    use_session(None)
    yield chatmagic
    use_session(None)


def sent(endpoint: FakeEndpoint) -> list[list[Any]]:
    """The contents of the messages of every chat request, in order."""
    return [[m["content"] for m in r.body["messages"]] for r in endpoint.chat_requests]


def test_two_prompts_each_send_one_message(api: Any, endpoint: FakeEndpoint) -> None:
    assert api.prompt("one", model="echo").text() == "one"
    assert api.prompt("two", model="echo", system="be brief").text() == "two"
    assert sent(endpoint) == [["one"], ["be brief", "two"]]
    assert [m["role"] for m in endpoint.last_body["messages"]] == ["system", "user"]
    with pytest.raises(Exception, match="no conversation named 'default'"):
        api.history()  # nothing recorded


@pytest.mark.paced
def test_iterating_streams_pieces_and_replays(api: Any, endpoint: FakeEndpoint) -> None:
    response = api.prompt("one two three four five", model="echo/delay=0.15")
    pieces = iter(response)
    first = next(pieces)
    assert not response.done  # the first piece came before the reply ended
    assert list(response)[:1] == [first]  # a second reader, read to the end: nothing stops
    rest = list(pieces)
    assert len([first, *rest]) == 5 and "".join([first, *rest]) == "one two three four five"
    assert list(response) == [first, *rest]  # iterating again replays
    assert response.text() == "one two three four five"
    assert response.usage.completion_tokens == 5 and not response.usage.estimated
    assert response.failure is None and response.cost is None
    assert response.messages() == [{"role": "user", "content": "one two three four five"},
                                   {"role": "assistant", "content": "one two three four five"}]


BAD_PARAMETERS = [
    ("temperature", 9, "temperature must be between 0 and 2, not 9"),
    ("temperature", "0.5", "temperature takes a number, not '0.5'"),
    ("top_p", 1.5, "top_p must be between 0 and 1"),
    ("n", 0, "n must be at least 1"),
    ("n", True, "n takes a whole number, not True"),
    ("max_tokens", 2.5, "max_tokens takes a whole number, not 2.5"),
    ("presence_penalty", -3, "presence_penalty must be between -2 and 2"),
    ("frequency_penalty", float("nan"), "frequency_penalty takes a number, not NaN"),
    ("seed", "7", "seed takes a whole number"),
    ("seed", 2**64, "seed must fit in 64 bits"),
    ("logit_bias", {"a": 1}, "logit_bias keys are token ids"),
    ("logit_bias", {5: 200}, "logit_bias values are whole numbers from -100 to 100, not 200"),
    ("logit_bias", [1, 2], "logit_bias takes a mapping of token id -> bias"),
    ("stop", ["a", "b", "c", "d", "e"], "stop takes 1 to 4 stop sequences, not 5"),
    ("stop", 5, "stop takes a string or a list of up to 4 strings"),
    ("timeout", 0, "timeout must be a number of seconds above 0, not 0"),
    ("user", 42, "user takes a string, not 42"),
    ("json", "yes", "json takes True or False"),
    ("params", {"temperature": 1}, "params cannot set temperature"),
]


def test_a_bad_parameter_raises_before_anything_is_sent(api: Any, endpoint: FakeEndpoint
                                                        ) -> None:
    # One endpoint for every case (each endpoint takes half a second to shut down).
    for keyword, value, words in BAD_PARAMETERS:
        for call in (api.prompt, api.aprompt, api.chat, api.conversation("x").prompt):
            with pytest.raises(api.OptionError) as info:
                call("hi", model="echo", **{keyword: value})
            assert words in str(info.value), (keyword, value)
    assert endpoint.chat_requests == []


def test_good_values_are_normalised_on_the_wire(api: Any, endpoint: FakeEndpoint) -> None:
    api.prompt("hi", model="echo", stop="END", logit_bias={50256: -100, "7": 5}, seed=3.0,
               temperature=1).text()
    body = endpoint.last_body
    assert body["stop"] == ["END"] and body["logit_bias"] == {"50256": -100, "7": 5}
    assert body["seed"] == 3 and type(body["seed"]) is int and body["temperature"] == 1.0


def test_an_unknown_keyword_says_what_was_meant(api: Any, endpoint: FakeEndpoint) -> None:
    for keyword, hint in [("temprature", " Did you mean temperature=?"),
                          ("max_completion_tokens", " Did you mean max_tokens=?"),
                          ("top-p", " Did you mean top_p=?"), ("colour", "")]:
        with pytest.raises(api.OptionError) as info:
            api.prompt("hi", model="echo", **{keyword: 1})
        assert str(info.value).startswith(f"prompt() got an unknown keyword {keyword}=.{hint} "
                                          "It takes: model, system, profile, temperature")
    with pytest.raises(api.OptionError, match="takes no out=, a %%chat cell option: the "
                                              "response is what the call returns"):
        api.prompt("hi", out="x")
    with pytest.raises(api.OptionError, match="unknown keyword conversation="):
        api.aprompt("hi", conversation="x")  # stateless: use chatmagic.conversation(name)
    assert endpoint.chat_requests == []


def test_cell_presentation_is_no_keyword_here(api: Any, endpoint: FakeEndpoint) -> None:
    from chatmagic.core.options import PRESENTATION_FIELDS

    for keyword in PRESENTATION_FIELDS:
        with pytest.raises(api.OptionError, match=f"takes no {keyword}=, a %%chat cell option"):
            api.chat("hi", model="echo", **{keyword: True})
    assert endpoint.chat_requests == []


def test_images_as_paths_urls_and_objects(api: Any, endpoint: FakeEndpoint,
                                          clean_env: Path) -> None:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (2, 2), "red").save(buffer, format="PNG")
    (clean_env / "pic.png").write_bytes(buffer.getvalue())
    api.prompt("what?", model="echo", images=[clean_env / "pic.png", "https://example.org/a.jpg",
                                              buffer.getvalue(), Image.new("RGB", (3, 3))]).text()
    parts = endpoint.last_body["messages"][-1]["content"]
    urls = [p["image_url"]["url"] for p in parts[1:]]
    assert urls[1] == "https://example.org/a.jpg" and len(urls) == 4
    assert all(u.startswith("data:image/png;base64,") for u in urls[:1] + urls[2:])
    with pytest.raises(api.OptionError, match="image_1: the variable holds a int, not an image"):
        api.prompt("what?", model="echo", images=42)
    assert len(endpoint.chat_requests) == 1


def test_an_endpoint_failure_is_data(api: Any, endpoint: FakeEndpoint) -> None:
    response = api.prompt("hi", model="server-error")
    assert response.text() == ""
    failure = response.failure
    assert (failure.kind, failure.status) == ("status", 500)
    assert "The server had an error while processing your request" in failure.message
    assert "failed (status)" in repr(response)
    rate = api.prompt("hi", model="unauthorized").failure
    assert (rate.kind, rate.status) == ("status", 401)


def test_a_request_the_endpoint_rejects_is_data_and_sent_once(api: Any, endpoint: FakeEndpoint) -> None:
    failure = api.prompt("hi", model="echo/reject=stop", stop="END").failure
    assert (failure.kind, failure.status) == ("rejected", 500)
    assert len(endpoint.chat_requests) == 1


@pytest.mark.paced
@pytest.mark.parametrize("how", ["stop", "break"])
def test_stop_keeps_what_arrived(api: Any, endpoint: FakeEndpoint, how: str) -> None:
    response = api.prompt(" ".join(["word"] * 50), model="echo/delay=0.1")
    for first in response:
        break  # leaving the loop early stops the request too
    if how == "stop":
        response.stop()
    assert response.failure.kind == "interrupted"
    assert response.text().startswith(first) and len(response.text()) < 50 * 5
    until(lambda: endpoint.chat_requests[-1].disconnected,
          "the server seeing the stream closed")


@pytest.mark.paced
def test_aprompt_streams_with_async_for(api: Any, endpoint: FakeEndpoint) -> None:
    async def main() -> tuple[list[str], bool, str, Any]:
        response = api.aprompt("one two three four", model="echo/delay=0.1")
        pieces = []
        async for piece in response:
            if not pieces:
                done_at_first = response.done
            pieces.append(piece)
        return pieces, done_at_first, await response.text(), (await response).usage

    pieces, done_at_first, text, usage = asyncio.run(main())
    assert pieces == ["one ", "two ", "three ", "four"] and text == "one two three four"
    assert not done_at_first and usage.completion_tokens == 4
    assert sent(endpoint) == [["one two three four"]]


@pytest.mark.paced  # the reply must still be on its way when its facts are asked for
def test_aprompt_reads_its_facts_only_once_ended(api: Any, endpoint: FakeEndpoint) -> None:
    async def main() -> Any:
        response = api.aprompt("hi", model="echo/first=0.5")
        with pytest.raises(RuntimeError, match="still running"):
            response.failure
        return await response

    assert asyncio.run(main()).failure is None


@pytest.mark.paced  # the first prompt is still running when the second is made
def test_conversation_prompt_sends_the_first_turn_with_the_second(api: Any,
                                                                  endpoint: FakeEndpoint) -> None:
    conv = api.conversation("x")
    assert conv.messages() == []
    conv.prompt("first", model="echo/delay=0.1")  # still running, and held by no one here
    second = conv.prompt("second", model="echo")  # waits for the first to be recorded
    assert second.text() == "second"
    assert sent(endpoint) == [["first"], ["first", "first", "second"]]
    assert conv.messages() == api.history("x") == [
        {"role": "user", "content": "first"}, {"role": "assistant", "content": "first"},
        {"role": "user", "content": "second"}, {"role": "assistant", "content": "second"}]
    api.prompt("aside", model="echo").text()
    assert len(conv.messages()) == 4  # a stateless prompt leaves it alone


def test_messages_hold_every_prompt_made_before(api: Any, endpoint: FakeEndpoint) -> None:
    conv = api.conversation("both")
    conv.prompt("a", model="echo/delay=0.05")  # held by no one here
    conv.prompt("b", model="echo/first=0.3")  # starts once "a" is recorded; still running
    assert conv.messages() == [
        {"role": "user", "content": "a"}, {"role": "assistant", "content": "a"},
        {"role": "user", "content": "b"}, {"role": "assistant", "content": "b"}]
    conv.prompt("c", model="echo/first=0.3")
    assert [m["content"] for m in api.history("both")] == ["a", "a", "b", "b", "c", "c"]


def test_chat_and_compare_keep_working_and_refuse_what_they_ignored(api: Any,
                                                                    endpoint: FakeEndpoint
                                                                    ) -> None:
    with pytest.raises(api.OptionError, match="temperature must be between 0 and 2, not 9"):
        api.chat("hi", model="echo", temperature=9)
    with pytest.raises(api.OptionError, match="compare\\(\\) takes its models in models="):
        api.compare("hi", ["echo", "markdown"], model="echo")
    assert endpoint.chat_requests == []
    reply = api.chat("hi", model="echo")
    assert reply.text() == "hi" and api.history()[-1] == {"role": "assistant", "content": "hi"}
    replies = api.compare("same", ["echo", "echo"], temperature=0.5)
    assert list(replies) == ["echo", "echo#2"]
    assert [r.text() for r in replies.values()] == ["same", "same"]


def test_a_prompt_inside_the_api_loop_is_refused(api: Any, endpoint: FakeEndpoint) -> None:
    from chatmagic.engine.portal import PORTAL

    async def nested() -> str:
        return api.prompt("hi", model="echo").text()  # would wait on its own loop

    with pytest.raises(RuntimeError, match="use chatmagic.aprompt"):
        PORTAL.submit(nested()).result(timeout=10)


