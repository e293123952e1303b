"""Fixtures for the browser tests of the Dagster UI: a real `dagster dev` on 127.0.0.1 over a temporary landing
folder, warehouse and instance that already holds the main job's runs (`make run`, then `make dev`), and Debian's
Chromium driven by Playwright.

Screenshots (one per step, plus one for any failing test) and the server's log go to test-artifacts/ui/.
"""

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest
import yaml
from playwright.sync_api import Browser, Page, expect, sync_playwright

from custpipe_assets.core.event_log import EVENT_BATCH_SIZE, EVENT_BATCH_SIZE_ENV
from custpipe_assets.core.settings import (
    DEFAULT_FIRST_WEEK,
    Settings,
)
from custpipe_assets.definitions import build_definitions
from custpipe_assets.run import INSTANCE_YAML, RunSummary, run_everything
from custpipe_assets.sample import generate_sample

REPO_ROOT = Path(__file__).resolve().parents[2]
WORKSPACE_YAML = REPO_ROOT / "workspace.yaml"
ARTIFACTS_DIR = REPO_ROOT / "test-artifacts" / "ui"
CHROMIUM = Path("/usr/bin/chromium")
# Without the background-networking flags Chromium keeps dialling Google services, which this closed network refuses.
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
VIEWPORT = {"width": 1400, "height": 900}
# The UI is a React app fed by GraphQL; on 2 busy cores a first page can take tens of seconds.
PAGE_TIMEOUT_MS = 60_000
SERVER_START_TIMEOUT_S = 180.0
SERVER_STOP_GRACE_S = 5.0
# Runs started by sensors and schedules wait in the queue forever, so the run a test launches is the only one
# touching the warehouse (a materialization from a test would otherwise start automation's follow-up runs while
# the tests click). A run they request is still recorded: the tests see whether any was.
AUTOMATION_RUNS_HELD = {
    "tag_concurrency_limits": [
        {"key": "dagster/sensor_name", "limit": 0},
        {"key": "dagster/schedule_name", "limit": 0},
    ]
}
FAILED_CALL = pytest.StashKey[bool]()

expect.set_options(timeout=PAGE_TIMEOUT_MS)  # Playwright's own default (5 s) is shorter than a busy page load


@dataclass(frozen=True)
class DagsterUI:
    """A running `dagster dev` and what it serves: the same Definitions, instance and history the tests check."""

    base_url: str
    instance: dg.DagsterInstance  # the server's instance, read from this process to confirm what the UI shows
    location_name: str
    settings: Settings
    definitions: dg.Definitions
    history: RunSummary

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"


def require_chromium() -> Path:
    """Debian's Chromium, or a skip on a developer machine without it; CI must have it, so there it is an error."""
    if CHROMIUM.exists():
        return CHROMIUM
    message = f"{CHROMIUM} is missing: run `bash .ci/install_browser.sh` (as root) to install Debian's chromium"
    if os.environ.get("CI"):
        pytest.fail(f"CI must run the UI tests. {message}")
    pytest.skip(message)


def free_local_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def workspace_location_name(workspace_yaml: Path) -> str:
    """The code location name the UI puts in its URLs, as workspace.yaml names it."""
    (entry,) = yaml.safe_load(workspace_yaml.read_text())["load_from"]
    (target,) = entry.values()
    return target["location_name"]


def write_instance_yaml(dagster_home: Path) -> None:
    """Our dagster.yaml (pool limit 1, no first-run modal, no telemetry) with automation's runs held in the queue."""
    config = yaml.safe_load(INSTANCE_YAML)
    config.setdefault("concurrency", {})["runs"] = AUTOMATION_RUNS_HELD
    # this process reads the instance too, without DAGSTER_HOME set: the event log's home as a path, not `env`
    config["event_log_storage"]["config"]["dagster_home"] = str(dagster_home)
    dagster_home.mkdir(parents=True, exist_ok=True)
    (dagster_home / "dagster.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


def log_tail(log_path: Path, lines: int = 40) -> str:
    return "\n".join(log_path.read_text(errors="replace").splitlines()[-lines:])


def wait_for_server(process: subprocess.Popen, base_url: str, log_path: Path) -> None:
    """Poll /server_info until the webserver answers; a server that died or never answered fails with its log."""
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"dagster dev exited with {process.returncode}:\n{log_tail(log_path)}")
        try:
            with urllib.request.urlopen(f"{base_url}/server_info", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    raise TimeoutError(
        f"dagster dev did not answer on {base_url} in {SERVER_START_TIMEOUT_S:.0f} s:\n{log_tail(log_path)}"
    )


def stop_process_group(process: subprocess.Popen) -> None:
    """End `dagster dev` with its daemon, code server and run workers: SIGINT, a short grace, then SIGKILL.

    `dagster dev` ignores SIGTERM here, and its children share its process group (it was started in a new session).
    """
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGINT)
        with suppress(subprocess.TimeoutExpired):
            process.wait(timeout=SERVER_STOP_GRACE_S)
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


