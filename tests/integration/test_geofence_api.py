"""Geofence supervision over HTTP, with bearer tokens, on both databases: phones posting batches
and checking in (by GPS and by the permit's QR code), EHS handling alerts and setting the alert
thresholds, bad input answered with the field and the rule, foreign ids answered 404, roles kept
to their routes, and the safety routes working on while the tenant is read-only for billing.

Business rules are tested at the service level in ``test_geofence.py``; here each rule is seen
once through the API, as the phone and the EHS desk see it."""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select, update

from geofence import tracking
from geofence.models import Alert, CheckIn, Ping
from geofence.schemas import GpsCheckIn
from infra.db import Database, utcnow
from infra.qr import VerificationRef, verification_url
from infra.settings import Settings
from portal.app import create_app
from tenants.models import Role, Tenant, TenantStatus
from tests.factories import TenantFactory, audit_actions, issue_token
from tests.geofence_factories import GeofenceWorld, offset, ping, track

API = "/api/v1"
PINGS = f"{API}/pings"
POLICY = f"{API}/geofence-policy"
DEFAULT_POLICY = {
    "dwell_s": 60,
    "no_signal_minutes": 10,
    "max_speed_mps": 15.0,
    "guardian_absent_minutes": 5,
    "overstay_grace_minutes": 0,
}


@dataclasses.dataclass
class Site:
    client: AsyncTestClient[Litestar]
    world: GeofenceWorld
    headers: dict[str, dict[str, str]]

    async def post(self, path: str, who: str, body: Any = None) -> Any:
        return await self.client.post(path, json=body, headers=self.headers[who])

    async def get(self, path: str, who: str, **params: str) -> Any:
        return await self.client.get(path, params=params, headers=self.headers[who])

    async def pings_stored(self) -> int:
        return await _pings_of(self.world)

    async def alert(self) -> Alert:
        """The one alert the tenant has."""
        async with self.world.session() as session:
            return (await session.execute(select(Alert))).scalar_one()


async def _pings_of(world: GeofenceWorld) -> int:
    async with world.session() as session:
        return int(await session.scalar(select(func.count()).select_from(Ping)) or 0)


async def _headers(database: Database, world: GeofenceWorld) -> dict[str, dict[str, str]]:
    logins = {
        "zhang": world.crew["张三"],
        "li": world.crew["李四"],
        "guardian": world.guardian,
        "ehs": world.ehs,
        "admin": world.tenant.user(Role.TENANT_ADMIN).id,
    }
    return {
        who: {"Authorization": f"Bearer {await issue_token(database, world.tenant.id, user)}"}
        for who, user in logins.items()
    }


@pytest.fixture
async def world(any_db: Database, any_settings: Settings, factory: TenantFactory) -> GeofenceWorld:
    return await GeofenceWorld.create(any_db, any_settings, factory)


@pytest.fixture
async def site(
    world: GeofenceWorld, any_db: Database, any_settings: Settings
) -> AsyncIterator[Site]:
    headers = await _headers(any_db, world)
    async with AsyncTestClient(app=create_app(any_settings)) as client:
        yield Site(client, world, headers)


def _problem(answer: Any) -> tuple[int, str, str]:
    body = answer.json()
    assert body["status_code"] == answer.status_code, body
    problem = body["errors"][0]
    return answer.status_code, problem["field"], problem["rule"]


async def _checked_in_long_ago(world: GeofenceWorld, user: uuid.UUID) -> None:
    """Checked in 50 minutes ago, so that the tracks the tests send come after it (over HTTP a
    check-in is always now, and pings older than a person's last fix move nothing)."""
    lat, lon = offset(0, 0)
    async with world.session() as session:
        await tracking.check_in(
            session,
            world.settings,
            user,
            world.watch_id,
            GpsCheckIn(latitude=lat, longitude=lon, accuracy_m=8),
            utcnow() - timedelta(minutes=50),
        )


