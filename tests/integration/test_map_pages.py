"""The plant map pages over HTTP: who may open the zone editor and the live map of which plant
(everyone else, another plant's officer and another tenant get 404), and the editor's JSON
endpoints behind the session cookie and the CSRF header, answering errors with the field and the
rule."""

from __future__ import annotations

import dataclasses
import json
import re
import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import pytest
from litestar.testing import AsyncTestClient

from infra.db import Database
from infra.settings import Settings
from portal.app import create_app
from tenants.models import Role
from tests.factories import SeededTenant, TenantFactory, audit_actions

CSRF_FIELD = re.compile(r'name="_csrf_token"\s+value="([^"]+)"')
ZONES_DATA = re.compile(r"<script type=\"application/json\" data-zones>(.*?)</script>", re.S)
JSON_HEADERS = {"Accept": "application/json"}
SQUARE = [[121.846, 29.940], [121.847, 29.940], [121.847, 29.941], [121.846, 29.941]]
USERS = (
    (Role.EHS_OFFICER, "P1"),
    (Role.TENANT_ADMIN, None),
    (Role.PLANT_MANAGER, "P1"),
    (Role.UNIT_SUPERVISOR, "P1"),
    (Role.HQ_ANALYST, None),
    (Role.GUARDIAN, "P1"),
)


def _zone(plant_id: uuid.UUID, name: str = "一号装置区", **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "plant_id": str(plant_id),
        "name": name,
        "kind": "work_area",
        "shape": {"type": "Polygon", "coordinates": [[*SQUARE, SQUARE[0]]]},
        "buffer_m": 5,
    }
    body.update(changes)
    return body


@dataclasses.dataclass
class Site:
    settings: Settings
    database: Database
    tenant: SeededTenant
    other: SeededTenant

    def page(self, plant: str, what: str, tenant: SeededTenant | None = None) -> str:
        tenant = tenant or self.tenant
        return f"/t/{tenant.slug}/plants/{tenant.plants[plant]}/{what}"


@pytest.fixture
async def site(sqlite_settings: Settings, factory: TenantFactory) -> AsyncIterator[Site]:
    settings = dataclasses.replace(sqlite_settings, login_rate_per_minute=10_000)
    database = Database.from_settings(settings)
    tenant = await factory.create(database, users=USERS)
    other = await factory.create(database, users=((Role.EHS_OFFICER, None),))
    try:
        yield Site(settings, database, tenant, other)
    finally:
        await database.dispose()


async def _browser(site: Site, role: Role, tenant: SeededTenant | None = None) -> Any:
    """A signed-in browser of the user with this role."""
    tenant = tenant or site.tenant
    user = tenant.user(role)
    client = AsyncTestClient(app=create_app(site.settings))
    await client.__aenter__()
    client.follow_redirects = False
    login = await client.get(f"/t/{tenant.slug}/login")
    csrf = CSRF_FIELD.search(login.text)
    assert csrf is not None, login.text
    response = await client.post(
        "/login",
        data={
            "tenant": tenant.slug,
            "email": user.email,
            "password": user.password,
            "_csrf_token": csrf.group(1),
        },
    )
    assert response.status_code in (302, 303), response.text
    return client


def _csrf_headers(client: Any) -> dict[str, str]:
    return {**JSON_HEADERS, "x-csrftoken": client.cookies.get("portal_csrf")}


def _problem(response: Any) -> tuple[int, str, str]:
    problem = response.json()["errors"][0]
    return response.status_code, problem["field"], problem["rule"]


@pytest.mark.parametrize(
    ("role", "zones", "live"),
    [
        (Role.EHS_OFFICER, 200, 200),
        (Role.TENANT_ADMIN, 200, 200),
        (Role.PLANT_MANAGER, 404, 200),
        (Role.UNIT_SUPERVISOR, 404, 200),
        (Role.HQ_ANALYST, 404, 200),
        (Role.GUARDIAN, 404, 404),
    ],
)
async def test_who_may_open_which_map(site: Site, role: Role, zones: int, live: int) -> None:
    client = await _browser(site, role)
    try:
        editor = await client.get(site.page("P1", "zones"))
        assert editor.status_code == zones
        watching = await client.get(site.page("P1", "live"))
        assert watching.status_code == live
        snapshot = await client.get(site.page("P1", "live.json"), headers=JSON_HEADERS)
        assert snapshot.status_code == live
        if zones == 200:
            assert 'data-testid="zone-editor"' in editor.text
            assert "/static/vendor/leaflet/leaflet.js" in editor.text
            assert 'data-coordinates="wgs84"' in editor.text
        if live == 200:
            assert 'data-testid="open-alerts"' in watching.text
            assert set(snapshot.json()) == {"zones", "watches", "alerts", "generated_at"}
            assert snapshot.headers["cache-control"] == "no-store"
        permits = await client.get(f"/t/{site.tenant.slug}/permits")
        assert (site.page("P1", "live") in permits.text) == (live == 200)
        assert (site.page("P1", "zones") in permits.text) == (zones == 200)
    finally:
        await client.__aexit__(None, None, None)


