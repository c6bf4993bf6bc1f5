"""The transactional outbox: messages written in the same transaction as the change that causes
them, and delivered by Celery afterwards.

A message is a row first. :func:`enqueue` adds it in the caller's transaction, so a rolled-back
change sends nothing and a committed one cannot be forgotten, whatever the broker is doing. The
``outbox.relay`` beat job walks the tenants one by one (row-level security lets the application
role see one tenant per transaction) and publishes a ``outbox.deliver`` task for each due
message. A message the broker refused stays due for the next pass; one that was published but
never delivered (a broker restart loses its queue) is due again after the redispatch interval.

Delivery locks the row and runs the topic's handler in the same transaction that marks the
message delivered, so a handler's database effects happen exactly once. Effects outside the
database (an e-mail, a webhook) happen at least once; handlers pass ``message.key`` on where the
receiver can deduplicate. A failing handler is retried with exponential backoff; after the last
attempt the message is ``failed`` and stays listed for the tenant's administrators, who can
send it again.
"""

from __future__ import annotations

import enum
import json
import logging
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Index,
    String,
    Text,
    UniqueConstraint,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, Session, mapped_column

from infra import audit
from infra.db import dialect_insert, new_id, utcnow
from infra.errors import Conflict, NotFound
from infra.i18n import N_
from infra.tasks import (
    app,
    registered_tenant_ids,
    tenant_task,
    worker_database,
    worker_settings,
)
from infra.tenancy import TenantOwned, current_tenant_id, tenant_scope

logger = logging.getLogger(__name__)

# Later attempts of a long outage would otherwise wait for days.
MAX_BACKOFF_SECONDS = 3600.0
# Messages one relay pass publishes per tenant; the rest wait for the next pass.
RELAY_BATCH = 500
# A broker that is down should fail the pass quickly; a connection the pool kept across a
# broker restart fails once and then reconnects.
PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2}
MAX_ERROR_LENGTH = 2000

# The tenant registry lives in tenants/, above infra; the relay needs only its ids.


class OutboxStatus(enum.StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"
    # Withdrawn on purpose before delivery (``last_error`` says why): kept in the tenant's
    # history, never sent, not a failure anyone is alerted to.
    CANCELLED = "cancelled"


class OutboxMessage(TenantOwned):
    __tablename__ = "outbox_messages"
    __table_args__ = (
        UniqueConstraint("tenant_id", "key"),
        CheckConstraint(
            "status IN (" + ", ".join(f"'{status.value}'" for status in OutboxStatus) + ")",
            name="status",
        ),
        Index("ix_outbox_messages_due", "tenant_id", "status", "next_attempt_at"),
    )

    topic: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    key: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default=OutboxStatus.PENDING.value)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime]
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None]


Handler = Callable[[Session, OutboxMessage], None]
_handlers: dict[str, Handler] = {}


def register_handler(topic: str, handler: Handler) -> None:
    """Name the function that delivers a topic's messages.

    It runs inside the message's tenant scope with the delivery's session, and must not commit:
    its database writes commit together with the message's ``delivered`` mark, or not at all.
    Raising counts as a failed attempt. The module calling this must be in
    ``infra.tasks.TASK_MODULES`` so that every worker has registered it.
    """
    existing = _handlers.get(topic)
    if existing is not None and existing is not handler:
        raise ValueError(f"outbox topic {topic!r} already has a handler: {existing!r}")
    _handlers[topic] = handler


def enqueue(session: Session, *, topic: str, payload: Mapping[str, Any], key: str) -> OutboxMessage:
    """Queue a message for the current tenant in the caller's transaction.

    ``key`` makes enqueueing idempotent: a key already queued for this tenant returns the message
    queued first and adds nothing.
    """
    now = utcnow()
    session.execute(
        dialect_insert(session, OutboxMessage)
        .values(
            id=new_id(),
            tenant_id=current_tenant_id(),
            topic=topic,
            payload=json.loads(audit.canonical_json(dict(payload))),
            key=key,
            status=OutboxStatus.PENDING.value,
            attempts=0,
            next_attempt_at=now,
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=["tenant_id", "key"])
    )
    return session.execute(select(OutboxMessage).where(OutboxMessage.key == key)).scalar_one()


async def enqueue_async(
    session: AsyncSession, *, topic: str, payload: Mapping[str, Any], key: str
) -> OutboxMessage:
    """The async form of :func:`enqueue`, for request handlers."""
    return await session.run_sync(
        lambda sync_session: enqueue(sync_session, topic=topic, payload=payload, key=key)
    )


def backoff_delay(failures: int, base_seconds: float) -> timedelta:
    """The wait after the ``failures``-th failed attempt: base, 2×base, 4×base … capped."""
    if failures < 1:
        raise ValueError("backoff follows a failure")
    return timedelta(seconds=min(base_seconds * 2 ** (failures - 1), MAX_BACKOFF_SECONDS))


def _publish(message: OutboxMessage) -> None:
    deliver_outbox_message.apply_async(
        kwargs={
            "tenant_id": str(message.tenant_id),
            "message_id": str(message.id),
            "attempt": message.attempts,
        },
        retry=True,
        retry_policy=PUBLISH_RETRY_POLICY,
    )