async def _left_the_zone(site: Site) -> dict[str, Any]:
    """张三 checks in, then his phone reports him out of the zone past the dwell: one alert."""
    await _checked_in_long_ago(site.world, site.world.crew["张三"])
    out = track(utcnow() - timedelta(minutes=10), [(0, 0), *[(0, 200)] * 8])
    answer = await site.post(PINGS, "zhang", {"pings": out})
    assert answer.status_code == 200, answer.text
    assert answer.json()["watches"][0]["inside"] is False
    listed = await site.get(f"{API}/alerts", "ehs", plant_id=str(site.world.plant_id))
    assert listed.status_code == 200, listed.text
    (alert,) = listed.json()
    assert (alert["kind"], alert["state"], alert["person"]) == ("left_zone", "open", "张三")
    return alert


# --- pings ---------------------------------------------------------------------------------------


async def test_a_batch_is_stored_once_and_bad_pings_come_back_by_field_and_rule(
    site: Site,
) -> None:
    now = utcnow()
    batch = track(now - timedelta(minutes=5), [(0, 0), (1, 1), (2, 2)])
    bad = [
        {**ping(now, 0, 0), "latitude": 91},
        ping(now + timedelta(hours=1), 0, 0),
        {**ping(now, 0, 0), "watch_id": str(uuid.uuid4())},
    ]
    first = await site.post(PINGS, "zhang", {"pings": [*batch, *bad]})
    assert first.status_code == 200, first.text
    report = first.json()
    assert (report["accepted"], report["duplicates"]) == (3, 0)
    assert [(r["index"], r["id"], r["field"], r["rule"]) for r in report["rejected"]] == [
        (3, bad[0]["id"], "latitude", "maximum"),
        (4, bad[1]["id"], "device_time", "future"),
        (5, bad[2]["id"], "watch_id", "member"),
    ]
    assert all(r["message"] for r in report["rejected"])
    assert [w["id"] for w in report["watches"]] == [str(site.world.watch_id)]

    # The answer was lost and the phone sends the batch again: nothing is stored twice.
    again = await site.post(PINGS, "zhang", {"pings": batch})
    assert again.status_code == 200, again.text
    assert (again.json()["accepted"], again.json()["duplicates"]) == (0, 3)
    assert await site.pings_stored() == 3


async def test_a_batch_over_the_limit_stores_nothing(site: Site) -> None:
    limit = site.world.settings.ping_batch_limit
    assert limit == 1_000
    start = utcnow() - timedelta(hours=1)
    batch = track(start, [(0, 0)] * (limit + 1), every_s=1)
    answer = await site.post(PINGS, "zhang", {"pings": batch})
    assert _problem(answer) == (422, "pings", "max_items")
    assert await site.pings_stored() == 0
    exactly = await site.post(PINGS, "zhang", {"pings": batch[:limit]})
    assert exactly.status_code == 200, exactly.text
    assert exactly.json()["accepted"] == limit


async def test_numbers_json_cannot_hold_are_refused_by_rule(site: Site) -> None:
    """JSON has no NaN or infinity: a phone that serialised them sends strings, refused ping by
    ping; a literal that overflows a double (``1e999``) is refused with the whole body, since
    the decoder meets it before any ping is looked at. Nothing of either reaches the table."""
    now = utcnow()
    good = ping(now - timedelta(seconds=30), 0, 0)
    as_text = [
        {**ping(now, 0, 0), "longitude": "NaN"},
        {**ping(now, 0, 0), "accuracy_m": "Infinity"},
    ]
    answer = await site.post(PINGS, "zhang", {"pings": [good, *as_text]})
    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert report["accepted"] == 1
    assert [(r["index"], r["field"], r["rule"]) for r in report["rejected"]] == [
        (1, "longitude", "type"),
        (2, "accuracy_m", "type"),
    ]

    body = json.dumps({"pings": [ping(now, 0, 0), ping(now, 0, 0, speed_mps=1)]})
    for literal in ("1e999", "-1e999"):
        overflowing = body.replace('"speed_mps": 1', f'"speed_mps": {literal}', 1)
        assert literal in overflowing
        refused = await site.client.post(
            PINGS,
            content=overflowing,
            headers={**site.headers["zhang"], "Content-Type": "application/json"},
        )
        assert _problem(refused) == (400, "body", "range"), refused.text
    assert await site.pings_stored() == 1


