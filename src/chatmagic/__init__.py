"""chatmagic: talk to OpenAI-compatible language models from Jupyter.

``%load_ext chatmagic`` registers ``%%chat``/``%chat``, ``%models``,
``%chat_history``, ``%chat_usage``, ``%chat_config`` and ``%chat_batch`` (see
`chatmagic.shell`). From plain Python, `prompt`/`aprompt` (stateless, streaming),
`conversation`, `chat`, `compare`, `map` and `history` use the same core without IPython.

The public names are declared in ``__all__`` and live in private modules,
imported on first use, so that ``import chatmagic`` (and ``%load_ext``) stays fast.
Every type that appears in their signatures is among them; the exceptions are
`ChatError` and its subclasses (their tree: `chatmagic.core.errors`).
"""

# Every name bound here is public unless it starts with "_" (tests/test_surface.py checks
# __all__ against vars()), hence the aliases and no `from __future__ import annotations`.
from typing import TYPE_CHECKING as _TYPE_CHECKING
from typing import Any as _Any

from ._version import __version__

if _TYPE_CHECKING:
    from .api.functions import (NamedConversation, aprompt, chat, compare, conversation,
                                history, map, prompt)
    from .api.response import AsyncResponse, Failure, Response
    from .core.errors import (ChatError, EndpointError, HistoryError, OptionError,
                              ProfileError, SchemaError)
    from .core.events import Usage
    from .core.failures import FailureKind
    from .core.pricing import Cost
    from .engine.capabilities import EndpointWarning
    from .engine.reply import Reply
    from .shell.magics import ChatMagics as _ChatMagics
    from .tools.functions import ToolCall, ToolResult

__all__ = ["__version__", "load_ipython_extension", "unload_ipython_extension",
           "prompt", "aprompt", "conversation", "chat", "compare", "history", "map",
           "Response", "AsyncResponse", "Failure", "FailureKind", "NamedConversation", "Reply",
           "Usage", "Cost", "ToolCall", "ToolResult", "EndpointWarning",
           "ChatError", "OptionError", "SchemaError", "ProfileError", "EndpointError",
           "HistoryError"]

# Public name -> the private module that defines it; imported when first asked for.
_LAZY = {
    **dict.fromkeys(("prompt", "aprompt", "conversation", "chat", "compare", "history", "map",
                     "NamedConversation"), "api.functions"),
    **dict.fromkeys(("Response", "AsyncResponse", "Failure"), "api.response"),
    **dict.fromkeys(("ChatError", "OptionError", "SchemaError", "ProfileError",
                     "EndpointError", "HistoryError"), "core.errors"),
    "FailureKind": "core.failures", "Usage": "core.events", "Cost": "core.pricing",
    "ToolCall": "tools.functions", "ToolResult": "tools.functions",
    "EndpointWarning": "engine.capabilities", "Reply": "engine.reply",
}

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
