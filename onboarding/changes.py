"""Changes of admission state with their ledger entry and the contractor's notifications, in one
place for both callers: request handlers (through ``run_sync``) and the expiry watch, which runs
on a worker's synchronous session. Nothing here commits; the caller's transaction carries the
change, its ledger entry and its outbox messages together, or none of them.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from infra import audit
from infra.db import utcnow
from infra.i18n import gettext, locale_scope
from infra.notify import Notification, NotificationKind
from infra.tenancy import current_tenant_id
from onboarding.models import Certificate, Contractor, ContractorDocument, ContractorMember, Worker
from onboarding.states import (
    ContractorAction,
    ItemAction,
    contractor_transition,
    item_transition,
)
from tenants.models import Membership, Role, User
from tenants.notifications import enqueue_notification

CONTRACTOR_EVENTS = {
    ContractorAction.SUBMIT: "contractor.submitted",
    ContractorAction.APPROVE: "contractor.approved",
    ContractorAction.REJECT: "contractor.rejected",
    ContractorAction.REQUEST_CHANGES: "contractor.changes_requested",
    ContractorAction.SUSPEND: "contractor.suspended",
    ContractorAction.REINSTATE: "contractor.reinstated",
    ContractorAction.BLACKLIST: "contractor.blacklisted",
}

Item = ContractorDocument | Worker | Certificate
ITEM_SUBJECTS: dict[type[Any], str] = {
    ContractorDocument: "contractor_document",
    Worker: "worker",
    Certificate: "certificate",
}


@dataclass(frozen=True)
class Wording:
    """A message written by the system rather than a reviewer: an English msgid with its
    parameters, put into each recipient's language when it is sent."""

    msgid: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def text(self) -> str:
        return gettext(self.msgid, **self.params)


Reason = str | Wording


def _text(reason: Reason | None) -> str | None:
    return reason.text() if isinstance(reason, Wording) else reason


def change_contractor_state(
    session: Session,
    contractor: Contractor,
    action: ContractorAction,
    *,
    reason: Reason | None,
    actor_id: uuid.UUID | None,
    details: Mapping[str, Any] | None = None,
) -> audit.AuditEntry:
    """Move the contractor, or raise ``Conflict`` (``state``/``transition``); returns the ledger
    entry, whose id names the decision in the notifications it causes."""
    target = contractor_transition(contractor.state, action)
    previous = contractor.state
    contractor.state = target.value
    contractor.state_reason = _text(reason)
    contractor.state_changed_by = actor_id
    contractor.state_changed_at = utcnow()
    session.flush()
    return audit.append_entry(
        session,
        action=CONTRACTOR_EVENTS[action],
        subject_type="contractor",
        subject_id=contractor.id,
        actor_id=actor_id,
        payload={
            "from": previous,
            "to": target.value,
            "reason": contractor.state_reason,
            **(details or {}),
        },
    )


def change_item_state(
    session: Session,
    item: Item,
    action: ItemAction,
    *,
    reason: Reason | None,
    actor_id: uuid.UUID | None,
    details: Mapping[str, Any] | None = None,
) -> audit.AuditEntry:
    target = item_transition(item.state, action)
    previous = item.state
    item.state = target.value
    item.reason = _text(reason)
    session.flush()
    subject = ITEM_SUBJECTS[type(item)]
    return audit.append_entry(
        session,
        action=f"{subject}.{target.value}",
        subject_type=subject,
        subject_id=item.id,
        actor_id=actor_id,
        payload={"from": previous, "to": target.value, "reason": item.reason, **(details or {})},
    )


def contractor_admins(session: Session, contractor_id: uuid.UUID) -> list[User]:
    """The company's active administrators: whom decisions and reminders go to."""
    query = (
        select(User)
        .join(ContractorMember, ContractorMember.user_id == User.id)
        .join(Membership, Membership.user_id == User.id)
        .where(
            ContractorMember.contractor_id == contractor_id,
            Membership.role == Role.CONTRACTOR_ADMIN.value,
            User.is_active.is_(True),
        )
        .order_by(User.email)
        .distinct()
    )
    return list(session.execute(query).scalars())


def worker_and_admins(session: Session, worker: Worker) -> list[User]:
    """Who speaks for a worker: their own active login, if they have one, then their company's
    administrators; each once."""
    people = (
        []
        if worker.user_id is None
        else list(
            session.execute(
                select(User).where(User.id == worker.user_id, User.is_active.is_(True))
            ).scalars()
        )
    )
    return people + [
        admin
        for admin in contractor_admins(session, worker.contractor_id)
        if admin.id != worker.user_id
    ]


def notify_decision(
    session: Session,
    contractor: Contractor,
    *,
    decision: str,
    reason: Reason | None,
    decision_id: uuid.UUID,
) -> int:
    """Tell each of the company's administrators, in their own language; how many were told."""
    admins = contractor_admins(session, contractor.id)
    for user in admins:
        with locale_scope(user.locale):
            context: dict[str, Any] = {"contractor_name": contractor.name, "decision": decision}
            text = _text(reason)
            if text:
                context["reason"] = text
        enqueue_notification(
            session,
            Notification(
                tenant_id=current_tenant_id(),
                kind=NotificationKind.ADMISSION_DECIDED,
                context=context,
                idempotency_key=f"onboarding:decision:{decision_id}:{user.id}",
                recipient=user.id,
            ),
        )
    return len(admins)
