"""Tenant, plant, user and credential operations. Every change is written to the ledger."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Select, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from infra import audit
from infra.db import new_id, utcnow
from infra.errors import AuthenticationFailed, Conflict, InvalidInput, NotFound
from infra.i18n import N_
from infra.security import (
    hash_password,
    new_secret,
    password_needs_rehash,
    secret_digest,
    verify_password,
)
from infra.tenancy import tenant_scope
from tenants.access import Grant, Principal
from tenants.models import ApiToken, Membership, Plant, Role, Tenant, TenantStatus, User

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
    actor_id: uuid.UUID | None = None,
) -> Plant:
    _check_timezone(timezone)
    _check_position(latitude, longitude)
    if (await session.execute(select(Plant.id).where(Plant.code == code))).first():
        raise Conflict("code", "unique", "A plant with this code already exists.")
    plant = Plant(code=code, name=name, timezone=timezone, latitude=latitude, longitude=longitude)
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
        },
    )
    return plant


async def list_plants(
    session: AsyncSession, visible: frozenset[uuid.UUID] | None = None
) -> list[Plant]:
    query = select(Plant).order_by(Plant.code)
    if visible is not None:
        query = query.where(Plant.id.in_(visible))
    return list((await session.execute(query)).scalars())


async def get_plant(session: AsyncSession, plant_id: uuid.UUID) -> Plant:
    plant = (await session.execute(select(Plant).where(Plant.id == plant_id))).scalar_one_or_none()
    if plant is None:
        raise NotFound("Plant not found.")
    return plant


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
        payload={"email": user.email, "name": name, "locale": locale},
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
        try:
            await get_plant(session, plant_id)
        except NotFound as exc:
            raise InvalidInput("plant_id", "exists", "No such plant in this tenant.") from exc
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
