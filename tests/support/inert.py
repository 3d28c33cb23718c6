"""What in some HTML could run: a check the tests of every tier share."""

from __future__ import annotations

import re


def live_html(html: str) -> list[str]:
    """What in some HTML (the grid's) could run: script-capable tags, event handlers and
    script links, as a browser's parser finds them."""
    from html.parser import HTMLParser

    found: list[str] = []

    class Parser(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            if tag in ("script", "iframe", "object", "embed", "svg"):
                found.append(tag)
            for name, value in attrs:
                url = re.sub(r"[\x00-\x20]", "", value or "").lower()
                if name.startswith("on") or (name in ("href", "src") and
                                             url.startswith(("javascript:", "data:", "vbscript:"))):
                    found.append(f"{tag} {name}={value}")

    Parser().feed(html)
    return found
