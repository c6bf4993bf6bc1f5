"""The calendar admission runs on: certificates and licences expire on a date of the plant's
clock (北京时间), not of UTC, so "today" is taken there. Times are stored in UTC all the same."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from infra.db import utcnow

PLANT_TIMEZONE = ZoneInfo("Asia/Shanghai")


def plant_date(moment: datetime) -> date:
    return moment.astimezone(PLANT_TIMEZONE).date()


def plant_today() -> date:
    return plant_date(utcnow())
