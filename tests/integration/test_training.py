"""Training services on SQLite and PostgreSQL: versions frozen at publication, quiz attempts,
signatures bound to their evidence and the ledger, the QR check with its tamper detection, the
PDF record, the EHS board and the permit gate's question, job briefings, assisted sessions and
tenant isolation."""

from __future__ import annotations

import hashlib
import io
import uuid
from datetime import date, timedelta
from typing import Any

import msgspec
import pytest
from pypdf import PdfReader
from sqlalchemy import func, select, text

from infra.audit import AuditEntry, verify_chain
from infra.db import Database
from infra.errors import Conflict, DomainError, InvalidInput, NotFound
from infra.qr import read_verification_token
from infra.settings import Settings
from infra.tenancy import tenant_scope
from infra.uploads import StoredObject
from infra.verification import VerificationStatus, verify
from onboarding.catalogue import WorkType
from onboarding.clock import plant_today
from onboarding.models import Worker
from onboarding.states import ItemState
from tenants.models import Role
from tests.factories import TenantFactory
from tests.onboarding_factories import OnboardingFactory
from tests.training_factories import (
    DEVICE,
    OTHER_WORKER_NAME,
    WORKER_NAME,
    TrainingWorld,
    answers_for,
    induction_content,
    principal,
    signature_in,
    strokes,
)
from training import briefings, records, services
from training import content as induction_content_rules
from training.models import (
    BriefingSignature,
    Induction,
    InductionSignature,
    InductionVersion,
    QuizAttempt,
)
from training.schemas import AnswersIn, BriefingSource, DraftIn, InductionIn, Section


@pytest.fixture
async def world(any_db: Database, any_settings: Settings, factory: TenantFactory) -> TrainingWorld:
    return await TrainingWorld.create(any_db, any_settings, factory)


def _rules(error: pytest.ExceptionInfo[DomainError]) -> list[tuple[str, str]]:
    return [(problem.field, problem.rule) for problem in error.value.problems]


async def _edit_and_publish(world: TrainingWorld, induction_id: Any, **changes: object) -> None:
    async with world.session() as session:
        await services.update_draft(
            session, world.ehs, induction_id, DraftIn(content=induction_content(**changes))
        )
        await services.publish(session, world.ehs, induction_id)


async def _chain_ok(world: TrainingWorld) -> bool:
    async with world.session() as session:
        return (await session.run_sync(verify_chain)).ok


# --- versions --------------------------------------------------------------------------------


async def test_publishing_freezes_a_hashed_version(world: TrainingWorld) -> None:
    content = induction_content()
    induction = await world.publish(content)
    v1 = await world.version(induction.id)
    assert v1.version == 1
    assert v1.content_hash == induction_content_rules.content_hash(v1.content)
    assert v1.content["content"] == induction_content_rules.as_document(content)
    assert v1.content["induction_id"] == str(induction.id)

    async with world.session() as session:
        with pytest.raises(Conflict) as error:
            await services.publish(session, world.ehs, induction.id)
    assert _rules(error) == [("draft", "changed")]

    async with world.session() as session:
        with pytest.raises(InvalidInput) as refused:
            await services.update_draft(
                session, world.ehs, induction.id, DraftIn(content=induction_content(draw_count=9))
            )
    assert _rules(refused) == [("content.draw_count", "max_bank")]
    # A section's picture must be an uploaded photo of this tenant: its digest is hashed too.
    with_image = induction_content(
        sections=[Section(title="劳保用品", body="正确佩戴", image_ids=[uuid.uuid4()])]
    )
    async with world.session() as session:
        with pytest.raises(InvalidInput) as missing:
            await services.update_draft(
                session, world.ehs, induction.id, DraftIn(content=with_image)
            )
    assert _rules(missing) == [("content.sections[0].image_ids", "exists")]

    await _edit_and_publish(world, induction.id, title="入厂安全教育（2026 修订）")
    v2 = await world.version(induction.id)
    assert (v2.version, v2.id != v1.id) == (2, True)
    assert v2.content_hash != v1.content_hash
    async with world.session() as session:
        stored_v1 = await session.get_one(InductionVersion, v1.id)
        induction_row = await session.get_one(Induction, induction.id)
    assert (stored_v1.content, stored_v1.content_hash) == (v1.content, v1.content_hash)
    assert induction_row.current_version == 2
    assert await _chain_ok(world)

    # Only the plant's authors create, publish and list inductions.
    async with world.session() as session:
        for outsider in (world.supervisor, world.contractor_admin, world.worker_login):
            with pytest.raises(NotFound):
                await services.create_induction(
                    session,
                    outsider,
                    InductionIn(plant_id=world.plant_id, content=induction_content()),
                )
    async with world.session() as session:
        with pytest.raises(NotFound):
            await services.publish(session, world.supervisor, induction.id)
        assert [i.id for i in await services.list_inductions(session, world.ehs)] == [induction.id]
        assert await services.list_inductions(session, world.worker_login) == []


