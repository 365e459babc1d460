"""A real JupyterLab in a real (headless) Chromium, for the tests in this folder (marker ``browser``).

Needs the ``playwright`` package (``pip install -e ".[dev]"``) and a Chromium on the PATH (``chromium``,
``chromium-browser`` or ``google-chrome``, or its path in ``NST_CHROMIUM``); Playwright's own browser
download is not used.  Without them the tests skip with a one-line reason; ``NST_REQUIRE_BROWSER=1`` (CI)
turns that skip into a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from notebook_page import NOTEBOOKS, SCREENSHOTS


def pytest_collection_modifyitems(items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.browser)


def pytest_terminal_summary(terminalreporter):
    if SCREENSHOTS:
        terminalreporter.section("browser screenshots")
        for path in SCREENSHOTS:
            terminalreporter.write_line(str(path))


def find_chromium() -> str | None:
    given = os.environ.get("NST_CHROMIUM")
    if given:
        return given if Path(given).exists() else None
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


def missing_browser() -> str | None:
    """Why the browser tests cannot run here (one line), or None."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "no playwright: pip install -e \".[dev]\""
    if os.environ.get("NST_CHROMIUM") and find_chromium() is None:
        return f"NST_CHROMIUM={os.environ['NST_CHROMIUM']} does not exist"
    if find_chromium() is None:
        return "no Chromium on the PATH: install it (Debian/Ubuntu: apt-get install chromium) or set NST_CHROMIUM"
    return None


@pytest.fixture(scope="session")
def chromium_path():
    reason = missing_browser()
    if reason:
        if os.environ.get("NST_REQUIRE_BROWSER") == "1":
            pytest.fail(f"browser tests required (NST_REQUIRE_BROWSER=1) but {reason}", pytrace=False)
        pytest.skip(f"browser tests skipped: {reason}")
    return find_chromium()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _jupyter_data_path() -> str:
    """JUPYTER_PATH with the data folder of the environment JupyterLab is installed in (its widget extension)."""
    import jupyterlab

    paths = [p for p in os.environ.get("JUPYTER_PATH", "").split(os.pathsep) if p]
    prefix = Path(jupyterlab.__file__).resolve().parents[4] if os.name != "nt" else None  # lib/pythonX/site-packages
    if prefix is not None and (prefix / "share" / "jupyter" / "lab").is_dir():
        paths.append(str(prefix / "share" / "jupyter"))
    return os.pathsep.join(paths)


def _processes_mentioning(text: str) -> list[int]:
    """PIDs whose command line contains ``text`` (Linux /proc; empty elsewhere)."""
    pids = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            if text.encode() in (entry / "cmdline").read_bytes():
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


class Lab:
    """A JupyterLab server on 127.0.0.1 serving a temporary copy of the notebooks."""

    def __init__(self, workdir: Path, home: Path):
        self.workdir, self.home = workdir, home
        self.port, self.token = free_port(), os.urandom(16).hex()
        self.url = f"http://127.0.0.1:{self.port}"
        self.runtime_dir = home / "runtime"
        settings = home / "settings"
        # Quiet and complete: no news pop-up, every cell in the page (no windowing), no autosave surprises.
        for plugin, values in {
            "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
            "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none", "autoStartDefaultKernel": True},
            "@jupyterlab/docmanager-extension/plugin": {"autosave": False},
        }.items():
            target = settings / f"{plugin}.jupyterlab-settings"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(json.dumps(values))
        env = dict(os.environ, NST_QUICK="1", MPLBACKEND="Agg", JUPYTER_RUNTIME_DIR=str(self.runtime_dir),
                   JUPYTER_CONFIG_DIR=str(home / "config"), JUPYTERLAB_SETTINGS_DIR=str(settings),
                   JUPYTERLAB_WORKSPACES_DIR=str(home / "workspaces"), JUPYTER_PATH=_jupyter_data_path(),
                   PYTHONUNBUFFERED="1")
        command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={self.port}",
                   f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={workdir}",
                   "--ServerApp.port_retries=0"]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            command.append("--allow-root")
        self.log = (home / "server.log").open("w")
        self.process = subprocess.Popen(command, cwd=workdir, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"jupyter lab exited at start: see {home / 'server.log'}")
            try:
                self.api("GET", "/api/status")
                return
            except OSError:
                time.sleep(0.5)
        raise RuntimeError("jupyter lab did not answer within 120 s")

    def api(self, method: str, path: str, body=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method,
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=30) as response:
            text = response.read()
        return json.loads(text) if text else None

    def kernel_state(self, path: str) -> str | None:
        """The execution state of the kernel of notebook ``path`` as the server sees it, or None."""
        for session in self.api("GET", "/api/sessions"):
            if session["path"] == path and session.get("kernel"):
                return session["kernel"].get("execution_state")
        return None

    def kernel_pids(self) -> list[int]:
        return _processes_mentioning(str(self.runtime_dir))

    def shut_down_kernels(self, keep: tuple[str, ...] = ()) -> None:
        """Shut down every kernel except those of the sessions for the notebooks in ``keep``."""
        for session in self.api("GET", "/api/sessions"):
            if session["path"] not in keep:
                self.api("DELETE", f"/api/sessions/{session['id']}")

    def stop(self) -> None:
        try:
            self.api("POST", "/api/shutdown")   # shuts the kernels down, then the server
        except OSError:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        self.log.close()


@pytest.fixture(scope="session")
def lab(chromium_path, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("course")
    for notebook in NOTEBOOKS:
        shutil.copy(notebook, workdir / notebook.name)
    server = Lab(workdir, tmp_path_factory.mktemp("jupyter"))
    yield server
    server.stop()
    deadline = time.monotonic() + 30
    while server.kernel_pids() and time.monotonic() < deadline:
        time.sleep(0.5)
    left = server.kernel_pids()
    for pid in left:  # do not leave them running even when the assertion below fails
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    assert not left, f"kernel processes outlived the JupyterLab server: {left}"


@pytest.fixture(scope="session")
def browser(chromium_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=chromium_path, headless=True,
                                              args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"])
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory):
    return tmp_path_factory.mktemp("screenshots")
