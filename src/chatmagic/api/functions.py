"""The Python API: ``prompt``/``aprompt`` (stateless), ``conversation``, ``chat``, ``compare``,
``map`` and ``history``.

Every keyword is a typed parameter, so a misspelt one (``temprature=0.3``) is an error
for the caller's type checker; at run time `_keywords` refuses it with a "Did you mean"
before anything happens. Every call builds one validated `ChatOptions` (the checks
``%%chat`` uses: a bad value is an `OptionError` before anything is sent), plans it with
the session the magics use (or a plain one, without IPython), and runs it on the portal
loop. Endpoint failures are data on the result, never exceptions.
"""

from __future__ import annotations

import difflib
import functools
import inspect
import warnings
import weakref
from pathlib import PurePath
from typing import Any, Callable, Literal, Sequence, TypeVar, cast

from ..core.errors import HistoryError, OptionError
from ..core.options import REQUEST_FIELDS, ChatOptions
from ..engine.capabilities import EndpointWarning
from ..engine.session import Session, current_session
from ..tools.functions import ToolCall
from .inflight import InFlight
from .response import AsyncResponse, Response

__all__ = ["prompt", "aprompt", "conversation", "NamedConversation", "chat", "compare",
           "history", "current_session", "map"]

F = TypeVar("F", bound=Callable[..., Any])

# The ChatOptions fields a call's keywords set (the rest of its parameters are its own).
_FIELDS = frozenset(("model", "system", "profile", *REQUEST_FIELDS, "schema", "tools",
                     "max_rounds", "conversation", "new", "no_history"))

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


def _keywords(where: str, **refused: str) -> Callable[[F], F]:
    """Refuse a keyword the function does not take as an `OptionError` saying what was
    meant (Python's own TypeError names no alternative); ``refused``: keyword -> message."""
    def decorate(function: F) -> F:
        parameters = inspect.signature(function).parameters
        first = next(iter(parameters))  # the text (or self) is no keyword
        names = [name for name in parameters if name not in (first, "self")]
        allowed = tuple(names[1:] if first == "self" else names)

        @functools.wraps(function)
        def checked(*args: Any, **kwargs: Any) -> Any:
            for keyword in kwargs:
                if keyword in refused:
                    raise OptionError(refused[keyword])
                if keyword not in parameters:
                    raise OptionError(_unknown(where, keyword, allowed))
            return function(*args, **kwargs)
        return cast(F, checked)  # the same signature: only what it takes is let through
    return decorate


def _given(values: dict[str, Any]) -> dict[str, Any]:
    """The option fields among a call's arguments (``locals()`` at its start) that are set."""
    return {k: v for k, v in values.items() if k in _FIELDS and v is not None}


def _options(where: str, text: Any, keywords: dict[str, Any],
             **fixed: Any) -> tuple[ChatOptions, dict[str, Any]]:
    """The validated options, and the namespace their image names refer to."""
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
    from ..core.errors import SchemaError
    from ..core.schema import resolve_schema

    try:
        return resolve_schema(spec)
    except SchemaError as exc:
        raise SchemaError(str(exc).replace("--schema", f"{where}(schema=...)", 1)) from None


def _allow(where: str, allow: Any) -> Any:
    """``allow=`` (who allows tool calls): True, a function of the call, or None (ask)."""
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


def _wait_for_turn(session: Session, name: str) -> None:
    """Wait for the last exchange of conversation ``name`` begun here, if it is running:
    it is recorded when it ends."""
    previous = _running.get((id(session), name))
    if previous is not None:
        Response(previous).wait()


def _start(session: Session, prepared: tuple[ChatOptions, dict[str, Any]],
           allow: Any = None) -> InFlight:
    options, images = prepared
    if not options.no_history:
        _wait_for_turn(session, options.conversation)  # that turn goes with this prompt
    # Raises (an unknown profile, no key, a bad image) before anything is sent.
    plan = session.plan(options, images)
    for said in session.warnings(plan):  # what the endpoint says of its model, as a warning
        warnings.warn(EndpointWarning(said), stacklevel=4)  # the caller's line
    exchange = InFlight(session, plan, allow)
    if not options.no_history:
        _running[(id(session), options.conversation)] = exchange
    return exchange


