"""What every page module does with a submitted form: read its fields within limits, turn it
into a domain schema with the field named when it does not fit, and treat a malformed id or
another tenant's address as a page that does not exist."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
from litestar.datastructures import UploadFile
from litestar.exceptions import NotFoundException

from infra.errors import DomainError
from infra.i18n import N_
from portal.errors import problem_from_validation_message
from tenants.access import Principal
from tenants.models import Role

FORM_LIMIT = 500
INVALID_FORM = N_("Check the highlighted fields.")


def field_text(data: dict[str, Any], name: str, limit: int = FORM_LIMIT) -> str:
    value = data.get(name, "")
    if isinstance(value, list):
        value = value[0] if value else ""
    return value[:limit].strip() if isinstance(value, str) else ""


def field_texts(data: dict[str, Any], name: str) -> list[str]:
    value = data.get(name, [])
    values = value if isinstance(value, list) else [value]
    return [item[:FORM_LIMIT].strip() for item in values if isinstance(item, str) and item]


def page_id(value: str | None) -> uuid.UUID:
    """A malformed id in a page address is a page that does not exist."""
    try:
        return uuid.UUID((value or "")[:64])
    except ValueError:
        raise NotFoundException() from None


def ensure_own_tenant(principal: Principal, slug: str) -> None:
    if principal.tenant_slug != slug:
        raise NotFoundException()


def ensure_tenant_admin(principal: Principal, slug: str) -> None:
    """The tenant's settings pages are its administrators'; anyone else is told they do not
    exist."""
    ensure_own_tenant(principal, slug)
    if Role.TENANT_ADMIN not in principal.roles:
        raise NotFoundException()


def convert(payload: dict[str, Any], schema: type[Any]) -> Any:
    try:
        return msgspec.convert(payload, schema)
    except msgspec.ValidationError as exc:
        problem = problem_from_validation_message(str(exc), None)
        raise DomainError(INVALID_FORM, [problem]) from None


async def close_files(data: dict[str, Any]) -> None:
    for value in data.values():
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, UploadFile):
                await item.close()
