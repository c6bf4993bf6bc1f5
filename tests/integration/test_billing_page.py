"""The tenant administrator's billing page over HTTP, on SQLite, against the Stripe stand-in of
``test_billing``: billing off says so; billing on shows the status with what it means, the plan,
the period end on China Standard Time, plants and active workers against the limits, the plans
with Stripe's prices, and the invoices; Checkout and the customer portal answer 303 to Stripe's
page (a plan change of a live subscription goes through the portal, never a second Checkout),
also while the tenant is read-only; a plan smaller than what the tenant uses is refused naming
the limit; a failing Stripe is an error on the page; the page and its forms are the tenant
administrator's only, and need the CSRF token."""

from __future__ import annotations

import dataclasses
import json
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from litestar.testing import AsyncTestClient

from infra.db import Database
from infra.errors import RulesBroken
from infra.settings import Settings
from infra.tenancy import tenant_scope
from onboarding.models import Contractor, Worker
from portal.app import create_app
from tenants import billing, entitlements
from tenants.entitlements import BillingPolicy
from tenants.models import Role, Tenant
from tests.factories import SeededTenant, TenantFactory, audit_actions
from tests.integration.test_billing import (
    DAY,
    T0,
    StripeStandIn,
    checkout_event,
    deliver,
    subscription_event,
)
from tests.integration.test_billing import (  # fixtures: pytest finds them here
    billing_settings as billing_settings,
)
from tests.integration.test_billing import (
    stripe_api as stripe_api,
)

CSRF_FIELD = re.compile(r'name="_csrf_token"\s+value="([^"]+)"')
USERS = ((Role.TENANT_ADMIN, None), (Role.EHS_OFFICER, "P1"))
# What Stripe charges for each price of test_billing's plans, in fen.
PRICES = {"price_starter": 19900, "price_pro": 49900, "price_enterprise": 199900}
SHANGHAI = ZoneInfo("Asia/Shanghai")


def _page_testid(html: str, testid: str) -> str:
    """The text inside the element carrying ``data-testid``, tags and spacing removed."""
    match = re.search(rf'data-testid="{testid}"[^>]*>(.*?)</(?:dd|td|span|p)>', html, re.S)
    assert match is not None, (testid, html)
    return " ".join(re.sub(r"<[^>]+>", " ", match.group(1)).split())


def _errors(html: str) -> str:
    """The text of the errors shown on top of the page."""
    match = re.search(r'data-testid="billing-errors">(.*?)</div>\s*</div>', html, re.S)
    assert match is not None, html
    return " ".join(re.sub(r"<[^>]+>", " ", match.group(1)).split())


def _plan_row(html: str, plan: str) -> str:
    match = re.search(rf'<tr data-testid="plan" data-plan="{plan}"[^>]*>.*?</tr>', html, re.S)
    assert match is not None, (plan, html)
    return match.group(0)


@pytest.fixture
def stand_in(stripe_api: tuple[str, StripeStandIn], monkeypatch: pytest.MonkeyPatch) -> Any:
    """The shared stand-in, also answering the prices the page reads."""
    _base, stand_in = stripe_api
    answer = stand_in.answer

    def with_prices(
        method: str, path: str, params: dict[str, list[str]]
    ) -> tuple[int, dict[str, Any]]:
        if method == "GET" and path.startswith("/v1/prices/"):
            price = path.rsplit("/", 1)[1]
            return 200, {
                "id": price,
                "object": "price",
                "currency": "cny",
                "unit_amount": PRICES[price],
                "recurring": {"interval": "month", "interval_count": 1},
            }
        return answer(method, path, params)

    monkeypatch.setattr(stand_in, "answer", with_prices)
    return stand_in


