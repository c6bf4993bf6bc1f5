"""Self-serve sign-up: the rules a new tenant's slug and its administrator's password must meet,
the sign-up itself, and the verification of the administrator's e-mail address.

A sign-up creates, in the caller's one transaction, the tenant (``trialing``), its first plant,
its administrator with the tenant-wide ``tenant_admin`` role, and a verification link queued in
the outbox; a refused sign-up leaves nothing behind. The administrator may sign in at once, but
may not invite anybody until the address is verified (``tenants.invitations`` asks
:func:`ensure_email_verified`): an invitation sent in the tenant's name must come from an address
somebody has shown they own. The link's token is random, kept only as its digest, works once and
expires after 48 hours; a new one can be asked for.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from infra import audit
from infra.db import utcnow
from infra.errors import Conflict, FieldError, FieldProblem, InvalidInput, RulesBroken
from infra.i18n import N_
from infra.notify import Notification, NotificationKind
from infra.security import new_secret, secret_digest
from infra.tenancy import tenant_scope
from tenants import services
from tenants.models import EmailVerification, Plant, Role, Tenant, TenantStatus, User
from tenants.notifications import queue_notification
from tenants.schemas import SignupIn

SLUG_SHAPE = re.compile(r"^[a-z][a-z0-9-]{2,39}$")
# Slugs that name, or may one day name, a part of the site or a host of its domain
# (``{slug}.<base domain>``), so no tenant may take them.
RESERVED_SLUGS = (
    "about",
    "account",
    "admin",
    "api",
    "app",
    "assets",
    "auth",
    "billing",
    "blog",
    "demo",
    "dev",
    "docs",
    "files",
    "ftp",
    "healthz",
    "help",
    "imap",
    "lang",
    "login",
    "logout",
    "mail",
    "portal",
    "pop",
    "readyz",
    "root",
    "schema",
    "signup",
    "smtp",
    "staging",
    "static",
    "status",
    "support",
    "system",
    "test",
    "www",
)
MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 256
# Passwords long enough for the length rule that still top the leaked-password lists.
COMMON_PASSWORDS = frozenset(
    {
        "0123456789",
        "1234567890",
        "12345678910",
        "123456789a",
        "1q2w3e4r5t",
        "1qaz2wsx3edc",
        "5201314520",
        "a123456789",
        "aa123456789",
        "abc1234567",
        "abcd123456",
        "admin12345",
        "admin123456",
        "iloveyou123",
        "password12",
        "password123",
        "password1234",
        "passw0rd123",
        "qq123456789",
        "qwe1234567",
        "qwerty1234",
        "qwerty12345",
        "qwertyuiop",
        "welcome123",
        "woaini1314",
        "woaini520520",
        "zxcvbnm123",
    }
)
VERIFICATION_VALID_FOR = timedelta(hours=48)
_REFUSED = N_("The sign-up was refused: check the named fields.")


class EmailNotVerified(FieldError):
    status_code = 403


@dataclass(frozen=True)
class SignUp:
    tenant: Tenant
    plant: Plant
    admin: User
    verification_expires_at: datetime


def slug_problems(slug: str) -> list[FieldProblem]:
    if not SLUG_SHAPE.match(slug) or slug.endswith("-"):
        return [
            FieldProblem(
                "slug",
                "slug",
                N_(
                    "Use 3 to 40 lowercase letters, digits and hyphens, starting with a letter "
                    "and not ending with a hyphen."
                ),
            )
        ]
    if slug in RESERVED_SLUGS:
        return [FieldProblem("slug", "reserved", N_("This address is reserved; choose another."))]
    return []


def password_problems(password: str, *, email: str, slug: str | None = None) -> list[FieldProblem]:
    """Why a new password is too weak, if it is: too short, too long, too common, or the
    account's own e-mail address (or its name part) or the tenant's slug."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return [
            FieldProblem(
                "password",
                "min_length",
                N_("At least %(limit)s characters."),
                {"limit": MIN_PASSWORD_LENGTH},
            )
        ]
    if len(password) > MAX_PASSWORD_LENGTH:
        return [
            FieldProblem(
                "password",
                "max_length",
                N_("At most %(limit)s characters."),
                {"limit": MAX_PASSWORD_LENGTH},
            )
        ]
    folded = password.strip().lower()
    address = services.normalize_email(email)
    if folded in {address, address.split("@", 1)[0], slug or address}:
        return [
            FieldProblem(
                "password",
                "personal",
                N_("The password must not be the e-mail address or the tenant's address."),
            )
        ]
    if folded in COMMON_PASSWORDS:
        return [
            FieldProblem(
                "password",
                "common",
                N_("This password is among the most used ones; choose another."),
            )
        ]
    return []


def check_password(password: str, *, email: str, slug: str | None = None) -> None:
    problems = password_problems(password, email=email, slug=slug)
    if problems:
        raise RulesBroken(_REFUSED, problems)


