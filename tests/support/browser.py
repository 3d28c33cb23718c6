"""Helpers for the browser tests: a JupyterLab server, notebooks, and a driven Lab page.

The techniques (``expose_app_in_browser``, ``?reset``, scoping locators to the
current widget's id, ``application:close-all``) are those proven in the
Playwright prototype against JupyterLab 4.6.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import nbformat

CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}

# What a Lab page shows when a widget output cannot be drawn.
WIDGET_ERROR = "Error displaying widget"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_notebook(path: Path, cells: list[str]) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    nb.metadata["language_info"] = {"name": "python"}
    nb.cells = [nbformat.v4.new_code_cell(src) for src in cells]
    nbformat.write(nb, str(path))
    return path


def _write_settings(settings_dir: Path) -> None:
    """Lab settings for a quiet, fully rendered page: no news toast, no windowing."""
    overrides = {
        "@jupyterlab/apputils-extension/notification.jupyterlab-settings":
            {"fetchNews": "false", "checkForUpdates": False},
        "@jupyterlab/notebook-extension/tracker.jupyterlab-settings":
            {"windowingMode": "none"},
        "@jupyter-widgets/jupyterlab-manager/plugin.jupyterlab-settings": {"saveState": False},
    }
    for rel, value in overrides.items():
        path = settings_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value), encoding="utf-8")


class LabServer:
    """``jupyter lab`` in a subprocess on a free loopback port, no token."""

    def __init__(self, root: Path, work: Path, env: dict[str, str]) -> None:
        self.root = root
        self.work = work
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = work / "lab.log"
        self.extra_env = env
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 90) -> "LabServer":
        settings = self.work / "settings"
        _write_settings(settings)
        env = dict(os.environ)
        for name in ("OPENAI_API_KEY", "CHATMAGIC_MODEL", "CHATMAGIC_PROFILE", "JPY_SESSION_NAME"):
            env.pop(name, None)
        env.update({
            "JUPYTER_RUNTIME_DIR": str(self.work / "runtime"),
            "JUPYTERLAB_WORKSPACES_DIR": str(self.work / "workspaces"),
            "XDG_CONFIG_HOME": str(self.work / "xdg-config"),  # no user chatmagic.toml
            "PYTHONUNBUFFERED": "1",
        })
        env.update(self.extra_env)
        cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root",
               "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={self.port}",
               "--ServerApp.port_retries=0", "--IdentityProvider.token=",
               "--ServerApp.password=", "--ServerApp.disable_check_xsrf=True",
               f"--ServerApp.root_dir={self.root}",
               "--LabApp.expose_app_in_browser=True",
               "--JupyterNotebookApp.expose_app_in_browser=True",
               f"--LabApp.user_settings_dir={settings}",
               f"--LabApp.workspaces_dir={self.work / 'workspaces'}",
               "--ServerApp.shutdown_no_activity_timeout=0"]
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env=env,
                                     cwd=str(self.root))
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jupyter lab exited: {self.log_tail()}")
            try:
                with urllib.request.urlopen(self.base + "/api/status", timeout=2) as r:
                    if r.status == 200:
                        return self
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.3)
        raise RuntimeError(f"jupyter lab did not start in {timeout}s: {self.log_tail()}")

    def log_tail(self, n: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def api(self, path: str, method: str = "GET") -> Any:
        data = b"" if method == "POST" else None
        req = urllib.request.Request(self.base + path, data=data, method=method)
        with urllib.request.urlopen(req, timeout=10) as r:
            body = r.read()
        return json.loads(body) if body else None

    def shutdown_kernels(self) -> None:
        try:
            for k in self.api("/api/kernels"):
                try:
                    self.api(f"/api/kernels/{k['id']}", "DELETE")
                except (urllib.error.URLError, OSError):
                    pass
        except (urllib.error.URLError, OSError):
            pass

    def stop(self) -> None:
        if self.proc is None:
            return
        self.shutdown_kernels()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
        self._log.close()
        self.proc = None


class Lab:
    """A Playwright page driving JupyterLab (or Notebook 7 with ``app="notebooks"``)."""

    def __init__(self, page: Any, server: LabServer) -> None:
        self.page = page
        self.server = server
        self.errors: list[str] = []
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("dialog", lambda d: (self.errors.append(f"dialog: {d.message}"), d.dismiss()))

    # -- navigation ------------------------------------------------------------
    def open(self, name: str, app: str = "lab", wait_kernel: bool = True) -> None:
        url = (f"{self.server.base}/lab/tree/{name}?reset" if app == "lab"
               else f"{self.server.base}/notebooks/{name}")
        self.page.goto(url)
        self.page.wait_for_function(
            "() => window.jupyterapp && jupyterapp.shell.currentWidget"
            " && jupyterapp.shell.currentWidget.content"
            " && jupyterapp.shell.currentWidget.content.widgets"
            " && jupyterapp.shell.currentWidget.content.widgets.length > 0",
            timeout=90_000)
        self.panel().locator(".jp-Notebook .jp-Cell").first.wait_for(timeout=60_000)
        if wait_kernel:
            self.wait_idle()

    def wait_idle(self, timeout: float = 90) -> None:
        self.page.wait_for_function(
            "() => { const s = jupyterapp.shell.currentWidget?.sessionContext;"
            " return !!s && s.isReady && s.session?.kernel?.status === 'idle'; }",
            timeout=timeout * 1000, polling=200)

    def kernel_id(self) -> str:
        return str(self.page.evaluate(
            "() => jupyterapp.shell.currentWidget.sessionContext.session.kernel.id"))

    def panel(self) -> Any:
        wid = self.page.evaluate("() => jupyterapp.shell.currentWidget.id")
        return self.page.locator(f'[id="{wid}"]')

    def cell(self, i: int) -> Any:
        return self.panel().locator(".jp-Notebook .jp-Cell").nth(i)

    def output(self, i: int) -> Any:
        # The cell's own output area (an ipywidgets Output would nest another .jp-OutputArea).
        return self.cell(i).locator(".jp-Cell-outputArea")

    def out_text(self, i: int) -> str:
        return str(self.output(i).inner_text())

    def n_cells(self) -> int:
        return int(self.page.evaluate(
            "() => jupyterapp.shell.currentWidget.content.widgets.length"))

    # -- running ---------------------------------------------------------------
    def run_cell(self, i: int) -> str:
        """Start running cell i (without waiting); returns a key for `wait_done`."""
        key = f"run{i}-{time.monotonic_ns()}"
        self.page.evaluate(
            """([i, key]) => {
                const nb = jupyterapp.shell.currentWidget.content;
                nb.activeCellIndex = i;
                nb.deselectAll();
                window.__runs = window.__runs || {};
                window.__runs[key] = 'running';
                jupyterapp.commands.execute('notebook:run-cell').then(
                    ok => { window.__runs[key] = ok === false ? 'failed' : 'done'; },
                    err => { window.__runs[key] = 'error: ' + err; });
            }""", [i, key])
        return key

    def run_all(self) -> str:
        key = f"runall-{time.monotonic_ns()}"
        self.page.evaluate(
            """(key) => {
                window.__runs = window.__runs || {};
                window.__runs[key] = 'running';
                jupyterapp.commands.execute('notebook:run-all-cells').then(
                    ok => { window.__runs[key] = ok === false ? 'failed' : 'done'; },
                    err => { window.__runs[key] = 'error: ' + err; });
            }""", key)
        return key

    def wait_done(self, key: str, timeout: float = 60) -> str:
        """Wait until the run started under `key` has finished (its execute replies came)."""
        handle = self.page.wait_for_function(
            "(key) => window.__runs && window.__runs[key] !== 'running' && window.__runs[key]",
            arg=key, timeout=timeout * 1000, polling=100)
        return str(handle.json_value())

    def prompt(self, i: int) -> str:
        return str(self.cell(i).locator(".jp-InputPrompt").inner_text()).strip()

    def run(self, i: int, timeout: float = 60) -> str:
        """Run cell i and wait for it; returns its output text."""
        self.wait_done(self.run_cell(i), timeout)
        return self.out_text(i)

    def run_all_and_wait(self, timeout: float = 90) -> None:
        self.wait_done(self.run_all(), timeout)
        # every code cell got an execution count
        n = self.n_cells()
        for i in range(n):
            p = self.prompt(i)
            assert p.startswith("[") and p[1:-2].strip().isdigit(), f"cell {i} prompt {p!r}"

    # -- saving and closing ----------------------------------------------------
    def save(self) -> None:
        self.page.evaluate(
            "() => jupyterapp.shell.currentWidget.content.activeCell?.node.focus()")
        self.page.keyboard.press("Escape")
        self.page.keyboard.press("Control+s")
        self.page.wait_for_function(
            "() => !jupyterapp.shell.currentWidget.context.model.dirty", timeout=20_000)

    def shutdown_kernel(self) -> None:
        self.page.evaluate("() => jupyterapp.shell.currentWidget.sessionContext.shutdown()")
        self.page.wait_for_function(
            "() => !jupyterapp.shell.currentWidget?.sessionContext?.session?.kernel",
            timeout=30_000)

    def close_all(self) -> None:
        self.page.evaluate("() => { jupyterapp.commands.execute('application:close-all'); }")
        dialog = self.page.locator(".jp-Dialog")
        deadline = time.time() + 10
        while time.time() < deadline:
            if dialog.count():
                # "close without saving?" - it should not come after a save; accept anyway
                self.errors.append("dialog on close: " + dialog.inner_text())
                dialog.locator(".jp-mod-accept").click()
            if self.page.evaluate("() => !jupyterapp.shell.currentWidget"
                                  " || !jupyterapp.shell.currentWidget.sessionContext"):
                return
            time.sleep(0.1)

    # -- probes ----------------------------------------------------------------
    def screenshot(self, name: str) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        try:
            self.page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
        except Exception:  # noqa: BLE001 - a screenshot is a by-product, never a failure
            pass

    def xss_values(self) -> list[Any]:
        """window.__xss of the page and of every frame in it (None where unset)."""
        values = []
        for frame in self.page.frames:
            try:
                values.append(frame.evaluate("() => window.__xss"))
            except Exception:  # noqa: BLE001 - a detached or cross-origin frame
                values.append(None)
        return [v for v in values if v is not None]

    def poke_links(self, scope: Any) -> int:
        """Hover and click every link in scope (forced), as a curious reader would."""
        links = scope.locator("a")
        count = links.count()
        lab_url = self.page.url
        for k in range(count):
            link = links.nth(k)
            try:
                link.hover(force=True, timeout=2000)
            except Exception:  # noqa: BLE001 - invisible links: the events below still fire
                pass
            try:
                link.dispatch_event("mouseover")
                link.dispatch_event("mouseenter")
            except Exception:  # noqa: BLE001
                pass
            try:
                link.click(force=True, timeout=2000, no_wait_after=True)
            except Exception:  # noqa: BLE001 - navigation errors are expected here
                pass
        for extra in self.page.context.pages:
            if extra is not self.page:
                extra.close()
        if self.page.url.split("#")[0] != lab_url.split("#")[0]:
            raise AssertionError(f"clicking a reply's link navigated the page to {self.page.url}")
        return count

    def dangerous_nodes(self, scope: Any) -> list[str]:
        """Elements in scope that could run script: script, iframe, on* attributes, js links."""
        return list(scope.evaluate_all(
            """(roots) => {
                const bad = [];
                for (const root of roots) {
                    for (const el of root.querySelectorAll('*')) {
                        const tag = el.tagName.toLowerCase();
                        if (tag === 'script' || tag === 'iframe' || tag === 'object'
                            || tag === 'embed') bad.push(el.outerHTML.slice(0, 200));
                        for (const a of el.attributes) {
                            const v = (a.value || '').replace(/[\\s\\x00-\\x1f]/g, '').toLowerCase();
                            if (a.name.toLowerCase().startsWith('on')
                                || ((a.name === 'href' || a.name === 'src'
                                     || a.name === 'xlink:href')
                                    && (v.startsWith('javascript:') || v.startsWith('data:text/html'))))
                                bad.push(el.outerHTML.slice(0, 200));
                        }
                    }
                }
                return bad;
            }"""))
