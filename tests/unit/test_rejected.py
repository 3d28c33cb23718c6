"""A server error about the request itself (an image for a model that takes none, a field the
server does not take, both answered with HTTP 500 by llama-server and llama-cpp-python): said
as what to change, and never asked again; other server errors still are."""

from __future__ import annotations

from typing import Any

import pytest

from chatmagic.testing import FakeEndpoint, RawReply

# A 1x1 PNG: an image part without a file or a network fetch.
PIXEL = ("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"
         "+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")


def _failed(shell: Any, cell: str) -> str:
    result = shell.run_cell(cell)
    assert not result.success
    return str(result.error_in_exec)


def test_an_image_for_a_text_only_model_says_what_to_change_and_is_sent_once(
        shell: Any, endpoint: FakeEndpoint, capsys: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    model = "echo/reject=image"  # llama-server without its mmproj, behind LiteLLM's proxy
    monkeypatch.setitem(endpoint.model_info, model, {"supports_vision": False})
    error = _failed(shell, f"%%chat -m {model} -i {PIXEL}\nwhat is this?")
    assert f"warning: {model} may not see the image" in capsys.readouterr().err  # it knew
    assert "HTTP 500: image input is not supported" in error
    assert ("this model does not take images: drop the image, or choose a vision model"
            in error)
    assert "try again" not in error and "attempts" not in error
    assert len(endpoint.chat_requests) == 1  # asking again would fail the same way
    shell.run_cell_magic("chat", f"-m {model}", "and without it?")  # the fix works
    assert len(endpoint.chat_requests) == 2


def test_a_validation_error_as_http_500_is_sent_once(shell: Any, endpoint: FakeEndpoint) -> None:
    error = _failed(shell, "%%chat -m echo/reject=stop --stop END\nhi")
    assert "HTTP 500: 1 validation error" in error and "'stop'" in error
    assert "check the options sent: the endpoint refuses the request itself" in error
    assert "try again" not in error
    assert len(endpoint.chat_requests) == 1


def test_rows_do_not_ask_a_rejected_request_again(shell: Any, endpoint: FakeEndpoint) -> None:
    shell.user_ns["xs"] = ["a", "b"]
    shell.run_cell("%%chat --each xs -m echo/reject=stop --stop END -o t\n{item}")
    assert len(endpoint.chat_requests) == 2  # one per row (rows try five times otherwise)
    errors = [row["error"] for row in shell.user_ns["t"].to_dict("records")]
    assert all("the endpoint refuses the request itself" in e for e in errors)


def test_other_server_errors_are_still_asked_again(shell: Any, endpoint: FakeEndpoint) -> None:
    error = _failed(shell, "%%chat -m server-error\nhi")
    assert "the endpoint failed: try again later" in error and "(after 3 attempts)" in error
    assert len(endpoint.chat_requests) == 3


def test_a_proxys_error_frame_that_blames_the_request_is_sent_once(
        shell: Any, endpoint: FakeEndpoint) -> None:
    # LiteLLM passes a backend's refusal on as an error frame inside a 200 stream.
    frame = (b'data: {"error": {"message": "image input is not supported - hint: start the '
             b'server with --mmproj", "code": 500}}\n\n')
    endpoint.raw["proxy"] = RawReply([frame])
    error = _failed(shell, "%%chat -m proxy\nwhat is this?")
    assert "reported an error: image input is not supported" in error  # it came first:
    assert "mid-stream" not in error  # nothing was streamed before it
    assert "drop the image, or choose a vision model" in error and "try again" not in error
    assert len(endpoint.chat_requests) == 1


def test_a_prompt_past_the_context_says_how_to_shorten_it(
        shell: Any, endpoint: FakeEndpoint) -> None:
    body = (b'{"error": {"message": "This model\'s maximum context length is 2048 tokens. '
            b'However, your messages resulted in 3000 tokens.", "type": "invalid_request_error"}}')
    endpoint.raw["small"] = RawReply([body], status=400, content_type="application/json")
    error = _failed(shell, "%%chat -m small\nhi")
    assert "maximum context length is 2048 tokens" in error
    assert "start over with --new, drop turns with %chat_history undo" in error
    assert "check the options sent" not in error
