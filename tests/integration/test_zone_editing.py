"""Redrawing and retiring zones over the API: a new shape replaces the old one and the ledger
keeps both, a name taken in the plant is refused, a retired zone leaves the plant's list and
cannot be changed any more, a zone still watched cannot be retired, another tenant's zone is
not there, and a bad polygon is answered naming the field and the rule."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import select

from geofence.models import Watch
from infra.audit import AuditEntry
from infra.db import Database, utcnow
from infra.settings import Settings
from infra.tenancy import tenant_scope
from portal.app import create_app
from tenants.models import Role
from tests.factories import SeededTenant, TenantFactory, audit_actions, issue_token

ZONES = "/api/v1/zones"
# A square of about 110 m a side near the demo's Ningbo plant, longitude first as GeoJSON has it.
SQUARE = [[121.846, 29.940], [121.847, 29.940], [121.847, 29.941], [121.846, 29.941]]


def _ring(points: list[list[float]]) -> list[list[float]]:
    return [*points, points[0]]


def _body(plant_id: uuid.UUID, name: str = "一号装置区", **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "plant_id": str(plant_id),
        "name": name,
        "kind": "work_area",
        "shape": {"type": "Polygon", "coordinates": [_ring(SQUARE)]},
        "buffer_m": 5,
    }
    body.update(changes)
    return body


def _problem(response: Any) -> tuple[int, str, str]:
    problem = response.json()["errors"][0]
    return response.status_code, problem["field"], problem["rule"]


@dataclass
class Stage:
    client: AsyncTestClient[Any]
    database: Database
    tenant: SeededTenant
    headers: dict[str, dict[str, str]]

    @property
    def p1(self) -> uuid.UUID:
        return self.tenant.plants["P1"]

    async def zone(self, name: str = "一号装置区", **changes: Any) -> dict[str, Any]:
        response = await self.client.post(
            ZONES, json=_body(self.p1, name, **changes), headers=self.headers["ehs"]
        )
        assert response.status_code == 201, response.text
        return response.json()


@pytest.fixture
async def stage(sqlite_settings: Settings, factory: TenantFactory) -> AsyncIterator[Stage]:
    database = Database.from_settings(sqlite_settings)
    tenant = await factory.create(database, users=((Role.EHS_OFFICER, "P1"), (Role.GUARDIAN, "P1")))
    other = await factory.create(database, users=((Role.EHS_OFFICER, None),))
    headers = {}
    for name, seeded, role in (
        ("ehs", tenant, Role.EHS_OFFICER),
        ("guardian", tenant, Role.GUARDIAN),
        ("other_ehs", other, Role.EHS_OFFICER),
    ):
        token = await issue_token(database, seeded.id, seeded.user(role).id)
        headers[name] = {"Authorization": f"Bearer {token}"}
    try:
        async with AsyncTestClient(app=create_app(sqlite_settings)) as client:
            yield Stage(client, database, tenant, headers)
    finally:
        await database.dispose()


async def test_redrawing_replaces_the_shape_and_the_ledger_keeps_both(stage: Stage) -> None:
    zone = await stage.zone()
    circle = {"type": "Circle", "center": [121.8465, 29.9405], "radius_m": 40}
    response = await stage.client.put(
        f"{ZONES}/{zone['id']}",
        json=_body(stage.p1, "一号装置区（扩）", kind="restricted", shape=circle, buffer_m=8),
        headers=stage.headers["ehs"],
    )
    assert response.status_code == 200, response.text
    redrawn = response.json()
    assert redrawn["geometry"] == {"type": "Point", "coordinates": [121.8465, 29.9405]}
    assert (redrawn["name"], redrawn["kind"], redrawn["radius_m"], redrawn["buffer_m"]) == (
        "一号装置区（扩）",
        "restricted",
        40,
        8,
    )
    fetched = await stage.client.get(f"{ZONES}/{zone['id']}", headers=stage.headers["guardian"])
    assert fetched.json() == redrawn

    polygon = {"type": "Polygon", "coordinates": [_ring(SQUARE)]}
    back = await stage.client.put(
        f"{ZONES}/{zone['id']}",
        json=_body(stage.p1, "一号装置区", shape=polygon),
        headers=stage.headers["ehs"],
    )
    assert back.status_code == 200, back.text
    assert back.json()["radius_m"] is None

    assert await audit_actions(stage.database, stage.tenant.id, "zone.") == [
        "zone.created",
        "zone.updated",
        "zone.updated",
    ]
    async with stage.database.session() as session:
        with tenant_scope(stage.tenant.id):
            entry = await session.scalar(
                select(AuditEntry)
                .where(AuditEntry.action == "zone.updated")
                .order_by(AuditEntry.seq)
            )
    assert entry is not None
    assert entry.payload["before"]["geometry"]["type"] == "Polygon"
    assert entry.payload["after"]["geometry"]["type"] == "Point"
    assert entry.payload["after"]["name"] == "一号装置区（扩）"


async def test_a_name_taken_in_the_plant_is_refused(stage: Stage) -> None:
    first = await stage.zone("东罐区")
    await stage.zone("西罐区")
    response = await stage.client.put(
        f"{ZONES}/{first['id']}", json=_body(stage.p1, "西罐区"), headers=stage.headers["ehs"]
    )
    assert _problem(response) == (409, "name", "unique")
    # Keeping its own name is not a conflict with itself.
    same = await stage.client.put(
        f"{ZONES}/{first['id']}", json=_body(stage.p1, "东罐区"), headers=stage.headers["ehs"]
    )
    assert same.status_code == 200, same.text
    moved = await stage.client.put(
        f"{ZONES}/{first['id']}",
        json=_body(stage.tenant.plants["P2"], "东罐区"),
        headers=stage.headers["ehs"],
    )
    assert _problem(moved) == (422, "plant_id", "unchanged")


async def test_retiring_takes_the_zone_off_the_list_for_good(stage: Stage) -> None:
    zone = await stage.zone("临时堆场")
    kept = await stage.zone("集合点 A", kind="assembly_point")
    path = f"{ZONES}/{zone['id']}"
    assert (await stage.client.delete(path, headers=stage.headers["guardian"])).status_code == 403
    response = await stage.client.delete(path, headers=stage.headers["ehs"])
    assert response.status_code == 204, response.text

    listed = await stage.client.get(
        ZONES, params={"plant_id": str(stage.p1)}, headers=stage.headers["ehs"]
    )
    assert [z["id"] for z in listed.json()] == [kept["id"]]
    assert (await stage.client.delete(path, headers=stage.headers["ehs"])).status_code == 404
    again = await stage.client.put(
        path, json=_body(stage.p1, "临时堆场"), headers=stage.headers["ehs"]
    )
    assert again.status_code == 404
    # Its name stays with it: the permits and alerts of the past still mean that place.
    reused = await stage.client.post(
        ZONES, json=_body(stage.p1, "临时堆场"), headers=stage.headers["ehs"]
    )
    assert _problem(reused) == (409, "name", "unique")
    assert await audit_actions(stage.database, stage.tenant.id, "zone.retired") == ["zone.retired"]


async def test_a_zone_jobs_are_watched_in_cannot_be_retired(stage: Stage) -> None:
    zone = await stage.zone("反应釜区")
    now = utcnow()
    async with stage.database.session() as session:
        with tenant_scope(stage.tenant.id):
            session.add(
                Watch(
                    plant_id=stage.p1,
                    zone_id=uuid.UUID(zone["id"]),
                    label="DH-TEST-0001",
                    starts_at=now,
                    ends_at=now + timedelta(hours=4),
                )
            )
            await session.commit()
    response = await stage.client.delete(f"{ZONES}/{zone['id']}", headers=stage.headers["ehs"])
    assert _problem(response) == (409, "zone_id", "in_use")


async def test_another_tenants_zone_is_not_there(stage: Stage) -> None:
    zone = await stage.zone()
    path = f"{ZONES}/{zone['id']}"
    other = stage.headers["other_ehs"]
    assert (await stage.client.get(path, headers=other)).status_code == 404
    assert (await stage.client.put(path, json=_body(stage.p1), headers=other)).status_code == 404
    assert (await stage.client.delete(path, headers=other)).status_code == 404
    malformed = await stage.client.delete(f"{ZONES}/not-a-uuid", headers=stage.headers["ehs"])
    assert _problem(malformed) == (422, "zone_id", "uuid")


@pytest.mark.parametrize(
    ("coordinates", "field", "rule"),
    [
        # A bow tie: the outline crosses itself.
        (
            [_ring([[121.846, 29.940], [121.847, 29.941], [121.847, 29.940], [121.846, 29.941]])],
            "shape.coordinates",
            "simple",
        ),
        ([[*SQUARE, [121.846, 29.9405]]], "shape.coordinates[0]", "closed"),
        (
            [_ring([[121.846, 29.940], [121.847, 29.940], [121.848, 29.940]])],
            "shape.coordinates",
            "simple",
        ),
    ],
)
async def test_a_bad_polygon_names_the_field_and_the_rule(
    stage: Stage, coordinates: list[Any], field: str, rule: str
) -> None:
    zone = await stage.zone()
    response = await stage.client.put(
        f"{ZONES}/{zone['id']}",
        json=_body(stage.p1, shape={"type": "Polygon", "coordinates": coordinates}),
        headers=stage.headers["ehs"],
    )
    assert _problem(response) == (422, field, rule)
    unchanged = await stage.client.get(f"{ZONES}/{zone['id']}", headers=stage.headers["ehs"])
    assert unchanged.json() == zone
