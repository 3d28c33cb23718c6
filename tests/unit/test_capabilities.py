"""What endpoints say of their models (LiteLLM's /model_group/info, llama.cpp's /props), asked
once per endpoint, and the warnings a cell shows before it sends: against FakeEndpoint over
real HTTP through the openai SDK, and in a real shell and kernel."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from chatmagic.engine.capabilities import (ModelInfo, read_model_group_info, read_props,
                                    server_root)
from chatmagic.core.options import ChatOptions
from chatmagic.core.profiles import Profile, Profiles
from chatmagic.engine.session import Session
from chatmagic.testing import FakeEndpoint

# A 1x1 PNG: an image part without a file or a network fetch.
PIXEL = ("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"
         "+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")
LONG = " ".join(f"word{i}" for i in range(800))  # about 1,400 tokens by the estimate

# LiteLLM 1.108's answer for a model given no model_info (trimmed): supports_vision false.
LITELLM_ANSWER = {"data": [{"model_group": "gemma-a", "providers": ["openai"],
                            "max_input_tokens": None, "max_output_tokens": None,
                            "input_cost_per_token": None, "output_cost_per_token": None,
                            "supports_vision": False, "supports_function_calling": False}]}
# llama.cpp llama-server's /props (trimmed).
LLAMA_SERVER_PROPS = {"default_generation_settings": {"id": 0, "n_ctx": 600,
                                                      "params": {"n_predict": -1}},
                      "total_slots": 1, "model_path": "gemma.gguf",
                      "modalities": {"vision": False, "audio": False}}


def test_the_answers_are_read_as_the_servers_write_them() -> None:
    assert read_model_group_info(LITELLM_ANSWER) == {
        "gemma-a": ModelInfo("LiteLLM's /model_group/info", vision=False)}
    priced = read_model_group_info({"data": [{"model_group": "m", "max_input_tokens": 8192,
                                              "input_cost_per_token": 2.5e-6,
                                              "output_cost_per_token": 1e-5}]})
    assert priced is not None
    info = priced["m"]
    assert info.context == 8192 and info.vision is None
    assert info.input_price == pytest.approx(2.5) and info.output_price == pytest.approx(10)
    assert read_props(LLAMA_SERVER_PROPS) == ModelInfo("llama.cpp's /props", vision=False,
                                                      context=600)
    # Anything else is nothing known, never an error.
    for junk in (None, [], {"data": 3}, {"detail": "Not Found"}, "<html>", {"n_ctx": 4}):
        assert read_model_group_info(junk) is None
        assert read_props(junk) is None
    assert server_root("http://h:4000/v1/") == "http://h:4000"
    assert server_root("http://h/api") == "http://h/api"


def _session(endpoint: FakeEndpoint) -> tuple[Session, Profile]:
    profile = Profile("fake", endpoint.base_url, needs_key=False)
    return Session(Profiles({"fake": profile}, default="fake"), environ={}), profile


def _gets(endpoint: FakeEndpoint) -> list[str]:
    return [r.path for r in endpoint.requests if r.method == "GET"]


def test_an_image_for_a_text_only_model_is_a_warning(endpoint: FakeEndpoint) -> None:
    session, _ = _session(endpoint)
    plan = session.plan(ChatOptions(prompt="what is this?", model="text-only", images=[PIXEL]))
    (warning,) = session.warnings(plan)
    assert "text-only may not see the image" in warning
    assert "LiteLLM's /model_group/info" in warning and "supports_vision false" in warning
    assert f"http://127.0.0.1:{endpoint.port}" in warning
    # Asked once for the session, whatever the next cells send.
    plan = session.plan(ChatOptions(prompt="and this?", model="text-only", images=[PIXEL]))
    assert len(session.warnings(plan)) == 1
    assert _gets(endpoint) == ["/model_group/info"]


def test_a_model_that_takes_images_and_a_short_prompt_cost_nothing(
        endpoint: FakeEndpoint) -> None:
    session, _ = _session(endpoint)
    assert session.warnings(session.plan(ChatOptions(prompt="hi", model="text-only"))) == []
    assert _gets(endpoint) == []  # nothing to check: the endpoint is not asked
    plan = session.plan(ChatOptions(prompt="what is this?", model="echo", images=[PIXEL]))
    assert session.warnings(plan) == []
    assert _gets(endpoint) == ["/model_group/info"]


def test_a_prompt_past_a_known_context_is_a_warning(endpoint: FakeEndpoint) -> None:
    session, _ = _session(endpoint)
    (warning,) = session.warnings(session.plan(ChatOptions(prompt=LONG, model="small-context")))
    assert "more than its context of 600" in warning and "(estimated)" in warning
    assert session.warnings(session.plan(ChatOptions(prompt=LONG, model="text-only"))) == []


def test_llama_server_props_cover_every_model_it_serves(transport: Any) -> None:
    endpoint = transport.add(FakeEndpoint(props=LLAMA_SERVER_PROPS))
    session, _ = _session(endpoint)
    plan = session.plan(ChatOptions(prompt=LONG, model="echo", images=[PIXEL]))
    image, context = session.warnings(plan)
    assert "llama.cpp's /props" in image and "may not see the image" in image
    assert "(modalities.vision false)" in image
    assert "more than its context of 600 (n_ctx in llama.cpp's /props" in context
    assert _gets(endpoint) == ["/model_group/info", "/props"]


def test_an_endpoint_that_serves_neither_route_is_asked_once_and_sends(transport: Any) -> None:
    # llama-cpp-python, OpenAI, vLLM: 404 for both; nothing known, nothing said.
    endpoint = transport.add(FakeEndpoint(model_info={}))
    session, _ = _session(endpoint)
    for _ in range(2):
        plan = session.plan(ChatOptions(prompt=LONG, model="echo", images=[PIXEL]))
        assert session.warnings(plan) == []
    assert _gets(endpoint) == ["/model_group/info", "/props"]
    gone = Profile("gone", "http://127.0.0.1:9/v1", needs_key=False)
    session = Session(Profiles({"gone": gone}, default="gone"), environ={})
    plan = session.plan(ChatOptions(prompt=LONG, model="x", images=[PIXEL]))
    assert session.warnings(plan) == []  # a refused connection is nothing known


def test_the_shell_warns_in_the_cell_and_still_sends(shell: Any, endpoint: FakeEndpoint,
                                                    capsys: Any) -> None:
    shell.run_cell(f"%%chat -m text-only -i {PIXEL} -o r\nwhat is this?")
    captured = capsys.readouterr()
    assert captured.err.count("warning: text-only may not see the image") == 1
    assert len(endpoint.chat_requests) == 1  # warned, and sent
    assert shell.user_ns["r"].startswith("what is this?")


def test_the_python_api_warns_with_a_warning_and_sends(endpoint: FakeEndpoint, clean_env: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import chatmagic
    from chatmagic.engine.capabilities import EndpointWarning

    monkeypatch.setenv("OPENAI_BASE_URL", endpoint.base_url)
    monkeypatch.setattr(chatmagic, "_magics", None)
    monkeypatch.setattr("chatmagic.engine.session._current", None)
    with pytest.warns(EndpointWarning, match="text-only may not see the image") as caught:
        response = chatmagic.prompt("what is this?", model="text-only", images=[PIXEL])
    assert caught[0].filename == __file__  # the caller's line, not chatmagic's
    assert response.text().startswith("what is this?")
    assert len(endpoint.chat_requests) == 1
