"""The in-process transport: FakeEndpoint's own handler answers without a socket, the bytes
of a stream in the pieces it wrote them, inside the same scrubbing edge as the network."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx2
import openai
import pytest

from chatmagic.core.profiles import Profile
from chatmagic.testing import FakeEndpoint, RawReply
from chatmagic.testing.in_process import InProcessTransport
from chatmagic.transport.client import ClientPool
from openapi import assert_bodies_valid
from wait import until

KEY = "sk-inproc-ABCDEFGHIJKLMNOPQRST0123"
HI = [{"role": "user", "content": "one two three"}]
TOOL = {"type": "function", "function": {"name": "lookup", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}


def _pieces(transport: InProcessTransport, url: str, body: dict[str, Any]) -> list[bytes]:
    with httpx2.Client(transport=transport) as client, \
            client.stream("POST", url, json=body) as response:
        return list(response.iter_raw())


def test_a_stream_arrives_as_the_sse_frames_it_was_written_in() -> None:
    endpoint = FakeEndpoint()
    transport = InProcessTransport(endpoint)
    pieces = _pieces(transport, f"{endpoint.base_url}/chat/completions",
                     {"model": "echo", "messages": HI, "stream": True,
                      "stream_options": {"include_usage": True}})
    # role, three words, finish, usage, [DONE]: one write each, one piece each
    assert len(pieces) == 7 and all(p.startswith(b"data: ") and p.endswith(b"\n\n")
                                    for p in pieces)
    assert [json.loads(p[6:])["choices"][0]["delta"].get("content") for p in pieces[1:4]] == \
        ["one ", "two ", "three"]
    assert pieces[-1] == b"data: [DONE]\n\n"


def test_a_character_split_across_two_writes_stays_split() -> None:
    endpoint = FakeEndpoint()
    pieces = _pieces(InProcessTransport(endpoint), f"{endpoint.base_url}/chat/completions",
                     {"model": "mislabelled", "messages": HI, "stream": True})
    assert any(p.endswith("é".encode()[:1]) for p in pieces)  # the first byte of é, alone
    assert "café".encode() in b"".join(pieces)


def test_raw_writes_come_back_byte_for_byte_and_pauses_are_skipped() -> None:
    writes: list[bytes | float] = [b"data: {", b'"x": 1}\n', 30.0, b"\n", b"data: [DONE]\n\n"]
    endpoint = FakeEndpoint(raw={"raw": RawReply(writes)})
    pieces = _pieces(InProcessTransport(endpoint), f"{endpoint.base_url}/chat/completions",
                     {"model": "raw", "messages": HI, "stream": True})
    assert pieces == [w for w in writes if isinstance(w, bytes)]  # 30 s not slept


def test_scripted_pauses_are_not_slept_unless_paced(monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace

    from chatmagic.testing import base

    slept: list[float] = []  # the handlers' own sleeps (not every thread's in the process)
    monkeypatch.setattr(base, "time", SimpleNamespace(sleep=slept.append))
    endpoint = FakeEndpoint()
    pieces = _pieces(InProcessTransport(endpoint), f"{endpoint.base_url}/chat/completions",
                     {"model": "echo/delay=5&first=5&pause=5", "messages": HI, "stream": True})
    assert len(pieces) == 6 and slept == []
    paced = InProcessTransport(FakeEndpoint(), pace=True)
    _pieces(paced, f"{paced.endpoints[0].base_url}/chat/completions",
            {"model": "echo/delay=0.001", "messages": HI, "stream": True})
    assert slept == [0.001] * 3


def test_the_pool_scrubs_what_comes_back_sync_and_async() -> None:
    endpoint = FakeEndpoint()
    transport = InProcessTransport(endpoint)
    # tools/args=key: the model puts the request's bearer key in its call's arguments ...
    bare = openai.OpenAI(base_url=endpoint.base_url, api_key=KEY,
                         http_client=httpx2.Client(transport=transport))
    leaked = bare.chat.completions.create(model="tools/args=key", messages=HI,
                                          tools=[TOOL])  # type: ignore[list-item]
    assert KEY in leaked.choices[0].message.tool_calls[0].function.arguments  # type: ignore
    # ... which the pool's edge masks, the transport in process or not.
    pool = ClientPool({}, transport=transport)
    profile = Profile("p", endpoint.base_url, api_key=KEY)
    reply = pool.sync(profile).chat.completions.create(model="tools/args=key", messages=HI,
                                                       tools=[TOOL])  # type: ignore[list-item]
    arguments = reply.choices[0].message.tool_calls[0].function.arguments  # type: ignore
    assert KEY not in arguments and json.loads(arguments)["city"]

    async def asked() -> str:
        reply = await pool.async_(profile).chat.completions.create(
            model="tools/args=key", messages=HI, tools=[TOOL])  # type: ignore[list-item]
        return reply.choices[0].message.tool_calls[0].function.arguments  # type: ignore

    assert KEY not in asyncio.run(asked())
    sent = [r.headers["authorization"] for r in endpoint.chat_requests]
    assert sent == [f"Bearer {KEY}"] * 3  # the key went out, and came back masked
    assert_bodies_valid(endpoint)


def test_a_silent_handler_times_out_as_a_socket_would() -> None:
    endpoint = FakeEndpoint(raw={"slow": RawReply([5.0, b"data: [DONE]\n\n"])})
    transport = InProcessTransport(endpoint, pace=True)
    with httpx2.Client(transport=transport, timeout=0.05) as client, \
            pytest.raises(httpx2.ReadTimeout):
        client.post(f"{endpoint.base_url}/chat/completions",
                    json={"model": "slow", "messages": HI, "stream": True})


def test_closing_a_stream_hangs_up_on_the_handler() -> None:
    endpoint = FakeEndpoint()
    transport = InProcessTransport(endpoint)
    with httpx2.Client(transport=transport) as client, \
            client.stream("POST", f"{endpoint.base_url}/chat/completions",
                          json={"model": "hang", "messages": HI, "stream": True}) as response:
        next(response.iter_raw())  # ": waiting", then the client goes
    # the handler notices at its next write (every 0.05 s)
    until(lambda: endpoint.chat_requests[0].disconnected, "the handler seeing the hang-up")


def test_each_endpoint_answers_at_its_own_port_and_others_refuse() -> None:
    one, two = FakeEndpoint(owned_by="one"), FakeEndpoint(owned_by="two")
    transport = InProcessTransport(one)
    transport.add(two)
    assert one.port != two.port
    with httpx2.Client(transport=transport) as client:
        assert client.get(f"{two.base_url}/models").json()["data"][0]["owned_by"] == "two"
        assert client.get(f"{one.base_url}/models").json()["data"][0]["owned_by"] == "one"
        with pytest.raises(httpx2.ConnectError):
            client.get("http://127.0.0.1:9/v1/models")
        with pytest.raises(httpx2.ConnectError):
            client.get(f"http://example.com:{one.port}/v1/models")
    assert [r.path for r in one.requests] == [r.path for r in two.requests] == ["/v1/models"]


def test_gateway_capability_and_batch_routes_answer_too() -> None:
    endpoint = FakeEndpoint()
    transport = InProcessTransport(endpoint)
    with httpx2.Client(transport=transport) as client:
        info = client.get(f"{endpoint.gateway_url('litellm').removesuffix('/v1')}/key/info")
        assert info.json()["info"]["spend"] == 1.75
        groups = client.get(f"http://127.0.0.1:{endpoint.port}/model_group/info").json()
        assert {g["model_group"] for g in groups["data"]} >= {"text-only", "echo"}
    client = openai.OpenAI(base_url=endpoint.base_url, api_key="x",
                           http_client=httpx2.Client(transport=transport))
    line = {"custom_id": "a", "method": "POST", "url": "/v1/chat/completions",
            "body": {"model": "echo", "messages": HI}}
    uploaded = client.files.create(file=("in.jsonl", json.dumps(line).encode()),
                                   purpose="batch")
    assert client.files.retrieve(uploaded.id).bytes == len(json.dumps(line))


def test_a_pool_takes_only_a_transport_that_answers_both_ways() -> None:
    with pytest.raises(TypeError, match="both blocking and async"):
        ClientPool({}, transport=httpx2.HTTPTransport())
    ClientPool({}, transport=httpx2.MockTransport(lambda request: httpx2.Response(204)))


def test_a_body_against_openais_schema_fails_the_check() -> None:
    endpoint = FakeEndpoint()
    with httpx2.Client(transport=InProcessTransport(endpoint)) as client:
        client.post(f"{endpoint.base_url}/chat/completions", json={"model": "echo"})
    with pytest.raises(AssertionError, match="messages"):
        assert_bodies_valid(endpoint)
