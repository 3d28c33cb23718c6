"""The Python API: ``prompt``/``aprompt`` (stateless), ``conversation``, ``chat``, ``compare``.

Every call builds one validated `ChatOptions` (a bad or unknown keyword is an
`OptionError` before anything is sent), plans it with the session the magics
use (or a plain one, without IPython), and runs it on the portal loop
(`_portal`). Endpoint failures are data on the result, never exceptions.
"""

from __future__ import annotations

import difflib
import warnings
import weakref
from pathlib import PurePath
from typing import Any

from .inflight import InFlight
from .response import AsyncResponse, Response
from ..engine.capabilities import EndpointWarning
from ..core.errors import HistoryError, OptionError
from ..core.options import REQUEST_FIELDS, ChatOptions
from ..engine.session import Session, current_session
from ..engine.reply import Reply

__all__ = ["prompt", "aprompt", "conversation", "NamedConversation", "chat", "compare",
           "history", "current_session", "map"]

# What prompt() takes besides the text: the request, never the cell's presentation.
_PROMPT = ("model", "system", "profile", *REQUEST_FIELDS, "schema", "tools", "max_rounds")
_CHAT = (*_PROMPT, "conversation", "new", "no_history")

# Names people reach for: the magic's short flags and the SDK's own body fields.
_ALIASES = {"t": "temperature", "m": "model", "s": "system", "p": "profile", "c": "conversation",
            "i": "images", "image": "images", "max_completion_tokens": "max_tokens",
            "stream": "no_stream", "response_format": "json", "extra_body": "params",
            "messages": "conversation"}

# Cell presentation: options of %%chat that mean nothing for a value returned to Python.
_CELL_ONLY = {"out": "the response is what the call returns",
              "format": "the text comes back as it is, shown nowhere",
              "no_interpolate": "the text is sent as given, {var} included",
              "debug": "an exception here keeps its traceback",
              "compare": "use chatmagic.compare(text, models)"}

# The last exchange of each (session, conversation): the next prompt waits for its turn.
# Weak values: a running exchange is held by its task (and holds its session, so the id
# stays that session's); a finished one nobody holds has nothing left to wait for.
_running: weakref.WeakValueDictionary[tuple[int, str], InFlight] = weakref.WeakValueDictionary()




def _unknown(where: str, keyword: str, allowed: tuple[str, ...]) -> str:
    if keyword in _CELL_ONLY:
        return f"{where}() takes no {keyword}=, a %%chat cell option: {_CELL_ONLY[keyword]}."
    guess = _ALIASES.get(keyword) if _ALIASES.get(keyword) in allowed else None
    if guess is None:
        close = difflib.get_close_matches(keyword.replace("-", "_").lower(), allowed, n=1,
                                          cutoff=0.7)
        guess = close[0] if close else None
    hint = f" Did you mean {guess}=?" if guess else ""
    return (f"{where}() got an unknown keyword {keyword}=.{hint} "
            f"It takes: {', '.join(allowed)}.")


def _options(where: str, text: Any, keywords: dict[str, Any], allowed: tuple[str, ...],
             **fixed: Any) -> tuple[ChatOptions, dict[str, Any]]:
    """The validated options, and the namespace their image names refer to."""
    for keyword in keywords:
        if keyword not in allowed:
            raise OptionError(_unknown(where, keyword, allowed))
    keywords = dict(keywords)
    images: dict[str, Any] = {}
    if "images" in keywords:
        keywords["images"], images = _image_sources(keywords["images"])
    if keywords.get("schema") is not None:
        keywords["schema"] = _schema(where, keywords["schema"])
    options = ChatOptions(prompt=text, **keywords, **fixed)
    if not options.prompt.strip() and not options.images:
        raise OptionError(f"{where}() got an empty prompt: nothing to ask")
    return options, images


def _schema(where: str, spec: Any) -> Any:
    """``schema=``: a class, a JSON-schema dict, or the concise form (a string is never a
    name here: there is no notebook namespace to look it up in)."""
    from ..core.schema import SchemaError, resolve_schema

    try:
        return resolve_schema(spec)
    except SchemaError as exc:
        raise SchemaError(str(exc).replace("--schema", f"{where}(schema=...)", 1)) from None


