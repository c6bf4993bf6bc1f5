"""Approval chains: Table B.1 plus the tenant's own steps, who may decide each step, due times,
escalation of late steps, and the notices that go out through the outbox.

The functions here are synchronous, because the escalation runs in a worker; request handlers
reach them through ``session.run_sync`` and share their transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from infra import audit
from infra.errors import FieldProblem, InvalidInput, RulesBroken
from infra.i18n import N_, gettext, locale_scope
from infra.notify import Notification, NotificationKind
from infra.tenancy import current_tenant_id
from onboarding.catalogue import WORK_TYPE_LABELS, WorkType
from onboarding.changes import worker_and_admins
from onboarding.models import Contractor, Worker
from permits.models import ApprovalStep, ChainPolicy, Permit
from permits.rules import ApprovalRole, ChainStep, StepKind, merge_chain, standard_chain
from tenants.models import Plant, Role, User
from tenants.notifications import enqueue_notification, tenant_url
from tenants.services import role_holders

# Which host role decides a step of each kind of approver, on the permit's plant. The
# departments of the co-signing and approving units are unit supervisors of their unit; the
# safety and fire departments are EHS; the leader in charge and the plant manager are the
# plant's manager.
HOLDERS: dict[ApprovalRole, Role] = {
    ApprovalRole.LEADER_IN_CHARGE: Role.PLANT_MANAGER,
    ApprovalRole.PLANT_MANAGER: Role.PLANT_MANAGER,
    ApprovalRole.SAFETY_DEPARTMENT: Role.EHS_OFFICER,
    ApprovalRole.FIRE_DEPARTMENT: Role.EHS_OFFICER,
    ApprovalRole.LOCAL_UNIT: Role.UNIT_SUPERVISOR,
    ApprovalRole.SPECIALIST_DEPARTMENT: Role.UNIT_SUPERVISOR,
    ApprovalRole.POWER_SUPPLY_UNIT: Role.UNIT_SUPERVISOR,
    ApprovalRole.WATER_DEPARTMENT: Role.UNIT_SUPERVISOR,
    ApprovalRole.POWER_DEPARTMENT: Role.UNIT_SUPERVISOR,
    ApprovalRole.STEAM_DEPARTMENT: Role.UNIT_SUPERVISOR,
    ApprovalRole.PROCESS_DEPARTMENT: Role.UNIT_SUPERVISOR,
    ApprovalRole.EQUIPMENT_DEPARTMENT: Role.UNIT_SUPERVISOR,
    ApprovalRole.SHIFT_LEADER: Role.UNIT_SUPERVISOR,
}
# A late step goes to the next person up: the unit's supervisor to EHS, EHS to the plant
# manager, the plant manager to the tenant's administrators.
ESCALATION = {
    Role.UNIT_SUPERVISOR: Role.EHS_OFFICER,
    Role.EHS_OFFICER: Role.PLANT_MANAGER,
    Role.PLANT_MANAGER: Role.TENANT_ADMIN,
    Role.TENANT_ADMIN: Role.TENANT_ADMIN,
}
STEP_DUE = timedelta(minutes=60)
ESCALATED_STEP_DUE = timedelta(minutes=30)

ROLE_LABELS = {
    ApprovalRole.LEADER_IN_CHARGE: N_("Leader in charge"),
    ApprovalRole.SAFETY_DEPARTMENT: N_("Safety department"),
    ApprovalRole.LOCAL_UNIT: N_("Local unit"),
    ApprovalRole.SPECIALIST_DEPARTMENT: N_("Specialist department"),
    ApprovalRole.PLANT_MANAGER: N_("Plant manager or chief engineer"),
    ApprovalRole.POWER_SUPPLY_UNIT: N_("Power supply unit"),
    ApprovalRole.WATER_DEPARTMENT: N_("Water department"),
    ApprovalRole.POWER_DEPARTMENT: N_("Power department"),
    ApprovalRole.STEAM_DEPARTMENT: N_("Steam department"),
    ApprovalRole.PROCESS_DEPARTMENT: N_("Process department"),
    ApprovalRole.EQUIPMENT_DEPARTMENT: N_("Equipment department"),
    ApprovalRole.FIRE_DEPARTMENT: N_("Fire department"),
    ApprovalRole.WORK_LEADER: N_("Work leader"),
    ApprovalRole.SHIFT_LEADER: N_("Shift leader's check"),
}


def policy_steps(policy: ChainPolicy) -> list[ChainStep]:
    return [
        ChainStep(ApprovalRole(step["role"]), StepKind(step["kind"]), step.get("clause"))
        for step in policy.steps
    ]


def chain_for(session: Session, work_type: WorkType, level: str | None) -> list[dict[str, Any]]:
    """The steps a permit of this type and level goes through: the tenant's chain when it keeps
    every standard step in order, else the standard one."""
    standard = standard_chain(work_type, level)
    policy = session.scalar(
        select(ChainPolicy).where(
            ChainPolicy.work_type == work_type.value, ChainPolicy.level == (level or "")
        )
    )
    if policy is None:
        return [_step_document(step, None) for step in standard]
    merged = merge_chain(standard, policy_steps(policy))
    labels = [step.get("label") for step in policy.steps]
    if merged.violations:
        return [_step_document(step, None) for step in standard]
    return [_step_document(step, label) for step, label in zip(merged.steps, labels, strict=True)]


def _step_document(step: ChainStep, label: str | None) -> dict[str, Any]:
    return {"role": step.role.value, "kind": step.kind.value, "clause": step.clause, "label": label}


def check_policy(work_type: WorkType, level: str | None, steps: Sequence[dict[str, Any]]) -> None:
    """Refuse a tenant chain that drops or reorders a standard step (Table B.1)."""
    try:
        proposed = [
            ChainStep(
                ApprovalRole(step["role"]),
                StepKind(step["kind"]),
                "B.1" if step.get("standard") else None,
            )
            for step in steps
        ]
    except ValueError as exc:
        raise InvalidInput("steps", "enum", N_("Not one of the allowed values.")) from exc
    merged = merge_chain(standard_chain(work_type, level), proposed)
    if merged.violations:
        raise RulesBroken(
            N_("The chain leaves out or moves a step the standard requires."),
            [
                FieldProblem(
                    "steps",
                    violation.code,
                    violation.message,
                    dict(violation.params),
                    clause=violation.clause,
                    subject=violation.subject,
                )
                for violation in merged.violations
            ],
        )


def create_steps(session: Session, permit: Permit, now: datetime) -> list[ApprovalStep]:
    steps = [
        ApprovalStep(
            permit_id=permit.id,
            position=index,
            role=document["role"],
            kind=document["kind"],
            clause=document["clause"],
            label=document["label"],
            status="waiting",
        )
        for index, document in enumerate(
            chain_for(session, WorkType(permit.work_type), permit.level)
        )
    ]
    session.add_all(steps)
    session.flush()
    activate(session, permit, steps[0], now)
    return steps


def deciders(
    session: Session, permit: Permit, step: ApprovalStep, *, role: Role | None = None
) -> list[User]:
    """Who may decide the step: holders of its role on the permit's plant; the work leader's
    step is the contractor's (the work leader's own login, or the company's administrators)."""
    if ApprovalRole(step.role) is ApprovalRole.WORK_LEADER and role is None:
        leader = session.execute(select(Worker).where(Worker.id == permit.work_leader_id))
        return worker_and_admins(session, leader.scalar_one())
    wanted = role or HOLDERS[ApprovalRole(step.role)]
    return list(session.scalars(role_holders([wanted], permit.plant_id)))


