"""The Python API in a real kernel, where a cell's top-level await drives aprompt."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from chatmagic.testing import FakeEndpoint
from kernel import Kernel, errors, outputs, run_cells
from wait import until


def sent(endpoint: FakeEndpoint) -> list[list[Any]]:
    """The contents of the messages of every chat request, in order."""
    return [[m["content"] for m in r.body["messages"]] for r in endpoint.chat_requests]


@pytest.mark.kernel
def test_the_python_api_in_a_real_kernel(endpoint: FakeEndpoint, clean_env: Path) -> None:
    nb = run_cells([
        "%load_ext chatmagic",
        "import chatmagic\nr = chatmagic.prompt('one two three', model='echo')\n"
        "pieces = list(r)\nprint(len(pieces), repr(r.text()))",
        "print(chatmagic.prompt('again', model='echo').text())",
        "try:\n    chatmagic.prompt('x', model='echo', temperature=9)\n"
        "except chatmagic.OptionError as e:\n    print('refused:', e)",
        "r = chatmagic.prompt('x', model='server-error')\n"
        "print(r.failure.kind, r.failure.status, r.failure.message)",
        "r = chatmagic.aprompt('a b c d', model='echo')\ngot = [p async for p in r]\n"
        "print(len(got), repr(await r.text()))",
        "c = chatmagic.conversation('x')\nc.prompt('first', model='echo').text()\n"
        "print(c.prompt('second', model='echo').text())",
        "%%chat -c x -m echo\nthird",
        "print([m['content'] for m in chatmagic.conversation('x').messages()])",
    ], env={"OPENAI_BASE_URL": endpoint.base_url}, allow_errors=False)
    printed = ["".join(outputs(cell, "text/plain")) for cell in nb.cells]
    assert not any(errors(cell) for cell in nb.cells)
    assert printed[1] == "3 'one two three'\n"
    assert printed[2] == "again\n"
    assert printed[3] == "refused: temperature must be between 0 and 2, not 9\n"
    assert printed[4].startswith("status 500 ") and "The server had an error" in printed[4]
    assert printed[5] == "4 'a b c d'\n"
    assert printed[6] == "second\n"
    assert printed[8] == "['first', 'first', 'second', 'second', 'third', 'third']\n"
    bodies = sent(endpoint)
    retried = bodies.count(["x"])  # the SDK asks again after a 500
    assert retried >= 1 and bodies == [["one two three"], ["again"], *[["x"]] * retried,
                                       ["a b c d"], ["first"], ["first", "first", "second"],
                                       ["first", "first", "second", "second", "third"]]


@pytest.mark.kernel
def test_an_interrupt_while_waiting_stops_the_request(endpoint: FakeEndpoint,
                                                      clean_env: Path) -> None:
    with Kernel({"OPENAI_BASE_URL": endpoint.base_url}) as kernel:
        interrupted_at: list[float] = []

        def interrupt_once_text_arrives(msg: dict[str, Any]) -> None:
            if not interrupted_at and "w3" in msg["content"].get("text", ""):
                interrupted_at.append(time.monotonic())
                kernel.manager.interrupt_kernel()

        reply, _ = kernel.execute(
            "import chatmagic\nr = chatmagic.prompt('go', model='long/tokens=3000,delay=0.01')\n"
            "for piece in r:\n    print(piece, end='', flush=True)",
            during=interrupt_once_text_arrives)
        assert interrupted_at  # and the text is a fraction of the 30 s reply (below)
        assert reply["status"] == "error" and reply["ename"] == "KeyboardInterrupt"
        _, messages = kernel.execute("print(r.failure.kind, r.text().startswith('w0 w1 w2 w3'),"
                                     " len(r.text()) < 3000 * 3)")
        printed = "".join(m["content"].get("text", "") for m in messages)
        assert printed == "interrupted True True\n"
        until(lambda: endpoint.chat_requests[-1].disconnected,
              "the server seeing the client go away")
