"""Every gallery notebook runs top to bottom in a fresh environment made by
``pip install "chatmagic[demo]"`` alone, as the kernel of ``chatmagic demo`` sees it, and then
takes a ``%%chat`` cell added below its last one.

The environment has none of the test extras: a notebook that imports what ``[demo]`` does
not bring fails here. The notebooks run headless (nbclient, which JupyterLab brings through
nbconvert) in that environment's own kernel, with the local endpoint `chatmagic serve` of
that environment standing in for the one `chatmagic demo` starts (the same variables:
``CHATMAGIC_PROFILE=demo``, ``CHATMAGIC_DEMO_URL``). Installing takes about a minute, most of
it unpacking wheels; pip's cache is used, and nothing is compiled ahead (``--no-compile``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest

from kernel import visible

REPO = Path(__file__).resolve().parents[2]

#: Added below each notebook's last cell: a plain prompt to the notebook's current profile
#: and model, then where it ran (the fresh environment's kernel and chatmagic, not ours).
ADDED_CHAT = "%%chat\nOne more question, from a cell added at the end."
ADDED_CHECK = "import sys, chatmagic\nprint(sys.prefix)\nprint(chatmagic.__file__)"

#: Runs in the fresh environment: each notebook with the two cells added, in that
#: environment's kernel; writes what came of it as JSON.
DRIVER = r'''
import json, sys, traceback
from pathlib import Path

import nbformat
from nbclient import NotebookClient

added_chat, added_check, report, *books = sys.argv[1:]
results = {}
for name in books:
    path = Path(name)
    for attempt in (1, 2):
        book = nbformat.read(path, as_version=4)
        book.cells += [nbformat.v4.new_code_cell(added_chat),
                       nbformat.v4.new_code_cell(added_check)]
        try:
            NotebookClient(book, timeout=180, startup_timeout=180, kernel_name="python3",
                           record_timing=False,
                           resources={"metadata": {"path": str(path.parent)}}).execute()
            error = None
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"[-3000:]
        # A kernel that died before its first reply ran no cell of the notebook (chatmagic
        # loads in a cell): the machine's doing (two Jupyters starting kernels at once on a
        # busy machine), started once more. Anything after that first reply counts.
        if error is None or "before replying to kernel_info" not in error:
            break
    chat, check = book.cells[-2], book.cells[-1]
    results[path.name] = {
        "error": error,
        "chat": [o.get("data", {}).get("text/html", o.get("text", "")) for o in chat.outputs],
        "chat_errors": [o.get("evalue", "") for o in chat.outputs if o.get("output_type") == "error"],
        "check": "".join(o.get("text", "") for o in check.outputs),
    }
Path(report).write_text(json.dumps(results, indent=1))
'''


def _fresh_env(tmp: Path) -> dict[str, str]:
    """The environment of a new user's shell: none of ours (no PYTHONPATH to this checkout,
    no key, no endpoint), history and config in a scratch folder."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "OPENAI_API_KEY",
                        "OPENAI_BASE_URL", "CHATMAGIC_PROFILE", "CHATMAGIC_MODEL",
                        "CHATMAGIC_DEMO_URL", "JPY_SESSION_NAME", "MPLBACKEND")}
    for name in ("history", "config", "data", "jupyter-runtime"):
        (tmp / name).mkdir(exist_ok=True)
    env.update(CHATMAGIC_HISTORY_DIR=str(tmp / "history"), XDG_CONFIG_HOME=str(tmp / "config"),
               XDG_DATA_HOME=str(tmp / "data"), JUPYTER_RUNTIME_DIR=str(tmp / "jupyter-runtime"))
    return env


def _sources(target: Path) -> Path:
    """This checkout as a source tree (what a clone or a download holds; the files as they
    are now), so pip's build leaves nothing in the checkout."""
    shutil.copytree(REPO, target, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache",
        ".mypy_cache", "Untitled*.ipynb"))
    return target


