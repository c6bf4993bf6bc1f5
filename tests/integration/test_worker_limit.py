"""The plan's ``max_active_workers`` where it bites: an EHS review that verifies workers of an
admitted company, or admits a company with its verified workers. A review that would pass the
limit answers 402 naming the limit, the count and the upgrade, and changes nothing; with billing
off nothing is limited. On SQLite; no call reaches Stripe on these paths."""

from __future__ import annotations

import dataclasses
import json
import re
import uuid
from collections.abc import AsyncIterator

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select

from infra.db import Database
from infra.errors import PaymentRequired
from infra.settings import Settings
from onboarding import services
from onboarding.catalogue import DocumentKind
from onboarding.models import Contractor, ContractorDocument, Worker
from onboarding.schemas import ItemVerdict, ReviewIn
from portal.app import create_app
from tenants import entitlements
from tenants.entitlements import BillingPolicy
from tenants.models import Role
from tests.factories import SeededTenant, TenantFactory, audit_actions, issue_token
from tests.integration.test_billing import T0, deliver, subscription_event
from tests.integration.test_billing import (  # fixtures: pytest finds them here
    billing_settings as billing_settings,
)
from tests.integration.test_billing import (
    stripe_api as stripe_api,
)
from tests.onboarding_factories import Company, OnboardingFactory, host_viewer, in_tenant

PLANS = {
    "starter": {"price": "price_starter", "max_plants": 1, "max_active_workers": 2},
    "pro": {"price": "price_pro", "max_plants": 5, "max_active_workers": 4},
    "enterprise": {"price": "price_enterprise"},
}
HOSTS = ((Role.TENANT_ADMIN, None), (Role.EHS_OFFICER, None))
CSRF_FIELD = re.compile(r'name="_csrf_token"\s+value="([^"]+)"')
# Browsers send these forms as multipart; an empty file part makes the test client do the same.
NO_FILE = {"unused": ("", b"", "application/octet-stream")}


@pytest.fixture
def limited_settings(billing_settings: Settings) -> Settings:
    return dataclasses.replace(billing_settings, billing_plans=json.dumps(PLANS))


@pytest.fixture
def policy(limited_settings: Settings) -> BillingPolicy:
    return BillingPolicy.from_settings(limited_settings)


@pytest.fixture
async def tenant(sqlite_db: Database, factory: TenantFactory) -> SeededTenant:
    return await factory.create(sqlite_db, plants=("P1",), users=HOSTS)


@pytest.fixture
def onboarding(sqlite_db: Database, limited_settings: Settings) -> OnboardingFactory:
    return OnboardingFactory(sqlite_db, limited_settings)


@pytest.fixture
async def client(limited_settings: Settings) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(app=create_app(limited_settings)) as test_client:
        test_client.follow_redirects = False
        test_client.cookies.set("portal_lang", "en")
        yield test_client


async def csrf(client: AsyncTestClient[Litestar], path: str) -> str:
    page = await client.get(path)
    assert page.status_code == 200, page.text
    match = CSRF_FIELD.search(page.text)
    assert match is not None, page.text
    return match.group(1)


async def submitted(onboarding: OnboardingFactory, tenant: SeededTenant, *names: str) -> Company:
    """A company under review with its documents and the named workers, all still pending."""
    company = await onboarding.register(tenant)
    await onboarding.add_documents(company)
    for name in names:
        await onboarding.add_worker(company, name)
    await onboarding.submit(company)
    return company


def verified(*ids: uuid.UUID) -> list[ItemVerdict]:
    return [ItemVerdict(id=item, verdict="verified") for item in ids]


def approval(company: Company, *workers: str) -> ReviewIn:
    return ReviewIn(
        decision="approve",
        documents=verified(*company.documents.values()),
        workers=verified(*(company.workers[name] for name in workers)),
    )


