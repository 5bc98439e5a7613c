"""Browser test harness: a real Jupyter server driven by Playwright in headless Chromium.

Fixtures:
- ``lab_server`` / ``notebook_server``: a JupyterLab (or Notebook 7) server on 127.0.0.1 with a
  free port, an empty token, isolated Jupyter config/data/runtime dirs, settings overrides so no
  dialog or news toast gets in the way, and a temporary copy of ``notebooks/`` as its root. The
  server runs in its own process group and is stopped by PID at the end, even on failure.
- :func:`start_marimo`: a ``marimo run`` (or ``marimo edit``) server the same way (127.0.0.1,
  free port, no token, isolated home and config dirs, stopped by PID with :func:`stop_server`).
- ``offline_page``: a page whose context is offline and refuses every request that is not a
  ``file://`` URL (for exported and standalone HTML files).
- ``browser``: Chromium from ``/usr/bin/chromium`` (never a Playwright download).
- ``page``: a fresh browser page; on a failed test, screenshots and the browser console log
  land in ``test-artifacts/``.
- ``jupyter``: small helpers to drive the notebook UI (see :class:`JupyterUI`).

Tests using ``browser`` are skipped, with the reason, only when ``/usr/bin/chromium`` is missing.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from _lab_page import ARTIFACTS, REPO

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SERVER_START_TIMEOUT_S = 90

# Settings defaults for the test server (same format as JupyterLab's overrides.json).
SETTINGS_OVERRIDES = {
    "@jupyterlab/notebook-extension:tracker": {
        "autoStartDefaultKernel": True,
        # Keep every cell in the DOM so outputs far down the notebook can be found.
        "windowingMode": "none",
    },
    "@jupyterlab/apputils-extension:notification": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator:
    # Remember each phase's outcome on the item, so fixtures can react to a failed test.
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@dataclass
class JupyterServer:
    """A running Jupyter server started by :func:`start_server`."""

    url: str
    root: Path
    process: subprocess.Popen
    log_path: Path

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(app: str, base: Path) -> JupyterServer:
    """Start ``jupyter lab`` or ``jupyter notebook`` (``app``) isolated under ``base``."""
    root = base / "root"
    shutil.copytree(REPO / "notebooks", root, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    settings = base / "app-settings"
    settings.mkdir()
    (settings / "overrides.json").write_text(json.dumps(SETTINGS_OVERRIDES, indent=2))
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(base / "config"),
        "JUPYTER_DATA_DIR": str(base / "data"),
        "JUPYTER_RUNTIME_DIR": str(base / "runtime"),
        "IPYTHONDIR": str(base / "ipython"),
        "JUPYTER_PLATFORM_DIRS": "1",
    }
    port = free_port()
    # The settings dir is a temp dir too, so the virtual environment is never modified.
    app_class = "LabApp" if app == "lab" else "JupyterNotebookApp"
    command = [
        sys.executable,
        "-m",
        "jupyter",
        app,
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        "--IdentityProvider.token=",
        "--ServerApp.password=",
        f"--ServerApp.root_dir={root}",
        f"--{app_class}.app_settings_dir={settings}",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")
    log_path = base / f"jupyter-{app}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            cwd=root,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # own process group: stop_server kills it and its children
        )
    server = JupyterServer(f"http://127.0.0.1:{port}", root, process, log_path)
    try:
        wait_until_up(server)
    except BaseException:
        stop_server(server)
        raise
    return server


def start_marimo(app: Path, base: Path, mode: str = "run") -> JupyterServer:
    """Start ``marimo run app`` (a read-only app) or ``marimo edit app`` (the editor) under
    ``base``; in both, every cell runs when the page opens."""
    home = base / "home"
    home.mkdir(parents=True, exist_ok=True)
    # The editor runs the cells on opening only when told to (marimo's default is not to).
    (home / ".marimo.toml").write_text("[runtime]\nauto_instantiate = true\n")
    env = {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(base / "config")}
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "marimo",
        "-y",
        mode,
        str(app),
        "--headless",
        "--host=127.0.0.1",
        f"--port={port}",
        "--no-token",
        "--no-sandbox",
    ]
    log_path = base / f"marimo-{mode}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            cwd=app.parent,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # own process group: stop_server kills it and its children
        )
    server = JupyterServer(f"http://127.0.0.1:{port}", app.parent, process, log_path)
    try:
        wait_until_up(server, "/health")
    except BaseException:
        stop_server(server)
        raise
    return server


def wait_until_up(server: JupyterServer, status_path: str = "/api/status") -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"the Jupyter server exited with code {server.process.returncode}:\n"
                f"{server.log_tail()}"
            )
        try:
            with urllib.request.urlopen(f"{server.url}{status_path}", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.25)
    raise TimeoutError(
        f"the Jupyter server did not answer within {SERVER_START_TIMEOUT_S} s:\n{server.log_tail()}"
    )


def stop_server(server: JupyterServer) -> None:
    """Stop the server's process group by its PID: SIGTERM (kernels shut down), then SIGKILL."""
    pgid = server.process.pid  # start_new_session made the server its own group leader
    for sig, grace_s in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
        if server.process.poll() is not None:
            break
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            break
        try:
            server.process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            continue
    # Kernels run in their own sessions; anything of the group still alive goes too.
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _server_fixture(app: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterServer]:
    server = start_server(app, tmp_path_factory.mktemp(f"jupyter-{app}"))
    try:
        yield server
    finally:
        stop_server(server)


