"""What makes each option value valid: one check per `ChatOptions` field.

A check takes a value and returns it normalised (``stop="x"`` becomes
``["x"]``, logit-bias keys become strings, a numpy integer a Python one) or
raises `Invalid` saying what is wrong. `ChatOptions` runs the checks on every
assignment, so ``%%chat``, the Python API and any code that builds options
share one set of bounds, and nothing out of range is ever sent.
"""

from __future__ import annotations

import math
import numbers
import operator
from typing import Any, Callable

__all__ = ["Invalid", "Check", "CHECKS", "FORMATS", "MAX_STOP"]

FORMATS = ("markdown", "text", "code")

#: OpenAI's schema takes at most four stop sequences.
MAX_STOP = 4

#: 64-bit signed, as OpenAI's seed.
_INT64 = 2**63


class Invalid(ValueError):
    """A refused value; ``problem`` follows the option's name ("must be between ...")."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


Check = Callable[[Any], Any]


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _whole_value(value: Any) -> int:
    """An int from an int-like value (int, numpy integer, 3.0); bools and text are refused."""
    if isinstance(value, (bool, str, bytes)):
        raise Invalid(f"takes a whole number, not {_show(value)}")
    try:
        return operator.index(value)
    except TypeError:
        pass
    if isinstance(value, numbers.Real) and float(value).is_integer():
        return int(float(value))
    raise Invalid(f"takes a whole number, not {_show(value)}")


def _real_value(value: Any) -> float:
    if isinstance(value, (bool, str, bytes)) or not isinstance(value, numbers.Real):
        raise Invalid(f"takes a number, not {_show(value)}")
    result = float(value)
    if math.isnan(result):
        raise Invalid("takes a number, not NaN")
    return result


def between(low: float, high: float) -> Check:
    def check(value: Any) -> float | None:
        if value is None:
            return None
        number = _real_value(value)
        if not low <= number <= high:
            raise Invalid(f"must be between {low:g} and {high:g}, not {number:g}")
        return number
    return check


def positive_seconds(value: Any) -> float | None:
    if value is None:
        return None
    number = _real_value(value)
    if not 0 < number < math.inf:
        raise Invalid(f"must be a number of seconds above 0, not {number:g}")
    return number


def at_least(low: int) -> Check:
    def check(value: Any) -> int | None:
        if value is None:
            return None
        number = _whole_value(value)
        if number < low:
            raise Invalid(f"must be at least {low}, not {number}")
        return number
    return check


def seed(value: Any) -> int | None:
    if value is None:
        return None
    number = _whole_value(value)
    if not -_INT64 <= number < _INT64:
        raise Invalid(f"must fit in 64 bits, not {number}")
    return number


def stop(value: Any) -> list[str] | None:
    if value is None:
        return None
    sequences = [value] if isinstance(value, str) else value
    if not isinstance(sequences, (list, tuple)) or not all(isinstance(s, str) for s in sequences):
        raise Invalid(f"takes a string or a list of up to {MAX_STOP} strings, not {_show(value)}")
    if not sequences or len(sequences) > MAX_STOP:
        raise Invalid(f"takes 1 to {MAX_STOP} stop sequences, not {len(sequences)}")
    if any(not s for s in sequences):
        raise Invalid("takes no empty stop sequence")
    return list(sequences)


def logit_bias(value: Any) -> dict[str, int] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise Invalid(f"takes a mapping of token id -> bias like {{50256: -100}}, "
                      f"not {_show(value)}")
    result: dict[str, int] = {}
    for token, bias in value.items():
        try:
            token_id = int(token) if isinstance(token, str) and token.isdigit() \
                else _whole_value(token)
        except Invalid:
            token_id = -1
        if token_id < 0:
            raise Invalid(f"keys are token ids (whole numbers), not {_show(token)}")
        try:
            number = _whole_value(bias)
        except Invalid:
            number = 101
        if not -100 <= number <= 100:
            raise Invalid(f"values are whole numbers from -100 to 100, not {_show(bias)} "
                          f"(token {token_id})")
        result[str(token_id)] = number
    return result


def text(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise Invalid(f"takes a string, not {_show(value)}")
    return value


def name(value: Any) -> str | None:
    """A model, profile or variable name: text, not empty."""
    if text(value) is not None and not value.strip():
        raise Invalid("cannot be empty")
    return value  # type: ignore[no-any-return]


def required_name(value: Any) -> str:
    if value is None:
        raise Invalid("takes a name, not None")
    return name(value)  # type: ignore[return-value]


def prompt(value: Any) -> str:
    if not isinstance(value, str):
        raise Invalid(f"takes a string, not {_show(value)}")
    return value


def flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise Invalid(f"takes True or False, not {_show(value)}")
    return value


def names(value: Any) -> list[str] | None:
    """A list of model names (compare)."""
    if value is None:
        return None
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise Invalid(f"takes a list of model names, not {_show(value)}")
    for item in value:
        name(item)
    return [str(item).strip() for item in value]


def sources(value: Any) -> list[str]:
    """Image sources: one string or a list of them."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not all(isinstance(s, str) for s in items):
        raise Invalid(f"takes a list of file paths or URLs, not {_show(value)}")
    return list(items)


def body_fields(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict) or not all(isinstance(k, str) and k for k in value):
        raise Invalid(f"takes a dict of body field -> value, not {_show(value)}")
    return dict(value)


def fmt(value: Any) -> str:
    if value not in FORMATS:
        raise Invalid(f"takes one of {', '.join(FORMATS)}, not {_show(value)}")
    return str(value)


#: field of ChatOptions -> its check
CHECKS: dict[str, Check] = {
    "prompt": prompt, "model": name, "profile": name, "system": text,
    "conversation": required_name, "new": flag, "no_history": flag, "compare": names,
    "temperature": between(0, 2), "top_p": between(0, 1), "n": at_least(1), "stop": stop,
    "max_tokens": at_least(1), "presence_penalty": between(-2, 2),
    "frequency_penalty": between(-2, 2), "logit_bias": logit_bias, "seed": seed, "user": text,
    "json": flag, "params": body_fields, "images": sources, "no_stream": flag, "out": name,
    "format": fmt, "no_interpolate": flag, "timeout": positive_seconds, "debug": flag,
    # Over many inputs (--each): the variable, requests in flight at most, ignore kept rows.
    "each": name, "concurrency": at_least(1), "fresh": flag,
}


# -- tools (--tools, --yes, --max-rounds) ------------------------------------------------

def tool_names(value: Any) -> Any:
    """--tools: comma-separated names (a cell), or functions (the Python API); None: none."""
    if value is None or isinstance(value, str):
        return name(value)
    items = list(value) if isinstance(value, (list, tuple)) else [value]
    if not items or not all(callable(item) for item in items):
        raise Invalid(f"takes a list of functions, not {_show(value)}")
    return items


CHECKS.update({"tools": tool_names, "yes": flag, "max_rounds": at_least(1)})
