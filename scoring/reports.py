"""What HQ reads: plants side by side, breakdowns by work type, contractor or plant, weekly
trends, the permits behind any figure, and a plant's board for today.

Every report first rebuilds the days marked stale, then reads the rollups, so a figure always
equals what the raw tables say (see :mod:`scoring.rollups`); the drill-down reads the raw
permits of the same days with the same definitions, so it lists exactly what a figure counts.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from geofence.models import Alert, AlertState, Watch, WatchMember, WatchState
from onboarding.models import Contractor
from permits.models import Permit
from permits.states import PermitState
from scoring import sketch
from scoring.models import (
    DailyRollup,
    Grade,
    PlantDailyRollup,
    PlantMonthlyRollup,
    Review,
    ReviewState,
)
from scoring.rollups import (
    MEASURE_NAMES,
    Measures,
    PermitFact,
    day_bounds,
    load_facts,
    local_day,
    permit_facts,
    plant_zones,
    refresh_stale,
    utc_margin,
    whole_months,
)
from tenants.models import Plant

SUMMED = tuple(name for name in MEASURE_NAMES if name != "approval_histogram")


@dataclass
class Figures:
    """The HQ metrics of a set of measures (SPEC.md, "What HQ compares")."""

    measures: Measures = field(default_factory=Measures)

    @property
    def compliance_rate(self) -> float | None:
        """Full-loop permits per finished permit, in %."""
        m = self.measures
        return None if not m.finished else 100.0 * m.full_loop / m.finished

    @property
    def approval_mean_minutes(self) -> float | None:
        m = self.measures
        return None if not m.approvals else m.approval_minutes / m.approvals

    @property
    def approval_p90_minutes(self) -> float | None:
        return sketch.quantile(self.measures.approval_histogram, 0.9)

    @property
    def response_mean_minutes(self) -> float | None:
        m = self.measures
        return None if not m.responses else m.response_minutes / m.responses

    @property
    def work_hours(self) -> float:
        return self.measures.work_minutes / 60

    @property
    def violations_per_1000_hours(self) -> float | None:
        hours = self.work_hours
        return None if hours <= 0 else 1000.0 * self.measures.violations / hours

    @property
    def phone_share(self) -> float | None:
        """Check-ins proven by the phone's GPS inside the zone, per check-in, in %."""
        m = self.measures
        return None if not m.checkins else 100.0 * m.phone_checkins / m.checkins

    def as_row(self) -> dict[str, Any]:
        m = self.measures
        return {
            "permits": m.permits,
            "finished": m.finished,
            "full_loop": m.full_loop,
            "compliance_rate": _rounded(self.compliance_rate),
            "approval_mean_minutes": _rounded(self.approval_mean_minutes),
            "approval_p90_minutes": _rounded(self.approval_p90_minutes),
            "alerts": m.alerts,
            "response_mean_minutes": _rounded(self.response_mean_minutes),
            "violations": m.violations,
            "work_hours": round(self.work_hours, 1),
            "violations_per_1000_hours": _rounded(self.violations_per_1000_hours),
            "checkins": m.checkins,
            "phone_share": _rounded(self.phone_share),
        }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _measures(row: Any, histogram: Sequence[int] | None) -> Measures:
    measures = Measures(**{name: getattr(row, name) or 0 for name in SUMMED})
    measures.approval_histogram = list(histogram or [0] * sketch.BUCKETS)
    return measures


def _grouped(
    session: Session,
    model: type[DailyRollup] | type[PlantDailyRollup] | type[PlantMonthlyRollup],
    group_by: Sequence[Any],
    conditions: Sequence[Any],
) -> dict[tuple[Any, ...], Figures]:
    sums = select(*group_by, *(func.sum(getattr(model, name)).label(name) for name in SUMMED))
    rows = session.execute(sums.where(*conditions).group_by(*group_by)).all()
    histograms: dict[tuple[Any, ...], list[int]] = defaultdict(lambda: [0] * sketch.BUCKETS)
    for row in session.execute(
        select(*group_by, model.approval_histogram).where(*conditions, model.approvals > 0)
    ).all():
        key = tuple(row[: len(group_by)])
        histograms[key] = sketch.merge((histograms[key], row[-1]))
    return {
        tuple(row[: len(group_by)]): Figures(
            _measures(row, histograms.get(tuple(row[: len(group_by)])))
        )
        for row in rows
    }


def _plant_filter(model: Any, plant_ids: Collection[uuid.UUID] | None) -> list[Any]:
    return [] if plant_ids is None else [model.plant_id.in_(list(plant_ids))]


@dataclass(frozen=True)
class PlantRow:
    plant_id: uuid.UUID
    code: str
    name: str
    figures: Figures
    grades: dict[str, int]


