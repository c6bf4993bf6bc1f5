"""The deletion of a tenant: asked for by a tenant administrator who types the tenant's slug,
carried out after a grace period during which it can be cancelled, by the hourly
``tenants.delete_due`` sweep.

The deletion removes every row of every table with a tenant column (children before parents,
read from the schema's metadata like the export, so no table is forgotten), the tenant's ledger
with them (it is the tenant's data), every object under the tenant's storage prefix, and last the
tenant's row. The ledger records the request and a cancellation; the deletion itself can only be
recorded in the application log, since the ledger goes with the tenant.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from infra import audit
from infra.errors import Conflict, InvalidInput
from infra.i18n import N_
from infra.storage import ObjectStorage, tenant_key
from infra.tenancy import bypass_tenant_scope_for_cross_tenant_job, tenant_scope
from tenants.export import TENANT_COLUMN, tenant_owned_tables
from tenants.models import Tenant

logger = logging.getLogger(__name__)

CONFIRMATION_FIELD = "confirmation"


@dataclass(frozen=True)
class DeletionReport:
    tenant_id: uuid.UUID
    slug: str
    rows: int
    objects: int


def request_deletion(
    session: Session,
    tenant: Tenant,
    *,
    confirmation: str,
    grace_days: int,
    actor_id: uuid.UUID,
    now: datetime,
) -> datetime:
    """Schedule the tenant's deletion ``grace_days`` from ``now``; the moment it is due.
    ``confirmation`` must be the tenant's slug, typed by the person asking."""
    if confirmation.strip() != tenant.slug:
        raise InvalidInput(
            CONFIRMATION_FIELD,
            "matches_slug",
            N_("Type the tenant's short name %(slug)s exactly to confirm."),
            slug=tenant.slug,
        )
    if tenant.deletion_scheduled_at is not None:
        raise Conflict("deletion", "already_scheduled", N_("The deletion is already scheduled."))
    tenant.deletion_scheduled_at = now + timedelta(days=grace_days)
    audit.append_entry(
        session,
        action="tenant.deletion_requested",
        subject_type="tenant",
        subject_id=tenant.id,
        payload={"scheduled_at": tenant.deletion_scheduled_at, "grace_days": grace_days},
        actor_id=actor_id,
    )
    return tenant.deletion_scheduled_at


def cancel_deletion(session: Session, tenant: Tenant, *, actor_id: uuid.UUID) -> None:
    if tenant.deletion_scheduled_at is None:
        raise Conflict("deletion", "not_scheduled", N_("No deletion is scheduled."))
    scheduled_at = tenant.deletion_scheduled_at
    tenant.deletion_scheduled_at = None
    audit.append_entry(
        session,
        action="tenant.deletion_cancelled",
        subject_type="tenant",
        subject_id=tenant.id,
        payload={"scheduled_at": scheduled_at},
        actor_id=actor_id,
    )


def due_tenants(session: Session, now: datetime) -> list[uuid.UUID]:
    with bypass_tenant_scope_for_cross_tenant_job("tenant deletion sweep: tenants past grace"):
        return list(
            session.execute(
                select(Tenant.id)
                .where(Tenant.deletion_scheduled_at <= now)
                .order_by(Tenant.deletion_scheduled_at)
            ).scalars()
        )


def tenant_prefix(tenant_id: uuid.UUID) -> str:
    return tenant_key(tenant_id) + "/"


def delete_tenant(session: Session, storage: ObjectStorage, tenant_id: uuid.UUID) -> DeletionReport:
    """Remove the tenant and all it owns, and commit. The objects go first: if the rows failed
    to go, the tenant stays due and the next sweep finishes the job, while objects deleted after
    the tenant's row would be left behind for good by a failure in between."""
    keys = storage.keys(tenant_prefix(tenant_id))
    for key in keys:
        storage.delete(key)
    rows = 0
    with tenant_scope(tenant_id):
        for table in reversed(tenant_owned_tables()):
            result = session.execute(delete(table).where(table.c[TENANT_COLUMN] == tenant_id))
            rows += result.rowcount or 0  # type: ignore[attr-defined]
    with bypass_tenant_scope_for_cross_tenant_job("tenant deletion: the tenant's registry row"):
        tenant = session.get_one(Tenant, tenant_id)
        slug = tenant.slug
        session.delete(tenant)
        session.flush()
    session.commit()
    report = DeletionReport(tenant_id, slug, rows, len(keys))
    # The ledger went with the tenant: the application log is the record of the deletion.
    logger.warning(
        "tenant %s (%s) deleted after its grace period: %d rows, %d stored objects",
        slug,
        tenant_id,
        rows,
        len(keys),
    )
    return report


def delete_due(session: Session, storage: ObjectStorage, now: datetime) -> list[DeletionReport]:
    """Delete every tenant whose grace period ended by ``now``. One tenant that fails stays due
    for the next run and does not hold up the others."""
    reports = []
    for tenant_id in due_tenants(session, now):
        try:
            reports.append(delete_tenant(session, storage, tenant_id))
        except Exception:
            logger.exception("deleting tenant %s failed; the next run tries again", tenant_id)
            session.rollback()
    return reports
