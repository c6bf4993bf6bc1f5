"""onboarding: contractors, their members, documents, workers and certificates, invitations and
the tenant's admission settings

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 14:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import infra.db
from infra import rls

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TENANT_TABLES = (
    "contractors",
    "onboarding_settings",
    "contractor_documents",
    "contractor_invitations",
    "contractor_members",
    "workers",
    "certificates",
)


def upgrade() -> None:
    op.create_table(
        "contractors",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("uscc", sa.String(length=18), nullable=False),
        sa.Column("legal_representative", sa.String(length=100), nullable=False),
        sa.Column("contact_name", sa.String(length=100), nullable=False),
        sa.Column("contact_phone", sa.String(length=32), nullable=False),
        sa.Column("address", sa.String(length=300), nullable=False),
        sa.Column("work_types", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=24), nullable=False),
        sa.Column("state_reason", sa.Text(), nullable=True),
        sa.Column("state_changed_by", sa.Uuid(), nullable=True),
        sa.Column("state_changed_at", infra.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "state IN ('draft', 'submitted', 'approved', 'rejected', 'changes_requested', 'suspended', 'blacklisted')",
            name=op.f("ck_contractors_state"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_contractors_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_contractors")),
        sa.UniqueConstraint("tenant_id", "uscc", name=op.f("uq_contractors_tenant_id_uscc")),
    )
    op.create_table(
        "onboarding_settings",
        sa.Column("open_registration", sa.Boolean(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_onboarding_settings_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_onboarding_settings")),
        sa.UniqueConstraint("tenant_id", name=op.f("uq_onboarding_settings_tenant_id")),
    )
    op.create_table(
        "contractor_documents",
        sa.Column("contractor_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("number", sa.String(length=64), nullable=False),
        sa.Column("issuer", sa.String(length=200), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_until", sa.Date(), nullable=True),
        sa.Column("scan_id", sa.Uuid(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind IN ('business_licence', 'safety_production_licence', 'insurance')",
            name=op.f("ck_contractor_documents_kind"),
        ),
        sa.CheckConstraint(
            "state IN ('pending', 'verified', 'rejected', 'expired')",
            name=op.f("ck_contractor_documents_state"),
        ),
        sa.CheckConstraint(
            "valid_until IS NULL OR valid_until > valid_from",
            name=op.f("ck_contractor_documents_validity"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "contractor_id"],
            ["contractors.tenant_id", "contractors.id"],
            name=op.f("fk_contractor_documents_tenant_id_contractor_id_contractors"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "scan_id"],
            ["stored_objects.tenant_id", "stored_objects.id"],
            name=op.f("fk_contractor_documents_tenant_id_scan_id_stored_objects"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_contractor_documents_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_contractor_documents")),
        sa.UniqueConstraint(
            "tenant_id",
            "contractor_id",
            "kind",
            name=op.f("uq_contractor_documents_tenant_id_contractor_id_kind"),
        ),
    )
    op.create_index(
        "ix_contractor_documents_expiry",
        "contractor_documents",
        ["tenant_id", "valid_until"],
        unique=False,
    )
    op.create_table(
        "contractor_invitations",
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("expires_at", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("used_at", infra.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("contractor_id", sa.Uuid(), nullable=True),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id", "contractor_id"],
            ["contractors.tenant_id", "contractors.id"],
            name=op.f("fk_contractor_invitations_tenant_id_contractor_id_contractors"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_contractor_invitations_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_contractor_invitations")),
        sa.UniqueConstraint(
            "tenant_id", "token_hash", name=op.f("uq_contractor_invitations_tenant_id_token_hash")
        ),
    )
    op.create_table(
        "contractor_members",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("contractor_id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id", "contractor_id"],
            ["contractors.tenant_id", "contractors.id"],
            name=op.f("fk_contractor_members_tenant_id_contractor_id_contractors"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "user_id"],
            ["users.tenant_id", "users.id"],
            name=op.f("fk_contractor_members_tenant_id_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_contractor_members_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_contractor_members")),
        sa.UniqueConstraint(
            "tenant_id", "user_id", name=op.f("uq_contractor_members_tenant_id_user_id")
        ),
    )
    op.create_index(
        "ix_contractor_members_contractor",
        "contractor_members",
        ["tenant_id", "contractor_id"],
        unique=False,
    )
    op.create_table(
        "workers",
        sa.Column("contractor_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("id_number_encrypted", sa.String(length=160), nullable=False),
        sa.Column("id_number_digest", sa.String(length=80), nullable=False),
        sa.Column("id_number_masked", sa.String(length=18), nullable=False),
        sa.Column("birth_date", sa.Date(), nullable=False),
        sa.Column("phone", sa.String(length=32), nullable=False),
        sa.Column("photo_id", sa.Uuid(), nullable=True),
        sa.Column("trade", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "state IN ('pending', 'verified', 'rejected', 'expired')", name=op.f("ck_workers_state")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "contractor_id"],
            ["contractors.tenant_id", "contractors.id"],
            name=op.f("fk_workers_tenant_id_contractor_id_contractors"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "photo_id"],
            ["stored_objects.tenant_id", "stored_objects.id"],
            name=op.f("fk_workers_tenant_id_photo_id_stored_objects"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_workers_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_workers")),
        sa.UniqueConstraint(
            "tenant_id",
            "contractor_id",
            "id_number_digest",
            name=op.f("uq_workers_tenant_id_contractor_id_id_number_digest"),
        ),
    )
    op.create_index(
        "ix_workers_id_number_digest", "workers", ["tenant_id", "id_number_digest"], unique=False
    )
    op.create_table(
        "certificates",
        sa.Column("worker_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("number", sa.String(length=64), nullable=False),
        sa.Column("issuing_authority", sa.String(length=200), nullable=False),
        sa.Column("issued_on", sa.Date(), nullable=False),
        sa.Column("expires_on", sa.Date(), nullable=False),
        sa.Column("scan_id", sa.Uuid(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind IN ('welding_cutting', 'low_voltage_electrician', 'high_voltage_electrician', 'scaffolding', 'high_altitude_installation', 'crane_operator', 'crane_signaller', 'confined_space')",
            name=op.f("ck_certificates_kind"),
        ),
        sa.CheckConstraint(
            "state IN ('pending', 'verified', 'rejected', 'expired')",
            name=op.f("ck_certificates_state"),
        ),
        sa.CheckConstraint("expires_on > issued_on", name=op.f("ck_certificates_validity")),
        sa.ForeignKeyConstraint(
            ["tenant_id", "scan_id"],
            ["stored_objects.tenant_id", "stored_objects.id"],
            name=op.f("fk_certificates_tenant_id_scan_id_stored_objects"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "worker_id"],
            ["workers.tenant_id", "workers.id"],
            name=op.f("fk_certificates_tenant_id_worker_id_workers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_certificates_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_certificates")),
        sa.UniqueConstraint("tenant_id", "number", name=op.f("uq_certificates_tenant_id_number")),
    )
    op.create_index(
        "ix_certificates_expiry", "certificates", ["tenant_id", "expires_on"], unique=False
    )
    op.create_index(
        "ix_certificates_worker", "certificates", ["tenant_id", "worker_id"], unique=False
    )

    for table in TENANT_TABLES:
        rls.enable_tenant_rls(table)
    rls.grant_app_role()


def downgrade() -> None:
    for table in TENANT_TABLES:
        rls.disable_tenant_rls(table)
    op.drop_index("ix_certificates_worker", table_name="certificates")
    op.drop_index("ix_certificates_expiry", table_name="certificates")
    op.drop_table("certificates")
    op.drop_index("ix_workers_id_number_digest", table_name="workers")
    op.drop_table("workers")
    op.drop_index("ix_contractor_members_contractor", table_name="contractor_members")
    op.drop_table("contractor_members")
    op.drop_table("contractor_invitations")
    op.drop_index("ix_contractor_documents_expiry", table_name="contractor_documents")
    op.drop_table("contractor_documents")
    op.drop_table("onboarding_settings")
    op.drop_table("contractors")
