"""On-site tracking (作业定位) on a phone in a real browser: a crew member of a running job opens
the tracking page, checks in by GPS inside the zone, and the phone reports positions; out of
signal the positions pile up in the phone's queue (and the page still reloads, from the service
worker), and back online the queue drains and the server has every one of them. Then the crew
member walks out of the zone and EHS, on the live plant map, sees the alert within seconds."""

from __future__ import annotations

import re
import sqlite3
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from portal.demo import DEMO_SLUG
from portal.demo_geofence import DEMO_LIVE_JOB
from tests.browser.conftest import DemoServer

pytestmark = pytest.mark.browser

TENANT = "donghai-chem"
PHONE = {"width": 390, "height": 844}
# Sampling every second keeps the test short; a phone on site samples every 15 s.
SAMPLE_SECONDS = 1
QUEUE_LENGTH = "() => Number(document.querySelector('[data-testid=queued]').textContent)"


def _sign_in(page: Page, server: DemoServer, email: str, password: str) -> None:
    page.goto(f"{server.base_url}/t/{TENANT}/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.get_by_role("button", name=re.compile("登录|Sign in")).click()
    expect(page).to_have_url(re.compile(rf"/t/{TENANT}/?$"))


def _place(latitude: float, longitude: float) -> dict[str, float]:
    return {"latitude": latitude, "longitude": longitude, "accuracy": 8}


def _stored_pings(server: DemoServer, user_id: str) -> int:
    """What the demo server's database holds for the user (SQLite stores UUIDs as hex)."""
    with sqlite3.connect(server.var_dir / "portal.db", timeout=10) as db:
        (count,) = db.execute(
            "SELECT count(*) FROM geofence_pings WHERE user_id = ?", (uuid.UUID(user_id).hex,)
        ).fetchone()
    return int(count)


def _stored_of(server: DemoServer, ids: list[str]) -> int:
    with sqlite3.connect(server.var_dir / "portal.db", timeout=10) as db:
        marks = ",".join("?" * len(ids))
        (count,) = db.execute(
            f"SELECT count(*) FROM geofence_pings WHERE id IN ({marks})",
            [uuid.UUID(ping_id).hex for ping_id in ids],
        ).fetchone()
    return int(count)


def _queued_ids(page: Page, user_id: str) -> list[str]:
    """The ids in the phone's queue, read from its IndexedDB as the page keeps it."""
    return page.evaluate(
        """async (name) => {
            const db = await new Promise((done, fail) => {
                const opening = indexedDB.open(name);
                opening.onsuccess = () => done(opening.result);
                opening.onerror = () => fail(opening.error);
            });
            const keys = await new Promise((done, fail) => {
                const reading = db.transaction("pings").objectStore("pings").getAllKeys();
                reading.onsuccess = () => done(reading.result);
                reading.onerror = () => fail(reading.error);
            });
            db.close();
            return keys;
        }""",
        f"portal-track-{user_id}",
    )


def _watches(page: Page, server: DemoServer) -> list[dict[str, Any]]:
    response = page.request.get(f"{server.base_url}/t/{TENANT}/track/state.json")
    assert response.ok, response.text()
    return response.json()["watches"]


def _last_seen(page: Page, server: DemoServer, watch_id: str) -> datetime | None:
    [watch] = [w for w in _watches(page, server) if w["watch_id"] == watch_id]
    return datetime.fromisoformat(watch["last_seen_at"]) if watch["last_seen_at"] else None


def _queue_grows(page: Page, than: int) -> int:
    page.wait_for_function(f"n => ({QUEUE_LENGTH})() > n", arg=than)
    return int(page.evaluate(f"({QUEUE_LENGTH})()"))


def test_positions_queue_offline_and_drain_online(
    browser: Browser, demo_server: DemoServer, artifacts_dir: Path
) -> None:
    login = next(x for x in demo_server.logins if x["email"] == DEMO_LIVE_JOB.worker_email)
    context: BrowserContext = browser.new_context(
        locale="zh-CN",
        viewport=PHONE,
        is_mobile=True,
        has_touch=True,
        device_scale_factor=3,
        timezone_id="Asia/Shanghai",
    )
    context.set_default_timeout(15_000)
    context.grant_permissions(["geolocation"])
    page = context.new_page()
    try:
        _sign_in(page, demo_server, login["email"], login["password"])
        [watch] = [
            w
            for w in _watches(page, demo_server)
            if w["state"] == "active" and w["zone_name"] == DEMO_LIVE_JOB.zone_name
        ]
        lat, lon = DEMO_LIVE_JOB.inside
        # A metre or two apart: moving about the work place, well inside the zone.
        inside = [_place(lat, lon), _place(lat + 0.00002, lon), _place(lat, lon + 0.00002)]
        far = _place(*DEMO_LIVE_JOB.outside)
        context.set_geolocation(inside[0])

        page.goto(f"{demo_server.base_url}/t/{TENANT}/track?interval={SAMPLE_SECONDS}")
        expect(page.locator("[data-track]")).to_have_attribute("data-ready", "true")
        card = page.locator(f'[data-testid=watch][data-watch="{watch["watch_id"]}"]')
        expect(card.get_by_test_id("watch-label")).to_have_text(watch["label"])
        expect(card.get_by_test_id("watch-zone")).to_have_text(watch["zone_name"])
        # The page follows the phone from the start; the first position is already sent.
        expect(page.get_by_test_id("last-sent")).to_have_text(re.compile(r"\d+:\d\d:\d\d"))
        check_state = card.get_by_test_id("check-state")
        if check_state.get_attribute("data-checked-in") != "true":
            card.get_by_test_id("check-in").click()
        expect(check_state).to_have_attribute("data-checked-in", "true")
        expect(card.get_by_test_id("check-out")).to_be_visible()

        # Online: every sample is sent at once, and the server's verdict comes back.
        online = page.get_by_test_id("online-state")
        expect(online).to_have_attribute("data-online", "true")
        expect(page.get_by_test_id("inside-state")).to_have_attribute("data-inside", "true")
        expect(page.get_by_test_id("queued")).to_have_text("0")
        expect(page.get_by_test_id("rejected")).to_have_text("0")
        page.screenshot(path=str(artifacts_dir / "tracking-online.png"), full_page=True)
        user_id = page.locator("[data-track]").get_attribute("data-user")
        assert user_id
        page.evaluate("navigator.serviceWorker.ready")
        seen_before = _last_seen(page, demo_server, watch["watch_id"])

        # Out of signal: the worker moves about and leaves the zone for a moment; the phone
        # keeps every position, and the server gets none of them.
        context.set_offline(True)
        expect(online).to_have_attribute("data-online", "false")
        # A batch sent just before the signal went has had its answer (or lost it) by now.
        page.wait_for_timeout(1500)
        stored_offline = _stored_pings(demo_server, user_id)
        assert stored_offline >= 1
        queued = int(page.evaluate(f"({QUEUE_LENGTH})()"))
        for position in (inside[1], far, inside[2]):
            context.set_geolocation(position)
            queued = _queue_grows(page, queued)
        queued = _queue_grows(page, queued)
        assert queued >= 4
        page.screenshot(path=str(artifacts_dir / "tracking-offline.png"), full_page=True)
        assert _stored_pings(demo_server, user_id) == stored_offline

        # The page opens again without signal, from the service worker, with its queue.
        page.reload()
        expect(page.locator("[data-track]")).to_have_attribute("data-ready", "true")
        expect(card).to_be_visible()
        _queue_grows(page, queued)
        kept = _queued_ids(page, user_id)
        assert len(kept) > queued

        # Back online: the queue drains, and the server has every position the phone kept.
        context.set_offline(False)
        expect(online).to_have_attribute("data-online", "true")
        expect(page.get_by_test_id("queued")).to_have_text("0", timeout=20_000)
        assert _stored_of(demo_server, kept) == len(kept)
        assert _stored_pings(demo_server, user_id) > stored_offline
        expect(page.get_by_test_id("rejected")).to_have_text("0")
        seen_after = _last_seen(page, demo_server, watch["watch_id"])
        assert seen_after is not None and (seen_before is None or seen_after > seen_before)
        expect(page.get_by_test_id("inside-state")).to_have_attribute("data-inside", "true")
        page.screenshot(path=str(artifacts_dir / "tracking-drained.png"), full_page=True)

        # Checking out ends the reporting.
        card.get_by_test_id("check-out").click()
        expect(check_state).to_have_attribute("data-checked-in", "false")
        expect(card).to_have_attribute("data-tracking", "false")
        # A position taken just before the check-out may still be on its way.
        page.wait_for_timeout(1500)
        expect(page.get_by_test_id("queued")).to_have_text("0")
        settled = _stored_pings(demo_server, user_id)
        page.wait_for_timeout(3 * SAMPLE_SECONDS * 1000)
        assert _stored_pings(demo_server, user_id) == settled
    finally:
        context.close()


# The supervision loop end to end: the crew member walks out of the zone, the phone's pings go
# through the real API and engine, and EHS, watching the live plant map, sees the alert appear
# without reloading.
EHS_EMAIL = "li.guoqiang@donghai-chem.example"
WALK_SPEED_MPS = 2.0
PING_EVERY_S = 4
# From the middle of the zone (some 35 m from its edge) this far towards the offices: out of the
# zone and its buffer, and on for longer than the one-minute dwell. The walk is timed from now
# on (the phone's earlier pings came first), within the clock skew the server allows.
WALK_M = 200.0
# The live map polls every 3 s; the engine decides as the batch arrives.
SEEN_WITHIN_MS = 10_000


def _password(server: DemoServer, email: str) -> str:
    return next(login["password"] for login in server.logins if login["email"] == email)


def _token(server: DemoServer, email: str) -> str:
    answer = httpx.post(
        f"{server.base_url}/api/v1/auth/token",
        json={"tenant": DEMO_SLUG, "email": email, "password": _password(server, email)},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


def _walk_out(now: datetime) -> list[dict[str, Any]]:
    (lat0, lon0), (lat1, lon1) = DEMO_LIVE_JOB.inside, DEMO_LIVE_JOB.outside
    # Metres from the middle of the zone to the offices, on a plant's scale a flat earth will do.
    span = (((lat1 - lat0) * 110_574) ** 2 + ((lon1 - lon0) * 96_000) ** 2) ** 0.5
    steps = int(WALK_M / WALK_SPEED_MPS / PING_EVERY_S) + 1
    start = now + timedelta(seconds=1)
    pings = []
    for step in range(steps + 1):
        share = min(step * PING_EVERY_S * WALK_SPEED_MPS, WALK_M) / span
        pings.append(
            {
                "id": str(uuid.uuid4()),
                "device_time": (start + timedelta(seconds=step * PING_EVERY_S)).isoformat(),
                "latitude": lat0 + (lat1 - lat0) * share,
                "longitude": lon0 + (lon1 - lon0) * share,
                "accuracy_m": 6.0,
                "speed_mps": WALK_SPEED_MPS,
            }
        )
    return pings


def test_a_crew_member_walks_out_and_ehs_sees_it_on_the_live_map(
    page: Page, demo_server: DemoServer, artifacts_dir: Path
) -> None:
    phone = {"Authorization": f"Bearer {_token(demo_server, DEMO_LIVE_JOB.worker_email)}"}
    ehs = {"Authorization": f"Bearer {_token(demo_server, EHS_EMAIL)}"}
    api = demo_server.base_url + "/api/v1"
    plants = httpx.get(f"{api}/plants", headers=ehs, timeout=30).json()
    plant_id = next(p["id"] for p in plants if p["code"] == DEMO_LIVE_JOB.plant_code)
    (job,) = [
        job
        for job in httpx.get(f"{api}/me/watches", headers=phone, timeout=30).json()
        if job["zone_name"] == DEMO_LIVE_JOB.zone_name and job["state"] == "active"
    ]

    page.route(re.compile(r"^https?://(?!127\.0\.0\.1).*"), lambda route: route.abort())
    page.goto(f"{demo_server.base_url}/t/{DEMO_SLUG}/login")
    page.fill("input[name=email]", EHS_EMAIL)
    page.fill("input[name=password]", _password(demo_server, EHS_EMAIL))
    page.get_by_role("button", name=re.compile("登录|Sign in")).click()
    expect(page).to_have_url(re.compile(rf"/t/{DEMO_SLUG}/?$"))
    page.goto(f"{demo_server.base_url}/t/{DEMO_SLUG}/plants/{plant_id}/live")
    walker = page.get_by_test_id("alert-row").filter(has_text=DEMO_LIVE_JOB.worker_name)
    left_before = walker.and_(page.locator("[data-kind=left_zone]")).count()

    # On the phone: check in by GPS in the middle of the zone, then walk out.
    lat, lon = DEMO_LIVE_JOB.inside
    checked_in = httpx.post(
        f"{api}/watches/{job['watch_id']}/check-in",
        json={"method": "gps", "latitude": lat, "longitude": lon, "accuracy_m": 8},
        headers=phone,
        timeout=30,
    )
    assert checked_in.status_code == 200, checked_in.text
    report = httpx.post(
        f"{api}/pings",
        json={"pings": _walk_out(datetime.now(UTC))},
        headers=phone,
        timeout=30,
    ).json()
    assert report["rejected"] == [] and report["accepted"] > 0
    assert {verdict["id"]: verdict["inside"] for verdict in report["watches"]}[
        job["watch_id"]
    ] is False

    try:
        # EHS sees it without reloading the page.
        left = walker.and_(page.locator("[data-kind=left_zone]"))
        expect(left).to_have_count(left_before + 1, timeout=SEEN_WITHIN_MS)
        page.screenshot(path=str(artifacts_dir / "live-walk-out.png"), full_page=True)
    finally:
        # The job's other browser tests check the same worker in again.
        httpx.post(f"{api}/watches/{job['watch_id']}/check-out", headers=phone, timeout=30)
