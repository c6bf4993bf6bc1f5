"""Shared fixtures: SQLite for unit tests, the machine's PostgreSQL for integration tests.

PostgreSQL tests never skip: when the server is unreachable they fail, because a suite that
silently leaves out its isolation tests is not green.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from xdist.scheduler import LoadScopeScheduling

_SESSION_DIR = Path(tempfile.mkdtemp(prefix="portal-tests-"))
os.environ.setdefault("PORTAL_VAR_DIR", str(_SESSION_DIR / "var"))
os.environ.setdefault("PORTAL_SECRET_KEY", "test-secret-key-not-for-production")

from infra.db import Database  # noqa: E402
from infra.migrate import upgrade  # noqa: E402
from infra.settings import Settings, get_settings  # noqa: E402
from tests.factories import TenantFactory  # noqa: E402

PG_ADMIN_URL = os.environ.get(
    "PORTAL_TEST_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
PG_APP_ROLE = "portal_app"
ARTIFACTS_DIR = Path(__file__).parent / "artifacts"


# `make test` runs the suite on two pytest-xdist workers. A module stays on one worker, so its
# module fixtures are made once, and every browser test runs on one worker, so the demo is
# seeded once. The longest groups start first, so neither worker is left with a long tail.
BROWSER_TESTS = "tests/browser/"
LONGEST_FIRST = (BROWSER_TESTS, "tests/integration/test_demo.py")


class ModuleOrBrowserScheduling(LoadScopeScheduling):
    def _split_scope(self, nodeid: str) -> str:
        module = nodeid.split("::", 1)[0]
        return BROWSER_TESTS if module.startswith(BROWSER_TESTS) else module


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> ModuleOrBrowserScheduling:
    return ModuleOrBrowserScheduling(config, log)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        return next(
            (n for n, prefix in enumerate(LONGEST_FIRST) if item.nodeid.startswith(prefix)),
            len(LONGEST_FIRST),
        )

    items.sort(key=rank)


def settings_for(database_url: str, var_dir: Path, **overrides: object) -> Settings:
    base = get_settings()
    values: dict[str, object] = {
        "var_dir": var_dir,
        "database_url": database_url,
        "migration_database_url": database_url,
        "storage_dir": var_dir / "storage",
        "redis_url": "",
    }
    values.update(overrides)
    return dataclasses.replace(base, **values)


@pytest.fixture(scope="session")
def sqlite_template() -> Path:
    """One migrated SQLite file; each test gets a copy (migrating per test is slow)."""
    path = _SESSION_DIR / "template.db"
    upgrade(settings_for(f"sqlite+aiosqlite:///{path}", _SESSION_DIR / "template-var"))
    return path


@pytest.fixture
def sqlite_settings(tmp_path: Path, sqlite_template: Path) -> Settings:
    database_file = tmp_path / "portal.db"
    shutil.copyfile(sqlite_template, database_file)
    return settings_for(f"sqlite+aiosqlite:///{database_file}", tmp_path / "var")


@dataclasses.dataclass(frozen=True)
class PostgresDatabase:
    name: str
    owner_url: str
    app_url: str


def _admin_engine():  # type: ignore[no-untyped-def]
    return create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")


@contextlib.contextmanager
def fresh_postgres(*, durable: bool = False) -> Iterator[PostgresDatabase]:
    """A new database migrated by its owner (the app connects as the unprivileged role),
    dropped afterwards. Not ``durable``: commits do not wait for the disk."""
    name = f"portal_test_{uuid.uuid4().hex[:12]}"
    admin = _admin_engine()
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        pytest.fail(f"PostgreSQL is required for this test and is not reachable: {exc}")
    host = PG_ADMIN_URL.split("@", 1)[1].rsplit("/", 1)[0]
    owner_user = PG_ADMIN_URL.split("://", 1)[1].split("@", 1)[0]
    database = PostgresDatabase(
        name=name,
        owner_url=f"postgresql+asyncpg://{owner_user}@{host}/{name}",
        app_url=f"postgresql+asyncpg://{PG_APP_ROLE}@{host}/{name}",
    )
    if not durable:
        with admin.connect() as connection:
            # Test databases need no commit to survive a crash of the server; waiting for the
            # disk on each commit is most of the time of the many small transactions the tests
            # make.
            connection.execute(text(f'ALTER DATABASE "{name}" SET synchronous_commit = off'))
    try:
        upgrade(
            settings_for(
                database.app_url,
                _SESSION_DIR / "pg-var",
                migration_database_url=database.owner_url,
                db_app_role=PG_APP_ROLE,
            )
        )
        yield database
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresDatabase]:
    """A fresh database for the session's tests."""
    with fresh_postgres() as database:
        yield database


@pytest.fixture
def pg_settings(postgres: PostgresDatabase, tmp_path: Path) -> Settings:
    return settings_for(
        postgres.app_url, tmp_path / "var", migration_database_url=postgres.owner_url
    )


@pytest.fixture
async def sqlite_db(sqlite_settings: Settings) -> AsyncIterator[Database]:
    database = Database.from_settings(sqlite_settings)
    yield database
    await database.dispose()


@pytest.fixture
async def pg_db(pg_settings: Settings) -> AsyncIterator[Database]:
    database = Database.from_settings(pg_settings)
    yield database
    await database.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def any_settings(request: pytest.FixtureRequest) -> Settings:
    """Runs a test on both databases."""
    fixture = "sqlite_settings" if request.param == "sqlite" else "pg_settings"
    return request.getfixturevalue(fixture)


@pytest.fixture
async def any_db(any_settings: Settings) -> AsyncIterator[Database]:
    database = Database.from_settings(any_settings)
    yield database
    await database.dispose()


@pytest.fixture
def factory() -> TenantFactory:
    return TenantFactory()


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS_DIR.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS_DIR
