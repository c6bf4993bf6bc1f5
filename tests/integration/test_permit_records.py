"""The printed permit and its QR check, on permits approved through the real services
(tests/permit_factories.py): the PDF of each type links its own check; the check follows the
permit's life (not started, valid, suspended, expired, closed, superseded) and calls a permit
whose approved content was altered afterwards "invalid"."""

from __future__ import annotations

import io
import re
import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from pypdf import PdfReader
from sqlalchemy import delete, update

from infra.db import Database
from infra.qr import VerificationRef, read_verification_token, verification_url
from infra.settings import Settings
from infra.tenancy import tenant_scope
from infra.verification import VerificationStatus, verify, verify_token
from onboarding.catalogue import WorkType
from permits import records, services
from permits.models import GasAnalysis, Permit, PermitCrewMember
from permits.states import PermitState
from portal.app import create_app
from tests.factories import TenantFactory
from tests.permit_factories import LEADER, PLANT_TZ, PermitWorld, Window, window

TITLES = {
    WorkType.HOT_WORK: "动火安全作业票",
    WorkType.CONFINED_SPACE: "受限空间安全作业票",
    WorkType.BLIND_PLATE: "盲板抽堵安全作业票",
    WorkType.HEIGHT: "高处安全作业票",
    WorkType.LIFTING: "吊装安全作业票",
    WorkType.TEMP_POWER: "临时用电安全作业票",
    WorkType.EXCAVATION: "动土安全作业票",
    WorkType.ROAD_CLOSURE: "断路安全作业票",
}


@pytest.fixture
async def world(pg_db: Database, pg_settings: Settings, factory: TenantFactory) -> PermitWorld:
    return await PermitWorld.create(pg_db, pg_settings, factory)


async def _approved(world: PermitWorld, work_type: WorkType, at: Window | None = None) -> Permit:
    at = at or window()
    return await world.approved(world.permit_in(work_type, at), now=at.now)


async def _set(world: PermitWorld, permit_id: uuid.UUID, **values: Any) -> None:
    """Moves a permit's state straight in the table: the check reads what is stored."""
    async with world.session() as session:
        await session.execute(update(Permit).where(Permit.id == permit_id).values(**values))


async def _status(
    world: PermitWorld, permit: Permit, *, version: int | None = None
) -> VerificationStatus | None:
    async with world.database.session() as session:
        with tenant_scope(world.tenant.id):
            verdict = await records.verify_permit(
                session, world.storage, permit.id, permit.version if version is None else version
            )
    return None if verdict is None else verdict.status


def _compact(text: str) -> str:
    return "".join(text.split())


# --- the PDF ---------------------------------------------------------------------------------


@pytest.mark.parametrize("work_type", list(WorkType))
async def test_each_type_prints_its_form_with_a_qr_link_to_its_check(
    world: PermitWorld, work_type: WorkType
) -> None:
    at = window()
    permit = await _approved(world, work_type, at)
    assert permit.state == PermitState.APPROVED and permit.number
    if work_type in (WorkType.HOT_WORK, WorkType.CONFINED_SPACE):
        async with world.session() as session:
            session.add(
                GasAnalysis(
                    permit_id=permit.id,
                    sampled_at=at.start - timedelta(minutes=20),
                    point="罐内中部",
                    readings=[
                        {"gas": "methane", "value": 0.1, "unit": "percent_vol"},
                        {"gas": "oxygen", "value": 20.8, "unit": "percent_vol"},
                    ],
                    analyst="刘分析",
                    instrument="MX6",
                    passed=True,
                    violations=[],
                    recorded_by=world.ehs.user_id,
                )
            )
        await world.brief(permit.id)
    async with world.session() as session:
        pdf = await records.permit_pdf(session, world.storage, world.settings, permit)
        context = await records.permit_context(session, world.storage, world.settings, permit)

    reader = PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) == 1
    text = _compact(reader.pages[0].extract_text())
    for printed in (TITLES[work_type], permit.number, LEADER, "扫码核验作业票状态", "用户2"):
        assert printed in text, printed
    if work_type in (WorkType.HOT_WORK, WorkType.CONFINED_SPACE):
        assert "刘分析" in text and "甲烷0.1%VOL" in text
        assert "已签字2/2人" in text
    links = {
        annotation.get_object()["/A"]["/URI"]
        for annotation in reader.pages[0].get("/Annots", [])
        if annotation.get_object().get("/Subtype") == "/Link"
    }
    assert links == {context["verification_url"]}
    prefix = world.settings.base_url + "/v/"
    (link,) = links
    assert read_verification_token(world.settings, link.removeprefix(prefix)) == (
        records.permit_ref(permit)
    )
    # Every approval step printed with its decider; the checklist came out in its entirety.
    assert all(step["decider"] for step in context["approvals"])
    assert len(context["checklist"]) == len(permit.checklist)


