"""When an endpoint is sent one request at a time: only on evidence that another request cut a
stream (a stream ended as streams end, with no finish reason), never for a stream that broke
off (a failure, retried as one); and when it is, the run's progress says so."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from chatmagic.core.events import StreamError, StreamEvent, TextDelta
from chatmagic.core.profiles import Profile
from chatmagic.core.table import Row
from chatmagic.engine.endpoints import Knowledge
from chatmagic.engine.exchange import Watch
from chatmagic.engine.request import Job, Request
from chatmagic.engine.scheduler import Progress, Scheduler
from chatmagic.shell.sinks.progress import progress_line
from chatmagic.testing import FakeEndpoint
from chatmagic.transport.client import ClientPool


def _watched(*events: StreamEvent, overlapped: bool = True) -> Watch:
    async def stream() -> Any:
        for event in events:
            yield event

    watch = Watch()
    asyncio.run(watch.pass_on(stream(), lambda event: None))
    watch.overlapped = overlapped
    return watch


def test_a_stream_that_broke_off_is_a_failure_not_a_cut() -> None:
    broke = StreamError("the stream ended before the reply finished", "incomplete")
    watch = _watched(TextDelta("one "), broke)
    assert watch.failure == broke and not watch.cut  # retried as a failure, no serialising
    # a stream that ended as streams end ([DONE]) with no finish reason, another in flight
    assert _watched(TextDelta("one ")).cut
    assert not _watched(TextDelta("one "), overlapped=False).cut


def _run(endpoint: FakeEndpoint, model: str, rows: int, concurrency: int,
         knowledge: Knowledge | None = None) -> tuple[list[Row], Progress, Knowledge]:
    profile = Profile("local", endpoint.base_url, needs_key=False)
    jobs = [(i, Job(Request(profile, model, ({"role": "user", "content": f"w{i} x y z"},)),
                    model, key=i)) for i in range(rows)]
    done: list[Row] = []
    knowledge, progress = knowledge or Knowledge(), Progress(rows)
    scheduler = Scheduler(ClientPool({}), concurrency, knowledge=knowledge, progress=progress,
                          on_row=lambda _position, _job, row: done.append(row))
    asyncio.run(scheduler.arun(jobs))
    return done, progress, knowledge


def test_streams_that_break_off_among_others_keep_the_endpoint_concurrent(
        endpoint: FakeEndpoint) -> None:
    # A fifth of the requests fail (429, 500, a stream cut before its last word, in turn),
    # eight in flight: the cut streams overlap others, and are no evidence of a server that
    # serves one at a time.
    rows, progress, knowledge = _run(endpoint, "echo/faults=0.2&wait=0", 60, 8)
    assert len(rows) == 60 and all(row.ok for row in rows), [r.error for r in rows]
    retried = len(endpoint.chat_requests) - 60
    assert progress.retries == retried >= 6  # the cut streams among them, asked again
    assert knowledge.serial == set() and progress.serial == set()
    assert "one request at a time" not in progress_line(progress)


@pytest.mark.paced  # the streams overlap, so one-at-a-time cuts one
def test_a_run_that_serialises_an_endpoint_says_so(endpoint: FakeEndpoint) -> None:
    rows, progress, knowledge = _run(endpoint, "one-at-a-time/delay=0.02", 3, 3)
    assert all(row.ok for row in rows)
    assert knowledge.serial == progress.serial == {endpoint.base_url}
    line = progress_line(progress)
    assert line.count("one request at a time") == 1 and endpoint.base_url in line


def test_a_later_run_to_an_endpoint_the_session_found_serial_says_so_too(
        endpoint: FakeEndpoint) -> None:
    # An earlier run found it: this one sends one at a time from its first row, cutting
    # nothing, and its progress still says why its rate is what it is.
    rows, progress, knowledge = _run(endpoint, "echo", 3, 3, Knowledge({endpoint.base_url}))
    assert all(row.ok for row in rows) and progress.retries == 0
    assert progress.serial == {endpoint.base_url}
    assert progress_line(progress).count("one request at a time") == 1
    # only for the endpoints this run sends to
    rows, progress, knowledge = _run(endpoint, "echo", 3, 3, Knowledge({"http://other/v1"}))
    assert all(row.ok for row in rows) and progress.serial == set()


@pytest.mark.paced  # the streams overlap, so one-at-a-time cuts one
def test_map_warns_once_when_it_serialises_an_endpoint(endpoint: FakeEndpoint, clean_env: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import warnings

    import chatmagic
    from chatmagic import EndpointWarning

    monkeypatch.setenv("OPENAI_BASE_URL", endpoint.base_url)
    monkeypatch.setattr("chatmagic.engine.session._current", None)
    monkeypatch.setattr(chatmagic, "_magics", None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = chatmagic.map("{item}", ["a b c", "d e f", "g h i"],
                              model="one-at-a-time/delay=0.02", concurrency=3)
    assert table["error"].isna().all()
    said = [str(w.message) for w in caught if issubclass(w.category, EndpointWarning)]
    assert len(said) == 1 and "one request at a time" in said[0] and endpoint.base_url in said[0]
    with warnings.catch_warnings(record=True) as caught:  # a later map() in this session
        warnings.simplefilter("always")
        chatmagic.map("{item}", ["j k l", "m n o"], model="echo", concurrency=2)
    again = [str(w.message) for w in caught if issubclass(w.category, EndpointWarning)]
    assert again == said
