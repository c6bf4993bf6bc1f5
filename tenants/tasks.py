"""The tenant's own background jobs: building the export of everything it owns, the hourly
sweep that deletes tenants whose deletion grace period has ended (see :mod:`tenants.deletion`),
and bringing the Stripe subscription's quantity to the number of plants (see
:func:`tenants.billing.sync_quantity`)."""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from infra import outbox
from infra.db import utcnow
from infra.field_encryption import field_cipher
from infra.storage import storage_from_settings
from infra.tasks import app, tenant_task, worker_database, worker_settings
from tenants import billing, deletion, export
from tenants.entitlements import BillingPolicy

EXPORT_TASK = "tenants.build_export"
DELETION_TASK = "tenants.delete_due"


@tenant_task(EXPORT_TASK)
def build_export(session: Session, *, export_id: str) -> str | None:
    """Build a recorded tenant export into object storage; its final state."""
    settings = worker_settings()
    # The archive is built on disk: the var directory has room, where the system's temporary
    # directory may be small or held in memory.
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    built = export.run_export(
        session,
        storage_from_settings(settings),
        field_cipher(settings),
        uuid.UUID(export_id),
        scratch_dir=settings.var_dir,
    )
    return None if built is None else built.state


@app.task(name=DELETION_TASK)
def delete_due() -> list[str]:
    """Delete the tenants past their grace period; the slugs deleted."""
    storage = storage_from_settings(worker_settings())
    with worker_database().sync_session() as session:
        reports = deletion.delete_due(session, storage, utcnow())
    return [report.slug for report in reports]


def sync_billed_quantity(session: Session, message: outbox.OutboxMessage) -> None:
    """Deliver a :data:`tenants.billing.QUANTITY_TOPIC` message. The outbox runs it after the
    plants' change committed, for the message's tenant, and retries a failing Stripe with
    backoff; with billing switched off since it was queued, there is nothing to do."""
    billing.sync_quantity(session, BillingPolicy.from_settings(worker_settings()))


outbox.register_handler(billing.QUANTITY_TOPIC, sync_billed_quantity)
