"""The HQ figures per plant-local day, kept as rollups that are rebuilt, never patched.

Every figure of a permit counts on the plant-local day its planned window starts: its approval
time, its alerts and violations, its check-ins and work hours, whether it closed as a full loop.
Alerts and findings that belong to no permit count on their own day. So the rows of one plant
and day depend only on what happened to that day's permits, and rebuilding them from the raw
tables gives the same result however often, however late and in whatever order the events came.

A change marks its day stale in the same transaction (:func:`_mark_stale_days`, a flush hook);
:func:`refresh_stale` rebuilds the stale days, from the beat and before a report reads.

The full loop (SPEC.md, 作业合规率): a finished permit (approved, and now closed, completed,
expired or cancelled) that was approved before work started, whose crew all signed the job
briefing, whose gas was analysed within 30 minutes before the start where the type needs it,
with a check-in recorded, no unresolved alert, completion accepted (closed) and a rating.
Starting work already required every gate to pass, so a started permit passed its gates.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, and_, delete, event, exists, func, insert, inspect, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from geofence.models import Alert, AlertState, CheckIn, CheckMethod
from infra.db import new_id, utcnow
from infra.tenancy import current_tenant_id
from permits.catalogue import GAS_ANALYSED
from permits.models import GasAnalysis, Permit, PermitCrewMember
from permits.states import PermitState
from scoring import sketch
from scoring.models import (
    DailyRollup,
    Finding,
    PlantDailyRollup,
    PlantMonthlyRollup,
    Rating,
    StaleDay,
)
from tenants.models import Plant
from training.models import Briefing, BriefingSignature

# How long before the start a gas sample still counts (GB 30871 §5.3.1c, §6.3a).
GAS_WINDOW = timedelta(minutes=30)

# Applications count from submission on; a superseded version is counted by its successor.
NOT_COUNTED = (PermitState.DRAFT.value, PermitState.SUPERSEDED.value)
FINISHED = (
    PermitState.CLOSED.value,
    PermitState.COMPLETED.value,
    PermitState.EXPIRED.value,
    PermitState.CANCELLED.value,
)


class LoopGap:
    """Why a finished permit is not a full loop; the drill-down shows these."""

    NOT_APPROVED_FIRST = "approved_first"
    BRIEFING = "briefing"
    GAS = "gas"
    CHECK_IN = "check_in"
    OPEN_ALERT = "open_alert"
    NOT_ACCEPTED = "accepted"
    NOT_RATED = "rated"


def _crew_unsigned() -> Any:
    # Correlated through the crew row: naming ``Permit`` here would put a second, uncorrelated
    # ``permits`` into this nested EXISTS, so any briefing of any permit would count.
    signed = exists().where(
        Briefing.id == BriefingSignature.briefing_id,
        Briefing.permit_id == PermitCrewMember.permit_id,
        BriefingSignature.worker_id == PermitCrewMember.worker_id,
    )
    return exists().where(PermitCrewMember.permit_id == Permit.id, ~signed)


def _count(model: Any, *conditions: Any) -> Any:
    return select(func.count()).select_from(model).where(*conditions).scalar_subquery()


def permit_facts() -> Select:
    """One row per counted permit with what its figures are made from."""
    last_gas = (
        select(func.max(GasAnalysis.sampled_at))
        .where(
            GasAnalysis.permit_id == Permit.id,
            GasAnalysis.passed.is_(True),
            GasAnalysis.sampled_at <= Permit.started_at,
        )
        .scalar_subquery()
    )
    permit_alert = Alert.watch_id == Permit.id
    check_in = and_(CheckIn.watch_id == Permit.id, CheckIn.direction == "in")
    return select(
        Permit.id,
        Permit.number,
        Permit.plant_id,
        Permit.work_type,
        Permit.level,
        Permit.contractor_id,
        Permit.state,
        Permit.planned_start,
        Permit.submitted_at,
        Permit.approved_at,
        Permit.started_at,
        Permit.completed_at,
        Permit.closed_at,
        _crew_unsigned().label("crew_unsigned"),
        last_gas.label("last_gas_at"),
        exists().where(check_in).label("checked_in"),
        exists().where(permit_alert, Alert.state != AlertState.RESOLVED.value).label("open_alert"),
        exists().where(Rating.permit_id == Permit.id).label("rated"),
        _count(Alert, permit_alert).label("alerts"),
        _count(Alert, permit_alert, Alert.response_seconds.is_not(None)).label("responses"),
        select(func.coalesce(func.sum(Alert.response_seconds), 0.0))
        .where(permit_alert)
        .scalar_subquery()
        .label("response_seconds"),
        (
            _count(Alert, permit_alert, Alert.violation.is_(True))
            + _count(Finding, Finding.permit_id == Permit.id)
        ).label("violations"),
        _count(CheckIn, check_in).label("checkins"),
        _count(CheckIn, check_in, CheckIn.method == CheckMethod.GPS.value).label("phone_checkins"),
    ).where(Permit.state.not_in(NOT_COUNTED))


@dataclass
class PermitFact:
    row: Any
    work_minutes: float = 0.0

    @property
    def finished(self) -> bool:
        return self.row.approved_at is not None and self.row.state in FINISHED

    @property
    def approval_minutes(self) -> float | None:
        if self.row.approved_at is None or self.row.submitted_at is None:
            return None
        return (self.row.approved_at - self.row.submitted_at).total_seconds() / 60

    def gaps(self) -> list[str]:
        row = self.row
        found = []
        if row.started_at is None or row.approved_at is None or row.started_at < row.approved_at:
            found.append(LoopGap.NOT_APPROVED_FIRST)
        if row.crew_unsigned:
            found.append(LoopGap.BRIEFING)
        if row.work_type in GAS_ANALYSED and (
            row.last_gas_at is None
            or row.started_at is None
            or row.started_at - row.last_gas_at > GAS_WINDOW
        ):
            found.append(LoopGap.GAS)
        if not row.checked_in:
            found.append(LoopGap.CHECK_IN)
        if row.open_alert:
            found.append(LoopGap.OPEN_ALERT)
        if row.state != PermitState.CLOSED.value:
            found.append(LoopGap.NOT_ACCEPTED)
        if not row.rated:
            found.append(LoopGap.NOT_RATED)
        return found

    @property
    def full_loop(self) -> bool:
        return self.finished and not self.gaps()


def _work_minutes(session: Session, facts: Mapping[uuid.UUID, PermitFact], query: Select) -> None:
    """Add up each permit's time on site from its check-ins and check-outs, person by person;
    a check-in never checked out ends when the work was completed, or counts nothing yet."""
    # The permits are named by their query, not by a list of ids: a plant's year is tens of
    # thousands, more than a statement may bind.
    permit_ids = query.with_only_columns(Permit.id).order_by(None)
    rows = session.execute(
        select(CheckIn.watch_id, CheckIn.member_id, CheckIn.direction, CheckIn.at)
        .where(CheckIn.watch_id.in_(permit_ids))
        .order_by(CheckIn.watch_id, CheckIn.member_id, CheckIn.at, CheckIn.direction)
    ).all()
    opened: dict[tuple[uuid.UUID, uuid.UUID], datetime] = {}
    for watch_id, member_id, direction, at in rows:
        key = (watch_id, member_id)
        if direction == "in":
            opened.setdefault(key, at)
        elif key in opened and watch_id in facts:
            facts[watch_id].work_minutes += (at - opened.pop(key)).total_seconds() / 60
    for (watch_id, _member), since in opened.items():
        fact = facts.get(watch_id)
        end = None if fact is None else fact.row.completed_at or fact.row.closed_at
        if fact is not None and end is not None and end > since:
            fact.work_minutes += (end - since).total_seconds() / 60


def load_facts(session: Session, query: Select) -> list[PermitFact]:
    facts = {row.id: PermitFact(row) for row in session.execute(query).all()}
    if facts:
        _work_minutes(session, facts, query)
    return list(facts.values())


def day_bounds(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The UTC instants where a plant-local day starts and the next one starts."""
    start = datetime.combine(day, time.min, zone).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time.min, zone).astimezone(UTC)
    return start, end


