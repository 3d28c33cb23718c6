"""Figure 8: bytes sent to the frontend per byte of reply, for every shape a model writes.

A benchmark that streams only prose with a blank line every 50 words hides the
O(n²) of a long code block, list, table or paragraph (one growing tail re-sent
on every refresh). Each shape here is streamed through ``%%chat`` in a real
kernel (the echo model sends the text back word by word), fast and at a slow
pace, static and with widgets; the bytes are those of the messages' JSON as the
kernel sends them (UTF-8). Figure 9: the time to render a reply through the safe
path alone, per MB, and how it grows from 0.25 MB to 1 MB (linear is 1.0).

``python bench/shapes.py [--smoke]`` runs these alone; ``bench/run.py`` runs them too.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import (BenchError, Kernel, Row, kernel_env, median, ratio_row,  # noqa: E402
                 start_endpoint)

UPDATE_TYPES = {"display_data", "update_display_data", "comm_msg"}

SHAPE_SIZES = {"full": {"scale": 1.0, "slow_scale": 0.2, "reps": 3},
               "smoke": {"scale": 0.1, "slow_scale": 0.03, "reps": 1}}


def shapes(scale: float) -> dict[str, str]:
    """Replies of the shapes users get, about 60 kB each at scale 1."""
    n = max(20, int(1500 * scale))
    code = "\n".join(f"    total += values[{i}] * weight  # step {i} of the loop"
                     for i in range(n))
    return {
        "code": f"Here is the function:\n\n```python\ndef score(values, weight):\n"
                f"    total = 0\n{code}\n    return total\n```\n",
        "list": "".join(f"- item {i}: check the value and log it\n" for i in range(n)),
        "paragraph": " ".join(f"Sentence {i} says a little more than the last one."
                               for i in range(2 * n)) + "\n",
        "table": "| row | name | value |\n|---:|------|------:|\n" + "".join(
            f"| {i} | name-{i} | {i * 7 % 1000} |\n" for i in range(n)),
        "mixed": "".join(
            f"Step {i}: we compute the total and print it.\n\n```python\nx{i} = f({i})\n"
            f"print(x{i})\n```\n\n- note {i}\n- check {i}\n\n" for i in range(n // 6)),
        "chinese": "".join(f"第{i}段：模型的回答应该在笔记本里显示正确，代码、列表和表格都一样。\n\n"
                           for i in range(n // 2)),
    }


def _sent(messages: list[tuple[float, dict[str, Any]]]) -> int:
    return sum(len(json.dumps(m["content"], ensure_ascii=False).encode())
               for _, m in messages if m["msg_type"] in UPDATE_TYPES)


def bench_shapes(kernel: Kernel, mode: str) -> list[Row]:
    size = SHAPE_SIZES[mode]
    rows = []
    # The whole shape is the reply: a {field} longer than max_field_chars would be cut.
    kernel.run("%chat_config set max_field_chars=0")
    for pace, scale, model in (("fast", size["scale"], "echo"),
                               ("slow", size["slow_scale"], "echo/delay=0.005")):
        for shape, text in shapes(scale).items():
            kernel.run(f"_shape = {text!r}")
            reply_bytes = len(text.encode())
            for widgets in ("off", "on"):
                kernel.run(f"%chat_config set widgets={widgets}")
                sent = [_sent(kernel.run(f"%%chat -m {model} --no-history\n{{_shape}}").messages)
                        for _ in range(size["reps"])]
                mode_name = "static" if widgets == "off" else "widgets"
                rows.append(ratio_row(f"8 bytes/reply byte ({shape}, {pace}, {mode_name})",
                                      median([float(s) for s in sent]), reply_bytes, "B", 1.5))
    return rows


def bench_render_time(mode: str) -> list[Row]:
    """Figure 9: the safe path alone (Markdown → sanitized HTML), seconds per MB."""
    from chatmagic.render.pieces import LiveText

    mixed = shapes(1.0)
    unit = "".join(mixed.values())
    big = (unit * (1 + 1_000_000 // len(unit)))[:1_000_000]
    small = big[:250_000]

    def render(text: str) -> float:
        start = time.perf_counter()
        live = LiveText()
        for i in range(0, len(text), 4000):  # as a stream would: piece by piece
            live.add(text[i:i + 4000])
            while (piece := live.freeze()) is not None:
                piece.html()
        live.live().html()
        return time.perf_counter() - start

    reps = 1 if mode == "smoke" else 3
    t_big = median([render(big) for _ in range(reps)])
    t_small = median([render(small) for _ in range(reps)])
    return [Row("9 render 1 MB (safe path)", t_big, 1.0, "s", "reported", None),
            ratio_row("9 render growth (1 MB / 4 x 0.25 MB)", t_big, 4 * t_small, "s", 1.3)]


def main(argv: list[str]) -> int:
    from run import table

    mode = "smoke" if "--smoke" in argv else "full"
    server, base_url = start_endpoint()
    try:
        with tempfile.TemporaryDirectory(prefix="chatmagic-shapes-") as home:
            kernel = Kernel(kernel_env(base_url, home), home)
            try:
                kernel.run("%load_ext chatmagic")
                rows = bench_shapes(kernel, mode)
            finally:
                kernel.close()
        rows += bench_render_time(mode)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        server.terminate()
        server.wait(10)
    print(table(rows))
    missed = [r.figure for r in rows if r.holds is False]
    print(f"\n{len(missed)} missed" + (f": {', '.join(missed)}" if missed else ""))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
