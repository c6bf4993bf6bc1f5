"""Benchmarks run only when asked for by marker: ``make bench`` runs
``pytest tests/benchmarks -m benchmark``. A plain ``pytest`` (``make test``) leaves them out:
they are slow, and their figures mean something only when compared within one run."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import PostgresDatabase, fresh_postgres


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "benchmark" in (config.getoption("markexpr") or ""):
        return
    benchmarks = [item for item in items if item.get_closest_marker("benchmark")]
    if benchmarks:
        config.hook.pytest_deselected(items=benchmarks)
        items[:] = [item for item in items if not item.get_closest_marker("benchmark")]


@pytest.fixture
def postgres() -> Iterator[PostgresDatabase]:
    """Each benchmark on a database of its own, holding only its own data, with PostgreSQL's
    durable commits as in production (the tests' databases do without)."""
    with fresh_postgres(durable=True) as database:
        yield database
