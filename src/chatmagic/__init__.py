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
    from .shell.magics import ChatMagics as _ChatMagics

__all__ = ["__version__", "load_ipython_extension", "unload_ipython_extension",
           "prompt", "aprompt", "conversation", "chat", "compare", "history",
           "Response", "AsyncResponse", "Failure", "NamedConversation", "Reply", "Usage",
           "ChatError", "OptionError", "map"]

# Public name -> the private module that defines it; imported when first asked for.
_LAZY = {"prompt": "api.functions", "aprompt": "api.functions", "conversation": "api.functions", "chat": "api.functions",
         "compare": "api.functions", "history": "api.functions", "map": "api.functions", "NamedConversation": "api.functions",
         "Response": "api.response", "AsyncResponse": "api.response", "Failure": "api.response",
         "Reply": "engine.reply", "Usage": "core.events", "ChatError": "core.errors", "OptionError": "core.errors"}

_magics: "_ChatMagics | None" = None  # the magics of the loaded extension, if any


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
    """Register the magics (``%load_ext chatmagic``; see `chatmagic.shell.extension`)."""
    global _magics
    if _magics is not None and _magics.shell is ipython:
        return  # loaded already
    from .shell.extension import load

    _magics = load(ipython)


def unload_ipython_extension(ipython: _Any) -> None:
    """Undo `load_ipython_extension` (``%unload_ext chatmagic``)."""
    global _magics
    from .shell.extension import unload

    unload(ipython, _magics)
    _magics = None
