"""The safe render path's time on hostile shapes, at one size and at twice it.

``python bench/hostile_render.py [--scale S]``. Each shape (ten thousand code lines, a
million characters without a break, 50,000 fences, nesting 2,000 deep, ...) is streamed
through ``LiveText`` 2,000 characters at a time, every frozen piece rendered, as a cell
would; once at half its size and once whole. Linear work doubles: the target is a growth of
at most 2.6 (time at full size / time at half size), and at most 6 s a shape at full size;
``first_code_block`` on 100,000 fences within 1 s. Prints one line a shape; exits 1 when one
misses. The tests check the same shapes by their bytes (tests/unit/test_render.py), not by
the clock, which a busy machine moves.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Callable

GROWTH = 2.6
SECONDS = 6.0


def hostile(scale: float) -> dict[str, str]:
    def n(count: int) -> int:
        return max(1, int(count * scale))

    return {"ten thousand code lines": "```python\n" + "value = compute(value) + 1  # again\n"
            * n(10_000),
            "line ends": "a\n" * n(64_000), "fences": "```\n" * n(50_000),
            "no break": "x" * n(1_000_000), "quotes 2,000 deep": "> " * n(2000) + "x",
            "lists 2,000 deep": "- " * n(2000) + "y", "brackets": "[" * n(20_000),
            "emphasis": "*a " * n(30_000), "backticks": "`" * n(50_000)}


def render(text: str) -> float:
    from chatmagic.render.pieces import LiveText

    start = time.perf_counter()
    live = LiveText()
    for i in range(0, len(text), 2000):
        live.add(text[i:i + 2000])
        while (piece := live.freeze()) is not None:
            piece.html()
    live.live().html()
    return time.perf_counter() - start


def timed(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    from chatmagic.render.pieces import first_code_block

    parser = argparse.ArgumentParser(prog="python bench/hostile_render.py",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="size of every shape")
    args = parser.parse_args(argv)
    missed = []
    halves, wholes = hostile(args.scale / 2), hostile(args.scale)
    for name, whole in wholes.items():
        t_half, t_whole = render(halves[name]), render(whole)
        growth = t_whole / t_half if t_half else float("inf")
        holds = growth <= GROWTH and t_whole <= SECONDS
        missed += [] if holds else [name]
        print(f"{name:26} {t_half:7.3f} s -> {t_whole:7.3f} s  growth {growth:5.2f}  "
              f"{'ok' if holds else 'MISSED'}")
    fences = timed(lambda: first_code_block("```\n" * int(100_000 * args.scale)))
    print(f"{'first_code_block, fences':26} {fences:7.3f} s  {'ok' if fences <= 1 else 'MISSED'}")
    missed += [] if fences <= 1 else ["first_code_block"]
    print(f"\n{len(missed)} missed" + (f": {', '.join(missed)}" if missed else ""))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
