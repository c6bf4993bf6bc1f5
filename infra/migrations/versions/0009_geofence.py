"""geofence: supervised jobs and their people, check-ins, pings (on PostgreSQL a table
partitioned by day), alerts and the tenant's alert thresholds

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-28 17:02:18.249243
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import infra.db
from infra import partitions, rls
from infra.settings import get_settings

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


TENANT_TABLES = (
    "geofence_pings",
    "geofence_policies",
    "geofence_watches",
    "geofence_alerts",
    "geofence_watch_members",
    "geofence_checkins",
)


def upgrade() -> None:
    op.create_table(
        "geofence_pings",
        sa.Column("device_time", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("watch_id", sa.Uuid(), nullable=True),
        sa.Column("latitude", sa.Float(), nullable=False),
        sa.Column("longitude", sa.Float(), nullable=False),
        sa.Column("accuracy_m", sa.Float(), nullable=False),
        sa.Column("speed_mps", sa.Float(), nullable=True),
        sa.Column("heading_deg", sa.Float(), nullable=True),
        sa.Column("mock", sa.Boolean(), nullable=False),
        sa.Column("battery", sa.Float(), nullable=True),
        sa.Column("inside", sa.Boolean(), nullable=True),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_geofence_pings_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", "device_time", name=op.f("pk_geofence_pings")),
        postgresql_partition_by="RANGE (device_time)",
    )
    with op.batch_alter_table("geofence_pings", schema=None) as batch_op:
        batch_op.create_index(
            "ix_geofence_pings_user_time", ["tenant_id", "user_id", "device_time"], unique=False
        )
        batch_op.create_index(
            "ix_geofence_pings_watch_time", ["tenant_id", "watch_id", "device_time"], unique=False
        )

    op.create_table(
        "geofence_policies",
        sa.Column("dwell_s", sa.Integer(), nullable=False),
        sa.Column("no_signal_minutes", sa.Integer(), nullable=False),
        sa.Column("max_speed_mps", sa.Float(), nullable=False),
        sa.Column("guardian_absent_minutes", sa.Integer(), nullable=False),
        sa.Column("overstay_grace_minutes", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "dwell_s > 0 AND no_signal_minutes > 0", name=op.f("ck_geofence_policies_positive")
        ),
        sa.CheckConstraint(
            "max_speed_mps > 0 AND guardian_absent_minutes > 0",
            name=op.f("ck_geofence_policies_limits"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_geofence_policies_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_geofence_policies")),
        sa.UniqueConstraint("tenant_id", name=op.f("uq_geofence_policies_tenant_id")),
    )
    op.create_table(
        "geofence_watches",
        sa.Column("plant_id", sa.Uuid(), nullable=False),
        sa.Column("zone_id", sa.Uuid(), nullable=False),
        sa.Column("label", sa.String(length=60), nullable=False),
        sa.Column("starts_at", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ends_at", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("closed_at", infra.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "state IN ('active', 'suspended', 'closed')", name=op.f("ck_geofence_watches_state")
        ),
        sa.CheckConstraint("ends_at > starts_at", name=op.f("ck_geofence_watches_window")),
        sa.ForeignKeyConstraint(
            ["tenant_id", "plant_id"],
            ["plants.tenant_id", "plants.id"],
            name=op.f("fk_geofence_watches_tenant_id_plant_id_plants"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "zone_id"],
            ["zones.tenant_id", "zones.id"],
            name=op.f("fk_geofence_watches_tenant_id_zone_id_zones"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_geofence_watches_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_geofence_watches")),
    )
    with op.batch_alter_table("geofence_watches", schema=None) as batch_op:
        batch_op.create_index(
            "ix_geofence_watches_plant_state", ["tenant_id", "plant_id", "state"], unique=False
        )

    op.create_table(
        "geofence_alerts",
        sa.Column("plant_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("condition", sa.String(length=200), nullable=False),
        sa.Column("watch_id", sa.Uuid(), nullable=True),
        sa.Column("zone_id", sa.Uuid(), nullable=True),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("person", sa.String(length=100), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("opened_at", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("occurrences", sa.Integer(), nullable=False),
        sa.Column("latitude", sa.Float(), nullable=True),
        sa.Column("longitude", sa.Float(), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("acknowledged_at", infra.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_by", sa.Uuid(), nullable=True),
        sa.Column("resolved_at", infra.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("resolved_by", sa.Uuid(), nullable=True),
        sa.Column("resolution_note", sa.Text(), nullable=True),
        sa.Column("violation", sa.Boolean(), nullable=False),
        sa.Column("response_seconds", sa.Float(), nullable=True),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind IN ('left_zone', 'restricted_zone', 'no_signal', 'overstay', 'guardian_absent', 'implausible_movement')",
            name=op.f("ck_geofence_alerts_kind"),
        ),
        sa.CheckConstraint(
            "state IN ('open', 'acknowledged', 'resolved')", name=op.f("ck_geofence_alerts_state")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "plant_id"],
            ["plants.tenant_id", "plants.id"],
            name=op.f("fk_geofence_alerts_tenant_id_plant_id_plants"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "watch_id"],
            ["geofence_watches.tenant_id", "geofence_watches.id"],
            name=op.f("fk_geofence_alerts_tenant_id_watch_id_geofence_watches"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "zone_id"],
            ["zones.tenant_id", "zones.id"],
            name=op.f("fk_geofence_alerts_tenant_id_zone_id_zones"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_geofence_alerts_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_geofence_alerts")),
    )
    with op.batch_alter_table("geofence_alerts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_geofence_alerts_plant_state",
            ["tenant_id", "plant_id", "state", "opened_at"],
            unique=False,
        )
        batch_op.create_index(
            "ix_geofence_alerts_watch", ["tenant_id", "watch_id", "opened_at"], unique=False
        )
        batch_op.create_index(
            "uq_geofence_alerts_unresolved",
            ["tenant_id", "condition"],
            unique=True,
            postgresql_where=sa.text("state <> 'resolved'"),
            sqlite_where=sa.text("state <> 'resolved'"),
        )

    op.create_table(
        "geofence_watch_members",
        sa.Column("watch_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("worker_id", sa.Uuid(), nullable=True),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("removed_at", infra.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("checked_in_at", infra.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("checked_out_at", infra.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("inside", sa.Boolean(), nullable=True),
        sa.Column("outside_since", infra.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_seen_at", infra.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_latitude", sa.Float(), nullable=True),
        sa.Column("last_longitude", sa.Float(), nullable=True),
        sa.Column("last_accuracy_m", sa.Float(), nullable=True),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "role IN ('crew', 'guardian')", name=op.f("ck_geofence_watch_members_role")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "user_id"],
            ["users.tenant_id", "users.id"],
            name=op.f("fk_geofence_watch_members_tenant_id_user_id_users"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "watch_id"],
            ["geofence_watches.tenant_id", "geofence_watches.id"],
            name=op.f("fk_geofence_watch_members_tenant_id_watch_id_geofence_watches"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "worker_id"],
            ["workers.tenant_id", "workers.id"],
            name=op.f("fk_geofence_watch_members_tenant_id_worker_id_workers"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_geofence_watch_members_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_geofence_watch_members")),
        sa.UniqueConstraint(
            "tenant_id",
            "watch_id",
            "user_id",
            name=op.f("uq_geofence_watch_members_tenant_id_watch_id_user_id"),
        ),
    )
    with op.batch_alter_table("geofence_watch_members", schema=None) as batch_op:
        batch_op.create_index(
            "ix_geofence_watch_members_user", ["tenant_id", "user_id"], unique=False
        )

    op.create_table(
        "geofence_checkins",
        sa.Column("watch_id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("direction", sa.String(length=3), nullable=False),
        sa.Column("method", sa.String(length=3), nullable=False),
        sa.Column("at", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("latitude", sa.Float(), nullable=True),
        sa.Column("longitude", sa.Float(), nullable=True),
        sa.Column("accuracy_m", sa.Float(), nullable=True),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "direction IN ('in', 'out')", name=op.f("ck_geofence_checkins_direction")
        ),
        sa.CheckConstraint("method IN ('gps', 'qr')", name=op.f("ck_geofence_checkins_method")),
        sa.ForeignKeyConstraint(
            ["tenant_id", "member_id"],
            ["geofence_watch_members.tenant_id", "geofence_watch_members.id"],
            name=op.f("fk_geofence_checkins_tenant_id_member_id_geofence_watch_members"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "watch_id"],
            ["geofence_watches.tenant_id", "geofence_watches.id"],
            name=op.f("fk_geofence_checkins_tenant_id_watch_id_geofence_watches"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_geofence_checkins_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_geofence_checkins")),
    )
    with op.batch_alter_table("geofence_checkins", schema=None) as batch_op:
        batch_op.create_index(
            "ix_geofence_checkins_watch", ["tenant_id", "watch_id", "at"], unique=False
        )

    for table in TENANT_TABLES:
        rls.enable_tenant_rls(table)
    rls.grant_app_role()
    if op.get_bind().dialect.name == "postgresql":
        settings = get_settings()
        partitions.maintain_daily(
            op.get_bind(),
            "geofence_pings",
            infra.db.utcnow().date(),
            back_days=settings.ping_offline_window_hours // 24 + 1,
            ahead_days=settings.ping_partitions_ahead_days,
            keep_days=settings.ping_retention_days,
        )


def downgrade() -> None:
    for table in TENANT_TABLES:
        rls.disable_tenant_rls(table)
    with op.batch_alter_table("geofence_checkins", schema=None) as batch_op:
        batch_op.drop_index("ix_geofence_checkins_watch")

    op.drop_table("geofence_checkins")
    with op.batch_alter_table("geofence_watch_members", schema=None) as batch_op:
        batch_op.drop_index("ix_geofence_watch_members_user")

    op.drop_table("geofence_watch_members")
    with op.batch_alter_table("geofence_alerts", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_geofence_alerts_unresolved",
            postgresql_where=sa.text("state <> 'resolved'"),
            sqlite_where=sa.text("state <> 'resolved'"),
        )
        batch_op.drop_index("ix_geofence_alerts_watch")
        batch_op.drop_index("ix_geofence_alerts_plant_state")

    op.drop_table("geofence_alerts")
    with op.batch_alter_table("geofence_watches", schema=None) as batch_op:
        batch_op.drop_index("ix_geofence_watches_plant_state")

    op.drop_table("geofence_watches")
    op.drop_table("geofence_policies")
    with op.batch_alter_table("geofence_pings", schema=None) as batch_op:
        batch_op.drop_index("ix_geofence_pings_watch_time")
        batch_op.drop_index("ix_geofence_pings_user_time")

    op.drop_table("geofence_pings")
