"""Billing: the plan and its limits, Stripe Checkout and customer portal, invoices, and the
webhook Stripe calls."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.datastructures import State
from litestar.params import JSONBody

from portal.dependencies import DbSession
from portal.guards import BILLING_EXEMPT, requires_roles
from tenants import billing
from tenants.access import Principal
from tenants.models import Role
from tenants.schemas import BillingRead, CheckoutRequest, InvoiceRead, RedirectRead


class BillingController(Controller):
    path = "/api/v1/billing"
    tags = ["billing"]  # noqa: RUF012

    @get(
        "/",
        summary="Plan, status, limits and usage",
        description="Tenant admins only. `enabled` is false when the installation runs "
        "without Stripe; then nothing is limited.",
        guards=[requires_roles(Role.TENANT_ADMIN)],
    )
    async def show(
        self, request: Request[Principal, Any, Any], db_session: DbSession, state: State
    ) -> BillingRead:
        return await billing.overview(db_session, state.billing, request.user.tenant_id)

    @post(
        "/checkout",
        summary="Start a Stripe Checkout for a plan",
        description="Tenant admins only. Answers the Checkout page to send the admin to. "
        "Works while the account is read-only, so that it can be paid.",
        guards=[requires_roles(Role.TENANT_ADMIN)],
        opt={BILLING_EXEMPT: True},
        status_code=200,
    )
    async def checkout(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        state: State,
        data: JSONBody[CheckoutRequest],
    ) -> RedirectRead:
        url = await billing.start_checkout(
            db_session,
            state.billing,
            request.user.tenant_id,
            data.plan,
            actor_id=request.user.user_id,
        )
        return RedirectRead(url=url)

    @post(
        "/portal",
        summary="Open the Stripe customer portal",
        description="Tenant admins only: change the card, see the invoices or cancel the "
        "subscription. The plan is changed with `POST /api/v1/billing/checkout`, which checks it "
        "against the tenant's use first, so the portal offers no plan change. Works while the "
        "account is read-only, so that it can be paid.",
        guards=[requires_roles(Role.TENANT_ADMIN)],
        opt={BILLING_EXEMPT: True},
        status_code=200,
    )
    async def portal(
        self, request: Request[Principal, Any, Any], db_session: DbSession, state: State
    ) -> RedirectRead:
        url = await billing.open_customer_portal(db_session, state.billing, request.user.tenant_id)
        return RedirectRead(url=url)

    @get(
        "/invoices",
        summary="The tenant's invoices",
        description="Tenant admins only. The latest invoices, as Stripe has them.",
        guards=[requires_roles(Role.TENANT_ADMIN)],
    )
    async def invoices(self, db_session: DbSession, state: State) -> list[InvoiceRead]:
        return await billing.list_invoices(db_session, state.billing)

    @post(
        "/webhook",
        summary="Stripe webhook endpoint",
        description="Called by Stripe, not by people: no token, the `Stripe-Signature` header "
        "is verified instead (400 if it does not match or is too old). Each event is applied "
        "once; events may come in any order.",
        opt={BILLING_EXEMPT: True},
        status_code=200,
    )
    async def webhook(
        self, request: Request[Any, Any, Any], db_session: DbSession, state: State
    ) -> dict[str, str]:
        outcome = await billing.process_webhook(
            db_session,
            state.billing,
            await request.body(),
            request.headers.get(billing.SIGNATURE_HEADER),
        )
        return {"outcome": outcome}
