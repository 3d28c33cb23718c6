"""--schema in a real kernel: each kind comes back as its type; invalid JSON is one error."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cells import SCHEMA_CELL
from chatmagic.testing import FakeEndpoint


@pytest.mark.kernel
def test_each_kind_comes_back_as_its_type_in_a_kernel(endpoint: FakeEndpoint,
                                                      clean_env: Any) -> None:
    from kernel import errors, outputs, run_cells, visible

    nb = run_cells(["%load_ext chatmagic", SCHEMA_CELL,
                    "%%chat -m schema --schema Person -o p\nAda Lovelace was 36.",
                    "%%chat -m schema --schema Book -o b\nDune 1965, rated 4.5",
                    "%%chat -m schema --schema Point -o pt\npoint 3 named A",
                    "%%chat -m schema --schema city -o c\nParis has 2100000 people",
                    '%%chat -m schema --schema "name, age int, tags list[str]" -o d\nBob is 40',
                    "print(repr(p), repr(b), repr(pt), repr(c), repr(d), sep='\\n')\n"
                    "print(type(p).__name__, type(b).__name__, type(pt).__name__, "
                    "type(c).__name__, type(d).__name__, type(p.age).__name__, "
                    "type(b.rating).__name__, type(pt['x']).__name__, "
                    "type(c['population']).__name__, type(d['tags']).__name__)"],
                   env={"OPENAI_BASE_URL": endpoint.base_url})
    for cell in nb.cells:
        assert not errors(cell), (cell.source, errors(cell))
    printed = outputs(nb.cells[-1], "text/plain")[0].splitlines()
    assert printed == ["Person(name='Ada', age=36, tags=['Lovelace', 'was'])",
                       "Book(title='Dune', year=1965, rating=4.5)",
                       "{'x': 3, 'label': 'point'}",
                       "{'city': 'Paris', 'population': 2100000}",
                       "{'name': 'Bob', 'age': 40, 'tags': ['is', 'Bob']}",
                       "Person Book dict dict dict int float int int list"]
    sent = [r.body["response_format"] for r in endpoint.chat_requests]
    assert [f["json_schema"]["name"] for f in sent] == ["Person", "Book", "Point", "city",
                                                        "reply"]
    assert sent[3]["json_schema"]["schema"]["properties"] == json.loads(
        json.dumps({"city": {"type": "string"}, "population": {"type": "integer"}}))
    # The cell: the JSON as code, then the object as a field/value table.
    shown = "".join(outputs(nb.cells[2]))
    assert "<pre>" in shown and '"age": 36' in visible(shown)
    assert "<td>age<td>36" in shown and "Person (pydantic model)" in visible(shown)


@pytest.mark.kernel
def test_invalid_json_in_a_kernel_is_one_error_with_the_text_kept(endpoint: FakeEndpoint,
                                                                   clean_env: Any) -> None:
    from kernel import errors, outputs, run_cells, visible

    nb = run_cells(["%load_ext chatmagic",
                    '%%chat -m schema/shape=prose --schema "name, age int" -o p\nAda was 36',
                    "print(repr(p))\n%chat_history export -o h\nprint(h[-1]['content'])"],
                   env={"OPENAI_BASE_URL": endpoint.base_url})
    (error,) = errors(nb.cells[1])
    assert error["evalue"].startswith("schema/shape=prose: the reply is not JSON")
    assert "Sure! The person you mean is called Ada" in visible("".join(outputs(nb.cells[1])))
    assert outputs(nb.cells[2], "text/plain")[0].splitlines() == [
        "None", "Sure! The person you mean is called Ada, and she is 36 years old."]
