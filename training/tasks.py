"""Training's background jobs: the daily watch over inductions about to lapse, sent to every
tenant by a beat job."""

from __future__ import annotations

import dataclasses
from datetime import date

from sqlalchemy.orm import Session

from infra.tasks import app, send_to_every_tenant, tenant_task
from onboarding.clock import plant_today
from training.lapse import LAPSE_TASK, watch_lapses


@tenant_task(LAPSE_TASK)
def lapse_watch(session: Session, *, today: str | None = None) -> dict[str, int]:
    """One pass of the watch for the tenant. ``today`` (ISO date) is the plant's date unless
    given, so a test or a catch-up run can name the day."""
    report = watch_lapses(session, date.fromisoformat(today) if today else plant_today())
    return dataclasses.asdict(report)


@app.task(name="training.lapse_fan_out")
def lapse_fan_out() -> int:
    """Send the watch to each tenant, each to run inside its own tenant's scope (tenants are
    listed from their registry, which is not tenant-owned)."""
    return send_to_every_tenant(lapse_watch)
