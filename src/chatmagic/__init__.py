"""chatmagic: talk to OpenAI-compatible language models from Jupyter.

``%load_ext chatmagic`` registers ``%%chat``/``%chat``, ``%models``,
``%chat_history``, ``%chat_usage`` and ``%chat_config``. From plain Python,
`chat`, `compare` and `history` use the same core without IPython.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:
    from .session import Session
    from .stream import Reply

__all__ = ["__version__", "load_ipython_extension", "unload_ipython_extension", "history",
           "chat", "compare"]

_magics: Any = None  # the ChatMagics of the loaded extension, if any
_session: "Session | None" = None  # the Python API's session when no extension is loaded


def load_ipython_extension(ipython: Any) -> None:
    """Register the magics (``%load_ext chatmagic``)."""
    global _magics
    from .magics import (_RUNNER, CUSTOM_EXCEPTIONS, ChatMagics, _runner, await_chat_transform,
                         question_transform, show_error)

    if _magics is not None and _magics.shell is ipython:
        return  # loaded already
    magics = ChatMagics(ipython)
    ipython.register_magics(magics)
    ipython.input_transformers_cleanup.append(question_transform)
    if type(ipython).__name__ == "ZMQInteractiveShell":
        ipython.input_transformers_post.append(await_chat_transform)
        ipython.user_ns[_RUNNER] = _runner(magics)
        ipython.user_ns_hidden[_RUNNER] = ipython.user_ns[_RUNNER]
    if not ipython.custom_exceptions:  # never displace a handler the user installed
        ipython.set_custom_exc(CUSTOM_EXCEPTIONS, show_error(magics))
    from .completion import install as install_completion

    magics.completion_matcher = install_completion(ipython, magics)
    _magics = magics


def unload_ipython_extension(ipython: Any) -> None:
    """Undo `load_ipython_extension` (``%unload_ext chatmagic``)."""
    global _magics
    from .magics import _RUNNER, CUSTOM_EXCEPTIONS, await_chat_transform, question_transform

    if question_transform in ipython.input_transformers_cleanup:
        ipython.input_transformers_cleanup.remove(question_transform)
    if await_chat_transform in ipython.input_transformers_post:
        ipython.input_transformers_post.remove(await_chat_transform)
    ipython.user_ns.pop(_RUNNER, None)
    ipython.user_ns_hidden.pop(_RUNNER, None)
    if ipython.custom_exceptions == CUSTOM_EXCEPTIONS:
        ipython.set_custom_exc((), None)
    matcher = getattr(_magics, "completion_matcher", None)
    if matcher in ipython.Completer.custom_matchers:
        ipython.Completer.custom_matchers.remove(matcher)
    _magics = None


def _current_session() -> "Session":
    global _session
    if _magics is not None:
        return _magics.session  # type: ignore[no-any-return]
    if _session is None:
        from .session import Session

        _session = Session()
    return _session


def history(name: str = "default") -> list[dict[str, Any]]:
    """The conversation ``name`` as an OpenAI messages list (system first)."""
    return _current_session().notebook.get(name, create=False).messages()


def _run_plain(prompt: str, models: list[str] | None, **options: Any) -> tuple[Any, list["Reply"]]:
    from .options import ChatOptions
    from .runner import Run, run_blocking

    session = _current_session()
    opts = ChatOptions(prompt=prompt, **options)
    if models is not None:
        opts.compare = list(models)
    plan = session.plan(opts)
    replies = run_blocking(Run(plan.jobs, session.clients))
    session.record(plan, replies)
    return plan, replies


def chat(prompt: str, **options: Any) -> "Reply":
    """Ask one model (options as ``ChatOptions`` fields: model, profile, system, ...);
    returns the finished `Reply` (``.text()``, ``.usage``, ``.error``)."""
    return _run_plain(prompt, None, **options)[1][0]


def compare(prompt: str, models: list[str], **options: Any) -> dict[str, "Reply"]:
    """Ask several models at once; returns label → `Reply` with its text and figures."""
    plan, replies = _run_plain(prompt, models, **options)
    return dict(zip(plan.labels, replies))
