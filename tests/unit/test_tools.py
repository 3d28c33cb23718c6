"""Notebook functions as tools: the schema, the calls, allowing them, the rounds, the history."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any, Literal, Optional

import pydantic
import pytest
from IPython.core.error import UsageError

from chatmagic.store.conversation import Conversation
from chatmagic.engine.reply import Reply
from chatmagic.core.events import ToolCallDelta
from chatmagic.testing import FakeEndpoint
from chatmagic.core.errors import ToolError
from chatmagic.tools.functions import ToolCall, describe, execute, resolve
from cells import TOOLS_CELL
from openapi import errors as schema_errors


def _tool_messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [m for m in body["messages"] if m["role"] == "tool"]


# -- in a real kernel ---------------------------------------------------------------------


# -- in a shell (a terminal: the prompt) ----------------------------------------------------

def _define(shell: Any) -> list[Any]:
    shell.run_cell(TOOLS_CELL)
    return shell.user_ns["ran"]  # type: ignore[no-any-return]


def test_the_terminal_asks_and_no_runs_nothing(shell: Any, endpoint: FakeEndpoint,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    ran = _define(shell)
    asked: list[str] = []
    answers = iter(["n"])
    monkeypatch.setattr("builtins.input", lambda text: asked.append(text) or next(answers))
    shell.run_cell_magic("chat", "-m tools --tools add", "What is 2 + 3?")
    assert ran == [] and asked == ['Run add({"a": 2, "b": 3})? [y]es / [n]o / [a]ll of this '
                                   'cell: ']
    skipped = _tool_messages(endpoint.last_body)[0]["content"]
    assert skipped == "Not run: the user did not allow this call (skipped)"
    answers = iter(["y"])
    shell.run_cell_magic("chat", "-m tools --tools add", "And now?")
    assert ran == [(2, 3)]


def test_a_tool_not_offered_and_bad_arguments_are_told_to_the_model(
        shell: Any, endpoint: FakeEndpoint) -> None:
    ran = _define(shell)
    shell.run_cell_magic("chat", "-m tools/call=rm_rf --tools add --yes --no-history", "go")
    told = _tool_messages(endpoint.last_body)[0]["content"]
    assert "no tool named 'rm_rf'; the tools are: add. Nothing was run." in told
    shell.run_cell_magic("chat", "-m tools/args=broken --tools add --yes --no-history", "go")
    assert "the arguments are not JSON" in _tool_messages(endpoint.last_body)[0]["content"]
    assert ran == []


@pytest.mark.parametrize("line, words", [
    ("--tools nothing_here", "nothing_here is not defined in the notebook"),
    ("--tools ran", "ran[0] is of type int, not a function"),  # a list, not of functions
    ("--tools number", "number is of type int, not a function"),
    ("--tools star", "star's parameter rest (*rest) cannot be described"),
    ("--tools add -n 2", "--tools cannot be combined with compare, each or n above 1"),
    ("--tools add --each ran", "--tools cannot be combined with compare, each or n above 1"),
])
def test_bad_tools_are_one_message_and_nothing_is_sent(shell: Any, endpoint: FakeEndpoint,
                                                       line: str, words: str) -> None:
    _define(shell)
    shell.run_cell("number = 3\ndef star(*rest): pass")
    shell.user_ns["ran"].append(1)
    with pytest.raises(UsageError) as info:
        shell.run_cell_magic("chat", f"-m echo {line}", "hi")
    assert words in str(info.value)
    assert not endpoint.chat_requests


# -- the schema and one call -------------------------------------------------------------------

class Point(pydantic.BaseModel):
    x: float
    y: float


def weather(city: str, unit: Literal["c", "f"] = "c", days: Optional[int] = None,
            tags: list[str] | None = None, where: Point | None = None) -> dict[str, Any]:
    """Weather for a city.

    Longer text that is not the description.

    Parameters
    ----------
    city : str
        The city's name.
    unit : {"c", "f"}
        Celsius or
        Fahrenheit.
    """
    return {"city": city, "unit": unit, "point": where.model_dump() if where else None}


def test_the_schema_of_hints_and_docstrings() -> None:
    tool = describe(weather)
    assert tool.description == "Weather for a city."
    props = tool.parameters["properties"]
    assert tool.parameters["required"] == ["city"]
    assert props["city"] == {"type": "string", "description": "The city's name."}
    assert props["unit"] == {"type": "string", "enum": ["c", "f"], "default": "c",
                             "description": "Celsius or Fahrenheit."}
    assert props["days"]["anyOf"] == [{"type": "integer"}, {"type": "null"}]
    assert props["tags"]["anyOf"][0] == {"type": "array", "items": {"type": "string"}}
    assert tool.parameters["$defs"]["Point"]["properties"]["x"] == {"type": "number"}
    body = {"model": "x", "messages": [{"role": "user", "content": "q"}],
            "tools": [tool.spec()]}
    assert not schema_errors(body)
    result = execute(ToolCall("c1", "weather", '{"city": "Oslo", "where": {"x": 1, "y": 2}}'),
                     {"weather": tool})
    assert json.loads(result.content) == {"city": "Oslo", "unit": "c",
                                          "point": {"x": 1.0, "y": 2.0}}
    refused = execute(ToolCall("c2", "weather", '{"city": 3, "unit": "k"}'), {"weather": tool})
    assert refused.outcome == "invalid" and "city" in refused.content and "unit" in refused.content


def test_return_values_as_json_else_repr_and_functions_that_cannot_be_tools() -> None:
    class Opaque:
        def __repr__(self) -> str:
            return "<opaque>"

    def opaque() -> Any:
        """Something that is no JSON."""
        return Opaque()

    assert execute(ToolCall("c", "opaque", ""), {"opaque": describe(opaque)}).content == \
        "<opaque>"

    def sphinx(count: int, flag: bool = False) -> str:
        """Count things.

        :param count: how many
        :param bool flag: whether to flip
        """
        return "x" * count

    props = describe(sphinx).parameters["properties"]
    assert props["count"]["description"] == "how many" and props["flag"]["type"] == "boolean"
    def bad(conn: socket.socket) -> None:
        """Takes a socket."""

    with pytest.raises(ToolError, match="bad's parameter conn .socket. has a type that has no "
                                        "JSON schema"):
        describe(bad)
    with pytest.raises(ToolError, match="not defined"):
        resolve("missing", {})
    with pytest.raises(ToolError, match="two tools called sphinx"):
        resolve([sphinx, sphinx], {})


def test_parallel_call_pieces_are_assembled_by_index() -> None:
    reply = Reply("m", "p", "http://x")
    for event in [ToolCallDelta(0, "call_a", "add"), ToolCallDelta(1, "call_b", "add"),
                  ToolCallDelta(1, arguments='{"a": 3,'), ToolCallDelta(0, arguments='{"a": 1,'),
                  ToolCallDelta(0, arguments=' "b": 2}'), ToolCallDelta(1, arguments=' "b": 4}')]:
        reply.feed(event)
    assert [(c["id"], c["function"]["arguments"]) for c in reply.tool_calls()] == [
        ("call_a", '{"a": 1, "b": 2}'), ("call_b", '{"a": 3, "b": 4}')]
    conv = Conversation.from_messages([{"role": "user", "content": "q"},
                                       {"role": "assistant", "content": None,
                                        "tool_calls": reply.tool_calls()}])
    assert not schema_errors({"model": "x", "messages": conv.messages()})


# -- the Python API ----------------------------------------------------------------------------

@pytest.fixture
def api(endpoint: FakeEndpoint, clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """chatmagic with no extension loaded: a plain session pointed at the endpoint."""
    import chatmagic

    monkeypatch.setenv("OPENAI_BASE_URL", endpoint.base_url)
    monkeypatch.setattr(chatmagic, "_magics", None)
    monkeypatch.setattr("chatmagic.engine.session._current", None)
    return chatmagic


def test_prompt_with_tools_runs_calls_in_the_reading_thread(api: Any,
                                                            endpoint: FakeEndpoint) -> None:
    import threading

    threads: list[str] = []

    def add(a: int, b: int) -> int:
        """Add two numbers."""
        threads.append(threading.current_thread().name)
        return a + b

    response = api.prompt("2 + 3?", model="tools", tools=[add], allow=True)
    assert response.text() == "The tools said: 5" and response.failure is None
    assert threads == [threading.current_thread().name]  # here, not on chatmagic's loop
    messages = [{"role": "system", "content": "s"}, *response.messages()]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "tool", "assistant"]
    assert not schema_errors({"model": "x", "messages": messages})
    assert endpoint.chat_requests[0].body["tools"][0]["function"]["description"] == \
        "Add two numbers."
    # Not allowed (a function saying no, or nobody on stdin): nothing runs, the model is told.
    asked: list[ToolCall] = []
    denied = api.prompt("2 + 3?", model="tools", tools=[add],
                        allow=lambda call: asked.append(call) or False)
    assert "did not allow" in denied.text() and len(threads) == 1
    assert asked[0].name == "add" and json.loads(asked[0].arguments) == {"a": 2, "b": 3}
    import io
    import sys

    stdin, sys.stdin = sys.stdin, io.StringIO("")
    try:
        assert "did not allow" in api.prompt("2 + 3?", model="tools", tools=[add]).text()
    finally:
        sys.stdin = stdin
    assert len(threads) == 1
    endless = api.prompt("go", model="tools-endless", tools=[add], allow=True, max_rounds=2)
    assert endless.failure is not None and endless.failure.kind == "tool_rounds"
    assert len(threads) == 2
    with pytest.raises(api.OptionError, match="allow=True, a function"):
        api.prompt("x", model="tools", tools=[add], allow="yes")


def test_aprompt_with_parallel_tools(api: Any) -> None:
    import asyncio

    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    async def main() -> list[str]:
        response = api.aprompt("sums", model="tools-parallel", tools=[add], allow=True)
        return [piece async for piece in response]

    assert "".join(asyncio.run(main())) == "The tools said: 5; 7"


def test_every_round_is_counted_once(shell: Any, endpoint: FakeEndpoint) -> None:
    import chatmagic

    _define(shell)
    shell.run_cell_magic("chat", "-m tools --tools add --yes", "2 + 3?")
    rows = chatmagic._magics.session.usage.rows
    assert len(rows) == 2 == len(endpoint.chat_requests)
    assert rows[0]["prompt_tokens"] < rows[1]["prompt_tokens"]  # the second sent more


def test_the_calls_message_is_sent_with_empty_text_and_kept_as_openai_wrote_it(
        shell: Any, endpoint: FakeEndpoint) -> None:
    # llama-cpp-python's server refuses an assistant message with "content": null (HTTP 500):
    # every round after the first failed there. "" is valid for OpenAI and for it.
    _define(shell)
    shell.run_cell_magic("chat", "-m tools --tools add --yes", "2 + 3?")
    calls = endpoint.chat_requests[1].body["messages"][-2]
    assert calls["role"] == "assistant" and calls["tool_calls"] and calls["content"] == ""
    # The history keeps the message as the model sent it (no text: null, as OpenAI's own
    # replies carry it); the next cell sends it with "" again.
    shell.run_line_magic("chat_history", "export -o h")
    assert shell.user_ns["h"][1]["content"] is None
    shell.run_cell_magic("chat", "-m echo", "and then?")
    resent = [m for m in endpoint.last_body["messages"] if m.get("tool_calls")]
    assert [m["content"] for m in resent] == [""]
    assert not schema_errors(endpoint.last_body)


@pytest.mark.parametrize("forced", ['{"type":"function","function":{"name":"add"}}',
                                    '"required"'])
def test_a_forced_call_is_forced_in_the_first_round_only(
        shell: Any, endpoint: FakeEndpoint, forced: str) -> None:
    # Forced again after it has called, a model can only call again (Gemma on llama-cpp-python
    # did, round after round, until --max-rounds): the rounds after the first ask with "auto".
    ran = _define(shell)
    shell.run_cell_magic("chat", f"-m tools --tools add --yes --param 'tool_choice={forced}'",
                         "2 + 3?")
    sent = [r.body.get("tool_choice") for r in endpoint.chat_requests]
    assert sent == [json.loads(forced), "auto"] and ran == [(2, 3)]


def test_retry_of_a_tool_turn_offers_the_tools_again_and_asks_again(
        shell: Any, endpoint: FakeEndpoint, monkeypatch: pytest.MonkeyPatch) -> None:
    ran = _define(shell)
    shell.run_cell_magic("chat", "-m tools --tools add --yes", "2 + 3?")
    answers = iter(["y"])
    monkeypatch.setattr("builtins.input", lambda text: next(answers))
    shell.run_line_magic("chat_history", "retry")
    assert endpoint.chat_requests[2].body["tools"][0]["function"]["name"] == "add"
    assert ran == [(2, 3), (2, 3)]  # asked (--yes is not kept), allowed, run
    shell.run_line_magic("chat_history", "export -o h")
    assert [m["role"] for m in shell.user_ns["h"]] == ["user", "assistant", "tool", "assistant"]


# -- keys in tool rounds --------------------------------------------------------------------

KEY = "sk-tools-secret-0123456789abcdef4567"


def test_a_key_in_a_calls_arguments_or_a_tools_result_is_masked_everywhere(
        shell: Any, endpoint: FakeEndpoint, clean_env: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    shell.run_line_magic("chat_config", "set notebook=keys")  # a journal on disk
    shell.run_cell("import os\n"
                   "def lookup(text: str) -> str:\n"
                   "    '''Look a text up.'''\n"
                   "    return 'found ' + os.environ['OPENAI_API_KEY']\n")
    # The model passes the key it was sent as the argument (its pieces streamed 4 characters
    # at a time, so the HTTP edge never sees it whole); the tool returns it too.
    shell.run_cell_magic("chat", "-m tools/args=key --tools lookup --yes", "look it up")
    shown = capsys.readouterr().out
    assert "sk-…567" in shown and KEY not in shown and KEY[-10:] not in shown
    _, second = endpoint.chat_requests
    sent = json.dumps(second.body["messages"], ensure_ascii=False)  # the model is not told the key either
    assert KEY not in sent and "sk-…567" in sent
    shell.run_line_magic("chat_history", "export -o h")
    history = shell.user_ns["h"]
    assert [m["role"] for m in history] == ["user", "assistant", "tool", "assistant"]
    assert json.loads(history[1]["tool_calls"][0]["function"]["arguments"]) == {
        "text": "sk-…567"}  # still JSON
    assert history[2]["content"] == "found sk-…567"
    assert KEY not in json.dumps(history)
    journals = [p for p in (clean_env / "history").rglob("*") if p.is_file()]
    stored = b"".join(p.read_bytes() for p in journals)
    assert journals and b"found" in stored and KEY.encode() not in stored
    assert KEY[-10:].encode() not in stored


def test_the_python_apis_messages_hold_no_key(api: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)

    def lookup(text: str) -> str:
        """Look a text up."""
        return f"found {text} and {KEY}"

    response = api.prompt("look", model="tools/args=key", tools=[lookup], allow=True)
    messages = json.dumps(response.messages(), ensure_ascii=False)
    assert "found sk-…567 and sk-…567" in messages and KEY not in messages
    assert "sk-…567" in response.text() and KEY not in response.text()  # the answer quotes it


# -- consent: every argument in sight, no user code before it -------------------------------

LONG_TOOL = ("def many(" + ", ".join(f"p{i:02}: str" for i in range(40)) + ", last: str) -> str:\n"
             "    '''Takes many texts.'''\n"
             "    return 'ran'\n")


def test_the_terminal_prompt_shows_arguments_past_300_characters(
        shell: Any, endpoint: FakeEndpoint, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    shell.run_cell(LONG_TOOL)
    asked: list[str] = []
    monkeypatch.setattr("builtins.input", lambda text: asked.append(text) or "n")
    capsys.readouterr()
    shell.run_cell_magic("chat", "-m tools --tools many --no-history", "go")
    arguments = json.loads(endpoint.chat_requests[1].body["messages"][-2]["tool_calls"][0]
                           ["function"]["arguments"])
    assert len(json.dumps(arguments)) > 300 and list(arguments)[-1] == "last"
    [question] = asked
    shown = capsys.readouterr().out
    printed = shown[:shown.index("many is called with")] + shown[shown.index("many is called"):]
    assert '"last": "Paris"' in printed and '"p39": "Paris"' in printed  # the whole of them
    count = len(endpoint.chat_requests[1].body["messages"][-2]["tool_calls"][0]["function"]
                ["arguments"])
    assert question == (f"Run many(all {count:,} characters of its arguments printed above)? "
                        "[y]es / [n]o / [a]ll of this cell: ")


def test_the_python_apis_prompt_shows_arguments_past_300_characters(
        api: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    namespace: dict[str, Any] = {}
    exec(LONG_TOOL, namespace)
    asked: list[str] = []
    monkeypatch.setattr("builtins.input", lambda text: asked.append(text) or "y")
    response = api.prompt("go", model="tools", tools=[namespace["many"]])
    assert response.text() == "The tools said: ran"
    printed = capsys.readouterr().out
    assert '"last": "Paris"' in printed and "many is called with these arguments" in printed
    assert asked and asked[0].startswith("Run many(all ") and asked[0].endswith("? [y/N]: ")


def test_what_a_prompt_shows_cannot_hide_or_rewrite_text(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from chatmagic.engine.rounds import INLINE_ARGUMENTS, ask
    from chatmagic.tools.functions import ToolCall

    asked: list[str] = []
    monkeypatch.setattr("builtins.input", lambda text: asked.append(text) or "n")
    hostile = "ok\x1b[2K\rgone\x08\u202eevil\u2066\x9b"
    ask(ToolCall("c1", "cp\u202e", f'{{"src": "{hostile}"}}'))
    assert asked[0] == ('Run cp\\u202e({"src": "ok\\x1b[2K\\rgone\\x08\\u202eevil\\u2066'
                        '\\x9b"})? [y/N]: ')
    # Printed whole above the question (long arguments): the pretty JSON, escaped the same.
    long = json.dumps({"dst": "b\u202ea", "pad": "x" * INLINE_ARGUMENTS})
    ask(ToolCall("c2", "cp", long))
    printed = capsys.readouterr().out
    assert '"dst": "b\\u202ea"' in printed and "\u202e" not in printed + asked[1]


def test_a_parameters_own_validator_runs_only_once_the_call_is_allowed(
        shell: Any, endpoint: FakeEndpoint, monkeypatch: pytest.MonkeyPatch) -> None:
    shell.run_cell("from typing import Annotated\nimport pydantic\nchecked = []\n"
                   "def note(text: str) -> str:\n"
                   "    checked.append(text)\n"
                   "    return text\n"
                   "def save(text: Annotated[str, pydantic.AfterValidator(note)]) -> str:\n"
                   "    '''Save a text.'''\n"
                   "    return 'saved ' + text\n")
    answers = iter(["n", "y"])
    monkeypatch.setattr("builtins.input", lambda text: next(answers))
    shell.run_cell_magic("chat", "-m tools --tools save --no-history", "go")
    assert shell.user_ns["checked"] == []  # skipped: none of the user's code ran
    shell.run_cell_magic("chat", "-m tools --tools save --no-history", "go")
    assert shell.user_ns["checked"] == ["Paris"]
    assert _tool_messages(endpoint.last_body)[0]["content"] == "saved Paris"


# -- the model's text in a call's block stays text ------------------------------------------

CALL_PROBES = ["<img src=x onerror=alert(1)>", "<script>alert(1)</script>",
               '"><svg onload=alert(1)>', "</pre><iframe src=javascript:alert(1)>",
               '{"a": "</code><img src=x onerror=alert(1)>", "b": "<script>x</script>"}',
               "```\n<a href=javascript:alert(1) onmouseover=alert(1)>x</a>\n```"]


@pytest.mark.parametrize("probe", CALL_PROBES)
def test_a_probe_in_a_calls_name_arguments_result_or_state_is_inert(probe: str) -> None:
    from inert import live_html
    from test_render import audit

    from chatmagic.shell.sinks.calls import CallBlocks
    from chatmagic.render.html import document, tool_call_html

    drawn = [tool_call_html(probe, probe, probe, probe), tool_call_html("add", probe),
             tool_call_html(probe, "{}", None, "waiting: Run or Skip"),
             tool_call_html("add", '{"a": 1}', probe, "ran")]
    for html in drawn:
        assert audit(html).active == [], html
        assert "&lt;" in html and "<img" not in html and "<script" not in html
    bundle = CallBlocks().bundle(probe, probe, probe, probe)
    assert list(bundle) == ["text/html"] and live_html(bundle["text/html"]) == []
    assert list(CallBlocks(plain=True).bundle(probe, probe, probe, probe)) == ["text/plain"]
    # What stands above the Run / Skip buttons (the widget's HTML): the same block.
    assert live_html(document(drawn[0], style=True)) == []


