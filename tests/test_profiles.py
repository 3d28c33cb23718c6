"""Profiles: presets, environment, chatmagic.toml, PROFILE:MODEL, keys that never cross."""

from __future__ import annotations

from pathlib import Path

import pytest

from chatmagic.errors import ProfileError
from chatmagic.profiles import PRESETS, Profiles, mask_key, split_model


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