@pytest.mark.parametrize(
    ("content", "field", "rule"),
    [
        (b"pings: not json", "body", "json"),
        (b'{"pings": [{"id": 1}', "body", "json"),
        (b'{"pings": [{"latitude": Infinity}]}', "body", "json"),
        (b'{"pings": [{"id": "\xff\xfe"}]}', "body", "json"),
        (b'{"pings": "all of them"}', "pings", "type"),
        (b"[]", "body", "type"),
        (b"{}", "pings", "required"),
        (b'{"pings": [], "device": "x"}', "device", "unknown_field"),
    ],
)
async def test_a_body_that_is_not_a_batch_is_a_4xx_naming_the_rule(
    site: Site, content: bytes, field: str, rule: str
) -> None:
    answer = await site.client.post(
        PINGS,
        content=content,
        headers={**site.headers["zhang"], "Content-Type": "application/json"},
    )
    status, named_field, named_rule = _problem(answer)
    assert 400 <= status < 500, answer.text
    assert (named_field, named_rule) == (field, rule), answer.text
    assert await site.pings_stored() == 0


# --- check-in and check-out -----------------------------------------------------------------------


async def test_check_in_and_out_by_gps_and_by_the_permits_qr(site: Site) -> None:
    world = site.world
    path = f"{API}/watches/{world.watch_id}"
    lat, lon = offset(0, 160)
    outside = await site.post(
        f"{path}/check-in",
        "zhang",
        {"method": "gps", "latitude": lat, "longitude": lon, "accuracy_m": 5},
    )
    assert _problem(outside) == (409, "latitude", "inside_zone")
    lat, lon = offset(10, -10)
    vague = await site.post(
        f"{path}/check-in",
        "zhang",
        {"method": "gps", "latitude": lat, "longitude": lon, "accuracy_m": 500},
    )
    assert _problem(vague) == (422, "accuracy_m", "maximum")
    inside = await site.post(
        f"{path}/check-in",
        "zhang",
        {"method": "gps", "latitude": lat, "longitude": lon, "accuracy_m": 5},
    )
    assert inside.status_code == 200, inside.text
    member = inside.json()
    assert member["user_id"] == str(world.crew["张三"]) and member["inside"] is True
    assert member["checked_in_at"] and member["checked_out_at"] is None
    twice = await site.post(
        f"{path}/check-in",
        "zhang",
        {"method": "gps", "latitude": lat, "longitude": lon, "accuracy_m": 5},
    )
    assert _problem(twice) == (409, "member", "checked_out")

    # 李四 scans the code posted on site; another permit's code, or no code at all, is refused.
    other = verification_url(
        world.settings, VerificationRef(world.tenant.id, "permit", uuid.uuid4(), 1)
    )
    mine = verification_url(
        world.settings, VerificationRef(world.tenant.id, "permit", world.watch_id, 1)
    )
    wrong = await site.post(f"{path}/check-in", "li", {"method": "qr", "token": other})
    assert _problem(wrong) == (422, "token", "permit")
    forged = await site.post(f"{path}/check-in", "li", {"method": "qr", "token": mine + "x"})
    assert _problem(forged) == (422, "token", "signature")
    by_qr = await site.post(f"{path}/check-in", "li", {"method": "qr", "token": mine})
    assert by_qr.status_code == 200, by_qr.text
    assert by_qr.json()["checked_in_at"]

    mine_now = await site.get(f"{API}/me/watches", "li")
    assert mine_now.status_code == 200, mine_now.text
    (watch,) = mine_now.json()
    assert (watch["watch_id"], watch["role"]) == (str(world.watch_id), "crew")
    assert watch["checked_in_at"] and watch["checked_out_at"] is None

    out = await site.post(f"{path}/check-out", "li")
    assert out.status_code == 200, out.text
    assert out.json()["checked_out_at"]
    again = await site.post(f"{path}/check-out", "li")
    assert _problem(again) == (409, "member", "checked_in")
    # The EHS officer is not on the job; a job that does not exist is not found either.
    not_mine = await site.post(f"{path}/check-out", "ehs")
    assert not_mine.status_code == 404, not_mine.text
    unknown = await site.post(f"{API}/watches/{uuid.uuid4()}/check-out", "li")
    assert unknown.status_code == 404, unknown.text
    malformed = await site.post(f"{API}/watches/not-an-id/check-out", "li")
    assert 400 <= malformed.status_code < 500 and malformed.json()["errors"][0]["field"] == (
        "watch_id"
    )

    async with world.session() as session:
        events = (await session.execute(select(CheckIn).order_by(CheckIn.at))).scalars().all()
    assert [(e.direction, e.method) for e in events] == [
        ("in", "gps"),
        ("in", "qr"),
        ("out", "gps"),
    ]
    assert await audit_actions(world.database, world.tenant.id, "watch.") == [
        "watch.checked_in",
        "watch.checked_in",
        "watch.checked_out",
    ]
    timeline = await site.get(f"{path}/timeline", "ehs")
    assert timeline.status_code == 200, timeline.text
    kinds = [event["kind"] for event in timeline.json()["events"]]
    assert kinds == ["check_in", "check_in", "check_out"]


