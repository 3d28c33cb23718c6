"""Keys stay with their endpoint: the HTTP edge against hostile endpoints, over real HTTP.

A hostile endpoint (tests/support/hostile.py) echoes keys in bodies and headers (split
across chunks, gzipped), redirects to another origin, and sends what was not
asked for; the real openai SDK talks to it through `chatmagic.transport.client`.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import openai
import pytest

from chatmagic.core import scrub
from chatmagic.transport.client import ClientPool
from chatmagic.core.profiles import Profile
from hostile import HostileEndpoint
from kernel import run_cells

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


def test_scrubber_holds_back_only_what_could_start_a_key() -> None:
    scrub.register(KEY)
    scrubber = scrub.StreamScrubber()
    assert scrubber.feed(b"data: {}\n\n") == b"data: {}\n\n"  # nothing held: no delay
    out = b"".join(scrubber.feed(KEY[i:i + 3].encode()) for i in range(0, len(KEY), 3))
    out += scrubber.feed(b" end") + scrubber.flush()
    assert out == "sk-…456 end".encode()


def test_an_encoding_not_asked_for_is_refused_not_passed_on() -> None:
    with HostileEndpoint() as endpoint:
        exc = _failure(ClientPool({}), _profile(endpoint), "brotli")
        asked = endpoint.received[0].headers["accept-encoding"]
    assert exc.status_code == 502 and "encoding 'br'" in str(exc)
    assert asked == "gzip, deflate"
    assert len(endpoint.received) == 1  # not retried


def test_the_pool_keeps_no_key_and_reuses_one_client_per_profile() -> None:
    with HostileEndpoint() as endpoint:
        pool = ClientPool({})
        profile = _profile(endpoint)
        assert pool.sync(profile) is pool.sync(profile)
        assert pool.sync(profile) is not pool.sync(Profile("h", endpoint.base_url, api_key=KEY + "x"))
    kept = repr(pool.__dict__.keys()) + repr(list(pool._sync))
    assert KEY not in kept and SECRET_HEADER not in kept


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


@pytest.mark.kernel
def test_key_echoed_by_a_hostile_endpoint_is_in_no_output_notebook_journal_or_log(
        clean_env: Path) -> None:
    store = clean_env / "store"
    log = clean_env / "debug.log"
    with HostileEndpoint() as endpoint:
        nb = run_cells([
            "%load_ext chatmagic",
            f"import logging; logging.basicConfig(filename={str(log)!r}, level=logging.DEBUG)",
            "%chat_config set notebook=hostile",
            "%%chat -m echo-key\nhello", "%%chat -m gzip-key\nhello",
            "%%chat -m stream-key\nhello", "%%chat -m spread-key\nagain",
            "%chat_history show", "%chat_history export",
            "%chat_history save saved.json"],
            env={"OPENAI_BASE_URL": endpoint.base_url, "OPENAI_API_KEY": KEY,
                 "CHATMAGIC_HISTORY_DIR": str(store)}, cwd=str(clean_env))
        assert endpoint.received[0].headers["authorization"] == f"Bearer {KEY}"
    # A key spread over many deltas is only found in the assembled text, which the
    # stream layer draws as it comes (not this edge); the history holds it masked.
    cells = [c for i, c in enumerate(nb.cells) if i != 6]
    dumped = json.dumps(cells, ensure_ascii=False)
    assert "Incorrect API key provided: Bearer sk-…456" in dumped  # the error was shown
    assert "your key is sk-…456" in dumped
    assert KEY not in dumped and KEY[-10:] not in dumped
    journals = [p for p in store.rglob("*") if p.is_file()]
    stored = "".join(p.read_text() for p in journals)
    assert "hello" in stored and KEY not in stored and KEY[-10:] not in stored
    assert journals and all(p.stat().st_mode & 0o777 == 0o600 for p in journals)
    assert KEY not in (clean_env / "saved.json").read_text()
    assert log.exists() and KEY not in log.read_text()


@pytest.mark.kernel
def test_a_working_dir_file_pointing_a_preset_key_elsewhere_sends_nothing_without_consent(
        clean_env: Path) -> None:
    with HostileEndpoint() as endpoint:
        (clean_env / "chatmagic.toml").write_text(
            f'default_profile = "openai"\n[profiles.openai]\nbase_url = "{endpoint.base_url}"\n')
        nb = run_cells(["%load_ext chatmagic", "%%chat -m ok\nthe secret conversation",
                        "%models", "%chat_config trust",
                        "%%chat -m ok\nnow with consent"],
                       env={"OPENAI_API_KEY": KEY}, cwd=str(clean_env))
        bodies = [r.body for r in endpoint.received]
    refused = json.dumps(nb.cells[1].outputs + nb.cells[2].outputs, ensure_ascii=False)
    for words in ("chatmagic.toml", endpoint.base_url.split("//")[1].split("/")[0],
                  "OPENAI_API_KEY", "Nothing was sent", "%chat_config trust"):
        assert words in refused
    assert "Traceback" not in refused and KEY not in refused
    assert len(bodies) == 1 and b"now with consent" in bodies[0]  # only after consent


def test_os_environ_in_a_prompt_sends_no_key(shell: Any, endpoint: Any, monkeypatch: Any,
                                             capsys: Any) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    shell.run_cell("import os\nenv_copy = dict(os.environ)")
    for field in ("{os.environ}", "{env_copy}"):
        result = shell.run_cell(f"%%chat -m echo\nmy environment is {field}")
        assert not result.success
    captured = capsys.readouterr()
    out = captured.out + captured.err
    assert "{os.environ} is the process environment" in out and "{env_copy} holds an API key" in out
    assert endpoint.chat_requests == [] and KEY not in out and "Traceback" not in out


@pytest.mark.parametrize("source, words", [
    ("file:///etc/passwd", "file:// URLs are not sent; give the path itself"),
    ("FILE:/etc/hosts", "file:// URLs are not sent"),
    ("ftp://example.org/a.png", "only http.s. and data: URLs"),
    ("data:text/html,<script>", "a data: URL must hold an image"),
])
def test_images_only_http_data_and_files_we_read(shell: Any, endpoint: Any, source: str,
                                                 words: str) -> None:
    from IPython.core.error import UsageError

    with pytest.raises(UsageError, match=words):
        shell.run_cell_magic("chat", f"-m echo -i {source}", "look")
    assert endpoint.chat_requests == []


LOAD_CASES = {
    "types.json": json.dumps([{"role": "user", "content": [{"type": "text", "text": 7}]}]),
    "huge.json": json.dumps([{"role": "user", "content": "x"}] * 20_001),
    "deep.json": "[" * 100_000 + "]" * 100_000,
}


def _history_cells(clean_env: Path, names: list[str], after: list[str]) -> Any:
    from chatmagic.testing import FakeEndpoint

    for name in names:
        (clean_env / name).write_text(LOAD_CASES[name])
    with FakeEndpoint() as endpoint:
        cells = ["%load_ext chatmagic", "%%chat -m echo\nkeep me"]
        cells += [f"%chat_history load {name}" for name in names]
        cells += ["%chat_history export -o h\nprint(h)", *after]
        return run_cells(cells, env={"OPENAI_BASE_URL": endpoint.base_url}, cwd=str(clean_env))


def _one_clear_error(cell: Any, words: str) -> None:
    """One message (IPython prints a UsageError on stderr, other errors as an error output)."""
    shown = [o.get("evalue") or o.get("text", "") for o in cell.outputs
             if o.get("output_type") == "error" or o.get("name") == "stderr"]
    assert len(shown) == 1 and words in shown[0], cell.outputs
    assert all(len(o.get("traceback", [])) <= 1 for o in cell.outputs)
    assert "Traceback" not in json.dumps(cell.outputs) and "RecursionError" not in shown[0]


@pytest.mark.kernel
def test_hostile_history_files_give_one_clear_error_and_leave_the_conversation(
        clean_env: Path) -> None:
    names = ["types.json", "huge.json"]
    nb = _history_cells(clean_env, names, ["%chat_history show"])
    _one_clear_error(nb.cells[2], "message 0 (role='user') has a text part whose text is not")
    _one_clear_error(nb.cells[3], "20001 messages; the limit is 20000")
    printed = "".join(o.get("text", "") for o in nb.cells[4].outputs)
    assert "keep me" in printed and printed.count("'role'") == 2  # untouched
    assert not [o for o in nb.cells[5].outputs if o.get("output_type") == "error"]


@pytest.mark.kernel
def test_deep_files_and_saves_through_history_view(clean_env: Path) -> None:
    nb = _history_cells(clean_env, ["deep.json"], [
        "%chat_history save saved.json", "%chat_history save no/such/dir/saved.json"])
    _one_clear_error(nb.cells[2], "nests too deep")
    assert "keep me" in "".join(o.get("text", "") for o in nb.cells[3].outputs)
    assert (clean_env / "saved.json").stat().st_mode & 0o777 == 0o600
    _one_clear_error(nb.cells[5], "does not exist; create it first")


# -- proxies ----------------------------------------------------------------------------
from chatmagic.transport.client import proxy_for  # noqa: E402


@pytest.mark.parametrize("url, env, expected", [
    ("https://api.openai.com/v1", {"HTTPS_PROXY": "http://u:pw@proxy:3128"}, "http://proxy:3128"),
    ("http://api.example/v1", {"HTTP_PROXY": "proxy:3128"}, "http://proxy:3128"),
    ("https://api.example/v1", {"HTTP_PROXY": "http://p:1"}, None),  # http only
    ("https://api.example/v1", {"ALL_PROXY": "http://p:1"}, "http://p:1"),
    ("http://127.0.0.1:8000/v1", {"HTTP_PROXY": "http://p:1", "NO_PROXY": "localhost"}, None),
    ("http://[::1]:8000/v1", {"HTTP_PROXY": "http://p:1", "no_proxy": "127.0.0.1"}, None),
    ("http://localhost:8000/v1", {"HTTP_PROXY": "http://p:1", "NO_PROXY": "::1"}, None),
    ("http://127.0.0.1:8000/v1", {"HTTP_PROXY": "http://p:1"}, "http://p:1"),  # as httpx does
    ("http://a.corp.example/v1", {"HTTP_PROXY": "http://p:1", "NO_PROXY": ".corp.example"},
     None),
    ("http://corp.example/v1", {"HTTP_PROXY": "http://p:1", "NO_PROXY": "corp.example"}, None),
    ("http://notcorp.example/v1", {"HTTP_PROXY": "http://p:1", "NO_PROXY": "corp.example"},
     "http://p:1"),
    ("http://10.1.2.3/v1", {"HTTP_PROXY": "http://p:1", "NO_PROXY": "10.0.0.0/8"}, None),
    ("http://gw:8080/v1", {"HTTP_PROXY": "http://p:1", "NO_PROXY": "gw:9090"}, "http://p:1"),
    ("http://gw:8080/v1", {"HTTP_PROXY": "http://p:1", "NO_PROXY": "*"}, None),
    ("http://gw/v1", {"HTTP_PROXY": "http://up:1", "http_proxy": "http://low:2"}, "http://low:2"),
])
def test_proxy_variables_are_read_as_httpx_reads_them(url: str, env: dict[str, str],
                                                      expected: str | None) -> None:
    assert proxy_for(url, env) == expected


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


def test_scrubber_catches_every_key_at_every_split() -> None:
    import random

    keys = ["sk-aaaa-1111-2222-3333", "sk-aaab-9999-8888", "tok/with/slash-123456"]
    scrub.register(*keys)
    text = ("x sk-aaa " + keys[0] + " s" + keys[1] + "sk-" + keys[2] + " end").encode()
    expected = scrub.scrub_bytes(text)
    assert not any(k.encode() in expected for k in keys)
    rng = random.Random(7)
    for _ in range(300):
        cuts = sorted(rng.sample(range(1, len(text)), rng.randint(1, 12)))
        pieces = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)])]
        scrubber = scrub.StreamScrubber()
        assert b"".join(scrubber.feed(p) for p in pieces) + scrubber.flush() == expected


@pytest.mark.parametrize("base, location, words", [
    ("http://gw.example", "http://gw.example/v1/chat/completions",
     'base_url is missing /v1: set base_url = "http://gw.example/v1"'),
    ("http://gw.example/v1", "https://gw.example/v1/chat/completions",
     'the endpoint moved to https: set base_url = "https://gw.example/v1"'),
    ("http://gw.example/v1", "/api/v1/chat/completions",
     'redirects to /api/v1/chat/completions on the same host: set base_url = '
     '"http://gw.example/api/v1"'),
    ("http://gw.example/v1", "https://evil.example/v1/chat/completions",
     "redirects to another origin, https://evil.example; chatmagic does not follow it"),
    ("https://gw.example/v1", "http://gw.example/v1/chat/completions", "another origin"),
])
def test_redirect_advice_says_what_to_fix(base: str, location: str, words: str) -> None:
    from chatmagic.transport.client import redirect_advice

    assert words in redirect_advice(base, base + "/chat/completions", location)


@pytest.mark.kernel
def test_a_huge_error_with_ansi_escapes_is_one_short_clean_line(clean_env: Path) -> None:
    with HostileEndpoint() as endpoint:
        nb = run_cells(["%load_ext chatmagic", "%%chat -m huge-error\nhi"],
                       env={"OPENAI_BASE_URL": endpoint.base_url}, cwd=str(clean_env))
    shown = json.dumps(nb.cells[1].outputs, ensure_ascii=False)
    assert len(shown) < 20_000  # the server sent 5 MB
    assert "[32m" not in shown and "all good" in shown  # its words, without its colours
    assert "more characters cut" in shown
