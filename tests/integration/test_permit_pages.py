"""The permit pages over HTTP: a contractor's administrator applies for hot work on the form,
submits it and sees the gate failure with its clause and the person concerned, edits the draft
and submits again; each approver finds it in their queue and approves it with their position;
the approved permit shows its number and verification link; the start gates are listed on the
page; gas analysis, measures, briefing, start, suspend, resume, completion, acceptance,
revision and cancellation run from the page's forms."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import select

from infra.db import Database
from infra.settings import Settings
from onboarding.catalogue import WorkType
from permits.catalogue import checklist_codes
from portal.app import create_app
from tenants import services as tenant_services
from tenants.models import User
from tests.factories import TenantFactory
from tests.permit_factories import (
    CENTRE,
    CREW_MATE,
    LEADER,
    PLANT_TZ,
    SHORT_CERT,
    SHORT_CERT_DAYS,
    PermitWorld,
    window,
    working_day,
)
from tests.training_factories import DEVICE, signature_in
from training import briefings

CSRF_FIELD = re.compile(r'name="_csrf_token"\s+value="([^"]+)"')
NO_FILE = {"unused": ("", b"", "application/octet-stream")}
HOST_PASSWORD = "host-pass-12345"
INSIDE_Z1 = {"latitude": str(CENTRE[1]), "longitude": str(CENTRE[0]), "accuracy": "8"}
PENDING_ROLE = re.compile(r'data-status="pending" data-role="([a-z_]+)"')


@pytest.fixture
async def client(sqlite_settings: Settings) -> AsyncIterator[AsyncTestClient[Any]]:
    async with AsyncTestClient(app=create_app(sqlite_settings)) as test_client:
        test_client.follow_redirects = False
        yield test_client


async def _csrf(client: AsyncTestClient[Any], path: str) -> str:
    page = await client.get(path)
    assert page.status_code == 200, page.text
    match = CSRF_FIELD.search(page.text)
    assert match is not None, page.text
    return match.group(1)


async def _sign_in(client: AsyncTestClient[Any], slug: str, email: str, password: str) -> None:
    csrf = await _csrf(client, f"/t/{slug}/login")
    response = await client.post(
        "/login",
        data={"tenant": slug, "email": email, "password": password, "_csrf_token": csrf},
    )
    assert response.status_code in (302, 303), response.text


async def _post(
    client: AsyncTestClient[Any], form_path: str, action: str, form: dict[str, Any] | None = None
) -> Any:
    """Send a page's form as a browser would: multipart, with the page's CSRF token."""
    csrf = await _csrf(client, form_path)
    return await client.post(action, data={**(form or {}), "_csrf_token": csrf}, files=NO_FILE)


async def _clients(world: PermitWorld) -> dict[str, AsyncTestClient[Any]]:
    """A signed-in browser for the company's administrator and each host user."""
    app = create_app(world.settings)
    slug = world.tenant.slug
    clients: dict[str, AsyncTestClient[Any]] = {}
    logins = {"contractor_admin": (world.company.admin_email, world.company.admin_password)}
    async with world.session() as session:
        for role, host in world.hosts.items():
            user = (await session.execute(select(User).where(User.id == host.user_id))).scalar_one()
            await tenant_services.set_password(session, user, HOST_PASSWORD)
            logins[role.value] = (user.email, HOST_PASSWORD)
    for name, (email, password) in logins.items():
        browser = AsyncTestClient(app=app)
        await browser.__aenter__()
        browser.follow_redirects = False
        await _sign_in(browser, slug, email, password)
        clients[name] = browser
    return clients


async def _close(clients: dict[str, AsyncTestClient[Any]]) -> None:
    # The clients share one app: close them in the reverse order of opening.
    for browser in reversed(list(clients.values())):
        await browser.__aexit__(None, None, None)


def _local(moment: datetime) -> str:
    return moment.astimezone(PLANT_TZ).strftime("%Y-%m-%dT%H:%M")