@dataclasses.dataclass
class Site:
    settings: Settings
    database: Database
    policy: BillingPolicy
    tenant: SeededTenant
    other: SeededTenant
    browsers: list[AsyncTestClient[Any]] = dataclasses.field(default_factory=list)

    def page(self, tenant: SeededTenant | None = None) -> str:
        return f"/t/{(tenant or self.tenant).slug}/admin/billing"

    async def browser(self, role: Role, tenant: SeededTenant | None = None) -> Any:
        """A signed-in browser of the user with this role, reading English."""
        tenant = tenant or self.tenant
        user = tenant.user(role)
        client = AsyncTestClient(app=create_app(self.settings))
        await client.__aenter__()
        self.browsers.append(client)
        client.follow_redirects = False
        client.cookies.set("portal_lang", "en")
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

    async def subscribe(self, price: str = "price_pro", status: str = "active") -> str:
        """The tenant's Checkout completed and its subscription reported; its customer id."""
        customer = f"cus_{self.tenant.slug}"
        await deliver(
            self.database, self.policy, checkout_event(T0, self.tenant.id, customer=customer)
        )
        await deliver(
            self.database,
            self.policy,
            subscription_event(
                "customer.subscription.created",
                T0,
                self.tenant.id,
                status=status,
                price=price,
                customer=customer,
            ),
        )
        return customer


async def _site(settings: Settings, factory: TenantFactory, **plants: Any) -> Site:
    settings = dataclasses.replace(settings, login_rate_per_minute=10_000)
    database = Database.from_settings(settings)
    tenant = await factory.create(database, users=USERS, **plants)
    other = await factory.create(database, users=((Role.TENANT_ADMIN, None),))
    return Site(settings, database, BillingPolicy.from_settings(settings), tenant, other)


@pytest.fixture
async def site(
    billing_settings: Settings, factory: TenantFactory, stand_in: StripeStandIn
) -> AsyncIterator[Site]:
    site = await _site(billing_settings, factory, plants=("P1",))
    try:
        yield site
    finally:
        for client in reversed(site.browsers):
            await client.__aexit__(None, None, None)
        await site.database.dispose()


async def _post(client: Any, page: str, action: str, form: dict[str, str]) -> Any:
    """Send a form as a browser would, with the CSRF token of a page the user may see."""
    shown = await client.get(page)
    assert shown.status_code == 200, shown.text
    csrf = CSRF_FIELD.search(shown.text)
    assert csrf is not None, shown.text
    return await client.post(action, data={**form, "_csrf_token": csrf.group(1)})


async def _add_workers(database: Database, tenant_id: uuid.UUID, *states: str) -> None:
    """One contractor with a worker in each admission state given."""
    async with database.session() as session:
        with tenant_scope(tenant_id):
            company = Contractor(
                name="安装公司",
                uscc=uuid.uuid4().hex[:18].upper(),
                legal_representative="张三",
                contact_name="李四",
                contact_phone="13800000000",
                address="南京",
                work_types=[],
                state="approved",
            )
            session.add(company)
            await session.flush()
            for index, state in enumerate(states):
                session.add(
                    Worker(
                        contractor_id=company.id,
                        name=f"工人{index}",
                        id_number_encrypted="-",
                        id_number_digest=uuid.uuid4().hex,
                        id_number_masked="3201**********0011",
                        birth_date=date(1990, 1, 1),
                        phone="13900000000",
                        trade="焊工",
                        state=state,
                    )
                )
            await session.commit()


# --- billing off ---------------------------------------------------------------------------------


@pytest.fixture
async def plain_site(sqlite_settings: Settings, factory: TenantFactory) -> AsyncIterator[Site]:
    site = await _site(sqlite_settings, factory)
    try:
        yield site
    finally:
        for client in reversed(site.browsers):
            await client.__aexit__(None, None, None)
        await site.database.dispose()


async def test_with_billing_off_the_page_says_nothing_is_limited(plain_site: Site) -> None:
    admin = await plain_site.browser(Role.TENANT_ADMIN)
    index = await admin.get(f"/t/{plain_site.tenant.slug}/admin")
    assert f'href="{plain_site.page()}"' in index.text
    page = await admin.get(plain_site.page())
    assert page.status_code == 200, page.text
    assert 'data-testid="billing-off"' in page.text
    assert "no plan limits the number of plants or workers" in page.text
    assert 'data-testid="plans"' not in page.text
    checkout = await _post(
        admin, plain_site.page(), plain_site.page() + "/checkout", {"plan": "pro"}
    )
    assert checkout.status_code == 404


