"""Path parameters that carry ids: parsed here so a malformed id names the field and the rule
instead of falling through to "no such route"."""

from __future__ import annotations

import uuid
from typing import Annotated

from litestar.params import Parameter

from infra.errors import InvalidInput
from infra.i18n import N_

IdParam = Annotated[str, Parameter(description="An opaque id (UUID)", max_length=64)]


def parse_id(value: str, field_name: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError as exc:
        raise InvalidInput(field_name, "uuid", N_("Must be a UUID.")) from exc
