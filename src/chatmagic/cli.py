"""The ``chatmagic`` command: ``demo`` (JupyterLab on the quickstart), ``serve`` and ``docs``."""

from __future__ import annotations

import argparse
import difflib
import errno
import importlib.util
import os
import shlex
import shutil
import subprocess
import sys
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ._version import __version__
from .core.profiles import DEMO_PORT

if TYPE_CHECKING:
    from .testing import FakeEndpoint

__all__ = ["main", "jupyter_command"]

_KEY_VARIABLES = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "CHATMAGIC_PROFILE")
_QUICKSTART = "quickstart.ipynb"
# The packaged copy (a wheel's), kept identical to notebooks/quickstart.ipynb by a test.
_PACKAGED = Path(__file__).resolve().parent / "notebooks" / _QUICKSTART
# notebooks/quickstart.ipynb of the source checkout this module runs from (an editable install).
_CHECKOUT = Path(__file__).resolve().parents[2]

_DESCRIPTION = """\
chatmagic demo   JupyterLab on the quickstart notebook, wired to a local demo endpoint
                 when no key is configured (OPENAI_API_KEY, OPENAI_BASE_URL and
                 CHATMAGIC_PROFILE unset).
chatmagic serve  the local OpenAI-compatible endpoint (scripted models, no real model).
chatmagic docs   the guides (usage, configuration, money, tools, ...): a list, or one of them.

`chatmagic COMMAND --help` shows a command's options."""

_DEMO_EPILOG = """\
--lab-port and --lab-ip (or --port and --ip, as `jupyter lab` spells them) are JupyterLab's;
--endpoint-port is the demo endpoint's (started only when no key is configured).
Options chatmagic does not know go to JupyterLab as they are, e.g.
  chatmagic demo --lab-port 9999 --ServerApp.token=secret
Run as root, it adds --allow-root (JupyterLab refuses root without it)."""

#: JupyterLab options that say where it serves from or what its first page is: given one, the
#: user chose, and the demo does not point the first page at the notebook.
_PAGE_OPTIONS = ("--LabApp.default_url", "--ServerApp.default_url", "--ServerApp.root_dir",
                 "--ServerApp.notebook_dir", "--notebook-dir", "--root-dir")


def guides_folder() -> Path | None:
    """Where the guides are: the package's copy (a wheel's, put there by the build), else
    the docs/ of the checkout this module runs from (an editable install)."""
    for folder in (Path(__file__).resolve().parent / "docs", _CHECKOUT / "docs"):
        if folder.is_dir() and any(folder.glob("*.md")):
            return folder
    return None


class CliError(Exception):
    """A mistake or missing piece the user can fix: printed as one line, exit status 2."""


@dataclass
class Notebook:
    """The notebook the demo opens, and where it was found."""

    source: Path          # the file found (the checkout's, the package's or --notebook)
    target: Path          # what JupyterLab opens (a copy in the current folder for the package's)

    @property
    def needs_copy(self) -> bool:
        return self.source != self.target


def find_notebook(given: str | None, cwd: Path) -> Notebook:
    """--notebook if given, else the checkout's quickstart, else the packaged one (copied here).

    The packaged copy is not opened in place: JupyterLab autosaves, and an installed
    package is no place for a user's edits.
    """
    if given is not None:
        path = Path(given).expanduser()
        if not path.is_file():
            raise CliError(f"no notebook at {path}: pass --notebook with the path of an .ipynb "
                           "file, or leave it out for the quickstart")
        return Notebook(path, path)
    checkout = _CHECKOUT / "notebooks" / _QUICKSTART
    if (_CHECKOUT / "pyproject.toml").is_file() and checkout.is_file():
        return Notebook(checkout, checkout)
    if not _PACKAGED.is_file():
        raise CliError(f"the quickstart notebook is missing from this installation ({_PACKAGED}): "
                       "reinstall chatmagic, or pass --notebook PATH")
    return Notebook(_PACKAGED, cwd / _QUICKSTART)


def missing_for_demo() -> list[str]:
    """The modules of the ``demo`` extra that cannot be imported here."""
    return [name for name in ("jupyterlab", "ipykernel") if importlib.util.find_spec(name) is None]


