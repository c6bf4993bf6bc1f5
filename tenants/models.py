"""Tenants, plants, users, memberships and API tokens."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import JSON, BigInteger, CheckConstraint, Index, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from infra.db import Entity
from infra.notify.webhook import WebhookFormat
from infra.tenancy import TenantOwned, tenant_foreign_key


class TenantStatus(enum.StrEnum):
    TRIALING = "trialing"
    ACTIVE = "active"
    PAST_DUE = "past_due"
    READ_ONLY = "read_only"
    CANCELLED = "cancelled"


class Role(enum.StrEnum):
    """The roles of SPEC's role table. Memberships carry them, not user rows."""

    TENANT_ADMIN = "tenant_admin"
    HQ_ANALYST = "hq_analyst"
    PLANT_MANAGER = "plant_manager"
    EHS_OFFICER = "ehs_officer"
    UNIT_SUPERVISOR = "unit_supervisor"
    GUARDIAN = "guardian"
    CONTRACTOR_ADMIN = "contractor_admin"
    CONTRACTOR_WORKER = "contractor_worker"

    @property
    def is_host(self) -> bool:
        return self not in {Role.CONTRACTOR_ADMIN, Role.CONTRACTOR_WORKER}


def _enum_check(column: str, values: type[enum.StrEnum]) -> str:
    allowed = ", ".join(f"'{v.value}'" for v in values)
    return f"{column} IN ({allowed})"


class Tenant(Entity):
    """A customer group. The registry of tenants is the one table that is not tenant-owned."""

    __tablename__ = "tenants"
    __table_args__ = (CheckConstraint(_enum_check("status", TenantStatus), name="status"),)

    slug: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default=TenantStatus.TRIALING.value)
    # Set by a confirmed deletion request; past it, the deletion sweep removes the tenant.
    deletion_scheduled_at: Mapped[datetime | None]


class Plant(TenantOwned):
    __tablename__ = "plants"
    __table_args__ = (UniqueConstraint("tenant_id", "code"),)

    code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Shanghai")
    latitude: Mapped[float | None]
    longitude: Mapped[float | None]
    # A GeoJSON Polygon in WGS-84 ([longitude, latitude] positions), the site's fence line.
    boundary: Mapped[dict[str, object] | None] = mapped_column(JSON)
    # A plant sold or shut down keeps its row, since its permits, ratings and ledger name it;
    # from this moment it takes no new work and is no longer billed.
    retired_at: Mapped[datetime | None]


class User(TenantOwned):
    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("tenant_id", "email"),)

    email: Mapped[str] = mapped_column(String(254))
    name: Mapped[str] = mapped_column(String(100))
    phone: Mapped[str | None] = mapped_column(String(32))
    locale: Mapped[str] = mapped_column(String(8), default="zh_CN")
    password_hash: Mapped[str | None] = mapped_column(String(255))
    is_active: Mapped[bool] = mapped_column(default=True)
    failed_login_count: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[datetime | None]
    last_login_at: Mapped[datetime | None]


class Membership(TenantOwned):
    """A role for a user, optionally limited to one plant."""

    __tablename__ = "memberships"
    __table_args__ = (
        tenant_foreign_key(("user_id",), "users", ondelete="CASCADE"),
        tenant_foreign_key(("plant_id",), "plants", ondelete="CASCADE"),
        CheckConstraint(_enum_check("role", Role), name="role"),
        Index(
            "uq_memberships_tenant_wide",
            "tenant_id",
            "user_id",
            "role",
            unique=True,
            sqlite_where=text("plant_id IS NULL"),
            postgresql_where=text("plant_id IS NULL"),
        ),
        Index(
            "uq_memberships_per_plant",
            "tenant_id",
            "user_id",
            "role",
            "plant_id",
            unique=True,
            sqlite_where=text("plant_id IS NOT NULL"),
            postgresql_where=text("plant_id IS NOT NULL"),
        ),
    )

    user_id: Mapped[uuid.UUID]
    role: Mapped[str] = mapped_column(String(32))
    plant_id: Mapped[uuid.UUID | None]


