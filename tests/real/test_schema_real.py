"""--schema against llama-cpp-python's server, directly and through LiteLLM's proxy.

The server refuses ``response_format`` ``json_schema`` (HTTP 500, "Input should be 'text' or
'json_object'"; LiteLLM passes the 500 on) and takes ``{"type": "json_object", "schema":
...}``, which it enforces with a grammar: so whatever Gemma 3 270M means to say, the reply is
JSON of the schema's shape. The tests look at that shape and the types, never the words.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from realenv import SAMPLING, assert_no_key
from test_real_servers import ok, run, shown, values

PROMPT = "Extract the person from this sentence: Ada Lovelace was 36 years old."
DEFINE = ("from pydantic import BaseModel\n"
          "class Person(BaseModel):\n"
          "    name: str\n"
          "    age: int\n")
SHOW = "print(repr((type(p).__name__, p if isinstance(p, dict) else p.model_dump())))"


def seen(cell: Any) -> str:
    """Everything a reader sees of a cell's outputs (the footer's notes come last)."""
    return "\n".join(shown(o.get("data", {})) for o in cell.outputs)


@pytest.mark.parametrize("profile", ["llama", "lite"])
def test_a_refused_json_schema_is_asked_again_and_the_object_arrives(real: Path,
                                                                     profile: str) -> None:
    ask = f"%%chat -p {profile} {SAMPLING} --max-tokens 80 --no-history"
    nb = run(real, [DEFINE,
                    f"{ask} --schema Person -o p\n{PROMPT}", SHOW,
                    f'{ask} --schema "name, age int" -o p\n{PROMPT}', SHOW])
    ok(nb)
    assert_no_key(nb)
    for cell, kind in ((3, "Person"), (5, "dict")):
        name, fields = values(nb.cells[cell])
        assert name == kind and set(fields) == {"name", "age"}, fields
        assert isinstance(fields["name"], str) and isinstance(fields["age"], int), fields
    first = seen(nb.cells[2])
    assert "asked again with json_object with the schema beside it" in first, first
    assert "refused json_schema" in first, first
    second = seen(nb.cells[4])  # remembered: asked the accepted way at once
    assert "refused json_schema earlier in this session" in second, second
    assert "asked again" not in second, second


def test_a_profile_that_says_json_object_is_asked_so_at_once(real: Path) -> None:
    config = real / "config" / "chatmagic" / "config.toml"
    text = config.read_text()
    llama = text.split("[profiles.llama]\n", 1)[1].split("[profiles.", 1)[0]
    config.write_text(text + "[profiles.llama_json]\n" + llama
                      + 'structured_output = "json_object"\n')
    nb = run(real, [f'%%chat -p llama_json {SAMPLING} --max-tokens 80 --no-history '
                    f'--schema "name, age int, known_for str" -o p\n{PROMPT}', SHOW])
    ok(nb)
    name, fields = values(nb.cells[2])
    assert name == "dict" and set(fields) == {"name", "age", "known_for"}, fields
    assert isinstance(fields["age"], int), fields
    footer = seen(nb.cells[1])
    assert "finished" in footer and "refused" not in footer and "asked again" not in footer, footer
