"""Supervised jobs on site: whom the engine watches where and when, their check-ins, the pings
their phones send, and the sweep that notices what pings cannot (silence, an absent guardian,
people still inside after the end).

The permits package describes each started permit as a :class:`WatchSpec` and hands it to
:func:`sync_watch` whenever the permit changes; nothing here reads permits.

Ingestion checks each ping on its own (bad ones are reported, good ones kept), stores each ping
once (the phone's id and time are the key; a replayed batch finds its pings already there), runs
the engine over the batch at once, and moves each person's state on from where the previous
batch left it. On PostgreSQL the rows go in with ``COPY``; should a concurrent request have
stored some of the same pings meanwhile, the batch falls back to ``INSERT … ON CONFLICT DO
NOTHING``, so the key, not timing, keeps each ping once.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import msgspec
import numpy as np
from sqlalchemy import Select, Uuid, any_, bindparam, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from geofence import alerts, engine
from geofence.alerts import Sighting
from geofence.models import (
    AlertKind,
    CheckIn,
    CheckMethod,
    GeofencePolicy,
    MemberRole,
    Ping,
    Watch,
    WatchMember,
    WatchState,
    Zone,
    ZoneKind,
)
from geofence.schemas import (
    CheckInIn,
    GpsCheckIn,
    IngestReport,
    PingIn,
    PolicyIn,
    RejectedPing,
    WatchVerdict,
)
from geofence.services import contains
from infra import audit
from infra.db import CONNECTION_LOST, dialect_insert, utcnow
from infra.errors import Conflict, InvalidInput, NotFound
from infra.i18n import N_, gettext
from infra.qr import VERIFICATION_PATH, read_verification_token
from infra.security import InvalidSignedToken
from infra.settings import Settings
from infra.tenancy import current_tenant_id
from tenants.models import User
from tenants.validation import problem_from_msgspec

WATCH_NOT_FOUND = N_("You are not on this job.")
# Pings are attributed to a job from a while before its window (people arrive early) until well
# after it (people who stay are what the overstay alert is for).
EARLY_ARRIVAL = timedelta(hours=2)
LATE_STAY = timedelta(hours=12)
# A GPS check-in with a fix worse than this proves nothing about where the phone is.
CHECK_IN_MAX_ACCURACY_M = 100.0


@dataclass(frozen=True)
class Person:
    user_id: uuid.UUID
    worker_id: uuid.UUID | None
    name: str
    role: MemberRole


@dataclass(frozen=True)
class WatchSpec:
    id: uuid.UUID
    plant_id: uuid.UUID
    zone_id: uuid.UUID
    label: str
    starts_at: datetime
    ends_at: datetime
    state: WatchState
    people: Sequence[Person]


@dataclass(frozen=True)
class Policy:
    dwell_s: int = 60
    no_signal_minutes: int = 10
    max_speed_mps: float = 15.0
    guardian_absent_minutes: int = 5
    overstay_grace_minutes: int = 0

    @property
    def thresholds(self) -> engine.Thresholds:
        return engine.Thresholds(dwell_s=float(self.dwell_s), max_speed_mps=self.max_speed_mps)


def _policy_of(row: GeofencePolicy | None) -> Policy:
    if row is None:
        return Policy()
    return Policy(
        dwell_s=row.dwell_s,
        no_signal_minutes=row.no_signal_minutes,
        max_speed_mps=row.max_speed_mps,
        guardian_absent_minutes=row.guardian_absent_minutes,
        overstay_grace_minutes=row.overstay_grace_minutes,
    )


def policy(session: Session) -> Policy:
    return _policy_of(session.scalar(select(GeofencePolicy)))


async def get_policy(session: AsyncSession) -> Policy:
    return _policy_of(await session.scalar(select(GeofencePolicy)))


async def save_policy(session: AsyncSession, data: PolicyIn, *, actor_id: uuid.UUID) -> Policy:
    row = await session.scalar(select(GeofencePolicy))
    if row is None:
        row = GeofencePolicy()
        session.add(row)
    for name in msgspec.structs.asdict(data):
        setattr(row, name, getattr(data, name))
    await session.flush()
    await audit.record(
        session,
        action="geofence.policy_changed",
        subject_type="geofence_policy",
        subject_id=row.id,
        actor_id=actor_id,
        payload=msgspec.structs.asdict(data),
    )
    return _policy_of(row)


def sync_watch(session: Session, spec: WatchSpec, now: datetime) -> Watch:
    """Make the watch say what the spec says: window, state and people. People no longer named
    are kept (their check-ins and pings stay on the timeline) but marked removed."""
    watch = session.scalar(select(Watch).where(Watch.id == spec.id))
    if watch is None:
        watch = Watch(id=spec.id)
        session.add(watch)
    watch.plant_id = spec.plant_id
    watch.zone_id = spec.zone_id
    watch.label = spec.label
    watch.starts_at = spec.starts_at
    watch.ends_at = spec.ends_at
    if watch.state != spec.state.value:
        watch.state = spec.state.value
        watch.closed_at = now if spec.state is WatchState.CLOSED else None
    session.flush()
    members = {
        member.user_id: member
        for member in session.scalars(select(WatchMember).where(WatchMember.watch_id == spec.id))
    }
    named: dict[uuid.UUID, Person] = {}
    for person in spec.people:
        # A guardian who is also on the crew is watched as the guardian.
        if person.user_id not in named or person.role is MemberRole.GUARDIAN:
            named[person.user_id] = person
    for person in named.values():
        member = members.get(person.user_id)
        if member is None:
            member = WatchMember(watch_id=spec.id, user_id=person.user_id)
            session.add(member)
        member.worker_id = person.worker_id
        member.name = person.name
        member.role = person.role.value
        member.removed_at = None
    for user_id, member in members.items():
        if user_id not in named and member.removed_at is None:
            member.removed_at = now
    session.flush()
    return watch


def _people_on_jobs() -> Select[tuple[Watch, WatchMember, Zone]]:
    """Each person still named on a watched job, with the job and its zone."""
    return (
        select(Watch, WatchMember, Zone)
        .join(WatchMember, WatchMember.watch_id == Watch.id)
        .join(Zone, Zone.id == Watch.zone_id)
        .where(WatchMember.removed_at.is_(None))
    )


@dataclass(frozen=True)
class MyWatch:
    watch_id: uuid.UUID
    label: str
    zone_id: uuid.UUID
    zone_name: str
    zone_kind: str
    geometry: dict[str, Any]
    radius_m: float | None
    buffer_m: float
    starts_at: datetime
    ends_at: datetime
    state: str
    role: str
    checked_in_at: datetime | None
    checked_out_at: datetime | None
    inside: bool | None
    last_seen_at: datetime | None


def is_checked_in(member: WatchMember) -> bool:
    return member.checked_in_at is not None and (
        member.checked_out_at is None or member.checked_out_at < member.checked_in_at
    )


async def my_watches(session: AsyncSession, user_id: uuid.UUID, now: datetime) -> list[MyWatch]:
    """The jobs a person is on now: running or paused, or ended while they are still checked
    in."""
    rows = await session.execute(
        _people_on_jobs()
        .where(
            WatchMember.user_id == user_id,
            Watch.ends_at > now - LATE_STAY,
        )
        .order_by(Watch.starts_at)
    )
    return [
        MyWatch(
            watch_id=watch.id,
            label=watch.label,
            zone_id=zone.id,
            zone_name=zone.name,
            zone_kind=zone.kind,
            geometry=zone.geometry,
            radius_m=zone.radius_m,
            buffer_m=zone.buffer_m,
            starts_at=watch.starts_at,
            ends_at=watch.ends_at,
            state=watch.state,
            role=member.role,
            checked_in_at=member.checked_in_at,
            checked_out_at=member.checked_out_at,
            inside=member.inside,
            last_seen_at=member.last_seen_at,
        )
        for watch, member, zone in rows
        if watch.state != WatchState.CLOSED.value or is_checked_in(member)
    ]


async def _member(
    session: AsyncSession, user_id: uuid.UUID, watch_id: uuid.UUID
) -> tuple[Watch, WatchMember, Zone]:
    row = (
        await session.execute(
            _people_on_jobs()
            .where(Watch.id == watch_id, WatchMember.user_id == user_id)
            .with_for_update(of=WatchMember)
        )
    ).first()
    if row is None:
        raise NotFound(WATCH_NOT_FOUND)
    return row[0], row[1], row[2]


def _scanned_token(scanned: str) -> str:
    """The token in a scanned permit QR code: the code holds the verification link."""
    token = scanned.strip()
    if VERIFICATION_PATH in token:
        token = token.split(VERIFICATION_PATH, 1)[1]
    return token.split("?", 1)[0].split("#", 1)[0].strip("/")


def _check_qr(settings: Settings, scanned: str, watch: Watch) -> None:
    try:
        ref = read_verification_token(settings, _scanned_token(scanned))
    except InvalidSignedToken:
        raise InvalidInput("token", "signature", N_("This is not a permit's QR code.")) from None
    if (
        ref.tenant_id != current_tenant_id()
        or ref.subject_type != "permit"
        or ref.subject_id != watch.id
    ):
        raise InvalidInput("token", "permit", N_("This QR code belongs to another permit."))


async def check_in(
    session: AsyncSession,
    settings: Settings,
    user_id: uuid.UUID,
    watch_id: uuid.UUID,
    data: CheckInIn,
    now: datetime,
) -> WatchMember:
    """Check in on site: by a GPS fix inside the job's zone, or by scanning the permit's QR code
    posted there."""
    watch, member, zone = await _member(session, user_id, watch_id)
    if watch.state != WatchState.ACTIVE.value:
        raise Conflict("watch", "active", N_("The work is not running; check in once it is."))
    if is_checked_in(member):
        raise Conflict("member", "checked_out", N_("You are already checked in."))
    latitude = longitude = accuracy = None
    if isinstance(data, GpsCheckIn):
        if data.accuracy_m > CHECK_IN_MAX_ACCURACY_M:
            raise InvalidInput(
                "accuracy_m",
                "maximum",
                N_("The position is too imprecise (at most %(limit)s m); wait for a better fix."),
                limit=int(CHECK_IN_MAX_ACCURACY_M),
            )
        if not contains(zone, data.latitude, data.longitude, data.accuracy_m):
            raise Conflict("latitude", "inside_zone", N_("The position is outside the job's zone."))
        latitude, longitude, accuracy = data.latitude, data.longitude, data.accuracy_m
        # The fix places the person, but pings keep the clock: a phone's queued pings taken a
        # little before the server's "now" must still count.
        member.inside = True
        member.outside_since = None
        member.last_latitude, member.last_longitude = latitude, longitude
        member.last_accuracy_m = accuracy
        method = CheckMethod.GPS
    else:
        _check_qr(settings, data.token, watch)
        method = CheckMethod.QR
    member.checked_in_at = now
    member.checked_out_at = None
    await _checked(session, watch, member, "in", method, now, latitude, longitude, accuracy)
    return member


async def check_out(
    session: AsyncSession, user_id: uuid.UUID, watch_id: uuid.UUID, now: datetime
) -> WatchMember:
    watch, member, _zone = await _member(session, user_id, watch_id)
    if not is_checked_in(member):
        raise Conflict("member", "checked_in", N_("You are not checked in."))
    member.checked_out_at = now
    await _checked(
        session, watch, member, "out", CheckMethod.GPS, now, None, None, None, manual=True
    )
    return member


async def _checked(
    session: AsyncSession,
    watch: Watch,
    member: WatchMember,
    direction: str,
    method: CheckMethod,
    now: datetime,
    latitude: float | None,
    longitude: float | None,
    accuracy: float | None,
    *,
    manual: bool = False,
) -> None:
    event = CheckIn(
        watch_id=watch.id,
        member_id=member.id,
        direction=direction,
        method=method.value,
        at=now,
        latitude=latitude,
        longitude=longitude,
        accuracy_m=accuracy,
    )
    session.add(event)
    await session.flush()
    payload: dict[str, Any] = {
        "watch_id": watch.id,
        "label": watch.label,
        "user_id": member.user_id,
        "role": member.role,
        "at": now,
    }
    if not manual:
        payload |= {"method": method.value, "latitude": latitude, "longitude": longitude}
    await audit.record(
        session,
        action=f"watch.checked_{direction}",
        subject_type="watch",
        subject_id=watch.id,
        actor_id=member.user_id,
        payload=payload,
    )


# Ingestion -------------------------------------------------------------------------------------


@dataclass
class _Good:
    index: int
    ping: PingIn
    watch: Watch | None = None
    member: WatchMember | None = None
    zone: Zone | None = None
    inside: bool | None = None


@dataclass
class _Context:
    watches: dict[uuid.UUID, tuple[Watch, WatchMember, Zone]]
    zones_by_plant: dict[uuid.UUID, list[Zone]]
    restricted_by_plant: dict[uuid.UUID, list[Zone]]
    person: str
    policy: Policy


def _reject(
    index: int, raw: Any, field: str, rule: str, message: str, **params: Any
) -> RejectedPing:
    ping_id = raw.get("id") if isinstance(raw, dict) else None
    return RejectedPing(
        index=index,
        id=str(ping_id)[:64] if ping_id is not None else None,
        field=field,
        rule=rule,
        message=gettext(message, **params),
    )


def _validate(
    raw: Sequence[Any], settings: Settings, now: datetime
) -> tuple[list[_Good], list[RejectedPing], int]:
    good: list[_Good] = []
    rejected: list[RejectedPing] = []
    seen: set[tuple[uuid.UUID, datetime]] = set()
    repeated = 0
    oldest = now - timedelta(hours=settings.ping_offline_window_hours)
    latest = now + timedelta(seconds=settings.ping_future_skew_seconds)
    for index, item in enumerate(raw):
        try:
            ping = msgspec.convert(item, PingIn)
        except msgspec.ValidationError as exc:
            problem = problem_from_msgspec(str(exc))
            rejected.append(
                _reject(index, item, problem.field, problem.rule, problem.message, **problem.params)
            )
            continue
        if ping.device_time > latest:
            rejected.append(
                _reject(
                    index,
                    item,
                    "device_time",
                    "future",
                    N_("The phone's clock is ahead of the server's; the time is in the future."),
                )
            )
            continue
        if ping.device_time < oldest:
            rejected.append(
                _reject(
                    index,
                    item,
                    "device_time",
                    "offline_window",
                    N_("Older than %(hours)s hours; positions that old are no longer accepted."),
                    hours=settings.ping_offline_window_hours,
                )
            )
            continue
        key = (ping.id, ping.device_time)
        if key in seen:
            repeated += 1
            continue
        seen.add(key)
        good.append(_Good(index, ping))
    return good, rejected, repeated


async def _context(session: AsyncSession, user_id: uuid.UUID, now: datetime) -> _Context:
    rows = await session.execute(
        _people_on_jobs()
        .where(
            WatchMember.user_id == user_id,
            Watch.ends_at > now - LATE_STAY - timedelta(hours=72),
        )
        .with_for_update(of=WatchMember)
    )
    watches = {watch.id: (watch, member, zone) for watch, member, zone in rows}
    plants = {watch.plant_id for watch, _member, _zone in watches.values()}
    zones_by_plant: dict[uuid.UUID, list[Zone]] = {}
    # A person on no job is still kept out of restricted zones, on whichever plant they are.
    restricted_by_plant: dict[uuid.UUID, list[Zone]] = {}
    wanted = Zone.kind == ZoneKind.RESTRICTED.value
    if plants:
        wanted = wanted | Zone.plant_id.in_(plants)
    for zone in (
        await session.execute(select(Zone).where(Zone.retired_at.is_(None), wanted))
    ).scalars():
        if zone.plant_id in plants:
            zones_by_plant.setdefault(zone.plant_id, []).append(zone)
        if zone.kind == ZoneKind.RESTRICTED.value:
            restricted_by_plant.setdefault(zone.plant_id, []).append(zone)
    row = await session.scalar(select(GeofencePolicy))
    return _Context(watches, zones_by_plant, restricted_by_plant, "", _policy_of(row))


def _attribute(good: Sequence[_Good], context: _Context) -> list[RejectedPing]:
    """Give each ping its job: the one the phone named (it must be the person's), else the one
    whose window (with arrival and overstay margins) holds the ping's time."""
    rejected: list[RejectedPing] = []
    # Each job's window read once, not once a ping.
    windows = [
        (watch.starts_at - EARLY_ARRIVAL, watch.ends_at + LATE_STAY, (watch, member, zone))
        for watch, member, zone in context.watches.values()
        if watch.state != WatchState.CLOSED.value or is_checked_in(member)
    ]
    for item in good:
        named = item.ping.watch_id
        if named is not None:
            found = context.watches.get(named)
            if found is None:
                rejected.append(
                    _reject(item.index, {"id": item.ping.id}, "watch_id", "member", WATCH_NOT_FOUND)
                )
                continue
            item.watch, item.member, item.zone = found
            continue
        at = item.ping.device_time
        for opens, closes, found in windows:
            if opens <= at <= closes:
                item.watch, item.member, item.zone = found
                break
    return rejected


_index_cache: dict[tuple[Any, ...], engine.ZoneIndex] = {}
_INDEX_CACHE_SIZE = 256


def _zone_index(zones: Sequence[Zone]) -> engine.ZoneIndex:
    """The plant's prepared zones, rebuilt only when a zone changed."""
    key = tuple(sorted((zone.id, zone.updated_at) for zone in zones))
    index = _index_cache.get(key)
    if index is None:
        if len(_index_cache) >= _INDEX_CACHE_SIZE:
            _index_cache.clear()
        index = engine.ZoneIndex(
            [
                engine.ZoneShape(
                    id=zone.id,
                    kind=zone.kind,
                    geometry=zone.geometry,
                    radius_m=zone.radius_m,
                    buffer_m=zone.buffer_m,
                )
                for zone in zones
            ]
        )
        _index_cache[key] = index
    return index


@dataclass(frozen=True, slots=True)
class _Job:
    zone_id: uuid.UUID | None
    buffer_m: float
    checked_in: bool
    running: bool
    overstay_after: datetime


def _track_state(member: WatchMember) -> engine.TrackState:
    return engine.TrackState(
        inside=member.inside,
        outside_since=member.outside_since,
        last_at=member.last_seen_at,
        last_latitude=member.last_latitude,
        last_longitude=member.last_longitude,
    )


def _sighting(
    kind: AlertKind, plant_id: uuid.UUID, item: _Good, user_id: uuid.UUID, **facts: Any
) -> Sighting:
    assert item.watch is not None and item.member is not None and item.zone is not None
    return Sighting(
        kind=kind,
        plant_id=plant_id,
        at=item.ping.device_time,
        watch_id=item.watch.id,
        user_id=user_id,
        person=item.member.name,
        label=item.watch.label,
        zone_id=item.zone.id,
        zone_name=item.zone.name,
        latitude=item.ping.latitude,
        longitude=item.ping.longitude,
        **facts,
    )


def _evaluate(good: Sequence[_Good], context: _Context, user_id: uuid.UUID) -> list[Sighting]:
    """Run the engine over the batch, move each person's state on, and say what was seen."""
    sightings: list[Sighting] = []
    thresholds = context.policy.thresholds
    grace = timedelta(minutes=context.policy.overstay_grace_minutes)
    by_plant: dict[uuid.UUID, list[_Good]] = {}
    for item in good:
        if item.watch is not None:
            by_plant.setdefault(item.watch.plant_id, []).append(item)
    sightings.extend(_trespasses([item for item in good if item.watch is None], context, user_id))
    own_zones = {watch.zone_id for watch, _member, _zone in context.watches.values()}
    for plant_id, items in by_plant.items():
        zones = context.zones_by_plant.get(plant_id, [])
        zone_names = {zone.id: zone.name for zone in zones}
        items.sort(key=lambda item: item.ping.device_time)
        # What each job contributes to a ping's verdict, read from the mapped objects once a
        # batch rather than once a ping: reading a mapped attribute costs far more than a local.
        jobs = {
            watch.id: _Job(
                zone_id=zone.id if zone.retired_at is None else None,
                buffer_m=zone.buffer_m,
                checked_in=is_checked_in(member),
                running=watch.state == WatchState.ACTIVE.value,
                overstay_after=watch.ends_at + grace,
            )
            for watch, member, zone in context.watches.values()
        }
        batch = engine.evaluate(
            _zone_index(zones),
            [
                engine.PingInput(
                    key=item.watch.id,  # type: ignore[union-attr]
                    zone_id=jobs[item.watch.id].zone_id,  # type: ignore[union-attr]
                    at=item.ping.device_time,
                    latitude=item.ping.latitude,
                    longitude=item.ping.longitude,
                    accuracy_m=item.ping.accuracy_m,
                    mock=item.ping.mock,
                )
                for item in items
            ],
        )
        # The person's state runs through the batch in a local and is written back once.
        states: dict[uuid.UUID, tuple[WatchMember, engine.TrackState, float | None]] = {}
        for position, item in enumerate(items):
            watch, member = item.watch, item.member
            assert watch is not None and member is not None
            job = jobs[watch.id]
            ping = item.ping
            for restricted in batch.restricted_zones[position] - own_zones:
                sightings.append(
                    replace(
                        _sighting(AlertKind.RESTRICTED_ZONE, plant_id, item, user_id),
                        watch_id=None,
                        label=None,
                        zone_id=restricted,
                        zone_name=zone_names.get(restricted),
                    )
                )
            distance = float(batch.signed_distances[position])
            if math.isnan(distance):
                continue
            known = states.get(member.id)
            state = known[1] if known else _track_state(member)
            step = engine.advance(
                state,
                at=ping.device_time,
                latitude=ping.latitude,
                longitude=ping.longitude,
                accuracy_m=ping.accuracy_m,
                signed_distance_m=distance,
                buffer_m=job.buffer_m,
                mock=ping.mock,
                thresholds=thresholds,
            )
            if step.implausible:
                sightings.append(
                    _sighting(
                        AlertKind.IMPLAUSIBLE_MOVEMENT,
                        plant_id,
                        item,
                        user_id,
                        details={"speed_mps": step.speed_mps, "mock": ping.mock},
                    )
                )
                # A spoofed or jumping fix does not move the person.
                item.inside = state.inside
                continue
            if step.state.last_at != ping.device_time:
                item.inside = None
                continue
            item.inside = step.state.inside
            states[member.id] = (member, step.state, ping.accuracy_m)
            if step.transition is engine.Transition.LEFT and job.checked_in and job.running:
                sightings.append(_sighting(AlertKind.LEFT_ZONE, plant_id, item, user_id))
            if step.state.inside and job.checked_in and ping.device_time > job.overstay_after:
                sightings.append(_sighting(AlertKind.OVERSTAY, plant_id, item, user_id))
        for member, state, accuracy in states.values():
            member.inside = state.inside
            member.outside_since = state.outside_since
            member.last_seen_at = state.last_at
            member.last_latitude, member.last_longitude = state.last_latitude, state.last_longitude
            member.last_accuracy_m = accuracy
    return sightings


def _trespasses(
    unwatched: Sequence[_Good], context: _Context, user_id: uuid.UUID
) -> list[Sighting]:
    """Pings of a person on no job that lie confidently inside a restricted zone."""
    if not unwatched:
        return []
    latitudes = np.array([item.ping.latitude for item in unwatched])
    longitudes = np.array([item.ping.longitude for item in unwatched])
    accuracies = np.array([item.ping.accuracy_m for item in unwatched])
    sightings = []
    for plant_id, zones in context.restricted_by_plant.items():
        names = {zone.id: zone.name for zone in zones}
        for position, zone_id in _zone_index(zones).containing(
            latitudes, longitudes, slack_m=-accuracies
        ):
            ping = unwatched[position].ping
            sightings.append(
                Sighting(
                    kind=AlertKind.RESTRICTED_ZONE,
                    plant_id=plant_id,
                    at=ping.device_time,
                    zone_id=zone_id,
                    zone_name=names[zone_id],
                    user_id=user_id,
                    person=context.person,
                    latitude=ping.latitude,
                    longitude=ping.longitude,
                )
            )
    return sightings


PING_COLUMNS = (
    "tenant_id",
    "id",
    "device_time",
    "created_at",
    "updated_at",
    "user_id",
    "watch_id",
    "latitude",
    "longitude",
    "accuracy_m",
    "speed_mps",
    "heading_deg",
    "mock",
    "battery",
    "inside",
)


def _rows(
    items: Iterable[_Good], tenant_id: uuid.UUID, user_id: uuid.UUID, now: datetime
) -> list[tuple[Any, ...]]:
    return [
        (
            tenant_id,
            item.ping.id,
            item.ping.device_time,
            now,
            now,
            user_id,
            item.watch.id if item.watch else None,
            item.ping.latitude,
            item.ping.longitude,
            item.ping.accuracy_m,
            item.ping.speed_mps,
            item.ping.heading_deg,
            item.ping.mock,
            item.ping.battery,
            item.inside,
        )
        for item in items
    ]


async def _already_stored(
    session: AsyncSession, good: Sequence[_Good]
) -> set[tuple[uuid.UUID, datetime]]:
    if not good:
        return set()
    times = [item.ping.device_time for item in good]
    ids = [item.ping.id for item in good]
    # The time range lets PostgreSQL look only at the partitions the batch spans.
    within = (Ping.device_time >= min(times), Ping.device_time <= max(times))
    if session.bind.dialect.name == "postgresql":
        # One array parameter rather than one parameter per ping: the statement stays the same
        # whatever the batch size, so it is prepared once.
        matching = Ping.id == any_(bindparam("ids", ids, type_=ARRAY(Uuid)))
        rows = await session.execute(select(Ping.id, Ping.device_time).where(matching, *within))
        return {(row.id, row.device_time) for row in rows}
    found: set[tuple[uuid.UUID, datetime]] = set()
    for start in range(0, len(ids), 500):
        chunk = Ping.id.in_(ids[start : start + 500])
        rows = await session.execute(select(Ping.id, Ping.device_time).where(chunk, *within))
        found.update((row.id, row.device_time) for row in rows)
    return found


async def _insert_ignoring_stored(session: AsyncSession, rows: Sequence[tuple[Any, ...]]) -> int:
    statement = (
        dialect_insert(session, Ping)
        .values([dict(zip(PING_COLUMNS, row, strict=True)) for row in rows])
        .on_conflict_do_nothing()
        .returning(Ping.id)
    )
    return len((await session.execute(statement)).all())


_STAGE = "geofence_ping_stage"
_CREATE_STAGE = (
    f"CREATE TEMP TABLE IF NOT EXISTS {_STAGE} (LIKE {Ping.__tablename__}) ON COMMIT DELETE ROWS"
)
_COLUMN_LIST = ", ".join(PING_COLUMNS)
# One batch per transaction, and the stage empties itself at the commit.
_MOVE_STAGED = (
    f"INSERT INTO {Ping.__tablename__} ({_COLUMN_LIST}) "  # noqa: S608 - constants
    f"SELECT {_COLUMN_LIST} FROM {_STAGE} ON CONFLICT DO NOTHING"
)


async def _store(session: AsyncSession, rows: Sequence[tuple[Any, ...]]) -> int:
    """Store the rows, skipping any already stored; returns how many were new.

    PostgreSQL refuses ``COPY`` into a table under row-level security, so the rows are copied
    into a temporary table of the same shape (emptied at each commit) and moved over with one
    ``INSERT … SELECT``, which the tenant policy checks."""
    if not rows:
        return 0
    if session.bind.dialect.name != "postgresql":
        stored = 0
        for start in range(0, len(rows), 200):
            stored += await _insert_ignoring_stored(session, rows[start : start + 200])
        return stored
    connection = await session.connection()
    await connection.exec_driver_sql(_CREATE_STAGE)
    raw = await connection.get_raw_connection()
    try:
        await raw.driver_connection.copy_records_to_table(
            _STAGE, records=rows, columns=PING_COLUMNS
        )
    except CONNECTION_LOST as lost:
        # The driver's own COPY is outside SQLAlchemy's error handling: say what SQLAlchemy
        # would, so the dead connection leaves the pool and the request is answered "retry".
        await connection.invalidate(lost)
        raise OperationalError(_CREATE_STAGE, None, lost, connection_invalidated=True) from lost
    moved = await connection.exec_driver_sql(_MOVE_STAGED)
    return moved.rowcount


async def ingest(
    session: AsyncSession,
    settings: Settings,
    user_id: uuid.UUID,
    pings: Sequence[Any],
    now: datetime | None = None,
) -> IngestReport:
    now = now or utcnow()
    if len(pings) > settings.ping_batch_limit:
        raise InvalidInput(
            "pings",
            "max_items",
            N_("At most %(limit)s pings in one batch."),
            limit=settings.ping_batch_limit,
        )
    good, rejected, repeated = _validate(pings, settings, now)
    context = await _context(session, user_id, now)
    rejected.extend(_attribute(good, context))
    refused = {item.index for item in rejected}
    good = [item for item in good if item.index not in refused]
    stored_before = await _already_stored(session, good)
    fresh = [item for item in good if (item.ping.id, item.ping.device_time) not in stored_before]
    if context.restricted_by_plant and any(item.watch is None for item in fresh):
        context.person = await session.scalar(select(User.name).where(User.id == user_id)) or ""
    sightings = _evaluate(fresh, context, user_id)
    accepted = await _store(session, _rows(fresh, current_tenant_id(), user_id, now))
    if sightings:
        await session.run_sync(lambda sync_session: alerts.raise_all(sync_session, sightings))
    await session.flush()
    rejected.sort(key=lambda item: item.index)
    verdicts = [
        WatchVerdict(id=watch.id, label=watch.label, inside=member.inside)
        for watch, member, _zone in context.watches.values()
        if watch.state != WatchState.CLOSED.value or is_checked_in(member)
    ]
    return IngestReport(
        accepted=accepted,
        duplicates=repeated + len(good) - accepted,
        rejected=rejected,
        watches=verdicts,
    )


# The sweep ------------------------------------------------------------------------------------


def sweep(session: Session, now: datetime) -> int:
    """Raise what only the passing of time shows: a checked-in person silent for too long, a
    guardian absent while the crew works, someone still inside after the end. Returns how many
    alerts were opened."""
    rules = policy(session)
    silence = timedelta(minutes=rules.no_signal_minutes)
    absence = timedelta(minutes=rules.guardian_absent_minutes)
    grace = timedelta(minutes=rules.overstay_grace_minutes)
    rows = session.execute(
        _people_on_jobs().where(
            Watch.ends_at > now - LATE_STAY,
            Watch.starts_at < now + EARLY_ARRIVAL,
        )
    ).all()
    by_watch: dict[uuid.UUID, list[tuple[Watch, WatchMember, Zone]]] = {}
    for row in rows:
        by_watch.setdefault(row[0].id, []).append((row[0], row[1], row[2]))
    sightings: list[Sighting] = []
    for members in by_watch.values():
        watch, _first, zone = members[0]
        common = {"plant_id": watch.plant_id, "watch_id": watch.id, "label": watch.label}
        for _watch, member, _zone in members:
            if not is_checked_in(member):
                continue
            person = {
                **common,
                "user_id": member.user_id,
                "person": member.name,
                "zone_id": zone.id,
                "zone_name": zone.name,
                "latitude": member.last_latitude,
                "longitude": member.last_longitude,
            }
            heard = member.last_seen_at or member.checked_in_at
            if (
                watch.state == WatchState.ACTIVE.value
                and heard is not None
                and heard < now - silence
            ):
                sightings.append(
                    Sighting(
                        kind=AlertKind.NO_SIGNAL,
                        at=now,
                        details={"last_seen_at": heard.isoformat()},
                        **person,
                    )
                )
            if member.inside and now > watch.ends_at + grace:
                sightings.append(Sighting(kind=AlertKind.OVERSTAY, at=now, **person))
        if watch.state != WatchState.ACTIVE.value:
            continue
        crew_since = [
            member.checked_in_at
            for _w, member, _z in members
            if member.role == MemberRole.CREW.value and is_checked_in(member)
        ]
        if not crew_since or min(d for d in crew_since if d is not None) > now - absence:
            continue
        guardian_present = any(
            member.role == MemberRole.GUARDIAN.value
            and is_checked_in(member)
            and member.inside is not False
            and (member.last_seen_at or member.checked_in_at or now) >= now - absence
            for _w, member, _z in members
        )
        if not guardian_present:
            guardians = [m.name for _w, m, _z in members if m.role == MemberRole.GUARDIAN.value]
            sightings.append(
                Sighting(
                    kind=AlertKind.GUARDIAN_ABSENT,
                    at=now,
                    zone_id=zone.id,
                    zone_name=zone.name,
                    person=", ".join(guardians) or None,
                    **common,
                )
            )
    return len(alerts.raise_all(session, sightings))


async def pings_of(session: AsyncSession, watch_id: uuid.UUID, *, limit: int = 5_000) -> list[Ping]:
    query = (
        select(Ping).where(Ping.watch_id == watch_id).order_by(Ping.device_time.desc()).limit(limit)
    )
    return list(reversed((await session.execute(query)).scalars().all()))


async def checkins_of(session: AsyncSession, watch_id: uuid.UUID) -> list[CheckIn]:
    query = select(CheckIn).where(CheckIn.watch_id == watch_id).order_by(CheckIn.at)
    return list((await session.execute(query)).scalars())


async def members_of(session: AsyncSession, watch_id: uuid.UUID) -> list[WatchMember]:
    query = select(WatchMember).where(WatchMember.watch_id == watch_id).order_by(WatchMember.name)
    return list((await session.execute(query)).scalars())
