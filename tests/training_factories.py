"""Building training scenarios for tests through the real services: induction content, drawn
signatures that pass the pad's rules, principals for host users, contractor administrators and
workers with their own login, and a published induction taken and signed.

Typical use in an integration test::

    world = await TrainingWorld.create(any_db, any_settings, factory)
    induction = await world.publish(induction_content())
    taker = await world.worker_taker()
    attempt = await world.take_quiz(taker, induction.id)
    signature = await world.sign(taker, attempt.id)

Every signature made with :func:`signature_in` draws different strokes (a counter moves them),
so two signatures never collide on the "not replayed" rule unless a test reuses one on purpose.
Host users get no password and only the two contractor accounts are hashed, which keeps a
world quick to build.
"""

from __future__ import annotations

import dataclasses
import itertools
import uuid
from collections.abc import Sequence

from infra.db import Database
from infra.security import TokenSigner
from infra.settings import Settings
from infra.storage import LocalStorage
from onboarding import services as onboarding_services
from onboarding.catalogue import WorkType
from onboarding.models import Worker
from onboarding.schemas import ContractorUserIn
from tenants import services as tenant_services
from tenants.access import Grant, Principal
from tenants.models import Role
from tests.factories import SeededTenant, SeededUser, TenantFactory
from tests.onboarding_factories import Company, OnboardingFactory, in_tenant
from training import services
from training.evidence import SigningDevice
from training.models import Induction, InductionSignature, InductionVersion, QuizAttempt
from training.schemas import (
    AnswersIn,
    InductionContent,
    InductionIn,
    PositionIn,
    Question,
    Section,
    SignatureIn,
    StrokesIn,
)

PAD_WIDTH = 400
PAD_HEIGHT = 200
DEVICE = SigningDevice(ip_address="203.0.113.7", user_agent="Mozilla/5.0 (test phone)")
POSITION = PositionIn(latitude=31.2304, longitude=121.4737, accuracy_m=12.0)
WORKER_NAME = "张三"
OTHER_WORKER_NAME = "李四"
HOSTS = (
    (Role.TENANT_ADMIN, None),
    (Role.EHS_OFFICER, None),
    (Role.UNIT_SUPERVISOR, "P1"),
)

_stroke_offsets = itertools.count(1)


# --- content ---------------------------------------------------------------------------------


def question(
    question_id: str, *, correct: Sequence[int] = (0,), kind: str = "single", options: int = 4
) -> Question:
    return Question(
        id=question_id,
        text=f"问题 {question_id}：动火作业前必须做什么？",
        kind=kind,  # type: ignore[arg-type]
        options=[f"选项 {index}" for index in range(options)],
        correct=list(correct),
    )


def induction_content(
    *,
    questions: int | Sequence[Question] = 6,
    draw_count: int = 4,
    pass_mark: int = 75,
    **changes: object,
) -> InductionContent:
    """An induction: one section, a bank (by default ``questions`` single-choice questions
    ``q1``…``qN`` whose correct answer is option 0) and the quiz rules given. Not checked, so a
    test can build content the services must refuse."""
    bank = (
        [question(f"q{index}") for index in range(1, questions + 1)]
        if isinstance(questions, int)
        else list(questions)
    )
    values: dict[str, object] = {
        "title": "入厂安全教育",
        "sections": [Section(title="厂区安全须知", body="进入厂区必须佩戴**安全帽**。")],
        "questions": bank,
        "draw_count": draw_count,
        "pass_mark": pass_mark,
    }
    values.update(changes)
    return InductionContent(**values)  # type: ignore[arg-type]


def answers_for(content: InductionContent, drawn: Sequence[str], *, right: int) -> AnswersIn:
    """Answers to the drawn questions: the first ``right`` correctly, the rest wrongly."""
    by_id = {question.id: question for question in content.questions}
    answers = {}
    for index, question_id in enumerate(drawn):
        correct = by_id[question_id].correct
        if index < right:
            answers[question_id] = list(correct)
        else:
            answers[question_id] = [
                next(i for i in range(len(by_id[question_id].options)) if i not in correct)
            ]
    return AnswersIn(answers=answers)


