"""Billing with Stripe's library: webhooks signed with the library's scheme (verified, applied
once, in any order), the status machine, entitlements, and Checkout, the customer portal and
invoices against a local stand-in for the Stripe API.

Everything runs on SQLite except the isolation test, which runs on PostgreSQL as the
application role, under row-level security."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
import random
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import stripe
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select

from infra.db import Database
from infra.errors import PaymentRequired
from infra.settings import Settings
from infra.tenancy import tenant_scope
from portal.app import create_app
from portal.guards import BILLING_EXEMPT
from tenants import billing, entitlements, services
from tenants.entitlements import BillingPolicy
from tenants.models import Role, StripeEvent, Subscription, Tenant, TenantStatus
from tests.factories import SeededTenant, TenantFactory, audit_actions, issue_token

WEBHOOK_SECRET = "whsec_test_portal"
WEBHOOK_URL = "/api/v1/billing/webhook"
PLANS = {
    "starter": {"price": "price_starter", "max_plants": 1, "max_active_workers": 50},
    "pro": {"price": "price_pro", "max_plants": 5, "max_active_workers": 500},
    "enterprise": {"price": "price_enterprise", "max_plants": None},
}
T0 = 1_780_000_000  # an event time in 2026, in Stripe's Unix seconds
DAY = 86_400


# --- the Stripe API stand-in ---------------------------------------------------------------------


@dataclasses.dataclass
class StripeCall:
    method: str
    path: str
    params: dict[str, list[str]]
    authorization: str


class StripeStandIn:
    """Answers the few endpoints the portal calls, and keeps what it was asked."""

    def __init__(self) -> None:
        self.calls: list[StripeCall] = []
        self.lock = threading.Lock()
        # Each subscription's quantity as last set; one never set bills a single unit.
        self.quantities: dict[str, int] = {}
        # The customer-portal configurations made, as Stripe lists them.
        self.configurations: list[dict[str, Any]] = []

    def subscription(self, subscription_id: str) -> dict[str, Any]:
        item = {
            "id": "si_1",
            "object": "subscription_item",
            "quantity": self.quantities.get(subscription_id, 1),
        }
        return {
            "id": subscription_id,
            "object": "subscription",
            "items": {"object": "list", "data": [item]},
        }

    def answer(
        self, method: str, path: str, params: dict[str, list[str]]
    ) -> tuple[int, dict[str, Any]]:
        if path.startswith("/v1/subscriptions/"):
            subscription_id = path.rsplit("/", 1)[1]
            with self.lock:
                if method == "POST":
                    self.quantities[subscription_id] = int(params["items[0][quantity]"][0])
                return 200, self.subscription(subscription_id)
        if method == "POST" and path == "/v1/checkout/sessions":
            number = len(self.calls)
            return 200, {
                "id": f"cs_test_{number}",
                "object": "checkout.session",
                "url": f"https://checkout.stripe.test/c/cs_test_{number}",
            }
        if path == "/v1/billing_portal/configurations":
            with self.lock:
                if method == "POST":
                    metadata = {
                        key[len("metadata[") : -1]: values[0]
                        for key, values in params.items()
                        if key.startswith("metadata[")
                    }
                    self.configurations.append(
                        {
                            "id": f"bpc_test_{len(self.configurations) + 1}",
                            "object": "billing_portal.configuration",
                            "active": True,
                            "metadata": metadata,
                        }
                    )
                    return 200, self.configurations[-1]
                listed = list(self.configurations)
            return 200, {"object": "list", "data": listed, "has_more": False, "url": path}
        if method == "POST" and path == "/v1/billing_portal/sessions":
            return 200, {
                "id": "bps_test_1",
                "object": "billing_portal.session",
                "url": "https://billing.stripe.test/p/session_1",
            }
        if method == "GET" and path == "/v1/invoices":
            invoice = {
                "id": "in_test_1",
                "object": "invoice",
                "number": "PORTAL-0001",
                "status": "paid",
                "currency": "cny",
                "amount_due": 19900,
                "amount_paid": 19900,
                "created": T0,
                "hosted_invoice_url": "https://invoice.stripe.test/i/1",
                "invoice_pdf": "https://invoice.stripe.test/i/1.pdf",
            }
            return 200, {"object": "list", "data": [invoice], "has_more": False, "url": path}
        return 404, {"error": {"type": "invalid_request_error", "message": "unknown path"}}

    def calls_to(self, path: str) -> list[StripeCall]:
        with self.lock:
            return [call for call in self.calls if call.path == path]


@pytest.fixture(scope="session")
def stripe_api() -> Iterator[tuple[str, StripeStandIn]]:
    stand_in = StripeStandIn()

    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            url = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode() if length else ""
            params = parse_qs(url.query) | parse_qs(body)
            with stand_in.lock:
                stand_in.calls.append(
                    StripeCall(
                        self.command, url.path, params, self.headers.get("Authorization", "")
                    )
                )
            status, answer = stand_in.answer(self.command, url.path, params)
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = _handle
        do_POST = _handle

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the calls are asserted, not printed."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", stand_in
    finally:
        server.shutdown()
        server.server_close()


def with_billing(settings: Settings, api_base: str) -> Settings:
    return dataclasses.replace(
        settings,
        stripe_secret_key="sk_test_portal",
        stripe_webhook_secret=WEBHOOK_SECRET,
        stripe_api_base=api_base,
        billing_plans=json.dumps(PLANS),
        billing_grace_days=14,
        trial_days=30,
    )


@pytest.fixture
def billing_settings(sqlite_settings: Settings, stripe_api: tuple[str, StripeStandIn]) -> Settings:
    return with_billing(sqlite_settings, stripe_api[0])


@pytest.fixture
def policy(billing_settings: Settings) -> BillingPolicy:
    return BillingPolicy.from_settings(billing_settings)


@pytest.fixture
async def client(billing_settings: Settings) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(app=create_app(billing_settings)) as test_client:
        yield test_client


# --- events, signed the way Stripe signs them ----------------------------------------------------


def sign(payload: str, *, timestamp: int | None = None, secret: str = WEBHOOK_SECRET) -> str:
    timestamp = int(time.time()) if timestamp is None else timestamp
    signature = stripe.WebhookSignature._compute_signature(f"{timestamp}.{payload}", secret)
    return f"t={timestamp},v1={signature}"


def event(event_type: str, created: int, obj: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": f"evt_{uuid.uuid4().hex[:20]}",
        "object": "event",
        "type": event_type,
        "created": created,
        "data": {"object": obj},
    }


def subscription_event(
    event_type: str,
    created: int,
    tenant_id: uuid.UUID | None,
    *,
    status: str,
    price: str = "price_starter",
    subscription: str = "sub_1",
    customer: str = "cus_1",
    period_start: int = T0,
) -> dict[str, Any]:
    return event(
        event_type,
        created,
        {
            "id": subscription,
            "object": "subscription",
            "customer": customer,
            "status": status,
            "metadata": {"tenant_id": str(tenant_id)} if tenant_id else {},
            "items": {
                "object": "list",
                "data": [
                    {
                        "id": "si_1",
                        "price": {"id": price},
                        "current_period_start": period_start,
                        "current_period_end": period_start + 30 * DAY,
                    }
                ],
            },
        },
    )


def invoice_event(
    event_type: str,
    created: int,
    tenant_id: uuid.UUID,
    *,
    invoice_created: int,
    subscription: str = "sub_1",
    customer: str = "cus_1",
    amount_due: int = 19900,
) -> dict[str, Any]:
    return event(
        event_type,
        created,
        {
            "id": f"in_{invoice_created}",
            "object": "invoice",
            "customer": customer,
            "created": invoice_created,
            "amount_due": amount_due,
            "parent": {
                "type": "subscription_details",
                "subscription_details": {
                    "subscription": subscription,
                    "metadata": {"tenant_id": str(tenant_id)},
                },
            },
        },
    )


def checkout_event(created: int, tenant_id: uuid.UUID, *, customer: str = "cus_1") -> dict:
    return event(
        "checkout.session.completed",
        created,
        {
            "id": f"cs_{created}",
            "object": "checkout.session",
            "client_reference_id": str(tenant_id),
            "customer": customer,
            "subscription": "sub_1",
            "metadata": {"tenant_id": str(tenant_id), "plan": "starter"},
        },
    )


async def deliver(
    database: Database, policy: BillingPolicy, stripe_event: dict, now: datetime | None = None
) -> str:
    payload = json.dumps(stripe_event)
    async with database.session() as session:
        outcome = await billing.process_webhook(
            session, policy, payload.encode(), sign(payload), now=now
        )
        await session.commit()
    return outcome


async def post_event(
    client: AsyncTestClient[Litestar], stripe_event: dict, *, signature: str | None = None
) -> Any:
    payload = json.dumps(stripe_event)
    headers = {"Stripe-Signature": signature or sign(payload), "Content-Type": "application/json"}
    return await client.post(WEBHOOK_URL, content=payload, headers=headers)


async def billing_state(database: Database, tenant_id: uuid.UUID) -> tuple:
    async with database.session() as session:
        tenant = await session.get(Tenant, tenant_id)
        with tenant_scope(tenant_id):
            row = (await session.execute(select(Subscription))).scalar_one_or_none()
        assert tenant is not None
        if row is None:
            return (tenant.status, None)
        return (
            tenant.status,
            row.stripe_customer_id,
            row.stripe_subscription_id,
            row.plan,
            row.status,
            row.current_period_end,
            row.past_due_since,
            tuple(row.ended_subscription_ids),
        )


async def new_tenant(
    database: Database, factory: TenantFactory, *, plants: tuple[str, ...] = ("P1",)
) -> SeededTenant:
    return await factory.create(database, plants=plants)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# --- webhooks: signature, once only, any order ---------------------------------------------------


async def test_webhook_signature_is_verified(
    client: AsyncTestClient[Litestar], sqlite_db: Database, factory: TenantFactory
) -> None:
    tenant = await new_tenant(sqlite_db, factory)
    created = subscription_event("customer.subscription.created", T0, tenant.id, status="active")

    good = await post_event(client, created)
    assert good.status_code == 200, good.text
    assert good.json() == {"outcome": "applied"}

    other = subscription_event("customer.subscription.updated", T0 + 1, tenant.id, status="unpaid")
    payload = json.dumps(other)
    for signature in (
        sign(payload, secret="whsec_someone_else"),
        sign(payload, timestamp=int(time.time()) - 600),
        sign(payload + " "),
        "t=abc,v1=00",
    ):
        refused = await post_event(client, other, signature=signature)
        assert refused.status_code == 400, refused.text
        assert refused.json()["errors"][0]["field"] == "Stripe-Signature"
    missing = await client.post(WEBHOOK_URL, content=payload)
    assert missing.status_code == 400
    assert (await billing_state(sqlite_db, tenant.id))[0] == TenantStatus.ACTIVE
    async with sqlite_db.session() as session:
        recorded = (await session.execute(select(func.count()).select_from(StripeEvent))).scalar()
    assert recorded == 1, "refused deliveries are not recorded"


async def test_a_replayed_event_has_no_second_effect(
    client: AsyncTestClient[Litestar], sqlite_db: Database, factory: TenantFactory
) -> None:
    tenant = await new_tenant(sqlite_db, factory)
    failed = invoice_event("invoice.payment_failed", T0, tenant.id, invoice_created=T0)
    first = await post_event(client, failed)
    assert first.json() == {"outcome": "applied"}
    state = await billing_state(sqlite_db, tenant.id)
    again = await post_event(client, failed)
    assert again.status_code == 200
    assert again.json() == {"outcome": "duplicate"}
    assert await billing_state(sqlite_db, tenant.id) == state
    assert await audit_actions(sqlite_db, tenant.id, "billing.event_applied") == [
        "billing.event_applied"
    ]


async def test_an_event_for_an_unknown_customer_is_recorded_and_changes_nothing(
    client: AsyncTestClient[Litestar],
    sqlite_db: Database,
    factory: TenantFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    tenant = await new_tenant(sqlite_db, factory)
    before = await billing_state(sqlite_db, tenant.id)
    for tenant_id in (uuid.uuid4(), None):
        unknown = subscription_event(
            "customer.subscription.updated", T0, tenant_id, status="canceled", customer="cus_x"
        )
        answer = await post_event(client, unknown)
        assert answer.status_code == 200
        assert answer.json() == {"outcome": "unknown_customer"}
        assert (await post_event(client, unknown)).json() == {"outcome": "duplicate"}
    assert await billing_state(sqlite_db, tenant.id) == before
    assert "names no tenant of ours" in caplog.text


def _delinquency_events(tenant_id: uuid.UUID) -> list[dict[str, Any]]:
    return [
        checkout_event(T0, tenant_id),
        subscription_event("customer.subscription.created", T0, tenant_id, status="active"),
        invoice_event(
            "invoice.payment_failed", T0 + 30 * DAY, tenant_id, invoice_created=T0 + 30 * DAY
        ),
        subscription_event(
            "customer.subscription.updated",
            T0 + 30 * DAY,
            tenant_id,
            status="past_due",
            period_start=T0 + 30 * DAY,
        ),
    ]


async def test_four_events_in_every_order_give_the_same_state(
    sqlite_db: Database, factory: TenantFactory, policy: BillingPolicy
) -> None:
    now = datetime.fromtimestamp(T0 + 31 * DAY, UTC)
    outcomes = set()
    for order in itertools.permutations(range(4)):
        tenant = await new_tenant(sqlite_db, factory, plants=())
        events = _delinquency_events(tenant.id)
        for index in order:
            assert await deliver(sqlite_db, policy, events[index], now) == "applied"
        outcomes.add(await billing_state(sqlite_db, tenant.id))
    assert len(outcomes) == 1, outcomes
    (state,) = outcomes
    assert state[0] == TenantStatus.PAST_DUE
    assert state[1:5] == ("cus_1", "sub_1", "starter", "past_due")


async def test_a_shuffled_subscription_life_gives_the_same_state(
    sqlite_db: Database, factory: TenantFactory, policy: BillingPolicy
) -> None:
    """Upgrade, a failed renewal with retries, payment, a same-second tie, a new subscription
    after the first was deleted, and an invoice of the deleted one paid late."""

    def life(tenant_id: uuid.UUID) -> list[dict[str, Any]]:
        t = T0
        return [
            checkout_event(t, tenant_id),
            subscription_event("customer.subscription.created", t, tenant_id, status="active"),
            subscription_event(
                "customer.subscription.updated",
                t + DAY,
                tenant_id,
                status="active",
                price="price_pro",
            ),
            invoice_event(
                "invoice.payment_failed", t + 30 * DAY, tenant_id, invoice_created=t + 30 * DAY
            ),
            invoice_event(
                "invoice.payment_failed", t + 33 * DAY, tenant_id, invoice_created=t + 30 * DAY
            ),
            invoice_event("invoice.paid", t + 35 * DAY, tenant_id, invoice_created=t + 30 * DAY),
            subscription_event(
                "customer.subscription.updated",
                t + 35 * DAY,
                tenant_id,
                status="active",
                price="price_pro",
            ),
            subscription_event(
                "customer.subscription.deleted",
                t + 40 * DAY,
                tenant_id,
                status="canceled",
                price="price_pro",
            ),
            invoice_event("invoice.paid", t + 41 * DAY, tenant_id, invoice_created=t + 39 * DAY),
            subscription_event(
                "customer.subscription.created",
                t + 50 * DAY,
                tenant_id,
                status="active",
                subscription="sub_2",
                price="price_enterprise",
            ),
        ]

    now = datetime.fromtimestamp(T0 + 51 * DAY, UTC)
    shuffler = random.Random(20261128)  # fixed, so a failure can be replayed
    outcomes = set()
    orders = [list(range(10)), list(reversed(range(10)))]
    orders += [shuffler.sample(range(10), 10) for _ in range(8)]
    for order in orders:
        tenant = await new_tenant(sqlite_db, factory, plants=())
        events = life(tenant.id)
        for index in order:
            await deliver(sqlite_db, policy, events[index], now)
        outcomes.add(await billing_state(sqlite_db, tenant.id))
    assert len(outcomes) == 1, outcomes
    (state,) = outcomes
    assert state[0] == TenantStatus.ACTIVE
    assert state[2:5] == ("sub_2", "enterprise", "active")
    assert state[-1] == ("sub_1",)

    tenant = await new_tenant(sqlite_db, factory, plants=())
    for stripe_event in life(tenant.id)[:9]:
        await deliver(sqlite_db, policy, stripe_event, now)
    assert (await billing_state(sqlite_db, tenant.id))[0] == TenantStatus.CANCELLED, (
        "an invoice of a deleted subscription paid afterwards does not revive it"
    )


# --- the status machine --------------------------------------------------------------------------


async def test_trialing_active_past_due_read_only_active_cancelled(
    sqlite_db: Database, policy: BillingPolicy
) -> None:
    async with sqlite_db.session() as session:
        tenant = await services.create_tenant(session, slug="acme", name="Acme")
        await session.commit()
    tenant_id = tenant.id

    async def status_at(moment: datetime) -> str:
        async with sqlite_db.session() as session:
            with tenant_scope(tenant_id):
                read = await billing.overview(session, policy, tenant_id, now=moment)
            await session.commit()
        return read.status

    def at(seconds: int) -> datetime:
        return datetime.fromtimestamp(seconds, UTC)

    assert await status_at(tenant.created_at + timedelta(days=1)) == "trialing"
    assert await status_at(tenant.created_at + timedelta(days=31)) == "read_only", "trial over"

    await deliver(
        sqlite_db,
        policy,
        subscription_event("customer.subscription.created", T0, tenant_id, status="active"),
        at(T0),
    )
    assert await status_at(at(T0)) == "active"

    renewal = T0 + 30 * DAY
    await deliver(
        sqlite_db,
        policy,
        invoice_event("invoice.payment_failed", renewal, tenant_id, invoice_created=renewal),
        at(renewal),
    )
    assert await status_at(at(renewal + 14 * DAY)) == "past_due", "inside the grace period"
    assert await status_at(at(renewal + 14 * DAY + 60)) == "read_only", "grace period over"

    await deliver(
        sqlite_db,
        policy,
        invoice_event("invoice.paid", renewal + 20 * DAY, tenant_id, invoice_created=renewal),
        at(renewal + 20 * DAY),
    )
    assert await status_at(at(renewal + 20 * DAY)) == "active"

    await deliver(
        sqlite_db,
        policy,
        subscription_event(
            "customer.subscription.deleted", renewal + 25 * DAY, tenant_id, status="canceled"
        ),
        at(renewal + 25 * DAY),
    )
    assert await status_at(at(renewal + 25 * DAY)) == "cancelled"
    changes = await audit_actions(sqlite_db, tenant_id, "billing.status_changed")
    assert len(changes) == 6, "every status change is in the ledger"


async def test_the_hourly_job_applies_the_clock_to_idle_tenants(
    sqlite_db: Database, factory: TenantFactory, policy: BillingPolicy
) -> None:
    async with sqlite_db.session() as session:
        trial = await services.create_tenant(session, slug="trial", name="Trial")
        await session.commit()
    paying = await new_tenant(sqlite_db, factory, plants=())
    late = await new_tenant(sqlite_db, factory, plants=())
    renewal = T0 + 30 * DAY
    for tenant_id in (paying.id, late.id):
        await deliver(
            sqlite_db,
            policy,
            subscription_event("customer.subscription.created", T0, tenant_id, status="active"),
        )
    await deliver(
        sqlite_db,
        policy,
        invoice_event("invoice.payment_failed", renewal, late.id, invoice_created=renewal),
        datetime.fromtimestamp(renewal, UTC),
    )
    now = max(
        trial.created_at + timedelta(days=31), datetime.fromtimestamp(renewal + 15 * DAY, UTC)
    )
    assert billing.apply_clock(sqlite_db, policy, now) == 2
    assert billing.apply_clock(sqlite_db, policy, now) == 0, "nothing left to change"
    assert (await billing_state(sqlite_db, trial.id))[0] == TenantStatus.READ_ONLY
    assert (await billing_state(sqlite_db, late.id))[0] == TenantStatus.READ_ONLY
    assert (await billing_state(sqlite_db, paying.id))[0] == TenantStatus.ACTIVE
    assert await audit_actions(sqlite_db, late.id, "billing.status_changed") == [
        "billing.status_changed",
        "billing.status_changed",
    ], "active -> past_due by the event, past_due -> read_only by the clock"
    plain = dataclasses.replace(policy, enabled=False)
    assert billing.apply_clock(sqlite_db, plain, now) == 0


# --- entitlements --------------------------------------------------------------------------------


async def test_a_plant_beyond_the_plan_answers_402_naming_the_limit(
    client: AsyncTestClient[Litestar],
    sqlite_db: Database,
    factory: TenantFactory,
    policy: BillingPolicy,
) -> None:
    tenant = await new_tenant(sqlite_db, factory, plants=("P1",))
    await deliver(
        sqlite_db,
        policy,
        subscription_event("customer.subscription.created", T0, tenant.id, status="active"),
    )
    token = await issue_token(sqlite_db, tenant.id, tenant.user(Role.TENANT_ADMIN).id)
    second = await client.post(
        "/api/v1/plants",
        json={"code": "P2", "name": "第二厂区"},
        headers={**bearer(token), "Cookie": "portal_lang=en"},
    )
    assert second.status_code == 402, second.text
    problem = second.json()["errors"][0]
    assert (problem["field"], problem["rule"]) == ("plan", "max_plants")
    assert "at most 1 plants" in problem["message"]
    assert "upgrade to pro" in problem["message"]
    assert "/api/v1/billing/checkout" in problem["message"]
    assert f"/t/{tenant.slug}/admin/billing" in problem["message"]

    await deliver(
        sqlite_db,
        policy,
        subscription_event(
            "customer.subscription.updated", T0 + 60, tenant.id, status="active", price="price_pro"
        ),
    )
    third = await client.post(
        "/api/v1/plants", json={"code": "P2", "name": "第二厂区"}, headers=bearer(token)
    )
    assert third.status_code == 201, third.text
    overview = (await client.get("/api/v1/billing", headers=bearer(token))).json()
    assert overview["plan"] == "pro"
    assert overview["limits"] == {"max_plants": 5, "max_active_workers": 500}
    assert overview["usage"] == {"plants": 2, "active_workers": 0}


@pytest.mark.postgres
async def test_two_plants_added_at_once_cannot_both_pass_the_limit(
    pg_settings: Settings,
    pg_db: Database,
    factory: TenantFactory,
    stripe_api: tuple[str, StripeStandIn],
) -> None:
    policy = BillingPolicy.from_settings(with_billing(pg_settings, stripe_api[0]))
    # On trial: no subscription row yet, and the first plan's limit of one plant applies.
    tenant = await new_tenant(pg_db, factory, plants=())
    checked = asyncio.Event()

    async def add(code: str, *, first: bool) -> None:
        async with pg_db.session() as session:
            with tenant_scope(tenant.id):
                await entitlements.ensure_can_add_plant(session, policy)
                await services.add_plant(session, code=code, name=f"{code} 厂区")
                if first:
                    checked.set()
                    # The second request checks while this one has added but not committed.
                    await asyncio.sleep(0.5)
            await session.commit()

    first = asyncio.create_task(add("P1", first=True))
    await checked.wait()
    second = asyncio.create_task(add("P2", first=False))
    await first
    with pytest.raises(PaymentRequired):
        await second
    async with pg_db.session() as session:
        with tenant_scope(tenant.id):
            assert await entitlements.plant_count(session) == 1


async def test_billing_off_limits_nothing(
    sqlite_settings: Settings, sqlite_db: Database, factory: TenantFactory
) -> None:
    tenant = await new_tenant(sqlite_db, factory, plants=("P1", "P2"))
    async with sqlite_db.session() as session:
        await session.execute(
            Tenant.__table__.update()
            .where(Tenant.id == tenant.id)
            .values(status=TenantStatus.READ_ONLY.value)
        )
        await session.commit()
    token = await issue_token(sqlite_db, tenant.id, tenant.user(Role.TENANT_ADMIN).id)
    async with AsyncTestClient(app=create_app(sqlite_settings)) as plain:
        for code in ("P3", "P4"):
            added = await plain.post(
                "/api/v1/plants", json={"code": code, "name": code}, headers=bearer(token)
            )
            assert added.status_code == 201, added.text
        overview = (await plain.get("/api/v1/billing", headers=bearer(token))).json()
        assert overview["enabled"] is False
        assert overview["limits"] == {"max_plants": None, "max_active_workers": None}
        checkout = await plain.post(
            "/api/v1/billing/checkout", json={"plan": "pro"}, headers=bearer(token)
        )
        assert checkout.status_code == 404
        webhook = await plain.post(WEBHOOK_URL, content="{}", headers={"Stripe-Signature": "x"})
        assert webhook.status_code == 404


async def test_read_only_refuses_writes_but_reads_sign_in_and_paying_work(
    client: AsyncTestClient[Litestar],
    sqlite_db: Database,
    factory: TenantFactory,
    policy: BillingPolicy,
) -> None:
    tenant = await new_tenant(sqlite_db, factory, plants=("P1",))
    admin = tenant.user(Role.TENANT_ADMIN)
    token = await issue_token(sqlite_db, tenant.id, admin.id)
    await deliver(
        sqlite_db,
        policy,
        subscription_event("customer.subscription.created", T0, tenant.id, status="unpaid"),
    )
    refused = await client.post(
        "/api/v1/users",
        json={"email": "new@example.com", "name": "新人", "password": "long-enough-1"},
        headers={**bearer(token), "Cookie": "portal_lang=en"},
    )
    assert refused.status_code == 402, refused.text
    assert refused.json()["detail"] == "This account is read-only until the subscription is paid."
    assert refused.json()["errors"][0]["rule"] == "read_only"
    assert (await client.get("/api/v1/plants", headers=bearer(token))).status_code == 200
    signed_in = await client.post(
        "/api/v1/auth/token",
        json={"tenant": tenant.slug, "email": admin.email, "password": admin.password},
    )
    assert signed_in.status_code == 200, signed_in.text
    pay = await client.post(
        "/api/v1/billing/checkout", json={"plan": "starter"}, headers=bearer(token)
    )
    assert pay.status_code == 200, pay.text
    revoked = await client.delete("/api/v1/auth/token", headers=bearer(token))
    assert revoked.status_code == 204


def test_the_safety_allow_list_is_exactly_these_routes(billing_settings: Settings) -> None:
    app = create_app(billing_settings)
    exempt = {
        (method, route.path)
        for route in app.routes
        for handler in getattr(route, "route_handlers", [])
        if handler.opt.get(BILLING_EXEMPT)
        for method in handler.http_methods
    }
    # Getting into the account, like signing in: the administrator verifying the e-mail address
    # (a new link too), and people joining by an invitation, on the page or over the API.
    account = {
        ("POST", "/t/{slug:str}/verify-email/{token:str}"),
        ("POST", "/t/{slug:str}/admin/users/verification"),
        ("POST", "/t/{slug:str}/invitations/{token:str}"),
        ("POST", "/api/v1/user-invitations/{token:str}/accept"),
    }
    assert account <= exempt
    assert exempt - account == {
        ("POST", "/api/v1/auth/token"),
        ("DELETE", "/api/v1/auth/token"),
        ("POST", "/login"),
        ("POST", "/logout"),
        ("POST", "/api/v1/billing/checkout"),
        ("POST", "/api/v1/billing/portal"),
        ("POST", "/t/{slug:str}/admin/billing/checkout"),
        ("POST", "/t/{slug:str}/admin/billing/portal"),
        ("POST", "/api/v1/billing/webhook"),
        # Training: quiz attempts and every signature are safety records.
        ("POST", "/api/v1/training/assignments/{induction_id:str}/attempts"),
        ("POST", "/api/v1/training/attempts/{attempt_id:str}/answers"),
        ("POST", "/api/v1/training/attempts/{attempt_id:str}/signature"),
        ("POST", "/api/v1/training/briefings/{briefing_id:str}/briefer-signature"),
        ("POST", "/api/v1/training/briefings/{briefing_id:str}/crew-signatures"),
        ("POST", "/api/v1/training/briefings/{briefing_id:str}/my-signature"),
        ("POST", "/t/{slug:str}/training/read/{induction_id:str}/start"),
        ("POST", "/t/{slug:str}/training/quiz/{attempt_id:str}"),
        ("POST", "/t/{slug:str}/training/sign/{attempt_id:str}"),
        ("POST", "/t/{slug:str}/briefings/{briefing_id:str}/briefer"),
        ("POST", "/t/{slug:str}/briefings/{briefing_id:str}/crew/{worker_id:str}"),
        ("POST", "/t/{slug:str}/my-briefings/{briefing_id:str}"),
        # Permits: stopping work and recording it on site never wait for a payment.
        ("POST", "/api/v1/permits/{permit_id:str}/gas-analyses"),
        ("POST", "/api/v1/permits/{permit_id:str}/suspend"),
        ("POST", "/api/v1/permits/{permit_id:str}/complete"),
        ("POST", "/api/v1/permits/{permit_id:str}/accept"),
        ("POST", "/api/v1/permits/{permit_id:str}/cancel"),
        # Data rights: the tenant's export and deletion, a worker's personal data.
        ("POST", "/t/{slug:str}/admin/export"),
        ("POST", "/t/{slug:str}/admin/deletion"),
        ("POST", "/t/{slug:str}/admin/deletion/cancel"),
        (
            "POST",
            "/t/{slug:str}/review/{contractor_id:str}/workers/{worker_id:str}/personal-data/export",
        ),
        (
            "POST",
            "/t/{slug:str}/review/{contractor_id:str}/workers/{worker_id:str}/personal-data/erase",
        ),
        # Geofence: positions, check-ins and handling alerts are safety on site.
        ("POST", "/api/v1/pings"),
        ("POST", "/api/v1/watches/{watch_id:str}/check-in"),
        ("POST", "/api/v1/watches/{watch_id:str}/check-out"),
        ("POST", "/api/v1/alerts/{alert_id:str}/acknowledge"),
        ("POST", "/api/v1/alerts/{alert_id:str}/resolve"),
        ("POST", "/api/v1/alerts/{alert_id:str}/violation"),
        ("POST", "/t/{slug:str}/track/pings"),
        ("POST", "/t/{slug:str}/track/{watch_id:str}/check-in"),
        ("POST", "/t/{slug:str}/track/{watch_id:str}/check-out"),
        ("POST", "/t/{slug:str}/alerts/{alert_id:str}/{action:str}"),
    }


# --- Checkout, customer portal and invoices against the stand-in ---------------------------------


async def test_checkout_portal_and_invoices_call_stripe(
    client: AsyncTestClient[Litestar],
    sqlite_db: Database,
    factory: TenantFactory,
    policy: BillingPolicy,
    stripe_api: tuple[str, StripeStandIn],
) -> None:
    _base, stand_in = stripe_api
    tenant = await new_tenant(sqlite_db, factory)
    token = await issue_token(sqlite_db, tenant.id, tenant.user(Role.TENANT_ADMIN).id)
    customer = f"cus_{tenant.slug}"

    no_customer = await client.post("/api/v1/billing/portal", headers=bearer(token))
    assert no_customer.status_code == 409
    assert (await client.get("/api/v1/billing/invoices", headers=bearer(token))).json() == []
    unknown_plan = await client.post(
        "/api/v1/billing/checkout", json={"plan": "gold"}, headers=bearer(token)
    )
    assert unknown_plan.status_code == 422
    assert unknown_plan.json()["errors"][0]["field"] == "plan"

    checkouts_before = len(stand_in.calls_to("/v1/checkout/sessions"))
    started = await client.post(
        "/api/v1/billing/checkout", json={"plan": "pro"}, headers=bearer(token)
    )
    assert started.status_code == 200, started.text
    assert started.json()["url"].startswith("https://checkout.stripe.test/c/")
    call = stand_in.calls_to("/v1/checkout/sessions")[checkouts_before]
    assert call.authorization == "Bearer sk_test_portal"
    assert call.params["line_items[0][price]"] == ["price_pro"]
    assert call.params["client_reference_id"] == [str(tenant.id)]
    assert call.params["subscription_data[metadata][tenant_id]"] == [str(tenant.id)]
    assert call.params["mode"] == ["subscription"]
    assert "customer" not in call.params

    await deliver(sqlite_db, policy, checkout_event(T0, tenant.id, customer=customer))
    again = await client.post(
        "/api/v1/billing/checkout", json={"plan": "enterprise"}, headers=bearer(token)
    )
    assert again.status_code == 200
    call = stand_in.calls_to("/v1/checkout/sessions")[-1]
    assert call.params["customer"] == [customer], "the tenant keeps its Stripe customer"
    assert call.params["line_items[0][price]"] == ["price_enterprise"]

    portal = await client.post("/api/v1/billing/portal", headers=bearer(token))
    assert portal.status_code == 200, portal.text
    assert portal.json() == {"url": "https://billing.stripe.test/p/session_1"}
    assert stand_in.calls_to("/v1/billing_portal/sessions")[-1].params["customer"] == [customer]

    invoices = await client.get("/api/v1/billing/invoices", headers=bearer(token))
    assert invoices.status_code == 200, invoices.text
    assert [(i["id"], i["amount_paid"], i["status"]) for i in invoices.json()] == [
        ("in_test_1", 19900, "paid")
    ]
    assert stand_in.calls_to("/v1/invoices")[-1].params["customer"] == [customer]
    assert await audit_actions(sqlite_db, tenant.id, "billing.checkout") == [
        "billing.checkout_started",
        "billing.checkout_started",
    ]


async def test_the_manage_portal_leaves_the_plan_to_the_checked_plan_change(
    client: AsyncTestClient[Litestar],
    sqlite_db: Database,
    factory: TenantFactory,
    policy: BillingPolicy,
    stripe_api: tuple[str, StripeStandIn],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A plan or quantity chosen in Stripe's portal would pass by the usage check: the manage
    session uses a configuration of the portal's own without subscription updates, made once
    per Stripe account and found again by its metadata after a restart."""
    _base, stand_in = stripe_api
    monkeypatch.setattr(stand_in, "configurations", [])
    monkeypatch.setattr(billing, "_manage_configurations", {})
    tenant = await new_tenant(sqlite_db, factory)
    token = await issue_token(sqlite_db, tenant.id, tenant.user(Role.TENANT_ADMIN).id)
    await deliver(sqlite_db, policy, checkout_event(T0, tenant.id, customer=f"cus_{tenant.slug}"))

    def made() -> list[StripeCall]:
        return [
            call
            for call in stand_in.calls_to("/v1/billing_portal/configurations")
            if call.method == "POST"
        ]

    made_before = len(made())
    for _ in range(2):
        portal = await client.post("/api/v1/billing/portal", headers=bearer(token))
        assert portal.status_code == 200, portal.text
        session = stand_in.calls_to("/v1/billing_portal/sessions")[-1]
        assert session.params["configuration"] == ["bpc_test_1"]
    [configuration] = made()[made_before:]
    features = {
        key: value[0] for key, value in configuration.params.items() if key.startswith("features")
    }
    assert features["features[subscription_update][enabled]"] == "false"
    for kept in ("payment_method_update", "invoice_history", "subscription_cancel"):
        assert features[f"features[{kept}][enabled]"] == "true", kept
    assert configuration.params["metadata[contractor_portal]"] == ["manage"]

    # Another process, or this one restarted, finds the configuration instead of making one.
    monkeypatch.setattr(billing, "_manage_configurations", {})
    again = await client.post("/api/v1/billing/portal", headers=bearer(token))
    assert again.status_code == 200, again.text
    assert stand_in.calls_to("/v1/billing_portal/sessions")[-1].params["configuration"] == [
        "bpc_test_1"
    ]
    assert len(made()) == made_before + 1