def utc_margin(start: date, end: date) -> tuple[datetime, datetime]:
    """UTC instants a day beyond the days ``start`` up to ``end`` on each side: wide enough for
    any plant's zone, so the exact plant-local test can run on what they select."""
    margin = timedelta(days=1)
    return (
        datetime.combine(start, time.min, UTC) - margin,
        datetime.combine(end, time.min, UTC) + margin,
    )


def local_day(moment: datetime, zone: ZoneInfo) -> date:
    return moment.astimezone(zone).date()


@dataclass
class Measures:
    permits: int = 0
    finished: int = 0
    full_loop: int = 0
    approvals: int = 0
    approval_minutes: float = 0.0
    approval_histogram: list[int] = field(default_factory=lambda: [0] * sketch.BUCKETS)
    alerts: int = 0
    responses: int = 0
    response_minutes: float = 0.0
    violations: int = 0
    work_minutes: float = 0.0
    checkins: int = 0
    phone_checkins: int = 0

    def add_permit(self, fact: PermitFact) -> None:
        row = fact.row
        self.permits += 1
        if fact.finished:
            self.finished += 1
            self.full_loop += fact.full_loop
        minutes = fact.approval_minutes
        if minutes is not None:
            self.approvals += 1
            self.approval_minutes += minutes
            self.approval_histogram[sketch.bucket_of(minutes)] += 1
        self.alerts += row.alerts
        self.responses += row.responses
        self.response_minutes += row.response_seconds / 60
        self.violations += row.violations
        self.work_minutes += fact.work_minutes
        self.checkins += row.checkins
        self.phone_checkins += row.phone_checkins

    def add(self, other: Measures | Any) -> None:
        """Add another set of measures, or a rollup row, to this one."""
        for name in MEASURE_NAMES:
            if name == "approval_histogram":
                self.approval_histogram = sketch.merge(
                    (self.approval_histogram, getattr(other, name) or ())
                )
            else:
                setattr(self, name, getattr(self, name) + getattr(other, name))

    def as_columns(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in MEASURE_NAMES}

    @property
    def empty(self) -> bool:
        return not (self.permits or self.alerts or self.violations)


