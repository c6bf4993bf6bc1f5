"""Stripe subscriptions: Checkout and the customer portal, invoices, and the webhooks that drive
the tenant's status (``trialing → active → past_due → read_only → cancelled``).

Webhooks are verified with Stripe's library, recorded once by event id (a replay does nothing)
and applied so that the same events in any order leave the same state: every event becomes a
*fact* with an ordering key (:func:`event_version`, the event's own ``created`` second, then the
kind of event, then its id), and each group of subscription fields only takes a fact whose key
is greater than the one that last wrote it. The final state is therefore the one of the greatest
key in the set, whichever arrived last. Deletions are kept as a growing set, so a subscription
once deleted stays cancelled. ``docs/billing.md`` explains why this and not re-reading the
subscription from the API.

Plans are priced per plant and month: Checkout and plan changes buy one unit per plant, and
:func:`sync_quantity`, queued through the outbox by every change of the plants, brings the live
subscription's quantity to their number after the change committed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from infra import audit, outbox
from infra.db import Database, dialect_insert, new_id, utcnow
from infra.errors import Conflict, DomainError, FieldProblem, InvalidInput, NotFound
from infra.i18n import N_
from infra.tasks import app, worker_database, worker_settings
from infra.tenancy import current_tenant_id, tenant_scope
from tenants.entitlements import (
    BILLING_PAGE,
    PLANT_COUNT,
    BillingPolicy,
    active_worker_count,
    current_plan,
    current_subscription,
    effective_status,
    ensure_plan_fits,
    grace_end,
    live_subscription_id,
    plant_count,
    refresh_tenant_status,
    set_tenant_status,
    store_status,
    subscription_status,
    trial_end,
)
from tenants.models import StripeEvent, Subscription, Tenant, TenantStatus
from tenants.schemas import BillingRead, InvoiceRead, LimitsRead, UsageRead

if TYPE_CHECKING:
    from stripe import StripeClient

logger = logging.getLogger(__name__)

BILLING_OFF = N_("Billing is not switched on for this installation.")
INVOICES_SHOWN = 24
SIGNATURE_HEADER = "Stripe-Signature"
# The outbox topic whose messages bring the subscription's quantity to the number of plants.
QUANTITY_TOPIC = "billing.quantity"
PROVIDER_FAILED = N_("The payment provider did not answer as expected. Try again in a moment.")
# The customer portal's own configuration for sessions that manage a subscription (card,
# invoices, cancelling): a plan or quantity changed there would pass by the check of the plan
# against the tenant's use and by the plants, so it cannot change the subscription. Stripe's
# default configuration stays for the plan-change flow. Known per Stripe account once found.
MANAGE_CONFIGURATION_KEY = "contractor_portal"
_manage_configurations: dict[tuple[str, str], str] = {}
# The plans' prices as read from Stripe, by API address and price id.
_prices: dict[tuple[str, str], PlanPrice] = {}

# Within one second Stripe's order is unknown; this is the order in which the events of one
# subscription normally happen, and a deletion ends everything.
_RANKS = {
    "checkout.session.completed": 0,
    "customer.subscription.created": 1,
    "customer.subscription.updated": 2,
    "invoice.payment_failed": 2,
    "invoice.paid": 3,
    "customer.subscription.deleted": 4,
}

_STRIPE_STATUSES = {
    "trialing": TenantStatus.TRIALING,
    "active": TenantStatus.ACTIVE,
    "past_due": TenantStatus.PAST_DUE,
    # Stripe stopped retrying (unpaid) or the subscription is paused: no grace period left.
    "unpaid": TenantStatus.READ_ONLY,
    "paused": TenantStatus.READ_ONLY,
    "canceled": TenantStatus.CANCELLED,
}


class BillingProviderFailed(DomainError):
    status_code = 502


@dataclass(frozen=True)
class PlanPrice:
    """What Stripe charges for a plan: ``amount`` in the currency's smallest unit (``None`` for
    a price Stripe works out otherwise, such as tiers) every ``interval_count`` ``interval``s."""

    amount: int | None
    currency: str
    interval: str | None
    interval_count: int


class EventOutcome:
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    UNKNOWN_CUSTOMER = "unknown_customer"
    IGNORED = "ignored"


@dataclass(frozen=True)
class Fact:
    """What one event says about a tenant's subscription; ``None`` fields say nothing."""

    tenant_id: uuid.UUID | None
    version: str
    occurred_at: datetime
    customer_id: str | None
    subscription_id: str | None
    describes_subscription: bool = False
    plan: str | None = None
    current_period_end: datetime | None = None
    status: TenantStatus | None = None
    past_due_since: datetime | None = None
    ends_subscription: bool = False
    quantity: int | None = None