@pytest.fixture(scope="module")
def demo_venv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str]]]:
    """A virtual environment with ``pip install "<sources>[demo]"`` and nothing else."""
    tmp = tmp_path_factory.mktemp("gallery-venv")
    env = _fresh_env(tmp)
    sources = _sources(tmp / "chatmagic")
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120, env=env)
    python = venv / "bin" / "python"
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-compile",
         f"{sources}[demo]"], env=env, capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stderr[-3000:]
    yield venv, env


@pytest.fixture
def demo_endpoint(demo_venv: tuple[Path, dict[str, str]]) -> Iterator[str]:
    """`chatmagic serve` of the fresh environment on a free port: the endpoint `chatmagic
    demo` would start; its base URL."""
    venv, env = demo_venv
    process = subprocess.Popen([str(venv / "bin" / "chatmagic"), "serve", "--port", "0"],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert "local endpoint at http" in line, line
        yield line.split(" at ", 1)[1].split()[0]
    finally:
        process.terminate()
        process.wait(timeout=30)


def _gallery() -> list[str]:
    listed = subprocess.run(["bash", str(REPO / "scripts" / "gallery")], capture_output=True,
                            text=True, check=True).stdout.split()
    books = [name for name in listed if name.endswith(".ipynb")]
    return books or sorted(f"notebooks/{p.name}" for p in (REPO / "notebooks").glob("*.ipynb")
                           if not p.name.startswith("Untitled"))


def _outcome(results: dict[str, Any], venv: Path) -> dict[str, str]:
    """What went wrong in each notebook, in words; nothing for one that ran and took the
    added cell in the fresh environment's kernel."""
    wrong = {}
    for name, result in sorted(results.items()):
        shown = visible("".join(result["chat"]))
        if result["error"]:
            wrong[name] = result["error"]
        elif result["chat_errors"] or "finished ·" not in shown:  # a reply that arrived whole
            wrong[name] = f"the added %%chat cell: {result['chat_errors'] or shown[-500:]}"
        elif [Path(p) for p in result["check"].split()[:1]] != [venv] or not Path(
                result["check"].split()[-1]).is_relative_to(venv):
            wrong[name] = f"ran outside the fresh environment: {result['check']}"
    return wrong


@pytest.mark.slow
def test_every_gallery_notebook_runs_in_the_demo_environment_and_takes_a_new_cell(
        demo_venv: tuple[Path, dict[str, str]], demo_endpoint: str, tmp_path: Path) -> None:
    """In the kernel `chatmagic demo` starts (its endpoint running, CHATMAGIC_PROFILE=demo)
    and in a Jupyter of the user's own (nothing set: each notebook starts its endpoint),
    both at once."""
    venv, env = demo_venv
    books = _gallery()
    assert len(books) >= 9, books
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    setups = {"chatmagic demo": dict(env, CHATMAGIC_PROFILE="demo",
                                     CHATMAGIC_DEMO_URL=demo_endpoint),
              "own jupyter": env}
    runs = {}
    for label, setup in setups.items():
        work = tmp_path / label.replace(" ", "-")  # the notebooks write beside themselves
        work.mkdir()
        for name in books:
            shutil.copyfile(REPO / name, work / Path(name).name)
        runs[label] = (work / "report.json", subprocess.Popen(
            [str(venv / "bin" / "python"), str(driver), ADDED_CHAT, ADDED_CHECK,
             str(work / "report.json"), *sorted(str(p) for p in work.glob("*.ipynb"))],
            env=dict(setup, CHATMAGIC_HISTORY_DIR=str(work / "history")), cwd=work,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
    wrong = {}
    for label, (report, process) in runs.items():
        _, stderr = process.communicate(timeout=1500)
        assert process.returncode == 0, (label, stderr[-3000:])
        results: dict[str, Any] = json.loads(report.read_text())
        assert sorted(results) == sorted(Path(b).name for b in books)
        wrong.update({f"{label}: {name}": why for name, why in _outcome(results, venv).items()})
    assert not wrong, json.dumps(wrong, indent=1)
