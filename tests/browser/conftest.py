"""A seeded demo server in a subprocess and a headless Debian Chromium to drive it.

The server runs the real ``portal`` command, so the test covers what an operator starts with
``make demo``. The demo is seeded once per run and each module serves its own copy of it.
"""

from __future__ import annotations

import json
import os
import shutil
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
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

CHROMIUM = "/usr/bin/chromium"
# Everything that would reach the network or need a GPU/sandbox in a container is switched off.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
STARTUP_TIMEOUT_SECONDS = 30.0
# Seeding the demo (light) takes about a minute on two cores; generous for a loaded machine.
SEED_TIMEOUT_SECONDS = 600
PORTAL = Path(sys.executable).with_name("portal")


@dataclass(frozen=True)
class DemoServer:
    base_url: str
    var_dir: Path
    logins: list[dict[str, str]]

    def login(self, role: str, email_prefix: str = "") -> dict[str, str]:
        for login in self.logins:
            if login["role"] == role and login["email"].startswith(email_prefix):
                return login
        raise LookupError(f"no demo login for {role} {email_prefix!r}")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _portal_env(var_dir: Path) -> dict[str, str]:
    # Inherited PORTAL_* values (tests/conftest.py sets some, a developer's shell may set Redis
    # or a base domain) would point the server somewhere other than this fresh var dir.
    env = {key: value for key, value in os.environ.items() if not key.startswith("PORTAL_")}
    env.update(
        PORTAL_VAR_DIR=str(var_dir),
        PORTAL_DATABASE_URL=f"sqlite+aiosqlite:///{var_dir / 'portal.db'}",
        PORTAL_SECRET_KEY="browser-test-secret-key-not-for-production",
        # Every permit state still shows; the full history only costs seeding time here.
        PORTAL_DEMO_PERMITS="light",
    )
    return env


def _wait_until_healthy(base_url: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"portal serve exited with {server.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{base_url}/healthz", timeout=2) as response:  # noqa: S310
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    pytest.fail(f"portal serve did not answer /healthz in time:\n{log.read_text()}")


@pytest.fixture(scope="session")
def seeded_demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo seeded once for the whole run; each module serves a copy of it, so no module
    sees another's changes and seeding is paid once."""
    var_dir = tmp_path_factory.mktemp("portal-demo-seed")
    seeded = subprocess.run(
        [str(PORTAL), "demo", "--no-serve"],
        env=_portal_env(var_dir),
        capture_output=True,
        text=True,
        timeout=SEED_TIMEOUT_SECONDS,
        check=False,
    )
    assert seeded.returncode == 0, f"portal demo failed:\n{seeded.stdout}\n{seeded.stderr}"
    return var_dir


@pytest.fixture(scope="module")
def demo_server(
    tmp_path_factory: pytest.TempPathFactory, seeded_demo: Path
) -> Iterator[DemoServer]:
    var_dir = tmp_path_factory.mktemp("portal-var")
    shutil.copytree(seeded_demo, var_dir, dirs_exist_ok=True)
    env = _portal_env(var_dir)
    logins = json.loads((var_dir / "demo-logins.json").read_text())

    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    log = var_dir / "server.log"
    # A file, not a pipe: nobody reads a pipe while the tests run, and a full one blocks uvicorn.
    with log.open("wb") as log_file:
        server = subprocess.Popen(
            [str(PORTAL), "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_until_healthy(base_url, server, log)
        yield DemoServer(base_url=base_url, var_dir=var_dir, logins=logins)
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    # A Chinese browser, as the demo tenant's users have; each test starts without cookies.
    browser_context = browser.new_context(
        locale="zh-CN", viewport={"width": 1280, "height": 800}, timezone_id="Asia/Shanghai"
    )
    browser_context.set_default_timeout(10_000)
    try:
        yield browser_context
    finally:
        browser_context.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()
