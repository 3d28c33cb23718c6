"""What a model id asks the endpoint for (`Script`), and the words its scripted models say.

A model id is ``BASE`` or ``BASE/key=value,key=value`` (``&`` also separates, for
``--compare``); see the package docstring for every base and option.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .schema import reply_for

__all__ = ["Script", "words", "message_text", "count_tokens", "example_arguments", "sentiment",
           "finish_reason", "choice_suffix"]


@dataclass
class Script:
    """A model id read: its base and the options after the slash."""

    base: str
    delay: float = 0.0
    first: float = 0.0
    tokens: int = 2000
    after: int = 3
    eol: str = "lf"
    pause: float = 0.0
    to: str = ""
    via: str = ""
    choices: int = 0  # at most this many choices, whatever n asks (0: as many as asked)
    refuse: str = ""  # json_schema or json_object: a response_format refused (testing_schema)
    reject: str = ""  # "image": an image part; else a body field: refused with an HTTP 500
    shape: str = "valid"  # for the schema model (testing_schema.SHAPES)
    fail: str = ""  # answer HTTP 400 when the last user message holds this word
    busy: int = 0  # the first N requests of each prompt: HTTP 429 with Retry-After: wait
    flaky: int = 0  # the first N requests of each prompt: HTTP 503
    wait: float = 0.1  # Retry-After of busy and of faults' 429 (seconds)
    faults: float = 0.0  # this share of requests fails: a 429, a 500, a cut stream in turn
    cost: float | None = None  # usage.cost
    cached: int = 0  # prompt_tokens_details.cached_tokens
    cost_header: float | None = None  # x-litellm-response-cost
    call: str = ""  # tools: the name to call (default: the first tool offered)
    args: str = ""  # tools: "broken" sends arguments that are not JSON; "key": strings = the key
    naive: int = 0  # for sentiment: 1 reads "not good" as good

    @classmethod
    def parse(cls, model: str) -> "Script":
        base, _, opts = model.partition("/")
        script = cls(base=base)
        if base == "priced":
            script.cost = 0.0042
        for item in filter(None, re.split(r"[,&]", opts)):
            key, _, value = item.partition("=")
            if key in ("delay", "first", "pause", "wait", "cost", "cost_header", "faults"):
                setattr(script, key, float(value))
            elif key in ("eol", "to", "via", "refuse", "reject", "shape", "fail", "call",
                         "args"):
                setattr(script, key, value)
            elif key in ("tokens", "after", "choices", "busy", "flaky", "cached",
                         "naive"):
                setattr(script, key, int(value))
        return script

    def count(self, body: dict[str, Any]) -> int:
        """How many choices to send: ``n``, capped by ``choices`` (servers that ignore n)."""
        n = int(body.get("n") or 1)
        return min(n, self.choices) if self.choices else n


def words(text: str) -> list[str]:
    """The text's tokens: words with their trailing whitespace (joined, the text again)."""
    # Tokens are words with their trailing whitespace, so joining them restores the text.
    return re.findall(r"\S+\s*|\s+", text)


def message_text(message: dict[str, Any]) -> str:
    """A message's text (parts joined, images counted)."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [p.get("text", "") for p in content if p.get("type") == "text"]
        images = sum(1 for p in content if p.get("type") == "image_url")
        suffix = f" [{images} image{'s' if images != 1 else ''}]" if images else ""
        return " ".join(texts) + suffix
    return ""


def count_tokens(messages: list[dict[str, Any]]) -> int:
    """A prompt's tokens as this endpoint counts them: words, and 3 per message."""
    return sum(len(message_text(m).split()) + 3 for m in messages)


def example_arguments(schema: dict[str, Any], start: int = 2,
                      text: str = "Paris") -> dict[str, Any]:
    """Arguments that fit a tool's parameters: integers from ``start`` up, a float, ``text``,
    true, an enum's first value (only the required ones, and every one if none is)."""
    properties = schema.get("properties") or {}
    names = schema.get("required") or list(properties)
    values: dict[str, Any] = {}
    number = start
    for name in names:
        prop = properties.get(name) or {}
        kind = prop.get("type")
        if "enum" in prop:
            values[name] = prop["enum"][0]
        elif kind == "integer":
            values[name], number = number, number + 1
        elif kind == "number":
            values[name] = number + 0.5
            number += 1
        elif kind == "boolean":
            values[name] = True
        elif kind == "array":
            values[name] = []
        elif kind == "object":
            values[name] = {}
        else:
            values[name] = text
    return values


_POSITIVE = {"good", "great", "love", "loved", "excellent", "fine", "happy", "works", "nice",
             "recommend", "perfect", "fast"}
_NEGATIVE = {"bad", "awful", "hate", "terrible", "broken", "slow", "poor", "worst", "refund",
             "disappointed", "useless"}


def sentiment(text: str, naive: int = 0) -> str:
    """The ``sentiment`` model's answer: a word count, negations honoured unless ``naive``."""
    score = 0
    flip = False
    for word in re.findall(r"[a-z']+", text.lower()):
        if word in ("not", "never", "isn't", "don't", "didn't", "wasn't", "no") and not naive:
            flip = True
            continue
        value = (word in _POSITIVE) - (word in _NEGATIVE)
        score += -value if flip else value
        if value:
            flip = False
    return "positive" if score > 0 else "negative" if score < 0 else "neutral"


def finish_reason(body: dict[str, Any], script: Script) -> str:
    """How a reply of this script ends."""
    if script.base == "schema":
        return reply_for(body, script.shape)[1]
    return "length" if script.base == "length" else "stop"


def choice_suffix(index: int, n: int) -> str:
    """What tells choices apart when more than one was asked for."""
    return f" (choice {index})" if n > 1 else ""