@pytest.fixture(scope="module")
def lab_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterServer]:
    """A running JupyterLab server (see the module docstring)."""
    yield from _server_fixture("lab", tmp_path_factory)


@pytest.fixture(scope="module")
def notebook_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterServer]:
    """A running Notebook 7 server (see the module docstring)."""
    yield from _server_fixture("notebook", tmp_path_factory)


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """Headless Chromium from /usr/bin/chromium, driven by Playwright's sync API.

    Skips (with the reason) every test that uses it when Chromium is not installed.
    """
    if not CHROMIUM.exists():
        pytest.skip(
            f"{CHROMIUM} is missing: install Debian's chromium (`apt-get install -y chromium`, as "
            "`bash scripts/setup.sh --browser` does) to run the browser tests"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser, request: pytest.FixtureRequest) -> Iterator[object]:
    """A new page (1400×1000). If the test fails, screenshots of every page of the context and
    the browser console go to ``test-artifacts/<test>-failure.png`` and ``<test>-console.txt``."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(60_000)
    console: list[str] = []
    context.on(
        "page",
        lambda new_page: new_page.on(
            "console", lambda message: console.append(f"[{message.type}] {message.text}")
        ),
    )
    page = context.new_page()
    try:
        yield page
    finally:
        report = getattr(request.node, "report_call", None)
        if report is not None and report.failed:
            ARTIFACTS.mkdir(exist_ok=True)
            for i, failed_page in enumerate(context.pages):
                name = f"{request.node.name}-failure{i or ''}.png"
                failed_page.screenshot(path=str(ARTIFACTS / name), full_page=True)
            (ARTIFACTS / f"{request.node.name}-console.txt").write_text("\n".join(console))
        context.close()


@pytest.fixture
def offline_page(browser, request: pytest.FixtureRequest) -> Iterator[object]:
    """A page (1400×1000) with the network off: the context is offline and every request that
    is not a ``file://`` URL is aborted (and listed in ``page.refused``). On failure a
    screenshot goes to ``test-artifacts/<test>-failure.png``."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, offline=True)
    context.set_default_timeout(30_000)
    refused: list[str] = []

    def refuse(route) -> None:
        refused.append(route.request.url)
        route.abort()

    context.route(re.compile(r"^(?!file:).*"), refuse)
    page = context.new_page()
    page.refused = refused
    try:
        yield page
    finally:
        report = getattr(request.node, "report_call", None)
        if report is not None and report.failed:
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / f"{request.node.name}-failure.png"))
        context.close()


