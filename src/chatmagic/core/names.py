"""The names nearest one that was mistyped, for a message's "Did you mean".

Wherever a name is taken (a setting, a subcommand, a tool, a model a reply is kept by, a
conversation), a name that matches none gets one message naming the nearest ones.
"""

from __future__ import annotations

import difflib
from typing import Iterable

__all__ = ["nearest", "did_you_mean"]


def nearest(word: str, names: Iterable[str], most: int = 3, cutoff: float = 0.6) -> list[str]:
    """Up to ``most`` of ``names`` nearest ``word``, nearest first; case does not count
    (``Model`` finds ``model``), and a name that only differs in case comes first."""
    by_fold: dict[str, str] = {}
    for name in names:
        by_fold.setdefault(name.casefold(), name)
    folded = word.casefold()
    found = difflib.get_close_matches(folded, list(by_fold), n=most, cutoff=cutoff)
    return [by_fold[f] for f in found]


def did_you_mean(word: str, names: Iterable[str], most: int = 3) -> str:
    """``" Did you mean model?"`` (or ``"a, b or c"``) for the names nearest ``word``; empty
    when none is near."""
    near = nearest(word, names, most)
    if not near:
        return ""
    listed = near[0] if len(near) == 1 else f"{', '.join(near[:-1])} or {near[-1]}"
    return f" Did you mean {listed}?"