def _pop_allow(where: str, params: dict[str, Any]) -> Any:
    """``allow=`` (who allows tool calls): True, a function of the call, or None (ask)."""
    allow = params.pop("allow", None)
    if not (allow is None or allow is True or callable(allow)):
        raise OptionError(f"{where}() takes allow=True, a function of the call returning True "
                          f"to run it, or None (ask on stdin), not {allow!r}")
    return allow


def _image_sources(value: Any) -> tuple[Any, dict[str, Any]]:
    """Paths and URLs as they are; an image object (bytes, PIL image, matplotlib figure)
    under a name of its own, read from the namespace as ``-i VARIABLE`` would be."""
    items = value if isinstance(value, (list, tuple)) else [value]
    sources: list[Any] = []
    namespace: dict[str, Any] = {}
    for number, item in enumerate(items, 1):
        if isinstance(item, (str, PurePath)):
            sources.append(str(item))
        else:
            namespace[f"image_{number}"] = item
            sources.append(f"image_{number}")
    return sources, namespace


def _start(session: Session, prepared: tuple[ChatOptions, dict[str, Any]],
           allow: Any = None) -> InFlight:
    options, images = prepared
    key = (id(session), options.conversation)
    previous = None if options.no_history else _running.get(key)
    if previous is not None:
        Response(previous).wait()  # that turn is recorded first, and goes with this prompt
    # Raises (an unknown profile, no key, a bad image) before anything is sent.
    plan = session.plan(options, images)
    for said in session.warnings(plan):  # what the endpoint says of its model, as a warning
        warnings.warn(EndpointWarning(said), stacklevel=3)
    exchange = InFlight(session, plan, allow)
    if not options.no_history:
        _running[key] = exchange
    return exchange


def prompt(text: str, model: str | None = None, system: str | None = None,
           profile: str | None = None, **params: Any) -> Response:
    """Ask once, statelessly: sends only ``system`` (if any) and ``text``; records no turn.

    Returns at once a `Response`: iterate it for the text as it arrives, or call
    ``.text()``; ``.usage``, ``.cost``, ``.failure`` once it has ended.

    ``tools=[f, g]``: functions the model may call (``max_rounds=``, default 10); each
    call runs in the thread that reads the response, once ``allow`` says so: ``True``
    for every call, a function of the `ToolCall` returning True to run it, or None (the
    default) to be asked on stdin (no stdin: not run). See docs/tools.md.
    """
    allow = _pop_allow("prompt", params)
    prepared = _options("prompt", text, params, _PROMPT, model=model, system=system,
                        profile=profile, no_history=True)
    return Response(_start(current_session(), prepared, allow))


def aprompt(text: str, model: str | None = None, system: str | None = None,
            profile: str | None = None, **params: Any) -> AsyncResponse:
    """The async twin of `prompt`: ``async for piece in r``, ``await r.text()``.

    Works on any running event loop (a notebook cell's top-level ``await``,
    ``asyncio.run``); the request itself runs on chatmagic's own loop.
    """
    allow = _pop_allow("aprompt", params)
    prepared = _options("aprompt", text, params, _PROMPT, model=model, system=system,
                        profile=profile, no_history=True)
    return AsyncResponse(_start(current_session(), prepared, allow))


class NamedConversation:
    """One of this notebook's named conversations, as ``%%chat -c NAME`` sees it."""

    def __init__(self, name: str = "default") -> None:
        if not isinstance(name, str) or not name.strip():
            raise OptionError(f"conversation() takes a name, not {name!r}")
        self.name = name

    def prompt(self, text: str, model: str | None = None, system: str | None = None,
               profile: str | None = None, **params: Any) -> Response:
        """Ask within the conversation: the history goes with ``text`` and the turn is
        recorded when the reply ends. ``system`` sets the conversation's system message
        (as ``-s``). Waits for this conversation's previous prompt to end first."""
        allow = _pop_allow("conversation.prompt", params)
        prepared = _options("conversation.prompt", text, params, _PROMPT, model=model,
                            system=system, profile=profile, conversation=self.name)
        return Response(_start(current_session(), prepared, allow))

    def messages(self) -> list[dict[str, Any]]:
        """The conversation as an OpenAI messages list (``%chat_history export``)."""
        try:
            return current_session().notebook.get(self.name, create=False).messages()
        except HistoryError:
            return []  # not started yet

    def __repr__(self) -> str:
        return f"<NamedConversation {self.name!r}>"


