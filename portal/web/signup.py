"""Self-serve sign-up, the e-mail verification link, the tenant administrator's users page with
its invitations, and the public page where an invited person joins.

The pages parse forms, call ``tenants.signup`` and ``tenants.invitations`` and render; the rules
(slug, password, who may be invited, which link still works) are decided there. A refused form
is shown again with what was typed, except passwords, and every problem next to its field. The
links in the mails open a page with one button: the link is used by that POST, not by the GET,
so a mail scanner that follows links does not spend it. The users page is the tenant
administrators' (others get 403, like the API); another tenant's invitation answers 404.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotFoundException
from litestar.params import Body, FromPath, FromQuery
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession

from infra.errors import DomainError, FieldProblem, NotFound
from infra.i18n import N_, current_locale
from infra.i18n import gettext as _
from portal.dependencies import AppSettings, DbSession
from portal.guards import BILLING_EXEMPT, requires_roles
from portal.identity import SESSION_TENANT_KEY, SESSION_USER_KEY
from portal.sessions import rotate_session_id
from portal.web.forms import INVALID_FORM, convert, ensure_own_tenant, field_text, page_id
from portal.web.onboarding import FormErrors
from tenants import invitations, services, signup
from tenants.access import Principal
from tenants.models import Role, Tenant
from tenants.schemas import InvitationIn, SignupIn

FormData = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]
TOKEN_LIMIT = 100
_REQUIRED = N_("This field is required.")
SIGNUP_FIELDS = (
    "company_name",
    "slug",
    "admin_name",
    "email",
    "password",
    "plant_code",
    "plant_name",
    "timezone",
)
INVITE_FIELDS = ("email", "role", "plant_id")
ACCEPT_FIELDS = ("name", "password")
DONE_NOTICES = {
    "signed_up": N_(
        "Your tenant is ready. We sent a link to your e-mail address: follow it to verify the "
        "address, then you can invite your colleagues."
    ),
    "invited": N_("Invitation sent."),
    "revoked": N_("Invitation revoked."),
    "resent": N_("We sent a new verification link to your e-mail address."),
}
_tenant_admins = requires_roles(Role.TENANT_ADMIN)
# Getting into the account works while the tenant is read-only for billing, like signing in:
# verifying the administrator's address (with a new link too, as a link lasts 48 hours) and
# joining by an invitation sent before the bill went unpaid.
_ACCOUNT_ACCESS = {BILLING_EXEMPT: True}


def _tenant_of(request: Request[Any, Any, Any], slug: str) -> Tenant:
    tenant = request.scope.get("state", {}).get("tenant")
    if tenant is None or tenant.slug != slug:
        raise NotFoundException()
    return tenant


def _token(value: str) -> str:
    return value[:TOKEN_LIMIT]


def _required(data: dict[str, Any], names: tuple[str, ...]) -> None:
    """Every empty field at once, rather than msgspec's first problem only."""
    missing = [
        FieldProblem(name, "required", _REQUIRED) for name in names if not field_text(data, name)
    ]
    if missing:
        raise DomainError(INVALID_FORM, missing)


def _sign_in(request: Request[Any, Any, Any], tenant: Tenant, user_id: Any) -> None:
    """A fresh session id, as at sign-in."""
    rotate_session_id(request.scope)
    request.set_session({SESSION_TENANT_KEY: str(tenant.id), SESSION_USER_KEY: str(user_id)})


# --- sign-up ---------------------------------------------------------------------------------


def _signup_page(
    values: dict[str, str], errors: FormErrors | None = None, status_code: int = 200
) -> Template:
    return Template(
        "signup/form.html",
        context={"values": values, "errors": errors or FormErrors()},
        status_code=status_code,
    )


def _signup(data: dict[str, Any]) -> SignupIn:
    _required(data, SIGNUP_FIELDS)
    payload: dict[str, Any] = {name: field_text(data, name) for name in SIGNUP_FIELDS}
    payload["slug"] = payload["slug"].lower()
    password = data.get("password", "")
    payload["password"] = password[:1_000] if isinstance(password, str) else ""
    payload["locale"] = current_locale()
    return convert(payload, SignupIn)


