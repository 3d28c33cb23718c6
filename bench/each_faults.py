"""Figure 12: a run over many inputs against an endpoint that fails some requests, against the
loop a user would write with retries.

    python bench/each_faults.py                # 10,000 rows, concurrency 64, 5% faults
    python bench/each_faults.py --smoke        # 100 rows, concurrency 8: a check it runs
    python bench/each_faults.py --old ../main  # and chatmagic from another source tree

The endpoint (`chatmagic.testing`, in this process; each side runs in a process of its own,
so none shares a GIL with it) answers each row after ``--latency`` seconds and fails
``--faults`` of the requests, in turn: HTTP 429 with ``Retry-After: --retry-after``, HTTP 500,
and a stream cut before its last word (no finish reason, no ``[DONE]``; the server closes that
connection). chatmagic: ``chatmagic.map(..., concurrency=C, fresh=True)`` (what ``--each``
runs: the scheduler, the exchange engine, the row store). The hand loop:
``asyncio.Semaphore(C)`` around a streamed ``AsyncOpenAI.chat.completions.create`` with the
SDK's retries (``max_retries=4``: 429 after its Retry-After, 5xx, dropped connections) and
its own retry of a stream that ended without a finish reason (which the SDK does not retry),
after the SDK's first backoff (0.5 s less up to a quarter). The sides take turns, rotating
who goes first; the figures: the ratio of their median rows per second (chatmagic / loop,
target >= 0.9), and the connections each side opened (the endpoint counts them) against the
concurrency plus the cut streams (each of which costs its connection, whoever the client).
``--old DIR`` adds a side running chatmagic from ``DIR/src`` (a checkout of main: before and
after side by side). ``--json PATH`` writes the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"
TARGET = 0.9
SIZES = {"full": {"rows": 10_000, "concurrency": 64, "reps": 2},
         "smoke": {"rows": 100, "concurrency": 8, "reps": 1}}


# -- the sides, each in a process of its own ------------------------------------------------

def side_chatmagic(url: str, model: str, rows: list[str], concurrency: int) -> int:
    """Rows answered through chatmagic.map (the --each engine)."""
    import chatmagic
    from chatmagic.api.functions import current_session
    from chatmagic.core.profiles import Profile

    current_session().profiles.set(Profile("bench", url, needs_key=False))
    table = chatmagic.map("{item}", rows, models=model, profile="bench",
                          concurrency=concurrency, fresh=True)
    return int(table["error"].isna().sum())


def side_loop(url: str, model: str, rows: list[str], concurrency: int) -> int:
    """Rows answered by the loop a user writes: a semaphore, the SDK's retries, and a retry of
    a stream that ended without a finish reason."""
    import asyncio
    import random

    import openai

    async def main() -> int:
        client = openai.AsyncOpenAI(base_url=url, api_key="bench", max_retries=4)
        limit = asyncio.Semaphore(concurrency)

        async def one(text: str) -> bool:
            async with limit:
                for attempt in range(5):
                    finished = False
                    try:
                        stream = await client.chat.completions.create(
                            model=model, stream=True,
                            messages=[{"role": "user", "content": text}])
                        async for chunk in stream:
                            if chunk.choices and chunk.choices[0].finish_reason:
                                finished = True
                    except openai.APIError:
                        if attempt == 4:
                            return False
                    if finished:
                        return True
                    await asyncio.sleep(0.5 * (1 - 0.25 * random.random()))
                return False

        answered = sum(await asyncio.gather(*(one(t) for t in rows)))
        await client.close()
        return answered

    return asyncio.run(main())


SIDES = {"chatmagic": side_chatmagic, "loop": side_loop, "old": side_chatmagic}


def run_side(name: str, args: argparse.Namespace) -> None:
    """The child: run one side, print its seconds, rows answered and peak memory as JSON."""
    rows = [f"row {args.rep} {i} alpha beta gamma" for i in range(args.rows)]
    # Imports outside the clock: a notebook has them loaded (pandas for --each's table).
    import openai  # noqa: F401
    if name != "loop":
        import chatmagic.api.functions  # noqa: F401
        try:
            import pandas  # noqa: F401
        except ImportError:
            pass
    start = time.perf_counter()
    answered = SIDES[name](args.url, args.model, rows, args.concurrency)
    seconds = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"seconds": seconds, "answered": answered, "peak_kb": usage.ru_maxrss,
                      "cpu_s": usage.ru_utime + usage.ru_stime}))


def spawn(name: str, url: str, model: str, rows: int, concurrency: int, rep: int,
          src: Path) -> dict[str, Any]:
    """One side in a process of its own, with chatmagic imported from ``src``."""
    env = dict(os.environ, PYTHONPATH=str(src), CHATMAGIC_HISTORY_DIR=tempfile.mkdtemp(
        prefix="chatmagic-bench-faults-"))
    done = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--side", name,
                           "--url", url, "--model", model, "--rows", str(rows),
                           "--concurrency", str(concurrency), "--rep", str(rep)],
                          env=env, capture_output=True, text=True, timeout=3600)
    if done.returncode:
        raise SystemExit(f"the {name} side failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# -- the driver -------------------------------------------------------------------------------

def measure(rows: int, concurrency: int, reps: int, latency: float = 0.1, faults: float = 0.05,
            retry_after: float = 0.05, old: Path | None = None) -> dict[str, Any]:
    """Every side ``reps`` times against one endpoint; their medians, ratios and connections."""
    sys.path.insert(0, str(SRC))
    from chatmagic.testing import FakeEndpoint

    model = f"echo/first={latency:g}&faults={faults:g}&wait={retry_after:g}"
    sides = {"chatmagic": SRC, "loop": SRC}
    if old is not None:
        sides["old"] = old / "src"
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in sides}
    with FakeEndpoint() as endpoint:
        for rep in range(reps):
            names = list(sides)
            for name in names[rep % len(names):] + names[:rep % len(names)]:
                connections, cuts = endpoint.connections, endpoint.faults_sent["cut"]
                requests = len(endpoint.chat_requests)
                run = spawn(name, endpoint.base_url, model, rows, concurrency, rep, sides[name])
                run.update(connections=endpoint.connections - connections,
                           cuts=endpoint.faults_sent["cut"] - cuts,
                           requests=len(endpoint.chat_requests) - requests)
                runs[name].append(run)
    result: dict[str, Any] = {"rows": rows, "concurrency": concurrency, "reps": reps,
                              "latency_s": latency, "faults": faults,
                              "retry_after_s": retry_after, "target": TARGET, "sides": runs}
    for name, side in runs.items():
        result[f"{name}_rows_per_s"] = rows / statistics.median(r["seconds"] for r in side)
        result[f"{name}_connections"] = max(r["connections"] for r in side)
        result[f"{name}_connection_budget"] = concurrency + max(r["cuts"] for r in side)
        result[f"{name}_unanswered"] = max(rows - r["answered"] for r in side)
    for name in runs:
        if name != "loop":
            result[f"{name}_ratio"] = result[f"{name}_rows_per_s"] / result["loop_rows_per_s"]
    return result


def report(result: dict[str, Any]) -> list[str]:
    lines = [f"{result['rows']:,} rows, concurrency {result['concurrency']}, "
             f"{result['faults']:.0%} faults (429 Retry-After {result['retry_after_s']:g} s, "
             f"500, cut streams), {result['latency_s'] * 1000:g} ms a row, "
             f"{result['reps']} reps"]
    for name, label in (("chatmagic", "chatmagic.map (--each)"), ("old", "chatmagic, --old"),
                        ("loop", "Semaphore+AsyncOpenAI+retries")):
        if f"{name}_rows_per_s" not in result:
            continue
        ratio = result.get(f"{name}_ratio")
        lines.append(f"  {label:31} {result[f'{name}_rows_per_s']:7.1f} rows/s"
                     + (f"  ratio {ratio:.2f}" if ratio is not None else "")
                     + f"  connections {result[f'{name}_connections']:,} (budget "
                     f"{result[f'{name}_connection_budget']:,}: concurrency + cut streams)"
                     + (f"  {result[f'{name}_unanswered']} rows unanswered"
                        if result[f"{name}_unanswered"] else ""))
    met = result["chatmagic_ratio"] >= TARGET
    lines.append(f"  target: ratio >= {TARGET} ({'met' if met else 'MISSED'}); connections "
                 f"within budget ({'met' if result['chatmagic_connections'] <= result['chatmagic_connection_budget'] else 'MISSED'})")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="100 rows, concurrency 8, 1 rep")
    parser.add_argument("--rows", type=int)
    parser.add_argument("--concurrency", type=int)
    parser.add_argument("--reps", type=int)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--faults", type=float, default=0.05)
    parser.add_argument("--retry-after", type=float, default=0.05)
    parser.add_argument("--old", type=Path, help="also chatmagic from DIR/src (before/after)")
    parser.add_argument("--json", type=Path, help="write the figures here")
    # the child's arguments
    parser.add_argument("--side", choices=sorted(SIDES), help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--rep", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.side:
        run_side(args.side, args)
        return 0
    size = SIZES["smoke" if args.smoke else "full"]
    result = measure(args.rows or size["rows"], args.concurrency or size["concurrency"],
                     args.reps or size["reps"], args.latency, args.faults, args.retry_after,
                     args.old)
    print("\n".join(report(result)))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
