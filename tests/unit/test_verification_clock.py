"""Times on the public verification page are on the clock of the record's place, with the
clock's offset from UTC, so whoever checks a printout can compare them with a watch."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from infra.verification import on_clock

MOMENT = datetime(2026, 1, 15, 12, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("zone", "shown"),
    [
        ("Asia/Shanghai", "2026-01-15 20:30 (UTC+08:00)"),
        ("America/New_York", "2026-01-15 07:30 (UTC-05:00)"),
        ("Asia/Kathmandu", "2026-01-15 18:15 (UTC+05:45)"),
        ("UTC", "2026-01-15 12:30 (UTC+00:00)"),
    ],
)
def test_a_moment_is_shown_on_the_zones_clock_with_its_offset(zone: str, shown: str) -> None:
    assert on_clock(MOMENT, zone) == shown