# --- what the page shows -------------------------------------------------------------------------


async def test_the_page_shows_status_plan_usage_prices_and_invoices(site: Site) -> None:
    await site.subscribe("price_pro")
    await _add_workers(site.database, site.tenant.id, "verified", "verified", "pending", "expired")
    admin = await site.browser(Role.TENANT_ADMIN)
    page = await admin.get(site.page())
    assert page.status_code == 200, page.text
    html = page.text
    assert 'data-testid="billing-status" data-status="active"' in html
    assert _page_testid(html, "status-label") == "Active"
    assert "The subscription is paid." in _page_testid(html, "status-meaning")
    assert _page_testid(html, "current-plan") == "pro"
    period_end = datetime.fromtimestamp(T0 + 30 * DAY, UTC).astimezone(SHANGHAI)
    assert _page_testid(html, "period-end") == period_end.strftime("%Y-%m-%d %H:%M")
    assert _page_testid(html, "usage-plants") == "1 of 5"
    assert _page_testid(html, "usage-workers").startswith("2 of 500"), "only admitted workers"
    assert 'data-testid="manage-subscription"' in html

    assert 'data-current="true"' in _plan_row(html, "pro")
    assert "choose-plan" not in _plan_row(html, "pro")
    assert _page_testid(html, "billing-total") == "CN¥499.00 per month 1 × CN¥499.00 per plant"
    assert 'data-testid="billed-quantity"' not in html, "Stripe bills the one plant"
    starter = _plan_row(html, "starter")
    assert "CN¥199.00 per plant per month" in starter
    assert "Change to this plan" in starter
    assert "Up to 1" in starter and "Up to 50" in starter
    assert "CN¥1,999.00 per plant per month" in _plan_row(html, "enterprise")
    assert "Unlimited" in _plan_row(html, "enterprise")

    invoice = re.search(r'<tr data-testid="invoice" data-id="in_test_1".*?</tr>', html, re.S)
    assert invoice is not None, html
    row = invoice.group(0)
    assert "PORTAL-0001" in row and "Paid" in row
    assert datetime.fromtimestamp(T0, UTC).astimezone(SHANGHAI).strftime("%Y-%m-%d") in row
    assert _page_testid(row, "amount-due") == "CN¥199.00"
    assert _page_testid(row, "amount-paid") == "CN¥199.00"
    assert 'href="https://invoice.stripe.test/i/1"' in row
    assert 'href="https://invoice.stripe.test/i/1.pdf"' in row


