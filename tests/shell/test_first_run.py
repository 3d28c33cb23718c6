"""The first ten minutes: what a new user runs, from a clone with nothing beside it or a wheel.

The slow tests clone the committed HEAD into an empty folder, build a wheel from it and
install that into a fresh virtual environment (its dependencies from the package index).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path
from typing import Any, Iterator

import pytest

from chatmagic import cli

REPO = Path(__file__).resolve().parents[2]
ROOT = getattr(os, "geteuid", lambda: -1)() == 0
needs_lab = pytest.mark.skipif(bool(cli.missing_for_demo()),
                               reason="the demo extra (jupyterlab, ipykernel) is not installed")


def another_environment() -> dict[str, str]:
    """The environment for a command of another Python environment (a fresh venv, a clone's
    .venv): without a PYTHONPATH that would put this checkout's sources before its own."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}


def chatmagic(*args: str, cwd: Path | None = None, python: str = sys.executable,
              preamble: str = "", timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """`chatmagic ARGS` as a new process (``python -m chatmagic``), its output captured."""
    code = f"{preamble}\nimport sys\nfrom chatmagic.cli import main\nsys.exit(main({list(args)!r}))"
    return subprocess.run([python, "-c", code], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout,
                          env=None if python == sys.executable else another_environment())


def command_line(out: str) -> list[str]:
    import shlex

    (line,) = [line for line in out.splitlines() if line.startswith("command: ")]
    return shlex.split(line.removeprefix("command: "))


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port something already listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def one_message(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


# -- the package and the command, from this checkout ---------------------------------------

def without_outputs(path: Path) -> Any:
    book = json.loads(path.read_text(encoding="utf-8"))
    for cell in book["cells"]:
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
    return book


def test_the_packaged_quickstart_is_the_gallery_one_without_outputs() -> None:
    packaged = REPO / "src" / "chatmagic" / "notebooks" / "quickstart.ipynb"
    assert json.loads(packaged.read_text(encoding="utf-8")) == without_outputs(
        REPO / "notebooks" / "quickstart.ipynb"), "run scripts/run-gallery (the wheel's copy)"


def test_the_quickstart_lists_every_other_gallery_notebook() -> None:
    book = json.loads((REPO / "notebooks" / "quickstart.ipynb").read_text(encoding="utf-8"))
    text = "".join("".join(c["source"]) for c in book["cells"] if c["cell_type"] == "markdown")
    listed = set(re.findall(r"`([\w-]+\.ipynb)`", text))
    gallery = {p.name for p in (REPO / "notebooks").glob("*.ipynb")
               if not p.name.startswith("Untitled")} - {"quickstart.ipynb"}
    assert listed == gallery
    assert "chatmagic docs" in text  # the guides, where a wheel has them


def test_as_root_jupyterlab_gets_allow_root_once() -> None:
    nb = Path("q.ipynb")
    assert "--allow-root" in cli.jupyter_command(nb, "127.0.0.1", False, [], root=True)
    assert "--allow-root" not in cli.jupyter_command(nb, "127.0.0.1", False, [], root=False)
    given = cli.jupyter_command(nb, "127.0.0.1", True, ["--allow-root"], root=True)
    assert given.count("--allow-root") == 1 and "--no-browser" in given


@needs_lab
def test_demo_dry_run_shows_the_command_with_the_users_jupyter_options(clean_env: Path) -> None:
    result = chatmagic("demo", "--dry-run", "--endpoint-port", "0", "--ServerApp.token=abc",
                       "--allow-root", cwd=clean_env)
    assert result.returncode == 0, result.stderr
    command = command_line(result.stdout)
    assert command[1:3] == ["-m", "jupyterlab"] and Path(command[3]).is_file()
    assert command[-2:] == ["--ServerApp.token=abc", "--allow-root"]
    assert command.count("--allow-root") == 1
    result = chatmagic("demo", "--dry-run", "--endpoint-port", "0", cwd=clean_env)
    assert ("--allow-root" in command_line(result.stdout)) == ROOT
    assert "endpoint: the local demo endpoint" in result.stdout
    assert not list(clean_env.iterdir())  # a dry run writes nothing


def test_a_missing_notebook_is_one_message_before_any_endpoint(clean_env: Path,
                                                               busy_port: int) -> None:
    # The port is busy: had the endpoint been started first, the message would be about it.
    line = one_message(chatmagic("demo", "--notebook", "nope.ipynb", "--endpoint-port",
                                 str(busy_port), cwd=clean_env))
    assert line.startswith("chatmagic demo: no notebook at nope.ipynb") and "--notebook" in line


def test_a_missing_jupyterlab_says_what_to_install(clean_env: Path) -> None:
    # None in sys.modules is Python's own way to make an import fail as if not installed.
    line = one_message(chatmagic("demo", "--dry-run", cwd=clean_env,
                                 preamble="import sys; sys.modules['jupyterlab'] = None"))
    assert "jupyterlab" in line and "pip install 'chatmagic[demo]'" in line


@pytest.mark.parametrize("command, option", [
    ("serve", "--port"), pytest.param("demo", "--endpoint-port", marks=needs_lab)])
def test_a_busy_port_is_one_message_naming_it_and_the_option(command: str, option: str,
                                                             clean_env: Path,
                                                             busy_port: int) -> None:
    line = one_message(chatmagic(command, option, str(busy_port), cwd=clean_env))
    assert f"port {busy_port} is already in use" in line and f"pass {option} " in line


@needs_lab
def test_the_demo_options_say_whose_port_and_address_they_are(clean_env: Path) -> None:
    """--lab-port/--lab-ip (--port/--ip, as `jupyter lab` has them) are JupyterLab's,
    --endpoint-port the demo endpoint's; the first page JupyterLab prints is the notebook."""
    for port, ip in (("--lab-port", "--lab-ip"), ("--port", "--ip")):
        result = chatmagic("demo", "--dry-run", port, "9123", ip, "0.0.0.0", "--endpoint-port",
                           "0", "--no-browser", cwd=clean_env)
        assert result.returncode == 0, result.stderr
        command = command_line(result.stdout)
        assert "--ServerApp.port=9123" in command and "--ServerApp.ip=0.0.0.0" in command
        assert "--LabApp.default_url=/lab/tree/quickstart.ipynb" in command
        assert "endpoint: the local demo endpoint on 127.0.0.1:0" in result.stdout
    result = chatmagic("demo", "--dry-run", "--endpoint-port", "0", cwd=clean_env)
    assert not [w for w in command_line(result.stdout) if w.startswith("--ServerApp.port")]
    # A first page or a folder of the user's own is left as given.
    result = chatmagic("demo", "--dry-run", "--endpoint-port", "0", "--ServerApp.root_dir=/tmp",
                       cwd=clean_env)
    assert not [w for w in command_line(result.stdout) if "default_url" in w]
    notebook = clean_env / "my notebook.ipynb"
    notebook.write_text("{}")
    result = chatmagic("demo", "--dry-run", "--endpoint-port", "0", "--notebook", str(notebook),
                       cwd=clean_env)
    assert "--LabApp.default_url=/lab/tree/my%20notebook.ipynb" in command_line(result.stdout)


def test_help_is_plain_text(clean_env: Path) -> None:
    for args in [("--help",), ("demo", "--help"), ("serve", "--help")]:
        result = chatmagic(*args, cwd=clean_env)
        assert result.returncode == 0 and "usage: chatmagic" in result.stdout
        assert "``" not in result.stdout, result.stdout


def test_a_near_miss_option_gets_a_suggestion(clean_env: Path) -> None:
    result = chatmagic("demo", "--notebok", "x.ipynb", cwd=clean_env)
    assert result.returncode == 2 and "did you mean --notebook?" in result.stderr
    result = chatmagic("serve", "--prot", "1", cwd=clean_env)
    assert result.returncode == 2 and "unrecognized arguments: --prot 1" in result.stderr


def test_the_guides_are_listed_and_shown_by_name(clean_env: Path) -> None:
    listed = chatmagic("docs", cwd=clean_env)
    assert listed.returncode == 0, listed.stderr
    assert "money  " in listed.stdout and "Money: what a reply cost" in listed.stdout
    shown = chatmagic("docs", "money", cwd=clean_env)
    assert shown.stdout == (REPO / "docs" / "money.md").read_text(encoding="utf-8")
    line = one_message(chatmagic("docs", "mony", cwd=clean_env))
    assert "no guide named 'mony'. Did you mean money?" in line


# -- a clone with nothing beside it, a wheel, a fresh environment (slow) -------------------

@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The committed HEAD, cloned into an empty folder (so nothing beside it)."""
    if not (REPO / ".git").exists() or shutil.which("git") is None:
        pytest.skip("not a git checkout")
    target = tmp_path_factory.mktemp("empty") / "chatmagic"
    subprocess.run(["git", "clone", "-q", str(REPO), str(target)], check=True, timeout=120)
    return target


@pytest.fixture(scope="module")
def wheel(clone: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out),
                    str(clone)], check=True, timeout=300, capture_output=True)
    (built,) = out.glob("chatmagic-*.whl")
    return built


# A path outside the repository: the shared folder beside the checkout (as a relative path or
# as parents[2] joined with its name), an absolute /work path
# (a conversation named "shared" is no path).
_OUTSIDE = re.compile(r"""\.\./shared|/\s*["']shared["']|["']shared/|/work/""")


@pytest.mark.slow
def test_the_clone_reads_nothing_beside_it(clone: Path) -> None:
    tracked = subprocess.run(["git", "ls-files"], cwd=clone, capture_output=True, text=True,
                             check=True).stdout.split()
    offenders = []
    for name in tracked:
        if name == "tests/shell/test_first_run.py":  # it names what it looks for
            continue
        try:
            text = (clone / name).read_text(encoding="utf-8")
        except (UnicodeDecodeError, IsADirectoryError):
            continue
        offenders += [f"{name}: {line.strip()}" for line in text.splitlines()
                      if _OUTSIDE.search(line) and not line.lstrip().startswith("#")]
    assert not offenders
    # The tests' schema check reads the vendored subset, here, with nothing beside the clone.
    check = ("import openapi\n"
             "assert openapi.SPEC.is_relative_to(openapi.Path.cwd())\n"
             "assert not openapi.errors({'model': 'm', 'messages': [{'role': 'user', "
             "'content': 'hi'}]})\n"
             "assert any('messages' in e for e in openapi.errors({'model': 'm'}))\n")
    subprocess.run([sys.executable, "-c", check], cwd=clone / "tests" / "support", check=True,
                   timeout=60)
    assert (clone / "tests" / "support" / "openai_openapi" / "LICENSE").read_text().startswith("The MIT")


@pytest.mark.slow
def test_the_wheel_carries_the_quickstart_and_the_licence(clone: Path, wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        notebook = archive.read("chatmagic/notebooks/quickstart.ipynb")
        (licence,) = [n for n in names if n.endswith(".dist-info/licenses/LICENSE")]
        assert archive.read(licence).startswith(b"MIT License")
        metadata = archive.read(next(n for n in names if n.endswith(".dist-info/METADATA")))
    assert json.loads(notebook) == without_outputs(clone / "notebooks" / "quickstart.ipynb")
    # No upper bound; Python 3.10 gets the last price table that installs there (0.2 needs 3.11).
    assert b"Requires-Python: >=3.10\n" in metadata
    assert b'Requires-Dist: genai-prices>=0.1.13; python_version < "3.11"\n' in metadata
    # the guides, which `chatmagic docs` and the messages that name one point to
    guides = sorted(n.removeprefix("chatmagic/docs/") for n in names
                    if n.startswith("chatmagic/docs/"))
    assert guides == sorted(p.name for p in (clone / "docs").glob("*.md"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get_json(url: str, token: str, deadline: float) -> Any:
    request = urllib.request.Request(url, headers={"Authorization": f"token {token}"})
    while True:
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return json.load(response)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def serves_the_quickstart(command: list[str], cwd: Path) -> str:
    """Run a demo command until JupyterLab serves quickstart.ipynb, then Ctrl-C it; its output."""
    port, token = _free_port(), "first-run-test"
    process = subprocess.Popen(
        command + ["--no-browser", "--endpoint-port", "0", "--lab-port", str(port),
                   "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}"],
        cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True, env=another_environment())
    try:
        base = f"http://127.0.0.1:{port}"
        model = _get_json(f"{base}/api/contents/quickstart.ipynb?content=0", token,
                          time.monotonic() + 240)
        assert model["name"] == "quickstart.ipynb" and model["type"] == "notebook"
        specs = _get_json(f"{base}/api/kernelspecs", token, time.monotonic() + 10)
        assert "python3" in specs["kernelspecs"]
    finally:
        os.killpg(process.pid, 2)  # Ctrl-C, as a user stops it
        try:
            output = process.communicate(timeout=30)[0]
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            output = process.communicate()[0]
    assert "Running as root is not recommended" not in output
    # The URL JupyterLab prints (the one to open after --no-browser) opens the quickstart.
    assert f"http://127.0.0.1:{port}/lab/tree/quickstart.ipynb?token={token}" in output \
        or f"http://127.0.0.1:{port}/lab/tree/quickstart.ipynb?token=..." in output, output
    return output


@pytest.mark.slow
def test_the_readme_main_command_serves_the_quickstart_from_the_clone(clone: Path,
                                                                     clean_env: Path) -> None:
    """./scripts/demo in the bare clone: creates its .venv, then JupyterLab (as root too)."""
    output = serves_the_quickstart([str(clone / "scripts" / "demo")], clean_env)
    assert "local demo endpoint at" in output


@pytest.mark.slow
def test_the_wheel_in_a_fresh_venv_serves_the_quickstart_from_any_folder(
        wheel: Path, tmp_path: Path, clean_env: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = str(venv / "bin" / "python")
    install = [python, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run(install + [str(wheel)], check=True, timeout=300, capture_output=True,
                   env=another_environment())
    anywhere = tmp_path / "anywhere"
    anywhere.mkdir()
    # Without the demo extra: no JupyterLab here, and the message says what to install.
    line = one_message(chatmagic("demo", cwd=anywhere, python=python))
    assert "pip install 'chatmagic[demo]'" in line

    subprocess.run(install + [f"{wheel}[demo]"], check=True, timeout=300, capture_output=True,
                   env=another_environment())
    dry = chatmagic("demo", "--dry-run", "--endpoint-port", "0", cwd=anywhere, python=python)
    assert dry.returncode == 0, dry.stderr
    packaged = Path(dry.stdout.split("notebook: ", 1)[1].split("\n", 1)[0])
    assert packaged.is_file() and packaged.is_relative_to(venv)
    assert command_line(dry.stdout)[3] == str(anywhere / "quickstart.ipynb")
    assert ("--allow-root" in command_line(dry.stdout)) == ROOT

    guide = chatmagic("docs", "money", cwd=anywhere, python=python)
    assert guide.stdout.startswith("# Money") and str(venv) in chatmagic(
        "docs", cwd=anywhere, python=python).stdout  # the package's own copy

    output = serves_the_quickstart([str(venv / "bin" / "chatmagic"), "demo"], anywhere)
    assert (anywhere / "quickstart.ipynb").read_bytes() == packaged.read_bytes()
    assert "Copied the quickstart to" in output and "local demo endpoint at" in output


@pytest.mark.slow
def test_the_tests_run_the_gallery_not_a_users_notebooks(clone: Path, tmp_path: Path) -> None:
    committed = sorted(f"notebooks/{p.name}" for p in (clone / "notebooks").glob("*.ipynb"))
    for name in ("Untitled.ipynb", "mine.ipynb"):
        shutil.copyfile(clone / "notebooks" / "quickstart.ipynb", clone / "notebooks" / name)
    try:
        listed = subprocess.run(["bash", str(clone / "scripts" / "gallery")], capture_output=True,
                                text=True, check=True).stdout.split()
        assert listed == committed
        copy = tmp_path / "no-git"  # a tarball of the sources: the folder, minus Untitled
        shutil.copytree(clone, copy, ignore=shutil.ignore_patterns(".git", ".venv"))
        listed = subprocess.run(["bash", str(copy / "scripts" / "gallery")], capture_output=True,
                                text=True, check=True, cwd=tmp_path).stdout.split()
        assert listed == ["notebooks", "--ignore-glob=notebooks/Untitled*.ipynb"]
    finally:
        for name in ("Untitled.ipynb", "mine.ipynb"):
            (clone / "notebooks" / name).unlink()
