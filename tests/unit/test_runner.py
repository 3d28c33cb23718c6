"""The runner's blocking path: streams on a worker thread, drawing and closing on the caller's."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from chatmagic.transport.client import ClientPool
from chatmagic.core.profiles import Profile
from chatmagic.engine.endpoints import Knowledge
from chatmagic.engine.exchange import REDO_NOTE
from chatmagic.engine.request import Job, Request
from chatmagic.engine.runner import Run
from chatmagic.testing import FakeEndpoint


class SlowFirstFrame:
    """A sink whose first draw is slow, as in a busy kernel: events queue up behind it."""

    def begin(self, run: Run) -> None:
        time.sleep(0.3)

    def refresh(self, run: Run, events: Any) -> None:
        pass

    def end(self, run: Run, events: Any) -> None:
        pass


def _job(base_url: str, model: str, prompt: str, timeout: float | None = None) -> Job:
    profile = Profile("local", base_url, needs_key=False)
    return Job(Request(profile, model, ({"role": "user", "content": prompt},), timeout=timeout),
               model)


def _run(base_url: str, model: str, prompt: str = "hi", sink: Any = None) -> Run:
    return Run([_job(base_url, model, prompt)], ClientPool({}), sink)


def test_a_reply_is_closed_only_after_all_its_events_are_folded(endpoint: FakeEndpoint) -> None:
    prompt = " ".join(f"w{i}" for i in range(400))
    run = _run(endpoint.base_url, "no-usage", prompt, SlowFirstFrame())
    (reply,) = run.run()
    assert reply.text() == prompt
    assert reply.usage is not None and reply.usage.estimated
    # one chunk per word, as llama.cpp sends one per token: counted, and all of them
    assert reply.usage.completion_tokens == 400  # not of a partial text
    assert reply.first_token is not None and reply.ended is not None
    assert reply.first_token <= reply.ended


def test_a_stop_at_any_moment_ends_the_run_without_an_error(endpoint: FakeEndpoint) -> None:
    # hang: headers, then nothing but comments until the client goes
    for delay in [0.0, 0.0, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05]:
        run = _run(endpoint.base_url, "hang")
        threading.Timer(delay, run.stop).start()
        (reply,) = run.run()  # a stop before the streams took over the hook included
        assert reply.interrupted and run.stopped


PROMPT = " ".join(f"w{i}" for i in range(30))


def _jobs(*urls: str, model: str = "one-at-a-time/delay=0.01") -> list[Job]:
    return [_job(url, model, PROMPT) for url in urls]


# one-at-a-time cuts a stream when another request arrives while it streams: paced, so the
# streams overlap.
@pytest.mark.paced
def test_a_stream_cut_by_a_parallel_request_is_asked_again_alone(endpoint: FakeEndpoint) -> None:
    url = endpoint.base_url
    knowledge = Knowledge()  # the session's
    replies = Run(_jobs(url, url), ClientPool({}), knowledge=knowledge).run()
    assert [r.text() for r in replies] == [PROMPT, PROMPT]
    assert all(r.complete and r.failure is None for r in replies)
    assert sorted(r.notes for r in replies) == [[], [REDO_NOTE]]
    assert len(endpoint.chat_requests) == 3  # two at once, then the cut one again
    assert knowledge.serial == {url}
    # the endpoint is remembered: the next run sends one request at a time, nothing is cut
    replies = Run(_jobs(url, url), ClientPool({}), knowledge=knowledge).run()
    assert [r.text() for r in replies] == [PROMPT, PROMPT] and not any(r.notes for r in replies)
    assert len(endpoint.chat_requests) == 5


@pytest.mark.paced
def test_streams_to_different_endpoints_are_not_serialised(endpoint: FakeEndpoint,
                                                          transport: Any) -> None:
    knowledge = Knowledge()
    other = transport.add(FakeEndpoint())
    replies = Run(_jobs(endpoint.base_url, other.base_url), ClientPool({}),
                  knowledge=knowledge).run()
    assert [r.text() for r in replies] == [PROMPT, PROMPT] and not any(r.notes for r in replies)
    assert knowledge.serial == set()


def test_a_stream_that_merely_ends_early_alone_is_not_redone(endpoint: FakeEndpoint) -> None:
    raw_done = _jobs(endpoint.base_url, model="drop/after=2")
    (reply,) = Run(raw_done, ClientPool({})).run()
    assert reply.failure is not None and reply.failure.kind == "incomplete"
    assert len(endpoint.chat_requests) == 1 and not reply.notes


@pytest.mark.paced
def test_compare_on_one_server_that_cuts_fills_both_columns(shell: Any,
                                                           endpoint: FakeEndpoint) -> None:
    model = "one-at-a-time/delay=0.01"
    shell.run_cell_magic("chat", f"--compare {model},{model} -o out", PROMPT)
    assert list(shell.user_ns["out"].values()) == [PROMPT, PROMPT]


@pytest.mark.paced
def test_a_cut_a_proxy_marked_finished_with_no_word_is_redone(endpoint: FakeEndpoint) -> None:
    url = endpoint.base_url
    # the first stream is cut before its first token; LiteLLM adds finish_reason=stop
    replies = Run(_jobs(url, url, model="one-at-a-time/via=litellm&first=0.3"),
                  ClientPool({})).run()
    assert [r.text() for r in replies] == [PROMPT, PROMPT]
    assert sorted(r.notes for r in replies) == [[], [REDO_NOTE]]  # either may arrive first
    assert len(endpoint.chat_requests) == 3


@pytest.mark.paced
def test_a_proxys_error_before_a_word_while_another_streams_is_a_cut(
        endpoint: FakeEndpoint) -> None:
    url = endpoint.base_url
    # LiteLLM in front of llama-cpp-python: the cut comes as "Connection error" before a word
    replies = Run(_jobs(url, url, model="one-at-a-time/via=litellm-error&first=0.3"),
                  ClientPool({})).run()
    assert [r.text() for r in replies] == [PROMPT, PROMPT]
    assert all(r.failure is None for r in replies)
    assert sorted(r.notes for r in replies) == [[], [REDO_NOTE]]


@pytest.mark.paced
def test_a_stream_cut_before_its_first_frame_is_streamed_again_not_asked_plain(
        endpoint: FakeEndpoint) -> None:
    url = endpoint.base_url
    # cut at once: an empty stream, which alone would be asked again without streaming; that
    # request would cut the other stream in turn
    replies = Run(_jobs(url, url, model="one-at-a-time/first=0.3"), ClientPool({})).run()
    assert [r.text() for r in replies] == [PROMPT, PROMPT]
    assert [r.body.get("stream") for r in endpoint.chat_requests] == [True, True, True]
    assert sorted(r.notes for r in replies) == [[], [REDO_NOTE]]


def test_an_empty_stream_alone_is_still_asked_without_streaming(endpoint: FakeEndpoint) -> None:
    (reply,) = Run(_jobs(endpoint.base_url, model="context-overflow"), ClientPool({})).run()
    assert reply.failure is not None and reply.failure.status == 400
    assert [r.body.get("stream") for r in endpoint.chat_requests] == [True, None]


def test_a_redirect_through_the_client_pool_is_a_redirect_failure(endpoint: FakeEndpoint) -> None:
    base = f"http://127.0.0.1:{endpoint.port}"  # without /v1: the endpoint redirects there
    (reply,) = Run(_jobs(base, model="redirect"), ClientPool({})).run()
    failure = reply.failure
    # The 308 to /v1 on the same origin is followed; /v1 then moves to https: not followed.
    assert failure is not None and (failure.kind, failure.status) == ("redirect", 308)
    assert f'set base_url = "https://127.0.0.1:{endpoint.port}/v1"' in failure.message
    assert [r.path for r in endpoint.chat_requests] == ["/chat/completions",
                                                       "/v1/chat/completions"]


def test_a_prompt_estimate_counts_an_image_as_an_image_not_its_base64() -> None:
    from chatmagic.core.tokens import IMAGE_TOKENS, prompt_tokens

    png = "data:image/png;base64," + "A" * 533_000  # a 400 kB PNG
    messages = [{"role": "system", "content": "be brief"},
                {"role": "user", "content": [{"type": "text", "text": "what is this?"},
                                             {"type": "image_url", "image_url": {"url": png}}]}]
    assert prompt_tokens(messages) < IMAGE_TOKENS + 20


@pytest.mark.paced
@pytest.mark.parametrize("model", ["hang", "keepalive/delay=0.3"])
def test_timeout_is_the_whole_requests_deadline(endpoint: FakeEndpoint, model: str) -> None:
    # hang sends headers then ": waiting" comments; keepalive streams slowly between
    # comments: each read is quick, so only a deadline on the whole request ends them.
    from chatmagic.engine.runner import run_blocking

    job = _job(endpoint.base_url, model, "one two three four five six", timeout=0.8)
    (reply,) = run_blocking(Run([job], ClientPool()))
    assert reply.failure is not None and reply.failure.kind == "timeout"
    assert "within 0.8 s" in reply.failure.message
    if model.startswith("keepalive"):
        assert reply.text().startswith("one ")  # what arrived is kept
