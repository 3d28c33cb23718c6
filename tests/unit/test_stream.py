"""The stream contract: every failure mode becomes one clear StreamError (the SDK's client
from a ClientPool, answered in process)."""

from __future__ import annotations

import asyncio
from typing import Any

import openai
import pytest

from chatmagic.core.profiles import Profile
from chatmagic.core.events import Finish, ReasoningDelta, RefusalDelta, StreamError, TextDelta, Usage
from chatmagic.engine.reply import Reply
from chatmagic.transport.client import ClientPool
from chatmagic.transport.stream import astream_chat
from chatmagic.testing import FakeEndpoint


def _client(base_url: str, **options: Any) -> openai.AsyncOpenAI:
    """The SDK's async client for base_url, as a ClientPool makes it (call it on the loop)."""
    return ClientPool({}).async_(Profile("local", base_url, needs_key=False)).with_options(
        **options)


def collect(endpoint: FakeEndpoint, model: str, stream: bool = True, **extra: Any) -> Reply:
    profile = Profile("local", endpoint.base_url, needs_key=False)

    async def go() -> Reply:
        client = _client(endpoint.base_url, max_retries=1)
        request = {"model": model, "messages": [{"role": "user", "content": "one two three"}],
                   "stream": stream, **extra}
        if stream:
            request["stream_options"] = {"include_usage": True}
        reply = Reply(model, "local", endpoint.base_url)
        async for event in astream_chat(client, request, profile):
            reply.feed(event)
        reply.close()
        return reply

    return asyncio.run(go())


def test_text_usage_and_finish(endpoint: FakeEndpoint) -> None:
    reply = collect(endpoint, "echo")
    assert reply.text() == "one two three" and reply.complete
    assert reply.usage == Usage(6, 3, 9)
    assert reply.finish_reason() == "stop"


def test_non_stream_gives_the_same_reply(endpoint: FakeEndpoint) -> None:
    reply = collect(endpoint, "echo", stream=False)
    assert reply.text() == "one two three" and reply.complete and reply.usage.total_tokens == 9


@pytest.mark.parametrize("model, field", [("reasoning", "reasoning_content"),
                                          ("reasoning-vllm", "reasoning")])
def test_reasoning_both_field_names(endpoint: FakeEndpoint, model: str, field: str) -> None:
    reply = collect(endpoint, model)
    assert reply.reasoning().startswith("Let me think")
    assert reply.text() == "The answer is: one two three"
    assert reply.usage.reasoning_tokens > 0


def test_refusal_is_not_empty_output(endpoint: FakeEndpoint) -> None:
    reply = collect(endpoint, "refusal")
    assert reply.refusal() == "I can't help with that." and reply.text() == ""


def test_n_choices_interleave_by_index(endpoint: FakeEndpoint) -> None:
    reply = collect(endpoint, "echo", n=3)
    assert [reply.text(i) for i in range(3)] == [f"one two three (choice {i})" for i in range(3)]


def test_a_choice_without_its_finish_chunk_is_incomplete_alone(endpoint: FakeEndpoint) -> None:
    reply = collect(endpoint, "echo/via=litellm", n=2)  # [DONE], no finish for choice 1
    assert reply.failure is None  # the stream ended properly
    assert [reply.text(i) for i in range(2)] == [f"one two three (choice {i})" for i in (0, 1)]
    assert (reply.finish_reason(0), reply.finish_reason(1)) == ("stop", None)
    assert reply.choice_complete(0) and not reply.choice_complete(1)
    assert not reply.complete  # the reply as a whole: not every choice finished


def test_no_usage_is_estimated(endpoint: FakeEndpoint) -> None:
    reply = collect(endpoint, "no-usage")
    assert reply.usage is not None and reply.usage.estimated


@pytest.mark.parametrize("model, words, partial, kind, status", [
    ("error-midstream/after=2", "reported an error mid-stream: upstream model crashed", "one two ",
     "server", None),
    ("drop/after=2", "stream ended before the reply finished", "one two ", "incomplete", None),
    ("error-200", "plain body instead of a stream: upstream: quota exhausted", "", "server",
     None),
    ("json-as-sse", "plain body instead of a stream: gateway: no channel available", "",
     "server", None),
    ("error-list", "HTTP 400: Request contains an invalid argument.", "", "status", 400),
    ("unauthorized", "HTTP 401: Incorrect API key provided", "", "status", 401),
    ("server-error", "HTTP 500: The server had an error", "", "status", 500),
    # llama-cpp-python's validation error, as HTTP 500: the request is at fault, not the server
    ("echo/reject=stream_options", "HTTP 500: 1 validation error", "", "rejected", 500),
    ("no-such-model", "HTTP 404: The model `no-such-model` does not exist", "", "status", 404),
])
def test_failures_are_one_clear_error_and_keep_partial_text(
        endpoint: FakeEndpoint, model: str, words: str, partial: str, kind: str,
        status: int | None) -> None:
    reply = collect(endpoint, model)
    failure = reply.failure
    assert failure is not None and (failure.kind, failure.status) == (kind, status)
    assert reply.error == failure.message  # the message today's callers read
    assert reply.error is not None and words in reply.error
    assert endpoint.base_url in reply.error or "endpoint" in reply.error
    assert reply.text() == partial and not reply.complete


def test_http_200_error_body_without_stream(endpoint: FakeEndpoint) -> None:
    reply = collect(endpoint, "error-200", stream=False)
    assert "HTTP 200 with an error: upstream: quota exhausted" in reply.error


