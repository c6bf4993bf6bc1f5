"""Zones of a plant (where permits send people to work, where nobody goes without one, and where
everyone gathers in an emergency), the supervised jobs inside them, the pings phones send, and
the alerts the engine raises.

Geometry is stored in WGS-84 as GeoJSON (longitude first, as GeoJSON has it): a ``Polygon``
(holes allowed) or a ``Point`` with ``radius_m`` for a circle. Maps that draw in GCJ-02 convert
at the map, never in storage.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from infra.tenancy import TenantOwned, tenant_foreign_key


class ZoneKind(enum.StrEnum):
    WORK_AREA = "work_area"
    RESTRICTED = "restricted"
    ASSEMBLY_POINT = "assembly_point"


class Zone(TenantOwned):
    __tablename__ = "zones"
    __table_args__ = (
        tenant_foreign_key(("plant_id",), "plants", ondelete="CASCADE"),
        UniqueConstraint("tenant_id", "plant_id", "name"),
        CheckConstraint("kind IN ('work_area', 'restricted', 'assembly_point')", name="kind"),
        CheckConstraint("buffer_m >= 0", name="buffer"),
        CheckConstraint("radius_m IS NULL OR radius_m > 0", name="radius"),
    )

    plant_id: Mapped[uuid.UUID]
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(16), default=ZoneKind.WORK_AREA.value)
    geometry: Mapped[dict[str, Any]] = mapped_column(JSON)
    radius_m: Mapped[float | None]
    buffer_m: Mapped[float] = mapped_column(default=0.0)
    retired_at: Mapped[datetime | None]


class WatchState(enum.StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    CLOSED = "closed"


class MemberRole(enum.StrEnum):
    CREW = "crew"
    GUARDIAN = "guardian"


class Watch(TenantOwned):
    """A job under supervision: the people, the zone and the window the engine watches.

    The permits package opens, changes and closes watches (``id`` is the permit's id, ``label``
    its number); geofence knows nothing else of permits, so it never depends on them.
    """

    __tablename__ = "geofence_watches"
    __table_args__ = (
        tenant_foreign_key(("plant_id",), "plants", ondelete="CASCADE"),
        tenant_foreign_key(("zone_id",), "zones"),
        CheckConstraint("state IN ('active', 'suspended', 'closed')", name="state"),
        CheckConstraint("ends_at > starts_at", name="window"),
        Index("ix_geofence_watches_plant_state", "tenant_id", "plant_id", "state"),
    )

    plant_id: Mapped[uuid.UUID]
    zone_id: Mapped[uuid.UUID]
    label: Mapped[str] = mapped_column(String(60))
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    state: Mapped[str] = mapped_column(String(16), default=WatchState.ACTIVE.value)
    closed_at: Mapped[datetime | None]


class WatchMember(TenantOwned):
    """One person of a watched job, crew or guardian, with what the engine knows of them.

    ``user_id`` is the login the person's phone sends pings with; ``worker_id`` names the
    contractor's worker when the person is one. The tracking columns are the per-person state
    that lets each batch be evaluated from where the last one stopped.
    """

    __tablename__ = "geofence_watch_members"
    __table_args__ = (
        tenant_foreign_key(("watch_id",), "geofence_watches", ondelete="CASCADE"),
        tenant_foreign_key(("user_id",), "users"),
        tenant_foreign_key(("worker_id",), "workers"),
        UniqueConstraint("tenant_id", "watch_id", "user_id"),
        CheckConstraint("role IN ('crew', 'guardian')", name="role"),
        Index("ix_geofence_watch_members_user", "tenant_id", "user_id"),
    )

    watch_id: Mapped[uuid.UUID]
    user_id: Mapped[uuid.UUID]
    worker_id: Mapped[uuid.UUID | None]
    name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(16), default=MemberRole.CREW.value)
    removed_at: Mapped[datetime | None]
    checked_in_at: Mapped[datetime | None]
    checked_out_at: Mapped[datetime | None]
    inside: Mapped[bool | None]
    outside_since: Mapped[datetime | None]
    last_seen_at: Mapped[datetime | None]
    last_latitude: Mapped[float | None]
    last_longitude: Mapped[float | None]
    last_accuracy_m: Mapped[float | None]


class CheckMethod(enum.StrEnum):
    GPS = "gps"
    QR = "qr"


class CheckIn(TenantOwned):
    """A check-in or check-out on site, kept as an event for the timeline and the work hours."""

    __tablename__ = "geofence_checkins"
    __table_args__ = (
        tenant_foreign_key(("watch_id",), "geofence_watches", ondelete="CASCADE"),
        tenant_foreign_key(("member_id",), "geofence_watch_members", ondelete="CASCADE"),
        CheckConstraint("direction IN ('in', 'out')", name="direction"),
        CheckConstraint("method IN ('gps', 'qr')", name="method"),
        Index("ix_geofence_checkins_watch", "tenant_id", "watch_id", "at"),
    )

    watch_id: Mapped[uuid.UUID]
    member_id: Mapped[uuid.UUID]
    direction: Mapped[str] = mapped_column(String(3))
    method: Mapped[str] = mapped_column(String(3))
    at: Mapped[datetime]
    latitude: Mapped[float | None]
    longitude: Mapped[float | None]
    accuracy_m: Mapped[float | None]


class Ping(TenantOwned):
    """One position a phone reported. ``id`` is the id the phone gave it, so a batch sent again
    stores nothing twice; ``device_time`` is part of the key because PostgreSQL partitions the
    table by it (one partition a day, made ahead and dropped after the retention)."""

    __tablename__ = "geofence_pings"
    __table_args__ = (
        Index("ix_geofence_pings_user_time", "tenant_id", "user_id", "device_time"),
        Index("ix_geofence_pings_watch_time", "tenant_id", "watch_id", "device_time"),
        {"postgresql_partition_by": "RANGE (device_time)"},
    )

    device_time: Mapped[datetime] = mapped_column(primary_key=True)
    user_id: Mapped[uuid.UUID]
    watch_id: Mapped[uuid.UUID | None]
    latitude: Mapped[float]
    longitude: Mapped[float]
    accuracy_m: Mapped[float]
    speed_mps: Mapped[float | None]
    heading_deg: Mapped[float | None]
    mock: Mapped[bool] = mapped_column(default=False)
    battery: Mapped[float | None]
    inside: Mapped[bool | None]


class AlertKind(enum.StrEnum):
    LEFT_ZONE = "left_zone"
    RESTRICTED_ZONE = "restricted_zone"
    NO_SIGNAL = "no_signal"
    OVERSTAY = "overstay"
    GUARDIAN_ABSENT = "guardian_absent"
    IMPLAUSIBLE_MOVEMENT = "implausible_movement"


class AlertState(enum.StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class Alert(TenantOwned):
    """A condition the engine saw. ``condition`` names the condition and whom it concerns; one
    unresolved alert per condition is a database constraint, so a storm of pings raises one
    alert, and ``last_seen_at``/``occurrences`` tell how long it went on."""

    __tablename__ = "geofence_alerts"
    __table_args__ = (
        tenant_foreign_key(("plant_id",), "plants", ondelete="CASCADE"),
        tenant_foreign_key(("watch_id",), "geofence_watches", ondelete="CASCADE"),
        tenant_foreign_key(("zone_id",), "zones"),
        CheckConstraint(
            "kind IN (" + ", ".join(f"'{kind.value}'" for kind in AlertKind) + ")", name="kind"
        ),
        CheckConstraint("state IN ('open', 'acknowledged', 'resolved')", name="state"),
        Index(
            "uq_geofence_alerts_unresolved",
            "tenant_id",
            "condition",
            unique=True,
            postgresql_where=text("state <> 'resolved'"),
            sqlite_where=text("state <> 'resolved'"),
        ),
        Index("ix_geofence_alerts_plant_state", "tenant_id", "plant_id", "state", "opened_at"),
        Index("ix_geofence_alerts_watch", "tenant_id", "watch_id", "opened_at"),
    )

    plant_id: Mapped[uuid.UUID]
    kind: Mapped[str] = mapped_column(String(24))
    condition: Mapped[str] = mapped_column(String(200))
    watch_id: Mapped[uuid.UUID | None]
    zone_id: Mapped[uuid.UUID | None]
    user_id: Mapped[uuid.UUID | None]
    person: Mapped[str | None] = mapped_column(String(100))
    state: Mapped[str] = mapped_column(String(16), default=AlertState.OPEN.value)
    opened_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    occurrences: Mapped[int] = mapped_column(default=1)
    latitude: Mapped[float | None]
    longitude: Mapped[float | None]
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by: Mapped[uuid.UUID | None]
    resolved_at: Mapped[datetime | None]
    resolved_by: Mapped[uuid.UUID | None]
    resolution_note: Mapped[str | None] = mapped_column(Text)
    violation: Mapped[bool] = mapped_column(default=False)
    response_seconds: Mapped[float | None]


class GeofencePolicy(TenantOwned):
    """The tenant's alert thresholds; a tenant without a row uses the defaults."""

    __tablename__ = "geofence_policies"
    __table_args__ = (
        UniqueConstraint("tenant_id"),
        CheckConstraint("dwell_s > 0 AND no_signal_minutes > 0", name="positive"),
        CheckConstraint("max_speed_mps > 0 AND guardian_absent_minutes > 0", name="limits"),
    )

    dwell_s: Mapped[int] = mapped_column(default=60)
    no_signal_minutes: Mapped[int] = mapped_column(default=10)
    max_speed_mps: Mapped[float] = mapped_column(default=15.0)
    guardian_absent_minutes: Mapped[int] = mapped_column(default=5)
    overstay_grace_minutes: Mapped[int] = mapped_column(default=0)