class SignupPages(Controller):
    include_in_schema = False

    @get("/signup")
    async def signup_form(self) -> Template:
        return _signup_page({"timezone": "Asia/Shanghai"})

    @post("/signup")
    async def sign_up(
        self,
        request: Request[Any, Any, Any],
        db_session: DbSession,
        settings: AppSettings,
        data: FormData,
    ) -> Template | Redirect:
        values = {name: field_text(data, name) for name in SIGNUP_FIELDS if name != "password"}
        try:
            done = await signup.sign_up(db_session, _signup(data), base_url=settings.base_url)
        except DomainError as exc:
            await db_session.rollback()
            return _signup_page(
                values, FormErrors.of(exc, set(SIGNUP_FIELDS)), status_code=exc.status_code
            )
        _sign_in(request, done.tenant, done.admin.id)
        return Redirect(path=f"/t/{done.tenant.slug}/admin/users?done=signed_up")

    @get("/t/{slug:str}/verify-email/{token:str}")
    async def verification_page(
        self, request: Request[Any, Any, Any], slug: FromPath[str]
    ) -> Template:
        _tenant_of(request, slug)
        return Template(
            "signup/verify.html", context={"tenant_slug": slug, "verified": False, "refusal": None}
        )

    @post("/t/{slug:str}/verify-email/{token:str}", opt=_ACCOUNT_ACCESS)
    async def verify(
        self,
        request: Request[Any, Any, Any],
        db_session: DbSession,
        slug: FromPath[str],
        token: FromPath[str],
    ) -> Template:
        _tenant_of(request, slug)
        try:
            await signup.verify_email(db_session, _token(token))
        except DomainError as exc:
            await db_session.rollback()
            return Template(
                "signup/verify.html",
                context={"tenant_slug": slug, "verified": False, "refusal": _refusal(exc)},
                status_code=exc.status_code,
            )
        return Template(
            "signup/verify.html", context={"tenant_slug": slug, "verified": True, "refusal": None}
        )


def _refusal(exc: DomainError) -> dict[str, str]:
    problem = exc.problems[0] if exc.problems else None
    return {
        "message": _(problem.message if problem else exc.message),
        "rule": problem.rule if problem else "",
    }


# --- the users page --------------------------------------------------------------------------


async def _users_page(
    session: AsyncSession,
    principal: Principal,
    slug: str,
    *,
    values: dict[str, str] | None = None,
    errors: FormErrors | None = None,
    notice: str | None = None,
    status_code: int = 200,
) -> Template:
    plants = await services.list_plants(session)
    plant_names = {plant.id: plant.name for plant in plants}
    users = []
    for user in await services.list_users(session):
        grants = await services.grants_of(session, user.id)
        users.append(
            {
                "user": user,
                "grants": [
                    {"role": grant.role.value, "plant": plant_names.get(grant.plant_id)}
                    for grant in grants
                ],
            }
        )
    pending = [
        {"invitation": row, "plant": plant_names.get(row.plant_id) if row.plant_id else None}
        for row in await invitations.list_pending(session)
    ]
    return Template(
        "admin/users.html",
        context={
            "tenant_slug": slug,
            "verified": await signup.email_verified(session, principal.user_id),
            "users": users,
            "pending": pending,
            "plants": [plant for plant in plants if plant.retired_at is None],
            "roles": [role.value for role in invitations.INVITABLE_ROLES],
            "values": values or {"role": Role.EHS_OFFICER.value},
            "errors": errors or FormErrors(),
            "notice": notice,
        },
        status_code=status_code,
    )


def _invitation(data: dict[str, Any]) -> InvitationIn:
    _required(data, ("email", "role"))
    payload: dict[str, Any] = {"email": field_text(data, "email"), "role": field_text(data, "role")}
    plant = field_text(data, "plant_id")
    if plant:
        payload["plant_id"] = plant
    return convert(payload, InvitationIn)