async def review(
    database: Database, company: Company, data: ReviewIn, billing: BillingPolicy
) -> None:
    async with in_tenant(database, company.tenant.id) as session:
        await services.review_contractor(
            session, host_viewer(company.tenant), company.contractor_id, data, billing=billing
        )


async def active_workers(database: Database, tenant: SeededTenant) -> int:
    async with in_tenant(database, tenant.id) as session:
        return await entitlements.active_worker_count(session)


async def states(database: Database, company: Company) -> tuple[str, dict[str, str], list[str]]:
    """The company's state, its workers' by name and its documents'."""
    async with in_tenant(database, company.tenant.id) as session:
        contractor = await session.get_one(Contractor, company.contractor_id)
        workers = await session.execute(
            select(Worker.name, Worker.state).where(Worker.contractor_id == company.contractor_id)
        )
        documents = await session.scalars(
            select(ContractorDocument.state)
            .where(ContractorDocument.contractor_id == company.contractor_id)
            .order_by(ContractorDocument.kind)
        )
        return contractor.state, dict(workers.tuples().all()), list(documents)


async def test_below_the_limit_workers_are_admitted_up_to_it(
    sqlite_db: Database, tenant: SeededTenant, onboarding: OnboardingFactory, policy: BillingPolicy
) -> None:
    company = await submitted(onboarding, tenant, "张三")
    await review(sqlite_db, company, approval(company, "张三"), policy)
    assert await active_workers(sqlite_db, tenant) == 1

    await onboarding.add_worker(company, "李四")
    await review(sqlite_db, company, ReviewIn(workers=verified(company.workers["李四"])), policy)
    assert await active_workers(sqlite_db, tenant) == 2


async def test_at_the_limit_the_next_worker_answers_402_and_nothing_changes(
    client: AsyncTestClient[Litestar],
    sqlite_db: Database,
    tenant: SeededTenant,
    onboarding: OnboardingFactory,
    policy: BillingPolicy,
) -> None:
    company = await submitted(onboarding, tenant, "张三", "李四")
    await review(sqlite_db, company, approval(company, "张三", "李四"), policy)
    await onboarding.add_worker(company, "王五")
    token = await issue_token(sqlite_db, tenant.id, tenant.user(Role.EHS_OFFICER).id)
    before = await audit_actions(sqlite_db, tenant.id)

    answer = await client.post(
        f"/api/v1/contractors/{company.contractor_id}/review",
        json={"workers": [{"id": str(company.workers["王五"]), "verdict": "verified"}]},
        headers={"Authorization": f"Bearer {token}"},
    )

    assert answer.status_code == 402, answer.text
    assert answer.json()["detail"] == "Your plan does not allow more active workers."
    (problem,) = answer.json()["errors"]
    assert (problem["field"], problem["rule"]) == ("plan", "max_active_workers")
    assert problem["message"] == (
        "The starter plan allows at most 2 active workers; the tenant has 2, and this would add "
        f"1. A tenant administrator can upgrade to pro under Billing (/t/{tenant.slug}/admin/"
        "billing) or with POST /api/v1/billing/checkout."
    )
    assert await states(sqlite_db, company) == (
        "approved",
        {"张三": "verified", "李四": "verified", "王五": "pending"},
        ["verified"] * len(DocumentKind),
    )
    assert await audit_actions(sqlite_db, tenant.id) == before
    assert await active_workers(sqlite_db, tenant) == 2

    # The review page asks the same, and shows the refusal on top of the form.
    ehs = tenant.user(Role.EHS_OFFICER)
    signed_in = await client.post(
        "/login",
        data={
            "tenant": tenant.slug,
            "email": ehs.email,
            "password": ehs.password,
            "_csrf_token": await csrf(client, f"/t/{tenant.slug}/login"),
        },
    )
    assert signed_in.status_code in (302, 303), signed_in.text
    page = f"/t/{tenant.slug}/review/{company.contractor_id}"
    refused = await client.post(
        page,
        data={
            "_csrf_token": await csrf(client, page),
            f"worker_{company.workers['王五'].hex}_verdict": "verified",
        },
        files=NO_FILE,
    )
    assert refused.status_code == 402, refused.text
    assert "at most 2 active workers; the tenant has 2, and this would add 1." in refused.text
    assert f"(/t/{tenant.slug}/admin/billing)" in refused.text
    assert (await states(sqlite_db, company))[1]["王五"] == "pending"
    assert await audit_actions(sqlite_db, tenant.id, "worker.") == [
        action for action in before if action.startswith("worker.")
    ]


