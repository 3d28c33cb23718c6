"""The history on a real disk that fills up: a 64 KiB tmpfs (mounted as root; skipped where
mounting is not allowed)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Iterator

import pytest

from chatmagic.core.errors import HistoryError
from chatmagic.store.conversation import Notebook, Turn
from chatmagic.store.messages import write_private


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A directory on its own 64 KiB tmpfs."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount command")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs",
                           str(mount)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_a_journal_on_a_disk_that_fills_up_stays_whole(
        small_disk: Path, capsys: pytest.CaptureFixture[str]) -> None:
    book = Notebook("full.ipynb", small_disk)
    assert book.path is not None
    path = book.path
    turns = 0
    while book.path is not None:  # until the disk is full and the journal stops
        turns += 1
        book.add_turn("default", Turn.of({"role": "user", "content": f"q{turns}"},
                                         {"role": "assistant", "content": "z" * 5000}))
        assert turns < 100, "the disk never filled"
    for later in range(3):  # the conversation goes on
        book.add_turn("default", Turn.of({"role": "user", "content": f"later {later}"}, None))
    assert len(book.get("default").turns) == turns + 3
    data = path.read_bytes()
    assert data.endswith(b"\n")
    lines = [json.loads(line) for line in data.splitlines()]  # no torn line
    assert len(lines) == turns - 1  # every turn but the one that did not fit
    reopened = Notebook("full.ipynb", small_disk)
    assert reopened.unreadable == 0 and len(reopened.get("default").turns) == turns - 1
    err = capsys.readouterr().err
    assert err.count("the history could not be saved") == 1 and "the disk is full" in err
    print(f"{turns - 1} turns, {len(data)} bytes fit on the 64 KiB disk")

    # A save to the full disk fails as one message; the file already there is unchanged.
    with pytest.raises(HistoryError, match="cannot write .* Nothing was written"):
        write_private(path, "[]")
    assert path.read_bytes() == data
    assert [p.name for p in small_disk.iterdir()] == [path.name]  # no temp file left
