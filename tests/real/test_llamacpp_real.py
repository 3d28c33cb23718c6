"""chatmagic against llama.cpp's own server (llama-server's code, from the xllamacpp wheel).

It differs from llama-cpp-python's server where chatmagic has to care: it has slots
(``n_parallel`` 2 here), so requests sent together run together instead of cutting each other;
it sends usage in a stream when ``stream_options`` asks; it takes ``response_format``
``json_schema``; it serves ``/props`` (its context per slot, no vision); it answers a prompt
past the context with a 400 in a stream too. This GGUF has no chat template, so it falls back
to chatml. Gemma 3 270M's words are never checked.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest

from kernel import errors
from realenv import LLAMACPP_SLOTS, LLAMACPP_URL, N_CTX, SAMPLING
from test_real_servers import (ENDED, PIXEL, USAGE, footers, ok, printed, run, shown, values,
                               warnings)

LAUNCH = re.compile(r"launch_slot_: id +(\d+)|release: id +(\d+)")


def _log_from() -> tuple[Path, int]:
    log = Path(os.environ["CHATMAGIC_REAL_LLAMACPP_LOG"])
    return log, log.stat().st_size


def _most_at_once(since: tuple[Path, int]) -> int:
    """How many slots were generating at once at most, by the server's log since ``since``."""
    log, offset = since
    with log.open("rb") as f:
        f.seek(offset)
        text = f.read().decode(errors="replace")
    busy: set[str] = set()
    most = 0
    for launched, released in LAUNCH.findall(text):
        if launched:
            busy.add(launched)
        else:
            busy.discard(released)
        most = max(most, len(busy))
    return most


def seen(cell: Any) -> str:
    return "\n".join(shown(o.get("data", {})) for o in cell.outputs)


def test_compare_runs_in_its_slots_at_once(real: Path) -> None:
    since = _log_from()
    nb = run(real, ["%%chat --compare llamacpp:gemma-3-270m,llamacpp:gemma-3-270m "
                    f"{SAMPLING} --max-tokens 24 -o out\nName three colours.", "print(out)"])
    ok(nb)
    assert _most_at_once(since) == 2, "the two columns did not run at once"
    texts = values(nb.cells[2])
    assert len(texts) == 2 and all(t.strip() for t in texts.values()), texts
    ends = footers(nb.cells[1])
    assert len(ends) == 2 and all(f.startswith(ENDED) for f in ends), ends
    # Nothing was cut, so nothing asked again; both counted by the server (stream usage).
    assert "asked again" not in seen(nb.cells[1]) and "estimated" not in seen(nb.cells[1])


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "no-stream"])
def test_n_choices_arrive_each_with_its_end(real: Path, stream: bool) -> None:
    flag = "" if stream else " --no-stream"
    nb = run(real, [f"%%chat -p llamacpp -n 2 -t 1 --seed 7 --max-tokens 8{flag} -o r\n"
                    "Name three colours.", "print(repr(r))", USAGE])
    ok(nb)
    texts = values(nb.cells[2])
    assert isinstance(texts, list) and len(texts) == 2 and all(t.strip() for t in texts), texts
    ends = footers(nb.cells[1])
    assert len(ends) == 2 and all(f.startswith(ENDED) for f in ends), ends
    usage = values(nb.cells[3])
    assert usage["requests"] == 1 and usage["estimated"] is False, usage
    # llama.cpp's server counts one choice's tokens in its usage, not both (see
    # docs/real-servers.md): at most 8, where the two choices made up to 16.
    assert 1 <= usage["completion_tokens"] <= 8, usage


def test_each_rows_run_in_its_slots_and_none_is_asked_again(real: Path) -> None:
    since = _log_from()
    nb = run(real, ["colours = ['red', 'green', 'blue', 'yellow']",
                    f"%%chat --each colours -p llamacpp --concurrency 4 {SAMPLING} "
                    "--max-tokens 16 -o t\nName one thing that is {item}.",
                    "print(len(t), t['error'].isna().all(), "
                    "t['text'].str.strip().astype(bool).all(), "
                    "set(t['finish_reason']) <= {'stop', 'length'}, "
                    "(t['completion_tokens'] > 0).all())"])
    ok(nb)
    assert printed(nb.cells[3]).split() == ["4", "True", "True", "True", "True"], \
        printed(nb.cells[3])
    assert "4 of 4 rows answered" in seen(nb.cells[2]) and "retried" not in seen(nb.cells[2])
    # Four rows at once: the server ran as many as it has slots, and queued the rest.
    assert _most_at_once(since) == LLAMACPP_SLOTS


PROMPT = "Extract the person from this sentence: Ada Lovelace was 36 years old."


def test_a_schema_is_taken_as_json_schema_at_once(real: Path) -> None:
    ask = f"%%chat -p llamacpp {SAMPLING} --max-tokens 80 --no-history"
    nb = run(real, ["from pydantic import BaseModel\n"
                    "class Person(BaseModel):\n    name: str\n    age: int\n",
                    f"{ask} --schema Person -o p\n{PROMPT}",
                    "print(repr((type(p).__name__, p.model_dump())))",
                    f'{ask} --schema "name, age int" -o q\n{PROMPT}',
                    "print(repr((type(q).__name__, q)))"])
    ok(nb)
    for cell, kind in ((3, "Person"), (5, "dict")):
        name, fields = values(nb.cells[cell])
        assert name == kind and set(fields) == {"name", "age"}, fields
        assert isinstance(fields["name"], str) and isinstance(fields["age"], int), fields
    for cell in (2, 4):
        text = seen(nb.cells[cell])
        assert "refused" not in text and "asked again" not in text, text


def test_props_tell_the_context_and_no_vision(real: Path) -> None:
    import httpx

    from chatmagic.engine.capabilities import read_props, server_root

    root = server_root(LLAMACPP_URL)
    info = read_props(httpx.get(f"{root}/props", timeout=10).json())
    assert info is not None and info.context == N_CTX and info.vision is False, info
    assert httpx.get(f"{root}/model_group/info", timeout=10).status_code == 404
    # So an image is warned about (the server's own words) and sent; this server then refuses
    # it (HTTP 500 "image input is not supported"), and the cell says so in one message.
    nb = run(real, [f"%%chat -p llamacpp {SAMPLING} --max-tokens 8 -i {PIXEL}\n"
                    "What is in this image?",
                    f"%%chat -p llamacpp {SAMPLING} --max-tokens 4\nstill working?"])
    (warned,) = warnings(nb.cells[1])
    assert "may not see the image" in warned and "llama.cpp's /props" in warned, warned
    (error,) = errors(nb.cells[1])
    assert len(error["traceback"]) == 1, error
    assert "image input is not supported" in error["evalue"], error["evalue"]
    assert LLAMACPP_URL in error["evalue"], error["evalue"]
    (footer,) = footers(nb.cells[2])  # the image turn is not sent again
    assert footer.startswith(ENDED), footer


def test_a_refused_image_is_not_asked_again_nor_advised_to_wait(real: Path) -> None:
    nb = run(real, [f"%%chat -p llamacpp --max-tokens 4 -i {PIXEL}\nWhat is in this image?"])
    (error,) = errors(nb.cells[1])
    assert "image input is not supported" in error["evalue"], error["evalue"]
    assert "try again later" not in error["evalue"] and "attempts" not in error["evalue"], \
        error["evalue"]
