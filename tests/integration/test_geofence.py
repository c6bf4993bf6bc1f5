"""Geofence supervision end to end on both databases: check-in, ingestion exactly once under
replay and out-of-order delivery, the engine's verdicts and each alert type with a fixed clock,
alert handling, and isolation between tenants."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from geofence import alerts, live, tracking
from geofence.models import Alert, AlertKind, AlertState, Ping, WatchMember
from geofence.schemas import GpsCheckIn, QrCheckIn
from infra.db import Database, utcnow
from infra.errors import Conflict, InvalidInput, NotFound
from infra.outbox import OutboxMessage
from infra.qr import VerificationRef, verification_url
from infra.settings import Settings
from infra.tasks import worker_settings
from tenants.notifications import NOTIFICATION_TOPIC
from tests.factories import TenantFactory, audit_actions
from tests.geofence_factories import GeofenceWorld, offset, ping, track


@pytest.fixture
async def world(any_db: Database, any_settings: Settings, factory: TenantFactory) -> GeofenceWorld:
    return await GeofenceWorld.create(any_db, any_settings, factory)


async def _ingest(world: GeofenceWorld, user: uuid.UUID, pings, now: datetime | None = None):  # type: ignore[no-untyped-def]
    async with world.session() as session:
        return await tracking.ingest(session, world.settings, user, pings, now or utcnow())


async def _check_in(
    world: GeofenceWorld, user: uuid.UUID, north: float = 0, east: float = 0
) -> None:
    """Checks in as of 50 minutes ago, so that the tracks the tests send come after it."""
    lat, lon = offset(north, east)
    async with world.session() as session:
        await tracking.check_in(
            session,
            world.settings,
            user,
            world.watch_id,
            GpsCheckIn(latitude=lat, longitude=lon, accuracy_m=8),
            utcnow() - timedelta(minutes=50),
        )


async def _alerts(world: GeofenceWorld) -> list[Alert]:
    async with world.session() as session:
        return list((await session.execute(select(Alert).order_by(Alert.opened_at))).scalars())


async def _pings(world: GeofenceWorld) -> int:
    async with world.session() as session:
        return int(await session.scalar(select(func.count()).select_from(Ping)) or 0)


async def test_check_in_by_gps_inside_the_zone_or_by_the_permits_qr(world: GeofenceWorld) -> None:
    zhang, li = world.crew["张三"], world.crew["李四"]
    # Outside the zone (and its buffer) a GPS check-in is refused, naming the rule.
    lat, lon = offset(0, 160)
    with pytest.raises(Conflict) as refused:
        async with world.session() as session:
            await tracking.check_in(
                session,
                world.settings,
                zhang,
                world.watch_id,
                GpsCheckIn(latitude=lat, longitude=lon, accuracy_m=5),
                utcnow(),
            )
    assert refused.value.problems[0].rule == "inside_zone"
    await _check_in(world, zhang)
    with pytest.raises(Conflict):
        await _check_in(world, zhang)

    # The QR code of another permit is refused; the permit's own code checks in.
    other = verification_url(
        world.settings, VerificationRef(world.tenant.id, "permit", uuid.uuid4(), 1)
    )
    mine = verification_url(
        world.settings, VerificationRef(world.tenant.id, "permit", world.watch_id, 1)
    )
    with pytest.raises(InvalidInput) as refused:
        async with world.session() as session:
            await tracking.check_in(
                session, world.settings, li, world.watch_id, QrCheckIn(token=other), utcnow()
            )
    assert refused.value.problems[0].rule == "permit"
    async with world.session() as session:
        member = await tracking.check_in(
            session, world.settings, li, world.watch_id, QrCheckIn(token=mine), utcnow()
        )
        assert tracking.is_checked_in(member)

    # Someone not on the job is told the job is not theirs.
    with pytest.raises(NotFound):
        await _check_in(world, world.ehs)
    async with world.session() as session:
        await tracking.check_out(session, li, world.watch_id, utcnow())
    actions = await audit_actions(world.database, world.tenant.id, "watch.")
    assert actions == ["watch.checked_in", "watch.checked_in", "watch.checked_out"]


async def test_a_batch_replayed_or_overlapping_stores_each_ping_once(world: GeofenceWorld) -> None:
    zhang = world.crew["张三"]
    start = utcnow() - timedelta(minutes=20)
    batch = track(start, [(0, 0), (5, 5), (10, 10), (15, 15)])
    first = await _ingest(world, zhang, batch)
    assert (first.accepted, first.duplicates, first.rejected) == (4, 0, [])
    # The same batch again (the answer was lost), then an overlapping one out of order.
    again = await _ingest(world, zhang, batch)
    assert (again.accepted, again.duplicates) == (0, 4)
    later = track(start + timedelta(minutes=2), [(20, 20), (25, 25)])
    mixed = await _ingest(world, zhang, [later[1], batch[2], later[0], batch[2]])
    assert (mixed.accepted, mixed.duplicates) == (2, 2)
    assert await _pings(world) == 6


async def test_two_deliveries_of_one_batch_at_once_store_it_once(world: GeofenceWorld) -> None:
    zhang = world.crew["张三"]
    batch = track(utcnow() - timedelta(minutes=10), [(i, i) for i in range(40)], every_s=5)
    reports = await asyncio.gather(*(_ingest(world, zhang, batch) for _ in range(3)))
    assert sum(report.accepted for report in reports) == 40
    assert sum(report.duplicates for report in reports) == 80
    assert await _pings(world) == 40


async def test_bad_pings_are_reported_and_the_good_ones_kept(world: GeofenceWorld) -> None:
    zhang = world.crew["张三"]
    now = utcnow()
    good = ping(now - timedelta(minutes=1), 0, 0)
    batch = [
        good,
        {**ping(now, 0, 0), "latitude": 91.0},
        {**ping(now, 0, 0), "longitude": "east"},
        {key: value for key, value in ping(now, 0, 0).items() if key != "accuracy_m"},
        ping(now + timedelta(hours=2), 0, 0),
        ping(now - timedelta(days=10), 0, 0),
        {**ping(now, 0, 0), "device_time": "2026-11-28T10:00:00"},
        {**ping(now, 0, 0), "id": "not-a-uuid"},
        ping(now, 0, 0, watch_id=str(uuid.uuid4())),
        "not an object",
    ]
    report = await _ingest(world, zhang, batch, now)
    assert report.accepted == 1
    assert [(item.index, item.field, item.rule) for item in report.rejected] == [
        (1, "latitude", "maximum"),
        (2, "longitude", "type"),
        (3, "accuracy_m", "required"),
        (4, "device_time", "future"),
        (5, "device_time", "offline_window"),
        (6, "device_time", "timezone"),
        (7, "id", "uuid"),
        (8, "watch_id", "member"),
        (9, "body", "type"),
    ]
    with pytest.raises(InvalidInput) as refused:
        await _ingest(world, zhang, [good] * (world.settings.ping_batch_limit + 1), now)
    assert refused.value.problems[0].rule == "max_items"
    assert await _pings(world) == 1


async def test_leaving_the_zone_raises_one_alert_after_the_dwell(world: GeofenceWorld) -> None:
    zhang = world.crew["张三"]
    await _check_in(world, zhang)
    start = utcnow() - timedelta(minutes=30)
    # Inside; a 30 s excursion (shorter than the 60 s dwell) raises nothing.
    await _ingest(world, zhang, track(start, [(0, 0), (0, 20), (0, 140), (0, 145), (0, 30)]))
    assert await _alerts(world) == []
    # Then out for good: one alert, however many pings keep saying so.
    out = track(start + timedelta(minutes=2), [(0, 150 + i) for i in range(12)])
    report = await _ingest(world, zhang, out)
    assert report.watches[0].inside is False
    raised = await _alerts(world)
    assert [(a.kind, a.person, a.state) for a in raised] == [("left_zone", "张三", "open")]
    assert raised[0].occurrences == 1
    # An inaccurate fix near the edge, back inside, then out again: still the one alert.
    await _ingest(
        world,
        zhang,
        track(start + timedelta(minutes=6), [(0, 0), (0, 0), *[(0, 160)] * 8], accuracy_m=6),
    )
    again = await _alerts(world)
    assert len(again) == 1 and again[0].occurrences == 2
    async with world.session() as session:
        notices = (
            (
                await session.execute(
                    select(OutboxMessage).where(OutboxMessage.topic == NOTIFICATION_TOPIC)
                )
            )
            .scalars()
            .all()
        )
    raised = [n.payload for n in notices if n.payload.get("kind") == "alert_raised"]
    assert raised
    # The message links to the plant's live map, where alerts are acknowledged.
    live = f"/t/{world.tenant.slug}/plants/{world.plant_id}/live"
    assert {n["context"]["url"] for n in raised} == {worker_settings().base_url.rstrip("/") + live}


async def test_restricted_zone_spoofing_and_speed_are_alerts(world: GeofenceWorld) -> None:
    zhang = world.crew["张三"]
    await _check_in(world, zhang)
    start = utcnow() - timedelta(minutes=20)
    await _ingest(world, zhang, track(start, [(0, 0), (0, 300)], every_s=600))
    await _ingest(world, zhang, [ping(start + timedelta(minutes=12), 0, 0, mock=True)])
    kinds = sorted(alert.kind for alert in await _alerts(world))
    assert kinds == ["implausible_movement", "left_zone", "restricted_zone"] or kinds == [
        "implausible_movement",
        "restricted_zone",
    ]


async def test_the_sweep_raises_no_signal_guardian_absent_and_overstay(
    any_db: Database, any_settings: Settings, factory: TenantFactory
) -> None:
    start = utcnow() - timedelta(hours=3)
    world = await GeofenceWorld.create(any_db, any_settings, factory, starts_at=start, hours=2.5)
    zhang = world.crew["张三"]
    await _check_in(world, zhang)
    await _ingest(world, zhang, track(utcnow() - timedelta(minutes=2), [(0, 0), (1, 1)]))
    now = utcnow()
    async with world.session() as session:
        opened = await session.run_sync(lambda sync: tracking.sweep(sync, now))
    kinds = sorted(alert.kind for alert in await _alerts(world))
    # Inside after the end (the window closed 30 minutes ago): the pings saying so raised it;
    # no guardian checked in while the crew works: the sweep raised that.
    assert kinds == ["guardian_absent", "overstay"]
    assert opened == 1
    # Twenty minutes of silence later: no signal; the others are not raised twice.
    later = now + timedelta(minutes=20)
    async with world.session() as session:
        await session.run_sync(lambda sync: tracking.sweep(sync, later))
    kinds = sorted(alert.kind for alert in await _alerts(world))
    assert kinds == ["guardian_absent", "no_signal", "overstay"]


async def test_alerts_are_acknowledged_resolved_and_confirmed_as_violations(
    world: GeofenceWorld,
) -> None:
    zhang = world.crew["张三"]
    await _check_in(world, zhang)
    start = utcnow() - timedelta(minutes=10)
    await _ingest(world, zhang, track(start, [(0, 0), *[(0, 200)] * 8]))
    (alert,) = await _alerts(world)
    async with world.session() as session:
        handled = await alerts.acknowledge(
            session, alert.id, actor_id=world.ehs, now=alert.opened_at + timedelta(seconds=90)
        )
        assert handled.response_seconds == 90
    with pytest.raises(Conflict):
        async with world.session() as session:
            await alerts.acknowledge(session, alert.id, actor_id=world.ehs, now=utcnow())
    async with world.session() as session:
        confirmed = await alerts.mark_violation(
            session, alert.id, "未经许可离开作业区", actor_id=world.ehs, now=utcnow()
        )
        assert (confirmed.state, confirmed.violation) == (AlertState.RESOLVED.value, True)
    # Resolved, the same condition opens a new alert when it happens again.
    await _ingest(world, zhang, track(utcnow() - timedelta(minutes=3), [(0, 0), *[(0, 200)] * 8]))
    assert [a.state for a in await _alerts(world)] == ["resolved", "open"]
    actions = await audit_actions(world.database, world.tenant.id, "alert.")
    assert actions == ["alert.raised", "alert.acknowledged", "alert.violation", "alert.raised"]
    async with world.session() as session:
        snapshot = await live.plant_snapshot(session, world.plant_id, utcnow())
    assert [a["kind"] for a in snapshot["alerts"]] == [AlertKind.LEFT_ZONE.value]
    people = {p["name"]: p for w in snapshot["watches"] for p in w["people"]}
    assert people["张三"]["inside"] is False and people["张三"]["checked_in"] is True


async def test_another_tenant_sees_nothing(
    world: GeofenceWorld, any_db: Database, any_settings: Settings, factory: TenantFactory
) -> None:
    other = await GeofenceWorld.create(any_db, any_settings, factory)
    zhang = world.crew["张三"]
    await _check_in(world, zhang)
    await _ingest(world, zhang, track(utcnow() - timedelta(minutes=5), [(0, 0), (0, 1)]))
    # The other tenant's login posting for this tenant's job: the job is not theirs.
    report = await _ingest(
        other, other.crew["张三"], [ping(utcnow(), 0, 0, watch_id=str(world.watch_id))]
    )
    assert [r.rule for r in report.rejected] == ["member"]
    assert await _pings(other) == 0
    async with other.session() as session:
        with pytest.raises(NotFound):
            await live.get_watch(session, world.watch_id)
        members = (await session.execute(select(WatchMember))).scalars().all()
        assert {m.watch_id for m in members} == {other.watch_id}


async def test_someone_on_no_job_inside_a_restricted_zone_is_an_alert(
    world: GeofenceWorld,
) -> None:
    # The EHS officer's own phone: on no job, walking past and then into the tank farm.
    start = utcnow() - timedelta(minutes=5)
    await _ingest(world, world.ehs, track(start, [(0, 250), (0, 300), (0, 305)], accuracy_m=4))
    (alert,) = await _alerts(world)
    assert (alert.kind, alert.watch_id, alert.zone_id, alert.user_id) == (
        AlertKind.RESTRICTED_ZONE.value,
        None,
        world.restricted_zone,
        world.ehs,
    )
    assert alert.occurrences == 2
