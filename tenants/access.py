"""Who is acting, and what their memberships let them reach. Plain functions, no HTTP."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from tenants.models import Role


@dataclass(frozen=True)
class Grant:
    role: Role
    plant_id: uuid.UUID | None


@dataclass(frozen=True)
class Principal:
    tenant_id: uuid.UUID
    tenant_slug: str
    tenant_name: str
    user_id: uuid.UUID
    name: str
    email: str
    locale: str
    grants: frozenset[Grant]
    via_token_id: uuid.UUID | None = None

    @property
    def roles(self) -> frozenset[Role]:
        return frozenset(grant.role for grant in self.grants)


def has_any_role(principal: Principal, roles: Iterable[Role]) -> bool:
    wanted = set(roles)
    return any(grant.role in wanted for grant in principal.grants)


def visible_plant_ids(principal: Principal) -> frozenset[uuid.UUID] | None:
    """The plants the principal may see; ``None`` means every plant of the tenant."""
    if any(grant.plant_id is None for grant in principal.grants):
        return None
    return frozenset(grant.plant_id for grant in principal.grants if grant.plant_id is not None)


def can_access_plant(principal: Principal, plant_id: uuid.UUID) -> bool:
    visible = visible_plant_ids(principal)
    return visible is None or plant_id in visible


def has_role_for_plant(principal: Principal, roles: Iterable[Role], plant_id: uuid.UUID) -> bool:
    wanted = set(roles)
    return any(
        grant.role in wanted and grant.plant_id in (None, plant_id) for grant in principal.grants
    )