async def test_a_stripe_failure_answers_502_and_changes_nothing(
    sqlite_db: Database,
    factory: TenantFactory,
    policy: BillingPolicy,
    stripe_api: tuple[str, StripeStandIn],
) -> None:
    tenant = await new_tenant(sqlite_db, factory)
    broken = dataclasses.replace(policy, api_base=stripe_api[0] + "/nowhere")
    async with sqlite_db.session() as session:
        with tenant_scope(tenant.id), pytest.raises(billing.BillingProviderFailed) as raised:
            await billing.start_checkout(session, broken, tenant.id, "pro")
    assert raised.value.status_code == 502
    assert await audit_actions(sqlite_db, tenant.id, "billing.") == []


async def test_billing_is_for_tenant_admins(
    client: AsyncTestClient[Litestar], sqlite_db: Database, factory: TenantFactory
) -> None:
    tenant = await factory.create(
        sqlite_db, plants=("P1",), users=((Role.TENANT_ADMIN, None), (Role.EHS_OFFICER, None))
    )
    token = await issue_token(sqlite_db, tenant.id, tenant.user(Role.EHS_OFFICER).id)
    assert (await client.get("/api/v1/billing", headers=bearer(token))).status_code == 403
    checkout = await client.post(
        "/api/v1/billing/checkout", json={"plan": "pro"}, headers=bearer(token)
    )
    assert checkout.status_code == 403
    assert (await client.get("/api/v1/billing")).status_code == 401