# --- alerts --------------------------------------------------------------------------------------


async def test_ehs_acknowledges_resolves_and_confirms_a_violation(site: Site) -> None:
    world = site.world
    alert = await _left_the_zone(site)
    path = f"{API}/alerts/{alert['id']}"
    # The worker it concerns cannot handle it.
    refused = await site.post(f"{path}/acknowledge", "zhang")
    assert refused.status_code == 403, refused.text

    acknowledged = await site.post(f"{path}/acknowledge", "ehs")
    assert acknowledged.status_code == 200, acknowledged.text
    assert acknowledged.json()["state"] == "acknowledged"
    assert acknowledged.json()["response_seconds"] is not None
    assert _problem(await site.post(f"{path}/acknowledge", "ehs")) == (409, "state", "open")
    no_note = await site.post(f"{path}/resolve", "ehs", {"note": ""})
    status, field, rule = _problem(no_note)
    assert 400 <= status < 500 and (field, rule) == ("note", "min_length"), no_note.text

    resolved = await site.post(f"{path}/resolve", "ehs", {"note": "已返回作业区"})
    assert resolved.status_code == 200, resolved.text
    assert (resolved.json()["state"], resolved.json()["resolution_note"]) == (
        "resolved",
        "已返回作业区",
    )
    again = await site.post(f"{path}/resolve", "ehs", {"note": "again"})
    assert _problem(again) == (409, "state", "unresolved")
    violation = await site.post(f"{path}/violation", "ehs", {"note": "未经许可离开作业区"})
    assert violation.status_code == 200, violation.text
    assert violation.json()["violation"] is True
    # The note the alert was resolved with stays.
    assert violation.json()["resolution_note"] == "已返回作业区"
    twice = await site.post(f"{path}/violation", "ehs", {"note": "again"})
    assert _problem(twice) == (409, "violation", "once")

    stored = await site.alert()
    assert (stored.state, stored.violation, stored.acknowledged_by) == (
        "resolved",
        True,
        world.ehs,
    )
    assert await audit_actions(world.database, world.tenant.id, "alert.") == [
        "alert.raised",
        "alert.acknowledged",
        "alert.resolved",
        "alert.violation",
    ]
    unresolved = await site.get(
        f"{API}/alerts", "ehs", plant_id=str(world.plant_id), unresolved="true"
    )
    assert unresolved.status_code == 200 and unresolved.json() == []
    live = await site.get(f"{API}/plants/{world.plant_id}/live", "ehs")
    assert live.status_code == 200, live.text
    people = {p["name"]: p for w in live.json()["watches"] for p in w["people"]}
    assert (people["张三"]["checked_in"], people["张三"]["inside"]) == (True, False)
    assert live.json()["alerts"] == []


