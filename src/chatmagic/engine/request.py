"""Options, profile and messages → the keyword arguments of ``chat.completions.create``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..core.params import CHECKS, Invalid
from ..core.options import SAMPLING_FIELDS, ChatOptions, ParameterError
from ..core.profiles import Profile

if TYPE_CHECKING:
    from ..core.schema import Schema

__all__ = ["build_request", "user_message"]


def user_message(prompt: str, image_urls: list[str]) -> dict[str, Any]:
    """The user turn: plain text, or text and image parts when images are attached."""
    if not image_urls:
        return {"role": "user", "content": prompt}
    parts: list[dict[str, Any]] = [{"type": "text", "text": prompt}]
    # Always the object form: OpenAI rejects a bare string image_url.
    parts += [{"type": "image_url", "image_url": {"url": url}} for url in image_urls]
    return {"role": "user", "content": parts}


def _checked_default(profile: Profile, name: str, value: Any) -> Any:
    """A profile's default for a named parameter, held to the bounds a cell's value is."""
    try:
        return CHECKS[name](value)
    except Invalid as exc:
        raise ParameterError(name, exc.problem,
                             f"profile '{profile.name}': params.{name}") from None


def build_request(options: ChatOptions, profile: Profile, model: str,
                  messages: list[dict[str, Any]], schema: Schema | None = None,
                  ) -> dict[str, Any]:
    """The create() kwargs: profile defaults, overridden by what the cell set; with a
    ``schema``, asking for it the way the endpoint takes it (`chatmagic.transport.structured`)."""
    stream = not options.no_stream
    request: dict[str, Any] = {"model": model, "messages": messages, "stream": stream}
    if stream and profile.include_usage:
        request["stream_options"] = {"include_usage": True}
    extra = dict(profile.params)
    for name in list(extra):
        # Profile defaults for named parameters go in the body proper, the rest in extra_body.
        if name in SAMPLING_FIELDS:
            request[name] = _checked_default(profile, name, extra.pop(name))
    request.update(options.sampling())
    if options.max_tokens is not None:
        # OpenAI's reasoning models refuse max_tokens; DeepSeek ignores max_completion_tokens.
        request[profile.max_tokens_field] = options.max_tokens
    if options.json:
        request["response_format"] = {"type": "json_object"}
    extra.update(options.params)
    if extra:
        request["extra_body"] = extra
    timeout = options.timeout or profile.timeout
    if timeout:
        request["timeout"] = timeout
    if schema is not None:
        from ..transport.structured import mode_for, shape_request

        request = shape_request(request, schema, mode_for(profile))
    return request
