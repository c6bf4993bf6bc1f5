"""What a tenant may do under its plan and the state of its subscription.

With no Stripe key configured billing is off: every tenant is unlimited and nothing answers 402.
With billing on, the plans come from configuration (``PORTAL_BILLING_PLANS``), the tenant's
status is derived from its subscription (``tenants.billing`` applies the webhooks), and two
rules bite: a plant beyond the plan's ``max_plants``, and any write by a tenant that is
``read_only`` or ``cancelled``. The rules for time (trial end, grace period) are evaluated when
the status is read, with an explicit ``now``, so no scheduler is needed for them to hold.
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
from infra.errors import PaymentRequired
from infra.i18n import N_
from infra.settings import Settings
from tenants.models import Plant, Subscription, Tenant, TenantStatus

logger = logging.getLogger(__name__)

NO_WRITES = frozenset({TenantStatus.READ_ONLY, TenantStatus.CANCELLED})


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
        and now >= tenant.created_at + policy.trial
    ):
        return TenantStatus.READ_ONLY
    if (
        status is TenantStatus.PAST_DUE
        and subscription is not None
        and subscription.past_due_since is not None
        and now - subscription.past_due_since > policy.grace
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


async def plant_count(session: AsyncSession) -> int:
    return (await session.execute(select(func.count()).select_from(Plant))).scalar_one()


async def ensure_can_add_plant(session: AsyncSession, policy: BillingPolicy) -> None:
    """Refuse a plant beyond the current plan's ``max_plants``, naming the way up."""
    if not policy.enabled:
        return
    name = current_plan(policy, await current_subscription(session))
    plan = policy.plans.get(name) if name else None
    if plan is None or plan.max_plants is None:
        return
    count = await plant_count(session)
    if count < plan.max_plants:
        return
    upgrade = next(
        (
            other
            for other, candidate in policy.plans.items()
            if candidate.max_plants is None or candidate.max_plants > count
        ),
        None,
    )
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
            "upgrade to %(upgrade)s with POST /api/v1/billing/checkout."
        ),
        plan=name,
        limit=plan.max_plants,
        upgrade=upgrade,
    )