def conversation(name: str = "default") -> NamedConversation:
    """This notebook's conversation ``name`` (the one ``%%chat -c NAME`` uses)."""
    return NamedConversation(name)


def _finish(exchange: InFlight) -> list[Reply]:
    Response(exchange).wait()
    return exchange.run.replies


def chat(prompt: str, **options: Any) -> Reply:
    """Ask one model within a conversation (``conversation="default"``, or
    ``no_history=True``) and wait; returns the finished `Reply`."""
    allow = _pop_allow("chat", options)
    return _finish(_start(current_session(), _options("chat", prompt, options, _CHAT),
                          allow))[0]


def compare(prompt: str, models: list[str], **options: Any) -> dict[str, Reply]:
    """Ask several models at once and wait; returns label -> `Reply`, in order."""
    if "model" in options:
        raise OptionError("compare() takes its models in models=[...], not model=: to pick "
                          "an endpoint, write PROFILE:MODEL in the list or pass profile=")
    if isinstance(models, str) or not models:
        raise OptionError(f"compare() takes a list of model names, not {models!r}")
    exchange = _start(current_session(),
                      _options("compare", prompt, options, _CHAT, compare=list(models)))
    return dict(zip(exchange.plan.labels, _finish(exchange)))


def history(name: str = "default") -> list[dict[str, Any]]:
    """The conversation ``name`` as an OpenAI messages list (system first)."""
    return current_session().notebook.get(name, create=False).messages()


def map(template: str, items: Any, models: str | list[str] | None = None,
        concurrency: int | None = None, schema: Any = None, fresh: bool = False,
        **params: Any) -> Any:
    """One request per element of ``items`` (list, tuple, dict, Series, DataFrame), each
    ``template`` filled from its row (``{item}``, ``{key}``, ``{index}``, ``{COLUMN}``);
    with several ``models``, a grid. Returns the table ``%%chat --each`` gives (a DataFrame
    when pandas is installed, else a list of dicts). Rows finished by an earlier call are
    not sent again (``fresh=True`` sends them); failures are rows with an ``error``.
    Keywords: those of `prompt` (``system``, ``profile``, ``temperature``, ...)."""
    from ..each.run import EachRun, estimate_run, plan_each
    from ..store.rowstore import store_for

    if isinstance(models, (list, tuple)) and len(models) == 1:
        models = models[0]
    if "model" in params and models is not None:
        raise OptionError("map() takes models= or model=, not both")
    fixed: dict[str, Any] = {"no_history": True, "each": "items", "fresh": fresh,
                             "concurrency": concurrency}
    if isinstance(models, (list, tuple)):
        if not models or not all(isinstance(m, str) for m in models):
            raise OptionError(f"map() takes models= as a list of model names, not {models!r}")
        fixed["compare"] = list(models)
    elif models is not None:
        fixed["model"] = models
    if schema is not None:
        params["schema"] = schema
    allowed = tuple(k for k in _PROMPT if k not in ("images", "tools", "max_rounds"))
    options, _ = _options("map", template, params, allowed, **fixed)
    session = current_session()
    session.register_keys()
    plan = plan_each(options, items, session.profiles, {}, environ=session.clients.environ,
                     where="map()")
    store = store_for(session.notebook)
    estimate_run(plan, store, session.max_cost)  # above max_cost: refused, nothing sent
    run = EachRun(plan, session.clients, store, knowledge=session.knowledge)
    try:
        run.run()
    finally:
        run.record_usage(session.usage, "map()")  # in %chat_usage, as a cell's rows are
    return run.table()
