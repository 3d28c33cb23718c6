"""Tab completion of ``-m``, ``--compare`` and ``-p`` from the profiles and ``%models`` lists.

IPython cuts the word being completed at ``:``, ``,`` and ``=``, so a
candidate is returned as the rest after the last of those in what was typed.
A model id comes from the endpoint: only one that is a single plain word is offered (a
line end in one would make the rest of it code in the cell).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from ..core.visible import is_visible
from .cmd.models import model_ids
from .ipy import context_matcher

if TYPE_CHECKING:
    from .magics import ChatMagics

__all__ = ["install", "candidates", "insertable"]

_CHAT_LINE = re.compile(r"^\s*%%?chat\s")
_DELIMS = re.compile(r"[:,=]")
# What a model id may hold to be offered: letters, digits and the punctuation ids use
# (``meta-llama/Llama-3.1-8B``, ``qwen2.5:7b``, ``@cf/x``); no space, quote, comma or brace.
_INSERTABLE = re.compile(r"[\w.:/@+~-]+")


def insertable(model_id: str) -> bool:
    """Whether an id the endpoint listed is safe to insert into the cell as it is."""
    return bool(_INSERTABLE.fullmatch(model_id)) and is_visible(model_id)


def candidates(magics: "ChatMagics", before: str) -> tuple[str, list[str]]:
    """What the word before the cursor is, and the full words it may become."""
    words = before.split()
    typed = "" if before.endswith((" ", "\t")) else (words.pop() if words else "")
    option = words[-1] if words else ""
    if typed.startswith("--compare="):
        option, typed = "--compare", typed[len("--compare="):]
    profiles = magics.session.profiles.names()
    cache = magics.models_cache
    ids = [i for i in model_ids(cache) if insertable(i)]
    prefixed = [f"{row['profile']}:{row['id']}" for rows in cache.values() for row in rows
                if insertable(str(row["id"]))]
    if option in ("-p", "--profile"):
        return typed, profiles
    if option in ("-m", "--model"):
        return typed, ids + prefixed + [f"{p}:" for p in profiles]
    if option == "--compare":
        head, _, last = typed.rpartition(",")
        prefix = f"{head}," if head else ""
        pool = ids + prefixed + [f"{p}:" for p in profiles]
        return typed, [prefix + c for c in pool if c.startswith(last)]
    return typed, []


def install(ipython: Any, magics: "ChatMagics") -> Any:
    """Add the matcher to the shell's completer (IPython >= 8.6 matcher API v2); return it."""
    from IPython.core.completer import SimpleCompletion

    @context_matcher()
    def chat_matcher(context: Any) -> dict[str, Any]:
        before = context.text_until_cursor.split("\n")[-1]
        if not _CHAT_LINE.match(before):
            return {"completions": []}
        typed, words = candidates(magics, before)
        # Return each candidate as the part after the last delimiter IPython split on.
        cut = max((m.end() for m in _DELIMS.finditer(typed)), default=0)
        found = sorted({w[cut:] for w in words if w.startswith(typed)})
        return {"completions": [SimpleCompletion(text=t, type="chatmagic") for t in found],
                "suppress": bool(found)}

    ipython.Completer.custom_matchers.append(chat_matcher)
    return chat_matcher
