"""Tenant administration of platform services: outbox messages that could not be delivered."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.status_codes import HTTP_202_ACCEPTED

from infra import outbox
from portal.dependencies import DbSession
from portal.guards import requires_roles
from portal.params import IdParam, parse_id
from tenants.access import Principal
from tenants.models import Role


class OutboxMessageRead(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    topic: str
    key: str
    payload: dict[str, Any]
    status: str
    attempts: int
    last_error: str | None
    next_attempt_at: datetime
    created_at: datetime
    updated_at: datetime


def outbox_message_read(message: outbox.OutboxMessage) -> OutboxMessageRead:
    return OutboxMessageRead(
        id=message.id,
        topic=message.topic,
        key=message.key,
        payload=message.payload,
        status=message.status,
        attempts=message.attempts,
        last_error=message.last_error,
        next_attempt_at=message.next_attempt_at,
        created_at=message.created_at,
        updated_at=message.updated_at,
    )


class OutboxAdminController(Controller):
    path = "/api/v1/admin/outbox"
    tags = ["admin"]  # noqa: RUF012
    guards = [requires_roles(Role.TENANT_ADMIN)]  # noqa: RUF012

    @get(
        "/failed",
        summary="Messages that could not be delivered",
        description="Notifications and other outbox messages that used up their attempts, "
        "newest first, with the last error.",
    )
    async def list_failed(self, db_session: DbSession) -> list[OutboxMessageRead]:
        return [outbox_message_read(m) for m in await outbox.failed_messages(db_session)]

    @post(
        "/{message_id:str}/retry",
        summary="Send a failed message again",
        description="Starts a fresh round of attempts at the next relay pass. Only failed "
        "messages can be retried (409 otherwise); another tenant's id answers 404.",
        status_code=HTTP_202_ACCEPTED,
    )
    async def retry(
        self, request: Request[Principal, Any, Any], db_session: DbSession, message_id: IdParam
    ) -> OutboxMessageRead:
        message = await outbox.retry_failed(
            db_session, parse_id(message_id, "message_id"), actor_id=request.user.user_id
        )
        return outbox_message_read(message)