def is_root() -> bool:
    return getattr(os, "geteuid", lambda: -1)() == 0


def jupyter_command(notebook: Path, ip: str, no_browser: bool, extra: list[str],
                    root: bool, port: int | None = None) -> list[str]:
    """The JupyterLab command line: ours first, then the user's own options, as given.

    The first page is the notebook (JupyterLab serves from its folder), so the URL that
    JupyterLab prints, which is what one opens after ``--no-browser``, opens it too, rather
    than the Launcher."""
    command = [sys.executable, "-m", "jupyterlab", str(notebook), f"--ServerApp.ip={ip}"]
    if port is not None:
        command.append(f"--ServerApp.port={port}")
    if not any(word.split("=", 1)[0] in _PAGE_OPTIONS for word in extra):
        command.append(f"--LabApp.default_url=/lab/tree/{urllib.parse.quote(notebook.name)}")
    if no_browser:
        command.append("--no-browser")
    if root and "--allow-root" not in extra:
        command.append("--allow-root")
    return command + extra


def _start_endpoint(port: int, what: str, option: str, host: str = "127.0.0.1"
                    ) -> "FakeEndpoint":
    from .testing import FakeEndpoint

    try:
        return FakeEndpoint(host=host, port=port).start()
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise CliError(f"port {port} is already in use (another `chatmagic demo` or `serve`?): "
                           f"pass {option} with a free port (or {option} 0 for any) to "
                           f"{what}") from None
        raise CliError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def _demo(args: argparse.Namespace, extra: list[str]) -> int:
    notebook = find_notebook(args.notebook, Path.cwd())
    missing = missing_for_demo()
    if missing:
        raise CliError(f"chatmagic demo needs JupyterLab, and {' and '.join(missing)} "
                       f"{'is' if len(missing) == 1 else 'are'} not installed for {sys.executable}: "
                       "pip install 'chatmagic[demo]'")
    env = dict(os.environ)
    wants_endpoint = not any(env.get(v) for v in _KEY_VARIABLES)
    command = jupyter_command(notebook.target, args.lab_ip, args.no_browser, extra, is_root(),
                              port=args.lab_port)
    if args.dry_run:
        print(f"notebook: {notebook.source}")
        if notebook.needs_copy:
            print(f"copy to: {notebook.target}" + (" (already there)"
                                                   if notebook.target.exists() else ""))
        if wants_endpoint:
            _start_endpoint(args.endpoint_port, "chatmagic demo",  # a busy port is found now
                            "--endpoint-port").stop()
            print(f"endpoint: the local demo endpoint on 127.0.0.1:{args.endpoint_port}")
        print(f"command: {shlex.join(command)}")
        return 0
    if notebook.needs_copy:
        if notebook.target.exists():
            print(f"Opening {notebook.target} (already there; delete it for a fresh copy).")
        else:
            try:
                shutil.copyfile(notebook.source, notebook.target)
            except OSError as exc:
                raise CliError(f"cannot copy the quickstart to {notebook.target}: "
                               f"{exc.strerror or exc}; run it from a folder you can write to, "
                               "or pass --notebook PATH") from None
            print(f"Copied the quickstart to {notebook.target}.")
    endpoint = None
    if wants_endpoint:
        endpoint = _start_endpoint(args.endpoint_port, "chatmagic demo", "--endpoint-port")
        env["CHATMAGIC_PROFILE"] = "demo"
        env["CHATMAGIC_DEMO_URL"] = endpoint.base_url
        print(f"No key configured: using the local demo endpoint at {endpoint.base_url} "
              "(scripted replies, no real model). Set OPENAI_API_KEY to talk to OpenAI.",
              flush=True)
    try:
        return subprocess.call(command, env=env)
    except KeyboardInterrupt:
        return 0
    finally:
        if endpoint is not None:
            endpoint.stop()


