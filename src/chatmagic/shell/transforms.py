"""Input transformers: how a cell's text reaches the ``%chat`` magics.

`question_transform` keeps ``%chat why is the sky blue?`` a chat, not IPython's
help request; `await_chat_transform` runs a cell that is only ``%%chat``/``%chat``
as an awaited coroutine on the kernel's own event loop (the Stop button's click is
served while the reply streams, and a kernel interrupt cancels the cell).
"""

from __future__ import annotations

import io
import re
import tokenize

__all__ = ["question_transform", "await_chat_transform", "RUNNER"]

#: The name, in the user's namespace, of the coroutine an awaited cell calls.
RUNNER = "__chatmagic_run__"

_AWAITABLE = re.compile(r"^get_ipython\(\)\.run_(cell|line)_magic\('chat', (.*)\)\s*$")
_QUESTION = re.compile(r"^(\s*)%chat\s(.*\?)\s*$")


def question_transform(lines: list[str]) -> list[str]:
    """Keep a ``%chat`` line that ends in ``?`` a chat, not a help request.

    IPython reads ``%chat why is the sky blue?`` as ``pinfo blue``. Questions end in
    ``?``, so such a line becomes the magic call IPython would have made without it.
    """
    if next((ln for ln in lines if ln.strip()), "").lstrip().startswith("%%"):
        return lines  # a cell magic's body is its text, not code
    if not any(_QUESTION.match(line) for line in lines):
        return lines  # most cells: no tokenizing at all
    out = list(lines)
    for i, (line, code) in enumerate(zip(lines, _continues_code(lines))):
        match = _QUESTION.match(line)
        if match and not code:
            out[i] = (f"{match.group(1)}get_ipython().run_line_magic('chat', "
                      f"{match.group(2).strip()!r})\n")
    return out


def _continues_code(lines: list[str]) -> list[bool]:
    """For each line, whether it goes on with Python begun above it (inside a multi-line
    string or an open bracket), and so is code or data, not a magic.

    Magic and shell lines are left out of what is tokenized: ``%chat what's this?``
    is no Python, and Python 3.12's tokenizer stops at its apostrophe.
    """
    continues = []
    pending = ""  # the Python statement read so far, if it is still open
    for line in lines:
        continues.append(bool(pending))
        if not pending and line.lstrip().startswith(("%", "!")):
            continue
        pending = pending + line if _open_at_end(pending + line) else ""
    return continues


def _open_at_end(code: str) -> bool:
    """Whether ``code`` ends inside a multi-line string or an open bracket."""
    try:
        for _ in tokenize.generate_tokens(io.StringIO(code).readline):
            pass
    except tokenize.TokenError as exc:  # 3.11: "EOF in multi-line string/statement"
        return "multi-line" in str(exc.args[0])  # 3.12+: "unexpected EOF in multi-line ..."
    except SyntaxError:  # 3.12+ raises some (bad indentation) as they are
        return False
    return False


def await_chat_transform(lines: list[str]) -> list[str]:
    """Run a cell that is only ``%%chat``/``%chat`` as an awaited coroutine.

    IPython turns such a cell into one ``get_ipython().run_cell_magic('chat', ...)``
    line; awaiting our coroutine instead lets the kernel's loop keep serving
    widget clicks (the Stop button) and cancel the cell on interrupt. With
    ``%autoawait False`` a top-level ``await`` is a SyntaxError: the cell then runs
    the blocking way, as written.
    """
    from IPython import get_ipython

    shell = get_ipython()
    if shell is None or not getattr(shell, "autoawait", False):
        return lines
    code = [ln for ln in lines if ln.strip()]
    if len(code) != 1:
        return lines
    match = _AWAITABLE.match(code[0])
    if not match:
        return lines
    return [f"await {RUNNER}('{match.group(1)}', {match.group(2)})\n"]