@pytest.fixture(scope="module")
def chromium() -> Path:
    return require_chromium()


@contextmanager
def running_dagster_dev(
    settings: Settings, dagster_home: Path, port: int, log_path: Path
) -> Iterator[subprocess.Popen]:
    """`dagster dev` in a session of its own, its whole process group ended however the block exits."""
    dagster = Path(sys.executable).with_name("dagster")
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(dagster), "dev", "-w", str(WORKSPACE_YAML), "-h", "127.0.0.1", "-p", str(port)],
            cwd=REPO_ROOT,
            # as `make dev` starts it: runs launched from the UI store their events in batches too
            env={**settings.environment(), "DAGSTER_HOME": str(dagster_home), EVENT_BATCH_SIZE_ENV: EVENT_BATCH_SIZE},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield process
    finally:
        stop_process_group(process)


@pytest.fixture(scope="module")
def dagster_ui(chromium, tmp_path_factory, settings_under) -> Iterator[DagsterUI]:
    """`make run`, then `make dev`: the main job over every domain of a generated sample (landed an hour ago, so
    no file is still being copied), then `dagster dev` over the same landing folder, warehouse and instance.
    """
    root = tmp_path_factory.mktemp("dagster_ui")
    settings = settings_under(root, first_week=DEFAULT_FIRST_WEEK)
    generate_sample(settings.landing_dir, seed=7, first_week=settings.first_week)
    landed = time.time() - 3600
    for path in settings.landing_dir.rglob("*"):
        os.utime(path, (landed, landed))
    dagster_home = root / "dagster_home"
    write_instance_yaml(dagster_home)
    port = free_local_port()
    log_path = root / "dagster_dev.log"
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        history = run_everything(settings, instance=instance, log=lambda *_: None)
        assert history.success, f"the main job failed before the UI tests could start: run {history.run_id}"
        with running_dagster_dev(settings, dagster_home, port, log_path) as process:
            try:
                base_url = f"http://127.0.0.1:{port}"
                wait_for_server(process, base_url, log_path)
                yield DagsterUI(
                    base_url=base_url,
                    instance=instance,
                    location_name=workspace_location_name(WORKSPACE_YAML),
                    settings=settings,
                    definitions=build_definitions(settings),
                    history=history,
                )
            finally:
                ARTIFACTS_DIR.mkdir(parents=True, exist_ok=True)
                (ARTIFACTS_DIR / "dagster_dev.log").write_bytes(log_path.read_bytes())


@pytest.fixture(scope="module")
def browser(chromium) -> Iterator[Browser]:
    """Debian's Chromium, never a browser build of Playwright's own (nothing is downloaded)."""
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Remember a failed test body, so the `page` fixture can keep a picture of what the browser showed."""
    report = yield
    if report.when == "call" and report.failed:
        item.stash[FAILED_CALL] = True
    return report


@pytest.fixture
def page(browser, request) -> Iterator[Page]:
    """A fresh browser context per test, with generous timeouts; a failing test leaves `<test>-FAILED.png`."""
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(PAGE_TIMEOUT_MS)
    context.set_default_navigation_timeout(PAGE_TIMEOUT_MS)
    new_page = context.new_page()
    try:
        yield new_page
    finally:
        if request.node.stash.get(FAILED_CALL, False):
            save_screenshot(new_page, f"{request.node.name}-FAILED")
        context.close()


@pytest.fixture
def screenshot(page) -> Callable[[str], Path]:
    """`screenshot(name)` saves what the page shows now, one picture per step of a test."""
    return lambda name: save_screenshot(page, name)


def save_screenshot(page: Page, name: str) -> Path:
    """test-artifacts/ui/<name>.png (the folder is git-ignored), for a person to look at what the test saw."""
    ARTIFACTS_DIR.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS_DIR / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)}.png"
    page.screenshot(path=str(path))
    return path
