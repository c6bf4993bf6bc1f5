"""Bearer tokens for phones and integrations."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from litestar import Controller, Request, delete, post
from litestar.params import JSONBody
from litestar.status_codes import HTTP_204_NO_CONTENT

from infra.errors import AuthenticationFailed
from infra.settings import Settings
from infra.tenancy import tenant_scope
from portal.dependencies import AppSettings, DbSession
from portal.guards import BILLING_EXEMPT, signed_in
from tenants import services
from tenants.access import Principal
from tenants.schemas import TokenRequest, TokenResponse


def login_policy(settings: Settings) -> services.LoginPolicy:
    return services.LoginPolicy(
        max_failures=settings.login_max_failures,
        lockout=timedelta(seconds=settings.login_lockout_seconds),
    )


class AuthController(Controller):
    path = "/api/v1/auth"
    tags = ["auth"]  # noqa: RUF012

    @post(
        "/token",
        summary="Exchange credentials for a bearer token",
        description=(
            "Checks the e-mail address and password within the named tenant and returns a "
            "bearer token for the `Authorization: Bearer …` header. Every failure answers the "
            "same 401, whether the tenant, the address or the password was wrong or the account "
            "is temporarily locked after repeated failures. Rate limited per client address."
        ),
        status_code=200,
        opt={BILLING_EXEMPT: True},
    )
    async def issue_token(
        self, data: JSONBody[TokenRequest], db_session: DbSession, settings: AppSettings
    ) -> TokenResponse:
        tenant = await services.tenant_for_sign_in(db_session, data.tenant, data.password)
        with tenant_scope(tenant.id):
            try:
                user = await services.authenticate(
                    db_session,
                    email=data.email,
                    password=data.password,
                    policy=login_policy(settings),
                )
            except AuthenticationFailed:
                await db_session.commit()
                raise
            token, record = await services.issue_api_token(
                db_session,
                user,
                name=data.name,
                ttl=timedelta(seconds=settings.api_token_ttl_seconds),
            )
        return TokenResponse(
            access_token=token,
            token_type="bearer",  # noqa: S106 - the OAuth token type, not a secret
            expires_at=record.expires_at,
        )

    @delete(
        "/token",
        summary="Revoke the token used for this request",
        guards=[signed_in],
        status_code=HTTP_204_NO_CONTENT,
        opt={BILLING_EXEMPT: True},
    )
    async def revoke_token(
        self, request: Request[Principal, Any, Any], db_session: DbSession
    ) -> None:
        principal = request.user
        if principal.via_token_id is not None:
            await services.revoke_api_token(
                db_session, principal.via_token_id, actor_id=principal.user_id
            )
