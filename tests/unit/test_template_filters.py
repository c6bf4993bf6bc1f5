"""Times are stored in UTC and shown on the plant's clock."""

from __future__ import annotations

from datetime import UTC, datetime

from portal.plugin import _jinja_environment


def test_stored_utc_is_shown_in_china_standard_time() -> None:
    template = _jinja_environment().from_string("{{ at | in_zone | local_time }}")
    assert template.render(at=datetime(2026, 11, 28, 23, 30, tzinfo=UTC)) == "2026-11-29 07:30"


def test_another_plant_zone_can_be_named() -> None:
    template = _jinja_environment().from_string("{{ at | in_zone('Asia/Urumqi') | local_time }}")
    assert template.render(at=datetime(2026, 11, 28, 23, 30, tzinfo=UTC)) == "2026-11-29 05:30"
