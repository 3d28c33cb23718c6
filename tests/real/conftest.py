"""The real-server tier: chatmagic in a real kernel against servers nobody here wrote.

`scripts/real-servers run ...` starts llama-cpp-python's server (Gemma 3 270M; a second one
with the chatml-function-calling format), llama.cpp's own server, and LiteLLM's proxy in front
of llama-cpp-python, and passes their URLs in the environment. Without those variables every
test here is skipped, so a developer's ``./scripts/test`` is unaffected. See
docs/real-servers.md.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from realenv import LITELLM_KEY, LITELLM_URL, LLAMA_TOOLS_URL, LLAMA_URL, LLAMACPP_URL, WRONG_KEY


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "real: runs against real servers (llama-cpp-python, llama.cpp, LiteLLM); "
                   "needs the CHATMAGIC_REAL_* variables (scripts/real-servers run ...)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    skip = pytest.mark.skip(reason="real servers not given: run through "
                                   "`scripts/real-servers run` (docs/real-servers.md)")
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.real)
            item.add_marker(pytest.mark.kernel)
            if not (LLAMA_URL and LITELLM_URL and LITELLM_KEY and LLAMA_TOOLS_URL
                    and LLAMACPP_URL):
                item.add_marker(skip)


@pytest.fixture
def real(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Profiles for the servers in the user config file (the kernels inherit the env).

    ``llama``: llama-cpp-python's server, no key. ``llama_tools``: the same with the
    chatml-function-calling format. ``llamacpp``: llama.cpp's own server. ``lite``: LiteLLM
    with the master key from the environment. ``lite_wrong``: LiteLLM with a key it never issued. ``lite_serial``:
    ``lite`` declared ``one_at_a_time`` (the profile setting for servers that cut each other).
    """
    monkeypatch.setenv("CHATMAGIC_REAL_WRONG_KEY", WRONG_KEY)
    config = clean_env / "config" / "chatmagic"
    config.mkdir(parents=True)
    (config / "config.toml").write_text(
        'default_profile = "llama"\n'
        f'[profiles.llama]\nbase_url = "{LLAMA_URL}"\nmodel = "gemma-3-270m"\ntimeout = 120\n'
        f'[profiles.llama_tools]\nbase_url = "{LLAMA_TOOLS_URL}"\nmodel = "gemma-3-270m"\n'
        'timeout = 120\n'
        f'[profiles.llamacpp]\nbase_url = "{LLAMACPP_URL}"\nmodel = "gemma-3-270m"\ntimeout = 120\n'
        f'[profiles.lite]\nbase_url = "{LITELLM_URL}"\n'
        'api_key_env = "CHATMAGIC_REAL_LITELLM_KEY"\nmodel = "gemma-a"\ntimeout = 120\n'
        f'[profiles.lite_wrong]\nbase_url = "{LITELLM_URL}"\n'
        'api_key_env = "CHATMAGIC_REAL_WRONG_KEY"\nmodel = "gemma-a"\ntimeout = 120\n'
        f'[profiles.lite_serial]\nbase_url = "{LITELLM_URL}"\n'
        'api_key_env = "CHATMAGIC_REAL_LITELLM_KEY"\nmodel = "gemma-a"\ntimeout = 120\n'
        'one_at_a_time = true\n')
    return clean_env