async def test_a_contractor_worker_reads_no_alerts_live_map_timeline_or_policy(
    site: Site,
) -> None:
    world = site.world
    alert = await _left_the_zone(site)
    for path in (
        f"{API}/alerts?plant_id={world.plant_id}",
        f"{API}/plants/{world.plant_id}/live",
        f"{API}/watches/{world.watch_id}/timeline",
        POLICY,
    ):
        answer = await site.client.get(path, headers=site.headers["zhang"])
        assert answer.status_code == 403, (path, answer.text)
    for action in ("acknowledge", "resolve", "violation"):
        answer = await site.post(f"{API}/alerts/{alert['id']}/{action}", "li", {"note": "x"})
        assert answer.status_code == 403, (action, answer.text)
    assert (await site.alert()).state == "open"


# --- the alert thresholds ------------------------------------------------------------------------


async def test_the_policy_is_read_by_watchers_and_set_by_ehs(site: Site) -> None:
    world = site.world
    read = await site.get(POLICY, "ehs")
    assert read.status_code == 200, read.text
    assert read.json() == DEFAULT_POLICY
    wanted = {**DEFAULT_POLICY, "dwell_s": 90, "max_speed_mps": 12.5, "overstay_grace_minutes": 15}
    saved = await site.client.put(POLICY, json=wanted, headers=site.headers["ehs"])
    assert saved.status_code == 200, saved.text
    assert saved.json() == wanted
    assert (await site.get(POLICY, "admin")).json() == wanted

    # A contractor's worker, and a guardian (who watches one job), may not set them.
    for who in ("zhang", "guardian"):
        refused = await site.client.put(POLICY, json=DEFAULT_POLICY, headers=site.headers[who])
        assert refused.status_code == 403, (who, refused.text)
    for change, field, rule in (
        ({"dwell_s": 5}, "dwell_s", "minimum"),
        ({"no_signal_minutes": 241}, "no_signal_minutes", "maximum"),
        ({"max_speed_mps": 100.5}, "max_speed_mps", "maximum"),
        ({"guardian_absent_minutes": "five"}, "guardian_absent_minutes", "type"),
        ({"overstay_grace_minutes": None}, "overstay_grace_minutes", "type"),
    ):
        answer = await site.client.put(
            POLICY, json={**wanted, **change}, headers=site.headers["ehs"]
        )
        status, named_field, named_rule = _problem(answer)
        assert 400 <= status < 500, answer.text
        assert (named_field, named_rule) == (field, rule), answer.text
    missing = {key: value for key, value in wanted.items() if key != "dwell_s"}
    answer = await site.client.put(POLICY, json=missing, headers=site.headers["ehs"])
    assert _problem(answer)[1:] == ("dwell_s", "required")
    assert (await site.get(POLICY, "ehs")).json() == wanted
    assert await audit_actions(world.database, world.tenant.id, "geofence.policy") == [
        "geofence.policy_changed"
    ]


# --- tenants -------------------------------------------------------------------------------------


