"""The gallery notebooks show what their text says (issue 21), run in a real kernel."""

from __future__ import annotations

import ast
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from kernel import run_cells

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


def code_cell(name: str, needle: str) -> str:
    book = nbformat.read(NOTEBOOKS / name, as_version=4)
    (cell,) = [c for c in book.cells if c.cell_type == "code" and needle in c.source]
    return str(cell.source)


@pytest.mark.kernel
def test_the_images_notebook_shows_its_chart_not_a_repr(clean_env: Path) -> None:
    nb = run_cells([code_cell("images.ipynb", "plt.subplots")], allow_errors=False)
    (shown,) = [o for o in nb.cells[0].outputs if o.get("output_type") == "execute_result"]
    assert "image/png" in shown["data"], shown["data"].get("text/plain")
    # plt.close keeps the cell's end from showing it a second time
    assert len([o for o in nb.cells[0].outputs if "image/png" in o.get("data", {})]) == 1


@pytest.mark.kernel
def test_the_usage_notebook_says_what_its_table_shows(clean_env: Path) -> None:
    book = nbformat.read(NOTEBOOKS / "usage.ipynb", as_version=4)
    NotebookClient(book, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(clean_env)}}).execute()
    (rows_cell,) = [c for c in book.cells if c.cell_type == "code"
                    and c.source.startswith("total = sum")]
    rows = ast.literal_eval(rows_cell.outputs[-1]["data"]["text/plain"])
    (estimated,) = [r for r in rows if r["estimated"]]
    assert estimated["model"] == "no-usage" and estimated["prompt_tokens"] > 0
    text = " ".join(c.source for c in book.cells if c.cell_type == "markdown")
    assert "counted as 0" not in text and "the prompt tokens from the messages it sent" in text


def test_the_gallery_is_committed_with_its_replies() -> None:
    """GitHub shows a notebook's saved outputs: every chat cell of the gallery has some
    (scripts/run-gallery executes them against the local endpoint)."""
    empty = []
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        book = nbformat.read(path, as_version=4)
        empty += [f"{path.name}: {c.source.splitlines()[0]}" for c in book.cells
                  if c.cell_type == "code" and c.source.lstrip().startswith("%")
                  and "chat" in c.source.split()[0] and not c.outputs]
    assert not empty, "run scripts/run-gallery: " + "; ".join(empty)
