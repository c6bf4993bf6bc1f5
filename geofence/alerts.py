"""Alerts: raising one per condition, telling EHS through the outbox, and EHS handling them.

A condition is a kind of alert and whom it concerns (a person on a job, a job, a person in a
zone). While an alert for a condition is unresolved, seeing the condition again only counts and
dates it; the unique index on unresolved conditions makes that hold under concurrent batches.
Handling (acknowledge, resolve with a note, mark as a violation) is ledgered, and the response
time (raised until first acknowledged or resolved) is kept for the HQ metrics.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from geofence.models import Alert, AlertKind, AlertState
from infra import audit
from infra.errors import Conflict, NotFound
from infra.i18n import N_, gettext, locale_scope
from infra.notify import Notification, NotificationKind
from infra.tenancy import current_tenant_id
from tenants.models import Plant, Role
from tenants.notifications import enqueue_notification, tenant_url
from tenants.services import role_holders

KIND_LABELS: Mapping[AlertKind, str] = {
    AlertKind.LEFT_ZONE: N_("Left the work zone"),
    AlertKind.RESTRICTED_ZONE: N_("In a restricted zone without a permit"),
    AlertKind.NO_SIGNAL: N_("No signal while checked in"),
    AlertKind.OVERSTAY: N_("Still inside after the permit's end"),
    AlertKind.GUARDIAN_ABSENT: N_("Guardian absent"),
    AlertKind.IMPLAUSIBLE_MOVEMENT: N_("Implausible movement"),
}

# Who is told of a new alert on a plant.
ALERT_ROLES = (Role.EHS_OFFICER, Role.PLANT_MANAGER)

ALERT_NOT_FOUND = N_("Alert not found.")


@dataclass(frozen=True)
class Sighting:
    """The engine saw a condition at a time (and maybe a place)."""

    kind: AlertKind
    plant_id: uuid.UUID
    at: datetime
    watch_id: uuid.UUID | None = None
    zone_id: uuid.UUID | None = None
    user_id: uuid.UUID | None = None
    person: str | None = None
    label: str | None = None
    zone_name: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def condition(self) -> str:
        parts = (self.watch_id, self.user_id, self.zone_id)
        return f"{self.kind.value}:" + ":".join(part.hex if part else "-" for part in parts)


def _unresolved(session: Session, condition: str) -> Alert | None:
    return session.scalar(
        select(Alert).where(Alert.condition == condition, Alert.state != AlertState.RESOLVED.value)
    )


def _seen_again(alert: Alert, sighting: Sighting) -> None:
    if sighting.at > alert.last_seen_at:
        alert.last_seen_at = sighting.at
        if sighting.latitude is not None:
            alert.latitude = sighting.latitude
            alert.longitude = sighting.longitude
    alert.occurrences += 1


def raise_alert(session: Session, sighting: Sighting) -> Alert | None:
    """Open an alert for the sighting's condition, or count it on the unresolved one.
    Returns the alert when a new one was opened."""
    condition = sighting.condition
    existing = _unresolved(session, condition)
    if existing is not None:
        _seen_again(existing, sighting)
        return None
    alert = Alert(
        plant_id=sighting.plant_id,
        kind=sighting.kind.value,
        condition=condition,
        watch_id=sighting.watch_id,
        zone_id=sighting.zone_id,
        user_id=sighting.user_id,
        person=sighting.person,
        opened_at=sighting.at,
        last_seen_at=sighting.at,
        latitude=sighting.latitude,
        longitude=sighting.longitude,
        details={"label": sighting.label, "zone_name": sighting.zone_name, **sighting.details},
    )
    try:
        with session.begin_nested():
            session.add(alert)
            session.flush()
    except IntegrityError:
        # Another batch opened it between our look and our insert: count it there.
        existing = _unresolved(session, condition)
        if existing is None:
            raise
        _seen_again(existing, sighting)
        return None
    audit.append_entry(
        session,
        action="alert.raised",
        subject_type="alert",
        subject_id=alert.id,
        payload={
            "kind": alert.kind,
            "plant_id": alert.plant_id,
            "watch_id": alert.watch_id,
            "zone_id": alert.zone_id,
            "user_id": alert.user_id,
            "at": alert.opened_at,
            "latitude": alert.latitude,
            "longitude": alert.longitude,
        },
    )
    _notify(session, alert, sighting)
    return alert


def _notify(session: Session, alert: Alert, sighting: Sighting) -> None:
    plant_name = session.scalar(select(Plant.name).where(Plant.id == alert.plant_id)) or ""
    # The plant's live map, where alerts are acknowledged and resolved.
    url = tenant_url(session, f"/plants/{alert.plant_id}/live")
    for user in session.scalars(role_holders(ALERT_ROLES, alert.plant_id)):
        with locale_scope(user.locale):
            context = {
                "alert": gettext(KIND_LABELS[sighting.kind]),
                "plant_name": plant_name,
                "raised_at": alert.opened_at,
                "zone_name": sighting.zone_name or "",
                "permit_number": sighting.label or "",
                "person": sighting.person or "",
                "url": url,
            }
        enqueue_notification(
            session,
            Notification(
                tenant_id=current_tenant_id(),
                kind=NotificationKind.ALERT_RAISED,
                context=context,
                idempotency_key=f"geofence:alert:{alert.id}:{user.id}",
                recipient=user.id,
            ),
        )


def raise_all(session: Session, sightings: Sequence[Sighting]) -> list[Alert]:
    """Raise a batch's sightings: one look at the database per condition, however often the
    batch saw it, the first sighting opening the alert and the rest counted on it."""
    by_condition: dict[str, list[Sighting]] = {}
    for sighting in sorted(sightings, key=lambda sighting: sighting.at):
        by_condition.setdefault(sighting.condition, []).append(sighting)
    opened = []
    for seen in by_condition.values():
        alert = raise_alert(session, seen[0])
        if len(seen) > 1:
            counted = alert or _unresolved(session, seen[0].condition)
            if counted is not None:
                for later in seen[1:]:
                    _seen_again(counted, later)
        if alert is not None:
            opened.append(alert)
    return opened


async def get_alert(session: AsyncSession, alert_id: uuid.UUID) -> Alert:
    alert = await session.scalar(select(Alert).where(Alert.id == alert_id))
    if alert is None:
        raise NotFound(ALERT_NOT_FOUND)
    return alert


async def list_alerts(
    session: AsyncSession,
    *,
    plant_id: uuid.UUID | None = None,
    watch_id: uuid.UUID | None = None,
    unresolved_only: bool = False,
    limit: int = 200,
) -> list[Alert]:
    query = select(Alert)
    if plant_id is not None:
        query = query.where(Alert.plant_id == plant_id)
    if watch_id is not None:
        query = query.where(Alert.watch_id == watch_id)
    if unresolved_only:
        query = query.where(Alert.state != AlertState.RESOLVED.value)
    query = query.order_by(Alert.opened_at.desc(), Alert.id.desc()).limit(limit)
    return list((await session.execute(query)).scalars())


def _responded(alert: Alert, now: datetime) -> None:
    if alert.response_seconds is None:
        alert.response_seconds = max(0.0, (now - alert.opened_at).total_seconds())


async def _handled(
    session: AsyncSession, alert: Alert, action: str, actor_id: uuid.UUID, **payload: Any
) -> Alert:
    await session.flush()
    await audit.record(
        session,
        action=f"alert.{action}",
        subject_type="alert",
        subject_id=alert.id,
        actor_id=actor_id,
        payload={"state": alert.state, "response_seconds": alert.response_seconds, **payload},
    )
    return alert


async def acknowledge(
    session: AsyncSession, alert_id: uuid.UUID, *, actor_id: uuid.UUID, now: datetime
) -> Alert:
    alert = await get_alert(session, alert_id)
    if alert.state != AlertState.OPEN.value:
        raise Conflict("state", "open", N_("Only an open alert can be acknowledged."))
    alert.state = AlertState.ACKNOWLEDGED.value
    alert.acknowledged_at = now
    alert.acknowledged_by = actor_id
    _responded(alert, now)
    return await _handled(session, alert, "acknowledged", actor_id)


async def resolve(
    session: AsyncSession, alert_id: uuid.UUID, note: str, *, actor_id: uuid.UUID, now: datetime
) -> Alert:
    alert = await get_alert(session, alert_id)
    if alert.state == AlertState.RESOLVED.value:
        raise Conflict("state", "unresolved", N_("The alert is already resolved."))
    alert.state = AlertState.RESOLVED.value
    alert.resolved_at = now
    alert.resolved_by = actor_id
    alert.resolution_note = note
    _responded(alert, now)
    return await _handled(session, alert, "resolved", actor_id, note=note)


async def mark_violation(
    session: AsyncSession, alert_id: uuid.UUID, note: str, *, actor_id: uuid.UUID, now: datetime
) -> Alert:
    """Confirm the alert as a violation (it counts against the contractor in scoring); an
    unresolved alert is resolved with the note at the same time."""
    alert = await get_alert(session, alert_id)
    if alert.violation:
        raise Conflict("violation", "once", N_("The alert is already marked as a violation."))
    alert.violation = True
    if alert.state != AlertState.RESOLVED.value:
        alert.state = AlertState.RESOLVED.value
        alert.resolved_at = now
        alert.resolved_by = actor_id
        alert.resolution_note = note
    _responded(alert, now)
    return await _handled(session, alert, "violation", actor_id, note=note)
