"""Real Celery workers and brokers for the task and outbox tests.

Workers are separate processes (`celery -A tests.integration.celery_app worker`), configured
only through ``PORTAL_*`` variables, as in production. Each test module uses the machine's Redis
(database 5) under a key prefix of its own, removed before and after, so that two test runs on
one machine cannot consume each other's messages; a broker outage is staged on a private
``redis-server``, never on the shared one.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import redis
from celery import Celery

from infra.settings import Settings
from infra.tasks import celery_config
from tests.conftest import PostgresDatabase, settings_for

REPO = Path(__file__).resolve().parents[2]
SHARED_REDIS_URL = "redis://127.0.0.1:6379/5"
WORKER_APP = "tests.integration.celery_app"

T = TypeVar("T")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until(probe: Callable[[], T], *, timeout: float, what: str, interval: float = 0.1) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that makes a new process read exactly these settings."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("PORTAL_")}
    for field in dataclasses.fields(settings):
        env["PORTAL_" + field.name.upper()] = str(getattr(settings, field.name))
    return env


def pg_task_settings(
    postgres: PostgresDatabase, var_dir: Path, broker_url: str, **overrides: object
) -> Settings:
    """Settings of a worker on the test PostgreSQL database, connected as the application role."""
    return settings_for(
        postgres.app_url,
        var_dir,
        migration_database_url=postgres.owner_url,
        celery_broker_url=broker_url,
        **overrides,
    )


def client_app(settings: Settings) -> Celery:
    """A sender configured like the workers. Tests send by task name, as another service would."""
    client = Celery("portal-test-client", set_as_current=False)
    client.conf.update(celery_config(settings))
    return client


@contextmanager
def prefixed_keys(url: str) -> Iterator[str]:
    """A fresh key prefix on a Redis database, and its keys removed before and after."""
    prefix = f"portal-test-{uuid.uuid4().hex[:12]}:"
    client = redis.Redis.from_url(url)

    def remove() -> None:
        keys = list(client.scan_iter(match=prefix + "*", count=1000))
        if keys:
            client.delete(*keys)

    remove()
    try:
        yield prefix
    finally:
        remove()
        client.close()


class Worker:
    """A worker process group (the main process, its pool child and, with beat, the beat
    process), so that SIGKILL takes all of them at once, as a lost machine would."""

    def __init__(self, settings: Settings, log_path: Path, *, beat: bool = False) -> None:
        self.settings = settings
        self.log_path = log_path
        self.beat = beat
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> Worker:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log_path.write_text("")
        command = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            WORKER_APP,
            "worker",
            "--pool=prefork",
            "--concurrency=1",
            "--loglevel=INFO",
            "--without-mingle",
            "--without-gossip",
            "--without-heartbeat",
            f"--hostname=test-{uuid.uuid4().hex[:8]}@%h",
            f"--logfile={self.log_path}",
        ]
        if self.beat:
            command.append("--beat")
        self.process = subprocess.Popen(
            command,
            cwd=REPO,
            env=settings_env(self.settings),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_until(self._ready, timeout=timeout, what=f"the worker to be ready\n{self.log()}")
        return self

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"the worker exited with {self.process.returncode}\n{self.log()}")
        return " ready." in self.log_path.read_text()

    def log(self) -> str:
        return self.log_path.read_text()[-4000:] if self.log_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL to the whole group: nothing gets to acknowledge, clean up or roll back."""
        self._signal(signal.SIGKILL)

    def stop(self) -> None:
        self._signal(signal.SIGTERM)

    def _signal(self, signum: int) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signum)
        except ProcessLookupError:
            return
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)


@contextmanager
def running_worker(settings: Settings, log_path: Path, *, beat: bool = False) -> Iterator[Worker]:
    worker = Worker(settings, log_path, beat=beat)
    try:
        yield worker.start()
    finally:
        worker.kill()


class PrivateRedis:
    """A redis-server of the test's own on a free port, keeping nothing on disk: stopping it
    loses every queued message, like a broker that crashed."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.directory = directory
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> PrivateRedis:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(self._answers, timeout=10, what=f"redis-server on port {self.port}")
        return self

    def _answers(self) -> bool:
        try:
            with redis.Redis(port=self.port, socket_connect_timeout=0.5) as client:
                return bool(client.ping())
        except redis.ConnectionError:
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
