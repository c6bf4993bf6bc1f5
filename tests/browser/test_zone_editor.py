"""The plant maps in a real browser. The EHS officer of NB01 opens the plant's zones from the
permit list, draws a restricted zone corner by corner with the mouse (one corner undone on the
way), finishes and saves it; it appears in the list, stays after a reload, and its stored outline
is the one clicked, closed and in WGS-84; the page's datum shift agrees with the server's, and a
map on GCJ-02 tiles draws stored outlines shifted and shifts clicks back before storing them. A
circle is placed, refused without a radius, saved, changed (a buffer out of range is refused
naming the field and the rule) and retired. On the live map two alerts raised by the engine show
newest first; one is acknowledged, the other resolved with a note, the first then confirmed as a
violation."""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from geofence.gcj02 import to_gcj02, to_wgs84
from portal.demo import DEMO_SLUG
from tests.browser.conftest import DemoServer, _portal_env
from tests.unit.test_gcj02 import PAIRS

pytestmark = pytest.mark.browser

EHS_EMAIL = "li.guoqiang@donghai-chem.example"
# Corners in shares of the map's size: a quadrilateral in the map's lower left, plus one stray
# click that is undone.
CORNERS = [(0.15, 0.6), (0.4, 0.62), (0.38, 0.85), (0.17, 0.82)]
STRAY = (0.7, 0.2)
SQUARE = [
    [121.846, 29.94],
    [121.847, 29.94],
    [121.847, 29.941],
    [121.846, 29.941],
    [121.846, 29.94],
]
# A second map on the page, opened as map.js opens one on GCJ-02 tiles; its tiles are never
# fetched (the test lets nothing leave the machine).
GCJ02_MAP = """(square) => {
  const element = document.createElement("div");
  element.style.height = "200px";
  element.setAttribute("data-tile-url", "https://tiles.invalid/{z}/{x}/{y}.png");
  element.setAttribute("data-coordinates", "gcj02");
  document.body.appendChild(element);
  const view = PortalMap.open(element);
  const zone = {name: "t", kind: "work_area", geometry: {type: "Polygon", coordinates: [square]},
                radius_m: null, buffer_m: 0};
  const corner = PortalMap.zoneLayer(view, zone).getLayers()[0].getLatLngs()[0][0];
  const result = {drawn: [corner.lat, corner.lng], stored: view.toStored(corner)};
  view.map.remove();
  element.remove();
  return result;
}"""


def _sign_in(page: Page, server: DemoServer, email: str) -> None:
    password = next(login["password"] for login in server.logins if login["email"] == email)
    page.goto(f"{server.base_url}/t/{DEMO_SLUG}/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.get_by_role("button", name=re.compile("登录|Sign in")).click()
    expect(page).to_have_url(re.compile(rf"/t/{DEMO_SLUG}/?$"))


def _click_map(page: Page, share: tuple[float, float]) -> None:
    box = page.get_by_test_id("zone-map").bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + box["width"] * share[0], box["y"] + box["height"] * share[1])


