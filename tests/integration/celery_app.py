"""The Celery app as test workers run it (`celery -A tests.integration.celery_app worker`): the
product's app plus tasks and outbox handlers that report what they saw."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from infra.outbox import OutboxMessage, register_handler
from infra.tasks import app, record_effect, tenant_task
from tenants.models import Plant

__all__ = ["app"]


@tenant_task("tests.visible_plants")
def visible_plants(session: Session) -> dict[str, Any]:
    """What the task can see: through the ORM filter, and in raw SQL, where only row-level
    security stands between it and other tenants' rows."""
    codes = sorted(session.execute(select(Plant.code)).scalars())
    raw_count = session.execute(text("SELECT count(*) FROM plants")).scalar_one()
    orm_count = session.execute(select(func.count()).select_from(Plant)).scalar_one()
    return {"codes": codes, "raw_count": raw_count, "orm_count": orm_count}


@tenant_task("tests.slow_effect")
def slow_effect(session: Session, *, key: str, seconds: float, started_log: str) -> bool:
    """Claims its effect, notes outside the transaction that it started, then sleeps before
    the commit: a worker killed during the sleep leaves no effect behind."""
    claimed = record_effect(session, key=key, task="tests.slow_effect")
    with Path(started_log).open("a") as log:
        log.write(f"{key}\n")
    time.sleep(seconds)
    return claimed


def _record_once(session: Session, message: OutboxMessage) -> None:
    record_effect(session, key=message.key, task=message.topic)


def _flaky(session: Session, message: OutboxMessage) -> None:
    if message.attempts < message.payload["fail_times"]:
        raise RuntimeError(f"flaky failure on attempt {message.attempts + 1}")
    record_effect(session, key=message.key, task=message.topic)


def _broken(_session: Session, message: OutboxMessage) -> None:
    raise RuntimeError(f"the receiver for {message.key} is down")


class _Refused(Exception):
    retryable = False


def _refused(_session: Session, message: OutboxMessage) -> None:
    raise _Refused(f"the receiver refused {message.key} for good")


register_handler("tests.effect", _record_once)
register_handler("tests.refused", _refused)
register_handler("tests.flaky", _flaky)
register_handler("tests.broken", _broken)