class DataExportState(enum.StrEnum):
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class DataExport(TenantOwned):
    """An export of everything the tenant owns, built by a task as one zip in object storage;
    ``progress`` is 0–100 for the page."""

    __tablename__ = "tenant_exports"
    __table_args__ = (CheckConstraint(_enum_check("state", DataExportState), name="state"),)

    state: Mapped[str] = mapped_column(String(16), default=DataExportState.RUNNING.value)
    progress: Mapped[int] = mapped_column(default=0)
    object_key: Mapped[str | None] = mapped_column(String(300))
    filename: Mapped[str] = mapped_column(String(200))
    # Bytes; a large tenant's archive passes the 2 GiB of a 32-bit integer.
    size: Mapped[int | None] = mapped_column(BigInteger)
    error: Mapped[str | None] = mapped_column(String(200))
    requested_by: Mapped[uuid.UUID]
    finished_at: Mapped[datetime | None]


class ApiToken(TenantOwned):
    """A bearer token. Only its SHA-256 is stored; the token itself is shown once."""

    __tablename__ = "api_tokens"
    __table_args__ = (tenant_foreign_key(("user_id",), "users", ondelete="CASCADE"),)

    user_id: Mapped[uuid.UUID]
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class NotificationPreference(TenantOwned):
    """Which channels a user wants for one kind of notification, or for every kind (``*``).

    A row for the kind wins over the ``*`` row; with neither, e-mail and SMS are on and the
    group robots are not (the defaults in ``tenants.notifications``).
    """

    __tablename__ = "notification_preferences"
    __table_args__ = (
        tenant_foreign_key(("user_id",), "users", ondelete="CASCADE"),
        UniqueConstraint("tenant_id", "user_id", "kind"),
    )

    user_id: Mapped[uuid.UUID]
    kind: Mapped[str] = mapped_column(String(40))
    email: Mapped[bool] = mapped_column(default=True)
    sms: Mapped[bool] = mapped_column(default=True)
    webhook: Mapped[bool] = mapped_column(default=False)


class NotificationWebhook(TenantOwned):
    """A tenant's outgoing webhook: a receiver of its own, or a DingTalk or WeCom group robot.

    ``secret`` signs the requests; it is needed in clear to sign, so it is stored as is, and it
    is never logged, audited or returned by the API. Robot URLs carry an access token too.
    ``kinds`` empty means every kind.
    """

    __tablename__ = "notification_webhooks"
    __table_args__ = (
        CheckConstraint(_enum_check("format", WebhookFormat), name="format"),
        UniqueConstraint("tenant_id", "name"),
    )

    name: Mapped[str] = mapped_column(String(100))
    url: Mapped[str] = mapped_column(String(1000))
    format: Mapped[str] = mapped_column(String(16))
    secret: Mapped[str] = mapped_column(String(200), default="")
    enabled: Mapped[bool] = mapped_column(default=True)
    kinds: Mapped[list[str]] = mapped_column(JSON, default=list)


class TenantBranding(TenantOwned):
    """How the tenant's documents are headed: the name printed and the logo, one row per tenant.

    ``logo_id`` is a stored upload (``infra.uploads``); without a row or a name, documents carry
    the tenant's registered name.
    """

    __tablename__ = "tenant_brandings"
    __table_args__ = (UniqueConstraint("tenant_id"),)

    display_name: Mapped[str | None] = mapped_column(String(200))
    logo_id: Mapped[uuid.UUID | None]


