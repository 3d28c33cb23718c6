"""The one typed request, built in one place, and the job that carries it to a reader.

`build_request` turns validated options, a profile, a model and the messages
into a frozen `Request`: what ``chat.completions.create`` is asked, body fields
apart from transport options (``timeout``), with the schema and the tools it
offers as values, not patched in afterwards. A cell, a compare column, an
``--each`` row, a Batch API line and ``prompt()`` are all built here. A schema
is put into the body only when the request is sent (`Request.shaped`), the way
the endpoint is known to take it then.

A `Job` is a request as one run sends it: the label its reader shows, how its
reply is priced, and for ``--each`` the element it answers and its resume key.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Mapping

from ..core.errors import ParameterError
from ..core.errors import OptionError
from ..core.options import SAMPLING_FIELDS, ChatOptions
from ..core.params import CHECKS, Invalid
from ..core.profiles import Profile, Profiles, split_model
from ..transport.structured import shape_request

if TYPE_CHECKING:
    from ..core.pricing import Pricer
    from ..core.schema import Schema

__all__ = ["Request", "Job", "Message", "build_request", "user_message", "targets"]

#: One message of a conversation, as OpenAI's Chat Completions API takes it.
Message = dict[str, Any]


@dataclass(frozen=True)
class Request:
    """One chat completion to ask: where, what, and how."""

    profile: Profile
    model: str
    messages: tuple[Message, ...]
    #: Every other body field: sampling, the max-tokens field, stream_options, extra_body.
    params: Mapping[str, Any] = field(default_factory=dict)
    response_format: Mapping[str, Any] | None = None
    #: The tools offered (their function specs), empty for none.
    tools: tuple[Mapping[str, Any], ...] = ()
    stream: bool = True
    #: Seconds: the SDK's per-read timeout and the whole attempt's deadline (not in the body).
    timeout: float | None = None
    #: --schema: the reply is read as its value; put into the body when sent (`shaped`).
    schema: Schema | None = None

    def body(self) -> dict[str, Any]:
        """The JSON body sent (without a schema put in: see `shaped`)."""
        body: dict[str, Any] = {"model": self.model,
                                "messages": [_sendable(m) for m in self.messages],
                                "stream": self.stream, **self.params}
        if self.response_format is not None:
            body["response_format"] = dict(self.response_format)
        if self.tools:
            body["tools"] = [dict(tool) for tool in self.tools]
        return body

    def kwargs(self) -> dict[str, Any]:
        """What ``chat.completions.create`` takes: the body, and the transport's timeout."""
        kwargs = self.body()
        if self.timeout:
            kwargs["timeout"] = self.timeout
        return kwargs

    def shaped(self, mode: str) -> dict[str, Any]:
        """`kwargs` asking for the schema the ``mode`` way (`transport.structured`)."""
        kwargs = self.kwargs()
        return kwargs if self.schema is None else shape_request(kwargs, self.schema, mode)

    def with_messages(self, *added: Message) -> "Request":
        """The same request with ``added`` after its messages (a tool round's).

        A ``tool_choice`` that forces a call (a named function, or ``"required"``) becomes
        ``"auto"``: the model has called and has the results, and forced again it could only
        call again, round after round, until ``--max-rounds``."""
        return replace(self, messages=(*self.messages, *added), params=_unforced(self.params))


def _unforced(params: Mapping[str, Any]) -> Mapping[str, Any]:
    """``params`` with a forcing ``tool_choice`` (in the body, or in ``extra_body`` where
    ``--param`` puts it) made ``"auto"``."""
    def unforced(fields: Mapping[str, Any]) -> Mapping[str, Any]:
        forced = fields.get("tool_choice") not in (None, "auto", "none")
        return {**fields, "tool_choice": "auto"} if forced else fields

    params = unforced(params)
    extra = params.get("extra_body")
    return {**params, "extra_body": unforced(extra)} if isinstance(extra, Mapping) else params


