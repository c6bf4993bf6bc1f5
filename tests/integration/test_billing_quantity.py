"""Plans are priced per plant: Checkout and plan changes buy one unit per plant, an added plant
moves the subscription's quantity through the outbox after the commit (a failing Stripe keeps
the plant and is tried again), the billing page shows the total and a quantity still on its
way, and with billing off none of it happens. Against the local Stripe stand-in, on SQLite."""

from __future__ import annotations

import dataclasses
import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select

from infra.db import Database
from infra.outbox import OutboxMessage, OutboxStatus, deliver_outbox_message
from infra.settings import Settings
from infra.tenancy import tenant_scope
from portal.app import create_app
from tenants import billing, services
from tenants.entitlements import BillingPolicy
from tenants.models import Plant, Role
from tests.factories import SeededTenant, TenantFactory, audit_actions, issue_token
from tests.integration.test_billing import (
    T0,
    StripeStandIn,
    bearer,
    checkout_event,
    deliver,
    subscription_event,
)
from tests.integration.test_billing import (  # fixtures: pytest finds them here
    billing_settings as billing_settings,
)
from tests.integration.test_billing import (
    client as client,
)
from tests.integration.test_billing import (
    policy as policy,
)
from tests.integration.test_billing import (
    stripe_api as stripe_api,
)
from tests.integration.test_billing_page import Site
from tests.integration.test_billing_page import (
    site as site,
)
from tests.integration.test_billing_page import (
    stand_in as stand_in,
)

StripeApi = tuple[str, StripeStandIn]


async def subscribed(
    database: Database, policy: BillingPolicy, tenant: SeededTenant, price: str = "price_pro"
) -> str:
    """The tenant's Checkout completed and its live subscription reported; the subscription's
    id, the tenant's own, since the stand-in keeps one quantity per subscription."""
    subscription = f"sub_{tenant.slug}"
    customer = f"cus_{tenant.slug}"
    await deliver(database, policy, checkout_event(T0, tenant.id, customer=customer))
    await deliver(
        database,
        policy,
        subscription_event(
            "customer.subscription.created",
            T0,
            tenant.id,
            status="active",
            price=price,
            subscription=subscription,
            customer=customer,
        ),
    )
    return subscription


async def quantity_messages(database: Database, tenant_id: uuid.UUID) -> list[OutboxMessage]:
    async with database.session() as session:
        with tenant_scope(tenant_id):
            query = select(OutboxMessage).where(OutboxMessage.topic == billing.QUANTITY_TOPIC)
            return list((await session.execute(query.order_by(OutboxMessage.created_at))).scalars())


def run_delivery(database: Database, tenant_id: uuid.UUID, message: OutboxMessage) -> None:
    """The outbox's delivery task, run here as the worker runs it for a published message."""
    with tenant_scope(tenant_id), database.sync_session() as session:
        deliver_outbox_message.run(session, message_id=str(message.id), attempt=message.attempts)
        session.commit()


async def plant_total(database: Database, tenant_id: uuid.UUID) -> int:
    async with database.session() as session:
        with tenant_scope(tenant_id):
            return (await session.execute(select(func.count()).select_from(Plant))).scalar_one()


def updates_of(stand_in: StripeStandIn, subscription: str) -> list[dict[str, list[str]]]:
    return [
        call.params
        for call in stand_in.calls_to(f"/v1/subscriptions/{subscription}")
        if call.method == "POST"
    ]


