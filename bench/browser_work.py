"""Figure 10: the browser's own work while a reply streams, against drawing it once.

JupyterLab in Debian's Chromium (driven by Playwright, as the browser tests do)
runs a ``%%chat`` cell that streams a 50 kB code reply at a steady pace, then a
cell that displays the same finished outputs at once. The main thread's busy
time (Chrome DevTools Protocol ``Performance.getMetrics``: TaskDuration) is
read around each; the ratio is (streamed − idle) / once, where *idle* is the same
page running a cell that only sleeps as long as the stream took (a running cell
costs JupyterLab some work of its own: its timer, status messages). Before the
reply was cut into pieces, each refresh made the browser re-render the whole
growing reply.

``python bench/browser_work.py`` (needs /usr/bin/chromium and the test extras).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "tests" / "support")]

from run import Row, ratio_row, table  # noqa: E402


def code_reply(size: int = 50_000) -> str:
    lines, n = [], 0
    while sum(map(len, lines)) < size:
        lines.append(f"    total += values[{n}] * weight  # step {n} of the loop\n")
        n += 1
    return "Here it is:\n\n```python\ndef score(values, weight):\n    total = 0\n" + \
        "".join(lines) + "    return total\n```\n"


ONCE = """from IPython.display import display
from chatmagic.render.html import document
from chatmagic.render.pieces import LiveText
_live = LiveText()
_live.add(reply)
_pieces = []
while (_p := _live.freeze()) is not None:
    _pieces.append(_p)
_pieces.append(_live.live())
for _p in _pieces:
    display({"text/html": document(_p.html(), classes=_p.classes)}, raw=True)
"""


def task_seconds(cdp: Any) -> float:
    metrics = cdp.send("Performance.getMetrics")["metrics"]
    return float(next(m["value"] for m in metrics if m["name"] == "TaskDuration"))


def measure(reps: int, src: str | None = None) -> list[Row]:
    """The figure; ``src``: a chatmagic source tree for the kernels (another version's)."""
    from browser import CHROMIUM, LAUNCH_ARGS, Lab, LabServer, write_notebook
    from playwright.sync_api import sync_playwright

    from chatmagic.testing import FakeEndpoint

    streamed, once, idle = [], [], []
    with tempfile.TemporaryDirectory(prefix="chatmagic-browser-work-") as tmp:
        work = Path(tmp)
        (work / "root").mkdir()
        endpoint = FakeEndpoint().start()
        env = {"OPENAI_BASE_URL": endpoint.base_url, "CHATMAGIC_HISTORY_DIR": str(work / "h")}
        if src:
            env["PYTHONPATH"] = src
        server = LabServer(work / "root", work, env)
        try:
            server.start()
            write_notebook(work / "root" / "work.ipynb", [
                "%load_ext chatmagic", f"reply = {code_reply()!r}",
                "%%chat -m echo/delay=0.002 --no-history\n{reply}", ONCE,
                "import time\ntime.sleep(_took)"])
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                            args=LAUNCH_ARGS)
                page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
                lab = Lab(page, server)
                cdp = page.context.new_cdp_session(page)
                cdp.send("Performance.enable")
                lab.open("work.ipynb")
                lab.run(0)
                lab.run(1)
                for _ in range(reps):
                    for cell, into in ((2, streamed), (3, once), (4, idle)):
                        time.sleep(0.5)
                        before, start = task_seconds(cdp), time.monotonic()
                        lab.run(cell, timeout=120)
                        if cell == 2:  # the idle cell sleeps as long as this one took
                            took = time.monotonic() - start
                            page.evaluate("(t) => jupyterapp.shell.currentWidget.sessionContext"
                                          ".session.kernel.requestExecute({code: `_took = ${t}`})",
                                          took)
                        time.sleep(0.5)  # the last frames drawn
                        into.append(task_seconds(cdp) - before)
                browser.close()
        finally:
            server.stop()
            endpoint.stop()
    busy = statistics.median(streamed) - statistics.median(idle)
    return [Row("10 browser main-thread time, streamed (50 kB code)",
                statistics.median(streamed), 1.0, "s", "reported", None),
            Row("10 browser main-thread time, a cell sleeping as long",
                statistics.median(idle), 1.0, "s", "reported", None),
            ratio_row("10 browser work: (streamed - idle) / drawn once", busy,
                      statistics.median(once), "s", 2.0)]


if __name__ == "__main__":
    args = sys.argv[1:]
    src = args.pop(args.index("--src") + 1) if "--src" in args else None
    if src:
        args.remove("--src")
    rows = measure(int(args[0]) if args else 3, src)
    print(table(rows))
    sys.exit(0 if all(r.holds is not False for r in rows) else 1)