def _plant_layers(
    start: date, end: date, plant_ids: Collection[uuid.UUID] | None
) -> list[tuple[type[PlantDailyRollup] | type[PlantMonthlyRollup], list[Any]]]:
    """The per-plant rows that cover the days ``start`` up to ``end`` exactly: the monthly rows
    of the months wholly inside, the daily rows of the days around them."""
    first, last = whole_months(start, end)
    daily, monthly = PlantDailyRollup, PlantMonthlyRollup
    if first >= last:
        return [(daily, [daily.day >= start, daily.day < end, *_plant_filter(daily, plant_ids)])]
    edges = ((daily.day >= start) & (daily.day < first)) | ((daily.day >= last) & (daily.day < end))
    return [
        (
            monthly,
            [monthly.month >= first, monthly.month < last, *_plant_filter(monthly, plant_ids)],
        ),
        (daily, [edges, *_plant_filter(daily, plant_ids)]),
    ]


def _plant_figures(
    session: Session, start: date, end: date, plant_ids: Collection[uuid.UUID] | None = None
) -> dict[uuid.UUID, Figures]:
    """Each plant's figures over the days ``start`` up to ``end`` (exclusive), from the rollups
    as they stand."""
    totals: dict[uuid.UUID, Figures] = defaultdict(Figures)
    for model, conditions in _plant_layers(start, end, plant_ids):
        for (plant_id,), figures in _grouped(session, model, [model.plant_id], conditions).items():
            totals[plant_id].measures.add(figures.measures)
    return dict(totals)


def compare_plants(
    session: Session, start: date, end: date, plant_ids: Collection[uuid.UUID] | None = None
) -> list[PlantRow]:
    """Each visible plant's figures over the days ``start`` up to ``end`` (exclusive), with
    the grade distribution of the companies that worked there. A plant retired before the
    period began is left out unless it has figures in it: it was not there to compare."""
    refresh_stale(session)
    figures = _plant_figures(session, start, end, plant_ids)
    grades = grade_distribution(session, start, end, plant_ids)
    plants = session.execute(select(Plant).order_by(Plant.code)).scalars()
    return [
        PlantRow(
            plant_id=plant.id,
            code=plant.code,
            name=plant.name,
            figures=figures.get(plant.id, Figures()),
            grades=grades.get(plant.id, {grade.value: 0 for grade in Grade}),
        )
        for plant in plants
        if (plant_ids is None or plant.id in plant_ids)
        and (
            plant.retired_at is None
            or plant.id in figures
            or plant.retired_at.astimezone(ZoneInfo(plant.timezone)).date() >= start
        )
    ]


Breakdown = str  # "work_type", "contractor" or "plant"
BREAKDOWNS = ("work_type", "contractor", "plant")


def breakdown(
    session: Session,
    start: date,
    end: date,
    by: Breakdown,
    *,
    plant_ids: Collection[uuid.UUID] | None = None,
    contractor_id: uuid.UUID | None = None,
    work_type: str | None = None,
) -> dict[Any, Figures]:
    """Figures per work type, company or plant, within the plants and filters given."""
    refresh_stale(session)
    model = DailyRollup
    column = {
        "work_type": model.work_type,
        "contractor": model.contractor_id,
        "plant": model.plant_id,
    }[by]
    conditions = [model.day >= start, model.day < end, *_plant_filter(model, plant_ids)]
    if contractor_id is not None:
        conditions.append(model.contractor_id == contractor_id)
    if work_type is not None:
        conditions.append(model.work_type == work_type)
    return {key[0]: value for key, value in _grouped(session, model, [column], conditions).items()}


def week_of(day: date) -> date:
    return day - timedelta(days=day.weekday())


def weekly_trend(
    session: Session,
    start: date,
    end: date,
    plant_ids: Collection[uuid.UUID] | None = None,
) -> tuple[list[date], dict[uuid.UUID, list[Figures]]]:
    """Per plant, the figures of each week (Monday first) that overlaps the days given."""
    refresh_stale(session)
    model = PlantDailyRollup
    conditions = [model.day >= start, model.day < end, *_plant_filter(model, plant_ids)]
    weeks: list[date] = []
    week = week_of(start)
    while week < end:
        weeks.append(week)
        week += timedelta(days=7)
    index = {week: position for position, week in enumerate(weeks)}
    series: dict[uuid.UUID, list[Figures]] = {}
    for row in session.execute(select(model).where(*conditions)).scalars():
        figures = series.setdefault(row.plant_id, [Figures() for _ in weeks])
        figures[index[week_of(row.day)]].measures.add(row)
    return weeks, series


def grade_distribution(
    session: Session, start: date, end: date, plant_ids: Collection[uuid.UUID] | None = None
) -> dict[uuid.UUID, dict[str, int]]:
    """Per plant, how many of the companies that worked there in the period hold each grade
    by their latest approved review up to the period's end; companies never reviewed are not
    counted."""
    worked: dict[uuid.UUID, set[str]] = defaultdict(set)
    for model, conditions in _plant_layers(start, end, plant_ids):
        for plant_id, contractor_ids in session.execute(
            select(model.plant_id, model.contractor_ids).where(*conditions)
        ).all():
            worked[plant_id].update(contractor_ids)
    grades = {str(key): grade for key, grade in latest_grades(session, end).items()}
    distribution: dict[uuid.UUID, dict[str, int]] = defaultdict(
        lambda: {grade.value: 0 for grade in Grade}
    )
    for plant_id, contractor_ids in worked.items():
        for contractor_id in contractor_ids:
            grade = grades.get(contractor_id)
            if grade is not None:
                distribution[plant_id][grade] += 1
    return dict(distribution)


