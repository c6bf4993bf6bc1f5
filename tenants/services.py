"""Tenant, plant, user and credential operations. Every change is written to the ledger."""

from __future__ import annotations

import base64
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import anyio
from shapely.geometry import Polygon, shape
from sqlalchemy import Select, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from infra import audit
from infra.db import new_id, utcnow
from infra.errors import AuthenticationFailed, Conflict, InvalidInput, NotFound
from infra.field_encryption import FieldCipher
from infra.i18n import N_
from infra.schema import load_models
from infra.security import (
    hash_password,
    new_secret,
    password_needs_rehash,
    secret_digest,
    verify_password,
)
from infra.storage import ObjectStorage
from infra.tenancy import current_tenant_id, tenant_scope
from infra.uploads import IMAGES, FileType, StoredObject, get_stored_object
from tenants import billing
from tenants.access import Grant, Principal
from tenants.entitlements import BillingPolicy, ensure_can_add_plant
from tenants.models import (
    ApiToken,
    Membership,
    NotificationChannelSettings,
    Plant,
    Role,
    Tenant,
    TenantBranding,
    TenantStatus,
    User,
)
from tenants.schemas import PlantEdit, SmsSettingsIn, SmtpSettingsIn

# Permits belong to a package above this one, so their table is read from the schema by name, as
# the entitlements read the workers'. These are the states in which a permit still needs its
# plant: from submission until acceptance closes it or it ends otherwise.
PERMITS_TABLE = "permits"
OPEN_PERMIT_STATES = frozenset(
    {"submitted", "in_approval", "approved", "active", "suspended", "completed"}
)

PLANT_RETIRED_RULE = "plant.retired"
PLANT_RETIRED = N_("The plant %(plant)s is retired.")

TOKEN_PREFIX = "pt_"  # noqa: S105 - a prefix, not a secret
_TOKEN_SHAPE = re.compile(r"^pt_([0-9a-f]{32})_([A-Za-z0-9_-]{20,100})$")
INVALID_CREDENTIALS = N_(
    "The e-mail address or password is wrong, or the account is locked for now."
)


@dataclass(frozen=True)
class LoginPolicy:
    max_failures: int
    lockout: timedelta


async def create_tenant(
    session: AsyncSession, *, slug: str, name: str, status: TenantStatus = TenantStatus.TRIALING
) -> Tenant:
    existing = await tenant_by_slug(session, slug)
    if existing is not None:
        raise Conflict("slug", "unique", "This tenant slug is already taken.")
    tenant = Tenant(id=new_id(), slug=slug, name=name, status=status.value)
    session.add(tenant)
    await session.flush()
    with tenant_scope(tenant.id):
        await audit.record(
            session,
            action="tenant.created",
            subject_type="tenant",
            subject_id=tenant.id,
            payload={"slug": slug, "name": name, "status": tenant.status},
        )
    return tenant


async def tenant_by_slug(session: AsyncSession, slug: str) -> Tenant | None:
    return (await session.execute(select(Tenant).where(Tenant.slug == slug))).scalar_one_or_none()


async def tenant_for_sign_in(session: AsyncSession, slug: str, password: str) -> Tenant:
    """The tenant named at sign-in. An unknown slug fails like a wrong password, in as much time."""
    tenant = await tenant_by_slug(session, slug)
    if tenant is None:
        verify_password(None, password)
        raise AuthenticationFailed(INVALID_CREDENTIALS)
    return tenant


async def tenant_by_id(session: AsyncSession, tenant_id: uuid.UUID) -> Tenant | None:
    return await session.get(Tenant, tenant_id)


def _check_timezone(timezone: str) -> None:
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidInput(
            "timezone", "iana_timezone", "Not a known IANA time zone, e.g. Asia/Shanghai."
        ) from exc


def _check_position(latitude: float | None, longitude: float | None) -> None:
    if (latitude is None) != (longitude is None):
        field_name = "longitude" if longitude is None else "latitude"
        raise InvalidInput(field_name, "pair", "Latitude and longitude go together.")