# --- isolation, on PostgreSQL under row-level security --------------------------------------------


@pytest.mark.postgres
async def test_another_tenants_admin_cannot_see_or_change_this_billing(
    pg_settings: Settings,
    pg_db: Database,
    factory: TenantFactory,
    stripe_api: tuple[str, StripeStandIn],
) -> None:
    base, stand_in = stripe_api
    settings = with_billing(pg_settings, base)
    policy = BillingPolicy.from_settings(settings)
    ours = await new_tenant(pg_db, factory)
    theirs = await new_tenant(pg_db, factory)
    our_customer = f"cus_{ours.slug}"
    await deliver(pg_db, policy, checkout_event(T0, ours.id, customer=our_customer))
    await deliver(
        pg_db,
        policy,
        subscription_event(
            "customer.subscription.created",
            T0,
            ours.id,
            status="active",
            price="price_pro",
            customer=our_customer,
        ),
    )
    their_token = await issue_token(pg_db, theirs.id, theirs.user(Role.TENANT_ADMIN).id)
    our_state = await billing_state(pg_db, ours.id)
    calls_before = len(stand_in.calls)
    async with AsyncTestClient(app=create_app(settings)) as client:
        overview = (await client.get("/api/v1/billing", headers=bearer(their_token))).json()
        assert overview["plan"] == "starter", "their tenant has not subscribed"
        assert overview["status"] == "active"
        portal = await client.post("/api/v1/billing/portal", headers=bearer(their_token))
        assert portal.status_code == 409, "our Stripe customer is not theirs to open"
        invoices = await client.get("/api/v1/billing/invoices", headers=bearer(their_token))
        assert invoices.json() == []
        checkout = await client.post(
            "/api/v1/billing/checkout", json={"plan": "pro"}, headers=bearer(their_token)
        )
        assert checkout.status_code == 200
    their_calls = stand_in.calls[calls_before:]
    assert all(our_customer not in json.dumps(call.params) for call in their_calls)
    assert all(str(ours.id) not in json.dumps(call.params) for call in their_calls)
    assert await billing_state(pg_db, ours.id) == our_state
    assert await billing_state(pg_db, theirs.id) == (TenantStatus.ACTIVE, None)
    async with pg_db.session() as session:
        with tenant_scope(theirs.id):
            visible = (await session.execute(select(Subscription))).scalars().all()
    assert visible == [], "row-level security keeps our subscription from their scope"
