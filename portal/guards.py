"""Route guards: thin wrappers that ask ``tenants.access`` and answer in HTTP."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, NotFoundException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler

from infra.db import utcnow
from infra.i18n import N_
from tenants import entitlements
from tenants.access import Principal, can_access_plant, has_any_role
from tenants.models import Role

# Guards are coroutines: Litestar hands a plain function to a worker thread on every request.
Guard = Callable[[ASGIConnection, BaseRouteHandler], Awaitable[None]]

# The route opt key of the safety allow-list: routes that keep working while a tenant is
# read-only for billing (sign-in, paying, and safety functions such as check-ins and alerts).
# tests/integration/test_billing.py lists every route that carries it.
BILLING_EXEMPT = "billing_exempt"
# A tenant that stopped paying still takes its data out or has it deleted, and a worker's
# request to see or erase their personal data is answered whatever the tenant's bill says.
DATA_RIGHT = {BILLING_EXEMPT: True}
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _ensure_signed_in(connection: ASGIConnection) -> None:
    if connection.user is None:
        raise NotAuthorizedException(N_("Sign in first."))


async def signed_in(connection: ASGIConnection, _handler: BaseRouteHandler) -> None:
    _ensure_signed_in(connection)


def requires_roles(*roles: Role) -> Guard:
    async def guard(connection: ASGIConnection, handler: BaseRouteHandler) -> None:
        _ensure_signed_in(connection)
        if not has_any_role(connection.user, roles):
            raise PermissionDeniedException(N_("Your role does not allow this."))

    guard.__name__ = "requires_" + "_or_".join(role.value for role in roles)
    return guard


def ensure_plant_in_scope(principal: Principal, plant_id: uuid.UUID) -> None:
    """A plant outside the principal's scope answers like a plant that does not exist."""
    if not can_access_plant(principal, plant_id):
        raise NotFoundException(N_("Plant not found."))


async def billing_allows_writes(connection: ASGIConnection, handler: BaseRouteHandler) -> None:
    """App-wide: a tenant that is read-only for billing may read but not write, except on the
    routes marked ``opt={BILLING_EXEMPT: True}``."""
    if connection.scope.get("method") not in WRITE_METHODS or handler.opt.get(BILLING_EXEMPT):
        return
    tenant = connection.scope.get("state", {}).get("tenant")
    policy: entitlements.BillingPolicy = connection.app.state.billing
    if tenant is None or not policy.enabled:
        return
    async with connection.app.state.database.session() as session:
        status = await entitlements.refresh_tenant_status(session, policy, tenant.id, utcnow())
        await session.commit()
    entitlements.ensure_writable(status)
