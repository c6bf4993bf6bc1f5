"""Self-serve sign-up of a new tenant, the invitations a tenant administrator sends, and joining
by one of them.

Joining is public: the caller has no account yet, so the tenant is the one named in the body or
the query (the slug of the link), not a bearer token's. A link that cannot be used answers 404
with the rule that stops it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.exceptions import NotFoundException
from litestar.params import JSONBody, Parameter, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from infra.errors import NotFound
from infra.i18n import N_, current_locale
from infra.tenancy import tenant_scope
from portal.api.tenants import user_read
from portal.dependencies import AppSettings, DbSession
from portal.guards import BILLING_EXEMPT, requires_roles
from portal.params import IdParam, parse_id
from tenants import invitations, services, signup
from tenants.access import Principal
from tenants.models import Invitation, Role, Tenant
from tenants.schemas import (
    InvitationAcceptIn,
    InvitationOfferRead,
    InvitationRead,
    MeRead,
    SignupIn,
    SignupRead,
)
from tenants.schemas import InvitationIn as UserInvitationIn

_tenant_admins = requires_roles(Role.TENANT_ADMIN)
# Joining works while the tenant is read-only for billing, like signing in (the web page too).
_ACCOUNT_ACCESS = {BILLING_EXEMPT: True}
# The link's token is the invitation's only key: no cache keeps an answer that used it.
_NO_STORE = {"Cache-Control": "no-store"}
TokenParam = Annotated[
    str, Parameter(description="The last part of the mailed link", max_length=100)
]
TenantQuery = Annotated[
    str,
    QueryParameter(
        description="The tenant's slug, as in the link `/t/{slug}/invitations/{token}`",
        max_length=40,
    ),
]


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


async def _named_tenant(session: AsyncSession, slug: str) -> Tenant:
    tenant = await services.tenant_by_slug(session, slug)
    if tenant is None:
        raise NotFound(N_("Tenant not found."))
    return tenant


@contextmanager
def _usable_link() -> Iterator[None]:
    """A link that cannot be used is, to the API, a resource that is not there."""
    try:
        yield
    except invitations.UnusableInvitation as exc:
        raise NotFound(exc.message, exc.problems) from None


class UserInvitationController(Controller):
    """The administrators' routes each carry their guard: joining by a link is public."""

    path = "/api/v1/user-invitations"
    tags = ["users"]  # noqa: RUF012

    @get("/", summary="Pending invitations to join the tenant", guards=[_tenant_admins])
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
        guards=[_tenant_admins],
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
        guards=[_tenant_admins],
    )
    async def revoke(
        self, request: Request[Principal, Any, Any], db_session: DbSession, invitation_id: IdParam
    ) -> InvitationRead:
        invitation = await invitations.revoke(
            db_session, parse_id(invitation_id, "invitation_id"), actor_id=request.user.user_id
        )
        return invitation_read(invitation)

    @get(
        "/{token:str}",
        summary="What an invitation link offers",
        description=(
            "Public. `token` is the last part of the mailed link `/t/{slug}/invitations/{token}`, "
            "`tenant` its slug. Answers the tenant, the invited address, the role, the plant "
            "(none: every plant) and when the link expires. A link that cannot be used answers "
            "404 with the rule: `unknown`, `used` (already accepted), `revoked` or `expired`."
        ),
    )
    async def offer(
        self, db_session: DbSession, token: TokenParam, tenant: TenantQuery
    ) -> Response[InvitationOfferRead]:
        named = await _named_tenant(db_session, tenant)
        with tenant_scope(named.id), _usable_link():
            offer = await invitations.offer(db_session, token)
        invitation = offer.invitation
        return Response(
            InvitationOfferRead(
                tenant_slug=named.slug,
                tenant_name=named.name,
                email=invitation.email,
                role=invitation.role,
                plant_id=invitation.plant_id,
                plant_name=offer.plant.name if offer.plant is not None else None,
                expires_at=invitation.expires_at,
            ),
            headers=_NO_STORE,
        )

    @post(
        "/{token:str}/accept",
        summary="Join the tenant by an invitation",
        description=(
            "Public. Creates the invited user with the invitation's role and plant, named "
            "`name`, with `password`, and spends the link; answers the new user as "
            "`GET /api/v1/me` would. The user then signs in at `POST /api/v1/auth/token`. The "
            "password needs at least 10 characters, not a common one, not the invited e-mail "
            "address. A link that cannot be used answers 404 with the rule (`unknown`, `used`, "
            "`revoked`, `expired`). Works while the tenant is read-only for billing. Rate "
            "limited per client address, like signing in."
        ),
        opt=_ACCOUNT_ACCESS,
    )
    async def accept(
        self, db_session: DbSession, token: TokenParam, data: JSONBody[InvitationAcceptIn]
    ) -> Response[MeRead]:
        named = await _named_tenant(db_session, data.tenant)
        with tenant_scope(named.id):
            with _usable_link():
                user = await invitations.accept(
                    db_session,
                    token,
                    name=data.name,
                    password=data.password,
                    locale=current_locale(),
                )
            summary = await user_read(db_session, user)
        return Response(
            MeRead(
                user=summary, tenant_id=named.id, tenant_slug=named.slug, tenant_name=named.name
            ),
            status_code=201,
            headers=_NO_STORE,
        )
