"""The Chat Completions parameters, images and max-token field as they go over the wire."""

from __future__ import annotations

import importlib
import inspect
import io
import pkgutil
import sys
import typing
from pathlib import Path
from typing import Any, Iterator

import pytest
from IPython.core.error import UsageError

from chatmagic.testing import FakeEndpoint


@pytest.mark.parametrize("line, field, value", [
    ("-t 0.3", "temperature", 0.3), ("--top-p 0.9", "top_p", 0.9), ("-n 2", "n", 2),
    ("--stop END --stop STOP", "stop", ["END", "STOP"]), ("--max-tokens 50", "max_tokens", 50),
    ("--presence-penalty 0.5", "presence_penalty", 0.5),
    ("--frequency-penalty -1", "frequency_penalty", -1.0),
    ("--logit-bias '{\"50256\": -100}'", "logit_bias", {"50256": -100}),
    ("--seed 7", "seed", 7), ("--user alice", "user", "alice"),
    ("--json", "response_format", {"type": "json_object"}),
    ("--param top_k=5", "top_k", 5),
])
def test_each_parameter_reaches_the_body(shell: Any, endpoint: FakeEndpoint, line: str,
                                         field: str, value: Any) -> None:
    shell.run_cell_magic("chat", f"-m echo {line}", "json please")
    body = endpoint.last_body
    assert body[field] == value and type(body[field]) is type(value)


def test_max_tokens_field_follows_the_profile(shell: Any, endpoint: FakeEndpoint) -> None:
    from chatmagic.core.profiles import Profile
    magics = shell.magics_manager.registry["ChatMagics"]
    magics.session.profiles.set(Profile("reasoner", endpoint.base_url, needs_key=False,
                                        max_tokens_field="max_completion_tokens"))
    shell.run_cell_magic("chat", "-p reasoner -m echo --max-tokens 9", "hi")
    assert endpoint.last_body["max_completion_tokens"] == 9
    assert "max_tokens" not in endpoint.last_body


def _png() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), "red").save(buffer, format="PNG")
    return buffer.getvalue()