def latest_grades(session: Session, before: date) -> dict[uuid.UUID, str]:
    """Each company's grade by its latest approved review that began before ``before``."""
    latest = (
        select(Review.contractor_id, func.max(Review.period_end).label("period_end"))
        .where(Review.state == ReviewState.APPROVED.value, Review.period_start < before)
        .group_by(Review.contractor_id)
        .subquery()
    )
    rows = session.execute(
        select(Review.contractor_id, Review.grade, Review.approved_at)
        .join(
            latest,
            (latest.c.contractor_id == Review.contractor_id)
            & (latest.c.period_end == Review.period_end),
        )
        .where(Review.state == ReviewState.APPROVED.value)
        .order_by(Review.approved_at)
    ).all()
    return {contractor_id: grade for contractor_id, grade, _ in rows}


def contractor_names(session: Session, ids: Iterable[uuid.UUID | None]) -> dict[uuid.UUID, str]:
    wanted = [contractor_id for contractor_id in ids if contractor_id is not None]
    if not wanted:
        return {}
    return dict(
        session.execute(
            select(Contractor.id, Contractor.name).where(Contractor.id.in_(wanted))
        ).all()
    )


def _permits_between(start: date, end: date, plant_ids: Collection[uuid.UUID] | None) -> Select:
    """Permits whose plant-local start day may fall in the days given (a day's margin for
    every zone; the caller keeps the exact ones)."""
    earliest, latest = utc_margin(start, end)
    query = permit_facts().where(Permit.planned_start >= earliest, Permit.planned_start < latest)
    if plant_ids is not None:
        query = query.where(Permit.plant_id.in_(list(plant_ids)))
    return query


def permits_behind(
    session: Session,
    start: date,
    end: date,
    *,
    plant_ids: Collection[uuid.UUID] | None = None,
    work_type: str | None = None,
    contractor_id: uuid.UUID | None = None,
    limit: int | None = None,
) -> list[PermitFact]:
    """The counted permits behind the figures of those days and filters, each with its
    figures and the gaps that kept it from a full loop; oldest first."""
    query = _permits_between(start, end, plant_ids)
    if work_type is not None:
        query = query.where(Permit.work_type == work_type)
    if contractor_id is not None:
        query = query.where(Permit.contractor_id == contractor_id)
    zones = plant_zones(session)
    facts = [
        fact
        for fact in load_facts(session, query.order_by(Permit.planned_start, Permit.id))
        if start <= local_day(fact.row.planned_start, zones[fact.row.plant_id]) < end
    ]
    return facts[:limit] if limit is not None else facts


@dataclass(frozen=True)
class Board:
    """A plant's dispatch board for its current day."""

    day: date
    permits_by_state: dict[str, int]
    permits_by_type: dict[str, int]
    people_on_site: int
    open_alerts: list[Alert]
    overtime: list[Permit]


LIVE_STATES = (PermitState.ACTIVE.value, PermitState.SUSPENDED.value)


def plant_board(session: Session, plant_id: uuid.UUID, now: datetime) -> Board:
    zone = plant_zones(session)[plant_id]
    today = local_day(now, zone)
    start, end = day_bounds(today, zone)
    today_permits = (
        Permit.plant_id == plant_id,
        Permit.state.not_in((PermitState.DRAFT.value, PermitState.SUPERSEDED.value)),
        Permit.planned_start < end,
        Permit.planned_end >= start,
    )
    by_state = dict(
        session.execute(
            select(Permit.state, func.count()).where(*today_permits).group_by(Permit.state)
        ).all()
    )
    by_type = dict(
        session.execute(
            select(Permit.work_type, func.count()).where(*today_permits).group_by(Permit.work_type)
        ).all()
    )
    on_site = session.scalar(
        select(func.count(func.distinct(WatchMember.user_id)))
        .join(Watch, Watch.id == WatchMember.watch_id)
        .where(
            Watch.plant_id == plant_id,
            Watch.state == WatchState.ACTIVE.value,
            WatchMember.removed_at.is_(None),
            WatchMember.checked_in_at.is_not(None),
            (WatchMember.checked_out_at.is_(None))
            | (WatchMember.checked_out_at < WatchMember.checked_in_at),
        )
    )
    alerts = list(
        session.execute(
            select(Alert)
            .where(Alert.plant_id == plant_id, Alert.state != AlertState.RESOLVED.value)
            .order_by(Alert.opened_at.desc())
            .limit(50)
        ).scalars()
    )
    overtime = list(
        session.execute(
            select(Permit)
            .where(
                Permit.plant_id == plant_id,
                Permit.state.in_(LIVE_STATES),
                Permit.planned_end < now,
            )
            .order_by(Permit.planned_end)
        ).scalars()
    )
    return Board(
        day=today,
        permits_by_state=by_state,
        permits_by_type=by_type,
        people_on_site=on_site or 0,
        open_alerts=alerts,
        overtime=overtime,
    )
