"""Figure 13: a process's peak memory for one very long streamed reply, chatmagic against the
raw SDK.

    python bench/reply_memory.py              # a 100 MB reply
    python bench/reply_memory.py --smoke      # 5 MB

The endpoint (`chatmagic.testing`, in this process) streams ``--mb`` MB of text in deltas of
10 kB (as `RawReply` bytes, built once). Each side runs in a fresh process of its own and
reports its peak resident memory (``ru_maxrss``) and the reply's length: chatmagic,
``chatmagic.prompt(...).text()`` (the exchange engine, the SSE reader, the reply's fold, the
key scrubber); the SDK, ``AsyncOpenAI().chat.completions.create(stream=True)`` joining the
deltas. Both hold the reply's pieces and then the joined text, so the floor is about twice
the reply; the figure is chatmagic's peak over the SDK's (target <= 1.2). Each side's
baseline (the interpreter and its imports, without the reply) is reported beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"
TARGET = 1.2
DELTA = 10_000


def reply_writes(megabytes: float) -> list[bytes | float]:
    """The SSE bytes of a reply of ``megabytes`` MB of text, then its finish and [DONE]."""
    head = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "big"}
    count = int(megabytes * 1_000_000 / DELTA)
    piece = json.dumps({**head, "choices": [{"index": 0, "delta": {"content": "x" * (DELTA - 1)
                                                                   + " "}}]}).encode()
    frame = b"data: " + piece + b"\n\n"
    finish = json.dumps({**head, "choices": [{"index": 0, "delta": {},
                                              "finish_reason": "stop"}]}).encode()
    return [frame] * count + [b"data: " + finish + b"\n\n", b"data: [DONE]\n\n"]


def side_chatmagic(url: str, baseline: bool) -> int:
    import chatmagic
    from chatmagic.api.functions import current_session
    from chatmagic.core.profiles import Profile

    current_session().profiles.set(Profile("bench", url, needs_key=False))
    if baseline:
        return len(chatmagic.prompt("hi", model="echo", profile="bench").text())
    return len(chatmagic.prompt("go", model="big", profile="bench").text())


def side_sdk(url: str, baseline: bool) -> int:
    import asyncio

    import openai

    async def main() -> int:
        client = openai.AsyncOpenAI(base_url=url, api_key="bench")
        parts = []
        stream = await client.chat.completions.create(
            model="echo" if baseline else "big", stream=True,
            messages=[{"role": "user", "content": "hi" if baseline else "go"}])
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                parts.append(chunk.choices[0].delta.content)
        await client.close()
        return len("".join(parts))

    return asyncio.run(main())


SIDES = {"chatmagic": side_chatmagic, "sdk": side_sdk}


def spawn(name: str, url: str, baseline: bool) -> dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=str(SRC),
               CHATMAGIC_HISTORY_DIR=tempfile.mkdtemp(prefix="chatmagic-bench-memory-"))
    command = [sys.executable, str(Path(__file__).resolve()), "--side", name, "--url", url]
    done = subprocess.run(command + ["--baseline"] * baseline, env=env, capture_output=True,
                          text=True, timeout=1800)
    if done.returncode:
        raise SystemExit(f"the {name} side failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def measure(megabytes: float, baselines: bool = True) -> dict[str, Any]:
    sys.path.insert(0, str(SRC))
    from chatmagic.testing import FakeEndpoint, RawReply

    result: dict[str, Any] = {"mb": megabytes, "target": TARGET}
    with FakeEndpoint(raw={"big": RawReply(reply_writes(megabytes))}) as endpoint:
        for name in SIDES:
            for baseline in (True, False) if baselines else (False,):
                run = spawn(name, endpoint.base_url, baseline)
                result[f"{name}{'_baseline' if baseline else ''}_mb"] = run["peak_kb"] / 1024
                if not baseline:
                    result[f"{name}_chars"] = run["chars"]
    result["ratio"] = result["chatmagic_mb"] / result["sdk_mb"]
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mb", type=float, default=100.0)
    parser.add_argument("--smoke", action="store_true", help="a 5 MB reply")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--side", choices=sorted(SIDES), help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--baseline", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.side:
        chars = SIDES[args.side](args.url, args.baseline)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(json.dumps({"peak_kb": peak, "chars": chars}))
        return 0
    result = measure(5.0 if args.smoke else args.mb, baselines=not args.smoke)
    print(f"a {result['mb']:g} MB streamed reply, peak resident memory of the process:")
    for name, label in (("chatmagic", "chatmagic.prompt().text()"),
                        ("sdk", "AsyncOpenAI, deltas joined")):
        base = result.get(name + "_baseline_mb")
        print(f"  {label:28} {result[name + '_mb']:7.1f} MB ("
              + (f"without the reply {base:.1f} MB; " if base is not None else "")
              + f"{result[name + '_chars']:,} chars)")
    met = result["ratio"] <= TARGET
    print(f"  ratio {result['ratio']:.2f} (target <= {TARGET}: {'met' if met else 'MISSED'})")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
