"""Shapes of tenant data crossing the boundary (API bodies and answers), validated by msgspec.

Unknown fields are refused; every string has a length limit.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from tenants.models import Role

_DOMAIN_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
EMAIL_PATTERN = rf"^[^@\s]{{1,64}}@{_DOMAIN_LABEL}(?:\.{_DOMAIN_LABEL})+$"
SLUG_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$"
PLANT_CODE_PATTERN = r"^[A-Za-z0-9_-]{1,32}$"
PHONE_PATTERN = r"^\+?[0-9][0-9 -]{5,30}$"

Email = Annotated[str, Meta(pattern=EMAIL_PATTERN, max_length=254, description="E-mail address")]
Slug = Annotated[
    str, Meta(pattern=SLUG_PATTERN, description="Tenant slug: lowercase letters, digits, hyphens")
]
Name = Annotated[str, Meta(min_length=1, max_length=100)]
LongName = Annotated[str, Meta(min_length=1, max_length=200)]
Password = Annotated[str, Meta(min_length=1, max_length=256)]
NewPassword = Annotated[str, Meta(min_length=10, max_length=256)]
Phone = Annotated[str, Meta(pattern=PHONE_PATTERN, max_length=32)]
Locale = Annotated[str, Meta(pattern=r"^(zh_CN|en)$")]
Latitude = Annotated[float, Meta(ge=-90, le=90, description="WGS-84 latitude in degrees")]
Longitude = Annotated[float, Meta(ge=-180, le=180, description="WGS-84 longitude in degrees")]


class Input(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Base for request bodies."""


class TokenRequest(Input):
    tenant: Slug
    email: Email
    password: Password
    name: Annotated[str, Meta(max_length=100)] = "api"


class TokenResponse(msgspec.Struct, kw_only=True):
    access_token: str
    token_type: str
    expires_at: datetime


class PlantCreate(Input):
    code: Annotated[str, Meta(pattern=PLANT_CODE_PATTERN)]
    name: LongName
    timezone: Annotated[str, Meta(min_length=1, max_length=64)] = "Asia/Shanghai"
    latitude: Latitude | None = None
    longitude: Longitude | None = None


