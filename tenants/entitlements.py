"""What a tenant may do under its plan and the state of its subscription.

With no Stripe key configured billing is off: every tenant is unlimited and nothing answers 402.
With billing on, the plans come from configuration (``PORTAL_BILLING_PLANS``), the tenant's
status is derived from its subscription (``tenants.billing`` applies the webhooks), and four
rules bite: a plant beyond the plan's ``max_plants``, an active worker beyond its
``max_active_workers`` (checked by onboarding where a worker starts counting), any write by a
tenant that is ``read_only`` or ``cancelled``, and a plan chosen that is smaller than what the
tenant already uses. The rules for time (trial end, grace period) are evaluated when the status
is read, with an explicit ``now``, so no scheduler is needed for them to hold.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import msgspec
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from infra import audit
from infra.db import utcnow
from infra.errors import FieldProblem, PaymentRequired, RulesBroken
from infra.i18n import N_
from infra.schema import load_models
from infra.settings import Settings
from infra.tenancy import current_tenant_id
from tenants.models import Plant, Subscription, Tenant, TenantStatus

logger = logging.getLogger(__name__)

NO_WRITES = frozenset({TenantStatus.READ_ONLY, TenantStatus.CANCELLED})
# Workers belong to onboarding, which sits above this package, so their tables are read from the
# schema by name, as the tenant export reads every table. A worker counts against the plan when
# the tenant can put them on permits: verified by the EHS office, of a company that is admitted.
# A suspended company's workers keep their places, so that lifting a suspension never waits on
# the plan and suspending is no way to free places. Pending, rejected and expired workers do not
# count, nor do those of a company still under review, rejected or blacklisted.
WORKERS_TABLE = "workers"
CONTRACTORS_TABLE = "contractors"
ACTIVE_WORKER_STATE = "verified"
ADMITTED_CONTRACTOR_STATES = frozenset({"approved", "suspended"})


class Plan(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """One plan of ``PORTAL_BILLING_PLANS``; ``None`` limits are unlimited."""

    price: str
    max_plants: int | None = None
    max_active_workers: int | None = None


@dataclass(frozen=True)
class BillingPolicy:
    enabled: bool
    secret_key: str
    webhook_secret: str
    api_base: str
    base_url: str
    plans: dict[str, Plan]
    grace: timedelta
    trial: timedelta

    @classmethod
    def from_settings(cls, settings: Settings) -> BillingPolicy:
        try:
            plans = msgspec.json.decode(settings.billing_plans, type=dict[str, Plan])
        except msgspec.ValidationError as exc:
            raise ValueError(f"PORTAL_BILLING_PLANS is not a valid plan list: {exc}") from exc
        except msgspec.DecodeError as exc:
            raise ValueError(f"PORTAL_BILLING_PLANS must be a JSON object: {exc}") from exc
        return cls(
            enabled=bool(settings.stripe_secret_key),
            secret_key=settings.stripe_secret_key,
            webhook_secret=settings.stripe_webhook_secret,
            api_base=settings.stripe_api_base,
            base_url=settings.base_url,
            plans=plans,
            grace=timedelta(days=settings.billing_grace_days),
            trial=timedelta(days=settings.trial_days),
        )

    @property
    def entry_plan(self) -> str | None:
        """The first plan listed: it limits tenants that have not subscribed (yet)."""
        return next(iter(self.plans), None)

    def plan_for_price(self, price_id: str) -> str | None:
        return next((name for name, plan in self.plans.items() if plan.price == price_id), None)


def subscription_status(subscription: Subscription | None) -> TenantStatus | None:
    """What the subscription's events say, or ``None`` when no event spoke about the status."""
    if subscription is None or subscription.status is None:
        return None
    if subscription.status_subscription_id in (subscription.ended_subscription_ids or []):
        return TenantStatus.CANCELLED
    return TenantStatus(subscription.status)


def trial_end(tenant: Tenant, policy: BillingPolicy) -> datetime:
    """When a trial without a subscription turns the tenant read-only."""
    return tenant.created_at + policy.trial


def grace_end(subscription: Subscription | None, policy: BillingPolicy) -> datetime | None:
    """When an unpaid renewal turns the tenant read-only; ``None`` when nothing is overdue."""
    if subscription is None or subscription.past_due_since is None:
        return None
    return subscription.past_due_since + policy.grace


# The subscription statuses under which Stripe still bills the subscription.
BILLED = frozenset({TenantStatus.TRIALING, TenantStatus.ACTIVE, TenantStatus.PAST_DUE})


def live_subscription_id(subscription: Subscription | None) -> str | None:
    """The Stripe subscription that is being billed now: a plan change goes to it. A tenant
    without one (never subscribed, deleted, or unpaid so long that Stripe stopped collecting)
    subscribes anew."""
    if subscription is None or not subscription.stripe_subscription_id:
        return None
    if subscription.stripe_subscription_id in (subscription.ended_subscription_ids or []):
        return None
    if subscription_status(subscription) not in BILLED:
        return None
    return subscription.stripe_subscription_id


