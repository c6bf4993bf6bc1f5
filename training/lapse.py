"""The daily watch over induction signatures: reminders before an induction lapses.

For each worker and each current (published, not retired) induction, only the latest signature
counts — the one valid longest. A worker who took the induction again has a newer signature, and
the older one is not reminded about. On each of the tenant's reminder days before the latest
signature's validity ends (30, 7 and 1 unless the tenant set others; the days are admission's,
:func:`onboarding.expiry.reminder_days`), the worker (on their own login, when they have one)
and their company's administrators are reminded, once per threshold: the idempotency key names
the signature, its validity end and the threshold.

The watch only reminds. That a lapsed induction stops counting is already true where the
services read ``valid_until``; nothing is marked here.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import Select, and_, func, select
from sqlalchemy.orm import Session

from infra.notify import Notification, NotificationKind
from infra.tasks import record_effect
from infra.tenancy import current_tenant_id
from onboarding.changes import worker_and_admins
from onboarding.expiry import reminder_days, reminder_due
from onboarding.models import Contractor, Worker
from onboarding.states import ContractorState, ItemState
from tenants.models import Plant
from tenants.notifications import enqueue_notification
from training.models import Induction, InductionSignature, InductionVersion

LAPSE_TASK = "training.lapse_watch"
# Workers of these companies may not work anywhere; reminding them to re-train is noise.
UNWATCHED_CONTRACTORS = (ContractorState.REJECTED.value, ContractorState.BLACKLISTED.value)


@dataclass
class LapseReport:
    reminders: int = 0
    notifications: int = 0


@dataclass(frozen=True)
class Lapsing:
    """The latest signature of one worker for one induction, with what the reminder names."""

    signature: InductionSignature
    worker: Worker
    contractor: Contractor
    title: str
    plant_name: str


def _latest_per_worker_and_induction() -> Any:
    """Per worker and induction, the end of the longest validity any signature gives."""
    return (
        select(
            InductionSignature.worker_id.label("worker_id"),
            InductionSignature.induction_id.label("induction_id"),
            func.max(InductionSignature.valid_until).label("valid_until"),
        )
        .group_by(InductionSignature.worker_id, InductionSignature.induction_id)
        .subquery()
    )


def signatures_lapsing_between(
    first: date, last: date
) -> Select[tuple[InductionSignature, Worker, Contractor, Induction, InductionVersion, Plant]]:
    """Latest signatures of current inductions whose validity ends between ``first`` and
    ``last`` (inclusive), with the worker, the company, the induction, its current version and
    its plant. Two signatures ending on the same day both appear; callers keep one."""
    latest = _latest_per_worker_and_induction()
    return (
        select(InductionSignature, Worker, Contractor, Induction, InductionVersion, Plant)
        .join(
            latest,
            and_(
                latest.c.worker_id == InductionSignature.worker_id,
                latest.c.induction_id == InductionSignature.induction_id,
                latest.c.valid_until == InductionSignature.valid_until,
            ),
        )
        .join(Induction, Induction.id == InductionSignature.induction_id)
        .join(
            InductionVersion,
            and_(
                InductionVersion.induction_id == Induction.id,
                InductionVersion.version == Induction.current_version,
            ),
        )
        .join(Plant, Plant.id == Induction.plant_id)
        .join(Worker, Worker.id == InductionSignature.worker_id)
        .join(Contractor, Contractor.id == Worker.contractor_id)
        .where(
            InductionSignature.valid_until >= first,
            InductionSignature.valid_until <= last,
            Induction.current_version > 0,
            Induction.retired_at.is_(None),
            Worker.state != ItemState.REJECTED.value,
            Contractor.state.not_in(UNWATCHED_CONTRACTORS),
        )
    )


def lapsing_signatures(session: Session, today: date, days: Sequence[int]) -> list[Lapsing]:
    """The latest signature per worker and induction ending within the reminder horizon (the
    longest of ``days``), and still required of the worker (an induction for a work type their
    company no longer does is left out). Ordered by validity end, then worker."""
    horizon = today + timedelta(days=max(days))
    rows = session.execute(
        signatures_lapsing_between(today + timedelta(days=1), horizon).order_by(
            InductionSignature.valid_until,
            InductionSignature.worker_id,
            InductionSignature.induction_id,
            InductionSignature.signed_at.desc(),
            InductionSignature.id,
        )
    ).all()
    found: dict[tuple[uuid.UUID, uuid.UUID], Lapsing] = {}
    for signature, worker, contractor, induction, version, plant in rows:
        pair = (signature.worker_id, signature.induction_id)
        if pair in found:
            continue  # signed twice on one day: the later signature stands for both
        if induction.work_type is not None and induction.work_type not in contractor.work_types:
            continue
        found[pair] = Lapsing(
            signature=signature,
            worker=worker,
            contractor=contractor,
            title=version.content["content"]["title"],
            plant_name=plant.name,
        )
    return list(found.values())


def reminder_recipients(session: Session, worker: Worker) -> list[uuid.UUID]:
    """The worker's own active login, if any, then the company's administrators; each once."""
    return [user.id for user in worker_and_admins(session, worker)]


def _remind(session: Session, item: Lapsing, *, days_left: int, threshold: int) -> int | None:
    """Queue the reminder for the threshold once: how many notifications it queued, or None
    when it had been sent already."""
    signature = item.signature
    key = f"training:lapsing:{signature.id}:{signature.valid_until.isoformat()}:{threshold}"
    if not record_effect(session, key=key, task=LAPSE_TASK):
        return None
    context: dict[str, Any] = {
        "worker_name": item.worker.name,
        "contractor_name": item.contractor.name,
        "induction": item.title,
        "plant_name": item.plant_name,
        "valid_until": signature.valid_until,
        "days_left": days_left,
    }
    recipients = reminder_recipients(session, item.worker)
    for user_id in recipients:
        enqueue_notification(
            session,
            Notification(
                tenant_id=current_tenant_id(),
                kind=NotificationKind.INDUCTION_LAPSING,
                context=context,
                idempotency_key=f"{key}:{user_id}",
                recipient=user_id,
            ),
        )
    return len(recipients)


def watch_lapses(session: Session, today: date) -> LapseReport:
    """One pass of the watch for the current tenant, as of ``today`` on the plant's calendar.
    Idempotent: a second pass the same day queues nothing, and a pass after missed days still
    sends the reminder then due."""
    report = LapseReport()
    days = reminder_days(session)
    for item in lapsing_signatures(session, today, days):
        days_left = (item.signature.valid_until - today).days
        threshold = reminder_due(days_left, days)
        if threshold is None:
            continue
        queued = _remind(session, item, days_left=days_left, threshold=threshold)
        if queued is not None:
            report.reminders += 1
            report.notifications += queued
    return report
