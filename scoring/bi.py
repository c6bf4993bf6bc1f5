"""The daily push of the HQ figures to the group's BI: the tenant's previous day per plant, per
work type and per contractor, as the HQ tables show them, to the webhook in its scoring policy.

One message per tenant and day goes through the outbox under the key ``bi-daily:<day>``: a
second run of the job for the same day finds the key taken and queues nothing, and the outbox
retries a failing receiver with backoff. The figures are taken when the message is queued, so
every retry sends the same body; the request is signed when it is sent (``X-Portal-Signature``,
see :mod:`infra.notify.webhook`) and repeats the key in ``X-Portal-Delivery`` for receivers
that deduplicate.

A day is pushed once it has ended at every plant of the tenant, so the hourly job sends it
within an hour of the last plant's midnight.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from infra.i18n import DEFAULT_LOCALE, locale_scope
from infra.notify.webhook import (
    WebhookEndpoint,
    WebhookFormat,
    send_request,
    signed_json_request,
)
from infra.outbox import OutboxMessage, enqueue, register_handler
from infra.tenancy import current_tenant_id
from scoring.models import ScoringPolicy
from scoring.rollups import local_day, plant_zones
from scoring.tables import TABLES, Params

BI_TOPIC = "scoring.bi_daily"
BI_EVENT = "bi.daily_figures"
# The tables whose rows the push carries, under these names in the body.
SECTIONS = {"plants": "plants", "work_types": "work_types", "contractors": "contractors"}


def push_key(day: date) -> str:
    return f"bi-daily:{day.isoformat()}"


def day_to_push(session: Session, now: datetime) -> date | None:
    """The last day that has ended at every plant; None for a tenant without plants."""
    zones = plant_zones(session)
    if not zones:
        return None
    return min(local_day(now, zone) for zone in zones.values()) - timedelta(days=1)


def _json_value(value: Any) -> Any:
    return str(value) if isinstance(value, uuid.UUID) else value


def daily_figures(session: Session, day: date) -> dict[str, Any]:
    """The body of one day's push; labels in the default language (Chinese)."""
    params = Params(start=day, end=day + timedelta(days=1))
    with locale_scope(DEFAULT_LOCALE):
        sections = {
            section: [
                {key: _json_value(value) for key, value in row.items()}
                for row in TABLES[table].rows(session, params)
            ]
            for section, table in SECTIONS.items()
        }
    return {
        "id": push_key(day),
        "kind": "daily_figures",
        "tenant_id": str(current_tenant_id()),
        "day": day.isoformat(),
        **sections,
    }


def _policy(session: Session) -> ScoringPolicy | None:
    return session.execute(select(ScoringPolicy)).scalar_one_or_none()


def queue_daily_push(session: Session, now: datetime) -> OutboxMessage | None:
    """Queue the push of the last finished day unless it is queued already or no BI webhook is
    configured; returns the message queued now."""
    policy = _policy(session)
    if policy is None or not policy.bi_webhook_url:
        return None
    day = day_to_push(session, now)
    if day is None:
        return None
    key = push_key(day)
    # Checked first so that a re-run does not compute the day's figures again for nothing;
    # the unique key still settles two runs at once.
    if session.scalar(select(OutboxMessage.id).where(OutboxMessage.key == key)) is not None:
        return None
    return enqueue(session, topic=BI_TOPIC, payload=daily_figures(session, day), key=key)


def deliver_daily_push(session: Session, message: OutboxMessage) -> None:
    """Send one day's figures to the webhook configured now; a tenant that removed it since
    no longer wants them, and the message is settled without sending."""
    policy = _policy(session)
    if policy is None or not policy.bi_webhook_url:
        return
    endpoint = WebhookEndpoint(
        url=policy.bi_webhook_url, format=WebhookFormat.GENERIC, secret=policy.bi_webhook_secret
    )
    send_request(
        signed_json_request(endpoint, dict(message.payload), delivery=message.key, event=BI_EVENT)
    )


register_handler(BI_TOPIC, deliver_daily_push)