def event_version(created: int, event_type: str, event_id: str) -> str:
    """A key whose string order is the order of the events: zero-padded so it sorts."""
    return f"{created:012d}.{_RANKS[event_type]}.{event_id}"


def _invalid_event(problem: str) -> DomainError:
    return DomainError(
        N_("The webhook could not be verified."),
        [FieldProblem(SIGNATURE_HEADER, "signature", problem)],
    )


def verify_event(policy: BillingPolicy, payload: bytes, signature: str | None) -> dict[str, Any]:
    """The event, if Stripe signed it recently with our endpoint's secret; 400 otherwise."""
    if not signature:
        raise _invalid_event(N_("The Stripe-Signature header is missing."))
    from tenants import stripe_gateway  # on first use: see its docstring

    try:
        text = payload.decode("utf-8")
        stripe_gateway.verify_signature(text, signature, policy.webhook_secret)
        event = json.loads(text)
    except stripe_gateway.SignatureRefused as exc:
        logger.warning("Stripe webhook refused: %s", exc)
        raise _invalid_event(
            N_("The signature does not match, or its timestamp is too old.")
        ) from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _invalid_event(N_("The request body is not valid JSON.")) from exc
    if not (
        isinstance(event, dict)
        and isinstance(event.get("id"), str)
        and isinstance(event.get("type"), str)
        and isinstance(event.get("created"), int)
        and isinstance((event.get("data") or {}).get("object"), dict)
    ):
        raise _invalid_event(N_("This is not a Stripe event."))
    return event


def _timestamp(value: Any) -> datetime | None:
    return datetime.fromtimestamp(value, UTC) if isinstance(value, int) else None


