"""chatmagic: talk to OpenAI-compatible language models from Jupyter.

``%load_ext chatmagic`` registers ``%%chat``/``%chat``, ``%models``,
``%chat_history``, ``%chat_usage`` and ``%chat_config``. From plain Python,
`prompt`/`aprompt` (stateless, streaming), `conversation`, `chat`, `compare`
and `history` use the same core without IPython.

The public names are declared in ``__all__`` and live in private modules,
imported on first use, so that ``import chatmagic`` (and ``%load_ext``) stays fast.
"""

# Every name bound here is public unless it starts with "_" (tests/test_surface.py checks
# __all__ against vars()), hence the aliases and no `from __future__ import annotations`.
from typing import TYPE_CHECKING as _TYPE_CHECKING
from typing import Any as _Any

from ._version import __version__

if _TYPE_CHECKING:
    from .api.functions import (NamedConversation, aprompt, chat, compare, conversation, history,
                       prompt)
    from .api.functions import map
    from .api.response import AsyncResponse, Failure, Response
    from .core.errors import ChatError, OptionError
    from .core.events import Usage
    from .engine.reply import Reply

__all__ = ["__version__", "load_ipython_extension", "unload_ipython_extension",
           "prompt", "aprompt", "conversation", "chat", "compare", "history",
           "Response", "AsyncResponse", "Failure", "NamedConversation", "Reply", "Usage",
           "ChatError", "OptionError", "map"]

# Public name -> the private module that defines it; imported when first asked for.
_LAZY = {"prompt": "api.functions", "aprompt": "api.functions", "conversation": "api.functions", "chat": "api.functions",
         "compare": "api.functions", "history": "api.functions", "map": "api.functions", "NamedConversation": "api.functions",
         "Response": "api.response", "AsyncResponse": "api.response", "Failure": "api.response",
         "Reply": "engine.reply", "Usage": "core.events", "ChatError": "core.errors", "OptionError": "core.errors"}

_magics: _Any = None  # the ChatMagics of the loaded extension, if any


def __getattr__(name: str) -> _Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'chatmagic' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


def load_ipython_extension(ipython: _Any) -> None:
    """Register the magics (``%load_ext chatmagic``)."""
    global _magics
    from .core.errors import ChatError
    from .engine.session import use_session
    from .shell.magics import (_RUNNER, CUSTOM_EXCEPTIONS, ChatMagics, _runner,
                               await_chat_transform, in_kernel, question_transform, show_error)

    if _magics is not None and _magics.shell is ipython:
        return  # loaded already
    try:
        magics = ChatMagics(ipython)
    except ChatError as exc:
        # A configuration that cannot be read (a price of -1, a profile without base_url):
        # one message naming the file and line, as IPython shows a UsageError, not a traceback.
        from IPython.core.error import UsageError

        said = str(exc).rstrip()
        said += "" if said.endswith((".", "?", "!")) else "."
        raise UsageError(f"chatmagic is not loaded: {said} Fix it, then run "
                         "%load_ext chatmagic again.") from None
    ipython.register_magics(magics)
    ipython.input_transformers_cleanup.append(question_transform)
    if in_kernel(ipython):
        ipython.input_transformers_post.append(await_chat_transform)
        ipython.user_ns[_RUNNER] = _runner(magics)
        ipython.user_ns_hidden[_RUNNER] = ipython.user_ns[_RUNNER]
    ipython.events.register("post_run_cell", magics.errors.record)  # for {Err}
    if not ipython.custom_exceptions:  # never displace a handler the user installed
        ipython.set_custom_exc(CUSTOM_EXCEPTIONS, show_error(magics))
    from .shell.completion import install as install_completion

    matcher = install_completion(ipython, magics)
    _magics = magics
    _magics.completion_matcher = matcher  # typed Any: ChatMagics declares no such trait
    use_session(magics.session)  # the Python API talks through the notebook's session


def unload_ipython_extension(ipython: _Any) -> None:
    """Undo `load_ipython_extension` (``%unload_ext chatmagic``)."""
    global _magics
    from .engine.session import use_session
    from .shell.magics import _RUNNER, CUSTOM_EXCEPTIONS, await_chat_transform, question_transform

    if question_transform in ipython.input_transformers_cleanup:
        ipython.input_transformers_cleanup.remove(question_transform)
    if await_chat_transform in ipython.input_transformers_post:
        ipython.input_transformers_post.remove(await_chat_transform)
    ipython.user_ns.pop(_RUNNER, None)
    ipython.user_ns_hidden.pop(_RUNNER, None)
    if ipython.custom_exceptions == CUSTOM_EXCEPTIONS:
        ipython.set_custom_exc((), None)
    record = getattr(getattr(_magics, "errors", None), "record", None)
    if record in ipython.events.callbacks["post_run_cell"]:
        ipython.events.unregister("post_run_cell", record)
    matcher = getattr(_magics, "completion_matcher", None)
    if matcher in ipython.Completer.custom_matchers:
        ipython.Completer.custom_matchers.remove(matcher)
    _magics = None
    use_session(None)
