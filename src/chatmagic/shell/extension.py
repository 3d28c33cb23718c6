"""``%load_ext chatmagic`` and ``%unload_ext chatmagic``: what the extension adds to a shell.

Loading registers `ChatMagics`, the input transformers (`transforms`), the coroutine an
awaited cell calls, the ``{Err}`` hook, the error handler that shows chatmagic's own
failures as one message, and the completion of ``-m``/``-p``/``--compare``; the Python
API then talks through the magics' session. Unloading takes all of it away again.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable

# openai first, from this shallow frame, before any chatmagic module: imported 7 frames
# deeper (from transport.client), CPython 3.11 mapped and unmapped a frame-stack chunk on
# nearly every call of its ~700-module import (+50 ms of system time, bench figure 5).
# The cell's machinery (cmd.chat, the engine's runner, the sinks) loads on the first cell.
import openai  # noqa: F401
from IPython.core.error import UsageError

from ..core.errors import ChatError
from ..engine.session import use_session
from .ipy import in_kernel
from .magics import CUSTOM_EXCEPTIONS, ChatMagics
from .transforms import RUNNER, await_chat_transform, question_transform

__all__ = ["load", "unload", "show_error"]


def load(ipython: Any) -> ChatMagics:
    """Register new magics in ``ipython``; return them (`unload` takes them away)."""
    try:
        magics = ChatMagics(ipython)
    except ChatError as exc:
        # A configuration that cannot be read (a price of -1, a profile without base_url):
        # one message naming the file and line, as IPython shows a UsageError, not a traceback.
        said = str(exc).rstrip()
        said += "" if said.endswith((".", "?", "!")) else "."
        raise UsageError(f"chatmagic is not loaded: {said} Fix it, then run "
                         "%load_ext chatmagic again.") from None
    ipython.register_magics(magics)
    ipython.input_transformers_cleanup.append(question_transform)
    if in_kernel(ipython):
        ipython.input_transformers_post.append(await_chat_transform)
        ipython.user_ns[RUNNER] = _runner(magics)
        ipython.user_ns_hidden[RUNNER] = ipython.user_ns[RUNNER]
    ipython.events.register("post_run_cell", magics.errors.record)  # for {Err}
    if not ipython.custom_exceptions:  # never displace a handler the user installed
        ipython.set_custom_exc(CUSTOM_EXCEPTIONS, show_error(magics))
    from .completion import install as install_completion

    magics.completion_matcher = install_completion(ipython, magics)
    use_session(magics.session)  # the Python API talks through the notebook's session
    return magics


def unload(ipython: Any, magics: ChatMagics | None) -> None:
    """Undo `load` (``%unload_ext chatmagic``); ``magics``: what it returned, if known."""
    if question_transform in ipython.input_transformers_cleanup:
        ipython.input_transformers_cleanup.remove(question_transform)
    if await_chat_transform in ipython.input_transformers_post:
        ipython.input_transformers_post.remove(await_chat_transform)
    ipython.user_ns.pop(RUNNER, None)
    ipython.user_ns_hidden.pop(RUNNER, None)
    if ipython.custom_exceptions == CUSTOM_EXCEPTIONS:
        ipython.set_custom_exc((), None)
    if magics is not None:
        if magics.errors.record in ipython.events.callbacks["post_run_cell"]:
            ipython.events.unregister("post_run_cell", magics.errors.record)
        if magics.completion_matcher in ipython.Completer.custom_matchers:
            ipython.Completer.custom_matchers.remove(magics.completion_matcher)
    use_session(None)


def _runner(magics: ChatMagics) -> Callable[..., Awaitable[None]]:
    """The coroutine function an awaited ``%%chat`` cell calls (see `transforms`)."""
    async def run(kind: str, line: str, cell: str | None = None) -> None:
        __tracebackhide__ = True
        await magics.achat(line, cell if kind == "cell" else None)
    return run


def show_error(magics: ChatMagics) -> Callable[..., Any]:
    """IPython custom-exception handler: a ChatError or a ReplyInterrupted is one message,
    no traceback (`CUSTOM_EXCEPTIONS` are the types it is installed for)."""
    def handler(shell: Any, etype: type, value: BaseException, tb: Any,
                tb_offset: int | None = None) -> Any:
        if magics.debug or getattr(value, "debug", False):
            shell.showtraceback((etype, value, tb), tb_offset=tb_offset)
            return None
        plain = str(getattr(shell, "colors", "")).lower() == "nocolor"  # --colors=nocolor
        stb = [f"{etype.__name__}: {value}" if plain
               else f"\x1b[0;31m{etype.__name__}\x1b[0m: {value}"]
        # _showtraceback is what ipykernel overrides to publish an "error" output.
        shell._showtraceback(etype, value, stb)
        return stb
    return handler