async def test_other_plants_tenants_and_malformed_ids_are_not_there(site: Site) -> None:
    ehs = await _browser(site, Role.EHS_OFFICER)
    stranger = await _browser(site, Role.EHS_OFFICER, site.other)
    try:
        # The officer of P1 holds no role at P2.
        assert (await ehs.get(site.page("P2", "zones"))).status_code == 404
        assert (await ehs.get(site.page("P2", "live"))).status_code == 404
        assert (await ehs.get(f"/t/{site.tenant.slug}/plants/not-an-id/zones")).status_code == 404
        # Another tenant's officer: under that tenant's address they are nobody there (the
        # site's rule: sign in first), under their own its plant does not exist.
        away = await stranger.get(site.page("P1", "zones"))
        assert (away.status_code, away.headers["location"]) == (
            302,
            f"/t/{site.tenant.slug}/login?" + urlencode({"next": site.page("P1", "zones")}),
        )
        away_json = await stranger.get(site.page("P1", "live.json"), headers=JSON_HEADERS)
        assert away_json.status_code == 401
        foreign = f"/t/{site.other.slug}/plants/{site.tenant.plants['P1']}"
        assert (await stranger.get(f"{foreign}/zones")).status_code == 404
        assert (await stranger.get(f"{foreign}/live.json", headers=JSON_HEADERS)).status_code == 404
        created = await stranger.post(
            f"{foreign}/zones",
            json=_zone(site.tenant.plants["P1"]),
            headers=_csrf_headers(stranger),
        )
        assert created.status_code == 404
    finally:
        await stranger.__aexit__(None, None, None)
        await ehs.__aexit__(None, None, None)


async def test_the_editor_saves_redraws_and_retires_zones_with_csrf(site: Site) -> None:
    ehs = await _browser(site, Role.EHS_OFFICER)
    p1 = site.tenant.plants["P1"]
    url = site.page("P1", "zones")
    try:
        await ehs.get(url)
        unsigned = await ehs.post(url, json=_zone(p1), headers=JSON_HEADERS)
        assert unsigned.status_code == 403
        forged = await ehs.post(url, json=_zone(p1), headers={**JSON_HEADERS, "x-csrftoken": "x"})
        assert forged.status_code == 403

        created = await ehs.post(url, json=_zone(p1), headers=_csrf_headers(ehs))
        assert created.status_code == 201, created.text
        zone = created.json()
        assert zone["geometry"]["coordinates"] == [[*SQUARE, SQUARE[0]]]
        page = await ehs.get(url)
        listed = ZONES_DATA.search(page.text)
        assert listed is not None
        assert [z["id"] for z in json.loads(listed.group(1))] == [zone["id"]]

        circle = {"type": "Circle", "center": [121.8465, 29.9405], "radius_m": 30}
        redrawn = await ehs.put(
            f"{url}/{zone['id']}",
            json=_zone(p1, "一号装置区", kind="restricted", shape=circle),
            headers=_csrf_headers(ehs),
        )
        assert redrawn.status_code == 200, redrawn.text
        assert (redrawn.json()["kind"], redrawn.json()["radius_m"]) == ("restricted", 30)

        crossing = [[121.846, 29.940], [121.847, 29.941], [121.847, 29.940], [121.846, 29.941]]
        bow_tie = {"type": "Polygon", "coordinates": [[*crossing, crossing[0]]]}
        refused = await ehs.put(
            f"{url}/{zone['id']}", json=_zone(p1, shape=bow_tie), headers=_csrf_headers(ehs)
        )
        assert _problem(refused) == (422, "shape.coordinates", "simple")
        assert refused.json()["detail"]
        nameless = await ehs.post(url, json=_zone(p1, ""), headers=_csrf_headers(ehs))
        assert _problem(nameless) == (400, "name", "min_length")
        twice = await ehs.post(url, json=_zone(p1), headers=_csrf_headers(ehs))
        assert _problem(twice) == (409, "name", "unique")
        elsewhere = await ehs.post(
            url, json=_zone(site.tenant.plants["P2"], "二厂"), headers=_csrf_headers(ehs)
        )
        assert elsewhere.status_code == 404

        retired = await ehs.delete(f"{url}/{zone['id']}", headers=_csrf_headers(ehs))
        assert retired.status_code == 204, retired.text
        listed = ZONES_DATA.search((await ehs.get(url)).text)
        assert listed is not None and json.loads(listed.group(1)) == []
        assert await audit_actions(site.database, site.tenant.id, "zone.") == [
            "zone.created",
            "zone.updated",
            "zone.retired",
        ]
    finally:
        await ehs.__aexit__(None, None, None)


async def test_a_zone_of_another_plant_is_not_reached_through_this_plants_address(
    site: Site,
) -> None:
    admin = await _browser(site, Role.TENANT_ADMIN)
    try:
        await admin.get(site.page("P2", "zones"))
        p2_zone = await admin.post(
            site.page("P2", "zones"),
            json=_zone(site.tenant.plants["P2"], "二厂罐区"),
            headers=_csrf_headers(admin),
        )
        assert p2_zone.status_code == 201, p2_zone.text
        through_p1 = f"{site.page('P1', 'zones')}/{p2_zone.json()['id']}"
        edit = await admin.put(
            through_p1, json=_zone(site.tenant.plants["P1"]), headers=_csrf_headers(admin)
        )
        assert edit.status_code == 404
        assert (await admin.delete(through_p1, headers=_csrf_headers(admin))).status_code == 404
    finally:
        await admin.__aexit__(None, None, None)
