"""Token counts estimated where an endpoint reports none (llama.cpp's server in streams)."""

from __future__ import annotations

from typing import Any

__all__ = ["estimate_tokens", "prompt_tokens", "IMAGE_TOKENS"]


def estimate_tokens(text: str) -> int:
    """A rough token count (about 4 characters a token) for endpoints that report none."""
    return max(1, round(len(text) / 4)) if text else 0


#: What an image counts for in a prompt estimate: OpenAI's price of a low-detail image (its
#: base64 bytes are no tokens of text).
IMAGE_TOKENS = 85


def prompt_tokens(messages: list[dict[str, Any]]) -> int:
    """An estimate of a prompt's tokens for endpoints that report none: its text, a few per
    message, and a fixed count per image."""
    total = 0
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        parts = content if isinstance(content, list) else [{"type": "text", "text": content}]
        for part in parts:
            if not isinstance(part, dict):
                continue
            if part.get("type") == "image_url":
                total += IMAGE_TOKENS
            elif isinstance(part.get("text"), str):
                total += estimate_tokens(part["text"])
        total += 4  # the role and the message's framing
    return total
