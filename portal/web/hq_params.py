"""The query every HQ table is asked with, as one :class:`scoring.tables.Params`: the reader's
plants, the period (``from``/``to``, both days included, or the preset ``period``; by default
the 90 days ending today on the group's clock) and the drill-down filters ``plant_id``,
``work_type`` and ``contractor_id``. The HQ pages (:mod:`portal.web.hq`) and the exports
(:mod:`portal.web.exports`) both read their query here, so that an export linked from a page
asks for exactly the rows the page showed.

HQ analysts and tenant administrators read every plant; plant managers and EHS officers the
plants their grants cover; everyone else, and a plant outside the reader's scope, gets 404.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from zoneinfo import ZoneInfo

from litestar.exceptions import NotFoundException

from infra.db import utcnow
from infra.errors import InvalidInput
from infra.i18n import N_
from onboarding.catalogue import WorkType
from scoring.models import PeriodKind
from scoring.services import period_bounds
from scoring.tables import Params
from tenants.access import Principal
from tenants.models import Role

# The zone of portal.plugin.GROUP_TIMEZONE, where lists spanning plants are shown: a period
# "today" or "this quarter" means the group's calendar, not each plant's.
GROUP_ZONE = ZoneInfo("Asia/Shanghai")
WIDE_ROLES = frozenset({Role.HQ_ANALYST, Role.TENANT_ADMIN})
PLANT_ROLES = frozenset({Role.PLANT_MANAGER, Role.EHS_OFFICER})
LAST_DAYS = 90
PRESETS = {
    "90d": N_("Last 90 days"),
    PeriodKind.QUARTER.value: N_("This quarter"),
    PeriodKind.YEAR.value: N_("This year"),
}
DEFAULT_PRESET = "90d"
# Longer periods would read a rollup row per plant-day for years; the trend has one point per
# week, which stays legible up to about three years.
MAX_DAYS = 3 * 366


def hq_scope(principal: Principal) -> frozenset[uuid.UUID] | None:
    """The plants the reader's HQ roles cover (``None``: every plant); no HQ role is 404."""
    grants = [g for g in principal.grants if g.role in WIDE_ROLES | PLANT_ROLES]
    if not grants:
        raise NotFoundException()
    if any(g.role in WIDE_ROLES or g.plant_id is None for g in grants):
        return None
    return frozenset(g.plant_id for g in grants if g.plant_id is not None)


def in_scope(scope: Collection[uuid.UUID] | None, plant_id: uuid.UUID) -> bool:
    return scope is None or plant_id in scope


@dataclass(frozen=True)
class Period:
    """The days ``start`` up to ``end`` (exclusive); ``preset`` names a preset period."""

    start: date
    end: date
    preset: str | None

    @property
    def last(self) -> date:
        return self.end - timedelta(days=1)

    def query(self) -> dict[str, str]:
        """How links carry the period: by its preset, or by its first and last day."""
        if self.preset is not None:
            return {"period": self.preset}
        return {"from": self.start.isoformat(), "to": self.last.isoformat()}


def _day(query: Mapping[str, str], name: str) -> date:
    try:
        return date.fromisoformat(query.get(name, "")[:10])
    except ValueError as exc:
        raise InvalidInput(name, "date", N_("Give the day as YYYY-MM-DD.")) from exc


def period_of(query: Mapping[str, str], today: date) -> Period:
    """The period a page is asked for: ``from``/``to`` (both days included), else the preset
    ``period`` (the last 90 days by default, this quarter, this year)."""
    if query.get("from") or query.get("to"):
        if not query.get("from"):
            raise InvalidInput("from", "required", N_("Give the first day as well."))
        start = _day(query, "from")
        last = _day(query, "to") if query.get("to") else today
        if last < start:
            raise InvalidInput("to", "order", N_("The last day comes before the first day."))
        if (last - start).days >= MAX_DAYS:
            raise InvalidInput(
                "to", "max_range", N_("A period spans at most %(days)s days."), days=MAX_DAYS
            )
        return Period(start, last + timedelta(days=1), None)
    preset = query.get("period") or DEFAULT_PRESET
    if preset == DEFAULT_PRESET:
        return Period(today - timedelta(days=LAST_DAYS - 1), today + timedelta(days=1), preset)
    if preset == PeriodKind.QUARTER.value:
        start, end = period_bounds(preset, today.year, (today.month - 1) // 3 + 1)
        return Period(start, end, preset)
    if preset == PeriodKind.YEAR.value:
        start, end = period_bounds(preset, today.year, None)
        return Period(start, end, preset)
    raise InvalidInput("period", "enum", N_("Not one of the allowed values."))


def query_id(query: Mapping[str, str], name: str) -> uuid.UUID | None:
    value = query.get(name)
    if not value:
        return None
    try:
        return uuid.UUID(value[:64])
    except ValueError as exc:
        raise InvalidInput(name, "uuid", N_("Not a valid identifier.")) from exc


def query_work_type(query: Mapping[str, str]) -> str | None:
    value = query.get("work_type")
    if value is None:
        return None
    # The empty work type is that of alerts and findings that belong to no permit.
    if value and value not in {work_type.value for work_type in WorkType}:
        raise InvalidInput("work_type", "enum", N_("Not one of the allowed values."))
    return value


def today_in_group() -> date:
    return utcnow().astimezone(GROUP_ZONE).date()


def hq_params(principal: Principal, query: Mapping[str, str], today: date | None = None) -> Params:
    """The table query of an HQ address for this reader (404 for one who reads no HQ
    figures, or for a plant outside the reader's scope)."""
    scope = hq_scope(principal)
    period = period_of(query, today or today_in_group())
    plant_id = query_id(query, "plant_id")
    if plant_id is not None and scope is not None and plant_id not in scope:
        raise NotFoundException()
    return Params(
        start=period.start,
        end=period.end,
        plant_ids=scope,
        plant_id=plant_id,
        work_type=query_work_type(query),
        contractor_id=query_id(query, "contractor_id"),
    )
