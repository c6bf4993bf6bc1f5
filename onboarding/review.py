"""An EHS review: one decision on a company together with a verdict, each with its own reason,
on each of its documents, workers and certificates.

The rules: every item named must belong to the company and be judged once; a rejection needs a
reason, and so does a decision other than approval; approval needs every pending item judged and
the required company documents verified and unexpired. Without a decision only the items are
judged — a partial review while the company is under review, or the workers and certificates an
admitted company added since. The company's administrators hear of each decision, with the
reasons for every item turned down; an admitted company also hears when a new item is turned
down, since it has to fix it.

Synchronous, for the caller's session through ``run_sync``: the verdicts, the ledger entries and
the notifications are one transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from infra.errors import Conflict, InvalidInput
from infra.i18n import N_
from onboarding.access import Viewer
from onboarding.catalogue import REQUIRED_DOCUMENTS
from onboarding.changes import Item, change_contractor_state, change_item_state, notify_decision
from onboarding.clock import plant_today
from onboarding.models import Certificate, Contractor, ContractorDocument, Worker
from onboarding.schemas import ItemVerdict, ReviewIn
from onboarding.states import (
    EDITABLE_STATES,
    ITEM_REVIEW_STATES,
    ContractorAction,
    ContractorState,
    ItemAction,
    ItemState,
    contractor_transition,
    transition_refused,
)

DECISIONS = {
    "approve": ContractorAction.APPROVE,
    "reject": ContractorAction.REJECT,
    "request_changes": ContractorAction.REQUEST_CHANGES,
}


@dataclass(frozen=True)
class _Judged:
    item: Item
    verdict: ItemVerdict
    where: str
    label: str


def _targets(
    session: Session,
    model: type[Item],
    list_name: str,
    verdicts: Sequence[ItemVerdict],
    contractor_id: uuid.UUID,
) -> list[_Judged]:
    """The items the verdicts name, each checked to belong to the company under review."""
    if not verdicts:
        return []
    ids = [verdict.id for verdict in verdicts]
    query = select(model).where(model.id.in_(ids))
    if model is Certificate:
        query = query.join(Worker, Worker.id == Certificate.worker_id).where(
            Worker.contractor_id == contractor_id
        )
    else:
        query = query.where(model.contractor_id == contractor_id)  # type: ignore[union-attr]
    found = {item.id: item for item in session.execute(query).scalars()}
    judged = []
    seen: set[uuid.UUID] = set()
    for index, verdict in enumerate(verdicts):
        where = f"{list_name}[{index}]"
        id_field, reason_field = f"{where}.id", f"{where}.reason"
        if verdict.id in seen:
            raise InvalidInput(id_field, "unique", N_("This item is judged twice."))
        seen.add(verdict.id)
        item = found.get(verdict.id)
        if item is None:
            raise InvalidInput(id_field, "exists", N_("Not an item of this company."))
        if verdict.verdict == "rejected" and not verdict.reason:
            raise InvalidInput(
                reason_field, "required", N_("Give a reason for rejecting this item.")
            )
        label = item.name if isinstance(item, Worker) else item.number
        judged.append(_Judged(item, verdict, where, label))
    return judged


def _pending_count(session: Session, contractor_id: uuid.UUID) -> int:
    pending = ItemState.PENDING.value
    documents = session.scalar(
        select(func.count())
        .select_from(ContractorDocument)
        .where(
            ContractorDocument.contractor_id == contractor_id, ContractorDocument.state == pending
        )
    )
    workers = session.scalar(
        select(func.count())
        .select_from(Worker)
        .where(Worker.contractor_id == contractor_id, Worker.state == pending)
    )
    certificates = session.scalar(
        select(func.count())
        .select_from(Certificate)
        .join(Worker, Worker.id == Certificate.worker_id)
        .where(Worker.contractor_id == contractor_id, Certificate.state == pending)
    )
    return int(documents or 0) + int(workers or 0) + int(certificates or 0)


def required_documents_valid(session: Session, contractor_id: uuid.UUID, today: date) -> bool:
    valid = set(
        session.scalars(
            select(ContractorDocument.kind).where(
                ContractorDocument.contractor_id == contractor_id,
                ContractorDocument.state == ItemState.VERIFIED.value,
                (ContractorDocument.valid_until.is_(None))
                | (ContractorDocument.valid_until > today),
            )
        )
    )
    return REQUIRED_DOCUMENTS <= valid


def required_documents_problem() -> InvalidInput:
    return InvalidInput(
        "documents",
        "required_documents",
        N_("The business licence and the safety production licence must be verified and valid."),
    )


def _summary(reason: str | None, rejected: Sequence[_Judged]) -> str | None:
    """What the company is told: the decision's reason, then each rejected item's."""
    parts = [reason] if reason else []
    parts.extend(f"{judged.label}: {judged.verdict.reason}" for judged in rejected)
    return "; ".join(parts) or None


def apply_review(session: Session, viewer: Viewer, contractor: Contractor, data: ReviewIn) -> None:
    """Judge the items and decide on the company, in the caller's transaction."""
    action = DECISIONS.get(data.decision) if data.decision else None
    if action is not None:
        contractor_transition(contractor.state, action)
        if action is not ContractorAction.APPROVE and not data.reason:
            raise InvalidInput("reason", "required", N_("Give a reason for this decision."))
    elif contractor.state not in ITEM_REVIEW_STATES:
        raise transition_refused(contractor.state, "review")
    elif not (data.documents or data.workers or data.certificates):
        raise InvalidInput(
            "decision", "required", N_("Give a decision, or a verdict on at least one item.")
        )
    judged = [
        *_targets(session, ContractorDocument, "documents", data.documents, contractor.id),
        *_targets(session, Worker, "workers", data.workers, contractor.id),
        *_targets(session, Certificate, "certificates", data.certificates, contractor.id),
    ]
    last_entry = None
    for item in judged:
        try:
            last_entry = change_item_state(
                session,
                item.item,
                ItemAction.VERIFY if item.verdict.verdict == "verified" else ItemAction.REJECT,
                reason=item.verdict.reason,
                actor_id=viewer.user_id,
                details={"contractor_id": contractor.id},
            )
        except Conflict as exc:
            # The state machine knows one item; the reviewer sent lists and must learn which.
            for problem in exc.problems:
                problem.field = f"{item.where}.{problem.field}"
            raise
    rejected = [item for item in judged if item.verdict.verdict == "rejected"]
    if action is ContractorAction.APPROVE:
        if _pending_count(session, contractor.id):
            raise InvalidInput(
                "decision",
                "items_pending",
                N_("Judge every pending document, worker and certificate before approving."),
            )
        if not required_documents_valid(session, contractor.id, plant_today()):
            raise required_documents_problem()
    if action is not None:
        entry = change_contractor_state(
            session,
            contractor,
            action,
            reason=data.reason,
            actor_id=viewer.user_id,
            details={"items": [{"id": j.item.id, "verdict": j.verdict.verdict} for j in judged]},
        )
        notify_decision(
            session,
            contractor,
            decision=contractor.state,
            reason=_summary(data.reason, rejected),
            decision_id=entry.id,
        )
    elif rejected and last_entry is not None and contractor.state in EDITABLE_STATES:
        # An admitted company whose new worker or certificate was turned down must fix it; one
        # still under review hears the outcome with the decision.
        notify_decision(
            session,
            contractor,
            decision=ContractorState.CHANGES_REQUESTED.value,
            reason=_summary(data.reason, rejected),
            decision_id=last_entry.id,
        )