async def test_another_tenants_ids_are_not_found_and_its_logins_store_nothing(
    site: Site, any_db: Database, any_settings: Settings, factory: TenantFactory
) -> None:
    world = site.world
    other = await GeofenceWorld.create(any_db, any_settings, factory)
    theirs = await _headers(any_db, other)
    alert = await _left_the_zone(site)
    before = await site.pings_stored()

    # Their crew login naming our job: the job is not theirs, and nothing is stored anywhere.
    posted = await site.client.post(
        PINGS,
        json={"pings": [ping(utcnow(), 0, 0, watch_id=str(world.watch_id))]},
        headers=theirs["zhang"],
    )
    assert posted.status_code == 200, posted.text
    assert posted.json()["accepted"] == 0
    assert [r["rule"] for r in posted.json()["rejected"]] == ["member"]
    assert await _pings_of(other) == 0
    assert await site.pings_stored() == before
    checked_in = await site.client.post(
        f"{API}/watches/{world.watch_id}/check-in",
        json={"method": "gps", "latitude": offset(0, 0)[0], "longitude": offset(0, 0)[1]}
        | {"accuracy_m": 5},
        headers=theirs["zhang"],
    )
    assert checked_in.status_code == 404, checked_in.text

    # Their EHS officer (for every plant of theirs) asking for our job, alert and plant.
    answers: dict[str, int] = {}
    for method, path, body in (
        ("GET", f"{API}/watches/{world.watch_id}/timeline", None),
        ("GET", f"{API}/plants/{world.plant_id}/live", None),
        ("GET", f"{API}/alerts?plant_id={world.plant_id}", None),
        ("POST", f"{API}/alerts/{alert['id']}/acknowledge", None),
        ("POST", f"{API}/alerts/{alert['id']}/resolve", {"note": "x"}),
        ("POST", f"{API}/alerts/{alert['id']}/violation", {"note": "x"}),
    ):
        answer = await site.client.request(method, path, json=body, headers=theirs["ehs"])
        answers[f"{method} {path}"] = answer.status_code
    assert answers == dict.fromkeys(answers, 404)
    assert (await site.alert()).state == "open"


# --- billing -------------------------------------------------------------------------------------


async def test_safety_on_site_keeps_working_while_the_tenant_is_read_only(
    world: GeofenceWorld, any_db: Database, any_settings: Settings
) -> None:
    """Billing on (a Stripe key set; no call reaches Stripe here) and the tenant read-only: the
    phone's pings and check-ins and the handling of alerts answer, the thresholds do not move."""
    billed = dataclasses.replace(
        any_settings,
        stripe_secret_key="sk_test_portal",
        stripe_webhook_secret="whsec_test_portal",
        stripe_api_base="http://127.0.0.1:9",
        billing_plans=json.dumps({"starter": {"price": "price_starter", "max_plants": 1}}),
    )
    await _checked_in_long_ago(world, world.crew["张三"])
    async with any_db.session() as session:
        await session.execute(
            update(Tenant)
            .where(Tenant.id == world.tenant.id)
            .values(status=TenantStatus.READ_ONLY.value)
        )
        await session.commit()

    async with AsyncTestClient(app=create_app(billed)) as client:
        site = Site(client, world, await _headers(any_db, world))
        path = f"{API}/watches/{world.watch_id}"
        # Writes outside the allow-list are refused with the rule.
        policy = await client.put(POLICY, json=DEFAULT_POLICY, headers=site.headers["ehs"])
        assert _problem(policy) == (402, "billing", "read_only")
        assert (await site.get(POLICY, "ehs")).status_code == 200

        out = track(utcnow() - timedelta(minutes=10), [(0, 0), *[(0, 200)] * 8])
        pinged = await site.post(PINGS, "zhang", {"pings": out})
        assert pinged.status_code == 200, pinged.text
        assert pinged.json()["accepted"] == len(out)
        lat, lon = offset(0, 0)
        checked_in = await site.post(
            f"{path}/check-in",
            "li",
            {"method": "gps", "latitude": lat, "longitude": lon, "accuracy_m": 5},
        )
        assert checked_in.status_code == 200, checked_in.text
        assert (await site.post(f"{path}/check-out", "li")).status_code == 200

        alert = await site.alert()
        for action, body in (("acknowledge", None), ("violation", {"note": "离开作业区"})):
            handled = await site.post(f"{API}/alerts/{alert.id}/{action}", "ehs", body)
            assert handled.status_code == 200, (action, handled.text)
    assert await site.pings_stored() == len(out)
    assert await audit_actions(any_db, world.tenant.id, "alert.") == [
        "alert.raised",
        "alert.acknowledged",
        "alert.violation",
    ]
    assert await audit_actions(any_db, world.tenant.id, "geofence.") == []