class UserAdminPages(Controller):
    include_in_schema = False
    guards = [_tenant_admins]  # noqa: RUF012

    @get("/t/{slug:str}/admin/users")
    async def users(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        slug: FromPath[str],
        done: FromQuery[str | None] = None,
    ) -> Template:
        ensure_own_tenant(request.user, slug)
        return await _users_page(
            db_session, request.user, slug, notice=DONE_NOTICES.get(done or "")
        )

    @post("/t/{slug:str}/admin/users/invite")
    async def invite(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        settings: AppSettings,
        slug: FromPath[str],
        data: FormData,
    ) -> Template | Redirect:
        ensure_own_tenant(request.user, slug)
        tenant = _tenant_of(request, slug)
        try:
            wanted = _invitation(data)
            await invitations.invite(
                db_session,
                tenant,
                request.user,
                email=wanted.email,
                role=wanted.role,
                plant_id=wanted.plant_id,
                base_url=settings.base_url,
                locale=current_locale(),
            )
        except DomainError as exc:
            await db_session.rollback()
            return await _users_page(
                db_session,
                request.user,
                slug,
                values={name: field_text(data, name) for name in INVITE_FIELDS},
                errors=FormErrors.of(exc, set(INVITE_FIELDS)),
                status_code=exc.status_code,
            )
        return Redirect(path=f"/t/{slug}/admin/users?done=invited")

    @post("/t/{slug:str}/admin/invitations/{invitation_id:str}/revoke")
    async def revoke(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        slug: FromPath[str],
        invitation_id: FromPath[str],
    ) -> Template | Redirect:
        ensure_own_tenant(request.user, slug)
        try:
            await invitations.revoke(
                db_session, page_id(invitation_id), actor_id=request.user.user_id
            )
        except DomainError as exc:
            if isinstance(exc, NotFound):
                raise NotFoundException() from None
            await db_session.rollback()
            return await _users_page(
                db_session,
                request.user,
                slug,
                errors=FormErrors.of(exc, set()),
                status_code=exc.status_code,
            )
        return Redirect(path=f"/t/{slug}/admin/users?done=revoked")

    @post("/t/{slug:str}/admin/users/verification", opt=_ACCOUNT_ACCESS)
    async def resend_verification(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        settings: AppSettings,
        slug: FromPath[str],
    ) -> Template | Redirect:
        ensure_own_tenant(request.user, slug)
        try:
            await signup.resend_verification(
                db_session,
                _tenant_of(request, slug),
                request.user.user_id,
                base_url=settings.base_url,
                locale=current_locale(),
            )
        except DomainError as exc:
            await db_session.rollback()
            return await _users_page(
                db_session,
                request.user,
                slug,
                errors=FormErrors.of(exc, set()),
                status_code=exc.status_code,
            )
        return Redirect(path=f"/t/{slug}/admin/users?done=resent")


# --- joining by invitation -------------------------------------------------------------------


async def _accept_page(
    session: AsyncSession,
    slug: str,
    token: str,
    *,
    values: dict[str, str] | None = None,
    errors: FormErrors | None = None,
    status_code: int = 200,
) -> Template:
    """The form to join, or why the link no longer works."""
    context: dict[str, Any] = {
        "tenant_slug": slug,
        "token": token,
        "values": values or {},
        "errors": errors or FormErrors(),
        "invitation": None,
        "plant": None,
        "refusal": None,
    }
    try:
        offer = await invitations.offer(session, token)
    except DomainError as exc:
        context["refusal"] = _refusal(exc)
        return Template(
            "invitations/accept.html",
            context=context,
            status_code=exc.status_code,
            headers={"Cache-Control": "no-store"},
        )
    context["invitation"] = offer.invitation
    context["plant"] = offer.plant.name if offer.plant is not None else None
    return Template(
        "invitations/accept.html",
        context=context,
        status_code=status_code,
        # The address carries the invitation's only copy of its token: no cache keeps it.
        headers={"Cache-Control": "no-store"},
    )


class InvitationPages(Controller):
    include_in_schema = False

    @get("/t/{slug:str}/invitations/{token:str}")
    async def invitation(
        self,
        request: Request[Any, Any, Any],
        db_session: DbSession,
        slug: FromPath[str],
        token: FromPath[str],
    ) -> Template:
        _tenant_of(request, slug)
        return await _accept_page(db_session, slug, _token(token))

    @post("/t/{slug:str}/invitations/{token:str}", opt=_ACCOUNT_ACCESS)
    async def accept(
        self,
        request: Request[Any, Any, Any],
        db_session: DbSession,
        slug: FromPath[str],
        token: FromPath[str],
        data: FormData,
    ) -> Template | Redirect:
        tenant = _tenant_of(request, slug)
        password = data.get("password", "")
        try:
            user = await invitations.accept(
                db_session,
                _token(token),
                name=field_text(data, "name"),
                password=password[:1_000] if isinstance(password, str) else "",
                locale=current_locale(),
            )
        except DomainError as exc:
            await db_session.rollback()
            return await _accept_page(
                db_session,
                slug,
                _token(token),
                values={"name": field_text(data, "name")},
                errors=FormErrors.of(exc, set(ACCEPT_FIELDS)),
                status_code=exc.status_code,
            )
        _sign_in(request, tenant, user.id)
        return Redirect(path=f"/t/{slug}/")
