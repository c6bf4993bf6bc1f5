"""The daily expiry watch over company documents and workers' certificates.

For each document or certificate that is pending or verified and expires within the longest
reminder horizon:

* On each of the tenant's reminder days before it expires (30, 7 and 1 unless the tenant set
  others, see :func:`reminder_days`), the company's administrators are reminded. Each reminder
  has an idempotency key of the item, its expiry date and the threshold, so it goes out once
  however often the watch runs, and a watch that missed a day still sends the reminder that was
  due (a reminder crossed late is better than none). Renewing an item (a new expiry date) starts
  its reminders afresh.
* On its expiry date the item is marked expired, and a required company document that expires
  suspends an admitted company, with a ledger entry and a notice to its administrators.

Everything the watch does is idempotent, so running it more often than daily, or again after a
crash, changes nothing twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from infra.i18n import N_, gettext, locale_scope
from infra.notify import Notification, NotificationKind
from infra.tasks import record_effect
from infra.tenancy import current_tenant_id
from onboarding.catalogue import (
    CERTIFICATE_LABELS,
    DOCUMENT_LABELS,
    REQUIRED_DOCUMENTS,
    CertificateKind,
    DocumentKind,
)
from onboarding.changes import (
    Wording,
    change_contractor_state,
    change_item_state,
    contractor_admins,
    notify_decision,
)
from onboarding.models import (
    DEFAULT_REMINDER_DAYS,
    Certificate,
    Contractor,
    ContractorDocument,
    OnboardingSettings,
    Worker,
)
from onboarding.states import ContractorAction, ContractorState, ItemAction, ItemState
from tenants.notifications import enqueue_notification

EXPIRY_TASK = "onboarding.expiry_watch"
WATCHED_STATES = (ItemState.PENDING.value, ItemState.VERIFIED.value)
# A rejected or blacklisted company works nowhere; reminding it of expiring papers is noise.
UNWATCHED_CONTRACTORS = (ContractorState.REJECTED.value, ContractorState.BLACKLISTED.value)


def reminder_days(session: Session) -> tuple[int, ...]:
    """The tenant's reminder days, longest first: its setting, or 30, 7 and 1 when never set.
    The lapse watch over inductions uses the same days."""
    days = session.scalar(select(OnboardingSettings.reminder_days))
    return tuple(days) if days else DEFAULT_REMINDER_DAYS


def reminder_due(days_left: int, days: Sequence[int] = DEFAULT_REMINDER_DAYS) -> int | None:
    """The reminder threshold the item has reached: the smallest of ``days`` that is not below
    the days left, or None when it is further away (or already expired)."""
    if days_left < 1:
        return None
    reached = [threshold for threshold in days if days_left <= threshold]
    return min(reached) if reached else None


@dataclass
class ExpiryReport:
    reminders: int = 0
    expired_documents: int = 0
    expired_certificates: int = 0
    suspended_contractors: int = 0


def _remind(
    session: Session,
    contractor: Contractor,
    *,
    subject: str,
    item_id: Any,
    label: str,
    number: str,
    expires_on: date,
    days_left: int,
    threshold: int,
    worker_name: str | None = None,
) -> int:
    """Queue the reminder for the threshold once; 1 if it was queued now, 0 if it had been."""
    key = f"onboarding:expiring:{subject}:{item_id}:{expires_on.isoformat()}:{threshold}"
    if not record_effect(session, key=key, task=EXPIRY_TASK):
        return 0
    for user in contractor_admins(session, contractor.id):
        with locale_scope(user.locale):
            context: dict[str, Any] = {
                "contractor_name": contractor.name,
                "certificate": gettext(label),
                "certificate_number": number,
                "expires_on": expires_on,
                "days_left": days_left,
            }
        if worker_name is not None:
            context["worker_name"] = worker_name
        enqueue_notification(
            session,
            Notification(
                tenant_id=current_tenant_id(),
                kind=NotificationKind.CERTIFICATE_EXPIRING,
                context=context,
                idempotency_key=f"{key}:{user.id}",
                recipient=user.id,
            ),
        )
    return 1


def documents_expiring_by(horizon: date) -> Select[tuple[ContractorDocument, Contractor]]:
    """Watched company documents ending on or before ``horizon``, with their company."""
    return (
        select(ContractorDocument, Contractor)
        .join(Contractor, Contractor.id == ContractorDocument.contractor_id)
        .where(
            ContractorDocument.valid_until.is_not(None),
            ContractorDocument.valid_until <= horizon,
            ContractorDocument.state.in_(WATCHED_STATES),
            Contractor.state.not_in(UNWATCHED_CONTRACTORS),
        )
    )


def certificates_expiring_by(horizon: date) -> Select[tuple[Certificate, Worker, Contractor]]:
    """Watched certificates ending on or before ``horizon``, with their worker and company."""
    return (
        select(Certificate, Worker, Contractor)
        .join(Worker, Worker.id == Certificate.worker_id)
        .join(Contractor, Contractor.id == Worker.contractor_id)
        .where(
            Certificate.expires_on <= horizon,
            Certificate.state.in_(WATCHED_STATES),
            Contractor.state.not_in(UNWATCHED_CONTRACTORS),
        )
    )


def _watch_documents(
    session: Session, today: date, days: Sequence[int], report: ExpiryReport
) -> None:
    horizon = today + timedelta(days=max(days))
    rows = session.execute(
        documents_expiring_by(horizon).order_by(
            ContractorDocument.valid_until, ContractorDocument.id
        )
    ).all()
    for document, contractor in rows:
        assert document.valid_until is not None
        days_left = (document.valid_until - today).days
        label = DOCUMENT_LABELS[DocumentKind(document.kind)]
        if days_left < 1:
            report.expired_documents += 1
            report.suspended_contractors += _expire_document(session, document, contractor, label)
            continue
        threshold = reminder_due(days_left, days)
        if threshold is not None:
            report.reminders += _remind(
                session,
                contractor,
                subject="contractor_document",
                item_id=document.id,
                label=label,
                number=document.number,
                expires_on=document.valid_until,
                days_left=days_left,
                threshold=threshold,
            )


def _expire_document(
    session: Session, document: ContractorDocument, contractor: Contractor, label: str
) -> int:
    """Mark the document expired; 1 if that suspended its company."""
    change_item_state(
        session,
        document,
        ItemAction.EXPIRE,
        reason=Wording(N_("Expired on %(date)s."), {"date": str(document.valid_until)}),
        actor_id=None,
        details={"contractor_id": contractor.id, "kind": document.kind},
    )
    required = document.kind in REQUIRED_DOCUMENTS
    if not required or contractor.state != ContractorState.APPROVED:
        return 0
    reason = Wording(
        N_("The %(document)s expired on %(date)s."),
        {"document": label, "date": str(document.valid_until)},
    )
    entry = change_contractor_state(
        session,
        contractor,
        ContractorAction.SUSPEND,
        reason=reason,
        actor_id=None,
        details={"cause": "document_expired", "document_id": document.id},
    )
    notify_decision(
        session,
        contractor,
        decision=ContractorState.SUSPENDED.value,
        reason=reason,
        decision_id=entry.id,
    )
    return 1


def _watch_certificates(
    session: Session, today: date, days: Sequence[int], report: ExpiryReport
) -> None:
    horizon = today + timedelta(days=max(days))
    rows = session.execute(
        certificates_expiring_by(horizon).order_by(Certificate.expires_on, Certificate.id)
    ).all()
    for certificate, worker, contractor in rows:
        days_left = (certificate.expires_on - today).days
        if days_left < 1:
            change_item_state(
                session,
                certificate,
                ItemAction.EXPIRE,
                reason=Wording(N_("Expired on %(date)s."), {"date": str(certificate.expires_on)}),
                actor_id=None,
                details={"worker_id": worker.id, "kind": certificate.kind},
            )
            report.expired_certificates += 1
            continue
        threshold = reminder_due(days_left, days)
        if threshold is not None:
            report.reminders += _remind(
                session,
                contractor,
                subject="certificate",
                item_id=certificate.id,
                label=CERTIFICATE_LABELS[CertificateKind(certificate.kind)],
                number=certificate.number,
                expires_on=certificate.expires_on,
                days_left=days_left,
                threshold=threshold,
                worker_name=worker.name,
            )


def watch_expiry(session: Session, today: date) -> ExpiryReport:
    """One pass of the watch for the current tenant, as of ``today`` on the plant's calendar."""
    report = ExpiryReport()
    days = reminder_days(session)
    _watch_documents(session, today, days, report)
    _watch_certificates(session, today, days, report)
    return report