def _hot_work_form(
    world: PermitWorld, start: datetime, end: datetime, crew: tuple[str, ...]
) -> dict[str, Any]:
    form: dict[str, Any] = {
        "plant_id": str(world.plant_id),
        "work_type": "hot_work",
        "zone_id": str(world.zones["Z1"]),
        "location": "Z1 区 1 号装置 P-101 出口管线",
        "work_content": "更换出口阀门，焊接法兰",
        "planned_start": _local(start),
        "planned_end": _local(end),
        "crew": [str(world.worker(name)) for name in crew],
        "work_leader_id": str(world.worker(LEADER)),
        "guardian": f"user:{world.guardian.user_id}",
        "hazards": "可燃气体泄漏\n灼烫",
        "emergency_measures": "立即停止作业，撤离现场\n拨打厂区应急电话",
        "related_numbers": "",
        "details_requested_level": "level2",
        "details_method": "electric_welding",
        "details_outdoor": "yes",
        "details_wind_force": "2",
    }
    for name in crew:
        form[f"duty_{world.worker(name)}"] = "焊工"
    for code in checklist_codes(WorkType.HOT_WORK):
        form[f"checklist_{code}"] = "yes"
    return form


async def _approve_all(
    world: PermitWorld, clients: dict[str, AsyncTestClient[Any]], path: str
) -> str:
    """Each step's approver finds the permit in their queue and approves it at the site."""
    slug = world.tenant.slug
    holders = {
        "work_leader": "contractor_admin",
        "local_unit": "unit_supervisor",
        "shift_leader": "unit_supervisor",
        "safety_department": "ehs_officer",
        "leader_in_charge": "plant_manager",
    }
    for _ in range(8):
        page = (await clients["contractor_admin"].get(path)).text
        pending = PENDING_ROLE.search(page)
        if pending is None:
            return page
        browser = clients[holders[pending.group(1)]]
        queue = await browser.get(f"/t/{slug}/permits")
        assert path in queue.text.split('data-testid="permits"')[0], pending.group(1)
        shown = await browser.get(path)
        assert 'data-testid="decide-form"' in shown.text
        assert "data-geolocate" in shown.text
        decided = await _post(
            browser, path, f"{path}/decide", {"decision": "approve", "comment": "", **INSIDE_Z1}
        )
        assert decided.status_code in (302, 303), decided.text
    raise AssertionError("the chain did not end")


