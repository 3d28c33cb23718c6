"""--schema: specs into schemas, the request that carries one, the reply read back as an object.

Kernel and shell tests talk to the local endpoint's ``schema`` model, which answers with
JSON built from the schema it received (or wrong on purpose: ``shape=wrong|prose|cut``), and
``refuse=json_schema`` answers like llama-cpp-python's server does.
"""

from __future__ import annotations

import re
import json
from typing import Any

import pytest
from pydantic import BaseModel

from chatmagic.core.errors import InvalidOutput, SchemaError
from chatmagic.core.schema import resolve_schema
from chatmagic.testing import FakeEndpoint
from schema_kinds import Book, Person, Point, city


# -- specs -------------------------------------------------------------------------------

def test_each_kind_of_spec_gives_its_fields_and_a_strict_schema_where_it_can() -> None:
    cases = [(Person, "Person", ("name", "age", "tags"), True),
             (Book, "Book", ("title", "year", "rating"), True),
             (Point, "Point", ("x", "label"), True),
             (city, "reply", ("city", "population"), True),
             ("name, age int, tags list[str]", "reply", ("name", "age", "tags"), True)]
    for spec, name, fields, strict in cases:
        schema = resolve_schema(spec)
        assert (schema.name, schema.fields) == (name, fields)
        fmt = schema.response_format("json_schema")
        assert fmt is not None and fmt["json_schema"]["strict"] is strict
        assert fmt["json_schema"]["schema"]["additionalProperties"] is False


def test_a_field_with_a_default_is_sent_without_strict() -> None:
    class Loose(BaseModel):
        name: str
        note: str = ""

    fmt = resolve_schema(Loose).response_format("json_schema")
    assert fmt is not None and fmt["json_schema"]["strict"] is False
    assert "additionalProperties" not in fmt["json_schema"]["schema"]  # sent as it is


def test_the_concise_form() -> None:
    schema = resolve_schema("name, age int, score float: out of 10, ok bool, m list[list[int]]")
    props = schema.json_schema["properties"]
    assert props["name"] == {"type": "string"} and props["age"] == {"type": "integer"}
    assert props["score"] == {"type": "number", "description": "out of 10"}
    assert props["ok"] == {"type": "boolean"}
    assert props["m"] == {"type": "array", "items": {"type": "array",
                                                     "items": {"type": "integer"}}}
    lines = resolve_schema("title: the title, as written\nyear int")
    assert lines.fields == ("title", "year")
    assert lines.json_schema["properties"]["title"]["description"] == "the title, as written"


@pytest.mark.parametrize("spec, words", [
    (5, "an int (5) is not a schema"),
    (len, "a function (len) is not a schema"),
    (object, "the class object is neither a pydantic model, a dataclass nor a TypedDict"),
    ({"name": "Ada"}, "looks like data, not a schema"),
    ({"type": "thing"}, "not a valid JSON schema"),
    ("name, age integr", "unknown type 'integr' for the field age"),
    ("name,, age", "an empty field"),
    ("name, name int", "the field name is named twice"),
    (Book("Dune", 1965, 4.5), "a dataclass instance, not the class: pass Book itself"),
])
def test_what_is_no_schema_is_refused_naming_it(spec: Any, words: str) -> None:
    with pytest.raises(SchemaError, match="--schema") as caught:
        resolve_schema(spec)
    assert words in str(caught.value)


def test_a_name_is_looked_up_in_the_namespace() -> None:
    import types

    ns = {"Person": Person, "models": types.SimpleNamespace(Book=Book), "spec": "a, b int",
          "n": 3}
    assert resolve_schema("Person", ns).target is Person
    assert resolve_schema("models.Book", ns).target is Book
    assert resolve_schema("spec", ns).fields == ("a", "b")
    for name, words in [("Persn", "no variable named Persn in the notebook"),
                        ("models.Film", "models has no attribute Film"),
                        ("n", "an int (3) is not a schema")]:
        with pytest.raises(SchemaError, match=re.escape(words)):
            resolve_schema(name, ns)


