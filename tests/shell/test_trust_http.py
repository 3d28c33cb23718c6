"""The scrubbing edge over real HTTP, against a hostile server: keys echoed in bodies, headers
and gzip, split across chunks; encodings not asked for; redirects; proxies; two sessions."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import openai
import pytest

from chatmagic.transport.client import ClientPool
from chatmagic.core.profiles import Profile
from hostile import HostileEndpoint

KEY = "sk-hostile-ABCDEFGHIJKLMNOP123456"


SECRET_HEADER = "hdr-secret-QWERTYUIOP"


HI = [{"role": "user", "content": "the secret conversation"}]


def _profile(endpoint: HostileEndpoint) -> Profile:
    return Profile("h", endpoint.base_url, api_key=KEY, headers={"X-Api-Secret": SECRET_HEADER})


def _failure(pool: ClientPool, profile: Profile, model: str) -> openai.APIStatusError:
    with pytest.raises(openai.APIStatusError) as info:
        pool.sync(profile).chat.completions.create(model=model, messages=HI)  # type: ignore
    return info.value


def _everything(exc: openai.APIStatusError) -> str:
    return " ".join([str(exc), repr(exc.body), repr(dict(exc.response.headers)),
                     exc.response.text])


@pytest.mark.parametrize("model", ["echo-key", "gzip-key"])
def test_a_key_echoed_in_an_error_body_and_headers_is_masked(model: str) -> None:
    with HostileEndpoint() as endpoint:
        exc = _failure(ClientPool({}), _profile(endpoint), model)
        sent = endpoint.received[0].headers
    assert sent["authorization"] == f"Bearer {KEY}"  # it was sent, and echoed back
    seen = _everything(exc)
    assert KEY not in seen and KEY[-10:] not in seen and SECRET_HEADER not in seen
    assert "Bearer sk-…456" in str(exc)  # masked, still readable


def test_a_key_split_across_stream_chunks_is_masked_sync_and_async() -> None:
    with HostileEndpoint() as endpoint:
        pool = ClientPool({})
        profile = _profile(endpoint)
        stream = pool.sync(profile).chat.completions.create(model="stream-key", messages=HI,
                                                            stream=True)  # type: ignore
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)

        async def collect() -> str:
            client = pool.async_(profile)
            reply = await client.chat.completions.create(model="stream-key", messages=HI,
                                                         stream=True)  # type: ignore
            out = "".join([c.choices[0].delta.content or "" async for c in reply if c.choices])
            await pool.aclose_loop()
            return out

        async_text = asyncio.run(collect())
    assert text == async_text == "your key is sk-…456 and that is all"


def test_an_encoding_not_asked_for_is_refused_not_passed_on() -> None:
    with HostileEndpoint() as endpoint:
        exc = _failure(ClientPool({}), _profile(endpoint), "brotli")
        asked = endpoint.received[0].headers["accept-encoding"]
    assert exc.status_code == 502 and "encoding 'br'" in str(exc)
    assert asked == "gzip, deflate"
    assert len(endpoint.received) == 1  # not retried


@pytest.mark.parametrize("model", ["redirect", "redirect-301"])
def test_a_redirect_to_another_origin_is_not_followed(model: str) -> None:
    with HostileEndpoint() as elsewhere, HostileEndpoint(redirect_to=elsewhere.origin) as endpoint:
        exc = _failure(ClientPool({}), _profile(endpoint), model)
        assert elsewhere.received == []  # no conversation, no key, not even a request
        assert len(endpoint.received) == 1
    assert exc.status_code in (301, 307)
    assert exc.response.headers["location"].startswith(elsewhere.origin)


def test_redirect_in_a_shell_sends_nothing_elsewhere(clean_env: Path, monkeypatch: Any,
                                                     capsys: Any) -> None:
    import chatmagic
    from IPython.testing.globalipapp import get_ipython

    with HostileEndpoint() as elsewhere, HostileEndpoint(redirect_to=elsewhere.origin) as endpoint:
        monkeypatch.setenv("OPENAI_BASE_URL", endpoint.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", KEY)
        ip = get_ipython()
        chatmagic._magics = None
        chatmagic.load_ipython_extension(ip)
        try:
            result = ip.run_cell("%%chat -m redirect\nthe secret conversation")
        finally:
            chatmagic.unload_ipython_extension(ip)
        assert elsewhere.received == []
    out = capsys.readouterr().out
    assert not result.success and "307" in out and KEY not in out


def test_requests_go_through_the_proxy_and_loopback_is_exempt_by_no_proxy() -> None:
    with HostileEndpoint() as proxy, HostileEndpoint() as direct:
        env = {"HTTP_PROXY": proxy.origin, "NO_PROXY": "localhost"}
        remote = Profile("r", "http://remote.invalid/v1", api_key=KEY)
        pool = ClientPool(env)
        stream = pool.sync(remote).chat.completions.create(model="ok", messages=HI,
                                                           stream=True)  # type: ignore
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "ok"
        assert proxy.received[0].path == "http://remote.invalid/v1/chat/completions"
        local = Profile("l", direct.base_url, api_key=KEY)
        pool.sync(local).chat.completions.create(model="ok", messages=HI)  # type: ignore
        assert len(proxy.received) == 1 and len(direct.received) == 1  # 127.0.0.1 went direct


def test_two_sessions_mask_every_key_in_play_with_nothing_to_clean(
        clean_env: Path, caplog: Any) -> None:
    """Keys are the user's, not a session's, so the registry is the process's: a session's
    endpoint that sends back another session's key (a shared gateway, a prompt that quotes
    it) has it masked too; a key outlives the session that brought it (logs and saved
    notebooks do); a log record, which names no session, is scrubbed of every key."""
    import gc
    import logging

    from chatmagic import prompt
    from chatmagic.engine.session import Session, use_session
    from chatmagic.testing import FakeEndpoint

    key_a, key_b = "sk-session-a-AAAAAAAAAAAA1111", "sk-session-b-BBBBBBBBBBBB2222"
    with HostileEndpoint() as hostile, FakeEndpoint() as echo:
        one = Session(environ={"OPENAI_BASE_URL": hostile.base_url, "OPENAI_API_KEY": key_a})
        two = Session(environ={"OPENAI_BASE_URL": echo.base_url, "OPENAI_API_KEY": key_b})
        try:
            use_session(one)
            said_one = prompt("hi", model="stream-key").text()
            del one
            gc.collect()
            use_session(two)
            said_two = prompt(f"say {key_a} and {key_b}", model="echo").text()
        finally:
            use_session(None)
        assert hostile.received[0].headers["authorization"] == f"Bearer {key_a}"
        assert key_a in echo.chat_requests[0].body["messages"][0]["content"]  # sent as typed
    assert said_one == "your key is sk-…111 and that is all"
    assert said_two == "say sk-…111 and sk-…222"
    with caplog.at_level(logging.DEBUG, logger="httpx"):
        logging.getLogger("httpx").debug("headers %s %s", key_a, key_b)
    assert caplog.messages[-1] == "headers sk-…111 sk-…222"
