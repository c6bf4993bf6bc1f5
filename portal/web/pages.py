"""Sign-in, language switch and the role dashboards."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from litestar import Controller, Request, get, post
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotFoundException
from litestar.params import Body, FromPath, FromQuery
from litestar.response import Redirect, Template

from infra.db import utcnow
from infra.errors import AuthenticationFailed
from infra.i18n import SUPPORTED_LOCALES
from infra.i18n import gettext as _
from infra.tenancy import tenant_scope
from portal.api.auth import login_policy
from portal.dependencies import AppSettings, DbSession
from portal.guards import BILLING_EXEMPT, signed_in
from portal.identity import LANGUAGE_COOKIE, SESSION_TENANT_KEY, SESSION_USER_KEY
from portal.sessions import rotate_session_id
from tenants import services
from tenants.access import Principal, visible_plant_ids
from tenants.models import Tenant

FormData = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]
_FORM_LIMIT = 300


def _field(data: dict[str, str], name: str) -> str:
    return str(data.get(name, ""))[:_FORM_LIMIT].strip()


def _safe_next(target: str | None, fallback: str) -> str:
    """Only same-site paths: an open redirect would let a phishing link borrow our domain."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return fallback


def _request_tenant(request: Request[Any, Any, Any]) -> Tenant | None:
    return request.scope.get("state", {}).get("tenant")


def _login_page(
    tenant_slug: str,
    email: str = "",
    error: str | None = None,
    status_code: int = 200,
    *,
    next_path: str | None = None,
) -> Template:
    return Template(
        template_name="login.html",
        context={
            "tenant_slug": tenant_slug,
            "email": email,
            "error": error,
            "next_path": _safe_next(next_path, ""),
        },
        status_code=status_code,
    )


class PageController(Controller):
    include_in_schema = False

    @get("/")
    async def home(self, request: Request[Principal | None, Any, Any]) -> Redirect:
        principal = request.user
        if principal is None:
            return Redirect(path="/login")
        return Redirect(path=f"/t/{principal.tenant_slug}/")

    @get("/login")
    async def login_form(
        self, tenant: FromQuery[str | None] = None, next: FromQuery[str | None] = None
    ) -> Template:
        return _login_page(tenant or "", next_path=next)

    @get("/t/{slug:str}/login")
    async def tenant_login_form(
        self,
        request: Request[Any, Any, Any],
        slug: FromPath[str],
        next: FromQuery[str | None] = None,
    ) -> Template:
        tenant = _request_tenant(request)
        if tenant is None or tenant.slug != slug:
            raise NotFoundException()
        return _login_page(slug, next_path=next)

    @post("/login", opt={BILLING_EXEMPT: True})
    async def login(
        self,
        request: Request[Any, Any, Any],
        data: FormData,
        db_session: DbSession,
        settings: AppSettings,
    ) -> Template | Redirect:
        slug, email, password = (
            _field(data, "tenant"),
            _field(data, "email"),
            data.get("password", ""),
        )
        next_path = data.get("next")
        if not slug or not email or not password:
            return _login_page(
                slug,
                email,
                _("Enter the tenant, e-mail address and password."),
                400,
                next_path=next_path,
            )
        try:
            tenant = await services.tenant_for_sign_in(db_session, slug, password[:_FORM_LIMIT])
            with tenant_scope(tenant.id):
                user = await services.authenticate(
                    db_session,
                    email=email,
                    password=password[:_FORM_LIMIT],
                    policy=login_policy(settings),
                )
        except AuthenticationFailed as exc:
            await db_session.commit()
            return _login_page(slug, email, _(exc.message), 401, next_path=next_path)
        rotate_session_id(request.scope)
        request.set_session({SESSION_TENANT_KEY: str(tenant.id), SESSION_USER_KEY: str(user.id)})
        return Redirect(path=_safe_next(next_path, f"/t/{tenant.slug}/"))

    @post("/logout", opt={BILLING_EXEMPT: True})
    async def logout(self, request: Request[Any, Any, Any]) -> Redirect:
        tenant = _request_tenant(request)
        request.clear_session()
        return Redirect(path=f"/t/{tenant.slug}/login" if tenant else "/login")

    @get("/lang/{locale:str}")
    async def switch_language(
        self, locale: FromPath[str], next: FromQuery[str | None] = None
    ) -> Redirect:
        if locale not in SUPPORTED_LOCALES:
            raise NotFoundException()
        response = Redirect(path=_safe_next(next, "/"))
        response.set_cookie(
            LANGUAGE_COOKIE,
            locale,
            max_age=int(timedelta(days=365).total_seconds()),
            httponly=True,
            samesite="lax",
        )
        return response

    @get("/t/{slug:str}/", guards=[signed_in])
    async def dashboard(
        self, request: Request[Principal, Any, Any], slug: FromPath[str], db_session: DbSession
    ) -> Template:
        principal = request.user
        if principal.tenant_slug != slug:
            raise NotFoundException()
        plants = await services.list_plants(
            db_session, visible_plant_ids(principal), current_only=True
        )
        now = utcnow()
        plant_rows = [
            {"plant": plant, "local_time": now.astimezone(ZoneInfo(plant.timezone))}
            for plant in plants
        ]
        plant_names = {plant.id: plant.name for plant in plants}
        grants = sorted(principal.grants, key=lambda g: (g.role.value, str(g.plant_id or "")))
        return Template(
            template_name="dashboard.html",
            context={
                "principal": principal,
                "grants": [
                    {"role": g.role, "plant": plant_names.get(g.plant_id) if g.plant_id else None}
                    for g in grants
                ],
                "plants": plant_rows,
            },
        )
