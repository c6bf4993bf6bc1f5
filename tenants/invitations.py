"""Invitations: a tenant administrator asks somebody to join with one role, optionally limited to
one plant; the person follows the mailed link, chooses a name and a password, and becomes a user
with that grant.

The link's token is random and kept only as its digest; it works once and expires after seven
days, and the administrator may revoke it before it is used. Only host roles are offered:
contractor users join through their company's registration (``onboarding``), which links them to
the company. A tenant administrator acts for every plant, so that role takes no plant. Nobody is
invited by an administrator whose own e-mail address is not verified yet (``tenants.signup``).
The plan's ``max_active_workers`` counts a contractor's workers, which no invitation creates, so
no entitlement bites here.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from infra import audit
from infra.db import utcnow
from infra.errors import Conflict, FieldProblem, InvalidInput, NotFound, RulesBroken
from infra.i18n import N_
from infra.notify import Notification, NotificationKind
from infra.security import new_secret, secret_digest
from tenants import services, signup
from tenants.access import Principal
from tenants.models import Invitation, Plant, Role, Tenant, User
from tenants.notifications import queue_notification

INVITATION_VALID_FOR = timedelta(days=7)
INVITABLE_ROLES = tuple(role for role in Role if role.is_host)
INVITATION_NOT_FOUND = N_("Invitation not found.")
MAX_NAME_LENGTH = 100


class UnusableInvitation(InvalidInput):
    """A link that cannot be used (any more): the rule says why, ``unknown``, ``used``,
    ``revoked`` or ``expired``."""


@dataclass(frozen=True)
class Offer:
    """What a usable link offers: the role, on one plant or on every plant."""

    invitation: Invitation
    plant: Plant | None


def _invitation_url(base_url: str, slug: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/t/{slug}/invitations/{token}"


def is_pending(invitation: Invitation, now: datetime) -> bool:
    return (
        invitation.accepted_at is None
        and invitation.revoked_at is None
        and invitation.expires_at > now
    )


async def invite(
    session: AsyncSession,
    tenant: Tenant,
    inviter: Principal,
    *,
    email: str,
    role: Role,
    plant_id: uuid.UUID | None,
    base_url: str,
    locale: str,
) -> Invitation:
    """Invite ``email`` with the role, and mail the link in this transaction."""
    await signup.ensure_email_verified(session, inviter.user_id)
    role = Role(role)
    if role not in INVITABLE_ROLES:
        raise InvalidInput(
            "role",
            "host_role",
            N_("Contractor users join through their company's registration, not by invitation."),
        )
    if role is Role.TENANT_ADMIN and plant_id is not None:
        raise InvalidInput(
            "plant_id", "tenant_wide", N_("A tenant administrator acts for every plant.")
        )
    plant = None
    if plant_id is not None:
        plant = await services.plant_to_grant(session, plant_id)
    address = services.normalize_email(email)
    if await services.user_by_email(session, address) is not None:
        raise Conflict("email", "unique", "A user with this e-mail address already exists.")
    now = utcnow()
    waiting = await session.execute(
        select(Invitation).where(
            Invitation.email == address,
            Invitation.accepted_at.is_(None),
            Invitation.revoked_at.is_(None),
            Invitation.expires_at > now,
        )
    )
    if waiting.first() is not None:
        raise Conflict(
            "email",
            "pending",
            N_("An invitation to this address is still pending; revoke it to send a new one."),
        )
    token = new_secret()
    invitation = Invitation(
        email=address,
        role=role.value,
        plant_id=plant_id,
        token_hash=secret_digest(token),
        expires_at=now + INVITATION_VALID_FOR,
        invited_by=inviter.user_id,
    )
    session.add(invitation)
    await session.flush()
    context = {
        "tenant_name": tenant.name,
        "inviter": inviter.name,
        "role": role.value,
        "url": _invitation_url(base_url, tenant.slug, token),
        "expires_at": invitation.expires_at,
    }
    if plant is not None:
        context |= {"plant_name": plant.name, "timezone": plant.timezone}
    await queue_notification(
        session,
        Notification(
            tenant_id=tenant.id,
            kind=NotificationKind.USER_INVITED,
            context=context,
            idempotency_key=f"invitation:{invitation.id}",
            recipient=address,
            locale=locale,
        ),
    )
    await audit.record(
        session,
        action="invitation.created",
        subject_type="invitation",
        subject_id=invitation.id,
        actor_id=inviter.user_id,
        payload={
            "email": address,
            "role": role.value,
            "plant_id": plant_id,
            "expires_at": invitation.expires_at,
        },
    )
    return invitation


async def list_pending(session: AsyncSession) -> list[Invitation]:
    now = utcnow()
    query = (
        select(Invitation)
        .where(
            Invitation.accepted_at.is_(None),
            Invitation.revoked_at.is_(None),
            Invitation.expires_at > now,
        )
        .order_by(Invitation.created_at.desc(), Invitation.id)
    )
    return list((await session.execute(query)).scalars())


async def revoke(
    session: AsyncSession, invitation_id: uuid.UUID, *, actor_id: uuid.UUID
) -> Invitation:
    """Withdraw an invitation not used yet; revoking it twice changes nothing more."""
    invitation = (
        await session.execute(
            select(Invitation).where(Invitation.id == invitation_id).with_for_update()
        )
    ).scalar_one_or_none()
    if invitation is None:
        raise NotFound(INVITATION_NOT_FOUND)
    if invitation.accepted_at is not None:
        raise Conflict(
            "invitation",
            "accepted",
            N_("This invitation was already accepted; it cannot be revoked."),
        )
    if invitation.revoked_at is not None:
        return invitation
    invitation.revoked_at = utcnow()
    invitation.revoked_by = actor_id
    await session.flush()
    await audit.record(
        session,
        action="invitation.revoked",
        subject_type="invitation",
        subject_id=invitation.id,
        actor_id=actor_id,
        payload={"email": invitation.email},
    )
    return invitation


async def open_invitation(session: AsyncSession, token: str, *, lock: bool = False) -> Invitation:
    """The usable invitation of the current tenant behind a token; a link that cannot be used
    says why: unknown, accepted, revoked or expired."""
    query = select(Invitation).where(Invitation.token_hash == secret_digest(token))
    if lock:
        query = query.with_for_update()
    invitation = (await session.execute(query)).scalar_one_or_none()
    if invitation is None:
        raise UnusableInvitation("token", "unknown", N_("This invitation link is not valid."))
    if invitation.accepted_at is not None:
        raise UnusableInvitation("token", "used", N_("This invitation was already accepted."))
    if invitation.revoked_at is not None:
        raise UnusableInvitation("token", "revoked", N_("This invitation was revoked."))
    if invitation.expires_at <= utcnow():
        raise UnusableInvitation(
            "token",
            "expired",
            N_("This invitation has expired. Ask your administrator for a new one."),
        )
    return invitation


async def offer(session: AsyncSession, token: str) -> Offer:
    """What the person holding the link is asked to join as, before choosing a password."""
    invitation = await open_invitation(session, token)
    plant = (
        await services.get_plant(session, invitation.plant_id)
        if invitation.plant_id is not None
        else None
    )
    return Offer(invitation, plant)


async def accept(
    session: AsyncSession, token: str, *, name: str, password: str, locale: str = "zh_CN"
) -> User:
    """Join with the invitation: the user is created with its grant, and the link is spent."""
    invitation = await open_invitation(session, token, lock=True)
    name = name.strip()
    problems = []
    if not name:
        problems.append(FieldProblem("name", "required", N_("This field is required.")))
    elif len(name) > MAX_NAME_LENGTH:
        problems.append(
            FieldProblem(
                "name",
                "max_length",
                N_("At most %(limit)s characters."),
                {"limit": MAX_NAME_LENGTH},
            )
        )
    problems += signup.password_problems(password, email=invitation.email)
    if problems:
        raise RulesBroken(N_("Check the highlighted fields."), problems)
    user = await services.create_user(
        session,
        email=invitation.email,
        name=name,
        password=password,
        locale=locale,
        actor_id=invitation.invited_by,
    )
    await services.grant_role(
        session,
        user_id=user.id,
        role=Role(invitation.role),
        plant_id=invitation.plant_id,
        actor_id=invitation.invited_by,
    )
    invitation.accepted_at = utcnow()
    invitation.user_id = user.id
    await session.flush()
    await audit.record(
        session,
        action="invitation.accepted",
        subject_type="invitation",
        subject_id=invitation.id,
        actor_id=user.id,
        payload={
            "email": invitation.email,
            "role": invitation.role,
            "plant_id": invitation.plant_id,
            "user_id": user.id,
        },
    )
    return user
