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


def outputs(cell: Any, mime: str = "text/markdown") -> list[str]:
    """The texts of a cell's outputs of one MIME type, in order."""
    texts = []
    for out in cell.outputs:
        data = out.get("data", {})
        if mime in data:
            texts.append(data[mime])
        elif mime == "text/plain" and out.get("output_type") == "stream":
            texts.append(out["text"])
    return texts


def errors(cell: Any) -> list[Any]:
    return [o for o in cell.outputs if o.get("output_type") == "error"]