def _tenant_id(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return None


def _metadata_tenant(obj: dict[str, Any]) -> uuid.UUID | None:
    return _tenant_id((obj.get("metadata") or {}).get("tenant_id"))


def _first_item(subscription: dict[str, Any]) -> dict[str, Any]:
    items = (subscription.get("items") or {}).get("data") or []
    return items[0] if items else {}


def _subscription_fact(
    policy: BillingPolicy, event_type: str, base: dict[str, Any], obj: dict[str, Any]
) -> Fact:
    item = _first_item(obj)
    price = (item.get("price") or {}).get("id")
    plan = policy.plan_for_price(price) if price else None
    if price and plan is None:
        logger.warning("subscription %s has a price no plan names: %s", obj.get("id"), price)
    deleted = event_type == "customer.subscription.deleted"
    status = TenantStatus.CANCELLED if deleted else _STRIPE_STATUSES.get(obj.get("status", ""))
    # Since API version 2025-03-31 the period lives on the items; older versions had it on top.
    period_start = item.get("current_period_start", obj.get("current_period_start"))
    period_end = item.get("current_period_end", obj.get("current_period_end"))
    return Fact(
        **base,
        describes_subscription=True,
        plan=plan,
        current_period_end=_timestamp(period_end),
        status=status,
        # The renewal whose payment failed opened the current period.
        past_due_since=(_timestamp(period_start) or base["occurred_at"])
        if status is TenantStatus.PAST_DUE
        else None,
        ends_subscription=deleted,
        quantity=item.get("quantity") if isinstance(item.get("quantity"), int) else None,
    )


def _invoice_subscription(invoice: dict[str, Any]) -> tuple[str | None, uuid.UUID | None]:
    details = ((invoice.get("parent") or {}).get("subscription_details")) or (
        invoice.get("subscription_details") or {}
    )
    subscription = details.get("subscription") or invoice.get("subscription")
    if isinstance(subscription, dict):
        subscription = subscription.get("id")
    return subscription, _tenant_id((details.get("metadata") or {}).get("tenant_id"))


def fact_from_event(policy: BillingPolicy, event: dict[str, Any]) -> Fact | None:
    """The fact an event states, or ``None`` for kinds of event that do not concern billing."""
    event_type = event["type"]
    if event_type not in _RANKS:
        return None
    obj = event["data"]["object"]
    base: dict[str, Any] = {
        "version": event_version(event["created"], event_type, event["id"]),
        "occurred_at": _timestamp(event["created"]),
        "customer_id": obj.get("customer") if isinstance(obj.get("customer"), str) else None,
    }
    if event_type == "checkout.session.completed":
        tenant_id = _tenant_id(obj.get("client_reference_id")) or _metadata_tenant(obj)
        return Fact(**base, tenant_id=tenant_id, subscription_id=obj.get("subscription"))
    if event_type.startswith("customer.subscription."):
        base.update(tenant_id=_metadata_tenant(obj), subscription_id=obj.get("id"))
        return _subscription_fact(policy, event_type, base, obj)
    subscription_id, tenant_id = _invoice_subscription(obj)
    # A trial's first invoice is for nothing; it says nothing about whether the tenant pays.
    says_nothing = obj.get("amount_due") == 0
    failed = event_type == "invoice.payment_failed"
    return Fact(
        **base,
        tenant_id=tenant_id,
        subscription_id=subscription_id,
        status=None if says_nothing else TenantStatus.PAST_DUE if failed else TenantStatus.ACTIVE,
        # Every retry of the same invoice names the same start, whatever order they come in.
        past_due_since=_timestamp(obj.get("created")) if failed else None,
    )


def apply_fact(subscription: Subscription, fact: Fact) -> None:
    """Fold one fact into the row; commutative for the facts of one tenant (see module doc)."""
    subscription_wins = fact.describes_subscription and fact.version > (
        subscription.subscription_version or ""
    )
    # A tenant keeps one Stripe customer (checkout reuses it), so every fact names the same one.
    if fact.customer_id and (subscription.stripe_customer_id is None or subscription_wins):
        subscription.stripe_customer_id = fact.customer_id
    if subscription_wins:
        subscription.stripe_subscription_id = fact.subscription_id
        subscription.plan = fact.plan
        subscription.current_period_end = fact.current_period_end
        subscription.subscription_version = fact.version
    if fact.status is not None and fact.version > (subscription.status_version or ""):
        subscription.status = fact.status.value
        subscription.status_subscription_id = fact.subscription_id
        subscription.past_due_since = fact.past_due_since
        subscription.status_version = fact.version
    ended = list(subscription.ended_subscription_ids or [])
    if fact.ends_subscription and fact.subscription_id and fact.subscription_id not in ended:
        subscription.ended_subscription_ids = sorted([*ended, fact.subscription_id])
    if subscription.last_event_at is None or fact.occurred_at > subscription.last_event_at:
        subscription.last_event_at = fact.occurred_at


async def _claim_event(session: AsyncSession, event: dict[str, Any], outcome: str) -> bool:
    """Record the event id; ``False`` if it was already recorded. Concurrent deliveries of one
    event wait on the unique index, and the later one finds it taken."""
    result = await session.execute(
        dialect_insert(session, StripeEvent)
        .values(
            id=new_id(),
            event_id=event["id"],
            type=event["type"],
            outcome=outcome,
            created_at=utcnow(),
            updated_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["event_id"])
    )
    return result.rowcount == 1  # type: ignore[attr-defined]


async def process_webhook(
    session: AsyncSession,
    policy: BillingPolicy,
    payload: bytes,
    signature: str | None,
    *,
    now: datetime | None = None,
) -> str:
    """Verify, record once and apply one webhook delivery; the outcome, for the log."""
    if not (policy.enabled and policy.webhook_secret):
        raise NotFound(BILLING_OFF)
    event = verify_event(policy, payload, signature)
    fact = fact_from_event(policy, event)
    tenant = await session.get(Tenant, fact.tenant_id) if fact and fact.tenant_id else None
    if fact is None:
        outcome = EventOutcome.IGNORED
    elif tenant is None:
        outcome = EventOutcome.UNKNOWN_CUSTOMER
    else:
        outcome = EventOutcome.APPLIED
    if not await _claim_event(session, event, outcome):
        logger.info("Stripe event %s already processed", event["id"])
        return EventOutcome.DUPLICATE
    if outcome == EventOutcome.UNKNOWN_CUSTOMER:
        logger.warning(
            "Stripe event %s (%s) names no tenant of ours (customer %s); recorded, not applied",
            event["id"],
            event["type"],
            fact.customer_id if fact else None,
        )
    if fact is not None and tenant is not None:
        with tenant_scope(tenant.id):
            await _apply_to_tenant(session, policy, tenant, event, fact, now or utcnow())
    return outcome


async def _apply_to_tenant(
    session: AsyncSession,
    policy: BillingPolicy,
    tenant: Tenant,
    event: dict[str, Any],
    fact: Fact,
    now: datetime,
) -> None:
    subscription = await current_subscription(session)
    if subscription is None:
        subscription = Subscription(ended_subscription_ids=[])
        session.add(subscription)
    apply_fact(subscription, fact)
    await session.flush()
    await audit.record(
        session,
        action="billing.event_applied",
        subject_type="tenant",
        subject_id=tenant.id,
        payload={
            "event_id": event["id"],
            "type": event["type"],
            "customer_id": subscription.stripe_customer_id,
            "subscription_id": subscription.stripe_subscription_id,
            "plan": subscription.plan,
            "subscription_status": subscription.status,
            "past_due_since": subscription.past_due_since,
        },
    )
    status = effective_status(tenant, subscription, policy, now)
    await set_tenant_status(session, tenant, status, reason=event["type"])
    if (
        fact.quantity is not None
        and fact.subscription_id == live_subscription_id(subscription)
        and fact.quantity != billed_plants(await plant_count(session))
    ):
        # The event changes nothing here: the quantity follows the plants, and the task that
        # sets it is told to look again (a plant added while Checkout was open, say).
        await request_quantity_sync(session, cause=f"event:{event['id']}")


def _billing_on(policy: BillingPolicy) -> None:
    if not policy.enabled:
        raise NotFound(BILLING_OFF)


@contextmanager
def _provider_failures() -> Iterator[None]:
    from tenants import stripe_gateway  # on first use: see its docstring

    try:
        yield
    except stripe_gateway.StripeError as exc:
        logger.error("Stripe request failed: %s", exc)
        raise BillingProviderFailed(PROVIDER_FAILED) from exc


@asynccontextmanager
async def _stripe(policy: BillingPolicy) -> AsyncIterator[StripeClient]:
    from tenants import stripe_gateway  # on first use: see its docstring

    _billing_on(policy)
    with _provider_failures():
        async with stripe_gateway.client(policy.secret_key, policy.api_base) as client:
            yield client


@contextmanager
def _stripe_sync(policy: BillingPolicy) -> Iterator[StripeClient]:
    """The same client for a worker's synchronous task."""
    from tenants import stripe_gateway  # on first use: see its docstring

    _billing_on(policy)
    with (
        _provider_failures(),
        stripe_gateway.sync_client(policy.secret_key, policy.api_base) as client,
    ):
        yield client


def _billing_page(policy: BillingPolicy, tenant: Tenant | None) -> str:
    if tenant is None:
        return policy.base_url
    return policy.base_url + BILLING_PAGE.format(slug=tenant.slug)


async def start_checkout(
    session: AsyncSession,
    policy: BillingPolicy,
    tenant_id: uuid.UUID,
    plan_name: str,
    *,
    actor_id: uuid.UUID | None = None,
) -> str:
    """The Stripe page where the administrator pays for ``plan_name``; its URL.

    Without a live subscription that is a Checkout Session: the tenant id travels in
    ``client_reference_id`` and the subscription's metadata, which is how webhooks find it. With
    one, a second Checkout would start a second subscription, so it is a customer-portal session
    that confirms the change of the existing subscription's price instead. Either way a plan
    smaller than what the tenant already uses is refused first."""
    _billing_on(policy)
    plan = policy.plans.get(plan_name)
    if plan is None:
        raise InvalidInput(
            "plan", "enum", N_("Not one of the plans: %(plans)s."), plans=", ".join(policy.plans)
        )
    await ensure_plan_fits(session, policy, plan_name)
    tenant = await session.get(Tenant, tenant_id)
    subscription = await current_subscription(session)
    live = live_subscription_id(subscription)
    if live is not None and subscription is not None and subscription.stripe_customer_id:
        if subscription.plan == plan_name:
            raise Conflict("plan", "current", N_("The tenant is on this plan already."))
        return await _start_plan_change(
            session, policy, tenant, subscription, plan_name, actor_id=actor_id
        )
    metadata = {"tenant_id": str(tenant_id), "plan": plan_name}
    return_to = _billing_page(policy, tenant)
    # The price is per plant and month: the quantity is what makes the amount.
    quantity = billed_plants(await plant_count(session))
    params: dict[str, Any] = {
        "mode": "subscription",
        "line_items": [{"price": plan.price, "quantity": quantity}],
        "client_reference_id": str(tenant_id),
        "metadata": metadata,
        "subscription_data": {"metadata": metadata},
        "success_url": return_to + "?done=subscribed",
        "cancel_url": return_to + "?done=checkout_cancelled",
    }
    if subscription is not None and subscription.stripe_customer_id:
        params["customer"] = subscription.stripe_customer_id
    async with _stripe(policy) as client:
        checkout = await client.v1.checkout.sessions.create_async(params)  # type: ignore[arg-type]
    await audit.record(
        session,
        action="billing.checkout_started",
        subject_type="tenant",
        subject_id=tenant_id,
        actor_id=actor_id,
        payload={
            "plan": plan_name,
            "checkout_session": checkout.id,
            "quantity": quantity,
        },
    )
    return str(checkout.url)


async def _start_plan_change(
    session: AsyncSession,
    policy: BillingPolicy,
    tenant: Tenant | None,
    subscription: Subscription,
    plan_name: str,
    *,
    actor_id: uuid.UUID | None,
) -> str:
    """A customer-portal session showing the change of the live subscription to ``plan_name``
    with its proration, for the administrator to confirm. The webhook that follows a
    confirmation changes the plan here, as for every other change."""
    subscription_id = str(subscription.stripe_subscription_id)
    return_to = _billing_page(policy, tenant)
    quantity = billed_plants(await plant_count(session))
    async with _stripe(policy) as client:
        current = await client.v1.subscriptions.retrieve_async(subscription_id)
        item_id = _first_item(current).get("id")
        if not item_id:
            logger.error("Stripe subscription %s has no item to change", subscription_id)
            raise BillingProviderFailed(PROVIDER_FAILED)
        portal = await client.v1.billing_portal.sessions.create_async(
            {
                "customer": str(subscription.stripe_customer_id),
                "return_url": return_to,
                "flow_data": {
                    "type": "subscription_update_confirm",
                    "subscription_update_confirm": {
                        "subscription": subscription_id,
                        "items": [
                            {
                                "id": item_id,
                                "price": policy.plans[plan_name].price,
                                "quantity": quantity,
                            }
                        ],
                    },
                    "after_completion": {
                        "type": "redirect",
                        "redirect": {"return_url": return_to + "?done=plan_changed"},
                    },
                },
            }
        )
    await audit.record(
        session,
        action="billing.plan_change_started",
        subject_type="tenant",
        subject_id=subscription.tenant_id,
        actor_id=actor_id,
        payload={
            "plan": plan_name,
            "from_plan": subscription.plan,
            "subscription_id": subscription_id,
            "quantity": quantity,
            "portal_session": portal.id,
        },
    )
    return str(portal.url)


def billed_plants(plants: int) -> int:
    """The subscription's quantity for this many plants. Plans are priced per plant and month;
    a tenant without plants yet still pays for one, as Stripe bills no subscription of none."""
    return max(plants, 1)


async def request_quantity_sync(session: AsyncSession, *, cause: str) -> None:
    """Queue :func:`sync_quantity` for the current tenant in the caller's transaction, when it
    has a live subscription. Stripe is called only after the commit, by the outbox: a rollback
    queues nothing, and a Stripe that is down delays the change without losing the plant.
    ``cause`` names the change uniquely (one message each)."""
    if live_subscription_id(await current_subscription(session)) is None:
        return
    await outbox.enqueue_async(
        session, topic=QUANTITY_TOPIC, payload={}, key=f"{QUANTITY_TOPIC}:{cause}"
    )


def sync_quantity(session: Session, policy: BillingPolicy) -> int | None:
    """Set the live subscription's quantity to the current tenant's number of plants, with
    prorations; the quantity it has now, or ``None`` when nothing is billed through Stripe.

    The number is read now and set as it is, not added to, so that repeated and reordered
    deliveries end on the last count. The subscription row stays locked until the caller
    commits: two deliveries for one tenant call Stripe one after the other, the later one with
    the later count."""
    if not policy.enabled:
        return None
    subscription = session.execute(select(Subscription).with_for_update()).scalar_one_or_none()
    subscription_id = live_subscription_id(subscription)
    if subscription_id is None:
        return None
    quantity = billed_plants(session.execute(PLANT_COUNT).scalar_one())
    with _stripe_sync(policy) as client:
        current = client.v1.subscriptions.retrieve(subscription_id)
        item = _first_item(current)
        if not item.get("id"):
            logger.error("Stripe subscription %s has no item to change", subscription_id)
            raise BillingProviderFailed(PROVIDER_FAILED)
        if item.get("quantity") == quantity:
            return quantity
        client.v1.subscriptions.update(
            subscription_id,
            {
                "items": [{"id": item["id"], "quantity": quantity}],
                "proration_behavior": "create_prorations",
            },
        )
    audit.append_entry(
        session,
        action="billing.quantity_changed",
        subject_type="tenant",
        subject_id=current_tenant_id(),
        payload={
            "subscription_id": subscription_id,
            "from": item.get("quantity"),
            "to": quantity,
        },
    )
    return quantity


async def billed_quantity(session: AsyncSession, policy: BillingPolicy) -> int | None:
    """How many plants Stripe bills the live subscription for now; ``None`` without one."""
    _billing_on(policy)
    subscription_id = live_subscription_id(await current_subscription(session))
    if subscription_id is None:
        return None
    async with _stripe(policy) as client:
        current = await client.v1.subscriptions.retrieve_async(subscription_id)
    quantity = _first_item(current).get("quantity")
    return quantity if isinstance(quantity, int) else None


async def _customer_id(session: AsyncSession) -> str | None:
    subscription = await current_subscription(session)
    return subscription.stripe_customer_id if subscription else None


async def has_customer(session: AsyncSession) -> bool:
    """Whether the tenant is a Stripe customer yet, and so has a customer portal to open."""
    return await _customer_id(session) is not None


async def _manage_configuration(client: StripeClient, policy: BillingPolicy) -> str:
    """The id of the portal configuration for managing a subscription without changing it,
    made once per Stripe account and found again by its metadata."""
    known = _manage_configurations.get((policy.api_base, policy.secret_key))
    if known is not None:
        return known
    page = await client.v1.billing_portal.configurations.list_async({"active": True, "limit": 100})
    found = None
    async for configuration in page.auto_paging_iter():
        if (configuration.get("metadata") or {}).get(MANAGE_CONFIGURATION_KEY) == "manage":
            found = configuration.id
            break
    if found is None:
        created = await client.v1.billing_portal.configurations.create_async(
            {
                "name": "Contractor portal: manage without plan changes",
                "metadata": {MANAGE_CONFIGURATION_KEY: "manage"},
                "features": {
                    "customer_update": {"enabled": True, "allowed_updates": ["email", "address"]},
                    "invoice_history": {"enabled": True},
                    "payment_method_update": {"enabled": True},
                    "subscription_cancel": {"enabled": True, "mode": "at_period_end"},
                    "subscription_update": {"enabled": False},
                },
            }
        )
        found = created.id
    _manage_configurations[(policy.api_base, policy.secret_key)] = found
    return found


async def open_customer_portal(
    session: AsyncSession, policy: BillingPolicy, tenant_id: uuid.UUID
) -> str:
    """A Stripe customer-portal session, where the tenant changes its card, sees its invoices
    or cancels. Not its plan: that goes through :func:`start_checkout`, which checks it against
    the tenant's use first, so this session's configuration leaves the subscription alone."""
    _billing_on(policy)
    customer = await _customer_id(session)
    if customer is None:
        raise Conflict("plan", "subscribe_first", N_("Subscribe to a plan first."))
    return_url = _billing_page(policy, await session.get(Tenant, tenant_id))
    async with _stripe(policy) as client:
        portal = await client.v1.billing_portal.sessions.create_async(
            {
                "customer": customer,
                "return_url": return_url,
                "configuration": await _manage_configuration(client, policy),
            }
        )
    return str(portal.url)


async def plan_prices(policy: BillingPolicy) -> dict[str, PlanPrice]:
    """What Stripe charges for each plan, read from its prices: the configuration names only
    the price ids. A price's amount and interval cannot change in Stripe (a new price is made
    instead), so each is read once per process."""
    _billing_on(policy)
    wanted = {name: plan.price for name, plan in policy.plans.items()}
    unread = sorted({price for price in wanted.values() if (policy.api_base, price) not in _prices})
    if unread:
        async with _stripe(policy) as client:
            answers = await asyncio.gather(
                *(client.v1.prices.retrieve_async(price) for price in unread),
                return_exceptions=True,
            )
            for price_id, price in zip(unread, answers, strict=True):
                if isinstance(price, BaseException):
                    raise price
                recurring = price.get("recurring") or {}
                _prices[policy.api_base, price_id] = PlanPrice(
                    amount=price.get("unit_amount"),
                    currency=price.get("currency", ""),
                    interval=recurring.get("interval"),
                    interval_count=recurring.get("interval_count") or 1,
                )
    return {name: _prices[policy.api_base, price] for name, price in wanted.items()}


async def list_invoices(session: AsyncSession, policy: BillingPolicy) -> list[InvoiceRead]:
    """The tenant's latest invoices, as Stripe has them."""
    _billing_on(policy)
    customer = await _customer_id(session)
    if customer is None:
        return []
    async with _stripe(policy) as client:
        page = await client.v1.invoices.list_async({"customer": customer, "limit": INVOICES_SHOWN})
    return [
        InvoiceRead(
            id=invoice.id,
            number=invoice.get("number"),
            status=invoice.get("status"),
            currency=invoice.get("currency", ""),
            amount_due=invoice.get("amount_due", 0),
            amount_paid=invoice.get("amount_paid", 0),
            created=datetime.fromtimestamp(invoice.get("created", 0), UTC),
            hosted_invoice_url=invoice.get("hosted_invoice_url"),
            invoice_pdf=invoice.get("invoice_pdf"),
        )
        for invoice in page.data
    ]


async def overview(
    session: AsyncSession,
    policy: BillingPolicy,
    tenant_id: uuid.UUID,
    *,
    now: datetime | None = None,
) -> BillingRead:
    """Plan, status (brought up to date with the clock), limits and usage."""
    status = await refresh_tenant_status(session, policy, tenant_id, now)
    tenant = await session.get_one(Tenant, tenant_id)
    subscription = await current_subscription(session)
    plan_name = current_plan(policy, subscription) if policy.enabled else None
    plan = policy.plans.get(plan_name) if plan_name else None
    clock_running = policy.enabled and subscription_status(subscription) is None
    return BillingRead(
        enabled=policy.enabled,
        plan=plan_name,
        status=status.value,
        current_period_end=subscription.current_period_end if subscription else None,
        past_due_since=subscription.past_due_since if subscription else None,
        trial_ends_at=trial_end(tenant, policy)
        if clock_running and status is TenantStatus.TRIALING
        else None,
        read_only_at=grace_end(subscription, policy)
        if policy.enabled and status is TenantStatus.PAST_DUE
        else None,
        subscribed=policy.enabled and live_subscription_id(subscription) is not None,
        limits=LimitsRead(
            max_plants=plan.max_plants if plan else None,
            max_active_workers=plan.max_active_workers if plan else None,
        ),
        usage=UsageRead(
            plants=await plant_count(session), active_workers=await active_worker_count(session)
        ),
    )


def apply_clock(database: Database, policy: BillingPolicy, now: datetime) -> int:
    """Store what the clock changed (a trial or grace period that ran out) for every tenant with
    a clock running, so that the registry is current for tenants nobody is using either.
    Requests do the same for their own tenant; this job only saves them the update."""
    if not policy.enabled:
        return 0
    running = (TenantStatus.TRIALING.value, TenantStatus.PAST_DUE.value)
    with database.sync_session() as session:
        query = select(Tenant.id).where(Tenant.status.in_(running)).order_by(Tenant.id)
        tenant_ids = list(session.execute(query).scalars())
    changed = 0
    for tenant_id in tenant_ids:
        with tenant_scope(tenant_id), database.sync_session() as session:
            tenant = session.get(Tenant, tenant_id)
            subscription = session.execute(select(Subscription)).scalar_one_or_none()
            if tenant is not None and store_status(
                session, tenant, effective_status(tenant, subscription, policy, now), reason="clock"
            ):
                changed += 1
            session.commit()
    return changed


@app.task(name="billing.apply_clock")
def apply_clock_task() -> int:
    return apply_clock(worker_database(), BillingPolicy.from_settings(worker_settings()), utcnow())