def _verification_url(base_url: str, slug: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/t/{slug}/verify-email/{token}"


async def send_verification(
    session: AsyncSession, tenant: Tenant, user: User, *, base_url: str, locale: str
) -> EmailVerification:
    """A new verification link for the user's address, queued for sending in this transaction.
    Run in the tenant's scope."""
    token = new_secret()
    verification = EmailVerification(
        user_id=user.id,
        email=user.email,
        token_hash=secret_digest(token),
        expires_at=utcnow() + VERIFICATION_VALID_FOR,
    )
    session.add(verification)
    await session.flush()
    await queue_notification(
        session,
        Notification(
            tenant_id=tenant.id,
            kind=NotificationKind.EMAIL_VERIFICATION,
            context={
                "tenant_name": tenant.name,
                "url": _verification_url(base_url, tenant.slug, token),
                "expires_at": verification.expires_at,
            },
            idempotency_key=f"email_verification:{verification.id}",
            recipient=user.email,
            locale=locale,
        ),
    )
    await audit.record(
        session,
        action="email_verification.sent",
        subject_type="user",
        subject_id=user.id,
        actor_id=user.id,
        payload={"email": user.email, "expires_at": verification.expires_at},
    )
    return verification


async def sign_up(session: AsyncSession, data: SignupIn, *, base_url: str) -> SignUp:
    """Create the tenant with its first plant and administrator, and send the verification
    link. Every rule is checked before anything is written; the caller's transaction holds it
    all, so a refusal raised later (a slug taken meanwhile) leaves nothing either."""
    slug = data.slug.strip()
    problems = slug_problems(slug) + password_problems(data.password, email=data.email, slug=slug)
    if problems:
        raise RulesBroken(_REFUSED, problems)
    try:
        tenant = await services.create_tenant(
            session, slug=slug, name=data.company_name, status=TenantStatus.TRIALING
        )
    except IntegrityError as exc:
        raise Conflict("slug", "unique", "This tenant slug is already taken.") from exc
    with tenant_scope(tenant.id):
        try:
            plant = await services.add_plant(
                session, code=data.plant_code, name=data.plant_name, timezone=data.timezone
            )
        except (Conflict, InvalidInput) as exc:
            # The plant service names its own fields; the form has them under plant_.
            for problem in exc.problems:
                if problem.field in ("code", "name"):
                    problem.field = f"plant_{problem.field}"
            raise
        admin = await services.create_user(
            session,
            email=data.email,
            name=data.admin_name,
            password=data.password,
            locale=data.locale,
        )
        await services.grant_role(
            session, user_id=admin.id, role=Role.TENANT_ADMIN, actor_id=admin.id
        )
        verification = await send_verification(
            session, tenant, admin, base_url=base_url, locale=data.locale
        )
        await audit.record(
            session,
            action="tenant.signed_up",
            subject_type="tenant",
            subject_id=tenant.id,
            actor_id=admin.id,
            payload={
                "slug": slug,
                "name": tenant.name,
                "status": tenant.status,
                "plant_id": plant.id,
                "admin_user_id": admin.id,
                "email": admin.email,
            },
        )
    return SignUp(tenant, plant, admin, verification.expires_at)


async def email_verified(session: AsyncSession, user_id: uuid.UUID) -> bool:
    """Whether the user has nothing left to verify: a user who never signed up (created by an
    administrator, by an invitation or by a contractor's registration) has no link to follow."""
    rows = (
        await session.execute(
            select(EmailVerification.verified_at).where(EmailVerification.user_id == user_id)
        )
    ).all()
    return not rows or any(verified_at is not None for (verified_at,) in rows)


async def ensure_email_verified(session: AsyncSession, user_id: uuid.UUID) -> None:
    if not await email_verified(session, user_id):
        raise EmailNotVerified(
            "account",
            "email_verified",
            N_(
                "Verify your e-mail address first: follow the link we sent you, "
                "or send a new one from this page."
            ),
        )


async def verify_email(session: AsyncSession, token: str) -> EmailVerification:
    """Use a verification link of the current tenant: once, before it expires."""
    verification = (
        await session.execute(
            select(EmailVerification)
            .where(EmailVerification.token_hash == secret_digest(token))
            .with_for_update()
        )
    ).scalar_one_or_none()
    if verification is None:
        raise InvalidInput("token", "unknown", N_("This verification link is not valid."))
    if verification.verified_at is not None:
        raise InvalidInput("token", "used", N_("This verification link was already used."))
    if verification.expires_at <= utcnow():
        raise InvalidInput(
            "token",
            "expired",
            N_("This verification link has expired. Sign in and send a new one."),
        )
    verification.verified_at = utcnow()
    await session.flush()
    await audit.record(
        session,
        action="email_verification.verified",
        subject_type="user",
        subject_id=verification.user_id,
        actor_id=verification.user_id,
        payload={"email": verification.email, "verification_id": verification.id},
    )
    return verification


async def resend_verification(
    session: AsyncSession, tenant: Tenant, user_id: uuid.UUID, *, base_url: str, locale: str
) -> EmailVerification:
    """A new link for a user whose address is not verified yet; earlier links keep working
    until they expire."""
    if await email_verified(session, user_id):
        raise Conflict("email", "verified", N_("Your e-mail address is already verified."))
    user = await services.get_user(session, user_id)
    return await send_verification(session, tenant, user, base_url=base_url, locale=locale)