def effective_status(
    tenant: Tenant, subscription: Subscription | None, policy: BillingPolicy, now: datetime
) -> TenantStatus:
    """The tenant's status at ``now``: the subscription's, else the one it was created with,
    turned ``read_only`` once a trial without subscription or the grace period has run out."""
    from_subscription = subscription_status(subscription)
    status = from_subscription or TenantStatus(tenant.status)
    if (
        status is TenantStatus.TRIALING
        and from_subscription is None
        and now >= trial_end(tenant, policy)
    ):
        return TenantStatus.READ_ONLY
    if (
        status is TenantStatus.PAST_DUE
        and (deadline := grace_end(subscription, policy)) is not None
        and now > deadline
    ):
        return TenantStatus.READ_ONLY
    return status


async def current_subscription(session: AsyncSession) -> Subscription | None:
    return (await session.execute(select(Subscription))).scalar_one_or_none()


def store_status(
    session: Session,
    tenant: Tenant,
    status: TenantStatus,
    *,
    reason: str,
    actor_id: uuid.UUID | None = None,
) -> bool:
    """Store a new status with its ledger entry; ``False`` when it did not change."""
    if tenant.status == status.value:
        return False
    previous = tenant.status
    tenant.status = status.value
    session.flush()
    audit.append_entry(
        session,
        action="billing.status_changed",
        subject_type="tenant",
        subject_id=tenant.id,
        actor_id=actor_id,
        payload={"from": previous, "to": status.value, "reason": reason},
    )
    logger.info("tenant %s: %s -> %s (%s)", tenant.id, previous, status.value, reason)
    return True


async def set_tenant_status(
    session: AsyncSession,
    tenant: Tenant,
    status: TenantStatus,
    *,
    reason: str,
    actor_id: uuid.UUID | None = None,
) -> bool:
    """The async form of :func:`store_status`, for request handlers."""
    return await session.run_sync(
        lambda sync_session: store_status(
            sync_session, tenant, status, reason=reason, actor_id=actor_id
        )
    )


async def refresh_tenant_status(
    session: AsyncSession, policy: BillingPolicy, tenant_id: uuid.UUID, now: datetime | None = None
) -> TenantStatus:
    """The current tenant's status at ``now``, stored (and written to the ledger) if the clock
    moved it on since it was last stored. With billing off the stored status stands."""
    tenant = await session.get(Tenant, tenant_id)
    if tenant is None:
        raise LookupError(f"no tenant {tenant_id}")
    if not policy.enabled:
        return TenantStatus(tenant.status)
    status = effective_status(tenant, await current_subscription(session), policy, now or utcnow())
    await set_tenant_status(session, tenant, status, reason="clock")
    return status


def ensure_writable(status: TenantStatus) -> None:
    if status in NO_WRITES:
        raise PaymentRequired(
            N_("This account is read-only until the subscription is paid."),
            "billing",
            status.value,
            N_(
                "Reading still works, and so do sign-in and safety functions. A tenant "
                "administrator can pay or renew under Billing (POST /api/v1/billing/portal)."
            ),
        )


def current_plan(policy: BillingPolicy, subscription: Subscription | None) -> str | None:
    if subscription is not None and subscription.plan in policy.plans:
        return subscription.plan
    return policy.entry_plan


# The tenant administrator's billing page, where a refused addition points for the way up.
BILLING_PAGE = "/t/{slug}/admin/billing"

# The current tenant's plants in service, as a statement for the async and the worker's sync
# sessions: a retired plant neither counts against the plan nor is billed.
PLANT_COUNT = select(func.count()).select_from(Plant).where(Plant.retired_at.is_(None))


async def plant_count(session: AsyncSession) -> int:
    return (await session.execute(PLANT_COUNT)).scalar_one()


async def active_worker_count(session: AsyncSession) -> int:
    """The workers ``max_active_workers`` counts: the current tenant's verified workers of
    admitted companies."""
    tables = load_models().tables
    workers, contractors = tables[WORKERS_TABLE], tables[CONTRACTORS_TABLE]
    query = (
        select(func.count())
        .select_from(workers)
        .join(
            contractors,
            (contractors.c.tenant_id == workers.c.tenant_id)
            & (contractors.c.id == workers.c.contractor_id),
        )
        .where(workers.c.tenant_id == current_tenant_id())
        .where(workers.c.state == ACTIVE_WORKER_STATE)
        .where(contractors.c.state.in_(sorted(ADMITTED_CONTRACTOR_STATES)))
    )
    return (await session.execute(query)).scalar_one()


def plan_shortfalls(plan_name: str, plan: Plan, plants: int, workers: int) -> list[FieldProblem]:
    """Each limit of ``plan`` that the tenant's current use already exceeds."""
    problems = []
    if plan.max_plants is not None and plants > plan.max_plants:
        problems.append(
            FieldProblem(
                "plan",
                "max_plants",
                N_(
                    "The %(plan)s plan allows at most %(limit)s plants, and the tenant has "
                    "%(count)s. Choose a plan that allows them all."
                ),
                {"plan": plan_name, "limit": plan.max_plants, "count": plants},
            )
        )
    if plan.max_active_workers is not None and workers > plan.max_active_workers:
        problems.append(
            FieldProblem(
                "plan",
                "max_active_workers",
                N_(
                    "The %(plan)s plan allows at most %(limit)s active workers, and the tenant "
                    "has %(count)s. Choose a plan that allows them all."
                ),
                {"plan": plan_name, "limit": plan.max_active_workers, "count": workers},
            )
        )
    return problems


