"""Notebook functions as tools against llama-cpp-python's server with its
``chatml-function-calling`` format, the one it offers for tools on a model without a tool
template.

Gemma 3 270M does not call a tool unasked, so the call is forced with ``tool_choice`` (passed
through ``--param``); the format then constrains the arguments to the function's schema with
a grammar. A forced ``tool_choice`` is sent with every round, so the model calls again each
round until ``--max-rounds``; the point is that every round after the first is accepted (it
carries the assistant's ``tool_calls`` message, which this server refused with HTTP 500 while
chatmagic sent it with ``"content": null``), and that the next cell, replaying all of it, is
answered.
"""

from __future__ import annotations

from pathlib import Path

from realenv import LLAMA_TOOLS_URL, SAMPLING
from test_real_servers import ENDED, footers, printed, run, values
from kernel import errors

ADD = ("ran = []\n"
       "def add(a: int, b: int) -> int:\n"
       "    '''Add two whole numbers.'''\n"
       "    ran.append((a, b))\n"
       "    return a + b\n")
FORCE = "--param 'tool_choice={\"type\": \"function\", \"function\": {\"name\": \"add\"}}'"
HISTORY = ("import chatmagic\nh = chatmagic.history()\n"
           "print(repr(([m['role'] for m in h], [m['content'] for m in h if m.get('tool_calls')], "
           "[type(v).__name__ for pair in ran for v in pair])))")


def test_a_tool_round_trip_on_chatml_function_calling(real: Path) -> None:
    nb = run(real, [ADD,
                    f"%%chat -p llama_tools {SAMPLING} --max-tokens 40 --tools add --yes "
                    f"--max-rounds 2 {FORCE}\nWhat is 2 + 3?",
                    HISTORY,
                    f"%%chat -p llama_tools {SAMPLING} --max-tokens 16 -o answer\n"
                    "So what is 2 + 3?",
                    "print(repr(answer))"])
    # Round 1 called add (forced) and it ran; round 2 (the calls and the result sent back,
    # tool_choice now "auto") was accepted: answered with text, or with a call again, which
    # the round limit answers "not run". Before, round 2 was the server's HTTP 500.
    errs = errors(nb.cells[2])
    roles, contents, types = values(nb.cells[3])
    if errs:
        (error,) = errs
        assert error["ename"] == "TooManyRounds", error
        assert "after 2 request(s)" in error["evalue"] and LLAMA_TOOLS_URL not in error["evalue"]
        assert roles == ["user", "assistant", "tool", "assistant", "tool"], roles
    else:
        assert roles == ["user", "assistant", "tool", "assistant"], roles
    assert types == ["int", "int"], types  # add ran once, with the schema's types
    assert len(contents) == roles.count("tool"), contents  # one calls message a result
    # The next cell sends the whole exchange back, and is answered.
    for cell in nb.cells[4:]:
        assert not errors(cell), errors(cell)
    assert values(nb.cells[5]).strip(), printed(nb.cells[5])
    (footer,) = footers(nb.cells[4])
    assert footer.startswith(ENDED), footer