@pytest.fixture
def worker_uses(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Point the quantity task at these settings, as a worker started with them would be."""

    def use(settings: Settings) -> None:
        monkeypatch.setattr("tenants.tasks.worker_settings", lambda: settings)

    return use


# --- what Checkout and plan changes buy ----------------------------------------------------------


async def test_checkout_and_plan_changes_buy_one_unit_per_plant(
    client: AsyncTestClient[Litestar],
    sqlite_db: Database,
    factory: TenantFactory,
    policy: BillingPolicy,
    stripe_api: StripeApi,
) -> None:
    _base, stand_in = stripe_api
    tenant = await factory.create(sqlite_db, plants=("P1", "P2", "P3"))
    token = await issue_token(sqlite_db, tenant.id, tenant.user(Role.TENANT_ADMIN).id)

    started = await client.post(
        "/api/v1/billing/checkout", json={"plan": "pro"}, headers=bearer(token)
    )
    assert started.status_code == 200, started.text
    checkout = stand_in.calls_to("/v1/checkout/sessions")[-1]
    assert checkout.params["client_reference_id"] == [str(tenant.id)]
    assert checkout.params["line_items[0][price]"] == ["price_pro"]
    assert checkout.params["line_items[0][quantity]"] == ["3"]

    await subscribed(sqlite_db, policy, tenant)
    changed = await client.post(
        "/api/v1/billing/checkout", json={"plan": "enterprise"}, headers=bearer(token)
    )
    assert changed.status_code == 200, changed.text
    portal = stand_in.calls_to("/v1/billing_portal/sessions")[-1]
    items = "flow_data[subscription_update_confirm][items][0]"
    assert portal.params[f"{items}[price]"] == ["price_enterprise"]
    assert portal.params[f"{items}[quantity]"] == ["3"]


async def test_a_tenant_without_plants_checks_out_one_unit(
    sqlite_db: Database, factory: TenantFactory, policy: BillingPolicy, stripe_api: StripeApi
) -> None:
    _base, stand_in = stripe_api
    tenant = await factory.create(sqlite_db, plants=())
    async with sqlite_db.session() as session:
        with tenant_scope(tenant.id):
            await billing.start_checkout(session, policy, tenant.id, "starter")
    assert stand_in.calls_to("/v1/checkout/sessions")[-1].params["line_items[0][quantity]"] == ["1"]


# --- the quantity follows the plants -------------------------------------------------------------


async def test_an_added_plant_sets_the_subscription_quantity_after_the_commit(
    client: AsyncTestClient[Litestar],
    sqlite_db: Database,
    factory: TenantFactory,
    policy: BillingPolicy,
    billing_settings: Settings,
    stripe_api: StripeApi,
    worker_uses: Any,
) -> None:
    _base, stand_in = stripe_api
    tenant = await factory.create(sqlite_db, plants=("P1",))
    subscription = await subscribed(sqlite_db, policy, tenant)
    token = await issue_token(sqlite_db, tenant.id, tenant.user(Role.TENANT_ADMIN).id)
    worker_uses(billing_settings)

    added = await client.post(
        "/api/v1/plants", json={"code": "P2", "name": "二厂"}, headers=bearer(token)
    )
    assert added.status_code == 201, added.text
    assert updates_of(stand_in, subscription) == [], "Stripe is called after the commit only"
    [message] = await quantity_messages(sqlite_db, tenant.id)
    assert message.status == OutboxStatus.PENDING

    run_delivery(sqlite_db, tenant.id, message)
    [update] = updates_of(stand_in, subscription)
    assert update["items[0][id]"] == ["si_1"]
    assert update["items[0][quantity]"] == ["2"]
    assert update["proration_behavior"] == ["create_prorations"]
    [message] = await quantity_messages(sqlite_db, tenant.id)
    assert message.status == OutboxStatus.DELIVERED
    assert await audit_actions(sqlite_db, tenant.id, "billing.quantity") == [
        "billing.quantity_changed"
    ]

    # The count is read when the task runs: two plants queued, one update to the final count,
    # and a repeat finds Stripe there already.
    for code in ("P3", "P4"):
        more = await client.post(
            "/api/v1/plants", json={"code": code, "name": code}, headers=bearer(token)
        )
        assert more.status_code == 201, more.text
    queued = [m for m in await quantity_messages(sqlite_db, tenant.id) if m.status == "pending"]
    assert len(queued) == 2
    for pending in reversed(queued):
        run_delivery(sqlite_db, tenant.id, pending)
    assert [u["items[0][quantity]"] for u in updates_of(stand_in, subscription)] == [["2"], ["4"]]
    with tenant_scope(tenant.id), sqlite_db.sync_session() as session:
        assert billing.sync_quantity(session, policy) == 4
    assert len(updates_of(stand_in, subscription)) == 2, "no change, no update"


async def test_a_rolled_back_plant_queues_nothing_and_an_unsubscribed_tenant_nothing(
    sqlite_db: Database, factory: TenantFactory, policy: BillingPolicy
) -> None:
    tenant = await factory.create(sqlite_db, plants=("P1",))
    async with sqlite_db.session() as session:
        with tenant_scope(tenant.id):
            await services.add_plant(session, code="P2", name="无订阅")
            await session.commit()
    assert await quantity_messages(sqlite_db, tenant.id) == [], "no subscription to follow"

    await subscribed(sqlite_db, policy, tenant)
    async with sqlite_db.session() as session:
        with tenant_scope(tenant.id):
            await services.add_plant(session, code="P3", name="回滚")
            await session.rollback()
    assert await quantity_messages(sqlite_db, tenant.id) == []
    assert await plant_total(sqlite_db, tenant.id) == 2


async def test_a_failing_stripe_keeps_the_plant_and_is_tried_again(
    client: AsyncTestClient[Litestar],
    sqlite_db: Database,
    factory: TenantFactory,
    policy: BillingPolicy,
    billing_settings: Settings,
    stripe_api: StripeApi,
    worker_uses: Any,
) -> None:
    base, stand_in = stripe_api
    tenant = await factory.create(sqlite_db, plants=("P1",))
    subscription = await subscribed(sqlite_db, policy, tenant)
    token = await issue_token(sqlite_db, tenant.id, tenant.user(Role.TENANT_ADMIN).id)
    added = await client.post(
        "/api/v1/plants", json={"code": "P2", "name": "二厂"}, headers=bearer(token)
    )
    assert added.status_code == 201, added.text

    worker_uses(dataclasses.replace(billing_settings, stripe_api_base=base + "/nowhere"))
    [message] = await quantity_messages(sqlite_db, tenant.id)
    due = message.next_attempt_at
    run_delivery(sqlite_db, tenant.id, message)
    [message] = await quantity_messages(sqlite_db, tenant.id)
    assert (message.status, message.attempts) == (OutboxStatus.PENDING, 1)
    assert "BillingProviderFailed" in (message.last_error or "")
    assert message.next_attempt_at > due, "tried again after a backoff"
    assert await plant_total(sqlite_db, tenant.id) == 2, "the plant stays"
    assert updates_of(stand_in, subscription) == []

    worker_uses(billing_settings)
    run_delivery(sqlite_db, tenant.id, message)
    [message] = await quantity_messages(sqlite_db, tenant.id)
    assert message.status == OutboxStatus.DELIVERED
    assert [u["items[0][quantity]"] for u in updates_of(stand_in, subscription)] == [["2"]]


async def test_a_retired_plant_is_no_longer_billed_and_comes_back_within_the_plan(
    client: AsyncTestClient[Litestar],
    sqlite_db: Database,
    factory: TenantFactory,
    policy: BillingPolicy,
    billing_settings: Settings,
    stripe_api: StripeApi,
    worker_uses: Any,
) -> None:
    _base, stand_in = stripe_api
    tenant = await factory.create(
        sqlite_db, plants=("P1", "P2"), users=((Role.TENANT_ADMIN, None), (Role.EHS_OFFICER, None))
    )
    subscription = await subscribed(sqlite_db, policy, tenant, price="price_starter")
    with tenant_scope(tenant.id), sqlite_db.sync_session() as session:
        assert billing.sync_quantity(session, policy) == 2
        session.commit()
    token = await issue_token(sqlite_db, tenant.id, tenant.user(Role.TENANT_ADMIN).id)
    worker_uses(billing_settings)
    p2 = tenant.plants["P2"]

    ehs = await issue_token(sqlite_db, tenant.id, tenant.user(Role.EHS_OFFICER).id)
    forbidden = await client.post(f"/api/v1/plants/{p2}/retire", headers=bearer(ehs))
    assert forbidden.status_code == 403, forbidden.text

    retired = await client.post(f"/api/v1/plants/{p2}/retire", headers=bearer(token))
    assert retired.status_code == 200, retired.text
    assert retired.json()["retired_at"] is not None
    listed = await client.get("/api/v1/plants", headers=bearer(token))
    assert {p["code"]: p["retired_at"] is not None for p in listed.json()} == {
        "P1": False,
        "P2": True,
    }
    [message] = await quantity_messages(sqlite_db, tenant.id)
    run_delivery(sqlite_db, tenant.id, message)
    assert [u["items[0][quantity]"] for u in updates_of(stand_in, subscription)] == [
        ["2"],
        ["1"],
    ]
    overview = await client.get("/api/v1/billing", headers=bearer(token))
    assert overview.json()["usage"]["plants"] == 1

    # On the starter plan the one plant in service fills it: P2 comes back only with an upgrade.
    refused = await client.post(f"/api/v1/plants/{p2}/reinstate", headers=bearer(token))
    assert refused.status_code == 402, refused.text
    [problem] = refused.json()["errors"]
    assert (problem["field"], problem["rule"]) == ("plan", "max_plants")
    p1_retired = await client.post(
        f"/api/v1/plants/{tenant.plants['P1']}/retire", headers=bearer(token)
    )
    assert p1_retired.status_code == 200, p1_retired.text
    back = await client.post(f"/api/v1/plants/{p2}/reinstate", headers=bearer(token))
    assert back.status_code == 200, back.text
    assert back.json()["retired_at"] is None
    pending = [m for m in await quantity_messages(sqlite_db, tenant.id) if m.status == "pending"]
    assert len(pending) == 2, "one message per change, even for the same plant again"
    for message in pending:
        run_delivery(sqlite_db, tenant.id, message)
    assert await audit_actions(sqlite_db, tenant.id, "plant.") == [
        "plant.created",
        "plant.created",
        "plant.retired",
        "plant.retired",
        "plant.reinstated",
    ]


async def test_billing_off_calls_nothing(
    sqlite_settings: Settings,
    sqlite_db: Database,
    factory: TenantFactory,
    policy: BillingPolicy,
    stripe_api: StripeApi,
    worker_uses: Any,
) -> None:
    _base, stand_in = stripe_api
    calls_before = len(stand_in.calls)
    tenant = await factory.create(sqlite_db, plants=("P1",))
    token = await issue_token(sqlite_db, tenant.id, tenant.user(Role.TENANT_ADMIN).id)
    async with AsyncTestClient(app=create_app(sqlite_settings)) as plain:
        added = await plain.post(
            "/api/v1/plants", json={"code": "P2", "name": "二厂"}, headers=bearer(token)
        )
        assert added.status_code == 201, added.text
    assert await quantity_messages(sqlite_db, tenant.id) == []
    assert stand_in.calls[calls_before:] == []

    # A message queued while billing was on finds it switched off when it runs.
    subscribed_tenant = await factory.create(sqlite_db, plants=("P1",))
    await subscribed(sqlite_db, policy, subscribed_tenant)
    async with sqlite_db.session() as session:
        with tenant_scope(subscribed_tenant.id):
            await services.add_plant(session, code="P2", name="二厂")
            await session.commit()
    calls_before = len(stand_in.calls)
    worker_uses(sqlite_settings)
    [message] = await quantity_messages(sqlite_db, subscribed_tenant.id)
    run_delivery(sqlite_db, subscribed_tenant.id, message)
    [message] = await quantity_messages(sqlite_db, subscribed_tenant.id)
    assert message.status == OutboxStatus.DELIVERED
    assert stand_in.calls[calls_before:] == []


async def test_a_subscription_event_with_another_quantity_only_asks_the_task_to_look(
    sqlite_db: Database, factory: TenantFactory, policy: BillingPolicy
) -> None:
    tenant = await factory.create(sqlite_db, plants=("P1", "P2"))
    subscription = await subscribed(sqlite_db, policy, tenant)

    def updated(created: int, quantity: int) -> dict[str, Any]:
        event = subscription_event(
            "customer.subscription.updated",
            created,
            tenant.id,
            status="active",
            price="price_pro",
            subscription=subscription,
            customer=f"cus_{tenant.slug}",
        )
        event["data"]["object"]["items"]["data"][0]["quantity"] = quantity
        return event

    await deliver(sqlite_db, policy, updated(T0 + 60, 2))
    assert await quantity_messages(sqlite_db, tenant.id) == [], "Stripe bills both plants"
    stale = updated(T0 + 120, 1)
    await deliver(sqlite_db, policy, stale)
    [message] = await quantity_messages(sqlite_db, tenant.id)
    assert message.key == f"{billing.QUANTITY_TOPIC}:event:{stale['id']}"
    assert await plant_total(sqlite_db, tenant.id) == 2


# --- the page ------------------------------------------------------------------------------------


def _testid_text(html: str, testid: str) -> str:
    match = re.search(rf'data-testid="{testid}"[^>]*>(.*?)</dd>', html, re.S)
    assert match is not None, (testid, html)
    return " ".join(re.sub(r"<[^>]+>", " ", match.group(1)).split())


@pytest.fixture
async def two_plant_site(site: Site) -> AsyncIterator[Site]:
    async with site.database.session() as session:
        with tenant_scope(site.tenant.id):
            await services.add_plant(session, code="P2", name="二厂")
            await session.commit()
    yield site


async def test_the_page_shows_the_total_and_a_quantity_on_its_way(
    two_plant_site: Site, stand_in: StripeStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = two_plant_site
    await site.subscribe("price_pro")
    monkeypatch.setitem(stand_in.quantities, "sub_1", 1)
    admin = await site.browser(Role.TENANT_ADMIN)
    html = (await admin.get(site.page())).text
    assert "CN¥499.00 per plant per month" in html
    assert _testid_text(html, "billing-total") == "CN¥998.00 per month 2 × CN¥499.00 per plant"
    assert _testid_text(html, "billed-quantity") == (
        "Plants billed by Stripe now: 1. The change to 2 is on its way, "
        "with the difference prorated."
    )

    monkeypatch.setitem(stand_in.quantities, "sub_1", 2)
    html = (await admin.get(site.page())).text
    assert 'data-testid="billed-quantity"' not in html