def _sendable(message: Message) -> Message:
    """A message as sent: an assistant's missing text (``"content": null``, as OpenAI's own
    replies with tool calls carry it and the history keeps it) goes as ``""``. OpenAI takes
    both; llama-cpp-python's server refuses null (HTTP 500), which failed every tool round
    after the first there."""
    if message.get("role") == "assistant" and message.get("content") is None:
        return {**message, "content": ""}
    return message


@dataclass(frozen=True)
class Job:
    """A request as one run sends it: shown as ``label``, its reply priced by ``pricer``;
    for ``--each``, the element's ``key`` and the resume key ``digest`` of its row."""

    request: Request
    label: str
    pricer: Pricer | None = None
    key: Any = None
    digest: str = ""

    @property
    def profile(self) -> Profile:
        return self.request.profile


def user_message(prompt: str, image_urls: list[str]) -> Message:
    """The user turn: plain text, or text and image parts when images are attached."""
    if not image_urls:
        return {"role": "user", "content": prompt}
    parts: list[dict[str, Any]] = [{"type": "text", "text": prompt}]
    # Always the object form: OpenAI rejects a bare string image_url.
    parts += [{"type": "image_url", "image_url": {"url": url}} for url in image_urls]
    return {"role": "user", "content": parts}


def targets(options: ChatOptions, profiles: Profiles) -> list[tuple[str, Profile, str]]:
    """(label, profile, model) for each model a cell or a run asks: ``--compare``'s models
    (a repeated one labelled ``model#2``), else ``-m`` or the profile's default model."""
    if options.compare:
        return [(label, *split_model(model, profiles, options.profile))
                for label, model in zip(_unique_labels(options.compare), options.compare)]
    if options.model:
        profile, model = split_model(options.model, profiles, options.profile)
    else:
        profile, model = profiles.get(options.profile), ""
    model = model or profile.model or ""
    if not model:
        raise OptionError(f"No model for profile '{profile.name}': pass -m MODEL, or set "
                          f"model in [profiles.{profile.name}] (%models lists them)")
    return [(options.model or model, profile, model)]


def _unique_labels(models: list[str]) -> list[str]:
    """Model names as labels; a repeated one becomes ``model#2``, ``model#3``."""
    seen: dict[str, int] = {}
    labels = []
    for model in models:
        seen[model] = seen.get(model, 0) + 1
        labels.append(model if seen[model] == 1 else f"{model}#{seen[model]}")
    return labels


def _checked_default(profile: Profile, name: str, value: Any) -> Any:
    """A profile's default for a named parameter, held to the bounds a cell's value is."""
    try:
        return CHECKS[name](value)
    except Invalid as exc:
        raise ParameterError(name, exc.problem,
                             f"profile '{profile.name}': params.{name}") from None


def build_request(options: ChatOptions, profile: Profile, model: str,
                  messages: list[Message], schema: Schema | None = None,
                  tools: tuple[Mapping[str, Any], ...] = ()) -> Request:
    """The request: profile defaults, overridden by what the cell set."""
    stream = not options.no_stream
    params: dict[str, Any] = {}
    if stream and profile.include_usage:
        params["stream_options"] = {"include_usage": True}
    extra = dict(profile.params)
    for name in list(extra):
        # Profile defaults for named parameters go in the body proper, the rest in extra_body.
        if name in SAMPLING_FIELDS:
            params[name] = _checked_default(profile, name, extra.pop(name))
    params.update(options.sampling())
    if options.max_tokens is not None:
        # OpenAI's reasoning models refuse max_tokens; DeepSeek ignores max_completion_tokens.
        params[profile.max_tokens_field] = options.max_tokens
    extra.update(options.params)
    if extra:
        params["extra_body"] = extra
    return Request(profile, model, tuple(messages), params,
                   response_format={"type": "json_object"} if options.json else None,
                   tools=tools, stream=stream, timeout=options.timeout or profile.timeout,
                   schema=schema)
