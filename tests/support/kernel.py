"""Run notebook cells in a real kernel (nbclient) with chatmagic loaded."""

from __future__ import annotations

import os
from typing import Any

import nbformat
from nbclient import NotebookClient


def run_cells(cells: list[str], env: dict[str, str] | None = None, *, allow_errors: bool = True,
              timeout: int = 60, cwd: str | None = None) -> Any:
    """Execute the cells in a fresh kernel; return the executed notebook."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in cells]
    saved = dict(os.environ)
    os.environ.update(env or {})
    try:
        client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                                allow_errors=allow_errors,
                                resources={"metadata": {"path": cwd or os.getcwd()}})
        client.execute()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return nb


def outputs(cell: Any, mime: str | None = None) -> list[str]:
    """The texts of a cell's outputs of one MIME type, in order (by default what a notebook
    shows of each: its HTML, else its Markdown)."""
    texts = []
    for out in cell.outputs:
        data = out.get("data", {})
        shown = mime or next((m for m in ("text/html", "text/markdown") if m in data), "")
        if shown in data:
            texts.append(data[shown])
        elif mime == "text/plain" and out.get("output_type") == "stream":
            texts.append(out["text"])
    return texts


def visible(html: str) -> str:
    """The text a reader sees in some HTML: tags dropped, entities read."""
    import html as _html
    import re

    html = re.sub(r"<style>.*?</style>", "", html, flags=re.S)
    return _html.unescape(re.sub(r"<[^>]*>", "", html))


def errors(cell: Any) -> list[Any]:
    return [o for o in cell.outputs if o.get("output_type") == "error"]


class Kernel:
    """A real kernel driven through jupyter_client, keeping every iopub message of a cell."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        from jupyter_client.manager import KernelManager

        self.manager = KernelManager(kernel_name="python3")
        self.manager.start_kernel(env={**os.environ, **(env or {})})
        self.client = self.manager.client()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=60)

    def execute(self, code: str, timeout: float = 60, during: Any = None,
                typed: str | None = None) -> tuple[dict, list]:
        """Run code; return (execute_reply content, iopub messages of that cell).

        ``during(msg)`` sees each iopub message as it arrives (to interrupt, say).
        ``typed`` answers the cell's one input prompt, as a user would; the prompt's
        request is kept as ``self.prompted``.
        """
        import time

        msg_id = self.client.execute(code)
        if typed is not None:
            self.prompted = self.client.get_stdin_msg(timeout=timeout)["content"]
            self.client.input(typed)
        messages: list[dict] = []
        deadline = time.monotonic() + timeout
        while True:
            msg = self.client.get_iopub_msg(timeout=max(0.1, deadline - time.monotonic()))
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            messages.append(msg)
            if during is not None:
                during(msg)
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                break
        reply = self.client.get_shell_msg(timeout=timeout)
        while reply["parent_header"].get("msg_id") != msg_id:
            reply = self.client.get_shell_msg(timeout=timeout)
        return reply["content"], messages

    def close(self) -> None:
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=True)

    def __enter__(self) -> "Kernel":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