@_keywords("prompt")
def prompt(text: str, model: str | None = None, system: str | None = None,
           profile: str | None = None, *, temperature: float | None = None,
           top_p: float | None = None, n: int | None = None,
           stop: str | Sequence[str] | None = None, max_tokens: int | None = None,
           presence_penalty: float | None = None, frequency_penalty: float | None = None,
           logit_bias: dict[int, int] | dict[str, int] | None = None, seed: int | None = None,
           user: str | None = None, json: bool = False, params: dict[str, Any] | None = None,
           images: Any = None, no_stream: bool = False, timeout: float | None = None,
           schema: type | dict[str, Any] | str | None = None,
           tools: Sequence[Callable[..., Any]] | None = None, max_rounds: int = 10,
           allow: Literal[True] | Callable[[ToolCall], bool] | None = None) -> Response:
    """Ask once, statelessly: sends only ``system`` (if any) and ``text``; records no turn.

    Returns at once a `Response`: iterate it for the text as it arrives, or call
    ``.text()``; ``.usage``, ``.cost``, ``.failure`` once it has ended.

    The keywords are the Chat Completions parameters of ``%%chat`` (``temperature``,
    ``max_tokens``, ``stop``, ...; ``params``: any other body field), validated as the cell
    validates them. ``images``: a path, URL, bytes, PIL image or matplotlib figure, or a
    list of them. ``schema``: a pydantic model, dataclass, TypedDict, JSON-schema dict or
    the concise form (``"name, age int"``); ``.parsed`` has the object.

    ``tools=[f, g]``: functions the model may call (``max_rounds=``, default 10); each
    call runs in the thread that reads the response, once ``allow`` says so: ``True``
    for every call, a function of the `ToolCall` returning True to run it, or None (the
    default) to be asked on stdin (no stdin: not run). See docs/tools.md.
    """
    prepared = _options("prompt", text, _given(locals()), no_history=True)
    return Response(_start(current_session(), prepared, _allow("prompt", allow)))


@_keywords("aprompt")
def aprompt(text: str, model: str | None = None, system: str | None = None,
            profile: str | None = None, *, temperature: float | None = None,
            top_p: float | None = None, n: int | None = None,
            stop: str | Sequence[str] | None = None, max_tokens: int | None = None,
            presence_penalty: float | None = None, frequency_penalty: float | None = None,
            logit_bias: dict[int, int] | dict[str, int] | None = None, seed: int | None = None,
            user: str | None = None, json: bool = False, params: dict[str, Any] | None = None,
            images: Any = None, no_stream: bool = False, timeout: float | None = None,
            schema: type | dict[str, Any] | str | None = None,
            tools: Sequence[Callable[..., Any]] | None = None, max_rounds: int = 10,
            allow: Literal[True] | Callable[[ToolCall], bool] | None = None) -> AsyncResponse:
    """The async twin of `prompt` (the same keywords): ``async for piece in r``,
    ``await r.text()``.

    Works on any running event loop (a notebook cell's top-level ``await``,
    ``asyncio.run``); the request itself runs on chatmagic's own loop.
    """
    prepared = _options("aprompt", text, _given(locals()), no_history=True)
    return AsyncResponse(_start(current_session(), prepared, _allow("aprompt", allow)))


class NamedConversation:
    """One of this notebook's named conversations, as ``%%chat -c NAME`` sees it."""

    def __init__(self, name: str = "default") -> None:
        if not isinstance(name, str) or not name.strip():
            raise OptionError(f"conversation() takes a name, not {name!r}")
        self.name = name

    @_keywords("conversation.prompt")
    def prompt(self, text: str, model: str | None = None, system: str | None = None,
               profile: str | None = None, *, temperature: float | None = None,
               top_p: float | None = None, n: int | None = None,
               stop: str | Sequence[str] | None = None, max_tokens: int | None = None,
               presence_penalty: float | None = None, frequency_penalty: float | None = None,
               logit_bias: dict[int, int] | dict[str, int] | None = None,
               seed: int | None = None, user: str | None = None, json: bool = False,
               params: dict[str, Any] | None = None, images: Any = None,
               no_stream: bool = False, timeout: float | None = None,
               schema: type | dict[str, Any] | str | None = None,
               tools: Sequence[Callable[..., Any]] | None = None, max_rounds: int = 10,
               allow: Literal[True] | Callable[[ToolCall], bool] | None = None) -> Response:
        """Ask within the conversation (the keywords of `prompt`): the history goes with
        ``text`` and the turn is recorded when the reply ends. ``system`` sets the
        conversation's system message (as ``-s``). Waits for this conversation's previous
        prompt to end first."""
        prepared = _options("conversation.prompt", text, _given(locals()),
                            conversation=self.name)
        return Response(_start(current_session(), prepared,
                               _allow("conversation.prompt", allow)))

    def messages(self) -> list[dict[str, Any]]:
        """The conversation as an OpenAI messages list (``%chat_history export``), once the
        prompts made before this call have ended and been recorded."""
        session = current_session()
        _wait_for_turn(session, self.name)
        try:
            return session.notebook.get(self.name, create=False).messages()
        except HistoryError:
            return []  # not started yet

    def __repr__(self) -> str:
        return f"<NamedConversation {self.name!r}>"


def conversation(name: str = "default") -> NamedConversation:
    """This notebook's conversation ``name`` (the one ``%%chat -c NAME`` uses)."""
    return NamedConversation(name)