# --- signatures ------------------------------------------------------------------------------


def strokes(offset: float | None = None) -> StrokesIn:
    """Two strokes of 15 points each across most of a 400×200 pad: a drawing every rule accepts.
    ``offset`` shifts it (by default a fresh offset each call, so each drawing is new)."""
    shift = (next(_stroke_offsets) if offset is None else offset) * 0.1
    first = [(40 + 20 * i + shift, 60 + (i % 3) * 10, 15 * i) for i in range(15)]
    second = [(60 + 18 * i + shift, 140 - (i % 4) * 8, 400 + 15 * i) for i in range(15)]
    return StrokesIn(width=PAD_WIDTH, height=PAD_HEIGHT, strokes=[first, second])


def signature_in(
    full_name: str = WORKER_NAME,
    *,
    drawing: StrokesIn | None = None,
    consent: bool = True,
    position: PositionIn | None = POSITION,
) -> SignatureIn:
    return SignatureIn(
        full_name=full_name,
        consent=consent,
        strokes=drawing or strokes(),
        position=position,
    )


def local_storage(settings: Settings) -> LocalStorage:
    return LocalStorage(settings.storage_dir, TokenSigner(settings.secret_key), settings.base_url)


# --- principals ------------------------------------------------------------------------------


def principal(
    tenant: SeededTenant,
    user_id: uuid.UUID,
    role: Role,
    *,
    name: str,
    plant_id: uuid.UUID | None = None,
) -> Principal:
    """A signed-in user with one role, as the auth layer would build it."""
    return Principal(
        tenant_id=tenant.id,
        tenant_slug=tenant.slug,
        tenant_name=f"测试集团 {tenant.slug}",
        user_id=user_id,
        name=name,
        email=f"{user_id.hex[:8]}@{tenant.slug}.example",
        locale="zh_CN",
        grants=frozenset({Grant(role, plant_id)}),
    )


def host_principal(tenant: SeededTenant, role: Role) -> Principal:
    """The seeded host user of ``role`` (see :data:`HOSTS`), limited to its plant if it was."""
    index = next(i for i, user in enumerate(tenant.users) if user.role == role)
    user = tenant.users[index]
    plant_id = tenant.plants[user.plant_code] if user.plant_code else None
    return principal(tenant, user.id, role, name=f"用户{index}", plant_id=plant_id)


# --- a whole world ---------------------------------------------------------------------------


