"""Self-serve sign-up of a new tenant, and the invitations a tenant administrator sends."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.exceptions import NotFoundException
from litestar.params import JSONBody

from infra.i18n import current_locale
from portal.dependencies import AppSettings, DbSession
from portal.guards import requires_roles
from portal.params import IdParam, parse_id
from tenants import invitations, signup
from tenants.access import Principal
from tenants.models import Invitation, Role, Tenant
from tenants.schemas import InvitationIn as UserInvitationIn
from tenants.schemas import InvitationRead, SignupIn, SignupRead


def invitation_read(invitation: Invitation) -> InvitationRead:
    return InvitationRead(
        id=invitation.id,
        email=invitation.email,
        role=invitation.role,
        plant_id=invitation.plant_id,
        invited_by=invitation.invited_by,
        expires_at=invitation.expires_at,
        created_at=invitation.created_at,
    )


def _tenant(request: Request[Any, Any, Any]) -> Tenant:
    tenant = request.scope.get("state", {}).get("tenant")
    if tenant is None:
        raise NotFoundException()
    return tenant


class SignupController(Controller):
    path = "/api/v1/signup"
    tags = ["signup"]  # noqa: RUF012

    @post(
        "/",
        summary="Sign up a new tenant",
        description=(
            "Public. Creates the tenant (status `trialing`) with its first plant and its "
            "administrator, and mails a link to verify the administrator's e-mail address (valid "
            "48 hours, once). The administrator signs in at `POST /api/v1/auth/token` at once, "
            "but may invite users only once the address is verified. The slug is 3 to 40 "
            "lowercase letters, digits and hyphens, starting with a letter; reserved words are "
            "refused. The password needs at least 10 characters, not a common one, not the "
            "e-mail address or the slug. A refusal creates nothing. Rate limited per client "
            "address."
        ),
    )
    async def sign_up(
        self, db_session: DbSession, settings: AppSettings, data: JSONBody[SignupIn]
    ) -> SignupRead:
        done = await signup.sign_up(db_session, data, base_url=settings.base_url)
        return SignupRead(
            tenant_id=done.tenant.id,
            tenant_slug=done.tenant.slug,
            status=done.tenant.status,
            plant_id=done.plant.id,
            admin_user_id=done.admin.id,
            verification_expires_at=done.verification_expires_at,
        )


class UserInvitationController(Controller):
    path = "/api/v1/user-invitations"
    tags = ["users"]  # noqa: RUF012
    guards = [requires_roles(Role.TENANT_ADMIN)]  # noqa: RUF012

    @get("/", summary="Pending invitations to join the tenant")
    async def list_invitations(self, db_session: DbSession) -> list[InvitationRead]:
        return [invitation_read(row) for row in await invitations.list_pending(db_session)]

    @post(
        "/",
        summary="Invite somebody to join with a role",
        description=(
            "Tenant admins only, once their own e-mail address is verified (403 before). Host "
            "roles only; a role other than `tenant_admin` may be limited to one plant. The link "
            "is mailed to the address, works once and expires after 7 days."
        ),
    )
    async def invite(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        settings: AppSettings,
        data: JSONBody[UserInvitationIn],
    ) -> InvitationRead:
        invitation = await invitations.invite(
            db_session,
            _tenant(request),
            request.user,
            email=data.email,
            role=data.role,
            plant_id=data.plant_id,
            base_url=settings.base_url,
            locale=current_locale(),
        )
        return invitation_read(invitation)

    @post(
        "/{invitation_id:str}/revoke",
        summary="Revoke a pending invitation",
        description="Another tenant's id answers 404; an accepted invitation answers 409.",
        status_code=200,
    )
    async def revoke(
        self, request: Request[Principal, Any, Any], db_session: DbSession, invitation_id: IdParam
    ) -> InvitationRead:
        invitation = await invitations.revoke(
            db_session, parse_id(invitation_id, "invitation_id"), actor_id=request.user.user_id
        )
        return invitation_read(invitation)
