"""Benchmarks run only when asked for by marker: ``make bench`` runs
``pytest tests/benchmarks -m benchmark``. A plain ``pytest`` (``make test``) leaves them out:
they are slow, and their figures mean something only when compared within one run."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "benchmark" in (config.getoption("markexpr") or ""):
        return
    benchmarks = [item for item in items if item.get_closest_marker("benchmark")]
    if benchmarks:
        config.hook.pytest_deselected(items=benchmarks)
        items[:] = [item for item in items if not item.get_closest_marker("benchmark")]