async def add_plant(
    session: AsyncSession,
    *,
    code: str,
    name: str,
    timezone: str = "Asia/Shanghai",
    latitude: float | None = None,
    longitude: float | None = None,
    boundary: dict[str, Any] | None = None,
    actor_id: uuid.UUID | None = None,
) -> Plant:
    _check_timezone(timezone)
    _check_position(latitude, longitude)
    _check_boundary(boundary)
    if (await session.execute(select(Plant.id).where(Plant.code == code))).first():
        raise Conflict("code", "unique", "A plant with this code already exists.")
    plant = Plant(
        code=code,
        name=name,
        timezone=timezone,
        latitude=latitude,
        longitude=longitude,
        boundary=boundary,
    )
    session.add(plant)
    await session.flush()
    await audit.record(
        session,
        action="plant.created",
        subject_type="plant",
        subject_id=plant.id,
        actor_id=actor_id,
        payload={
            "code": code,
            "name": name,
            "timezone": timezone,
            "latitude": latitude,
            "longitude": longitude,
            "boundary": boundary,
        },
    )
    # Plans are priced per plant: a subscribed tenant's quantity follows, after the commit.
    await billing.request_quantity_sync(session, cause=f"plant_added:{plant.id}")
    return plant


async def list_plants(
    session: AsyncSession,
    visible: frozenset[uuid.UUID] | None = None,
    *,
    current_only: bool = False,
) -> list[Plant]:
    """The plants, retired ones too unless ``current_only``: lists and reports of past work
    still name a retired plant, while forms that start new work offer only current ones."""
    query = select(Plant).order_by(Plant.code)
    if visible is not None:
        query = query.where(Plant.id.in_(visible))
    if current_only:
        query = query.where(Plant.retired_at.is_(None))
    return list((await session.execute(query)).scalars())


async def get_plant(
    session: AsyncSession, plant_id: uuid.UUID, *, for_update: bool = False
) -> Plant:
    query = select(Plant).where(Plant.id == plant_id)
    if for_update:
        query = query.with_for_update()
    plant = (await session.execute(query)).scalar_one_or_none()
    if plant is None:
        raise NotFound("Plant not found.")
    return plant


def ensure_plant_in_service(plant: Plant, field: str = "plant_id") -> None:
    """Refuse new work at a retired plant, naming ``field``."""
    if plant.retired_at is not None:
        raise InvalidInput(field, PLANT_RETIRED_RULE, PLANT_RETIRED, plant=plant.name)


async def plant_to_grant(session: AsyncSession, plant_id: uuid.UUID) -> Plant:
    """The plant a role or an invitation is limited to: one of the tenant's, in service."""
    try:
        plant = await get_plant(session, plant_id)
    except NotFound as exc:
        raise InvalidInput("plant_id", "exists", "No such plant in this tenant.") from exc
    ensure_plant_in_service(plant)
    return plant


async def hold_plant(session: AsyncSession, plant_id: uuid.UUID) -> None:
    """Keep the plant from being retired until the transaction ends, for a change that makes a
    permit of it open; retirements wait for it, other holders do not."""
    await session.execute(select(Plant.id).where(Plant.id == plant_id).with_for_update(read=True))


async def _open_permits(session: AsyncSession, plant_id: uuid.UUID) -> int:
    tables = load_models().tables
    permits = tables[PERMITS_TABLE]
    query = (
        select(func.count())
        .select_from(permits)
        .where(
            permits.c.tenant_id == current_tenant_id(),
            permits.c.plant_id == plant_id,
            permits.c.state.in_(OPEN_PERMIT_STATES),
        )
    )
    return (await session.execute(query)).scalar_one()


async def retire_plant(
    session: AsyncSession, plant_id: uuid.UUID, *, actor_id: uuid.UUID | None = None
) -> Plant:
    """Take a plant out of service: it keeps its history but takes no new permits, zones or
    inductions, leaves the pickers, and is no longer billed. Refused while permits there are
    in approval, approved, under way or awaiting acceptance, since retiring would strand them;
    drafts stay, and can no longer be submitted."""
    # Locked against submissions, which share-lock it (hold_plant): one waits for the other,
    # and then sees its permit or its retirement.
    plant = await get_plant(session, plant_id, for_update=True)
    if plant.retired_at is not None:
        return plant
    open_permits = await _open_permits(session, plant.id)
    if open_permits:
        raise Conflict(
            "plant_id",
            "plant.open_permits",
            N_(
                "%(count)s permits of this plant are in approval, approved, under way or "
                "awaiting acceptance; close, cancel or let them expire first."
            ),
            count=open_permits,
        )
    plant.retired_at = utcnow()
    await _service_changed(session, plant, "retired", plant.retired_at, actor_id)
    return plant


