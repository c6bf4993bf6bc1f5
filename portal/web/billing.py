"""The tenant administrator's billing page, ``/t/{slug}/admin/billing``: the subscription's
status and what it means, the plan with its limits against what the tenant uses, what the
plants come to (plans are priced per plant) and how many Stripe bills, the plans to subscribe
or change to (Stripe Checkout, or the customer portal for a subscription that exists), the
customer portal, and the invoices.

What a plan allows, whether a plan fits and every call to Stripe are :mod:`tenants.billing`'s
and :mod:`tenants.entitlements`'s; a failing Stripe is shown on the page. The forms keep
working while the tenant is read-only, so that it can pay. Only tenant administrators see the
page; everyone else gets 404.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any

from babel.numbers import format_currency, get_currency_precision
from litestar import Controller, Request, get, post
from litestar.datastructures import State
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, FromQuery
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession

from infra.errors import DomainError, NotFound
from infra.i18n import N_, current_locale
from infra.i18n import gettext as _
from portal.dependencies import DbSession
from portal.guards import BILLING_EXEMPT, signed_in
from portal.web.forms import convert, ensure_tenant_admin, field_text
from portal.web.onboarding import FormErrors
from tenants import billing
from tenants.access import Principal
from tenants.entitlements import BillingPolicy, plan_shortfalls
from tenants.schemas import BillingRead, CheckoutRequest

FormData = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]
# Paying must work while the tenant is read-only: that is how it stops being so.
PAYING = {BILLING_EXEMPT: True}
DONE_NOTICES = {
    "subscribed": N_(
        "Thank you. The subscription shows here as soon as Stripe confirms the payment."
    ),
    "checkout_cancelled": N_("The checkout was cancelled. Nothing was charged."),
    "plan_changed": N_("The new plan shows here as soon as Stripe confirms the change."),
}
# Plans are priced per plant: a plan's price is one plant's, the tenant's total is for all.
PER_PLANT = {
    "day": N_("per plant per day"),
    "week": N_("per plant per week"),
    "month": N_("per plant per month"),
    "year": N_("per plant per year"),
}
INTERVALS = {
    "day": N_("per day"),
    "week": N_("per week"),
    "month": N_("per month"),
    "year": N_("per year"),
}


@dataclass(frozen=True)
class PlanOffer:
    """One plan as the page lists it: its price as Stripe charges it (``None`` when Stripe did
    not answer), its limits, and why it is too small for the tenant now."""

    name: str
    price: str | None
    interval: str | None
    max_plants: int | None
    max_active_workers: int | None
    current: bool
    shortfalls: list[str]


@dataclass(frozen=True)
class Charge:
    """What the subscribed plan comes to: its price times the plants billed, and how many
    plants Stripe bills now when that is not yet the tenant's number (``None`` when Stripe did
    not say)."""

    total: str | None
    interval: str | None
    unit_price: str | None
    plants: int
    billed: int | None


def money(amount: int, currency: str) -> str:
    """Stripe's amount in the currency's smallest unit, written for the reader's language."""
    code = currency.upper()
    value = Decimal(amount).scaleb(-get_currency_precision(code))
    return format_currency(value, code, locale=current_locale())


def _show(errors: FormErrors, exc: DomainError) -> None:
    """One line per failure, however many of the page's Stripe reads it broke."""
    message = _(exc.message)
    if message not in errors.general:
        errors.general.append(message)


async def _prices(policy: BillingPolicy, errors: FormErrors) -> dict[str, billing.PlanPrice]:
    try:
        return await billing.plan_prices(policy)
    except billing.BillingProviderFailed as exc:
        _show(errors, exc)
        return {}


def _offers(
    policy: BillingPolicy, overview: BillingRead, prices: dict[str, billing.PlanPrice]
) -> list[PlanOffer]:
    offers = []
    for name, plan in policy.plans.items():
        price = prices.get(name)
        shortfalls = plan_shortfalls(
            name, plan, overview.usage.plants, overview.usage.active_workers
        )
        offers.append(
            PlanOffer(
                name=name,
                price=money(price.amount, price.currency)
                if price is not None and price.amount is not None
                else None,
                interval=_interval(price, PER_PLANT),
                max_plants=plan.max_plants,
                max_active_workers=plan.max_active_workers,
                current=overview.subscribed and name == overview.plan,
                shortfalls=[_(problem.message, **problem.params) for problem in shortfalls],
            )
        )
    return offers


