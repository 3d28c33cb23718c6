"""The in-process transport answers as the loopback server does: every scripted model, read by
the stream layer through a ClientPool both ways, gives the same reply, failure and body."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from chatmagic.core.profiles import Profile
from chatmagic.engine.reply import Reply
from chatmagic.testing import MODELS, FakeEndpoint
from chatmagic.testing.in_process import InProcessTransport
from chatmagic.transport.client import ClientPool
from chatmagic.transport.stream import astream_chat
from openapi import assert_bodies_valid

# hang never ends (its timeout is the runner's); redirect's answer names the port it came to.
SKIPPED = {"hang", "redirect"}
TOOL = {"type": "function", "function": {"name": "add", "parameters": {
    "type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}}}


def _reply(pool: ClientPool, base_url: str, model: str, stream: bool) -> Reply:
    profile = Profile("local", base_url, needs_key=False)
    body: dict[str, Any] = {"model": model, "stream": stream,
                            "messages": [{"role": "user", "content": "one two three"}]}
    if stream:
        body["stream_options"] = {"include_usage": True}
    if model.startswith("tools"):
        body["tools"] = [TOOL]

    async def go() -> Reply:
        client = pool.async_(profile).with_options(max_retries=0)
        reply = Reply(model, "local", base_url)
        async for event in astream_chat(client, body, profile):
            reply.feed(event)
        reply.close()
        await pool.aclose_loop()
        return reply

    return asyncio.run(go())


def _seen(reply: Reply) -> tuple[Any, ...]:
    failure = reply.failure
    return (reply.text(), reply.reasoning(), reply.refusal(), reply.tool_calls(),
            [c.finish for c in reply.choices], reply.usage and reply.usage.completion_tokens,
            failure and (failure.kind, failure.status))


@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "whole"])
def test_every_scripted_model_reads_the_same_in_process_and_over_loopback(stream: bool) -> None:
    served, alone = FakeEndpoint(), FakeEndpoint()
    with served:
        loopback = ClientPool({})
        in_process = ClientPool({}, transport=InProcessTransport(alone))
        for model in sorted(set(MODELS) - SKIPPED):
            over_http = _reply(loopback, served.base_url, model, stream)
            here = _reply(in_process, alone.base_url, model, stream)
            assert _seen(here) == _seen(over_http), model
    assert [r.body for r in alone.chat_requests] == [r.body for r in served.chat_requests]
    assert_bodies_valid(served)
