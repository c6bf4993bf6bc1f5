"""Zones of a plant: where permits send people to work, where nobody goes without one, and where
everyone gathers in an emergency.

Geometry is stored in WGS-84 as GeoJSON (longitude first, as GeoJSON has it): a ``Polygon``
(holes allowed) or a ``Point`` with ``radius_m`` for a circle. Maps that draw in GCJ-02 convert
at the map, never in storage.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, String, UniqueConstraint
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
