"""Who may see and change which contractor.

Host users see every contractor of their tenant; EHS officers and tenant admins also review
them. A contractor user sees only the company their :class:`ContractorMember` row names, and
only its administrator edits it. Anything out of reach answers like something that does not
exist, so a contractor cannot learn which other companies are registered.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from infra.errors import NotFound
from infra.i18n import N_
from onboarding.models import ContractorMember
from tenants.access import Principal
from tenants.models import Role

REVIEWER_ROLES = frozenset({Role.EHS_OFFICER, Role.TENANT_ADMIN})
CONTRACTOR_NOT_FOUND = N_("Contractor not found.")


@dataclass(frozen=True)
class Viewer:
    user_id: uuid.UUID
    roles: frozenset[Role]
    contractor_id: uuid.UUID | None

    @property
    def is_host(self) -> bool:
        return any(role.is_host for role in self.roles)

    @property
    def is_reviewer(self) -> bool:
        return bool(self.roles & REVIEWER_ROLES)

    def can_see(self, contractor_id: uuid.UUID) -> bool:
        return self.is_host or self.contractor_id == contractor_id

    def can_edit(self, contractor_id: uuid.UUID) -> bool:
        return Role.CONTRACTOR_ADMIN in self.roles and self.contractor_id == contractor_id


async def viewer_for(session: AsyncSession, principal: Principal) -> Viewer:
    contractor_id = await session.scalar(
        select(ContractorMember.contractor_id).where(ContractorMember.user_id == principal.user_id)
    )
    return Viewer(principal.user_id, principal.roles, contractor_id)


def ensure_visible(viewer: Viewer, contractor_id: uuid.UUID) -> None:
    if not viewer.can_see(contractor_id):
        raise NotFound(CONTRACTOR_NOT_FOUND)


def ensure_editable_by(viewer: Viewer, contractor_id: uuid.UUID) -> None:
    if not viewer.can_edit(contractor_id):
        raise NotFound(CONTRACTOR_NOT_FOUND)


def ensure_reviewer(viewer: Viewer) -> None:
    if not viewer.is_reviewer:
        raise NotFound(CONTRACTOR_NOT_FOUND)