async def test_an_approval_past_the_limit_is_refused_as_a_whole(
    sqlite_db: Database, tenant: SeededTenant, onboarding: OnboardingFactory, policy: BillingPolicy
) -> None:
    first = await submitted(onboarding, tenant, "张三")
    await review(sqlite_db, first, approval(first, "张三"), policy)
    second = await submitted(onboarding, tenant, "赵六", "钱七")
    # Verified while the company is under review, a worker cannot go on a permit yet: no count.
    await review(sqlite_db, second, ReviewIn(workers=verified(second.workers["赵六"])), policy)
    assert await active_workers(sqlite_db, tenant) == 1
    before = await audit_actions(sqlite_db, tenant.id)
    unchanged = await states(sqlite_db, second)

    with pytest.raises(PaymentRequired) as refused:
        await review(sqlite_db, second, approval(second, "钱七"), policy)

    (problem,) = refused.value.problems
    assert (problem.field, problem.rule) == ("plan", "max_active_workers")
    assert problem.params["count"] == 1
    assert problem.params["adding"] == 2, "the worker verified earlier counts on approval"
    assert problem.params["upgrade"] == "pro"
    assert await states(sqlite_db, second) == unchanged
    assert unchanged == (
        "submitted",
        {"赵六": "verified", "钱七": "pending"},
        ["pending"] * len(DocumentKind),
    )
    assert await audit_actions(sqlite_db, tenant.id) == before
    assert await active_workers(sqlite_db, tenant) == 1

    await deliver(
        sqlite_db,
        policy,
        subscription_event(
            "customer.subscription.created", T0, tenant.id, status="active", price="price_pro"
        ),
    )
    await review(sqlite_db, second, approval(second, "钱七"), policy)
    assert await active_workers(sqlite_db, tenant) == 3


async def test_billing_off_limits_no_workers(
    sqlite_settings: Settings,
    sqlite_db: Database,
    tenant: SeededTenant,
    onboarding: OnboardingFactory,
) -> None:
    off = BillingPolicy.from_settings(
        dataclasses.replace(sqlite_settings, billing_plans=json.dumps(PLANS))
    )
    assert not off.enabled
    company = await submitted(onboarding, tenant, "张三", "李四", "王五")
    await review(sqlite_db, company, approval(company, "张三", "李四", "王五"), off)
    assert await active_workers(sqlite_db, tenant) == 3


async def test_only_workers_of_an_admitted_company_count(
    sqlite_db: Database, tenant: SeededTenant, onboarding: OnboardingFactory, policy: BillingPolicy
) -> None:
    company = await submitted(onboarding, tenant, "张三", "李四")
    await review(sqlite_db, company, approval(company, "张三", "李四"), policy)
    reviewer = host_viewer(tenant)
    async with in_tenant(sqlite_db, tenant.id) as session:
        await services.suspend_contractor(session, reviewer, company.contractor_id, reason="整改")
    assert await active_workers(sqlite_db, tenant) == 2, "a suspended company keeps its places"
    async with in_tenant(sqlite_db, tenant.id) as session:
        await services.blacklist_contractor(
            session, reviewer, company.contractor_id, reason="重大事故"
        )
    assert await active_workers(sqlite_db, tenant) == 0

    other = await submitted(onboarding, tenant, "赵六", "钱七")
    await review(sqlite_db, other, approval(other, "赵六", "钱七"), policy)
    assert await active_workers(sqlite_db, tenant) == 2
