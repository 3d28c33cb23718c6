"""Waiting for what another thread does (a batch finishing, a server noticing a hang-up)."""

from __future__ import annotations

import time
from typing import Callable

#: Seconds a wait gives up after: a hang guard, far above what a busy machine takes; no test
#: measures speed with it (speed is bench/'s).
LIMIT = 60.0


def until(condition: Callable[[], object], what: str, limit: float = LIMIT) -> None:
    """Return once ``condition()`` holds; fail, saying ``what`` never happened, after ``limit``
    seconds."""
    give_up = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < give_up, f"{what} never happened (waited {limit:g} s)"
        time.sleep(0.01)