async def reinstate_plant(
    session: AsyncSession,
    plant_id: uuid.UUID,
    policy: BillingPolicy,
    *,
    actor_id: uuid.UUID | None = None,
) -> Plant:
    """Put a retired plant back in service. It counts against the plan again, so it needs the
    plan's room for one more plant, as a plant added does."""
    plant = await get_plant(session, plant_id)
    if plant.retired_at is None:
        return plant
    await ensure_can_add_plant(session, policy)
    retired_at, plant.retired_at = plant.retired_at, None
    await _service_changed(session, plant, "reinstated", retired_at, actor_id)
    return plant


async def _service_changed(
    session: AsyncSession,
    plant: Plant,
    change: str,
    retired_at: datetime,
    actor_id: uuid.UUID | None,
) -> None:
    await session.flush()
    await audit.record(
        session,
        action=f"plant.{change}",
        subject_type="plant",
        subject_id=plant.id,
        actor_id=actor_id,
        payload={"code": plant.code, "retired_at": retired_at},
    )
    # A plant in service is billed: the quantity follows after the commit, as for one added. A
    # plant may be retired and reinstated again, so each change has a message of its own.
    await billing.request_quantity_sync(session, cause=f"plant_{change}:{plant.id}:{new_id()}")


def normalize_email(email: str) -> str:
    return email.strip().lower()


async def user_by_email(session: AsyncSession, email: str) -> User | None:
    query = select(User).where(User.email == normalize_email(email))
    return (await session.execute(query)).scalar_one_or_none()


async def create_user(
    session: AsyncSession,
    *,
    email: str,
    name: str,
    password: str | None,
    phone: str | None = None,
    locale: str = "zh_CN",
    actor_id: uuid.UUID | None = None,
) -> User:
    if await user_by_email(session, email) is not None:
        raise Conflict("email", "unique", "A user with this e-mail address already exists.")
    user = User(
        email=normalize_email(email),
        name=name,
        phone=phone,
        locale=locale,
        password_hash=hash_password(password) if password else None,
    )
    session.add(user)
    try:
        await session.flush()
    except IntegrityError as exc:
        raise Conflict(
            "email", "unique", "A user with this e-mail address already exists."
        ) from exc
    await audit.record(
        session,
        action="user.created",
        subject_type="user",
        subject_id=user.id,
        actor_id=actor_id,
        # The user's row holds the name and address; the ledger, which nothing can erase, only
        # the account's id, so a worker's own login can be erased with the worker.
        payload={"locale": locale},
    )
    return user


async def list_users(session: AsyncSession) -> list[User]:
    return list((await session.execute(select(User).order_by(User.name))).scalars())


async def get_user(session: AsyncSession, user_id: uuid.UUID) -> User:
    user = (await session.execute(select(User).where(User.id == user_id))).scalar_one_or_none()
    if user is None:
        raise NotFound("User not found.")
    return user


async def set_password(
    session: AsyncSession, user: User, password: str, *, actor_id: uuid.UUID | None = None
) -> None:
    user.password_hash = hash_password(password)
    user.failed_login_count = 0
    user.locked_until = None
    await session.flush()
    await audit.record(
        session,
        action="user.password_set",
        subject_type="user",
        subject_id=user.id,
        actor_id=actor_id,
    )


def role_holders(roles: Iterable[Role], plant_id: uuid.UUID) -> Select[tuple[User]]:
    """The active users holding one of ``roles`` for the plant (or for every plant), each once;
    a query, so that synchronous jobs and requests alike can run it."""
    return (
        select(User)
        .join(Membership, Membership.user_id == User.id)
        .where(
            Membership.role.in_([role.value for role in roles]),
            Membership.plant_id.is_(None) | (Membership.plant_id == plant_id),
            User.is_active.is_(True),
        )
        .distinct()
    )


async def grant_role(
    session: AsyncSession,
    *,
    user_id: uuid.UUID,
    role: Role,
    plant_id: uuid.UUID | None = None,
    actor_id: uuid.UUID | None = None,
) -> Membership:
    await get_user(session, user_id)
    if plant_id is not None:
        await plant_to_grant(session, plant_id)
    query = select(Membership).where(
        Membership.user_id == user_id,
        Membership.role == role.value,
        Membership.plant_id.is_(None) if plant_id is None else Membership.plant_id == plant_id,
    )
    existing = (await session.execute(query)).scalar_one_or_none()
    if existing is not None:
        return existing
    membership = Membership(user_id=user_id, role=role.value, plant_id=plant_id)
    session.add(membership)
    await session.flush()
    await audit.record(
        session,
        action="membership.granted",
        subject_type="user",
        subject_id=user_id,
        actor_id=actor_id,
        payload={"role": role.value, "plant_id": plant_id},
    )
    return membership