def test_images_from_file_url_bytes_pil_and_figure(shell: Any, endpoint: FakeEndpoint,
                                                   clean_env: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    (clean_env / "pic.png").write_bytes(_png())
    shell.user_ns.update(raw=_png(), pil=Image.new("RGB", (3, 3)), fig=plt.figure())
    shell.run_cell_magic("chat", "-m echo -i pic.png -i https://example.org/a.jpg -i raw -i pil "
                                 "-i fig -o r", "what is this?")
    parts = endpoint.last_body["messages"][-1]["content"]
    assert parts[0] == {"type": "text", "text": "what is this?"}
    urls = [p["image_url"]["url"] for p in parts[1:]]
    assert urls[1] == "https://example.org/a.jpg"
    assert all(u.startswith("data:image/png;base64,") for u in urls[:1] + urls[2:])
    assert shell.user_ns["r"] == "what is this? [5 images]"


@pytest.mark.parametrize("source, words", [
    ("nofile.png", "no such file, URL or variable"), ("notimg", "not an image"),
    ("text.txt", "not a PNG, JPEG, GIF or WebP image"),
])
def test_bad_images_refused_before_sending(shell: Any, endpoint: FakeEndpoint, clean_env: Path,
                                           source: str, words: str) -> None:
    (clean_env / "text.txt").write_text("hello")
    shell.user_ns["notimg"] = 42
    with pytest.raises(UsageError, match=words):
        shell.run_cell_magic("chat", f"-m echo -i {source}", "p")
    assert endpoint.chat_requests == []


def test_usage_totals_match_what_the_endpoint_sent(shell: Any, endpoint: FakeEndpoint) -> None:
    shell.run_cell_magic("chat", "-m echo --no-history", "a b c")
    shell.run_cell_magic("chat", "-m reasoning --no-history", "d e")
    shell.run_cell_magic("chat", "-m no-usage --no-history", "f")
    shell.run_line_magic("chat_usage", "--by model -o u")
    rows = {r["model"]: r for r in shell.user_ns["u"]}
    assert rows["echo"]["prompt_tokens"] == 6 and rows["echo"]["completion_tokens"] == 3
    assert rows["reasoning"]["reasoning_tokens"] > 0
    assert rows["no-usage"]["estimated"] is True and rows["echo"]["estimated"] is False


def test_completion_of_models_and_profiles(shell: Any, endpoint: FakeEndpoint) -> None:
    shell.run_line_magic("models", "")

    def complete(line: str) -> list[str]:
        return shell.Completer.complete(line_buffer=line, cursor_pos=len(line))[1]

    assert "markdown" in complete("%%chat -m mark")
    assert "qwen" in complete("%%chat -p qw")
    assert any(m.endswith("markdown") for m in complete("%%chat --compare echo,mark"))
    assert any(m.endswith("echo") for m in complete("%%chat -m env:ec"))


def test_unload_removes_what_load_added(shell: Any) -> None:
    import chatmagic

    matchers = len(shell.Completer.custom_matchers)
    cleanups = len(shell.input_transformers_cleanup)
    chatmagic.unload_ipython_extension(shell)
    assert len(shell.Completer.custom_matchers) == matchers - 1
    assert len(shell.input_transformers_cleanup) == cleanups - 1
    assert not shell.custom_exceptions
    chatmagic.load_ipython_extension(shell)
    assert len(shell.Completer.custom_matchers) == matchers
    assert len(shell.input_transformers_cleanup) == cleanups


# -- the public surface of the package ---------------------------------------------------

def test_all_is_exactly_the_public_names() -> None:
    """httpx style: every name in __all__ resolves, and every public name is in __all__."""
    import types

    import chatmagic

    for name in chatmagic.__all__:
        getattr(chatmagic, name)  # the lazily imported ones land in vars() now
    public = {name for name, value in vars(chatmagic).items()
              if not name.startswith("_") and not isinstance(value, types.ModuleType)}
    assert public == set(chatmagic.__all__) - {"__version__"}
    assert set(chatmagic.__all__) <= set(dir(chatmagic))


@pytest.mark.parametrize("line, words", [
    ("-t 3", "--temperature must be between 0 and 2, not 3"),
    ("--stop a --stop b --stop c --stop d --stop e", "--stop takes 1 to 4 stop sequences, not 5"),
    ("--timeout 0", "--timeout must be a number of seconds above 0"),
    ("--logit-bias '{\"5\": 1.5}'", "--logit-bias values are whole numbers from -100 to 100"),
])
def test_a_bad_cell_option_sends_nothing(shell: Any, endpoint: FakeEndpoint, line: str,
                                         words: str) -> None:
    with pytest.raises(UsageError, match=words):
        shell.run_cell_magic("chat", f"-m echo {line}", "hi")
    assert endpoint.chat_requests == []


def test_the_magic_and_python_share_one_check(shell: Any, endpoint: FakeEndpoint) -> None:
    import chatmagic

    with pytest.raises(chatmagic.OptionError, match="^temperature must be between 0 and 2"):
        chatmagic.chat("hi", model="echo", temperature=3)
    shell.run_cell_magic("chat", "-m echo -c shared --seed 4", "from the cell")
    reply = chatmagic.conversation("shared").prompt("from python", model="echo", seed=4)
    assert reply.text() == "from python"
    assert [m["content"] for m in endpoint.last_body["messages"]] == \
        ["from the cell", "from the cell", "from python"]
    assert [r.body["seed"] for r in endpoint.chat_requests] == [4, 4]


# -- typed signatures ----------------------------------------------------------------------

def _chatmagic_types(annotation: Any) -> Iterator[type]:
    """The classes of chatmagic an annotation names, at any depth (X | None, list[X], ...)."""
    if isinstance(annotation, type) and annotation.__module__.startswith("chatmagic"):
        yield annotation
    for argument in typing.get_args(annotation):
        if isinstance(argument, list):  # Callable[[A, B], R]
            for item in argument:
                yield from _chatmagic_types(item)
        else:
            yield from _chatmagic_types(argument)


def _names_in_chatmagic() -> dict[str, Any]:
    """Every class and alias of every chatmagic module: what a TYPE_CHECKING import names."""
    import chatmagic

    names: dict[str, Any] = {}
    for info in pkgutil.walk_packages(chatmagic.__path__, "chatmagic."):
        if info.name.startswith("chatmagic.testing") or info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        names.update({k: v for k, v in vars(module).items() if not k.startswith("__")})
    return names


def _hints(function: Any, fallback: dict[str, Any]) -> dict[str, Any]:
    module = sys.modules[function.__module__]
    return typing.get_type_hints(function, {**fallback, **vars(module)})


#: The mutable Reply's engine plumbing, for the engine alone (feeding events, a restart,
#: pricing, the per-choice state): not part of what a caller reads.
_PLUMBING = {"Reply": {"feed", "close", "restarted", "choices", "pricer"}}


def test_every_type_in_a_public_signature_is_exported() -> None:
    import chatmagic

    fallback = _names_in_chatmagic()
    exported = {id(getattr(chatmagic, name)) for name in chatmagic.__all__}
    seen: dict[type, str] = {}
    for name in chatmagic.__all__:
        value = getattr(chatmagic, name)
        if not isinstance(value, type):
            if inspect.isfunction(value):
                for hint in _hints(value, fallback).values():
                    seen.update(dict.fromkeys(_chatmagic_types(hint), name))
            continue
        for cls in value.__mro__:
            if not cls.__module__.startswith("chatmagic"):
                continue
            members = {**{k: None for k in getattr(cls, "__annotations__", {})}, **vars(cls)}
            for member, attribute in members.items():
                # Constructors are left out: the API's functions make these objects (a
                # dataclass's fields are checked as fields).
                if member.startswith("_") and member not in ("__iter__", "__aiter__",
                                                             "__await__"):
                    continue
                if member in _PLUMBING.get(name, ()):
                    continue
                where = f"{name}.{member}"
                if attribute is None:  # a field
                    hints = {member: typing.get_type_hints(cls, {**fallback,
                             **vars(sys.modules[cls.__module__])})[member]}
                elif isinstance(attribute, property):
                    hints = _hints(attribute.fget, fallback)
                elif isinstance(attribute, (classmethod, staticmethod)):
                    hints = _hints(attribute.__func__, fallback)
                elif inspect.isfunction(attribute):
                    hints = _hints(attribute, fallback)
                else:
                    continue
                for hint in hints.values():
                    seen.update(dict.fromkeys(_chatmagic_types(hint), where))
    missing = {f"{cls.__module__}.{cls.__qualname__}": where for cls, where in seen.items()
               if id(cls) not in exported}
    assert missing == {}, "types in public signatures but not exported from chatmagic"
    assert {chatmagic.Cost, chatmagic.ToolCall, chatmagic.Usage, chatmagic.Failure} <= set(seen)


def test_the_python_api_keywords_agree() -> None:
    """The typed signatures are written out per function: the same keywords, the same types."""
    import chatmagic

    def keywords(function: Any, leave: int = 1) -> dict[str, Any]:
        parameters = list(inspect.signature(function).parameters.values())[leave:]
        return {p.name: (p.annotation, p.default) for p in parameters}

    prompt = keywords(chatmagic.prompt)
    assert keywords(chatmagic.aprompt) == prompt
    assert keywords(chatmagic.NamedConversation.prompt, leave=2) == prompt
    chat = keywords(chatmagic.chat)
    assert {k: v for k, v in chat.items() if k in prompt} == prompt
    assert set(chat) - set(prompt) == {"conversation", "new", "no_history"}
    compare = keywords(chatmagic.compare, leave=2)
    assert set(chat) - set(compare) == {"model", "tools", "max_rounds", "allow"}
    assert {k: v for k, v in compare.items() if k in chat} == \
        {k: v for k, v in chat.items() if k in compare}
    from chatmagic.core.options import ChatOptions, REQUEST_FIELDS

    assert set(REQUEST_FIELDS) <= set(prompt) and set(prompt) - {"allow"} <= \
        set(ChatOptions.__dataclass_fields__)
    assert set(REQUEST_FIELDS) - {"images"} <= set(keywords(chatmagic.map, leave=2))