async def test_the_printout_is_cached_and_changes_with_the_permit(world: PermitWorld) -> None:
    permit = await _approved(world, WorkType.HEIGHT)
    async with world.session() as session:
        first = await records.permit_pdf(session, world.storage, world.settings, permit)
        again = await records.permit_pdf(session, world.storage, world.settings, permit)
    assert first == again
    at = window()
    await world.confirm(permit.id, now=at.now)
    async with world.session() as session:
        fresh = await session.get_one(Permit, permit.id)
        confirmed = await records.permit_context(session, world.storage, world.settings, fresh)
    assert all(item["confirmed_by"] for item in confirmed["checklist"] if item["applies"])


# --- the check -------------------------------------------------------------------------------


async def test_the_check_follows_the_permits_life(
    world: PermitWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = window()
    permit = await _approved(world, WorkType.HOT_WORK, at)
    inside = at.at(60)

    def at_time(moment: datetime) -> None:
        monkeypatch.setattr(records, "utcnow", lambda: moment)

    assert await _status(world, permit) == VerificationStatus.NOT_STARTED
    at_time(inside)
    assert await _status(world, permit) == VerificationStatus.NOT_STARTED  # approved, not begun
    await _set(world, permit.id, state=PermitState.ACTIVE.value, started_at=inside)
    assert await _status(world, permit) == VerificationStatus.VALID
    # Started within the start gate's grace before the planned start: in force all the same.
    at_time(at.start - timedelta(minutes=5))
    assert await _status(world, permit) == VerificationStatus.VALID
    at_time(inside)
    await _set(world, permit.id, state=PermitState.SUSPENDED.value)
    assert await _status(world, permit) == VerificationStatus.SUSPENDED
    at_time(at.end + timedelta(minutes=1))
    assert await _status(world, permit) == VerificationStatus.EXPIRED  # past its window
    await _set(world, permit.id, state=PermitState.ACTIVE.value)
    assert await _status(world, permit) == VerificationStatus.EXPIRED
    await _set(world, permit.id, state=PermitState.EXPIRED.value)
    assert await _status(world, permit) == VerificationStatus.EXPIRED
    at_time(inside)
    await _set(world, permit.id, state=PermitState.COMPLETED.value)
    assert await _status(world, permit) == VerificationStatus.CLOSED
    await _set(world, permit.id, state=PermitState.CLOSED.value)
    assert await _status(world, permit) == VerificationStatus.CLOSED
    for ended in (PermitState.CANCELLED, PermitState.REJECTED):
        await _set(world, permit.id, state=ended.value)
        assert await _status(world, permit) == VerificationStatus.INVALID

    # What the page shows of a genuine permit.
    await _set(world, permit.id, state=PermitState.ACTIVE.value)
    async with world.database.session() as session:
        verdict = await verify(session, world.storage, records.permit_ref(permit))
    assert verdict.status == VerificationStatus.VALID
    facts = dict(verdict.facts)
    assert facts["Permit number"] == permit.number
    assert facts["Version"] == "1"
    assert facts["Plant"] == "P1 厂区"
    assert facts["Zone"] == "Z1"
    assert facts["Location"] == permit.location
    assert facts["Contractor"]
    start = permit.planned_start.astimezone(PLANT_TZ)
    end = permit.planned_end.astimezone(PLANT_TZ)
    assert facts["Planned window"] == f"{start:%Y-%m-%d %H:%M} – {end:%Y-%m-%d %H:%M} (UTC+08:00)"
    assert verdict.timezone == "Asia/Shanghai"
    assert {"Work type", "Level", "State"} <= facts.keys()


async def test_a_revised_permit_supersedes_the_printed_version(world: PermitWorld) -> None:
    at = window()
    old = await _approved(world, WorkType.HEIGHT, at)
    async with world.session() as session:
        actor = await services.actor_for(session, world.contractor_admin)
        new = await services.revise(session, actor, old.id, now=at.now)
    # A revision in the making changes nothing for the printed version.
    assert await _status(world, old) == VerificationStatus.NOT_STARTED
    assert await _status(world, new) == VerificationStatus.INVALID  # a draft: never approved
    await world.submit(new.id, now=at.now)
    new = await world.approve_all(new.id, now=at.now)
    assert new.state == PermitState.APPROVED and new.number == old.number and new.version == 2
    assert await _status(world, old) == VerificationStatus.SUPERSEDED
    assert await _status(world, new) == VerificationStatus.NOT_STARTED
    # Even if the old version's row were still "approved", the newer approved one wins.
    await _set(world, old.id, state=PermitState.APPROVED.value)
    assert await _status(world, old) == VerificationStatus.SUPERSEDED
    # A link naming another version than the row's is not one of ours.
    assert await _status(world, new, version=1) == VerificationStatus.INVALID


@pytest.mark.parametrize(
    "alteration",
    ["location", "window", "checklist", "details", "crew_removed", "crew_duty", "hash_dropped"],
)
async def test_an_altered_approved_permit_is_invalid(world: PermitWorld, alteration: str) -> None:
    permit = await _approved(world, WorkType.LIFTING)
    assert await _status(world, permit) == VerificationStatus.NOT_STARTED
    async with world.session() as session:
        match alteration:
            case "location":
                await session.execute(
                    update(Permit).where(Permit.id == permit.id).values(location="别处")
                )
            case "window":
                await session.execute(
                    update(Permit)
                    .where(Permit.id == permit.id)
                    .values(planned_end=permit.planned_end + timedelta(hours=1))
                )
            case "checklist":
                changed = [{**item, "applies": not item["applies"]} for item in permit.checklist]
                await session.execute(
                    update(Permit).where(Permit.id == permit.id).values(checklist=changed)
                )
            case "details":
                await session.execute(
                    update(Permit)
                    .where(Permit.id == permit.id)
                    .values(details={**permit.details, "load_t": 120.0})
                )
            case "crew_removed":
                crew = await services.crew_of(session, permit.id)
                await session.execute(
                    delete(PermitCrewMember).where(PermitCrewMember.id == crew[-1].id)
                )
            case "crew_duty":
                await session.execute(
                    update(PermitCrewMember)
                    .where(PermitCrewMember.permit_id == permit.id)
                    .values(duty="临时顶替")
                )
            case "hash_dropped":
                await session.execute(
                    update(Permit).where(Permit.id == permit.id).values(content_hash=None)
                )
    assert await _status(world, permit) == VerificationStatus.INVALID
    async with world.database.session() as session:
        verdict = await verify(session, world.storage, records.permit_ref(permit))
    assert verdict.status == VerificationStatus.INVALID
    assert verdict.facts == []


async def test_unapproved_and_unknown_permits(world: PermitWorld) -> None:
    at = window()
    draft = await world.draft(world.permit_in(WorkType.EXCAVATION, at), now=at.now)
    assert await _status(world, draft) == VerificationStatus.INVALID
    submitted = await world.submit(draft.id, now=at.now)
    assert await _status(world, submitted) == VerificationStatus.INVALID
    async with world.database.session() as session:
        with tenant_scope(world.tenant.id):
            assert await records.verify_permit(session, world.storage, uuid.uuid4(), 1) is None


async def test_the_signed_link_names_the_permit_version_and_tenant(
    world: PermitWorld, factory: TenantFactory
) -> None:
    permit = await _approved(world, WorkType.ROAD_CLOSURE)
    token = records.permit_url(world.settings, permit).rsplit("/", 1)[1]
    other = await factory.create(world.database, users=())
    foreign = VerificationRef(other.id, records.SUBJECT_TYPE, permit.id, permit.version)
    stranger = verification_url(world.settings, foreign).rsplit("/", 1)[1]
    async with world.database.session() as session:
        genuine = await verify_token(session, world.storage, world.settings, token)
        assert genuine.status == VerificationStatus.NOT_STARTED
        assert dict(genuine.facts)["Permit number"] == permit.number
        found = await verify_token(session, world.storage, world.settings, stranger)
        assert found.status == VerificationStatus.INVALID
        forged = await verify_token(session, world.storage, world.settings, token[:-2] + "xx")
        assert forged.status == VerificationStatus.INVALID


async def test_the_public_page_and_api_answer_the_permits_status(
    world: PermitWorld, factory: TenantFactory
) -> None:
    permit = await _approved(world, WorkType.TEMP_POWER)
    url = records.permit_url(world.settings, permit)
    token = url.rsplit("/", 1)[1]
    other = await factory.create(world.database, users=())
    async with AsyncTestClient(app=create_app(world.settings)) as client:
        api = await client.get(f"/api/v1/verify/{token}")
        assert api.status_code == 200
        body = api.json()
        assert body["status"] == "not_started"
        assert {"label": "Permit number", "value": permit.number} in body["facts"]
        page = await client.get(url.removeprefix(world.settings.base_url))
        assert page.status_code == 200
        assert 'data-status="not_started"' in page.text
        assert permit.number in page.text
        # Checked on the plant's clock, as the permit's window is shown.
        checked = re.search(
            r'class="verify-time">[^<]*?(\d{4}-\d\d-\d\d \d\d:\d\d) \(UTC\+08:00\)', page.text
        )
        assert checked is not None, page.text
        assert abs(
            datetime.strptime(checked.group(1), "%Y-%m-%d %H:%M").replace(tzinfo=PLANT_TZ)
            - datetime.now(PLANT_TZ)
        ) < timedelta(minutes=2)

        await _set(world, permit.id, location="被改动的地点")
        api = await client.get(f"/api/v1/verify/{token}")
        assert api.json() == {**api.json(), "status": "invalid", "facts": []}

        # The same permit named under another tenant finds nothing.
        foreign = VerificationRef(other.id, records.SUBJECT_TYPE, permit.id, permit.version)
        stranger = verification_url(world.settings, foreign).rsplit("/", 1)[1]
        assert (await client.get(f"/api/v1/verify/{stranger}")).json()["status"] == "invalid"
