"""What a fresh interpreter imports: the core neither IPython nor ipywidgets, chatmagic lazily."""

from __future__ import annotations

import ast
import subprocess
import sys


def _printed(code: str) -> list[str]:
    """The lines ``code`` prints in a fresh interpreter (which must succeed)."""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.splitlines()


def test_the_core_imports_neither_ipython_nor_ipywidgets() -> None:
    core = ["core.options", "engine.request", "transport.stream", "engine.runner",
            "engine.session", "store.conversation", "core.profiles", "transport.client",
            "render.html", "render.pieces", "render.mathml", "api.functions", "each.plan", "each.run"]
    code = ("import sys\n" + "".join(f"import chatmagic.{m}\n" for m in core) +
            "print(sorted(m for m in ('IPython', 'ipywidgets', 'ipykernel') if m in sys.modules))")
    assert _printed(code) == ["[]"]


def test_import_is_lazy_and_keeps_its_functions() -> None:
    code = ("import sys, chatmagic\n"
            "print(sorted(m for m in sys.modules if m.startswith(('chatmagic', 'openai', "
            "'IPython', 'httpx'))))\n"
            "import chatmagic.engine.session  # loads the storage module named conversation\n"
            "print(chatmagic.conversation.__module__, chatmagic.history.__module__)\n")
    assert _printed(code) == ["['chatmagic', 'chatmagic._version']",
                              "chatmagic.api.functions chatmagic.api.functions"]


def test_load_ext_leaves_the_cells_machinery_for_the_first_cell() -> None:
    """``%load_ext`` registers magics; the runner, the sinks and the request builder load with
    the first cell (bench figure 5 times ``%load_ext`` against importing openai alone)."""
    code = ("import sys\n"
            "from IPython.core.interactiveshell import InteractiveShell\n"
            "ip = InteractiveShell.instance()\n"
            "ip.run_line_magic('load_ext', 'chatmagic')\n"
            "print(sorted(m for m in sys.modules if m.startswith('chatmagic.')))\n")
    loaded = set(ast.literal_eval(_printed(code)[-1]))
    assert "chatmagic.shell.magics" in loaded  # the extension did load
    deferred = {"chatmagic.shell.cmd.chat", "chatmagic.engine.runner", "chatmagic.engine.exchange",
                "chatmagic.engine.request", "chatmagic.shell.sinks.cell", "chatmagic.render.pieces",
                "chatmagic.transport.stream", "chatmagic.core.schema", "chatmagic.tools.functions"}
    assert not loaded & deferred
