"""What a fresh interpreter imports: the core neither IPython nor ipywidgets, chatmagic lazily."""

from __future__ import annotations


def test_the_core_imports_neither_ipython_nor_ipywidgets() -> None:
    import subprocess
    import sys

    core = ["core.options", "engine.request", "transport.stream", "engine.runner",
            "engine.session", "store.conversation", "core.profiles", "transport.client",
            "render.html", "render.pieces", "render.mathml", "api.functions", "each.plan", "each.run"]
    code = ("import sys\n" + "".join(f"import chatmagic.{m}\n" for m in core) +
            "print(sorted(m for m in ('IPython', 'ipywidgets', 'ipykernel') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_import_is_lazy_and_keeps_its_functions() -> None:
    import subprocess
    import sys

    code = ("import sys, chatmagic\n"
            "print(sorted(m for m in sys.modules if m.startswith(('chatmagic', 'openai', "
            "'IPython', 'httpx'))))\n"
            "import chatmagic.engine.session  # loads the storage module named conversation\n"
            "print(chatmagic.conversation.__module__, chatmagic.history.__module__)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert out == ["['chatmagic', 'chatmagic._version']", "chatmagic.api.functions chatmagic.api.functions"]


def test_load_ext_leaves_the_cells_machinery_for_the_first_cell() -> None:
    """``%load_ext`` registers magics; the runner, the sinks and the request builder load with
    the first cell (bench figure 5 times ``%load_ext`` against importing openai alone)."""
    import subprocess
    import sys

    code = ("import sys\n"
            "from IPython.core.interactiveshell import InteractiveShell\n"
            "ip = InteractiveShell.instance()\n"
            "ip.run_line_magic('load_ext', 'chatmagic')\n"
            "print(sorted(m for m in sys.modules if m.startswith('chatmagic.')))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    loaded = set(eval(out.stdout.splitlines()[-1]))
    assert "chatmagic.shell.magics" in loaded  # the extension did load
    deferred = {"chatmagic.shell.cmd.chat", "chatmagic.engine.runner", "chatmagic.engine.exchange",
                "chatmagic.engine.request", "chatmagic.shell.sinks.cell", "chatmagic.render.pieces",
                "chatmagic.transport.stream", "chatmagic.core.schema", "chatmagic.tools.functions"}
    assert not loaded & deferred