def test_parse_gives_typed_values_and_names_the_first_problem() -> None:
    person = resolve_schema(Person).parse('{"name": "Ada", "age": 36, "tags": ["maths"]}')
    assert isinstance(person, Person) and person.age == 36
    fenced = resolve_schema(Book).parse('```json\n{"title": "Dune", "year": 1965, '
                                        '"rating": 4.5}\n```')
    assert fenced == Book("Dune", 1965, 4.5)
    for spec in (Person, "name, age int, tags list[str]"):
        schema = resolve_schema(spec)
        with pytest.raises(InvalidOutput, match=r"^the reply is not JSON \(Expecting value at "
                                                r"line 1 column 1\)") as caught:
            schema.parse("Sure! Ada is 36.")
        assert caught.value.text == "Sure! Ada is 36."
        with pytest.raises(InvalidOutput, match="does not match the schema.*at age: "):
            schema.parse('{"name": "Ada", "age": "old", "tags": []}')
        with pytest.raises(InvalidOutput, match=r"cut at the token limit \(finish_reason="
                                                r"length\).*raise --max-tokens"):
            schema.parse('{"name": "Ada", "ag', "length")
    with pytest.raises(InvalidOutput, match=r"at tags\[1\]: 3 is not of type 'string'"):
        resolve_schema("tags list[str]").parse('{"tags": ["a", 3]}')


def test_as_fields_reads_objects_and_dicts_alike() -> None:
    assert resolve_schema(Book).as_fields(Book("Dune", 1965, 4.5)) == {
        "title": "Dune", "year": 1965, "rating": 4.5}
    assert resolve_schema("a, b int").as_fields({"a": "x"}) == {"a": "x", "b": None}


def test_the_parsed_table_escapes_what_the_model_wrote() -> None:
    from chatmagic.render.structured import parsed_html, parsed_text

    schema = resolve_schema(Person)
    value = Person(name='<img src=x onerror="alert(1)">', age=3, tags=["<b>"])
    shown = parsed_html(schema, value)
    assert "<img" not in shown and "&lt;img" in shown and "&lt;b&gt;" in shown
    assert "Person (pydantic model)" in shown
    assert parsed_text(schema, value).splitlines()[2] == "age   3"


# -- in a shell, against the local endpoint ------------------------------------------------

def _formats(endpoint: FakeEndpoint) -> list[str | None]:
    return [(r.body.get("response_format") or {}).get("type") for r in endpoint.chat_requests]