def step_role_label(step: ApprovalStep) -> str:
    return step.label or ROLE_LABELS[ApprovalRole(step.role)]


def activate(session: Session, permit: Permit, step: ApprovalStep, now: datetime) -> None:
    step.status = "pending"
    step.activated_at = now
    step.due_at = now + STEP_DUE
    session.flush()
    _notify(session, permit, step, deciders(session, permit, step), reason="requested")


def _notify(
    session: Session, permit: Permit, step: ApprovalStep, users: Sequence[User], *, reason: str
) -> None:
    plant = session.execute(select(Plant).where(Plant.id == permit.plant_id)).scalar_one()
    applicant = session.scalar(select(Contractor.name).where(Contractor.id == permit.contractor_id))
    # The permit's page, where the step is decided.
    url = tenant_url(session, f"/permits/{permit.id}")
    for user in users:
        with locale_scope(user.locale):
            context = {
                "permit_number": permit.number
                or gettext(N_("Application %(ref)s"), ref=str(permit.id)[:8]),
                "work_type": gettext(WORK_TYPE_LABELS[WorkType(permit.work_type)]),
                "plant_name": plant.name,
                "applicant": applicant or "",
                "step": gettext(step_role_label(step)),
                "due_at": step.due_at,
                "url": url,
            }
        enqueue_notification(
            session,
            Notification(
                tenant_id=current_tenant_id(),
                kind=NotificationKind.APPROVAL_REQUESTED,
                context=context,
                idempotency_key=(f"permits:step:{step.id}:{reason}:{step.escalations}:{user.id}"),
                recipient=user.id,
            ),
        )


def escalate_overdue(session: Session, now: datetime) -> int:
    """Pass every late pending step up one level: the next role is told, the step gets a new
    due time, and the ledger records it. Returns how many steps were escalated."""
    late = list(
        session.execute(
            select(ApprovalStep)
            .where(ApprovalStep.status == "pending", ApprovalStep.due_at < now)
            .with_for_update()
        ).scalars()
    )
    for step in late:
        permit = session.execute(select(Permit).where(Permit.id == step.permit_id)).scalar_one()
        step.escalations += 1
        step.escalated_at = now
        step.due_at = now + ESCALATED_STEP_DUE
        session.flush()
        if ApprovalRole(step.role) is ApprovalRole.WORK_LEADER:
            # The work leader's opinion is the contractor's to give; nobody above can give it for
            # them, so a late one is a reminder to the same people.
            target_label = "contractor"
            users = deciders(session, permit, step)
        else:
            target = HOLDERS[ApprovalRole(step.role)]
            for _ in range(step.escalations):
                target = ESCALATION[target]
            target_label = target.value
            users = deciders(session, permit, step, role=target)
        _notify(session, permit, step, users, reason="escalated")
        audit.append_entry(
            session,
            action="permit.step_escalated",
            subject_type="permit",
            subject_id=permit.id,
            payload={"step": step.position, "to_role": target_label, "times": step.escalations},
        )
    return len(late)


def may_decide(session: Session, permit: Permit, step: ApprovalStep, user_id: uuid.UUID) -> bool:
    """The holders of the step's role, and whoever it was escalated to."""
    allowed = {user.id for user in deciders(session, permit, step)}
    if step.escalations and ApprovalRole(step.role) is not ApprovalRole.WORK_LEADER:
        role = HOLDERS[ApprovalRole(step.role)]
        for _ in range(step.escalations):
            role = ESCALATION[role]
            allowed |= {user.id for user in deciders(session, permit, step, role=role)}
    return user_id in allowed