@dataclasses.dataclass
class TrainingWorld:
    """A tenant with plants P1 and P2, host users (:data:`HOSTS`), and one registered company
    (work types hot work and height) with workers 张三 — who has his own login — and 李四."""

    database: Database
    settings: Settings
    storage: LocalStorage
    tenant: SeededTenant
    company: Company
    ehs: Principal
    supervisor: Principal
    contractor_admin: Principal
    worker_login: Principal
    worker_id: uuid.UUID
    other_worker_id: uuid.UUID

    @classmethod
    async def create(
        cls, database: Database, settings: Settings, factory: TenantFactory
    ) -> TrainingWorld:
        tenant = await factory.create(database, plants=("P1", "P2"), users=())
        async with in_tenant(database, tenant.id) as session:
            for index, (role, plant_code) in enumerate(HOSTS):
                # Host users never sign in here: no password, so no Argon2 hash to wait for.
                user = await tenant_services.create_user(
                    session,
                    email=f"{role.value}.{index}@{tenant.slug}.example",
                    name=f"用户{index}",
                    password=None,
                )
                await tenant_services.grant_role(
                    session,
                    user_id=user.id,
                    role=role,
                    plant_id=tenant.plants[plant_code] if plant_code else None,
                )
                tenant.users.append(SeededUser(user.id, user.email, "", role, plant_code))
        onboarding = OnboardingFactory(database, settings)
        company = await onboarding.register(tenant)
        worker_id = await onboarding.add_worker(company, WORKER_NAME)
        other_worker_id = await onboarding.add_worker(company, OTHER_WORKER_NAME)
        async with in_tenant(database, tenant.id) as session:
            login = await onboarding_services.add_contractor_user(
                session,
                company.admin,
                company.contractor_id,
                ContractorUserIn(
                    email=f"worker-{uuid.uuid4().hex[:8]}@contractor.example",
                    name=WORKER_NAME,
                    password="worker-pass-1",
                    role="contractor_worker",
                    worker_id=worker_id,
                ),
            )
        return cls(
            database=database,
            settings=settings,
            storage=local_storage(settings),
            tenant=tenant,
            company=company,
            ehs=host_principal(tenant, Role.EHS_OFFICER),
            supervisor=host_principal(tenant, Role.UNIT_SUPERVISOR),
            contractor_admin=principal(
                tenant, company.admin.user_id, Role.CONTRACTOR_ADMIN, name="承包商管理员"
            ),
            worker_login=principal(tenant, login.id, Role.CONTRACTOR_WORKER, name=WORKER_NAME),
            worker_id=worker_id,
            other_worker_id=other_worker_id,
        )

    @property
    def plant_id(self) -> uuid.UUID:
        return self.tenant.plants["P1"]

    def session(self):  # type: ignore[no-untyped-def]
        """A session in the world's tenant, committed when the block ends without error."""
        return in_tenant(self.database, self.tenant.id)

    async def worker_taker(self) -> services.Taker:
        """张三 on his own phone."""
        async with self.session() as session:
            return await services.taker_for(session, self.worker_login)

    async def assisted_taker(self, worker_id: uuid.UUID | None = None) -> services.Taker:
        """A worker (李四 by default) in an assisted session run by the company's administrator."""
        async with self.session() as session:
            return await services.taker_for(
                session, self.contractor_admin, worker_id or self.other_worker_id
            )

    async def worker(self, worker_id: uuid.UUID) -> Worker:
        async with self.session() as session:
            return await session.get_one(Worker, worker_id)

    async def publish(
        self,
        content: InductionContent | None = None,
        *,
        work_type: WorkType | None = None,
        plant: str = "P1",
    ) -> Induction:
        """A new induction, published as version 1."""
        async with self.session() as session:
            induction = await services.create_induction(
                session,
                self.ehs,
                InductionIn(
                    plant_id=self.tenant.plants[plant],
                    work_type=work_type,
                    content=content or induction_content(),
                ),
            )
            await services.publish(session, self.ehs, induction.id)
        return induction

    async def version(self, induction_id: uuid.UUID) -> InductionVersion:
        async with self.session() as session:
            induction = await services.get_induction(session, self.ehs, induction_id)
            version = await services.current_version(session, induction)
        assert version is not None
        return version

    async def take_quiz(
        self, taker: services.Taker, induction_id: uuid.UUID, *, right: int | None = None
    ) -> QuizAttempt:
        """Start an attempt and answer ``right`` drawn questions correctly (all by default)."""
        async with self.session() as session:
            attempt = await services.start_attempt(session, taker, induction_id)
            version = await services.attempt_version(session, attempt)
            content = services.version_content(version)
            answers = answers_for(
                content, attempt.drawn, right=len(attempt.drawn) if right is None else right
            )
            return await services.submit_answers(session, taker, attempt.id, answers)

    async def sign(
        self,
        taker: services.Taker,
        attempt_id: uuid.UUID,
        data: SignatureIn | None = None,
    ) -> InductionSignature:
        async with self.session() as session:
            return await services.sign_induction(
                session,
                self.storage,
                taker,
                attempt_id,
                data or signature_in(taker.worker.name),
                DEVICE,
            )

    async def inducted(self, taker: services.Taker, induction_id: uuid.UUID) -> InductionSignature:
        """Pass the induction's quiz and sign it."""
        attempt = await self.take_quiz(taker, induction_id)
        assert attempt.passed
        return await self.sign(taker, attempt.id)
