"""Resolving who is asking, and for which tenant, once per request.

The web UI authenticates with a server-side session cookie; the JSON API (``/api/``) only with
bearer tokens, so CSRF can be left to the web forms. The tenant comes from the principal, and a
``/t/{slug}`` path or a ``{slug}.<base domain>`` host that names another tenant makes the request
anonymous: another tenant's pages answer as if they did not exist.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from litestar import Litestar
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send

from infra.cache import ExpiringCache
from infra.db import Database
from infra.i18n import locale_scope, negotiate_locale
from infra.settings import Settings
from infra.tenancy import tenant_scope
from onboarding.models import ContractorMember, Worker
from tenants import services
from tenants.access import Principal
from tenants.models import ApiToken, Membership, Tenant, User

API_PREFIX = "/api/"
TENANT_PATH_PREFIX = "/t/"
LANGUAGE_COOKIE = "portal_lang"
SESSION_TENANT_KEY = "tenant_id"
SESSION_USER_KEY = "user_id"


@dataclass(frozen=True)
class RequestIdentity:
    tenant: Tenant | None
    principal: Principal | None


IdentityCache = ExpiringCache[RequestIdentity]


def identity_cache(settings: Settings) -> IdentityCache:
    """Who a token or a session cookie stands for, remembered for a moment: resolving it takes
    more database round trips than most requests' own work. A revoked token, a removed role or a
    disabled user counts at once in the process that made the change, and within
    ``PORTAL_IDENTITY_CACHE_SECONDS`` everywhere else."""
    return ExpiringCache(
        ttl=settings.identity_cache_seconds, watched=(Tenant, User, Membership, ApiToken)
    )


CompanyCache = ExpiringCache[tuple[uuid.UUID | None, uuid.UUID | None]]


def company_cache(settings: Settings) -> CompanyCache:
    """The company and the worker record behind a user, by tenant and user, remembered as
    briefly as :func:`identity_cache` and dropped by the same kind of change."""
    return ExpiringCache(ttl=settings.identity_cache_seconds, watched=(ContractorMember, Worker))


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return None


def _cookie(scope: Scope, name: str) -> str | None:
    raw = _header(scope, b"cookie")
    if not raw:
        return None
    for part in raw.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None


def tenant_slug_from_request(scope: Scope, settings: Settings) -> str | None:
    path: str = scope.get("path", "")
    if path.startswith(TENANT_PATH_PREFIX):
        slug = path[len(TENANT_PATH_PREFIX) :].split("/", 1)[0]
        return slug or None
    if settings.base_domain:
        host = (_header(scope, b"host") or "").split(":", 1)[0].lower()
        suffix = "." + settings.base_domain.lower()
        if host.endswith(suffix):
            return host[: -len(suffix)] or None
    return None


def _as_uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except (TypeError, ValueError):
        return None


async def _from_bearer(database: Database, authorization: str) -> RequestIdentity:
    scheme, _, token = authorization.partition(" ")
    parsed = services.parse_api_token(token.strip()) if scheme.lower() == "bearer" else None
    if parsed is None:
        return RequestIdentity(None, None)
    tenant_id, secret = parsed
    async with database.session() as session:
        tenant = await services.tenant_by_id(session, tenant_id)
        if tenant is None:
            return RequestIdentity(None, None)
        with tenant_scope(tenant.id):
            record = await services.resolve_api_token(session, secret)
            principal = (
                await services.load_principal(session, tenant, record.user_id, token_id=record.id)
                if record is not None
                else None
            )
            await session.commit()
    return RequestIdentity(tenant if principal else None, principal)


async def _from_session(
    database: Database, session_data: dict[str, Any], wanted_slug: str | None
) -> RequestIdentity:
    tenant_id = _as_uuid(session_data.get(SESSION_TENANT_KEY))
    user_id = _as_uuid(session_data.get(SESSION_USER_KEY))
    async with database.session() as session:
        if tenant_id is None or user_id is None:
            tenant = await services.tenant_by_slug(session, wanted_slug) if wanted_slug else None
            return RequestIdentity(tenant, None)
        tenant = await services.tenant_by_id(session, tenant_id)
        if tenant is None:
            return RequestIdentity(None, None)
        if wanted_slug is not None and wanted_slug != tenant.slug:
            other = await services.tenant_by_slug(session, wanted_slug)
            return RequestIdentity(other, None)
        with tenant_scope(tenant.id):
            principal = await services.load_principal(session, tenant, user_id)
    return RequestIdentity(tenant, principal)


async def identify(
    scope: Scope, database: Database, settings: Settings, cache: IdentityCache
) -> RequestIdentity:
    path: str = scope.get("path", "")
    if path.startswith(API_PREFIX):
        authorization = _header(scope, b"authorization")
        if not authorization:
            return RequestIdentity(None, None)
        return await cache.get_or_load(
            ("bearer", authorization), lambda: _from_bearer(database, authorization)
        )
    session_data = scope.get("session") or {}
    wanted_slug = tenant_slug_from_request(scope, settings)
    key = (
        "session",
        session_data.get(SESSION_TENANT_KEY),
        session_data.get(SESSION_USER_KEY),
        wanted_slug,
    )
    return await cache.get_or_load(key, lambda: _from_session(database, session_data, wanted_slug))


class IdentityMiddleware(ASGIMiddleware):
    """Sets ``request.user`` (a :class:`Principal` or ``None``), the tenant scope and the
    language for everything downstream: handlers, dependencies and error pages."""

    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        app = Litestar.from_scope(scope)
        settings: Settings = app.state.settings
        identity = await identify(scope, app.state.database, settings, app.state.identities)
        scope["user"] = identity.principal
        scope["auth"] = identity.principal.via_token_id if identity.principal else None
        scope.setdefault("state", {})["tenant"] = identity.tenant
        locale = negotiate_locale(
            explicit=_cookie(scope, LANGUAGE_COOKIE),
            user_locale=identity.principal.locale if identity.principal else None,
            accept_language=_header(scope, b"accept-language"),
        )
        with locale_scope(locale):
            if identity.tenant is None:
                await next_app(scope, receive, send)
                return
            with tenant_scope(identity.tenant.id):
                await next_app(scope, receive, send)