class JupyterUI:
    """Actions on a JupyterLab or Notebook 7 page, shared by the browser tests."""

    KERNEL_TIMEOUT_MS = 120_000

    def __init__(self, page) -> None:
        self.page = page

    def on(self, page) -> JupyterUI:
        """The same helpers for another page (e.g. a tab the notebook opened)."""
        return JupyterUI(page)

    def wait_for_notebook(self) -> None:
        """Wait until a notebook is open with a kernel connected and idle.

        The execution indicator says "idle" before any kernel exists, so the kernel name in the
        toolbar must also have left "No Kernel".
        """
        self.page.wait_for_selector(".jp-Notebook .jp-Cell")
        self.page.wait_for_function(
            """() => {
                const indicator = document.querySelector('.jp-Notebook-ExecutionIndicator');
                const name = document.querySelector('.jp-KernelName');
                const label = name ? name.textContent.trim() : '';
                return indicator?.dataset.status === 'idle' && label !== ''
                    && label !== 'No Kernel';
            }""",
            timeout=self.KERNEL_TIMEOUT_MS,
        )

    def execution_count(self) -> int:
        """The highest execution count shown in the notebook's prompts (0 if none ran)."""
        return self.page.evaluate(
            """() => Math.max(0, ...[...document.querySelectorAll(
                '.jp-Notebook .jp-CodeCell .jp-InputArea-prompt')].map(
                (p) => Number((p.textContent.match(/\\[(\\d+)\\]/) || [0, 0])[1])))"""
        )

    def run_all_cells(self, attempts: int = 3) -> None:
        """Run all cells (Run → Run All Cells) and wait until the last code cell has run.

        Just after a notebook opens, JupyterLab can run nothing at all, or lose the widget
        models while it re-connects the kernel ("Error displaying widget"). In either case, and
        only then, the notebook is run again (its cells are safe to re-run).
        """
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        for attempt in range(attempts):
            before = self.execution_count()
            self.page.locator(".lm-MenuBar-itemLabel").get_by_text("Run", exact=True).click()
            self.page.locator(".lm-Menu-itemLabel").get_by_text("Run All Cells", exact=True).click()
            try:  # did anything start?
                self.page.wait_for_function(
                    """(before) => [...document.querySelectorAll(
                        '.jp-Notebook .jp-CodeCell .jp-InputArea-prompt')].some((p) =>
                        p.textContent.includes('[*]')
                        || Number((p.textContent.match(/\\[(\\d+)\\]/) || [0, 0])[1]) > before)""",
                    arg=before,
                    timeout=20_000,
                )
            except PlaywrightTimeout:
                if attempt == attempts - 1:
                    raise
                continue
            self.wait_until_executed(before)
            broken = self.page.locator(".jp-OutputArea-output", has_text="Error displaying widget")
            if broken.count() == 0 or attempt == attempts - 1:
                return

    def wait_until_executed(self, before: int = 0) -> None:
        """Wait until the last code cell shows an execution count above ``before`` and the
        kernel is idle again.

        Raises:
            AssertionError: a cell raised (its traceback is in the message).
        """
        self.page.wait_for_function(
            """(before) => {
                const prompts = [...document.querySelectorAll(
                    '.jp-Notebook .jp-CodeCell .jp-InputArea-prompt')];
                const last = prompts.at(-1)?.textContent ?? '';
                const count = Number((last.match(/\\[(\\d+)\\]/) || [0, 0])[1]);
                const idle = document.querySelector(
                    '.jp-Notebook-ExecutionIndicator')?.dataset.status === 'idle';
                const failed = [...document.querySelectorAll('.jp-OutputArea-output')].some(
                    (o) => o.textContent.includes('Traceback'));
                return count > before || (idle && failed);
            }""",
            arg=before,
            timeout=self.KERNEL_TIMEOUT_MS,
        )
        self.page.wait_for_selector(
            ".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=self.KERNEL_TIMEOUT_MS
        )
        errors = self.page.locator(".jp-OutputArea-output", has_text="Traceback")
        if errors.count():
            raise AssertionError(f"a notebook cell raised:\n{errors.first.inner_text()}")

    def run_new_cell(self, code: str) -> str:
        """Append a code cell with ``code``, run it with Control+Enter, return its output text."""
        cells = self.page.locator(".jp-Notebook .jp-Cell")
        count = cells.count()
        cells.nth(count - 1).locator(".jp-InputArea-prompt").click()  # select, command mode
        self.page.keyboard.press("Escape")
        self.page.keyboard.press("b")  # insert a cell below and select it
        new_cell = cells.nth(count)
        new_cell.wait_for()
        new_cell.locator(".cm-content").click()
        self.page.keyboard.type(code)
        self.page.keyboard.press("Control+Enter")
        new_cell.locator(".jp-InputArea-prompt", has_text=re.compile(r"\[\d+\]")).wait_for(
            timeout=self.KERNEL_TIMEOUT_MS
        )
        output = new_cell.locator(".jp-OutputArea-output")
        output.first.wait_for()
        return output.inner_text() if output.count() == 1 else "\n".join(output.all_inner_texts())


@pytest.fixture
def jupyter(page) -> JupyterUI:
    """UI helpers bound to ``page``."""
    return JupyterUI(page)