async def grants_of(session: AsyncSession, user_id: uuid.UUID) -> list[Grant]:
    query = select(Membership.role, Membership.plant_id).where(Membership.user_id == user_id)
    rows = (await session.execute(query)).all()
    return sorted(
        (Grant(Role(role), plant_id) for role, plant_id in rows),
        key=lambda grant: (grant.role.value, str(grant.plant_id or "")),
    )


async def load_principal(
    session: AsyncSession, tenant: Tenant, user_id: uuid.UUID, *, token_id: uuid.UUID | None = None
) -> Principal | None:
    """The acting user with their grants, or ``None`` if the user is gone or disabled."""
    user = (await session.execute(select(User).where(User.id == user_id))).scalar_one_or_none()
    if user is None or not user.is_active:
        return None
    return Principal(
        tenant_id=tenant.id,
        tenant_slug=tenant.slug,
        tenant_name=tenant.name,
        user_id=user.id,
        name=user.name,
        email=user.email,
        locale=user.locale,
        grants=frozenset(await grants_of(session, user.id)),
        via_token_id=token_id,
    )


async def authenticate(
    session: AsyncSession,
    *,
    email: str,
    password: str,
    policy: LoginPolicy,
    now: datetime | None = None,
) -> User:
    """Check a password in the current tenant, with a temporary lockout after repeated failures.

    Every failure, including a locked account, gets the same message, so the answer never tells
    whether an address exists. The caller commits even on failure: failure counts must persist.
    """
    now = now or utcnow()
    user = await user_by_email(session, email)
    password_ok = verify_password(user.password_hash if user else None, password)
    if user is None or not user.is_active:
        raise AuthenticationFailed(INVALID_CREDENTIALS)
    if user.locked_until is not None and user.locked_until > now:
        await _record_login(session, user, "auth.login_refused_locked")
        raise AuthenticationFailed(INVALID_CREDENTIALS)
    if not password_ok:
        failures = user.failed_login_count + 1
        locked_until = now + policy.lockout if failures >= policy.max_failures else None
        await session.execute(
            update(User)
            .where(User.id == user.id)
            .values(failed_login_count=0 if locked_until else failures, locked_until=locked_until)
        )
        await _record_login(
            session, user, "auth.account_locked" if locked_until else "auth.login_failed"
        )
        raise AuthenticationFailed(INVALID_CREDENTIALS)
    user.failed_login_count = 0
    user.locked_until = None
    user.last_login_at = now
    if user.password_hash and password_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    await session.flush()
    await _record_login(session, user, "auth.login_succeeded")
    return user


async def _record_login(session: AsyncSession, user: User, action: str) -> None:
    await audit.record(
        session, action=action, subject_type="user", subject_id=user.id, actor_id=user.id
    )


def parse_api_token(token: str) -> tuple[uuid.UUID, str] | None:
    """Split a bearer token into its tenant and secret; ``None`` if it is not one of ours."""
    match = _TOKEN_SHAPE.match(token)
    if match is None:
        return None
    return uuid.UUID(hex=match.group(1)), match.group(2)


async def issue_api_token(
    session: AsyncSession, user: User, *, name: str, ttl: timedelta
) -> tuple[str, ApiToken]:
    """A new bearer token for ``user``. The token is returned once; only its digest is kept."""
    secret = new_secret()
    record = ApiToken(
        user_id=user.id,
        name=name,
        token_hash=secret_digest(secret),
        expires_at=utcnow() + ttl,
    )
    session.add(record)
    await session.flush()
    await audit.record(
        session,
        action="api_token.issued",
        subject_type="api_token",
        subject_id=record.id,
        actor_id=user.id,
        payload={"name": name, "expires_at": record.expires_at},
    )
    return f"{TOKEN_PREFIX}{user.tenant_id.hex}_{secret}", record


async def resolve_api_token(session: AsyncSession, secret: str) -> ApiToken | None:
    """The live token for ``secret`` in the current tenant, or ``None``."""
    query = select(ApiToken).where(ApiToken.token_hash == secret_digest(secret))
    record = (await session.execute(query)).scalar_one_or_none()
    now = utcnow()
    if record is None or record.revoked_at is not None or record.expires_at <= now:
        return None
    if record.last_used_at is None or now - record.last_used_at > timedelta(minutes=5):
        record.last_used_at = now
        await session.flush()
    return record