async def ensure_plan_fits(session: AsyncSession, policy: BillingPolicy, plan_name: str) -> None:
    """Refuse a plan smaller than what the tenant already uses, naming every limit it breaks:
    nothing would be removed to fit, so the tenant would pay for a plan it is already outside."""
    problems = plan_shortfalls(
        plan_name,
        policy.plans[plan_name],
        await plant_count(session),
        await active_worker_count(session),
    )
    if problems:
        raise RulesBroken(N_("This plan is smaller than what the tenant uses now."), problems)


async def _hold_for_limit_check(session: AsyncSession) -> Tenant:
    """Lock the tenant's row until the transaction ends, and return it. A limit check that is
    followed by the addition it allows takes it first, so two requests of one tenant that would
    each see room for one more count and add one after the other. The tenant row, not the
    subscription's: a tenant on trial has no subscription yet and is limited all the same."""
    locked = select(Tenant).where(Tenant.id == current_tenant_id()).with_for_update()
    return (await session.execute(locked)).scalar_one()


async def _plan_in_force(session: AsyncSession, policy: BillingPolicy) -> tuple[str, Plan] | None:
    """The tenant's plan and its limits; ``None`` when billing is off or no plan applies."""
    if not policy.enabled:
        return None
    name = current_plan(policy, await current_subscription(session))
    plan = policy.plans.get(name) if name else None
    return (name, plan) if name and plan is not None else None


def _first_plan_holding(policy: BillingPolicy, plants: int, workers: int) -> str | None:
    """The first plan, in the settings' order, whose limits hold this use."""
    return next(
        (
            name
            for name, plan in policy.plans.items()
            if not plan_shortfalls(name, plan, plants, workers)
        ),
        None,
    )


async def ensure_can_add_plant(session: AsyncSession, policy: BillingPolicy) -> None:
    """Refuse a plant beyond the current plan's ``max_plants``, naming the way up. The caller
    adds the plant in the same transaction."""
    in_force = await _plan_in_force(session, policy)
    if in_force is None or in_force[1].max_plants is None:
        return
    tenant = await _hold_for_limit_check(session)
    name, plan = in_force
    count = await plant_count(session)
    if count < plan.max_plants:
        return
    upgrade = _first_plan_holding(policy, count + 1, await active_worker_count(session))
    if upgrade is None:
        raise PaymentRequired(
            N_("Your plan does not allow more plants."),
            "plan",
            "max_plants",
            N_("The %(plan)s plan allows at most %(limit)s plants."),
            plan=name,
            limit=plan.max_plants,
        )
    raise PaymentRequired(
        N_("Your plan does not allow more plants."),
        "plan",
        "max_plants",
        N_(
            "The %(plan)s plan allows at most %(limit)s plants. A tenant administrator can "
            "upgrade to %(upgrade)s under Billing (%(billing_page)s) or with "
            "POST /api/v1/billing/checkout."
        ),
        plan=name,
        limit=plan.max_plants,
        upgrade=upgrade,
        billing_page=BILLING_PAGE.format(slug=tenant.slug),
    )


async def ensure_can_add_active_workers(
    session: AsyncSession, policy: BillingPolicy, adding: int = 1
) -> None:
    """Refuse ``adding`` more active workers when together they would pass the current plan's
    ``max_active_workers``: all of them, since admitting only some would leave a review half
    done. Names the limit, the count and the way up."""
    in_force = await _plan_in_force(session, policy) if adding > 0 else None
    if in_force is None or in_force[1].max_active_workers is None:
        return
    tenant = await _hold_for_limit_check(session)
    name, plan = in_force
    count = await active_worker_count(session)
    if count + adding <= plan.max_active_workers:
        return
    upgrade = _first_plan_holding(policy, await plant_count(session), count + adding)
    params = {"plan": name, "limit": plan.max_active_workers, "count": count, "adding": adding}
    if upgrade is None:
        raise PaymentRequired(
            N_("Your plan does not allow more active workers."),
            "plan",
            "max_active_workers",
            N_(
                "The %(plan)s plan allows at most %(limit)s active workers; the tenant has "
                "%(count)s, and this would add %(adding)s."
            ),
            **params,
        )
    raise PaymentRequired(
        N_("Your plan does not allow more active workers."),
        "plan",
        "max_active_workers",
        N_(
            "The %(plan)s plan allows at most %(limit)s active workers; the tenant has "
            "%(count)s, and this would add %(adding)s. A tenant administrator can upgrade to "
            "%(upgrade)s under Billing (%(billing_page)s) or with POST /api/v1/billing/checkout."
        ),
        **params,
        upgrade=upgrade,
        billing_page=BILLING_PAGE.format(slug=tenant.slug),
    )