async def test_each_price_is_read_from_stripe_once(
    site: Site, stand_in: StripeStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Stripe price's amount never changes, so the page does not ask again on every view."""
    monkeypatch.setattr(billing, "_prices", {})
    await site.subscribe("price_pro")
    admin = await site.browser(Role.TENANT_ADMIN)

    def price_reads() -> list[str]:
        return [call.path for call in stand_in.calls if call.path.startswith("/v1/prices/")]

    before = len(price_reads())
    for _ in range(2):
        page = await admin.get(site.page())
        assert page.status_code == 200, page.text
        assert "CN¥199.00 per plant per month" in _plan_row(page.text, "starter")
    assert sorted(price_reads()[before:]) == [f"/v1/prices/{price}" for price in sorted(PRICES)]


async def test_an_overdue_payment_inside_the_grace_period_names_both_moments(
    site: Site, stand_in: StripeStandIn
) -> None:
    now = datetime.now(UTC)
    started = int(now.timestamp()) - 2 * DAY
    customer = await site.subscribe("price_pro")
    await deliver(
        site.database,
        site.policy,
        subscription_event(
            "customer.subscription.updated",
            started,
            site.tenant.id,
            status="past_due",
            price="price_pro",
            customer=customer,
            period_start=started,
        ),
    )
    admin = await site.browser(Role.TENANT_ADMIN)
    html = (await admin.get(site.page())).text
    assert 'data-status="past_due"' in html
    meaning = _page_testid(html, "status-meaning")
    since = datetime.fromtimestamp(started, UTC).astimezone(SHANGHAI)
    deadline = datetime.fromtimestamp(started + 14 * DAY, UTC).astimezone(SHANGHAI)
    assert f"A payment failed on {since:%Y-%m-%d %H:%M}." in meaning
    assert f"becomes read-only on {deadline:%Y-%m-%d %H:%M}." in meaning


# --- paying --------------------------------------------------------------------------------------


async def test_subscribing_sends_the_admin_to_stripe_checkout_for_the_plans_price(
    site: Site, stand_in: StripeStandIn
) -> None:
    admin = await site.browser(Role.TENANT_ADMIN)
    page = (await admin.get(site.page())).text
    assert "Subscribe" in _plan_row(page, "pro")
    assert 'data-testid="manage-subscription"' not in page, "no customer yet"
    before = len(stand_in.calls_to("/v1/checkout/sessions"))
    answer = await _post(admin, site.page(), site.page() + "/checkout", {"plan": "pro"})
    assert answer.status_code == 303, answer.text
    call = stand_in.calls_to("/v1/checkout/sessions")[before]
    assert answer.headers["location"].startswith("https://checkout.stripe.test/c/cs_test_")
    assert call.params["line_items[0][price]"] == ["price_pro"]
    assert call.params["client_reference_id"] == [str(site.tenant.id)]
    back = site.settings.base_url + site.page()
    assert call.params["success_url"] == [back + "?done=subscribed"]
    assert call.params["cancel_url"] == [back + "?done=checkout_cancelled"]
    assert await audit_actions(site.database, site.tenant.id, "billing.checkout") == [
        "billing.checkout_started"
    ]
    returned = await admin.get(site.page() + "?done=checkout_cancelled")
    assert "Nothing was charged." in returned.text


async def test_a_subscribed_tenant_changes_plan_in_the_customer_portal(
    site: Site, stand_in: StripeStandIn
) -> None:
    customer = await site.subscribe("price_starter")
    admin = await site.browser(Role.TENANT_ADMIN)
    checkouts = len(stand_in.calls_to("/v1/checkout/sessions"))
    answer = await _post(admin, site.page(), site.page() + "/checkout", {"plan": "pro"})
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == "https://billing.stripe.test/p/session_1"
    assert len(stand_in.calls_to("/v1/checkout/sessions")) == checkouts, "no second subscription"
    call = stand_in.calls_to("/v1/billing_portal/sessions")[-1]
    assert call.params["customer"] == [customer]
    flow = "flow_data[subscription_update_confirm]"
    assert call.params["flow_data[type]"] == ["subscription_update_confirm"]
    assert call.params[f"{flow}[subscription]"] == ["sub_1"]
    assert call.params[f"{flow}[items][0][id]"] == ["si_1"]
    assert call.params[f"{flow}[items][0][price]"] == ["price_pro"]
    assert await audit_actions(site.database, site.tenant.id, "billing.plan_change") == [
        "billing.plan_change_started"
    ]

    same = await _post(admin, site.page(), site.page() + "/checkout", {"plan": "starter"})
    assert same.status_code == 409, same.text
    assert _errors(same.text) == "The tenant is on this plan already."


async def test_manage_subscription_opens_the_customer_portal(
    site: Site, stand_in: StripeStandIn
) -> None:
    admin = await site.browser(Role.TENANT_ADMIN)
    refused = await _post(admin, site.page(), site.page() + "/portal", {})
    assert refused.status_code == 409, refused.text
    assert _errors(refused.text) == "Subscribe to a plan first."
    customer = await site.subscribe()
    answer = await _post(admin, site.page(), site.page() + "/portal", {})
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == "https://billing.stripe.test/p/session_1"
    call = stand_in.calls_to("/v1/billing_portal/sessions")[-1]
    assert call.params["customer"] == [customer]
    assert call.params["return_url"] == [site.settings.base_url + site.page()]


async def test_a_read_only_tenant_still_opens_the_page_and_pays(
    site: Site, stand_in: StripeStandIn
) -> None:
    await site.subscribe("price_starter", status="unpaid")
    admin = await site.browser(Role.TENANT_ADMIN)
    page = await admin.get(site.page())
    assert page.status_code == 200, page.text
    assert 'data-status="read_only"' in page.text
    meaning = _page_testid(page.text, "status-meaning")
    assert "reading works, changes are refused" in meaning
    assert "safety functions keep working" in meaning
    thresholds = f"/t/{site.tenant.slug}/admin/thresholds"
    write = await _post(admin, thresholds, thresholds, {"dwell_s": "30"})
    assert write.status_code == 402, "the tenant is read-only indeed"
    assert "Subscribe" in _plan_row(page.text, "starter"), "Stripe no longer bills it"
    portal = await _post(admin, site.page(), site.page() + "/portal", {})
    assert portal.status_code == 303, portal.text
    assert portal.headers["location"] == "https://billing.stripe.test/p/session_1"
    pay = await _post(admin, site.page(), site.page() + "/checkout", {"plan": "starter"})
    assert pay.status_code == 303, pay.text
    assert pay.headers["location"].startswith("https://checkout.stripe.test/c/")


async def test_a_read_only_trial_subscribes_through_checkout(
    site: Site, stand_in: StripeStandIn
) -> None:
    async with site.database.session() as session:
        tenant = await session.get_one(Tenant, site.tenant.id)
        tenant.status = "trialing"
        tenant.created_at = datetime(2020, 1, 1, tzinfo=UTC)
        await session.commit()
    admin = await site.browser(Role.TENANT_ADMIN)
    page = await admin.get(site.page())
    assert 'data-status="read_only"' in page.text, "the trial is over"
    answer = await _post(admin, site.page(), site.page() + "/checkout", {"plan": "starter"})
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"].startswith("https://checkout.stripe.test/c/")


async def test_a_plan_smaller_than_the_tenant_is_refused_naming_the_limit(
    billing_settings: Settings, factory: TenantFactory, stand_in: StripeStandIn
) -> None:
    site = await _site(billing_settings, factory, plants=("P1", "P2"))
    try:
        await site.subscribe("price_pro")
        admin = await site.browser(Role.TENANT_ADMIN)
        page = (await admin.get(site.page())).text
        assert "at most 1 plants, and the tenant has 2" in _plan_row(page, "starter")
        before = len(stand_in.calls)
        answer = await _post(admin, site.page(), site.page() + "/checkout", {"plan": "starter"})
        assert answer.status_code == 422, answer.text
        assert _errors(answer.text) == (
            "This plan is smaller than what the tenant uses now. "
            "The starter plan allows at most 1 plants, and the tenant has 2. "
            "Choose a plan that allows them all."
        )
        assert not [call for call in stand_in.calls[before:] if call.method == "POST"]
        assert await audit_actions(site.database, site.tenant.id, "billing.plan_change") == []
    finally:
        for client in reversed(site.browsers):
            await client.__aexit__(None, None, None)
        await site.database.dispose()


async def test_active_workers_beyond_a_plan_are_refused_and_only_admitted_ones_count(
    billing_settings: Settings, sqlite_db: Database, factory: TenantFactory
) -> None:
    plans = {"tiny": {"price": "price_tiny", "max_plants": 5, "max_active_workers": 1}}
    policy = BillingPolicy.from_settings(
        dataclasses.replace(billing_settings, billing_plans=json.dumps(plans))
    )
    tenant = await factory.create(sqlite_db, plants=("P1",))
    other = await factory.create(sqlite_db, plants=("P1",))
    await _add_workers(sqlite_db, tenant.id, "verified", "pending", "rejected", "expired")
    await _add_workers(sqlite_db, other.id, "verified", "verified")
    async with sqlite_db.session() as session:
        with tenant_scope(tenant.id):
            assert await entitlements.active_worker_count(session) == 1
            await entitlements.ensure_plan_fits(session, policy, "tiny")
    await _add_workers(sqlite_db, tenant.id, "verified")
    async with sqlite_db.session() as session:
        with tenant_scope(tenant.id), pytest.raises(RulesBroken) as refused:
            await entitlements.ensure_plan_fits(session, policy, "tiny")
    (problem,) = refused.value.problems
    assert (problem.field, problem.rule) == ("plan", "max_active_workers")
    assert problem.params == {"plan": "tiny", "limit": 1, "count": 2}


async def test_a_failing_stripe_is_shown_on_the_page(
    billing_settings: Settings,
    factory: TenantFactory,
    stripe_api: tuple[str, StripeStandIn],
) -> None:
    broken = dataclasses.replace(billing_settings, stripe_api_base=stripe_api[0] + "/nowhere")
    site = await _site(broken, factory)
    try:
        await site.subscribe()
        admin = await site.browser(Role.TENANT_ADMIN)
        page = await admin.get(site.page())
        assert page.status_code == 200, page.text
        failure = "The payment provider did not answer as expected. Try again in a moment."
        assert _errors(page.text) == failure, "said once, however many reads failed"
        assert _page_testid(_plan_row(page.text, "starter"), "plan-price") == "—"
        assert _page_testid(page.text, "current-plan") == "pro", "what we know still shows"
        answer = await _post(admin, site.page(), site.page() + "/portal", {})
        assert answer.status_code == 502
        assert _errors(answer.text) == failure
        assert 'data-testid="billing-status"' in answer.text
    finally:
        for client in reversed(site.browsers):
            await client.__aexit__(None, None, None)
        await site.database.dispose()


# --- who may -------------------------------------------------------------------------------------


async def test_other_roles_and_other_tenants_get_no_page(
    site: Site, stand_in: StripeStandIn
) -> None:
    await site.subscribe()
    ehs = await site.browser(Role.EHS_OFFICER)
    home = f"/t/{site.tenant.slug}/"
    assert (await ehs.get(site.page())).status_code == 404
    before = len(stand_in.calls)
    for action, form in (("/checkout", {"plan": "pro"}), ("/portal", {})):
        answer = await _post(ehs, home, site.page() + action, form)
        assert answer.status_code == 404, (action, answer.text)
    stranger = await site.browser(Role.TENANT_ADMIN, site.other)
    # Under another tenant's address the stranger is nobody: they are sent to sign in there.
    away = await stranger.get(site.page())
    assert away.status_code in (302, 303) and "/login" in away.headers["location"]
    theirs = f"/t/{site.other.slug}/admin/billing"
    for action, form in (("/checkout", {"plan": "pro"}), ("/portal", {})):
        answer = await _post(stranger, theirs, site.page() + action, form)
        assert answer.status_code in (302, 303, 401), (action, answer.text)
        assert "stripe.test" not in answer.headers.get("location", "")
    assert [call.path for call in stand_in.calls[before:] if call.method == "POST"] == []
    own = await stranger.get(theirs)
    assert own.status_code == 200 and f"cus_{site.tenant.slug}" not in own.text
    assert 'data-testid="manage-subscription"' not in own.text, "their tenant has no customer"


async def test_a_form_without_the_csrf_token_is_refused(
    site: Site, stand_in: StripeStandIn
) -> None:
    await site.subscribe()
    admin = await site.browser(Role.TENANT_ADMIN)
    await admin.get(site.page())
    before = len(stand_in.calls)
    for action, form in (("/checkout", {"plan": "enterprise"}), ("/portal", {})):
        answer = await admin.post(site.page() + action, data=form)
        assert answer.status_code == 403, (action, answer.text)
    assert stand_in.calls[before:] == []
    assert await audit_actions(site.database, site.tenant.id, "billing.checkout") == []