# --- attempts --------------------------------------------------------------------------------


async def test_attempts_are_drawn_once_scored_once_and_limited_per_day(
    world: TrainingWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    content = induction_content(questions=8, draw_count=4, attempts_per_day=2)
    induction = await world.publish(content)
    taker = await world.worker_taker()
    async with world.session() as session:
        attempt = await services.start_attempt(session, taker, induction.id)
    async with world.session() as session:
        reloaded = await services.start_attempt(session, taker, induction.id)
    assert reloaded.id == attempt.id and reloaded.drawn == attempt.drawn
    assert len(attempt.drawn) == 4 and set(attempt.drawn) <= {q.id for q in content.questions}
    assert attempt.plant_day == plant_today()

    # Answers to a question not on this paper are refused, and nothing is scored.
    undrawn = next(q.id for q in content.questions if q.id not in attempt.drawn)
    async with world.session() as session:
        with pytest.raises(InvalidInput) as error:
            await services.submit_answers(
                session, taker, attempt.id, AnswersIn(answers={undrawn: [0]})
            )
    assert _rules(error) == [("answers", "drawn_only")]
    async with world.session() as session:
        assert (await session.get_one(QuizAttempt, attempt.id)).submitted_at is None

    async with world.session() as session:
        submitted = await services.submit_answers(
            session, taker, attempt.id, answers_for(content, attempt.drawn, right=2)
        )
    async with world.session() as session:
        stored = await session.get_one(QuizAttempt, attempt.id)
    assert (stored.score, stored.passed) == (50, False)
    assert stored.wrong == attempt.drawn[2:]
    assert submitted.submitted_at is not None

    async with world.session() as session:
        with pytest.raises(Conflict) as twice:
            await services.submit_answers(
                session, taker, attempt.id, answers_for(content, attempt.drawn, right=4)
            )
    assert _rules(twice) == [("attempt", "submitted_once")]

    second = await world.take_quiz(taker, induction.id, right=0)
    assert second.id != attempt.id and second.score == 0
    async with world.session() as session:
        with pytest.raises(InvalidInput) as limit:
            await services.start_attempt(session, taker, induction.id)
    assert _rules(limit) == [("induction_id", "attempts_per_day")]

    # The limit is per day of the plant's calendar: the next day opens new attempts.
    tomorrow = plant_today() + timedelta(days=1)
    monkeypatch.setattr(services, "plant_today", lambda: tomorrow)
    third = await world.take_quiz(taker, induction.id)
    assert third.plant_day == tomorrow and third.passed


# --- signing ---------------------------------------------------------------------------------


async def test_a_passed_attempt_signs_and_the_ledger_repeats_the_record_hash(
    world: TrainingWorld,
) -> None:
    induction = await world.publish(induction_content(validity_days=365))
    taker = await world.worker_taker()
    attempt = await world.take_quiz(taker, induction.id)
    signature = await world.sign(taker, attempt.id)
    version = await world.version(induction.id)

    async with world.session() as session:
        stored = await session.get_one(InductionSignature, signature.id)
        entry = (
            await session.execute(select(AuditEntry).where(AuditEntry.seq == stored.ledger_seq))
        ).scalar_one()
        image = await session.get_one(StoredObject, stored.image_id)
    assert stored.full_name == WORKER_NAME
    assert stored.content_hash == version.content_hash
    assert stored.signer_user_id == world.worker_login.user_id
    assert stored.assisted_by is None
    assert (stored.ip_address, stored.user_agent) == (DEVICE.ip_address, DEVICE.user_agent)
    assert (stored.latitude, stored.longitude) == (31.2304, 121.4737)
    assert stored.valid_until == plant_today() + timedelta(days=364)
    assert stored.consent
    assert entry.action == "induction.signed"
    assert entry.subject_id == str(stored.id)
    assert entry.payload["record_hash"] == stored.record_hash
    assert entry.payload["content_hash"] == version.content_hash
    png = world.storage.get(image.key)
    assert png.startswith(b"\x89PNG") and hashlib.sha256(png).hexdigest() == stored.image_sha256
    assert await _chain_ok(world)

    with pytest.raises(Conflict) as twice:
        await world.sign(taker, attempt.id)
    assert _rules(twice) == [("attempt", "signed_once")]


async def test_signing_refuses_what_does_not_bind_the_signer(world: TrainingWorld) -> None:
    induction = await world.publish()
    taker = await world.worker_taker()
    failed = await world.take_quiz(taker, induction.id, right=0)
    with pytest.raises(InvalidInput) as error:
        await world.sign(taker, failed.id)
    assert _rules(error) == [("attempt", "passed")]

    passed = await world.take_quiz(taker, induction.id)
    refusals = [
        (signature_in("张四"), InvalidInput, [("full_name", "matches_signer")]),
        (signature_in(consent=False), InvalidInput, [("consent", "accepted")]),
        (
            signature_in(drawing=msgspec.structs.replace(strokes(), strokes=strokes().strokes[:1])),
            InvalidInput,
            [("signature.strokes", "min_strokes")],
        ),
        (
            signature_in(
                drawing=msgspec.structs.replace(
                    strokes(), strokes=[s[:3] for s in strokes().strokes]
                )
            ),
            InvalidInput,
            [("signature.strokes", "min_points")],
        ),
    ]
    for data, kind, rules in refusals:
        with pytest.raises(kind) as refused:
            await world.sign(taker, passed.id, data)
        assert _rules(refused) == rules

    # Full-width and spaced forms of the registered name are the same name.
    drawing = strokes()
    signature = await world.sign(taker, passed.id, signature_in("张\u3000三", drawing=drawing))
    assert signature.full_name == "张\u3000三"

    # The same drawing cannot be offered for another record, even by another worker.
    other = await world.assisted_taker()
    other_attempt = await world.take_quiz(other, induction.id)
    with pytest.raises(Conflict) as replayed:
        await world.sign(other, other_attempt.id, signature_in(OTHER_WORKER_NAME, drawing=drawing))
    assert _rules(replayed) == [("signature.strokes", "not_replayed")]
    async with world.session() as session:
        count = await session.scalar(select(func.count()).select_from(InductionSignature))
    assert count == 1
    assert await _chain_ok(world)

    # A pass on a version superseded before signing must be taken again on the new one.
    attempt = await world.take_quiz(other, induction.id)
    await _edit_and_publish(world, induction.id, pass_mark=80)
    with pytest.raises(InvalidInput) as superseded:
        await world.sign(other, attempt.id, signature_in(OTHER_WORKER_NAME))
    assert _rules(superseded) == [("attempt", "current_version")]
    async with world.session() as session:
        fresh = await services.start_attempt(session, other, induction.id)
    assert fresh.version_id == (await world.version(induction.id)).id


# --- verification ----------------------------------------------------------------------------


async def _verdict(world: TrainingWorld, signature: InductionSignature) -> VerificationStatus:
    async with world.database.session() as session:
        verdict = await verify(session, world.storage, records.signature_ref(signature))
        with tenant_scope(world.tenant.id):
            direct = await records.verify_signature(session, world.storage, signature.id, 1)
    assert direct is not None and direct.status == verdict.status
    return verdict.status


async def test_verification_follows_versions_and_validity(
    world: TrainingWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    induction = await world.publish(induction_content(validity_days=30))
    taker = await world.worker_taker()
    signature = await world.inducted(taker, induction.id)

    async with world.database.session() as session:
        verdict = await verify(session, world.storage, records.signature_ref(signature))
    assert verdict.status == VerificationStatus.VALID
    facts = dict(verdict.facts)
    assert facts["Signed by"] == WORKER_NAME
    assert facts["Record SHA-256"] == signature.record_hash
    assert facts["Valid until"] == (plant_today() + timedelta(days=29)).isoformat()

    # The last valid day is still valid; the day after, the record has expired.
    last_day = signature.valid_until
    monkeypatch.setattr(records, "plant_today", lambda: last_day)
    assert await _verdict(world, signature) == VerificationStatus.VALID
    monkeypatch.setattr(records, "plant_today", lambda: last_day + timedelta(days=1))
    assert await _verdict(world, signature) == VerificationStatus.EXPIRED
    monkeypatch.undo()

    await _edit_and_publish(world, induction.id, validity_days=30, title="入厂安全教育 v2")
    assert await _verdict(world, signature) == VerificationStatus.SUPERSEDED


async def test_any_alteration_after_signing_makes_the_record_invalid(world: TrainingWorld) -> None:
    induction = await world.publish()
    taker = await world.worker_taker()
    signature = await world.inducted(taker, induction.id)
    assert await _verdict(world, signature) == VerificationStatus.VALID

    async def alter(model: type, row_id: Any, **values: object) -> dict[str, object]:
        async with world.session() as session:
            row = await session.get_one(model, row_id)
            before = {name: getattr(row, name) for name in values}
            for name, value in values.items():
                setattr(row, name, value)
        return before

    version = await world.version(induction.id)
    edited = {**version.content, "content": {**version.content["content"], "pass_mark": 1}}
    async with world.session() as session:
        entry = (
            await session.execute(select(AuditEntry).where(AuditEntry.seq == signature.ledger_seq))
        ).scalar_one()
        image = await session.get_one(StoredObject, signature.image_id)
    png = world.storage.get(image.key)

    tampering = [
        (InductionVersion, version.id, {"content": edited}),
        (InductionSignature, signature.id, {"full_name": "李四"}),
        (InductionSignature, signature.id, {"ip_address": "198.51.100.1"}),
        (InductionSignature, signature.id, {"valid_until": date(2099, 12, 31)}),
        (InductionSignature, signature.id, {"latitude": 31.0}),
        (InductionSignature, signature.id, {"signed_at": signature.signed_at - timedelta(days=1)}),
        (InductionSignature, signature.id, {"strokes": {**signature.strokes, "width": 401}}),
        (AuditEntry, entry.id, {"payload": {**entry.payload, "score": 100, "version": 9}}),
    ]
    for model, row_id, values in tampering:
        before = await alter(model, row_id, **values)
        assert await _verdict(world, signature) == VerificationStatus.INVALID, values
        await alter(model, row_id, **before)
        assert await _verdict(world, signature) == VerificationStatus.VALID, values

    # The image bytes in storage: a different picture, and then a missing one.
    world.storage.put(image.key, png + b"\x00", content_type="image/png")
    assert await _verdict(world, signature) == VerificationStatus.INVALID
    world.storage.delete(image.key)
    assert await _verdict(world, signature) == VerificationStatus.INVALID
    world.storage.put(image.key, png, content_type="image/png")
    assert await _verdict(world, signature) == VerificationStatus.VALID


async def test_the_pdf_record_names_the_worker_and_links_its_check(world: TrainingWorld) -> None:
    induction = await world.publish()
    taker = await world.worker_taker()
    signature = await world.inducted(taker, induction.id)
    async with world.session() as session:
        pdf = await records.record_pdf(session, world.storage, world.settings, signature)
    reader = PdfReader(io.BytesIO(pdf))
    body = "".join(page.extract_text() for page in reader.pages)
    assert WORKER_NAME in body.replace(" ", "")
    assert signature.record_hash in body.replace("\n", "").replace(" ", "")
    # The QR code is wrapped in the verification link; the token carries its signing time, so
    # the link is compared by what it names.
    links = [
        annotation.get_object()["/A"]["/URI"]
        for page in reader.pages
        for annotation in page.get("/Annots", [])
        if "/A" in annotation.get_object()
    ]
    prefix = world.settings.base_url + "/v/"
    named = [
        read_verification_token(world.settings, link.removeprefix(prefix))
        for link in links
        if link.startswith(prefix)
    ]
    assert named and set(named) == {records.signature_ref(signature)}
    assert b"/Subtype /Image" in pdf or b"/Subtype/Image" in pdf


# --- the board and the permit gate -----------------------------------------------------------


async def test_the_board_and_the_gate_see_each_workers_standing(world: TrainingWorld) -> None:
    general = await world.publish(induction_content(validity_days=365))
    hot_work = await world.publish(
        induction_content(title="动火作业专项教育", validity_days=20), work_type=WorkType.HOT_WORK
    )
    # A work type the company does not offer, and another plant: neither concerns P1's board.
    confined = await world.publish(
        induction_content(title="受限空间专项教育"), work_type=WorkType.CONFINED_SPACE
    )
    second_plant = await world.publish(induction_content(title="二厂入厂教育"), plant="P2")
    newcomer = await OnboardingFactory(world.database, world.settings).add_worker(
        world.company, "王五"
    )

    zhang = await world.worker_taker()
    li = await world.assisted_taker()
    await world.inducted(zhang, general.id)
    await world.inducted(zhang, hot_work.id)
    await world.take_quiz(li, general.id, right=0)

    async with world.session() as session:
        board = await services.induction_board(session, world.ehs, world.plant_id)
        done = await services.induction_board(session, world.ehs, world.plant_id, status="done")
        supervisors = await services.induction_board(session, world.supervisor, world.plant_id)
        with pytest.raises(NotFound):
            await services.induction_board(session, world.contractor_admin, world.plant_id)
        with pytest.raises(NotFound):
            await services.induction_board(session, world.supervisor, world.tenant.plants["P2"])
    standing = {(row.worker.id, row.induction.id): row.status for row in board}
    assert standing == {
        (world.worker_id, general.id): "done",
        (world.worker_id, hot_work.id): "expiring",
        (world.other_worker_id, general.id): "failed",
        (world.other_worker_id, hot_work.id): "pending",
        (newcomer, general.id): "pending",
        (newcomer, hot_work.id): "pending",
    }
    assert [(row.worker.id, row.induction.id) for row in done] == [(world.worker_id, general.id)]
    assert len(supervisors) == len(board)
    assert {row.title for row in board} == {"入厂安全教育", "动火作业专项教育"}

    # A draft in progress is not what the board names; the published version is.
    async with world.session() as session:
        await services.update_draft(
            session, world.ehs, general.id, DraftIn(content=induction_content(title="草稿标题"))
        )
        redrafted = await services.induction_board(session, world.ehs, world.plant_id)
    assert "草稿标题" not in {row.title for row in redrafted}

    # A work type the company does not offer is not its workers' to take.
    async with world.session() as session:
        with pytest.raises(NotFound):
            await services.start_attempt(session, li, confined.id)

    # What each phone lists: every plant's inductions for the company's work types.
    async with world.session() as session:
        listed = {
            a.induction.id: (a.status, a.attempts_left_today)
            for a in await services.assignments(session, li)
        }
    assert set(listed) == {general.id, hot_work.id, second_plant.id}
    assert listed[general.id] == ("failed", 2)
    assert listed[hot_work.id] == ("pending", 3)

    today = plant_today()
    hot_until = today + timedelta(days=19)
    async with world.session() as session:

        async def gaps(worker: Any, days: int, work_type: str | None) -> list[tuple[Any, Any]]:
            found = await services.induction_gaps(
                session, [worker], world.plant_id, today, today + timedelta(days=days), work_type
            )
            return [(gap.induction_id, gap.valid_until) for gap in found]

        # General induction only, unless the permit's work type has its own.
        assert await gaps(world.worker_id, 100, None) == []
        assert await gaps(world.worker_id, 100, WorkType.HEIGHT.value) == []
        assert await gaps(world.worker_id, 19, WorkType.HOT_WORK.value) == []
        # The hot-work induction lapses inside a longer window.
        assert await gaps(world.worker_id, 20, WorkType.HOT_WORK.value) == [
            (hot_work.id, hot_until)
        ]
        assert await gaps(world.other_worker_id, 1, None) == [(general.id, None)]
        assert await services.is_inducted(
            session, world.worker_id, world.plant_id, today, today + timedelta(days=5), "hot_work"
        )
        assert not await services.is_inducted(
            session, world.other_worker_id, world.plant_id, today, today, None
        )
        with pytest.raises(ValueError):
            await services.induction_gaps(
                session, [world.worker_id], world.plant_id, today, today - timedelta(days=1)
            )


# --- assisted sessions -----------------------------------------------------------------------


async def test_an_administrator_runs_an_assisted_session_for_their_own_workers(
    world: TrainingWorld,
) -> None:
    induction = await world.publish()
    helped = await world.assisted_taker()
    assert helped.assisted and helped.worker.name == OTHER_WORKER_NAME
    signature = await world.inducted(helped, induction.id)
    async with world.session() as session:
        stored = await session.get_one(InductionSignature, signature.id)
        attempt = await session.get_one(QuizAttempt, stored.attempt_id)
        # The worker's own login, the administrator and EHS see it; another company does not.
        for viewer in (world.contractor_admin, world.ehs):
            assert (await services.get_signature(session, viewer, stored.id)).id == stored.id
        with pytest.raises(NotFound):
            await services.get_signature(session, world.worker_login, stored.id)
    assert stored.assisted_by == world.contractor_admin.user_id
    assert stored.signer_user_id == world.contractor_admin.user_id
    assert attempt.operated_by == world.contractor_admin.user_id

    own = await world.inducted(await world.worker_taker(), induction.id)
    async with world.session() as session:
        assert (await services.get_signature(session, world.worker_login, own.id)).id == own.id

    # A worker whose admission was refused is not trained.
    async with world.session() as session:
        (await session.get_one(Worker, world.other_worker_id)).state = ItemState.REJECTED.value
    refused_taker = await world.assisted_taker()
    async with world.session() as session:
        with pytest.raises(InvalidInput) as refused:
            await services.start_attempt(session, refused_taker, induction.id)
    assert _rules(refused) == [("worker_id", "admissible")]

    rival = await OnboardingFactory(world.database, world.settings).register(world.tenant)
    rival_admin = principal(
        world.tenant, rival.admin.user_id, Role.CONTRACTOR_ADMIN, name="承包商管理员"
    )
    async with world.session() as session:
        with pytest.raises(NotFound):
            await services.taker_for(session, rival_admin, world.other_worker_id)
        with pytest.raises(NotFound):
            await services.get_signature(session, rival_admin, stored.id)
        # Neither a worker's login nor an administrator without a worker is anyone else.
        with pytest.raises(NotFound):
            await services.taker_for(session, world.worker_login, world.other_worker_id)
        with pytest.raises(NotFound):
            await services.taker_for(session, world.contractor_admin)


# --- briefings -------------------------------------------------------------------------------


# Permits hand training their id; no permit row is needed for a briefing.
PERMIT_ID = uuid.UUID("0192a8f0-0000-7000-8000-000000000007")


def _source(world: TrainingWorld, crew: tuple[Any, ...], **changes: object) -> BriefingSource:
    values: dict[str, object] = {
        "permit_id": PERMIT_ID,
        "permit_number": "DH-20261128-0007",
        "plant_id": world.plant_id,
        "work_type": WorkType.HOT_WORK,
        "location": "一号罐区 T-101",
        "work_content": "更换法兰垫片（动火）",
        "hazards": ("可燃气体", "高温飞溅"),
        "control_measures": ("动火点周围 15 m 清除可燃物", "配备灭火器两具"),
        "emergency_measures": ("立即停止作业并撤离",),
        "crew": crew,
    }
    values.update(changes)
    return BriefingSource(**values)  # type: ignore[arg-type]


async def test_a_briefing_is_complete_once_briefer_and_current_crew_signed(
    world: TrainingWorld,
) -> None:
    wang = await OnboardingFactory(world.database, world.settings).add_worker(world.company, "王五")
    crew = (world.worker_id, world.other_worker_id)

    async def prepare(members: tuple[Any, ...], **changes: object) -> Any:
        async with world.session() as session:
            return await briefings.prepare_briefing(
                session, world.supervisor, _source(world, members, **changes)
            )

    async def status() -> briefings.BriefingStatus:
        async with world.session() as session:
            return await briefings.briefing_status(session, PERMIT_ID)

    async def crew_signs(briefing_id: Any, worker_id: Any, name: str, *, own: bool) -> Any:
        async with world.session() as session:
            return await briefings.sign_as_crew(
                session,
                world.storage,
                world.worker_login if own else world.supervisor,
                briefing_id,
                None if own else worker_id,
                signature_in(name),
                DEVICE,
            )

    briefing = await prepare(crew)
    assert not (await status()).complete
    async with world.session() as session:
        with pytest.raises(NotFound):
            await briefings.prepare_briefing(session, world.contractor_admin, _source(world, crew))
        with pytest.raises(InvalidInput) as empty:
            await briefings.prepare_briefing(
                session, world.supervisor, _source(world, crew, hazards=())
            )
        assert _rules(empty) == [("permit", "briefing_content")]
        with pytest.raises(InvalidInput) as stranger:
            await briefings.prepare_briefing(
                session, world.supervisor, _source(world, (*crew, uuid.uuid4()))
            )
        assert _rules(stranger) == [("crew", "exists")]
        given = await briefings.sign_as_briefer(
            session, world.storage, world.supervisor, briefing.id, signature_in("用户2"), DEVICE
        )
        assert [b.id for b in await briefings.briefings_to_sign(session, world.worker_login)] == [
            briefing.id
        ]
    assert given.worker_id is None
    now = await status()
    assert now.briefer_signed and not now.complete
    assert {w.id for w in now.unsigned} == set(crew)

    on_phone = await crew_signs(briefing.id, world.worker_id, WORKER_NAME, own=True)
    on_tablet = await crew_signs(briefing.id, world.other_worker_id, OTHER_WORKER_NAME, own=False)
    assert (on_phone.device, on_phone.worker_id) == ("own_phone", world.worker_id)
    assert (on_tablet.device, on_tablet.worker_id) == ("briefer_tablet", world.other_worker_id)
    assert (await status()).complete
    with pytest.raises(Conflict):
        await crew_signs(briefing.id, world.worker_id, WORKER_NAME, own=True)

    # A newcomer holds the briefing up until they sign; one who leaves no longer does.
    assert (await prepare((*crew, wang))).id == briefing.id
    assert [w.id for w in (await status()).unsigned] == [wang]
    assert (await prepare(crew)).id == briefing.id
    assert (await status()).complete
    with pytest.raises(NotFound):
        await crew_signs(briefing.id, wang, "王五", own=False)
    await prepare((*crew, wang))
    assert not (await status()).complete
    await crew_signs(briefing.id, wang, "王五", own=False)
    assert (await status()).complete

    # Changed content is a new briefing: the old signatures were for something else.
    changed = await prepare((*crew, wang), hazards=("可燃气体", "高温飞溅", "有毒气体"))
    assert changed.id != briefing.id
    now = await status()
    assert now.briefing is not None and now.briefing.id == changed.id
    assert not now.briefer_signed and len(now.unsigned) == 3
    with pytest.raises(InvalidInput) as stale:
        await crew_signs(briefing.id, world.worker_id, WORKER_NAME, own=False)
    assert _rules(stale) == [("briefing", "current_content")]
    async with world.session() as session:
        assert [b.id for b in await briefings.briefings_to_sign(session, world.worker_login)] == [
            changed.id
        ]
        signed = await session.scalar(select(func.count()).select_from(BriefingSignature))
    assert signed == 4
    assert await _chain_ok(world)


# --- isolation -------------------------------------------------------------------------------


async def test_another_tenant_reaches_nothing_of_this_ones_training(
    any_db: Database, any_settings: Settings, world: TrainingWorld, factory: TenantFactory
) -> None:
    induction = await world.publish()
    taker = await world.worker_taker()
    attempt = await world.take_quiz(taker, induction.id)
    signature = await world.sign(taker, attempt.id)
    async with world.session() as session:
        briefing = await briefings.prepare_briefing(
            session, world.supervisor, _source(world, (world.worker_id,))
        )

    other = await TrainingWorld.create(any_db, any_settings, factory)
    other_taker = await other.worker_taker()
    async with other.session() as session:
        for reach in (
            lambda: services.get_induction(session, other.ehs, induction.id),
            lambda: services.publish(session, other.ehs, induction.id),
            lambda: services.start_attempt(session, other_taker, induction.id),
            lambda: services.get_attempt(session, other_taker, attempt.id),
            lambda: services.get_signature(session, other.ehs, signature.id),
            lambda: services.taker_for(session, other.contractor_admin, world.worker_id),
            lambda: briefings.get_briefing(session, briefing.id),
            lambda: briefings.sign_as_crew(
                session,
                other.storage,
                other.worker_login,
                briefing.id,
                None,
                signature_in(),
                DEVICE,
            ),
        ):
            with pytest.raises(NotFound):
                await reach()
        assert await services.list_inductions(session, other.ehs) == []
        assert await services.induction_board(session, other.ehs, other.plant_id) == []
        assert await records.verify_signature(session, other.storage, signature.id, 1) is None
        assert (await briefings.briefing_status(session, PERMIT_ID)).briefing is None
        assert await briefings.briefings_to_sign(session, other.worker_login) == []

    # A signed link naming the other tenant with this tenant's record is invalid.
    forged = records.signature_ref(signature)
    async with any_db.session() as session:
        verdict = await verify(
            session,
            other.storage,
            type(forged)(other.tenant.id, forged.subject_type, forged.subject_id, 1),
        )
    assert verdict.status == VerificationStatus.INVALID

    if any_db.async_engine.dialect.name == "postgresql":
        # Row-level security alone, without the ORM's tenant filter, hides every training row.
        async with other.session() as session:
            for table in (
                "inductions",
                "induction_versions",
                "quiz_attempts",
                "induction_signatures",
                "briefings",
                "briefing_crew",
            ):
                count = await session.scalar(text(f"SELECT count(*) FROM {table}"))
                assert count == 0, table


async def test_a_permit_changed_back_finds_its_briefing_again(world: TrainingWorld) -> None:
    """One briefing per permit and content: changing the permit back reinstates the briefing of
    that content, with the signatures given on exactly that content."""
    crew = (world.worker_id,)

    async def prepare(**changes: object) -> Any:
        async with world.session() as session:
            return await briefings.prepare_briefing(
                session, world.supervisor, _source(world, crew, **changes)
            )

    async def complete() -> bool:
        async with world.session() as session:
            return await briefings.briefing_complete(session, PERMIT_ID)

    first = await prepare()
    async with world.session() as session:
        await briefings.sign_as_briefer(
            session, world.storage, world.supervisor, first.id, signature_in("用户2"), DEVICE
        )
        await briefings.sign_as_crew(
            session, world.storage, world.worker_login, first.id, None, signature_in(), DEVICE
        )
    assert await complete()
    changed = await prepare(hazards=("有毒气体",))
    assert changed.id != first.id and not await complete()
    back = await prepare()
    assert back.id == first.id and back.superseded_at is None
    assert await complete()
    async with world.session() as session:
        stale = await session.get_one(type(changed), changed.id)
    assert stale.superseded_at is not None
    assert await _chain_ok(world)