async def revoke_api_token(
    session: AsyncSession, token_id: uuid.UUID, *, actor_id: uuid.UUID | None = None
) -> None:
    query = select(ApiToken).where(ApiToken.id == token_id)
    record = (await session.execute(query)).scalar_one_or_none()
    if record is None:
        raise NotFound("Token not found.")
    if record.revoked_at is None:
        record.revoked_at = utcnow()
        await session.flush()
        await audit.record(
            session,
            action="api_token.revoked",
            subject_type="api_token",
            subject_id=record.id,
            actor_id=actor_id,
        )


# --- plants: the boundary and changes ----------------------------------------------------------

_NOT_A_POLYGON = N_(
    'Give a GeoJSON Polygon: {"type": "Polygon", "coordinates": [[[longitude, latitude], ...]]}.'
)


def _check_boundary(boundary: dict[str, Any] | None) -> None:
    """A site boundary is one simple GeoJSON Polygon in WGS-84 whose rings are closed."""
    if boundary is None:
        return
    rings = boundary.get("coordinates")
    if boundary.get("type") != "Polygon" or not isinstance(rings, list) or not rings:
        raise InvalidInput("boundary", "geojson_polygon", _NOT_A_POLYGON)
    try:
        drawn = shape(boundary)
    except (AttributeError, IndexError, KeyError, TypeError, ValueError):
        raise InvalidInput("boundary", "geojson_polygon", _NOT_A_POLYGON) from None
    for ring in rings:
        if not isinstance(ring, list) or len(ring) < 4 or ring[0] != ring[-1]:
            raise InvalidInput(
                "boundary",
                "closed",
                N_("Each ring needs at least four positions and must end where it starts."),
            )
    west, south, east, north = drawn.bounds
    if not (-180 <= west and east <= 180 and -90 <= south and north <= 90):
        raise InvalidInput(
            "boundary",
            "wgs84",
            N_("Positions are [longitude, latitude] in WGS-84 degrees."),
        )
    if not isinstance(drawn, Polygon) or not drawn.is_valid or drawn.area == 0:
        raise InvalidInput(
            "boundary", "simple", N_("The polygon crosses itself or encloses no area.")
        )


async def edit_plant(
    session: AsyncSession,
    plant_id: uuid.UUID,
    data: PlantEdit,
    *,
    boundary: dict[str, Any] | None,
    actor_id: uuid.UUID | None = None,
) -> Plant:
    """Change a plant's name, time zone, position and boundary; its code never changes."""
    plant = await get_plant(session, plant_id)
    _check_timezone(data.timezone)
    _check_position(data.latitude, data.longitude)
    _check_boundary(boundary)
    new = {
        "name": data.name,
        "timezone": data.timezone,
        "latitude": data.latitude,
        "longitude": data.longitude,
        "boundary": boundary,
    }
    changed = {name: value for name, value in new.items() if getattr(plant, name) != value}
    if not changed:
        return plant
    for name, value in changed.items():
        setattr(plant, name, value)
    await session.flush()
    await audit.record(
        session,
        action="plant.changed",
        subject_type="plant",
        subject_id=plant.id,
        actor_id=actor_id,
        payload={"code": plant.code, **changed},
    )
    return plant


# --- the tenant's own e-mail server and SMS account --------------------------------------------


def channel_secret_context(column: str) -> str:
    """Binds a stored channel secret to this tenant and column."""
    return f"{current_tenant_id()}/notification_channel_settings.{column}"


async def channel_settings(session: AsyncSession) -> NotificationChannelSettings | None:
    return await session.scalar(select(NotificationChannelSettings))


async def _channel_row(session: AsyncSession) -> NotificationChannelSettings:
    row = await session.scalar(select(NotificationChannelSettings).with_for_update())
    if row is None:
        row = NotificationChannelSettings(smtp_starttls=True)
        session.add(row)
    return row


