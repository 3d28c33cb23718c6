"""The ``chatmagic`` command: ``demo`` (JupyterLab on the quickstart), ``serve``, ``--version``."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from ._version import __version__
from .profiles import DEMO_PORT

__all__ = ["main"]

_KEY_VARIABLES = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "CHATMAGIC_PROFILE")


def _demo(args: argparse.Namespace) -> int:
    from .testing import FakeEndpoint

    env = dict(os.environ)
    endpoint = None
    if not any(env.get(v) for v in _KEY_VARIABLES):
        endpoint = FakeEndpoint(port=args.port).start()
        env["CHATMAGIC_PROFILE"] = "demo"
        env["CHATMAGIC_DEMO_URL"] = endpoint.base_url
        print(f"No key configured: using the local demo endpoint at {endpoint.base_url} "
              "(scripted replies, no real model). Set OPENAI_API_KEY to talk to OpenAI.",
              flush=True)
    notebook = Path(args.notebook)
    if not notebook.is_file():
        print(f"chatmagic demo: no notebook at {notebook}: run it from the chatmagic repository, "
              "or pass --notebook PATH", file=sys.stderr)
        return 2
    command = [sys.executable, "-m", "jupyterlab", str(notebook), f"--ServerApp.ip={args.ip}"]
    if args.no_browser:
        command.append("--no-browser")
    try:
        return subprocess.call(command, env=env)
    except KeyboardInterrupt:
        return 0
    finally:
        if endpoint is not None:
            endpoint.stop()


def _serve(args: argparse.Namespace) -> int:
    from .testing import main as serve

    serve(["--host", args.ip, "--port", str(args.port)])
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="chatmagic", description=__doc__)
    parser.add_argument("--version", action="version", version=f"chatmagic {__version__}")
    sub = parser.add_subparsers(dest="command")
    demo = sub.add_parser("demo", help="JupyterLab on the quickstart notebook (local endpoint "
                                       "when no key is configured)")
    demo.add_argument("--notebook", default="notebooks/quickstart.ipynb")
    demo.add_argument("--port", type=int, default=DEMO_PORT, help="the demo endpoint's port")
    demo.add_argument("--ip", default="127.0.0.1")
    demo.add_argument("--no-browser", action="store_true")
    serve = sub.add_parser("serve", help="run the local OpenAI-compatible endpoint")
    serve.add_argument("--port", type=int, default=DEMO_PORT)
    serve.add_argument("--ip", default="127.0.0.1")
    args = parser.parse_args(argv)
    if args.command == "demo":
        return _demo(args)
    if args.command == "serve":
        return _serve(args)
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