def test_429_is_retried_honouring_retry_after(endpoint: FakeEndpoint) -> None:
    reply = collect(endpoint, "rate-limited")
    assert reply.complete and reply.text() == "one two three"
    assert len(endpoint.chat_requests) == 2


def test_keepalive_comments_are_ignored(endpoint: FakeEndpoint) -> None:
    assert collect(endpoint, "keepalive").text() == "one two three"


@pytest.mark.paced
def test_stalled_stream_times_out_with_a_clear_message(endpoint: FakeEndpoint) -> None:
    profile = Profile("local", endpoint.base_url, needs_key=False)

    async def go() -> list[Any]:
        client = _client(endpoint.base_url, max_retries=0)
        request = {"model": "echo/first=3", "stream": True, "timeout": 0.3,
                   "messages": [{"role": "user", "content": "hi"}]}
        return [e async for e in astream_chat(client, request, profile)]

    events = asyncio.run(go())
    assert isinstance(events[-1], StreamError)
    assert "No answer from local" in events[-1].message and "--timeout" in events[-1].message


def test_unreachable_endpoint_names_the_url() -> None:
    profile = Profile("gone", "http://127.0.0.1:9/v1", needs_key=False)

    async def go() -> list[Any]:
        client = _client(profile.base_url, max_retries=0)
        return [e async for e in astream_chat(client, {"model": "m", "stream": True, "messages": [
            {"role": "user", "content": "hi"}]}, profile)]

    (event,) = asyncio.run(go())
    assert isinstance(event, StreamError) and "Cannot reach gone (http://127.0.0.1:9/v1)" in \
        event.message


def test_event_types_are_the_narrow_contract(endpoint: FakeEndpoint) -> None:
    seen: set[type] = set()
    for model in ("echo", "reasoning", "refusal", "error-midstream"):
        profile = Profile("local", endpoint.base_url, needs_key=False)

        async def go(m: str = model) -> None:
            client = _client(endpoint.base_url)
            async for event in astream_chat(client, {"model": m, "stream": True,
                                                     "stream_options": {"include_usage": True},
                                                     "messages": [{"role": "user",
                                                                   "content": "a b c d e"}]},
                                            profile):
                seen.add(type(event))
        asyncio.run(go())
    assert seen == {TextDelta, ReasoningDelta, RefusalDelta, Usage, Finish, StreamError}


def test_a_silent_stop_is_an_empty_stream_asked_again(endpoint: FakeEndpoint) -> None:
    # LiteLLM ends llama-cpp-python's empty stream (a prompt past the context) with a bare
    # finish_reason=stop: no text, no usage. Asked again without streaming, the server says why.
    from chatmagic.engine.request import Job, Request
    from chatmagic.engine.runner import Run, run_blocking

    profile = Profile("lite", endpoint.base_url, needs_key=False)
    request = Request(profile, "context-overflow/via=litellm",
                      ({"role": "user", "content": "a very long prompt"},))
    (reply,) = run_blocking(Run([Job(request, "m")], ClientPool()))
    assert reply.failure is not None and "exceed context window of 2048" in reply.failure.message
    assert not reply.complete and reply.text() == ""


def test_without_usage_token_sized_chunks_are_counted_and_interrupted_replies_count() -> None:
    # llama.cpp sends one chunk per token and no usage: count the chunks, not characters/4.
    reply = Reply("m", "p", "http://x")
    for piece in ["The", " sky", " is", " blue", "."]:
        reply.feed(TextDelta(piece))
    reply.feed(Finish("stop"))
    reply.close()
    assert reply.usage is not None and reply.usage.completion_tokens == 5
    assert reply.usage.estimated
    # long chunks (a gateway that batches): characters / 4
    batched = Reply("m", "p", "http://x")
    batched.feed(TextDelta("word " * 40))
    batched.close()
    assert batched.usage is not None and batched.usage.completion_tokens == 50
    # stopped after some text: still counted (those tokens were generated)
    stopped = Reply("m", "p", "http://x")
    stopped.feed(TextDelta("half"))
    stopped.close(interrupted=True)
    assert stopped.usage is not None and stopped.usage.completion_tokens == 1
    # failed before anything arrived: nothing to count
    failed = Reply("m", "p", "http://x")
    failed.feed(StreamError("Cannot reach it", "connect"))
    failed.close()
    assert failed.usage is None


def test_a_deadline_after_the_finish_keeps_the_reply() -> None:
    """The deadline falling while what follows [DONE] is read (a finished reply) is no
    timeout; falling before the finish, it is."""
    from chatmagic.engine.exchange import Watch, _within

    profile = Profile("local", "http://127.0.0.1:1/v1", needs_key=False)

    def attempt(*events: Any) -> tuple[Watch, list[Any]]:
        async def stream() -> Any:
            for event in events:
                yield event
            await asyncio.Event().wait()  # the body's end never comes

        watch, shown = Watch(), []
        asyncio.run(_within(0.01, watch.pass_on(stream(), shown.append), watch, profile))
        return watch, shown

    finished, shown = attempt(TextDelta("whole"), Finish("stop"))
    assert finished.failure is None and shown == [TextDelta("whole"), Finish("stop")]
    cut, _ = attempt(TextDelta("half"))
    assert cut.failure is not None and cut.failure.kind == "timeout"
