"""The public API's types as a user's own mypy --strict sees them (mypy runs as a process)."""

from __future__ import annotations

import os
from pathlib import Path


_USER_CODE = '''\
import chatmagic

r = chatmagic.prompt("x", temprature=0.3)
ok = chatmagic.prompt("x", model="echo", temperature=0.3, stop=["END"], max_tokens=5,
                      logit_bias={50256: -100}, params={"top_k": 5}, allow=True)
conv = chatmagic.conversation("c").prompt("y", seed=3, tools=[len], max_rounds=2)
reply = chatmagic.chat("z", conversation="c", new=True, temperature=1)
replies = chatmagic.compare("z", ["a", "b"], no_history=True)
table = chatmagic.map("{item}", [1, 2], models=["a", "b"], concurrency=4, system="s")
failure = ok.failure
if failure is not None and failure.kind == "tool_rounds":
    print(failure.status, failure.message)
cost: chatmagic.Cost | None = ok.cost
def allow(call: chatmagic.ToolCall) -> bool:
    return call.name == "len"
again = chatmagic.prompt("x", allow=allow, max_tokens="5")
'''


def test_a_misspelt_keyword_is_a_type_error_for_the_callers_mypy(tmp_path: Path) -> None:
    """What a user's `mypy --strict` says of their code: the misspelt keyword and the wrong
    type, and nothing else (every correct call passes)."""
    # The package comes from MYPYPATH (as it would from site-packages, with its py.typed).
    import subprocess
    import sys

    import chatmagic

    source = tmp_path / "user_code.py"
    source.write_text(_USER_CODE)
    src = Path(chatmagic.__file__).parents[1]  # this checkout's package, not an installed one
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-error-summary", "--cache-dir",
         str(src.parent / ".mypy_cache" / "user-code"), str(source)],
        capture_output=True, text=True, cwd=tmp_path,
        env={**os.environ, "MYPYPATH": str(src)})
    # Only the user's file: mypy says nothing of an installed package's own code.
    errors = [(int(line.split(":")[1]), line.split(": error: ", 1)[1])
              for line in result.stdout.splitlines()
              if line.startswith("user_code.py:") and ": error: " in line]
    lines = _USER_CODE.splitlines()
    assert [number for number, _ in errors] == \
        [lines.index(line) + 1 for line in lines if "temprature" in line or '"5"' in line], \
        result.stdout + result.stderr
    assert 'Unexpected keyword argument "temprature" for "prompt"' in errors[0][1]
    assert errors[1][1].startswith('Argument "max_tokens" to "prompt" has incompatible type '
                                   '"str"; expected "int | None"')