def test_ehs_draws_a_polygon_zone_and_it_stays(
    page: Page, demo_server: DemoServer, artifacts_dir: Path
) -> None:
    # No tiles in the test: nothing outside the machine is reachable, and none is needed.
    page.route(re.compile(r"^https?://(?!127\.0\.0\.1).*"), lambda route: route.abort())
    _sign_in(page, demo_server, EHS_EMAIL)
    page.goto(f"{demo_server.base_url}/t/{DEMO_SLUG}/permits")
    page.get_by_test_id("plant-maps").get_by_test_id("zones-link").first.click()
    editor = page.get_by_test_id("zone-editor")
    expect(editor).to_have_attribute("data-ready", "true")
    rows_before = page.get_by_test_id("zone-row").count()
    assert rows_before > 0, "the demo plant has zones"

    # The page's copy of the datum shift computes what the server's does.
    for wgs, _gcj in PAIRS:
        shifted = page.evaluate("([lat, lon]) => Gcj02.toGcj02(lat, lon)", list(wgs))
        assert shifted == pytest.approx(list(to_gcj02(*wgs)), abs=1e-9)
        back = page.evaluate("([lat, lon]) => Gcj02.toWgs84(lat, lon)", shifted)
        assert back == pytest.approx(list(to_wgs84(*shifted)), abs=1e-9)

    # A map on GCJ-02 tiles draws the stored WGS-84 outline shifted, and a click there is
    # shifted back before it is stored.
    on_gcj = page.evaluate(GCJ02_MAP, SQUARE)
    assert on_gcj["drawn"] == pytest.approx(list(to_gcj02(SQUARE[0][1], SQUARE[0][0])), abs=1e-9)
    assert on_gcj["stored"] == pytest.approx([SQUARE[0][1], SQUARE[0][0]], abs=1e-9)

    page.get_by_test_id("draw-polygon").click()
    for corner in CORNERS[:2]:
        _click_map(page, corner)
    _click_map(page, STRAY)
    page.get_by_test_id("undo-point").click()
    for corner in CORNERS[2:]:
        _click_map(page, corner)
    page.get_by_test_id("finish-shape").click()
    expect(page.get_by_test_id("draw-hint")).to_have_attribute("data-state", "done")
    page.screenshot(path=str(artifacts_dir / "zone-editor-drawn.png"))

    name = f"临时动火隔离区-{secrets.token_hex(2)}"
    page.get_by_test_id("zone-name").fill(name)
    page.get_by_test_id("zone-kind").select_option("restricted")
    page.get_by_test_id("zone-buffer").fill("5")
    page.get_by_test_id("save-zone").click()

    expect(page.get_by_test_id("zone-status")).to_be_visible()
    row = page.get_by_test_id("zone-row").filter(has_text=name)
    expect(row).to_have_count(1)
    expect(row).to_have_attribute("data-kind", "restricted")
    expect(page.get_by_test_id("zone-row")).to_have_count(rows_before + 1)

    page.reload()
    expect(page.get_by_test_id("zone-editor")).to_have_attribute("data-ready", "true")
    row = page.get_by_test_id("zone-row").filter(has_text=name)
    expect(row).to_have_count(1)
    page.screenshot(path=str(artifacts_dir / "zone-editor-saved.png"))

    stored = json.loads(page.locator("script[data-zones]").text_content() or "[]")
    zone = next(z for z in stored if z["name"] == name)
    ring = zone["geometry"]["coordinates"][0]
    assert zone["kind"] == "restricted"
    assert zone["buffer_m"] == 5
    assert len(ring) == len(CORNERS) + 1
    assert ring[0] == ring[-1]
    # The demo's plants are near Ningbo, Nanjing and Huizhou: longitude first, in WGS-84 degrees.
    assert all(110 < lon < 125 and 20 < lat < 35 for lon, lat in ring)

    live = page.get_by_test_id("live-link")
    live.click()
    expect(page.get_by_test_id("live-map-page")).to_be_visible()
    expect(page.get_by_test_id("live-map-page")).to_have_attribute(
        "data-refreshed", re.compile(r"^\d{4}-")
    )
    expect(page.get_by_test_id("open-alerts")).to_have_text(re.compile(r"^\d+$"))
    expect(page.get_by_test_id("last-refresh")).not_to_have_text("—")
    page.screenshot(path=str(artifacts_dir / "live-map.png"))


def test_ehs_places_a_circle_then_changes_and_retires_it(
    page: Page, demo_server: DemoServer
) -> None:
    page.route(re.compile(r"^https?://(?!127\.0\.0\.1).*"), lambda route: route.abort())
    _sign_in(page, demo_server, EHS_EMAIL)
    page.goto(f"{demo_server.base_url}/t/{DEMO_SLUG}/permits")
    page.get_by_test_id("plant-maps").get_by_test_id("zones-link").first.click()
    expect(page.get_by_test_id("zone-editor")).to_have_attribute("data-ready", "true")

    page.get_by_test_id("draw-circle").click()
    _click_map(page, (0.8, 0.8))
    name = f"应急集合点-{secrets.token_hex(2)}"
    page.get_by_test_id("zone-name").fill(name)
    page.get_by_test_id("zone-kind").select_option("assembly_point")
    page.get_by_test_id("save-zone").click()
    # No radius yet: refused on the page, naming the field, before anything is sent.
    expect(page.get_by_test_id("zone-errors").locator("li")).to_have_attribute(
        "data-field", "shape.radius_m"
    )
    page.get_by_test_id("zone-radius").fill("25")
    page.get_by_test_id("save-zone").click()
    row = page.get_by_test_id("zone-row").filter(has_text=name)
    expect(row).to_have_attribute("data-kind", "assembly_point")

    row.get_by_test_id("zone-edit").click()
    expect(page.get_by_test_id("zone-radius")).to_have_value("25")
    page.get_by_test_id("zone-radius").fill("40")
    page.get_by_test_id("zone-buffer").fill("500000")
    page.get_by_test_id("save-zone").click()
    # The server's answer names the field and the rule, in the user's language.
    error = page.get_by_test_id("zone-errors").locator("li")
    expect(error).to_have_attribute("data-field", "buffer_m")
    expect(error).to_have_attribute("data-rule", "maximum")
    page.get_by_test_id("zone-buffer").fill("3")
    page.get_by_test_id("save-zone").click()
    expect(page.get_by_test_id("zone-status")).to_be_visible()
    expect(row.locator(".meta")).to_contain_text("40")

    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_test_id("zone-retire").click()
    expect(row).to_have_count(0)
    page.reload()
    expect(page.get_by_test_id("zone-editor")).to_have_attribute("data-ready", "true")
    expect(page.get_by_test_id("zone-row").filter(has_text=name)).to_have_count(0)


