"""Route guards: thin wrappers that ask ``tenants.access`` and answer in HTTP."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, NotFoundException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler

from infra.i18n import N_
from tenants.access import Principal, can_access_plant, has_any_role
from tenants.models import Role

Guard = Callable[[ASGIConnection, BaseRouteHandler], None]


def signed_in(connection: ASGIConnection, _handler: BaseRouteHandler) -> None:
    if connection.user is None:
        raise NotAuthorizedException(N_("Sign in first."))


def requires_roles(*roles: Role) -> Guard:
    def guard(connection: ASGIConnection, handler: BaseRouteHandler) -> None:
        signed_in(connection, handler)
        if not has_any_role(connection.user, roles):
            raise PermissionDeniedException(N_("Your role does not allow this."))

    guard.__name__ = "requires_" + "_or_".join(role.value for role in roles)
    return guard


def ensure_plant_in_scope(principal: Principal, plant_id: uuid.UUID) -> None:
    """A plant outside the principal's scope answers like a plant that does not exist."""
    if not can_access_plant(principal, plant_id):
        raise NotFoundException(N_("Plant not found."))
