"""What a unit test and its twin in the kernel tier both run: the chatmagic.toml that prices
the fake endpoint's models, the notebook functions --tools offers, the types --schema asks
for. One text each, so the two tiers test the same thing."""

from __future__ import annotations

from pathlib import Path

import schema_kinds

__all__ = ["PRICES", "write_prices", "echo_cost", "TOOLS_CELL", "SCHEMA_CELL"]

# Per million tokens: large, so the sums read plainly. {url} is the endpoint's base URL.
PRICES = """
default_profile = "fake"

[profiles.fake]
base_url = "{url}"

[profiles.fake.prices]
"echo*" = {{ input = 1000, cached_input = 100, output = 10000 }}
"markdown" = {{ input = 0, output = 0 }}
"long*" = {{ input = 2000, output = 4000, currency = "CNY" }}

[prices]
"priced*" = {{ input = 1, output = 1 }}
"""


def write_prices(folder: Path, url: str, text: str = PRICES) -> None:
    """Write ``text`` (PRICES unless given) as folder/chatmagic.toml, for the endpoint at ``url``."""
    (folder / "chatmagic.toml").write_text(text.format(url=url), encoding="utf-8")


def echo_cost(prompt: int, cached: int, completion: int) -> float:
    """What PRICES make a reply of an ``echo*`` model cost, in USD."""
    return ((prompt - cached) * 1000 + cached * 100 + completion * 10000) / 1e6


#: Two notebook functions to offer as --tools: ``add`` records its calls in ``ran``; ``boom``
#: always raises.
TOOLS_CELL = '''
ran = []
def add(a: int, b: int) -> int:
    """Add two whole numbers.

    Args:
        a: The first number.
        b: The second number.
    """
    ran.append((a, b))
    return a + b

def boom(x: int) -> int:
    """Always fails."""
    raise ValueError(f"no luck with {x}")
'''

#: schema_kinds.py as a notebook cell: Person, Book, Point and city defined in the notebook.
SCHEMA_CELL = Path(schema_kinds.__file__).read_text(encoding="utf-8")