def dispatch_due(
    session: Session, publish: Callable[[OutboxMessage], None] = _publish
) -> tuple[int, bool]:
    """Publish the current tenant's due messages; how many went out, and whether the broker
    took every one it was offered.

    Each published message is due again only after the redispatch interval, in case the broker
    loses it. The rows stay locked until the caller commits, so a concurrent relay skips them
    and a delivery waits for the new due time to be written.
    """
    now = utcnow()
    redispatch = timedelta(seconds=worker_settings().outbox_redispatch_seconds)
    due = (
        session.execute(
            select(OutboxMessage)
            .where(
                OutboxMessage.status == OutboxStatus.PENDING.value,
                OutboxMessage.next_attempt_at <= now,
            )
            .order_by(OutboxMessage.next_attempt_at)
            .limit(RELAY_BATCH)
            .with_for_update(skip_locked=True)
        )
        .scalars()
        .all()
    )
    for published, message in enumerate(due):
        try:
            publish(message)
        except Exception:
            logger.warning(
                "the broker refused outbox messages; %d stay pending for the next pass",
                len(due) - published,
                exc_info=True,
            )
            return published, False
        message.next_attempt_at = now + redispatch
    return len(due), True


@app.task(name="outbox.relay")
def relay_outbox() -> int:
    """Publish every tenant's due messages, tenant by tenant; how many went out."""
    database = worker_database()
    with database.sync_session() as session:
        tenant_ids = registered_tenant_ids(session)
    total = 0
    for tenant_id in tenant_ids:
        with tenant_scope(tenant_id), database.sync_session() as session:
            published, broker_took_all = dispatch_due(session)
            session.commit()
        total += published
        if not broker_took_all:
            break
    return total


def _locked_message(session: Session, message_id: uuid.UUID) -> OutboxMessage | None:
    return session.execute(
        select(OutboxMessage).where(OutboxMessage.id == message_id).with_for_update()
    ).scalar_one_or_none()


def _record_failure(
    session: Session, message_id: uuid.UUID, attempt: int, error: str, *, permanent: bool
) -> None:
    message = _locked_message(session, message_id)
    if message is None or message.status != OutboxStatus.PENDING or message.attempts != attempt:
        return
    settings = worker_settings()
    message.attempts += 1
    message.last_error = error[:MAX_ERROR_LENGTH]
    if permanent or message.attempts >= settings.outbox_max_attempts:
        message.status = OutboxStatus.FAILED.value
        logger.error(
            "outbox message %s (%s) failed for good after %d attempts: %s",
            message.id,
            message.topic,
            message.attempts,
            message.last_error,
        )
    else:
        message.next_attempt_at = utcnow() + backoff_delay(
            message.attempts, settings.outbox_backoff_seconds
        )


@tenant_task("outbox.deliver")
def deliver_outbox_message(session: Session, *, message_id: str, attempt: int) -> None:
    """Run the handler for one message and mark it delivered, or count the failed attempt.

    ``attempt`` is the attempt count the relay saw; a message that has moved on since (delivered,
    failed, or retried after a failure) makes this a duplicate, and it does nothing.
    """
    parsed_id = uuid.UUID(message_id)
    message = _locked_message(session, parsed_id)
    if message is None or message.status != OutboxStatus.PENDING or message.attempts != attempt:
        return
    try:
        handler = _handlers.get(message.topic)
        if handler is None:
            raise LookupError(f"no handler is registered for outbox topic {message.topic!r}")
        handler(session, message)
        session.flush()
    except Exception as exc:
        logger.warning("outbox message %s (%s) failed", message_id, message.topic, exc_info=True)
        error = f"{type(exc).__name__}: {exc}"
        # A handler says a failure will not heal by waiting (a 4xx from a webhook, an address
        # that does not exist) by raising an exception with ``retryable = False``; retrying it
        # for hours would only hide it from the tenant admin's failed list.
        permanent = getattr(exc, "retryable", True) is False
        # The handler's writes go; the failed attempt is counted in a fresh transaction.
        session.rollback()
        _record_failure(session, parsed_id, attempt, error, permanent=permanent)
        return
    message.status = OutboxStatus.DELIVERED.value
    message.delivered_at = utcnow()


def cancel(message: OutboxMessage, reason: str) -> None:
    """Withdraw an undelivered message for good (the caller holds its row lock): a delivery
    already published finds it no longer pending, and :func:`retry_failed` refuses it."""
    if message.status == OutboxStatus.DELIVERED:
        raise ValueError(f"outbox message {message.id} is delivered already")
    message.status = OutboxStatus.CANCELLED.value
    message.last_error = reason[:MAX_ERROR_LENGTH]


async def failed_messages(session: AsyncSession, *, limit: int = 200) -> list[OutboxMessage]:
    """The current tenant's messages that exhausted their attempts, newest first."""
    return list(
        (
            await session.execute(
                select(OutboxMessage)
                .where(OutboxMessage.status == OutboxStatus.FAILED.value)
                .order_by(OutboxMessage.updated_at.desc())
                .limit(limit)
            )
        ).scalars()
    )


async def retry_failed(
    session: AsyncSession, message_id: uuid.UUID, *, actor_id: uuid.UUID | None = None
) -> OutboxMessage:
    """Give a failed message a fresh round of attempts, starting at the next relay pass."""
    message = (
        await session.execute(
            select(OutboxMessage).where(OutboxMessage.id == message_id).with_for_update()
        )
    ).scalar_one_or_none()
    if message is None:
        raise NotFound(N_("Outbox message not found."))
    if message.status == OutboxStatus.CANCELLED:
        raise Conflict("status", "cancelled", N_("A cancelled message is not sent again."))
    if message.status != OutboxStatus.FAILED:
        raise Conflict("status", "failed", N_("Only a failed message can be sent again."))
    message.status = OutboxStatus.PENDING.value
    message.attempts = 0
    message.next_attempt_at = utcnow()
    await audit.record(
        session,
        action="outbox.retried",
        subject_type="outbox_message",
        subject_id=message.id,
        payload={"topic": message.topic, "key": message.key},
        actor_id=actor_id,
    )
    return message