@_keywords("chat")
def chat(prompt: str, model: str | None = None, system: str | None = None,
         profile: str | None = None, *, temperature: float | None = None,
         top_p: float | None = None, n: int | None = None,
         stop: str | Sequence[str] | None = None, max_tokens: int | None = None,
         presence_penalty: float | None = None, frequency_penalty: float | None = None,
         logit_bias: dict[int, int] | dict[str, int] | None = None, seed: int | None = None,
         user: str | None = None, json: bool = False, params: dict[str, Any] | None = None,
         images: Any = None, no_stream: bool = False, timeout: float | None = None,
         schema: type | dict[str, Any] | str | None = None,
         tools: Sequence[Callable[..., Any]] | None = None, max_rounds: int = 10,
         allow: Literal[True] | Callable[[ToolCall], bool] | None = None,
         conversation: str = "default", new: bool = False, no_history: bool = False
         ) -> Response:
    """Ask one model within a conversation (``conversation="default"``; ``new=True`` starts
    it afresh, ``no_history=True`` makes it one-shot) and wait; returns the finished
    `Response` (as `prompt` gives). The other keywords are those of `prompt`."""
    prepared = _options("chat", prompt, _given(locals()))
    return Response(_start(current_session(), prepared, _allow("chat", allow))).wait()


@_keywords("compare", model="compare() takes its models in models=[...], not model=: to pick "
                            "an endpoint, write PROFILE:MODEL in the list or pass profile=")
def compare(prompt: str, models: Sequence[str], *, system: str | None = None,
            profile: str | None = None, temperature: float | None = None,
            top_p: float | None = None, n: int | None = None,
            stop: str | Sequence[str] | None = None, max_tokens: int | None = None,
            presence_penalty: float | None = None, frequency_penalty: float | None = None,
            logit_bias: dict[int, int] | dict[str, int] | None = None, seed: int | None = None,
            user: str | None = None, json: bool = False, params: dict[str, Any] | None = None,
            images: Any = None, no_stream: bool = False, timeout: float | None = None,
            schema: type | dict[str, Any] | str | None = None,
            conversation: str = "default", new: bool = False,
            no_history: bool = False) -> dict[str, Response]:
    """Ask several models at once and wait; returns label -> `Response`, in order (a model
    named twice is labelled ``model#2``). The keywords are those of `chat` but ``model``
    (the models are the list), ``n`` above 1 and the tools'."""
    if isinstance(models, str) or not models:
        raise OptionError(f"compare() takes a list of model names, not {models!r}")
    prepared = _options("compare", prompt, _given(locals()), compare=list(models))
    inflight = _start(current_session(), prepared)
    Response(inflight).wait()
    return {label: Response(inflight, column) for column, label in enumerate(inflight.plan.labels)}


def history(name: str = "default") -> list[dict[str, Any]]:
    """The conversation ``name`` as an OpenAI messages list (system first), once the prompts
    made before this call have ended and been recorded."""
    session = current_session()
    _wait_for_turn(session, name)
    return session.notebook.get(name, create=False).messages()


@_keywords("map")
def map(template: str, items: Any, models: str | Sequence[str] | None = None,
        concurrency: int | None = None, schema: type | dict[str, Any] | str | None = None,
        fresh: bool = False, *, model: str | None = None, system: str | None = None,
        profile: str | None = None, temperature: float | None = None,
        top_p: float | None = None, n: int | None = None,
        stop: str | Sequence[str] | None = None, max_tokens: int | None = None,
        presence_penalty: float | None = None, frequency_penalty: float | None = None,
        logit_bias: dict[int, int] | dict[str, int] | None = None, seed: int | None = None,
        user: str | None = None, json: bool = False, params: dict[str, Any] | None = None,
        no_stream: bool = False, timeout: float | None = None) -> Any:
    """One request per element of ``items`` (list, tuple, dict, Series, DataFrame), each
    ``template`` filled from its row (``{item}``, ``{key}``, ``{index}``, ``{COLUMN}``);
    with several ``models``, a grid. Returns the table ``%%chat --each`` gives (a DataFrame
    when pandas is installed, else a list of dicts). Rows finished by an earlier call are
    not sent again (``fresh=True`` sends them); failures are rows with an ``error``.
    The other keywords are those of `prompt` (``system``, ``profile``, ``temperature``, ...)."""
    from ..each.plan import estimate_run, plan_each
    from ..each.run import EachRun
    from ..engine.scheduler import serial_note
    from ..store.rowstore import store_for

    keywords = _given(locals())
    if isinstance(models, (list, tuple)) and len(models) == 1:
        models = models[0]
    if model is not None and models is not None:
        raise OptionError("map() takes models= or model=, not both")
    fixed: dict[str, Any] = {"no_history": True, "each": "items", "fresh": fresh,
                             "concurrency": concurrency}
    if isinstance(models, (list, tuple)):
        if not models or not all(isinstance(m, str) for m in models):
            raise OptionError(f"map() takes models= as a list of model names, not {models!r}")
        fixed["compare"] = list(models)
    elif models is not None:
        fixed["model"] = models
    options, _ = _options("map", template, keywords, **fixed)
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
    for url in sorted(run.progress.serial):  # no progress line here: a warning says it
        warnings.warn(EndpointWarning(serial_note(url)), stacklevel=2)
    return run.table()
