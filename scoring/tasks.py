"""Evaluation background jobs: rebuilding the rollup days that changes marked stale, sent to
every tenant each minute, so the HQ pages rarely have anything left to rebuild when they read."""

from __future__ import annotations

from sqlalchemy.orm import Session

from infra.tasks import app, send_to_every_tenant, tenant_task
from scoring import rollups

REFRESH_TASK = "scoring.refresh_rollups"


@tenant_task(REFRESH_TASK)
def refresh_rollups(session: Session) -> dict[str, int]:
    return {"rebuilt": rollups.refresh_stale(session)}


@app.task(name="scoring.refresh_fan_out")
def refresh_fan_out() -> int:
    return send_to_every_tenant(refresh_rollups)
