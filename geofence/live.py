"""What the live plant map and a job's timeline show, as plain data (the pages poll it).

Positions are WGS-84; a map drawing GCJ-02 tiles converts them itself. Times are UTC ISO 8601.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from geofence import alerts, tracking
from geofence.alerts import KIND_LABELS
from geofence.models import Alert, AlertKind, Watch, WatchMember, WatchState, Zone
from geofence.services import list_zones
from infra.audit import AuditEntry
from infra.errors import NotFound
from infra.i18n import N_, gettext

WATCH_NOT_FOUND = N_("Job not found.")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def zone_document(zone: Zone) -> dict[str, Any]:
    return {
        "id": str(zone.id),
        "name": zone.name,
        "kind": zone.kind,
        "geometry": zone.geometry,
        "radius_m": zone.radius_m,
        "buffer_m": zone.buffer_m,
    }


def alert_document(alert: Alert) -> dict[str, Any]:
    return {
        "id": str(alert.id),
        "kind": alert.kind,
        "kind_label": gettext(KIND_LABELS[AlertKind(alert.kind)]),
        "state": alert.state,
        "opened_at": _iso(alert.opened_at),
        "last_seen_at": _iso(alert.last_seen_at),
        "occurrences": alert.occurrences,
        "watch_id": str(alert.watch_id) if alert.watch_id else None,
        "zone_id": str(alert.zone_id) if alert.zone_id else None,
        "label": (alert.details or {}).get("label"),
        "zone_name": (alert.details or {}).get("zone_name"),
        "person": alert.person,
        "latitude": alert.latitude,
        "longitude": alert.longitude,
        "violation": alert.violation,
        "response_seconds": alert.response_seconds,
        "resolution_note": alert.resolution_note,
    }


def _person(member: WatchMember) -> dict[str, Any]:
    return {
        "user_id": str(member.user_id),
        "name": member.name,
        "role": member.role,
        "checked_in": tracking.is_checked_in(member),
        "inside": member.inside,
        "last_seen_at": _iso(member.last_seen_at),
        "latitude": member.last_latitude,
        "longitude": member.last_longitude,
        "accuracy_m": member.last_accuracy_m,
    }


def _watch(watch: Watch, members: list[WatchMember]) -> dict[str, Any]:
    return {
        "id": str(watch.id),
        "label": watch.label,
        "zone_id": str(watch.zone_id),
        "state": watch.state,
        "starts_at": _iso(watch.starts_at),
        "ends_at": _iso(watch.ends_at),
        "people": [_person(member) for member in members if member.removed_at is None],
    }


async def plant_snapshot(
    session: AsyncSession, plant_id: uuid.UUID, now: datetime
) -> dict[str, Any]:
    """Zones, the jobs running or paused (and ended ones with people still checked in), the
    people with their last position and state, and the unresolved alerts."""
    zones = await list_zones(session, plant_id)
    rows = await session.execute(
        select(Watch, WatchMember)
        .outerjoin(WatchMember, WatchMember.watch_id == Watch.id)
        .where(Watch.plant_id == plant_id, Watch.ends_at > now - tracking.LATE_STAY)
        .order_by(Watch.starts_at, WatchMember.name)
    )
    watches: dict[uuid.UUID, tuple[Watch, list[WatchMember]]] = {}
    for watch, member in rows:
        entry = watches.setdefault(watch.id, (watch, []))
        if member is not None:
            entry[1].append(member)
    shown = [
        _watch(watch, members)
        for watch, members in watches.values()
        if watch.state != WatchState.CLOSED.value
        or any(tracking.is_checked_in(member) for member in members)
    ]
    open_alerts = await alerts.list_alerts(session, plant_id=plant_id, unresolved_only=True)
    return {
        "zones": [zone_document(zone) for zone in zones],
        "watches": shown,
        "alerts": [alert_document(alert) for alert in open_alerts],
        "generated_at": now.isoformat(),
    }


async def get_watch(session: AsyncSession, watch_id: uuid.UUID) -> Watch:
    watch = await session.scalar(select(Watch).where(Watch.id == watch_id))
    if watch is None:
        raise NotFound(WATCH_NOT_FOUND)
    return watch


async def timeline(session: AsyncSession, watch_id: uuid.UUID) -> dict[str, Any]:
    """One job from start to end: its zone, people, check-ins, the pings on the map, its alerts
    and the permit's ledgered changes (started, suspended, resumed, completed …), in time order."""
    watch = await get_watch(session, watch_id)
    zone = await session.scalar(select(Zone).where(Zone.id == watch.zone_id))
    members = await tracking.members_of(session, watch_id)
    names = {member.id: member.name for member in members}
    user_names = {member.user_id: member.name for member in members}
    events: list[dict[str, Any]] = []
    for check in await tracking.checkins_of(session, watch_id):
        events.append(
            {
                "at": _iso(check.at),
                "kind": f"check_{check.direction}",
                "person": names.get(check.member_id),
                "method": check.method,
                "latitude": check.latitude,
                "longitude": check.longitude,
            }
        )
    watch_alerts = await alerts.list_alerts(session, watch_id=watch_id, limit=1_000)
    # A restricted zone is a person's alert, not the job's: the visits the job's people made
    # while it ran belong on its timeline too.
    visits = await session.scalars(
        select(Alert).where(
            Alert.kind == AlertKind.RESTRICTED_ZONE.value,
            Alert.watch_id.is_(None),
            Alert.user_id.in_([member.user_id for member in members]),
            Alert.opened_at >= watch.starts_at - tracking.EARLY_ARRIVAL,
            Alert.opened_at <= (watch.closed_at or watch.ends_at),
        )
    )
    for alert in [*watch_alerts, *visits]:
        events.append(
            {"at": _iso(alert.opened_at), "kind": "alert", "alert": alert_document(alert)}
        )
    ledger = await session.execute(
        select(AuditEntry)
        .where(AuditEntry.subject_type == "permit", AuditEntry.subject_id == str(watch_id))
        .order_by(AuditEntry.seq)
    )
    for entry in ledger.scalars():
        events.append({"at": _iso(entry.occurred_at), "kind": "permit", "action": entry.action})
    events.sort(key=lambda event: event["at"] or "")
    pings = await tracking.pings_of(session, watch_id)
    return {
        "watch": _watch(watch, members),
        "zone": zone_document(zone) if zone else None,
        "events": events,
        "pings": [
            {
                "at": _iso(ping.device_time),
                "person": user_names.get(ping.user_id),
                "latitude": ping.latitude,
                "longitude": ping.longitude,
                "accuracy_m": ping.accuracy_m,
                "inside": ping.inside,
            }
            for ping in pings
        ],
    }
