"""The endpoint from the command line: ``python -m chatmagic.testing --port 8765`` (and
``chatmagic serve``)."""

from __future__ import annotations

import argparse
import time

from .endpoint import FakeEndpoint

__all__ = ["main"]


def main(argv: list[str] | None = None) -> None:
    """Run the endpoint in the foreground until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m chatmagic.testing",
                                     description="A local OpenAI-compatible endpoint.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args(argv)
    try:
        endpoint = FakeEndpoint(args.host, args.port).start()
    except OSError as exc:
        parser.exit(1, f"cannot listen on {args.host}:{args.port} ({exc.strerror}): is another "
                       "server there? Choose another with --port.\n")
    print(f"chatmagic local endpoint at {endpoint.base_url} (Ctrl-C to stop)", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        endpoint.stop()


