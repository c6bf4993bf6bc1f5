"""Evaluation background jobs: rebuilding the rollup days that changes marked stale, sent to
every tenant each minute, so the HQ pages rarely have anything left to rebuild when they read;
building long exports of the HQ tables; and the daily push of the figures to the group's BI,
looked at hourly for every tenant (each day is queued once, see :mod:`scoring.bi`)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.orm import Session

from infra.db import utcnow
from infra.storage import storage_from_settings
from infra.tasks import app, send_to_every_tenant, tenant_task, worker_settings
from scoring import bi, exports, rollups

REFRESH_TASK = "scoring.refresh_rollups"
EXPORT_TASK = "scoring.build_export"
BI_TASK = "scoring.bi_push"


@tenant_task(REFRESH_TASK)
def refresh_rollups(session: Session) -> dict[str, int]:
    return {"rebuilt": rollups.refresh_stale(session)}


@app.task(name="scoring.refresh_fan_out")
def refresh_fan_out() -> int:
    return send_to_every_tenant(refresh_rollups)


@tenant_task(EXPORT_TASK)
def build_export(session: Session, *, export_id: str) -> str | None:
    """Build a recorded export into object storage; its final state."""
    storage = storage_from_settings(worker_settings())
    export = exports.run_export(session, storage, uuid.UUID(export_id))
    return None if export is None else export.state


@tenant_task(BI_TASK)
def bi_push(session: Session, *, now: str | None = None) -> str | None:
    """Queue the tenant's last finished day for the BI webhook; the key queued, if any.
    ``now`` (ISO 8601 with its offset) lets a test or a catch-up run name the moment."""
    moment = datetime.fromisoformat(now) if now else utcnow()
    message = bi.queue_daily_push(session, moment)
    return None if message is None else message.key


@app.task(name="scoring.bi_push_fan_out")
def bi_push_fan_out() -> int:
    return send_to_every_tenant(bi_push)
