"""Permits' background jobs: escalating late approval steps, expiring permits past their window
and finding confined spaces whose gas monitoring is overdue (§6.5), sent to every tenant by a
beat job every few minutes."""

from __future__ import annotations

from sqlalchemy.orm import Session

from infra.db import utcnow
from infra.tasks import app, send_to_every_tenant, tenant_task
from permits import chains
from permits.services import expire_overdue, watch_monitoring

WATCH_TASK = "permits.watch"


@tenant_task(WATCH_TASK)
def permits_watch(session: Session) -> dict[str, int]:
    now = utcnow()
    # Expire first: a permit past its window has nobody left to chase about its steps.
    expired = expire_overdue(session, now)
    return {
        "escalated": chains.escalate_overdue(session, now),
        "expired": expired,
        "monitoring_overdue": watch_monitoring(session, now),
    }


@app.task(name="permits.watch_fan_out")
def watch_fan_out() -> int:
    return send_to_every_tenant(permits_watch)