MEASURE_NAMES = (
    "permits",
    "finished",
    "full_loop",
    "approvals",
    "approval_minutes",
    "approval_histogram",
    "alerts",
    "responses",
    "response_minutes",
    "violations",
    "work_minutes",
    "checkins",
    "phone_checkins",
)

GroupKey = tuple[date, str, uuid.UUID | None]


def _measures_of_days(
    session: Session, plant_id: uuid.UUID, days: Collection[date], zone: ZoneInfo
) -> dict[GroupKey, Measures]:
    """The measures of one plant's days, from one pass over the raw rows of their span."""
    start = day_bounds(min(days), zone)[0]
    end = day_bounds(max(days), zone)[1]
    groups: dict[GroupKey, Measures] = defaultdict(Measures)

    def day_of(moment: datetime) -> date | None:
        day = local_day(moment, zone)
        return day if day in days else None

    query = permit_facts().where(
        Permit.plant_id == plant_id, Permit.planned_start >= start, Permit.planned_start < end
    )
    for fact in load_facts(session, query):
        day = day_of(fact.row.planned_start)
        if day is not None:
            groups[(day, fact.row.work_type, fact.row.contractor_id)].add_permit(fact)
    for alert in session.execute(
        select(Alert.opened_at, Alert.response_seconds, Alert.violation).where(
            Alert.plant_id == plant_id,
            Alert.watch_id.is_(None),
            Alert.opened_at >= start,
            Alert.opened_at < end,
        )
    ).all():
        day = day_of(alert.opened_at)
        if day is None:
            continue
        measures = groups[(day, "", None)]
        measures.alerts += 1
        if alert.response_seconds is not None:
            measures.responses += 1
            measures.response_minutes += alert.response_seconds / 60
        measures.violations += alert.violation
    for observed_at, contractor_id in session.execute(
        select(Finding.observed_at, Finding.contractor_id).where(
            Finding.plant_id == plant_id,
            Finding.permit_id.is_(None),
            Finding.observed_at >= start,
            Finding.observed_at < end,
        )
    ).all():
        day = day_of(observed_at)
        if day is not None:
            groups[(day, "", contractor_id)].violations += 1
    return {key: measures for key, measures in groups.items() if not measures.empty}


def rebuild_days(
    session: Session, plant_id: uuid.UUID, days: Collection[date], zone: ZoneInfo
) -> None:
    """Replace the rollup rows of one plant's plant-local days with what the raw tables say."""
    days = set(days)
    if not days:
        return
    groups = _measures_of_days(session, plant_id, days, zone)
    for model in (DailyRollup, PlantDailyRollup):
        session.execute(delete(model).where(model.plant_id == plant_id, model.day.in_(days)))
    tenant_id = current_tenant_id()
    totals: dict[date, Measures] = defaultdict(Measures)
    companies: dict[date, set[str]] = defaultdict(set)
    rows = []
    for (day, work_type, contractor_id), measures in groups.items():
        totals[day].add(measures)
        if contractor_id is not None:
            companies[day].add(str(contractor_id))
        rows.append(
            {
                "tenant_id": tenant_id,
                "day": day,
                "plant_id": plant_id,
                "work_type": work_type,
                "contractor_id": contractor_id,
                **measures.as_columns(),
            }
        )
    # One short statement run for many rows: as ORM objects they went out as multi-row VALUES
    # whose parameters psycopg rewrites in Python, most of the time of a plant's year.
    for model, values in (
        (DailyRollup, rows),
        (
            PlantDailyRollup,
            [
                {
                    "tenant_id": tenant_id,
                    "day": day,
                    "plant_id": plant_id,
                    "contractor_ids": sorted(companies[day]),
                    **m.as_columns(),
                }
                for day, m in totals.items()
            ],
        ),
    ):
        if values:
            session.execute(insert(model.__table__), values)
    _rebuild_months(session, plant_id, {month_of(day) for day in days})


