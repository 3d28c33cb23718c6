"""Profiles: presets, environment, chatmagic.toml, PROFILE:MODEL, keys that never cross."""

from __future__ import annotations

from pathlib import Path

import pytest

from chatmagic.core.errors import ProfileError
from chatmagic.core.profiles import PRESETS, Profiles, mask_key, split_model


def test_every_spec_preset_exists_with_a_key_variable_or_none_needed() -> None:
    for name in ["openai", "qwen", "xinghuo", "claude", "gemini", "deepseek", "ollama", "vllm",
                 "llamacpp"]:
        profile = PRESETS[name]
        assert profile.base_url.startswith("http")
        assert profile.api_key_env or not profile.needs_key


def test_openai_key_never_crosses_to_another_profile(clean_env: Path) -> None:
    env = {"OPENAI_API_KEY": "sk-openai-secret-123456", "OPENAI_BASE_URL": "http://gw/v1"}
    profiles = Profiles.load(env)
    assert profiles.get("openai").resolve_key(env) == "sk-openai-secret-123456"
    assert profiles.get("env").resolve_key(env) == "sk-openai-secret-123456"
    assert profiles.get("qwen").resolve_key(env) is None
    with pytest.raises(ProfileError, match="set the environment variable DASHSCOPE_API_KEY"):
        profiles.get("qwen").require_key(env)


def test_openai_base_url_defines_the_default_profile(clean_env: Path) -> None:
    profiles = Profiles.load({"OPENAI_BASE_URL": "http://127.0.0.1:9/v1/"})
    assert profiles.default == "env" and profiles.get().base_url == "http://127.0.0.1:9/v1"


def test_chatmagic_profile_and_model(clean_env: Path) -> None:
    profiles = Profiles.load({"CHATMAGIC_PROFILE": "ollama", "CHATMAGIC_MODEL": "qwen2:7b"})
    assert profiles.get().name == "ollama" and profiles.get().model == "qwen2:7b"


def test_toml_profiles_inherit_presets_and_set_the_default(clean_env: Path) -> None:
    (clean_env / "chatmagic.toml").write_text(
        'default_profile = "zoo"\n'
        '[profiles.zoo]\nbase_url = "http://127.0.0.1:8000/v1"\napi_key_env = "ZOO_KEY"\n'
        'model = "echo"\nheaders = { "X-Team" = "a" }\nmax_tokens_field = "max_tokens"\n'
        '[profiles.qwen]\nmodel = "qwen2.5-7b-instruct"\n')
    profiles = Profiles.load({})
    zoo = profiles.get()
    assert (zoo.name, zoo.model, dict(zoo.headers), zoo.needs_key) == \
        ("zoo", "echo", {"X-Team": "a"}, True)
    qwen = profiles.get("qwen")
    assert qwen.model == "qwen2.5-7b-instruct"
    assert qwen.base_url == PRESETS["qwen"].base_url and qwen.api_key_env == "DASHSCOPE_API_KEY"


def test_user_config_dir_is_read_when_no_local_file(clean_env: Path) -> None:
    config = clean_env / "config" / "chatmagic"
    config.mkdir(parents=True)
    (config / "config.toml").write_text('[profiles.home]\nbase_url = "http://h/v1"\n')
    assert Profiles.load({}).get("home").base_url == "http://h/v1"


def test_broken_toml_names_the_file_and_line(clean_env: Path) -> None:
    (clean_env / "chatmagic.toml").write_text('[profiles.a]\nbase_url = "x"\nmodel = \n')
    with pytest.raises(ProfileError) as info:
        Profiles.load({})
    assert "chatmagic.toml" in str(info.value) and "line 3" in str(info.value)


def test_unknown_profile_suggests_the_nearest() -> None:
    with pytest.raises(ProfileError, match="Did you mean 'qwen'"):
        Profiles.load({}).get("qwem")


def test_profile_model_split_rules(clean_env: Path) -> None:
    profiles = Profiles.load({})
    assert (lambda p_m: (p_m[0].name, p_m[1]))(split_model("qwen:qwen-plus", profiles)) == \
        ("qwen", "qwen-plus")
    assert split_model("llama3:8b", profiles)[1] == "llama3:8b"  # no profile named llama3
    assert split_model("qwen:x", profiles, "ollama")[1] == "qwen:x"  # with -p never split


def test_keys_are_masked_and_never_in_reprs() -> None:
    key = "sk-proj-abcdefghijklmnop7Be"
    assert mask_key(key) == "sk-…7Be"
    profile = PRESETS["openai"].__class__("x", "http://x", api_key=key)
    assert key not in repr(profile) and key not in str(profile)