async def test_apply_gate_failure_edit_submit_and_approve(
    sqlite_db: Database, sqlite_settings: Settings, factory: TenantFactory
) -> None:
    world = await PermitWorld.create(sqlite_db, sqlite_settings, factory)
    slug = world.tenant.slug
    clients = await _clients(world)
    admin = clients["contractor_admin"]
    try:
        home = await admin.get(f"/t/{slug}/")
        assert f'href="/t/{slug}/permits/new"' in home.text
        chooser = await admin.get(f"/t/{slug}/permits/new")
        assert chooser.status_code == 200
        assert 'data-testid="choose-type"' in chooser.text
        form_path = f"/t/{slug}/permits/new?plant={world.plant_id}&work_type=hot_work"
        form_page = await admin.get(form_path)
        assert form_page.status_code == 200, form_page.text
        assert "Z1" in form_page.text and LEADER in form_page.text
        assert 'name="details_requested_level"' in form_page.text
        assert 'name="checklist_gas_tested"' in form_page.text

        # A window past the welder's certificate: §4.9 on submission, naming him.
        day = working_day(datetime.now(PLANT_TZ).date() + timedelta(days=SHORT_CERT_DAYS + 1))
        at = window(day, hour=9, hours=6)
        form = _hot_work_form(world, at.start, at.end, (LEADER, CREW_MATE, SHORT_CERT))

        # Missing answers are named next to their fields and what was typed stays.
        incomplete = {**form, "location": "", "details_method": ""}
        incomplete.pop("checklist_combustibles")
        refused = await _post(admin, form_path, f"/t/{slug}/permits/new", incomplete)
        assert refused.status_code == 400, refused.text
        for field in ("location", "details_method", "checklist_combustibles"):
            assert f'data-field="{field}"' in refused.text
        assert "更换出口阀门，焊接法兰" in refused.text
        reversed_window = {**form, "planned_end": _local(at.start - timedelta(hours=1))}
        refused = await _post(admin, form_path, f"/t/{slug}/permits/new", reversed_window)
        assert refused.status_code == 422
        assert 'data-field="planned_end"' in refused.text

        saved = await _post(admin, form_path, f"/t/{slug}/permits/new", form)
        assert saved.status_code in (302, 303), saved.text
        path = saved.headers["location"]
        permit_id = uuid.UUID(path.rsplit("/", 1)[-1])
        page = await admin.get(path)
        assert 'data-state="draft"' in page.text
        assert 'data-testid="submit"' in page.text

        failed = await _post(admin, path, f"{path}/submit")
        assert failed.status_code == 422, failed.text
        assert 'data-testid="gate-problems"' in failed.text
        assert "GB 30871 §4.9" in failed.text
        assert SHORT_CERT in failed.text.split('data-testid="gate-problems"')[1]
        assert (await world.get(permit_id)).state == "draft"

        # The draft is edited: the welder leaves the crew.
        edit = await admin.get(f"{path}/edit")
        assert edit.status_code == 200
        assert 'value="Z1 区 1 号装置 P-101 出口管线"' in edit.text
        fixed = {**form, "crew": [str(world.worker(LEADER)), str(world.worker(CREW_MATE))]}
        updated = await _post(admin, f"{path}/edit", f"{path}/edit", fixed)
        assert updated.status_code in (302, 303), updated.text
        submitted = await _post(admin, path, f"{path}/submit")
        assert submitted.status_code in (302, 303), submitted.text
        assert 'data-testid="chain-step"' in (await admin.get(path)).text

        page = await _approve_all(world, clients, path)
        permit = await world.get(permit_id)
        assert permit.state == "approved"
        assert permit.number and permit.number in page
        assert 'data-testid="on-site"' in page
        assert 'data-testid="off-site"' not in page
        verify = re.search(r'href="([^"]+)" data-testid="verify-link"', page)
        assert verify is not None and verify.group(1), page
        status = await admin.get(urlsplit(verify.group(1)).path)
        assert status.status_code == 200
        assert "Not started" in status.text or "未开始" in status.text
        pdf = await admin.get(f"{path}/permit.pdf")
        assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")

        # An approved permit no longer offers editing; the start gates are listed.
        assert 'data-testid="edit"' not in page
        assert (await admin.get(f"{path}/edit")).status_code in (302, 303)
        guardian = clients["guardian"]
        refused = await _post(guardian, path, f"{path}/do/start")
        assert refused.status_code == 422, refused.text
        problems = refused.text.split('data-testid="gate-problems"')[1]
        assert "GB 30871 §4.4" in problems  # no briefing
        assert "GB 30871 §5.3.1c" in problems  # no gas analysis
        assert 'data-rule="checklist.confirmed"' in problems
        assert "Confirm this control measure on site" in problems or "确认" in problems

        # Revised as a new version: a draft of version 2 opens for editing; it is cancelled.
        revised = await _post(admin, path, f"{path}/revise")
        assert revised.status_code in (302, 303), revised.text
        assert revised.headers["location"].endswith("/edit")
        new_path = revised.headers["location"].removesuffix("/edit")
        assert (await admin.get(revised.headers["location"])).status_code == 200
        no_reason = await _post(admin, new_path, f"{new_path}/do/cancel", {"reason": ""})
        assert no_reason.status_code == 400
        assert 'data-field="reason"' in no_reason.text
        cancelled = await _post(admin, new_path, f"{new_path}/do/cancel", {"reason": "改期"})
        assert cancelled.status_code in (302, 303), cancelled.text
        assert 'data-state="cancelled"' in (await admin.get(new_path)).text

        # Lists and filters; ids that are malformed or out of reach are pages that do not exist.
        listed = await admin.get(f"/t/{slug}/permits?work_type=hot_work&state=approved")
        assert permit.number in listed.text
        assert (await admin.get(f"/t/{slug}/permits?state=closed")).text.count(
            'data-testid="permit-row"'
        ) == 0
        assert (await admin.get(f"/t/{slug}/permits/not-a-permit")).status_code == 404
        assert (await admin.get(f"/t/{slug}/permits/{uuid.uuid4()}")).status_code == 404
    finally:
        await _close(clients)


