"""The history file against other processes: a writer killed mid-write, two writers at once."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path


from chatmagic.store.conversation import Notebook


def test_killed_writer_leaves_a_loadable_history(tmp_path: Path) -> None:
    script = textwrap.dedent(f"""
        import os, signal, sys
        from chatmagic.store.conversation import Notebook, Turn
        book = Notebook("crash.ipynb", __import__("pathlib").Path({str(tmp_path)!r}))
        big = "x" * 200_000
        i = 0
        while True:
            book.add_turn("default", Turn.of({{"role": "user", "content": f"q{{i}}"}},
                                          {{"role": "assistant", "content": big}}))
            i += 1
            if i == 20:
                print("ready", flush=True)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    proc.kill()
    proc.wait()
    turns = Notebook("crash.ipynb", tmp_path).get("default").turns
    assert len(turns) >= 20 and all(t.assistant["content"] == "x" * 200_000 for t in turns)


def test_two_writers_do_not_corrupt_the_file(tmp_path: Path) -> None:
    script = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        from chatmagic.store.conversation import Notebook, Turn
        book = Notebook("shared.ipynb", Path({str(tmp_path)!r}))
        for i in range(200):
            book.add_turn(sys.argv[1], Turn.of({{"role": "user", "content": "q" * 5000}}, None))
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script, name]) for name in ("a", "b")]
    assert all(p.wait() == 0 for p in procs)
    book = Notebook("shared.ipynb", tmp_path)
    assert len(book.get("a").turns) == 200 and len(book.get("b").turns) == 200