async def save_smtp_settings(
    session: AsyncSession,
    data: SmtpSettingsIn,
    *,
    cipher: FieldCipher,
    actor_id: uuid.UUID | None = None,
) -> NotificationChannelSettings:
    """Store the tenant's SMTP server; the password encrypted, kept when none is given."""
    row = await _channel_row(session)
    if data.username and not data.password and row.smtp_password_encrypted is None:
        raise InvalidInput(
            "password", "required", N_("A user name needs its password the first time.")
        )
    row.smtp_host = data.host
    row.smtp_port = data.port
    row.smtp_from = data.from_address
    row.smtp_username = data.username or None
    row.smtp_starttls = data.starttls
    if not data.username:
        row.smtp_password_encrypted = None
    elif data.password:
        row.smtp_password_encrypted = cipher.encrypt(
            data.password, context=channel_secret_context("smtp_password")
        )
    await session.flush()
    await audit.record(
        session,
        action="notification_channel.smtp_set",
        subject_type="notification_channel_settings",
        subject_id=row.id,
        actor_id=actor_id,
        payload={
            "host": data.host,
            "port": data.port,
            "from": data.from_address,
            "username": data.username,
            "starttls": data.starttls,
            "password_changed": bool(data.username and data.password),
        },
    )
    return row


async def save_sms_settings(
    session: AsyncSession,
    data: SmsSettingsIn,
    *,
    cipher: FieldCipher,
    actor_id: uuid.UUID | None = None,
) -> NotificationChannelSettings:
    """Store the tenant's SMS account; the secret encrypted, kept when none is given."""
    row = await _channel_row(session)
    if not data.secret and row.sms_secret_encrypted is None:
        raise InvalidInput("secret", "required", N_("The access key needs its secret."))
    if data.provider == "tencent" and not data.app_id:
        raise InvalidInput(
            "app_id", "required", N_("Tencent Cloud SMS needs the SDK AppID of its application.")
        )
    row.sms_provider = data.provider
    row.sms_sign_name = data.sign_name
    row.sms_template_id = data.template_id
    row.sms_access_key_id = data.access_key_id
    row.sms_app_id = data.app_id or None
    if data.secret:
        row.sms_secret_encrypted = cipher.encrypt(
            data.secret, context=channel_secret_context("sms_secret")
        )
    await session.flush()
    await audit.record(
        session,
        action="notification_channel.sms_set",
        subject_type="notification_channel_settings",
        subject_id=row.id,
        actor_id=actor_id,
        payload={
            "provider": data.provider,
            "sign_name": data.sign_name,
            "template_id": data.template_id,
            "access_key_id": data.access_key_id,
            "app_id": data.app_id,
            "secret_changed": bool(data.secret),
        },
    )
    return row


# --- branding on documents ---------------------------------------------------------------------


async def branding(session: AsyncSession) -> TenantBranding | None:
    return await session.scalar(select(TenantBranding))


async def set_branding(
    session: AsyncSession,
    *,
    display_name: str,
    logo_id: uuid.UUID | None,
    actor_id: uuid.UUID | None = None,
) -> TenantBranding:
    """Set the name and logo documents are headed with; the logo is an uploaded image."""
    if logo_id is not None:
        try:
            logo = await get_stored_object(session, logo_id)
        except NotFound:
            raise InvalidInput("logo", "exists", N_("No such uploaded file.")) from None
        if FileType(logo.content_type) not in IMAGES:
            raise InvalidInput("logo", "image", N_("The logo must be an image."))
    row = await session.scalar(select(TenantBranding).with_for_update())
    if row is None:
        row = TenantBranding()
        session.add(row)
    row.display_name = display_name or None
    row.logo_id = logo_id
    await session.flush()
    await audit.record(
        session,
        action="tenant.branding_set",
        subject_type="tenant_branding",
        subject_id=row.id,
        actor_id=actor_id,
        payload={"display_name": row.display_name, "logo_id": logo_id},
    )
    return row


async def brand_logo(session: AsyncSession) -> StoredObject | None:
    """The stored logo; ``None`` without one, or once its file is gone with the tenant's data."""
    row = await branding(session)
    if row is None or row.logo_id is None:
        return None
    return await session.scalar(select(StoredObject).where(StoredObject.id == row.logo_id))


async def pdf_brand(session: AsyncSession, storage: ObjectStorage) -> dict[str, str]:
    """The heading of the current tenant's documents: ``company_name`` (the brand name, else the
    registered name) and ``company_logo`` (a data URI, empty without a logo)."""
    tenant = (
        await session.execute(select(Tenant).where(Tenant.id == current_tenant_id()))
    ).scalar_one()
    row = await branding(session)
    name = row.display_name if row is not None and row.display_name else tenant.name
    logo = ""
    record = await brand_logo(session)
    if record is not None:
        content = await anyio.to_thread.run_sync(storage.get, record.key)
        logo = f"data:{record.content_type};base64,{base64.b64encode(content).decode()}"
    return {"company_name": name, "company_logo": logo}
