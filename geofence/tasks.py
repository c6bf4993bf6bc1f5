"""Geofence background jobs: the sweep that raises alerts only time reveals (silence, an absent
guardian, people inside after the end), sent to every tenant each minute; and the daily upkeep
of the ping table's partitions on PostgreSQL."""

from __future__ import annotations

from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from geofence import tracking
from geofence.models import Ping
from infra import partitions
from infra.db import utcnow
from infra.settings import get_settings
from infra.tasks import app, send_to_every_tenant, tenant_task

SWEEP_TASK = "geofence.sweep"


@tenant_task(SWEEP_TASK)
def geofence_sweep(session: Session) -> dict[str, int]:
    return {"opened": tracking.sweep(session, utcnow())}


@app.task(name="geofence.sweep_fan_out")
def sweep_fan_out() -> int:
    return send_to_every_tenant(geofence_sweep)


@app.task(name="geofence.ping_partitions")
def ping_partitions() -> dict[str, list[str]]:
    """Make the coming days' partitions and drop those past the retention. The DDL runs as the
    schema's owner (the migration URL): the application role owns no table."""
    settings = get_settings()
    if not settings.is_postgres:
        return {"created": [], "dropped": []}
    engine = create_engine(settings.sync_migration_database_url)
    try:
        with engine.begin() as connection:
            changes = partitions.maintain_daily(
                connection,
                Ping.__tablename__,
                utcnow().date(),
                back_days=settings.ping_offline_window_hours // 24 + 1,
                ahead_days=settings.ping_partitions_ahead_days,
                keep_days=settings.ping_retention_days,
            )
    finally:
        engine.dispose()
    return {"created": changes.created, "dropped": changes.dropped}