def month_of(day: date) -> date:
    return day.replace(day=1)


def next_month(month: date) -> date:
    return (month.replace(day=28) + timedelta(days=4)).replace(day=1)


def _rebuild_months(session: Session, plant_id: uuid.UUID, months: Collection[date]) -> None:
    """Replace the plant's rows of those months with the sum of their daily rows."""
    model = PlantDailyRollup
    totals: dict[date, Measures] = defaultdict(Measures)
    companies: dict[date, set[str]] = defaultdict(set)
    rows = session.execute(
        select(
            model.day, model.contractor_ids, *(getattr(model, name) for name in MEASURE_NAMES)
        ).where(
            model.plant_id == plant_id,
            model.day >= min(months),
            model.day < next_month(max(months)),
        )
    ).all()
    for row in rows:
        month = month_of(row.day)
        if month in months:
            totals[month].add(row)
            companies[month].update(row.contractor_ids)
    session.execute(
        delete(PlantMonthlyRollup).where(
            PlantMonthlyRollup.plant_id == plant_id, PlantMonthlyRollup.month.in_(months)
        )
    )
    tenant_id = current_tenant_id()
    values = [
        {
            "tenant_id": tenant_id,
            "month": month,
            "plant_id": plant_id,
            "contractor_ids": sorted(companies[month]),
            **measures.as_columns(),
        }
        for month, measures in totals.items()
    ]
    if values:
        session.execute(insert(PlantMonthlyRollup.__table__), values)


def month_mismatches(
    session: Session, start: date, end: date
) -> list[tuple[uuid.UUID, date, str, Any, Any]]:
    """Where a monthly row of the months wholly within ``start`` up to ``end`` is not the sum of
    its daily rows: (plant, month, measure, sum of the days, the month's row)."""
    first, last = whole_months(start, end)
    if first >= last:
        return []
    by_days: dict[tuple[uuid.UUID, date], Measures] = defaultdict(Measures)
    daily = PlantDailyRollup
    for row in session.execute(
        select(daily.plant_id, daily.day, *(getattr(daily, name) for name in MEASURE_NAMES)).where(
            daily.day >= first, daily.day < last
        )
    ).all():
        by_days[row.plant_id, month_of(row.day)].add(row)
    by_month: dict[tuple[uuid.UUID, date], Measures] = defaultdict(Measures)
    monthly = PlantMonthlyRollup
    for row in session.execute(
        select(monthly).where(monthly.month >= first, monthly.month < last)
    ).scalars():
        by_month[row.plant_id, row.month].add(row)
    found = []
    for key in sorted(by_days.keys() | by_month.keys(), key=lambda key: (key[1], str(key[0]))):
        days, month = by_days[key], by_month[key]
        for name in MEASURE_NAMES:
            summed, kept = getattr(days, name), getattr(month, name)
            if summed != kept and not (
                isinstance(summed, float) and abs(summed - kept) <= 1e-6 * max(1.0, abs(summed))
            ):
                found.append((*key, name, summed, kept))
    return found


def whole_months(start: date, end: date) -> tuple[date, date]:
    """The calendar months lying wholly within ``start`` up to ``end`` (exclusive), as the first
    day of the first and of the one after the last; empty when first ≥ last."""
    first = start if start.day == 1 else next_month(month_of(start))
    return first, month_of(end)


def plant_zones(session: Session) -> dict[uuid.UUID, ZoneInfo]:
    return {
        plant_id: ZoneInfo(name)
        for plant_id, name in session.execute(select(Plant.id, Plant.timezone)).all()
    }