class PlantRead(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    code: str
    name: str
    timezone: str
    latitude: float | None
    longitude: float | None
    # When the plant was taken out of service; ``None`` while it is in service.
    retired_at: datetime | None = None


class GrantIn(Input):
    role: Role
    plant_id: uuid.UUID | None = None


class UserCreate(Input):
    email: Email
    name: Name
    password: NewPassword
    phone: Phone | None = None
    locale: Locale = "zh_CN"
    grants: Annotated[list[GrantIn], Meta(max_length=20)] = msgspec.field(default_factory=list)


class GrantRead(msgspec.Struct, kw_only=True):
    role: str
    plant_id: uuid.UUID | None


class UserRead(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    email: str
    name: str
    phone: str | None
    locale: str
    is_active: bool
    grants: list[GrantRead]


class MeRead(msgspec.Struct, kw_only=True):
    user: UserRead
    tenant_id: uuid.UUID
    tenant_slug: str
    tenant_name: str


class CheckoutRequest(Input):
    plan: Annotated[str, Meta(min_length=1, max_length=64)]


class RedirectRead(msgspec.Struct, kw_only=True):
    url: str


class LimitsRead(msgspec.Struct, kw_only=True):
    max_plants: int | None
    max_active_workers: int | None


class UsageRead(msgspec.Struct, kw_only=True):
    """What the limits count: plants, and admitted contractor workers."""

    plants: int
    active_workers: int


class BillingRead(msgspec.Struct, kw_only=True):
    enabled: bool
    plan: str | None
    status: str
    current_period_end: datetime | None
    past_due_since: datetime | None
    # When the running clock turns the tenant read-only: the trial's end while trialing without
    # a subscription, the grace period's end while past due.
    trial_ends_at: datetime | None = None
    read_only_at: datetime | None = None
    # A Stripe subscription that is not deleted: a new plan changes it rather than adding one.
    subscribed: bool = False
    limits: LimitsRead
    usage: UsageRead


class InvoiceRead(msgspec.Struct, kw_only=True):
    id: str
    number: str | None
    status: str | None
    currency: str
    amount_due: int
    amount_paid: int
    created: datetime
    hosted_invoice_url: str | None
    invoice_pdf: str | None


class SignupIn(Input):
    """A new tenant with its first plant and administrator. The slug's shape, the reserved
    slugs and the password's strength are rules of ``tenants.signup``, so every caller gets
    them with the field named."""

    company_name: LongName
    slug: Annotated[str, Meta(min_length=1, max_length=40)]
    admin_name: Name
    email: Email
    password: Annotated[str, Meta(min_length=1, max_length=256)]
    plant_code: Annotated[str, Meta(pattern=PLANT_CODE_PATTERN)]
    plant_name: LongName
    timezone: Annotated[str, Meta(min_length=1, max_length=64)] = "Asia/Shanghai"
    locale: Locale = "zh_CN"


class SignupRead(msgspec.Struct, kw_only=True):
    tenant_id: uuid.UUID
    tenant_slug: str
    status: str
    plant_id: uuid.UUID
    admin_user_id: uuid.UUID
    verification_expires_at: datetime


class InvitationIn(Input):
    email: Email
    role: Role
    plant_id: uuid.UUID | None = None


class InvitationRead(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    email: str
    role: str
    plant_id: uuid.UUID | None
    invited_by: uuid.UUID | None
    expires_at: datetime
    created_at: datetime


class InvitationAcceptIn(Input):
    """Joining by an invitation: the tenant of the link, the person's name and password. The
    password's strength is a rule of ``tenants.signup``, named with its field."""

    tenant: Slug
    name: Name
    password: Annotated[str, Meta(min_length=1, max_length=256)]


class InvitationOfferRead(msgspec.Struct, kw_only=True):
    """What an invitation link offers, shown before the person chooses a password."""

    tenant_slug: str
    tenant_name: str
    email: str
    role: str
    plant_id: uuid.UUID | None
    plant_name: str | None
    expires_at: datetime


# --- tenant administration ---------------------------------------------------------------------

HOST_PATTERN = r"^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$"
SMS_VENDORS = ("aliyun", "tencent")


class PlantEdit(Input):
    """What may change on a plant: everything but its code, which documents and numbers carry."""

    name: LongName
    timezone: Annotated[str, Meta(min_length=1, max_length=64)] = "Asia/Shanghai"
    latitude: Latitude | None = None
    longitude: Longitude | None = None


class SmtpSettingsIn(Input, kw_only=True):
    """The tenant's own SMTP server. An empty password keeps the one stored."""

    host: Annotated[str, Meta(pattern=HOST_PATTERN, max_length=253)]
    port: Annotated[int, Meta(ge=1, le=65_535)] = 587
    from_address: Email
    username: Annotated[str, Meta(max_length=254)] = ""
    password: Annotated[str, Meta(max_length=256)] = ""
    starttls: bool = True


class SmsSettingsIn(Input, kw_only=True):
    """The tenant's SMS account at a Chinese gateway: the approved signature and template, the
    access key. An empty secret keeps the one stored."""

    provider: Literal["aliyun", "tencent"]
    sign_name: Annotated[str, Meta(min_length=1, max_length=64)]
    template_id: Annotated[str, Meta(min_length=1, max_length=64)]
    access_key_id: Annotated[str, Meta(min_length=1, max_length=128)]
    secret: Annotated[str, Meta(max_length=256)] = ""
    # Tencent Cloud's SmsSdkAppId, digits; Alibaba Cloud has none.
    app_id: Annotated[str, Meta(pattern=r"^[0-9]*$", max_length=32)] = ""


class WebhookIn(Input):
    name: Name
    url: Annotated[str, Meta(min_length=1, max_length=1000)]
    format: Literal["generic", "dingtalk", "wecom"]
    secret: Annotated[str, Meta(max_length=200)] = ""


class BrandingIn(Input):
    """The name printed on documents; empty prints the tenant's registered name."""

    display_name: Annotated[str, Meta(max_length=200)] = ""