async def test_work_runs_from_the_page(
    sqlite_db: Database, sqlite_settings: Settings, factory: TenantFactory
) -> None:
    """A window starting in a few minutes: gas analysis, measures and briefing on the page, then
    start, suspend, resume, completion and acceptance."""
    world = await PermitWorld.create(sqlite_db, sqlite_settings, factory)
    slug = world.tenant.slug
    clients = await _clients(world)
    admin, guardian = clients["contractor_admin"], clients["guardian"]
    try:
        now = datetime.now(PLANT_TZ).replace(second=0, microsecond=0)
        form = _hot_work_form(
            world, now + timedelta(minutes=5), now + timedelta(hours=2), (LEADER, CREW_MATE)
        )
        form_path = f"/t/{slug}/permits/new?plant={world.plant_id}&work_type=hot_work"
        saved = await _post(admin, form_path, f"/t/{slug}/permits/new", form)
        assert saved.status_code in (302, 303), saved.text
        path = saved.headers["location"]
        permit_id = uuid.UUID(path.rsplit("/", 1)[-1])
        assert (await _post(admin, path, f"{path}/submit")).status_code in (302, 303)
        await _approve_all(world, clients, path)
        assert (await world.get(permit_id)).state == "approved"

        # A failing sample is shown failed, with the rule; a passing one after it.
        gas = {
            "sampled_at": _local(datetime.now(PLANT_TZ)),
            "point": "P-101 出口法兰",
            "reading_0_gas": "methane",
            "reading_0_value": "0.8",
            "reading_0_unit": "percent_vol",
            "analyst": "钱分析",
            "instrument": "MX6 #12",
        }
        recorded = await _post(guardian, path, f"{path}/gas", gas)
        assert recorded.status_code in (302, 303), recorded.text
        page = (await guardian.get(path)).text
        assert 'data-testid="gas-analysis" data-passed="false"' in page
        bad_value = await _post(guardian, path, f"{path}/gas", {**gas, "reading_0_value": "x"})
        assert bad_value.status_code == 400
        assert 'data-field="reading_0_value"' in bad_value.text
        recorded = await _post(guardian, path, f"{path}/gas", {**gas, "reading_0_value": "0.1"})
        assert recorded.status_code in (302, 303), recorded.text
        assert 'data-passed="true"' in (await guardian.get(path)).text

        permit = await world.get(permit_id)
        codes = [item["code"] for item in permit.checklist if item["applies"]]
        confirmed = await _post(guardian, path, f"{path}/checklist", {"codes": codes})
        assert confirmed.status_code in (302, 303), confirmed.text
        assert 'data-confirmed="false"' not in (await guardian.get(path)).text

        # The briefing is prepared from the permit page and opens on the briefing page.
        supervisor = clients["unit_supervisor"]
        prepared = await _post(supervisor, path, f"{path}/briefing")
        assert prepared.status_code in (302, 303), prepared.text
        briefing_path = prepared.headers["location"]
        assert briefing_path.startswith(f"/t/{slug}/briefings/")
        assert (await supervisor.get(briefing_path)).status_code == 200
        assert f'href="{briefing_path}"' in (await supervisor.get(path)).text
        briefing_id = uuid.UUID(briefing_path.rsplit("/", 1)[-1])
        async with world.session() as session:
            await briefings.sign_as_briefer(
                session,
                world.storage,
                world.supervisor,
                briefing_id,
                signature_in(world.supervisor.name),
                DEVICE,
            )
        for name in (LEADER, CREW_MATE):
            async with world.session() as session:
                await briefings.sign_as_crew(
                    session,
                    world.storage,
                    world.supervisor,
                    briefing_id,
                    world.worker(name),
                    signature_in(name),
                    DEVICE,
                )

        started = await _post(guardian, path, f"{path}/do/start")
        assert started.status_code in (302, 303), started.text
        assert 'data-state="active"' in (await guardian.get(path)).text
        suspended = await _post(guardian, path, f"{path}/do/suspend", {"reason": "监护人离开"})
        assert suspended.status_code in (302, 303), suspended.text
        assert "监护人离开" in (await guardian.get(path)).text
        resumed = await _post(guardian, path, f"{path}/do/resume")
        assert resumed.status_code in (302, 303), resumed.text
        completed = await _post(admin, path, f"{path}/do/complete")
        assert completed.status_code in (302, 303), completed.text
        ehs = clients["ehs_officer"]
        accepted = await _post(ehs, path, f"{path}/do/accept", {"comment": "现场清理完毕"})
        assert accepted.status_code in (302, 303), accepted.text
        assert (await world.get(permit_id)).state == "closed"
        assert 'data-testid="actions"' not in (await ehs.get(path)).text
    finally:
        await _close(clients)


