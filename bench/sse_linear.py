"""The SSE reader's time on hostile bodies, at one size and at twice and four times it.

``python bench/sse_linear.py [--mb N] [--src DIR]``. Each body (one line with no end, short
events, nothing but line ends) is fed to `chatmagic.transport.sse.SSEDecoder` 64 kB at a
time, as the network hands it over, at N, 2N and 4N MB (default 16). Linear work doubles:
the target is a growth of at most 2.6 per doubling, and at most 3 s for the largest. Prints
one line a body; exits 1 when one misses. ``--src`` reads another chatmagic source tree
(to compare versions). The tests count the reader's work instead of timing it
(tests/unit/test_hostile_bytes.py).
"""

from __future__ import annotations

import argparse
import sys
import time

GROWTH = 2.6
CHUNK = 1 << 16


def bodies(mb: int) -> dict[str, bytes]:
    size = mb << 20
    return {"one line, no end": b"data: " + b"x" * size,
            "short events": b'data: {"x": 1}\n\n' * (size // 16),
            "only line ends": b"\n" * size}


def feed(body: bytes) -> float:
    from chatmagic.transport.sse import SSEDecoder

    decoder = SSEDecoder()
    start = time.perf_counter()
    for i in range(0, len(body), CHUNK):
        decoder.feed(body[i:i + CHUNK])
    decoder.end()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python bench/sse_linear.py",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--mb", type=int, default=16, help="the smallest size, in MB")
    parser.add_argument("--src", help="a chatmagic source tree to import instead")
    args = parser.parse_args(argv)
    if args.src:
        sys.path.insert(0, args.src)
    missed = []
    sizes = (args.mb, 2 * args.mb, 4 * args.mb)
    for name in bodies(1):
        times = [min(feed(body), feed(body)) for body in (bodies(mb)[name] for mb in sizes)]
        growth = (times[-1] / times[0]) ** 0.5 if times[0] else float("inf")
        holds = growth <= GROWTH
        missed += [] if holds else [name]
        shown = " / ".join(f"{t:.3f}" for t in times)
        print(f"{name:18} {'/'.join(map(str, sizes))} MB: {shown} s  growth {growth:4.2f}  "
              f"{sizes[-1] / times[-1]:6.0f} MB/s  {'ok' if holds else 'MISSED'}")
    print(f"\n{len(missed)} missed" + (f": {', '.join(missed)}" if missed else ""))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