# -- working-directory trust ----------------------------------------------------------
ENV_KEY = "sk-env-secret-0123456789abcdef"


def _local(clean_env: Path, text: str) -> Path:
    path = clean_env / "chatmagic.toml"
    path.write_text(text)
    return path


def test_a_local_file_pointing_a_preset_key_elsewhere_needs_consent(clean_env: Path) -> None:
    from chatmagic.core import trust

    path = _local(clean_env, '[profiles.openai]\nbase_url = "http://127.0.0.1:9/v1"\n')
    env = {"OPENAI_API_KEY": ENV_KEY}
    with pytest.raises(ProfileError) as info:
        Profiles.load(env).get("openai").require_key(env)
    message = str(info.value)
    for words in (str(path), "127.0.0.1:9", "OPENAI_API_KEY", "api.openai.com",
                  "Nothing was sent", "%chat_config trust"):
        assert words in message
    assert ENV_KEY not in message
    print(trust.allow())
    assert Profiles.load(env).get("openai").require_key(env) == ENV_KEY
    assert (trust.store_path().stat().st_mode & 0o777) == 0o600
    path.write_text('[profiles.openai]\nbase_url = "http://127.0.0.1:10/v1"\n')  # edited
    with pytest.raises(ProfileError, match="127.0.0.1:10"):
        Profiles.load(env).get("openai").require_key(env)
    trust.allow(path)
    trust.revoke(path)
    with pytest.raises(ProfileError, match="Nothing was sent"):
        Profiles.load(env).get("openai").require_key(env)


def test_any_environment_variable_to_a_remote_host_needs_consent(clean_env: Path) -> None:
    _local(clean_env, '[profiles.gh]\nbase_url = "https://evil.example/v1"\n'
                      'api_key_env = "GITHUB_TOKEN"\n')
    env = {"GITHUB_TOKEN": "ghp_0123456789abcdefghij"}
    with pytest.raises(ProfileError, match="no trusted configuration names GITHUB_TOKEN"):
        Profiles.load(env).get("gh").require_key(env)


@pytest.mark.parametrize("text, name, key", [
    ('[profiles.openai]\nmodel = "gpt-x"\nheaders = { "X-Team" = "a" }\n', "openai", ENV_KEY),
    ('[profiles.zoo]\nbase_url = "http://127.0.0.1:8000/v1"\napi_key_env = "ZOO_KEY"\n', "zoo",
     ENV_KEY),  # a key of its own, to this machine
    ('[profiles.openai]\nbase_url = "https://elsewhere.example/v1"\n'
     'api_key = "sk-file-own-1234"\n', "openai", "sk-file-own-1234"),  # the file's own key
    ('[profiles.mine]\nbase_url = "https://api.openai.com/v1"\napi_key_env = "OPENAI_API_KEY"\n',
     "mine", ENV_KEY),  # the preset's key to the preset's host
])
def test_local_files_that_send_no_key_elsewhere_need_no_consent(clean_env: Path, text: str,
                                                                 name: str, key: str) -> None:
    from chatmagic.core import trust

    _local(clean_env, text)
    env = {"OPENAI_API_KEY": ENV_KEY, "ZOO_KEY": ENV_KEY}
    profiles = Profiles.load(env)
    assert profiles.get(name).require_key(env) == key  # sent, with nobody asked
    for profile in profiles:  # and no other profile the file touches holds a key back
        if profile.resolve_key(env):
            assert profile.require_key(env)
    assert not trust.store_path().exists()  # no consent was recorded to get there


def test_the_user_config_dir_and_the_notebook_are_trusted(clean_env: Path) -> None:
    config = clean_env / "config" / "chatmagic"
    config.mkdir(parents=True)
    (config / "config.toml").write_text(
        '[profiles.work]\nbase_url = "https://work.example/v1"\napi_key_env = "WORK_KEY"\n')
    env = {"WORK_KEY": ENV_KEY, "OPENAI_API_KEY": ENV_KEY}
    assert Profiles.load(env).get("work").require_key(env) == ENV_KEY  # the user's own file
    _local(clean_env, '[profiles.w]\nbase_url = "https://work.example/v2"\n'
                      'api_key_env = "WORK_KEY"\n'
                      '[profiles.openai]\nbase_url = "https://evil.example/v1"\n')
    profiles = Profiles.load(env)
    assert profiles.get("w").require_key(env) == ENV_KEY  # a route the user set up
    with pytest.raises(ProfileError, match="evil.example"):
        profiles.get("openai").require_key(env)
    profiles.update("openai", base_url="https://gw.example/v1")  # %chat_config: trusted
    assert profiles.get("openai").require_key(env) == ENV_KEY