def test_the_request_carries_the_schema(shell: Any, endpoint: FakeEndpoint) -> None:
    shell.user_ns["Person"] = Person
    shell.run_cell_magic("chat", "-m schema --schema Person -o p", "Ada Lovelace was 36.")
    fmt = endpoint.last_body["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["name"] == "Person"
    assert fmt["json_schema"]["strict"] is True
    assert fmt["json_schema"]["schema"]["properties"]["age"]["type"] == "integer"
    # json_schema needs no words: the prompt is sent as written
    assert endpoint.last_body["messages"][-1]["content"] == "Ada Lovelace was 36."
    p = shell.user_ns["p"]
    assert isinstance(p, Person) and (p.name, p.age) == ("Ada", 36)


def test_a_terminal_shows_the_json_then_the_fields(shell: Any, endpoint: FakeEndpoint,
                                                   capsys: Any) -> None:
    shell.user_ns["Person"] = Person
    shell.run_cell_magic("chat", "-m schema --schema Person", "Ada Lovelace was 36.")
    out = capsys.readouterr().out
    assert '"age": 36' in out
    fields = out[out.index("Person (pydantic model)"):].splitlines()
    assert fields[1:4] == ["name  Ada", "age   36", 'tags  ["Lovelace", "was"]']


def test_compare_with_a_schema_gives_each_models_object(shell: Any,
                                                        endpoint: FakeEndpoint) -> None:
    result = shell.run_cell('%%chat --compare schema,schema/shape=prose --schema "name, n int" '
                            "-o d --no-history\nAda 3")
    assert result.error_in_exec is None  # one model's reply fitted
    assert shell.user_ns["d"] == {"schema": {"name": "Ada", "n": 3}, "schema/shape=prose": None}


def test_bad_specs_are_refused_before_sending(shell: Any, endpoint: FakeEndpoint) -> None:
    shell.run_cell("count = 3\ndef helper():\n    pass")
    for spec, words in [("Undefined", "--schema Undefined: no variable named Undefined"),
                        ("count", "--schema count: an int (3) is not a schema"),
                        ("helper", "--schema helper: a function (helper) is not a schema"),
                        ('"name, age integr"', "unknown type 'integr'")]:
        result = shell.run_cell(f"%%chat -m schema --schema {spec}\nhi")
        assert words in str(result.error_in_exec)
    result = shell.run_cell('%%chat -m schema --json --schema "a, b int"\nhi')
    assert "--json cannot be combined with a schema" in str(result.error_in_exec)
    assert endpoint.chat_requests == []


@pytest.mark.parametrize("shape, words", [
    ("prose", "the reply is not JSON (Expecting value at line 1 column 1)"),
    ("wrong", "the reply's JSON does not match the schema Person: at name: Input should be "
              "a valid string"),
    ("cut", "the reply was cut at the token limit (finish_reason=length) before its JSON was "
            "complete: raise --max-tokens"),
])
def test_invalid_output_is_one_error_and_the_text_stays(shell: Any, endpoint: FakeEndpoint,
                                                        capsys: Any, shape: str,
                                                        words: str) -> None:
    shell.user_ns["Person"] = Person
    result = shell.run_cell(f"%%chat -m schema/shape={shape} --schema Person -o p\n"
                            "Ada Lovelace was 36.")
    error = str(result.error_in_exec)
    assert error.startswith(f"schema/shape={shape}: {words}")
    assert error.endswith("The text that arrived is kept, marked incomplete.")
    printed = capsys.readouterr().out
    (turn,) = chatmagic_turns()
    assert turn.assistant["content"] and turn.assistant["content"] in printed  # in the cell
    assert turn.meta["incomplete"] and words in turn.meta["error"]  # and the history
    assert shell.user_ns["p"] is None


def chatmagic_turns() -> list[Any]:
    import chatmagic

    return list(chatmagic._magics.session.notebook.get("default").turns)


def test_a_server_that_refuses_json_schema_still_works(shell: Any, endpoint: FakeEndpoint,
                                                       capsys: Any) -> None:
    shell.user_ns["Person"] = Person
    shell.run_cell_magic("chat", "-m schema/refuse=json_schema --schema Person -o p",
                         "Ada Lovelace was 36.")
    assert shell.user_ns["p"] == Person(name="Ada", age=36, tags=["Lovelace", "was"])
    formats = _formats(endpoint)
    assert formats[-1] == "json_object" and set(formats[:-1]) == {"json_schema"}
    last = endpoint.last_body
    assert last["response_format"]["schema"]["properties"]["age"] == {"title": "Age",
                                                                       "type": "integer"}
    assert last["messages"][-1]["content"].startswith("Ada Lovelace was 36.\n\nAnswer with "
                                                      "one JSON object")
    out = capsys.readouterr().out
    assert "asked again with json_object with the schema beside it: env refused json_schema" \
        in out
    # Remembered for the endpoint: the next cell goes the accepted way at once, and says so.
    sent = len(endpoint.chat_requests)
    shell.run_cell_magic("chat", '-m schema/refuse=json_schema --schema "city, n int" -o c',
                         "Paris 2")
    assert _formats(endpoint)[sent:] == ["json_object"] and shell.user_ns["c"] == {
        "city": "Paris", "n": 2}
    assert "refused json_schema earlier in this session" in capsys.readouterr().out


def test_a_server_that_takes_no_response_format_gets_the_schema_in_words(
        shell: Any, endpoint: FakeEndpoint) -> None:
    shell.run_cell_magic("chat", '-m schema/refuse=json_object --schema "city, n int" -o c',
                         "Paris 2")
    assert shell.user_ns["c"] == {"city": "Paris", "n": 2}
    assert _formats(endpoint)[-1] is None
    assert endpoint.last_body["messages"][-1]["content"].count("JSON schema:") == 1


def test_a_profile_says_how_its_endpoint_takes_a_schema(endpoint: FakeEndpoint,
                                                        clean_env: Any) -> None:
    from chatmagic.core.options import ChatOptions
    from chatmagic.core.profiles import Profile, Profiles
    from chatmagic.engine.runner import Run, run_blocking
    from chatmagic.engine.session import Session

    for mode, expected in [("json_object", "json_object"), ("none", None)]:
        local = Profile("local", endpoint.base_url, needs_key=False, structured_output=mode)
        session = Session(Profiles({"local": local}, "local"), environ={})
        plan = session.plan(ChatOptions(prompt="Ada was 36", model="schema",
                                        schema="name, age int", no_history=True))
        (reply,) = run_blocking(Run(plan.jobs, session.clients))
        assert reply.parsed == {"name": "Ada", "age": 36}
        assert _formats(endpoint)[-1] == expected and len(endpoint.chat_requests) == \
            (1 if mode == "json_object" else 2)  # asked right the first time


def test_structured_output_in_a_toml_profile_is_checked(clean_env: Any) -> None:
    from chatmagic.core.errors import ProfileError
    from chatmagic.core.profiles import Profiles

    (clean_env / "chatmagic.toml").write_text(
        '[profiles.llama]\nbase_url = "http://127.0.0.1:9/v1"\nstructured_output = "json_object"\n')
    assert Profiles.load({}, clean_env).get("llama").structured_output == "json_object"
    (clean_env / "chatmagic.toml").write_text(
        '[profiles.llama]\nbase_url = "http://127.0.0.1:9/v1"\nstructured_output = "grammar"\n')
    with pytest.raises(ProfileError, match='structured_output must be one of "json_schema", '
                                           '"json_object", "none"'):
        Profiles.load({}, clean_env)


# -- the Python API --------------------------------------------------------------------------

def test_prompt_with_a_schema_has_parsed(shell: Any, endpoint: FakeEndpoint) -> None:
    import chatmagic

    r = chatmagic.prompt("Dune 1965 4.5", model="schema", schema=Book)
    assert r.parsed == Book("Dune", 1965, 4.5) and r.failure is None
    bad = chatmagic.prompt("Dune 1965", model="schema/shape=prose", schema="title, year int")
    assert bad.parsed is None and bad.failure is not None
    assert bad.failure.kind == "invalid_output" and bad.text().startswith("Sure!")
    with pytest.raises(SchemaError, match=r"prompt\(schema=...\) 5: an int"):
        chatmagic.prompt("x", model="schema", schema=5)
    with pytest.raises(Exception, match="json cannot be combined with a schema"):
        chatmagic.prompt("x", model="schema", schema=Book, json=True)


def test_aprompt_with_a_schema(shell: Any, endpoint: FakeEndpoint) -> None:
    import asyncio

    import chatmagic

    async def ask() -> Any:
        r = chatmagic.aprompt("point 4 called A", model="schema", schema=Point)
        await r.wait()
        return r.parsed

    assert asyncio.run(ask()) == {"x": 4, "label": "point"}


# -- in a kernel -------------------------------------------------------------------------------


def test_an_empty_stream_asked_again_without_streaming_is_read_too(clean_env: Any,
                                                                   transport: Any) -> None:
    """llama-cpp-python's empty stream is asked again without streaming (runner): that
    answer is read as the schema's value as well."""
    from chatmagic.core.options import ChatOptions
    from chatmagic.core.profiles import Profile, Profiles
    from chatmagic.engine.runner import Run, run_blocking
    from chatmagic.engine.session import Session
    from chatmagic.testing import RawReply

    body = json.dumps({"id": "c", "object": "chat.completion", "created": 1, "model": "m",
                       "choices": [{"index": 0, "finish_reason": "stop", "message": {
                           "role": "assistant", "content": '{"name": "Ada", "n": 3}'}}]})
    plain = RawReply([body.encode()], content_type="application/json")
    endpoint = transport.add(FakeEndpoint(raw={"quiet": RawReply([], unstreamed=plain)}))
    local = Profile("local", endpoint.base_url, needs_key=False)
    session = Session(Profiles({"local": local}, "local"), environ={})
    plan = session.plan(ChatOptions(prompt="Ada 3", model="quiet", schema="name, n int",
                                    no_history=True))
    (reply,) = run_blocking(Run(plan.jobs, session.clients))
    assert [r.body.get("stream") for r in endpoint.chat_requests] == [True, None]
    assert reply.parsed == {"name": "Ada", "n": 3} and reply.failure is None
    assert "asked again without streaming" in " ".join(reply.notes)


def test_with_tools_only_the_answer_is_read_not_the_rounds_that_call(
        shell: Any, endpoint: FakeEndpoint) -> None:
    shell.run_cell("def weather(city: str) -> str:\n    'The weather in a city.'\n"
                   "    return 'sunny'")
    result = shell.run_cell('%%chat -m tools --tools weather --yes --schema "a, b int" -o d\n'
                            "Paris?")
    bodies = [r.body for r in endpoint.chat_requests]
    assert len(bodies) == 2 and all(b["response_format"]["type"] == "json_schema"
                                    for b in bodies)
    # The round that called the tool was not read; the answer after it is (and is prose).
    assert str(result.error_in_exec).startswith("tools: the reply is not JSON")
    assert shell.user_ns["d"] is None


def test_a_retry_asks_for_the_schema_again(shell: Any, endpoint: FakeEndpoint) -> None:
    shell.user_ns["Person"] = Person
    shell.run_cell("%%chat -m schema/shape=prose --schema Person\nAda was 36.")
    retried = shell.run_cell("%chat_history retry")
    assert "the reply is not JSON" in str(retried.error_in_exec)  # read as the schema again
    first, again = (r.body for r in endpoint.chat_requests)
    assert again["response_format"] == first["response_format"]
    assert again["response_format"]["json_schema"]["name"] == "Person"