def _interval(price: billing.PlanPrice | None, wording: dict[str, str]) -> str | None:
    if price is None or price.interval is None or price.interval_count != 1:
        return None
    return wording.get(price.interval)


async def _charge(
    session: AsyncSession,
    policy: BillingPolicy,
    overview: BillingRead,
    prices: dict[str, billing.PlanPrice],
    errors: FormErrors,
) -> Charge | None:
    if not overview.subscribed or overview.plan is None:
        return None
    try:
        billed = await billing.billed_quantity(session, policy)
    except billing.BillingProviderFailed as exc:
        _show(errors, exc)
        billed = None
    plants = billing.billed_plants(overview.usage.plants)
    price = prices.get(overview.plan)
    total = unit_price = None
    if price is not None and price.amount is not None:
        total = money(price.amount * plants, price.currency)
        unit_price = money(price.amount, price.currency)
    return Charge(
        total=total,
        interval=_interval(price, INTERVALS),
        unit_price=unit_price,
        plants=plants,
        billed=billed,
    )


async def _page(
    session: AsyncSession,
    policy: BillingPolicy,
    principal: Principal,
    slug: str,
    *,
    errors: FormErrors | None = None,
    notice: str | None = None,
    status_code: int = 200,
) -> Template:
    errors = errors or FormErrors()
    overview = await billing.overview(session, policy, principal.tenant_id)
    context: dict[str, Any] = {
        "tenant_slug": slug,
        "overview": overview,
        "errors": errors,
        "notice": notice,
        "offers": [],
        "charge": None,
        "invoices": [],
        "customer": False,
    }
    if overview.enabled:
        prices = await _prices(policy, errors)
        context["offers"] = _offers(policy, overview, prices)
        context["charge"] = await _charge(session, policy, overview, prices, errors)
        context["customer"] = await billing.has_customer(session)
        try:
            context["invoices"] = await billing.list_invoices(session, policy)
        except billing.BillingProviderFailed as exc:
            _show(errors, exc)
    return Template(
        "admin/billing.html",
        context={**context, "money": money},
        status_code=status_code,
        headers={"Cache-Control": "no-store"},
    )


async def _refused(
    session: AsyncSession,
    policy: BillingPolicy,
    principal: Principal,
    slug: str,
    exc: DomainError,
) -> Template:
    """The page again with what Stripe or the rules refused on top. A missing billing is not a
    refusal: the page says billing is off, and its forms do not exist."""
    if isinstance(exc, NotFound):
        raise exc
    await session.rollback()
    errors = FormErrors.of(exc, set())
    # Rules broken together come under one headline; a single refusal is its own headline.
    headline = _(exc.message)
    if headline not in errors.general:
        errors.general.insert(0, headline)
    return await _page(session, policy, principal, slug, errors=errors, status_code=exc.status_code)


class BillingPages(Controller):
    include_in_schema = False
    guards = [signed_in]  # noqa: RUF012

    @get("/t/{slug:str}/admin/billing")
    async def page(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        state: State,
        slug: FromPath[str],
        done: FromQuery[str | None] = None,
    ) -> Template:
        ensure_tenant_admin(request.user, slug)
        return await _page(
            db_session, state.billing, request.user, slug, notice=DONE_NOTICES.get(done or "")
        )

    @post("/t/{slug:str}/admin/billing/checkout", opt=PAYING)
    async def checkout(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        state: State,
        slug: FromPath[str],
        data: FormData,
    ) -> Template | Redirect:
        principal = request.user
        ensure_tenant_admin(principal, slug)
        try:
            choice = convert({"plan": field_text(data, "plan")}, CheckoutRequest)
            url = await billing.start_checkout(
                db_session,
                state.billing,
                principal.tenant_id,
                choice.plan,
                actor_id=principal.user_id,
            )
        except DomainError as exc:
            return await _refused(db_session, state.billing, principal, slug, exc)
        return Redirect(url, status_code=303)

    @post("/t/{slug:str}/admin/billing/portal", opt=PAYING)
    async def portal(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        state: State,
        slug: FromPath[str],
    ) -> Template | Redirect:
        principal = request.user
        ensure_tenant_admin(principal, slug)
        try:
            url = await billing.open_customer_portal(db_session, state.billing, principal.tenant_id)
        except DomainError as exc:
            return await _refused(db_session, state.billing, principal, slug, exc)
        return Redirect(url, status_code=303)
