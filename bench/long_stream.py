"""Figure 1 alone on the 200,000-chunk stream: ``%%chat`` cell time / the raw SDK loop's.

``python bench/long_stream.py [--tokens N] [--reps N]``. The same kernel, endpoint and
alternation as ``bench/run.py`` (whose helpers it uses); the target is 0.25 (issue 20: reading
SSE from bytes must keep chatmagic far faster than the SDK's own chunk parsing). Prints one
line per side and the ratio of the medians; exits 1 when the ratio misses the target.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import (Kernel, alternate, kernel_env, median, run_chat, sdk_cell,  # noqa: E402
                 sdk_client_cell, start_endpoint)

TARGET = 0.25


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python bench/long_stream.py",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--tokens", type=int, default=200_000)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args(argv)
    server, base_url = start_endpoint()
    model = f"long/tokens={args.tokens}"
    try:
        with tempfile.TemporaryDirectory(prefix="chatmagic-bench-") as home:
            kernel = Kernel(kernel_env(base_url, home), home)
            try:
                kernel.run("%load_ext chatmagic")
                kernel.run(sdk_client_cell(base_url))
                sides = {"sdk": lambda: kernel.run(sdk_cell(model)),
                         "static": lambda: run_chat(kernel, model, False),
                         "widgets": lambda: run_chat(kernel, model, True)}
                for warm in sides.values():
                    warm()
                runs = alternate(args.reps, sides)
            finally:
                kernel.close()
    finally:
        server.terminate()
        server.wait(10)
    sdk = median([c.wall for c in runs["sdk"]])
    worst = 0.0
    print(f"{args.tokens:,}-chunk stream, {args.reps} repetitions (medians)")
    print(f"  raw SDK loop      {sdk:8.2f} s")
    for side in ("static", "widgets"):
        wall = median([c.wall for c in runs[side]])
        worst = max(worst, wall / sdk)
        print(f"  %%chat ({side:7}) {wall:8.2f} s   ratio {wall / sdk:.3f}")
    print(f"target <= {TARGET}: {'holds' if worst <= TARGET else 'MISSED'}")
    return 0 if worst <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