def refresh_stale(session: Session, *, limit: int | None = None) -> int:
    """Rebuild the current tenant's stale days; returns how many. Days another transaction is
    rebuilding are left to it; a day marked again while it was rebuilt stays stale."""
    query = select(StaleDay.id, StaleDay.plant_id, StaleDay.day, StaleDay.generation).order_by(
        StaleDay.day
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    if limit is not None:
        query = query.limit(limit)
    stale = session.execute(query).all()
    if not stale:
        return 0
    zones = plant_zones(session)
    by_plant: dict[uuid.UUID, set[date]] = defaultdict(set)
    for row in stale:
        by_plant[row.plant_id].add(row.day)
    for plant_id, days in by_plant.items():
        rebuild_days(session, plant_id, days, zones[plant_id])
    for row in stale:
        session.execute(
            delete(StaleDay).where(StaleDay.id == row.id, StaleDay.generation == row.generation)
        )
    return len(stale)


def rebuild_range(session: Session, start: date, end: date) -> int:
    """Rebuild every plant's days from ``start`` up to ``end`` (exclusive), e.g. after an import
    or a change of definitions; returns how many plant-days."""
    days = {start + timedelta(days=n) for n in range((end - start).days)}
    zones = plant_zones(session)
    for plant_id, zone in zones.items():
        rebuild_days(session, plant_id, days, zone)
    return len(days) * len(zones)


# --- Marking days stale ----------------------------------------------------------------------

WATCHED = (Permit, Alert, CheckIn, Rating, Finding)


def _instants(obj: Any) -> Iterator[tuple[str, Any]]:
    """What an object's day depends on: ("permit", id) or ("plant", (plant_id, instant)),
    including the values it had before this flush, so a moved window marks both days."""
    state = inspect(obj)
    if isinstance(obj, Permit):
        for value in _current_and_previous(state, "planned_start"):
            yield "plant", (obj.plant_id, value)
    elif isinstance(obj, Alert):
        if obj.watch_id is not None:
            yield "permit", obj.watch_id
        else:
            yield "plant", (obj.plant_id, obj.opened_at)
    elif isinstance(obj, CheckIn):
        yield "permit", obj.watch_id
    elif isinstance(obj, Rating):
        yield "permit", obj.permit_id
    elif isinstance(obj, Finding):
        for value in _current_and_previous(state, "permit_id"):
            if value is not None:
                yield "permit", value
        if obj.permit_id is None or state.attrs.permit_id.history.deleted:
            yield "plant", (obj.plant_id, obj.observed_at)


def _current_and_previous(state: Any, attribute: str) -> Iterable[Any]:
    history = state.attrs[attribute].history
    values = [*history.added, *history.unchanged, *history.deleted]
    return values or [state.attrs[attribute].value]


def _mark_stale_days(session: Session, _context: Any) -> None:
    changed = [obj for obj in (*session.new, *session.deleted) if isinstance(obj, WATCHED)]
    changed += [
        obj for obj in session.dirty if isinstance(obj, WATCHED) and session.is_modified(obj)
    ]
    if not changed:
        return
    by_tenant: dict[uuid.UUID, tuple[set[uuid.UUID], set[tuple[uuid.UUID, datetime]]]] = (
        defaultdict(lambda: (set(), set()))
    )
    for obj in changed:
        permits, instants = by_tenant[obj.tenant_id]
        for kind, value in _instants(obj):
            if kind == "permit":
                permits.add(value)
            elif value[1] is not None:
                instants.add(value)
    connection = session.connection()
    for tenant_id, (permit_ids, instants) in by_tenant.items():
        if permit_ids:
            instants |= set(
                connection.execute(
                    select(Permit.plant_id, Permit.planned_start).where(
                        Permit.tenant_id == tenant_id, Permit.id.in_(permit_ids)
                    )
                ).all()
            )
        if not instants:
            continue
        zones = {
            plant_id: ZoneInfo(name)
            for plant_id, name in connection.execute(
                select(Plant.id, Plant.timezone).where(
                    Plant.tenant_id == tenant_id,
                    Plant.id.in_({plant_id for plant_id, _ in instants}),
                )
            ).all()
        }
        days = {
            (plant_id, local_day(moment, zones[plant_id]))
            for plant_id, moment in instants
            if plant_id in zones
        }
        _upsert_stale(connection, tenant_id, days)


def _upsert_stale(connection: Any, tenant_id: uuid.UUID, days: set[tuple[uuid.UUID, date]]) -> None:
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    now = utcnow()
    rows = [
        {
            "tenant_id": tenant_id,
            "id": new_id(),
            "plant_id": plant_id,
            "day": day,
            "generation": 1,
            "created_at": now,
            "updated_at": now,
        }
        for plant_id, day in sorted(days)
    ]
    statement = dialect.insert(StaleDay).values(rows)
    table = StaleDay.__table__
    connection.execute(
        statement.on_conflict_do_update(
            index_elements=[table.c.tenant_id, table.c.plant_id, table.c.day],
            set_={"generation": table.c.generation + 1, "updated_at": now},
        )
    )


event.listen(Session, "after_flush", _mark_stale_days)
