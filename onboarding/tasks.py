"""Admission's background jobs: the expiry watch, sent to every tenant by a beat job, and the
re-encryption of ID numbers after a key rotation."""

from __future__ import annotations

import dataclasses
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from infra import audit
from infra.field_encryption import field_cipher
from infra.tasks import (
    app,
    send_to_every_tenant,
    tenant_task,
    worker_settings,
)
from infra.tenancy import current_tenant_id
from onboarding.clock import plant_today
from onboarding.expiry import EXPIRY_TASK, watch_expiry
from onboarding.models import Worker
from onboarding.personal_data import is_erased
from onboarding.services import id_number_context


@tenant_task(EXPIRY_TASK)
def expiry_watch(session: Session, *, today: str | None = None) -> dict[str, int]:
    """One pass of the watch for the tenant. ``today`` (ISO date) is the plant's date unless
    given, so a test or a catch-up run can name the day."""
    report = watch_expiry(session, date.fromisoformat(today) if today else plant_today())
    return dataclasses.asdict(report)


@app.task(name="onboarding.expiry_fan_out")
def expiry_fan_out() -> int:
    """Send the watch to each tenant. Tenants are listed from their registry, which is not
    tenant-owned; each watch then runs inside its own tenant's scope, as row-level security
    requires of the application role."""
    return send_to_every_tenant(expiry_watch)


@tenant_task("onboarding.reencrypt_id_numbers")
def reencrypt_id_numbers(session: Session) -> int:
    """After a new key is put first in ``PORTAL_FIELD_ENCRYPTION_KEY``, rewrite the tenant's ID
    numbers and their digests under it; the old key can leave the ring once every tenant ran
    this. Returns how many workers were rewritten."""
    cipher = field_cipher(worker_settings())
    context = id_number_context()
    stale = [
        worker
        for worker in session.execute(select(Worker).with_for_update()).scalars()
        if not cipher.is_current(worker.id_number_encrypted)
    ]
    for worker in stale:
        number = cipher.decrypt(worker.id_number_encrypted, context=context)
        worker.id_number_encrypted = cipher.encrypt(number, context=context)
        # An erased worker's digest is the mark of the erasure, and unique to them: the digest of
        # their empty number would be the same for every erased worker of the company.
        if not is_erased(worker):
            worker.id_number_digest = cipher.digest(number, context=context)
    if stale:
        session.flush()
        audit.append_entry(
            session,
            action="workers.reencrypted",
            subject_type="tenant",
            subject_id=current_tenant_id(),
            payload={"workers": len(stale), "key_version": cipher.current_version},
        )
    return len(stale)