# Run in a subprocess against the demo server's database: Playwright's sync API keeps an event
# loop of its own running in this thread.
RAISE_ALERTS = """
import asyncio, sys
from datetime import timedelta
from geofence.alerts import Sighting, raise_all
from geofence.models import AlertKind
from infra.db import Database, utcnow
from infra.settings import get_settings
from infra.tenancy import tenant_scope
from tenants import services

async def main():
    database = Database.from_settings(get_settings())
    async with database.session() as session:
        tenant = await services.tenant_by_slug(session, sys.argv[1])
        with tenant_scope(tenant.id):
            plant = next(p for p in await services.list_plants(session, None) if p.code == "NB01")
            now = utcnow()
            sightings = [
                Sighting(AlertKind.RESTRICTED_ZONE, plant.id, now - timedelta(minutes=5),
                         person="测试人员甲", latitude=plant.latitude, longitude=plant.longitude),
                Sighting(AlertKind.IMPLAUSIBLE_MOVEMENT, plant.id, now - timedelta(minutes=1),
                         person="测试人员乙", latitude=plant.latitude + 0.001,
                         longitude=plant.longitude),
            ]
            await session.run_sync(lambda sync: raise_all(sync, sightings))
            await session.commit()
    await database.dispose()

asyncio.run(main())
"""


# The open-alerts counter says how many rows of the list are still open (not acknowledged).
COUNTER_MATCHES_LIST = """() => {
  const open = document.querySelectorAll('[data-testid=alert-row][data-state=open]').length;
  return document.querySelector('[data-testid=open-alerts]').textContent === String(open);
}"""


def test_ehs_handles_alerts_on_the_live_map(
    page: Page, demo_server: DemoServer, artifacts_dir: Path
) -> None:
    subprocess.run(
        [sys.executable, "-c", RAISE_ALERTS, DEMO_SLUG],
        env=_portal_env(demo_server.var_dir),
        check=True,
        timeout=60,
    )
    page.route(re.compile(r"^https?://(?!127\.0\.0\.1).*"), lambda route: route.abort())
    _sign_in(page, demo_server, EHS_EMAIL)
    page.goto(f"{demo_server.base_url}/t/{DEMO_SLUG}/permits")
    page.get_by_test_id("plant-maps").get_by_test_id("live-link").first.click()

    # The demo's own jobs raise alerts of their own; these two are told apart by their people.
    rows = page.get_by_test_id("alert-row")
    newest = rows.filter(has_text="测试人员乙")
    oldest = rows.filter(has_text="测试人员甲")
    expect(newest).to_have_attribute("data-kind", "implausible_movement")
    expect(oldest).to_have_attribute("data-kind", "restricted_zone")
    order = [row.get_attribute("data-kind") for row in rows.all()]
    assert order.index("implausible_movement") < order.index("restricted_zone"), "newest first"
    page.wait_for_function(COUNTER_MATCHES_LIST)
    page.screenshot(path=str(artifacts_dir / "live-alerts.png"), full_page=True)

    newest.get_by_test_id("alert-acknowledge").click()
    expect(newest).to_have_attribute("data-state", "acknowledged")
    expect(newest.get_by_test_id("alert-acknowledge")).to_be_hidden()
    page.wait_for_function(COUNTER_MATCHES_LIST)

    oldest.get_by_test_id("alert-resolve").click()
    expect(oldest.get_by_test_id("alert-error")).to_be_visible()
    oldest.get_by_test_id("alert-note").fill("人员已撤出限制区，现场核实无异常")
    oldest.get_by_test_id("alert-resolve").click()
    expect(oldest).to_have_count(0)
    page.wait_for_function(COUNTER_MATCHES_LIST)

    newest.get_by_test_id("alert-note").fill("手机开启模拟定位，按违章处理")
    newest.get_by_test_id("alert-violation").click()
    expect(newest).to_have_count(0)
    page.wait_for_function(COUNTER_MATCHES_LIST)
