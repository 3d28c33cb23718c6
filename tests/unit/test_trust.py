"""Keys stay with their endpoint: the scrubber, the proxy rules, redirect advice, trust of
working-directory files, and keys in prompts and histories (in process; the HTTP edge against
a hostile server is in tests/shell/test_trust_http.py, a real kernel's in
tests/kernel/test_trust_kernel.py).
"""

from __future__ import annotations

from typing import Any

import pytest

from chatmagic.core import scrub
from chatmagic.transport.client import ClientPool
from chatmagic.core.profiles import Profile

KEY = "sk-hostile-ABCDEFGHIJKLMNOP123456"
SECRET_HEADER = "hdr-secret-QWERTYUIOP"
HI = [{"role": "user", "content": "the secret conversation"}]


def test_scrubber_holds_back_only_what_could_start_a_key() -> None:
    scrub.register(KEY)
    scrubber = scrub.StreamScrubber()
    assert scrubber.feed(b"data: {}\n\n") == b"data: {}\n\n"  # nothing held: no delay
    out = b"".join(scrubber.feed(KEY[i:i + 3].encode()) for i in range(0, len(KEY), 3))
    out += scrubber.feed(b" end") + scrubber.flush()
    assert out == "sk-…456 end".encode()


def test_the_pool_keeps_no_key_and_reuses_one_client_per_profile() -> None:
    base_url = "http://127.0.0.1:9/v1"  # clients are made here, never asked anything
    pool = ClientPool({})
    profile = Profile("h", base_url, api_key=KEY, headers={"X-Api-Secret": SECRET_HEADER})
    assert pool.sync(profile) is pool.sync(profile)
    assert pool.sync(profile) is not pool.sync(Profile("h", base_url, api_key=KEY + "x"))
    kept = repr(pool.__dict__.keys()) + repr(list(pool._sync))
    assert KEY not in kept and SECRET_HEADER not in kept


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


