"""The tenant's own background jobs: building the export of everything it owns, and the hourly
sweep that deletes tenants whose deletion grace period has ended (see :mod:`tenants.deletion`)."""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from infra.db import utcnow
from infra.field_encryption import field_cipher
from infra.storage import storage_from_settings
from infra.tasks import app, tenant_task, worker_database, worker_settings
from tenants import deletion, export

EXPORT_TASK = "tenants.build_export"
DELETION_TASK = "tenants.delete_due"


@tenant_task(EXPORT_TASK)
def build_export(session: Session, *, export_id: str) -> str | None:
    """Build a recorded tenant export into object storage; its final state."""
    settings = worker_settings()
    built = export.run_export(
        session, storage_from_settings(settings), field_cipher(settings), uuid.UUID(export_id)
    )
    return None if built is None else built.state


@app.task(name=DELETION_TASK)
def delete_due() -> list[str]:
    """Delete the tenants past their grace period; the slugs deleted."""
    storage = storage_from_settings(worker_settings())
    with worker_database().sync_session() as session:
        reports = deletion.delete_due(session, storage, utcnow())
    return [report.slug for report in reports]