def _docs(args: argparse.Namespace) -> int:
    folder = guides_folder()
    if folder is None:
        raise CliError("the guides are missing from this installation: reinstall chatmagic")
    guides = {path.stem: path for path in sorted(folder.glob("*.md"))}
    if args.guide is None:
        width = max(map(len, guides))
        for name, path in guides.items():
            title = path.read_text(encoding="utf-8").partition("\n")[0].lstrip("# ").strip()
            print(f"{name:<{width}}  {title}")
        print(f"\n`chatmagic docs NAME` prints one; they are Markdown files in {folder}")
        return 0
    name = args.guide.removesuffix(".md").removeprefix("docs/")
    if name not in guides:
        from .core.names import did_you_mean

        raise CliError(f"no guide named {args.guide!r}.{did_you_mean(name, guides)} The guides: "
                       f"{', '.join(guides)}")
    sys.stdout.write(guides[name].read_text(encoding="utf-8"))
    return 0


def _serve(args: argparse.Namespace) -> int:
    import time

    endpoint = _start_endpoint(args.port, "chatmagic serve", "--port", host=args.ip)
    try:
        print(f"chatmagic local endpoint at {endpoint.base_url} (Ctrl-C to stop)", flush=True)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        return 0
    finally:
        endpoint.stop()


def _parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    parser = argparse.ArgumentParser(prog="chatmagic", description=_DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"chatmagic {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = sub.add_parser("demo", help="JupyterLab on the quickstart notebook",
                          description="JupyterLab on the quickstart notebook, with the local "
                                      "demo endpoint when no key is configured.",
                          epilog=_DEMO_EPILOG,
                          formatter_class=argparse.RawDescriptionHelpFormatter)
    demo.add_argument("--notebook", metavar="PATH",
                      help="open this notebook instead of the quickstart")
    demo.add_argument("--lab-port", "--port", type=int, metavar="PORT",
                      help="JupyterLab's port (default: its own, 8888 or the next free one)")
    demo.add_argument("--lab-ip", "--ip", default="127.0.0.1", metavar="ADDRESS",
                      help="the address JupyterLab listens on (default 127.0.0.1)")
    demo.add_argument("--endpoint-port", type=int, default=DEMO_PORT, metavar="PORT",
                      help=f"the local demo endpoint's port (default {DEMO_PORT}; 0 picks a free "
                           "one)")
    demo.add_argument("--no-browser", action="store_true", help="do not open a browser")
    demo.add_argument("--dry-run", action="store_true",
                      help="check everything, print what would run, start nothing")
    serve = sub.add_parser("serve", help="the local OpenAI-compatible endpoint",
                           description="The local OpenAI-compatible endpoint "
                                       "(chatmagic.testing.FakeEndpoint) until Ctrl-C.")
    serve.add_argument("--port", type=int, default=DEMO_PORT,
                       help=f"the endpoint's port (default {DEMO_PORT}; 0 picks a free one)")
    serve.add_argument("--ip", default="127.0.0.1",
                       help="the address to listen on (default 127.0.0.1)")
    docs = sub.add_parser("docs", help="the guides: a list, or one of them",
                          description="The guides that come with chatmagic (Markdown): without "
                                      "a name, their list; with one, that guide.")
    docs.add_argument("guide", nargs="?", metavar="NAME",
                      help="a guide's name, e.g. money, tools, configuration")
    return parser, {"demo": demo, "serve": serve, "docs": docs}


def _near_miss(extra: list[str], parser: argparse.ArgumentParser) -> str | None:
    """'--notebok: did you mean --notebook?' for an option close to one of ours."""
    ours = [s for action in parser._actions for s in action.option_strings if s.startswith("--")]
    for word in extra:
        name = word.split("=", 1)[0]
        if name.startswith("--") and name not in ours:
            near = difflib.get_close_matches(name, ours, n=1, cutoff=0.88)
            if near:
                return f"unknown option {name}: did you mean {near[0]}?"
    return None


def main(argv: list[str] | None = None) -> int:
    parser, commands = _parser()
    args, extra = parser.parse_known_args(argv)
    command = commands.get(args.command or "")
    if extra:
        hint = _near_miss(extra, command or parser)
        if hint:
            (command or parser).error(hint)
        if args.command != "demo":
            (command or parser).error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        if args.command == "demo":
            return _demo(args, extra)
        if args.command == "serve":
            return _serve(args)
        if args.command == "docs":
            return _docs(args)
    except CliError as exc:
        print(f"chatmagic {args.command}: {exc}", file=sys.stderr)
        return 2
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