class NotificationChannelSettings(TenantOwned):
    """The tenant's own e-mail server and SMS account, one row per tenant.

    The SMTP password and the SMS secret are stored encrypted (``infra.field_encryption``, bound
    to the tenant and the column) and never shown back; the rest is shown to the administrator.
    """

    __tablename__ = "notification_channel_settings"
    __table_args__ = (UniqueConstraint("tenant_id"),)

    smtp_host: Mapped[str | None] = mapped_column(String(255))
    smtp_port: Mapped[int | None]
    smtp_from: Mapped[str | None] = mapped_column(String(254))
    smtp_username: Mapped[str | None] = mapped_column(String(254))
    smtp_password_encrypted: Mapped[str | None] = mapped_column(String(600))
    smtp_starttls: Mapped[bool] = mapped_column(default=True)
    sms_provider: Mapped[str | None] = mapped_column(String(32))
    sms_sign_name: Mapped[str | None] = mapped_column(String(64))
    sms_template_id: Mapped[str | None] = mapped_column(String(64))
    sms_access_key_id: Mapped[str | None] = mapped_column(String(128))
    sms_secret_encrypted: Mapped[str | None] = mapped_column(String(600))
    # Tencent Cloud's SmsSdkAppId: its templates and signatures belong to an application.
    sms_app_id: Mapped[str | None] = mapped_column(String(32))


class Subscription(TenantOwned):
    """The tenant's Stripe subscription as the webhooks describe it; one row per tenant.

    Each group of fields is a register that only an event with a greater ordering key
    (``*_version``, see ``tenants.billing.event_version``) may overwrite, so the same events
    applied in any order leave the same row. ``ended_subscription_ids`` only grows: a deleted
    subscription never comes back, whatever arrives after its deletion.
    """

    __tablename__ = "subscriptions"
    __table_args__ = (
        UniqueConstraint("tenant_id"),
        CheckConstraint(f"status IS NULL OR {_enum_check('status', TenantStatus)}", name="status"),
    )

    stripe_customer_id: Mapped[str | None] = mapped_column(String(255))
    stripe_subscription_id: Mapped[str | None] = mapped_column(String(255))
    plan: Mapped[str | None] = mapped_column(String(64))
    current_period_end: Mapped[datetime | None]
    subscription_version: Mapped[str] = mapped_column(String(100), default="")
    status: Mapped[str | None] = mapped_column(String(16))
    status_subscription_id: Mapped[str | None] = mapped_column(String(255))
    past_due_since: Mapped[datetime | None]
    status_version: Mapped[str] = mapped_column(String(100), default="")
    ended_subscription_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    last_event_at: Mapped[datetime | None]


class EmailVerification(TenantOwned):
    """A link that proves a signed-up administrator owns their e-mail address. Only the SHA-256
    of its token is kept; the token exists only in the mail. A user with such rows and none
    verified has not proved their address yet; a user with no rows never had to."""

    __tablename__ = "email_verifications"
    __table_args__ = (
        UniqueConstraint("tenant_id", "token_hash"),
        tenant_foreign_key(("user_id",), "users", ondelete="CASCADE"),
    )

    user_id: Mapped[uuid.UUID]
    email: Mapped[str] = mapped_column(String(254))
    token_hash: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime]
    verified_at: Mapped[datetime | None]


class Invitation(TenantOwned):
    """An invitation to join the tenant with one role, optionally limited to one plant. Only the
    SHA-256 of its token is kept; the token exists only in the mail to the invited address."""

    __tablename__ = "invitations"
    __table_args__ = (
        UniqueConstraint("tenant_id", "token_hash"),
        CheckConstraint(_enum_check("role", Role), name="role"),
        tenant_foreign_key(("plant_id",), "plants", ondelete="CASCADE"),
    )

    email: Mapped[str] = mapped_column(String(254))
    role: Mapped[str] = mapped_column(String(32))
    plant_id: Mapped[uuid.UUID | None]
    token_hash: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime]
    invited_by: Mapped[uuid.UUID | None]
    accepted_at: Mapped[datetime | None]
    user_id: Mapped[uuid.UUID | None]
    revoked_at: Mapped[datetime | None]
    revoked_by: Mapped[uuid.UUID | None]


class StripeEvent(Entity):
    """A Stripe event already processed. Global: the tenant is only known after reading it."""

    __tablename__ = "stripe_events"

    event_id: Mapped[str] = mapped_column(String(255), unique=True)
    type: Mapped[str] = mapped_column(String(100))
    outcome: Mapped[str] = mapped_column(String(32))