DETAILS = {
    WorkType.CONFINED_SPACE: {"details_space_name": "T-101 储罐", "details_medium": "苯"},
    WorkType.BLIND_PLATE: {
        "details_pipeline_id": "P-2001",
        "details_blind_id": "MB-07",
        "details_action": "insert",
        "details_medium": "蒸汽",
        "details_temperature_c": "40",
        "details_pressure_mpa": "0,1",
        "details_blind_material": "20#",
        "details_blind_size": "DN100",
    },
    WorkType.HEIGHT: {
        "details_height_m": "8",
        "details_hazards": ["slippery", "poor_light"],
        "details_wind_force": "2",
    },
    WorkType.LIFTING: {"details_load_t": "50", "details_crane": "QY50 汽车吊"},
    WorkType.TEMP_POWER: {
        "details_source": "2# 配电室 3 号柜",
        "details_voltage_v": "380",
        "details_load_kw": "15",
    },
    WorkType.EXCAVATION: {"details_depth_m": "1.5", "details_extent": "3 m × 2 m"},
    WorkType.ROAD_CLOSURE: {
        "details_road_section": "厂区三号路东段",
        "details_traffic_plan": "经四号路绕行",
    },
}


async def test_every_work_type_has_its_fields_and_saves(
    sqlite_db: Database, sqlite_settings: Settings, factory: TenantFactory
) -> None:
    """The type-specific part of the form for the other seven types: rendered from the portal's
    description, validated by ``PermitIn``; a grade computed by the rules shows on the permit."""
    world = await PermitWorld.create(sqlite_db, sqlite_settings, factory, induct=False)
    slug = world.tenant.slug
    clients = await _clients(world)
    admin = clients["contractor_admin"]
    try:
        at = window(hours=4)
        base = _hot_work_form(world, at.start, at.end, (LEADER, CREW_MATE))
        base = {k: v for k, v in base.items() if not k.startswith(("details_", "checklist_"))}
        for work_type, details in DETAILS.items():
            form_path = f"/t/{slug}/permits/new?plant={world.plant_id}&work_type={work_type}"
            page = await admin.get(form_path)
            assert page.status_code == 200, page.text
            for name in details:
                assert f'name="{name}"' in page.text, (work_type, name)
            form = {**base, "work_type": work_type.value, **details}
            form.update({f"checklist_{code}": "no" for code in checklist_codes(work_type)})
            if work_type is WorkType.LIFTING:
                # The crane operator must be on the crew too: named next to the field.
                refused = await _post(
                    admin,
                    form_path,
                    f"/t/{slug}/permits/new",
                    {
                        **form,
                        "details_operator_id": str(world.worker(SHORT_CERT)),
                        "details_signaller_id": str(world.worker(CREW_MATE)),
                    },
                )
                assert refused.status_code == 422, refused.text
                assert 'data-field="details_operator_id"' in refused.text
                form["details_operator_id"] = str(world.worker(LEADER))
                form["details_signaller_id"] = str(world.worker(CREW_MATE))
            saved = await _post(admin, form_path, f"/t/{slug}/permits/new", form)
            assert saved.status_code in (302, 303), (work_type, saved.text)
            shown = await admin.get(saved.headers["location"])
            assert 'data-state="draft"' in shown.text
            if work_type is WorkType.HEIGHT:
                assert 'data-testid="permit-level"' in shown.text  # grade II by method B
        # A value msgspec refuses is named next to its field.
        bad = {**base, "work_type": "height", **DETAILS[WorkType.HEIGHT]}
        bad.update({f"checklist_{code}": "no" for code in checklist_codes(WorkType.HEIGHT)})
        bad["details_wind_force"] = "40"
        refused = await _post(
            admin,
            f"/t/{slug}/permits/new?plant={world.plant_id}&work_type=height",
            f"/t/{slug}/permits/new",
            bad,
        )
        assert refused.status_code in (400, 422), refused.text
        assert 'data-field="details_wind_force"' in refused.text
        listed = await admin.get(f"/t/{slug}/permits?work_type=lifting")
        assert listed.text.count('data-testid="permit-row"') == 1
    finally:
        await _close(clients)
