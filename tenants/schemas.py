"""Shapes of tenant data crossing the boundary (API bodies and answers), validated by msgspec.

Unknown fields are refused; every string has a length limit.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

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
    plants: int


class BillingRead(msgspec.Struct, kw_only=True):
    enabled: bool
    plan: str | None
    status: str
    current_period_end: datetime | None
    past_due_since: datetime | None
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
