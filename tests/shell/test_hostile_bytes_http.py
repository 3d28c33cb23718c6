"""A hostile endpoint's bytes over real loopback sockets, read by chatmagic and, beside it,
by the raw openai SDK (its own default client): figures that are no numbers, a surrogate
pair cut in two, reasoning in other servers' fields, a certificate nobody here trusts, a
same-origin move, and gzip bombs (1 GB decoded from about 1 MB sent) whose reading must
stay within the limits, in memory too (measured in a process of its own).

The in-process twins, and the logic's edge cases, are in tests/unit/test_hostile_bytes.py.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import openai
import pytest

from chatmagic.core.profiles import Profile
from chatmagic.engine.reply import Reply
from chatmagic.transport.client import ClientPool
from chatmagic.transport.stream import astream_chat
from hostile import HostileEndpoint

HI = [{"role": "user", "content": "hi"}]
SRC = Path(__file__).resolve().parents[2] / "src"


def chatmagic_reply(base_url: str, model: str, pool: ClientPool | None = None) -> Reply:
    profile = Profile("hostile", base_url, needs_key=False)

    async def go() -> Reply:
        client = (pool or ClientPool({})).async_(profile).with_options(max_retries=0)
        reply = Reply(model, profile.name, base_url)
        async for event in astream_chat(client, {"model": model, "messages": HI,
                                                 "stream": True}, profile):
            reply.feed(event)
        await client.close()
        reply.close()
        return reply

    return asyncio.run(go())


def sdk_stream(base_url: str, model: str) -> list[Any]:
    """The chunks the raw SDK gives for the same request (its default client, no retries)."""
    client = openai.OpenAI(base_url=base_url, api_key="sk-none", max_retries=0)
    return list(client.chat.completions.create(model=model, messages=HI,  # type: ignore
                                               stream=True))


def _text(chunks: list[Any]) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks
                   if c.choices and isinstance(c.choices[0].delta.content, str))


def test_usage_figures_that_are_no_numbers_keep_the_reply() -> None:
    with HostileEndpoint() as endpoint:
        reply = chatmagic_reply(endpoint.base_url, "nan-usage")
        raw = sdk_stream(endpoint.base_url, "nan-usage")
    assert reply.failure is None and reply.complete and reply.text() == "kept"
    assert reply.usage is not None and reply.usage.estimated
    # The raw SDK passes the figures on as it parsed them: NaN, inf, inf.
    usage = raw[-1].usage
    assert _text(raw) == "kept" and usage.prompt_tokens != usage.prompt_tokens


def test_a_surrogate_pair_split_across_chunks_is_one_emoji() -> None:
    with HostileEndpoint() as endpoint:
        reply = chatmagic_reply(endpoint.base_url, "split-pair")
        raw = _text(sdk_stream(endpoint.base_url, "split-pair"))
    assert reply.text() == "smile \U0001F600"
    assert raw == "smile \ud83d\ude00" and raw != "smile \U0001F600"  # two lone halves


@pytest.mark.parametrize("model, reasoning", [("reasoning-details", "Weigh it."),
                                              ("magistral", "Hmm.")])
def test_reasoning_in_other_servers_fields_is_shown(model: str, reasoning: str) -> None:
    with HostileEndpoint() as endpoint:
        reply = chatmagic_reply(endpoint.base_url, model)
    assert (reply.reasoning(), reply.text()) == (reasoning, "Yes.")


@pytest.mark.parametrize("model", ["moved-307", "moved-308"])
def test_a_same_origin_move_is_followed_as_the_sdk_does(model: str) -> None:
    with HostileEndpoint() as endpoint:
        reply = chatmagic_reply(endpoint.origin + "/old", model)
        raw = _text(sdk_stream(endpoint.origin + "/old", model))
        paths = [r.path for r in endpoint.received]
        bodies = {r.body for r in endpoint.received}
    assert reply.failure is None and reply.text() == raw == "ok"
    assert paths == ["/old/chat/completions", "/v1/chat/completions"] * 2
    assert len(bodies) == 1  # the same body each time


def test_another_origin_is_still_refused() -> None:
    with HostileEndpoint() as elsewhere, HostileEndpoint(redirect_to=elsewhere.origin) as endpoint:
        reply = chatmagic_reply(endpoint.base_url, "redirect")
        assert elsewhere.received == []
    assert reply.failure is not None and reply.failure.kind == "redirect"
    assert "redirects to another origin" in reply.failure.message


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1, made by openssl."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = str(folder / "cert.pem"), str(folder / "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                    "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1", "-addext",
                    "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    return cert, key


def test_an_unknown_certificate_authority_is_named_with_its_fix(
        certificate: tuple[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    with HostileEndpoint(tls=certificate) as endpoint:
        reply = chatmagic_reply(endpoint.base_url, "hello")
        with pytest.raises(openai.APIConnectionError) as raw:
            sdk_stream(endpoint.base_url, "hello")
        # The advice works: the same server, its certificate named in SSL_CERT_FILE.
        monkeypatch.setenv("SSL_CERT_FILE", certificate[0])
        trusted = chatmagic_reply(endpoint.base_url, "hello")
    failure = reply.failure
    assert failure is not None and failure.kind == "certificate"
    assert "TLS certificate failed the check (self-signed certificate)" in failure.message
    assert "SSL_CERT_FILE" in failure.message and "is the server running" not in failure.message
    assert str(raw.value) == "Connection error."  # all the raw SDK says
    assert trusted.failure is None and trusted.text() == "ok"


_CHILD = """
import asyncio, json, resource, sys
from chatmagic.core.profiles import Profile
from chatmagic.engine.reply import Reply
from chatmagic.transport.client import ClientPool
from chatmagic.transport.stream import astream_chat

base_url, model = sys.argv[1], sys.argv[2]
profile = Profile("bomb", base_url, needs_key=False)

async def go():
    client = ClientPool({}).async_(profile).with_options(max_retries=0)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    reply = Reply(model, "bomb", base_url)
    async for event in astream_chat(client, {"model": model, "stream": True,
                                             "messages": [{"role": "user", "content": "x"}]},
                                    profile):
        reply.feed(event)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"text": reply.text(), "failure": reply.failure.message,
                      "kind": reply.failure.kind, "grew_kb": peak - before}))

asyncio.run(go())
"""


@pytest.mark.parametrize("model, says", [
    ("bomb-line", "one line of the stream went past 16 MB"),
    ("bomb-lines", "the response went past 256 MB"),
])
def test_a_gzip_bomb_stops_at_its_limit_in_bounded_memory(model: str, says: str) -> None:
    with HostileEndpoint() as endpoint:
        sent = len(endpoint.bomb(model.removeprefix("bomb-")))
        child = subprocess.run([sys.executable, "-c", _CHILD, endpoint.base_url, model],
                               capture_output=True, text=True, timeout=300,
                               env={**os.environ, "PYTHONPATH": str(SRC)})
    assert child.returncode == 0, child.stderr[-2000:]
    seen = json.loads(child.stdout)
    assert sent < 1_100_000  # about 1 MB on the wire, 1 GB decoded
    assert seen["text"] == "before the bomb" and seen["kind"] == "protocol"
    assert says in seen["failure"] and "[profiles.bomb]" in seen["failure"]
    assert seen["grew_kb"] < 120_000, seen  # the kernel took 3.9 GB before the limits
