"""Confirmed violations, from both places they are confirmed: geofence alerts EHS marked as
violations, and inspection findings. Read as one list with the company, the job (when there is
one), the severity and the points it costs under the tenant's policy.

An alert names its job by the watch, whose id is the permit's; an alert that belongs to no job
(someone in a restricted zone without a permit) names the company through the person's login.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from geofence.alerts import KIND_LABELS
from geofence.models import Alert, AlertKind
from infra.i18n import gettext
from onboarding.models import ContractorMember
from permits.models import Permit
from scoring.formula import Policy
from scoring.models import Finding

ALERT = "alert"
INSPECTION = "inspection"


@dataclass(frozen=True)
class Violation:
    id: uuid.UUID
    source: str
    plant_id: uuid.UUID
    contractor_id: uuid.UUID | None
    permit_id: uuid.UUID | None
    severity: str
    points: float
    at: datetime
    description: str


def _alert_rows(
    *,
    contractor_id: uuid.UUID | None,
    permit_ids: Collection[uuid.UUID] | None,
    plant_id: uuid.UUID | None,
    since: datetime | None,
    until: datetime | None,
) -> Select:
    job = aliased(Permit)
    member = aliased(ContractorMember)
    query = (
        select(
            Alert.id,
            Alert.plant_id,
            Alert.kind,
            Alert.opened_at,
            Alert.resolution_note,
            job.id.label("permit_id"),
            job.contractor_id.label("job_contractor_id"),
            member.contractor_id.label("member_contractor_id"),
        )
        .outerjoin(job, job.id == Alert.watch_id)
        .outerjoin(member, and_(Alert.watch_id.is_(None), member.user_id == Alert.user_id))
        .where(Alert.violation.is_(True))
    )
    if contractor_id is not None:
        query = query.where(
            or_(job.contractor_id == contractor_id, member.contractor_id == contractor_id)
        )
    if permit_ids is not None:
        query = query.where(job.id.in_(permit_ids))
    if plant_id is not None:
        query = query.where(Alert.plant_id == plant_id)
    if since is not None:
        query = query.where(Alert.opened_at >= since)
    if until is not None:
        query = query.where(Alert.opened_at < until)
    return query


def _finding_rows(
    *,
    contractor_id: uuid.UUID | None,
    permit_ids: Collection[uuid.UUID] | None,
    plant_id: uuid.UUID | None,
    since: datetime | None,
    until: datetime | None,
) -> Select:
    query = select(Finding)
    if contractor_id is not None:
        query = query.where(Finding.contractor_id == contractor_id)
    if permit_ids is not None:
        query = query.where(Finding.permit_id.in_(permit_ids))
    if plant_id is not None:
        query = query.where(Finding.plant_id == plant_id)
    if since is not None:
        query = query.where(Finding.observed_at >= since)
    if until is not None:
        query = query.where(Finding.observed_at < until)
    return query


async def confirmed_violations(
    session: AsyncSession,
    policy: Policy,
    *,
    contractor_id: uuid.UUID | None = None,
    permit_ids: Collection[uuid.UUID] | None = None,
    plant_id: uuid.UUID | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[Violation]:
    """The violations matching every filter given, oldest first."""
    filters = {
        "contractor_id": contractor_id,
        "permit_ids": permit_ids,
        "plant_id": plant_id,
        "since": since,
        "until": until,
    }
    found: list[Violation] = []
    for row in (await session.execute(_alert_rows(**filters))).all():
        severity = policy.severity_of_alert(row.kind)
        found.append(
            Violation(
                id=row.id,
                source=ALERT,
                plant_id=row.plant_id,
                contractor_id=row.job_contractor_id or row.member_contractor_id,
                permit_id=row.permit_id,
                severity=severity,
                points=policy.points(severity),
                at=row.opened_at,
                description=row.resolution_note or gettext(KIND_LABELS[AlertKind(row.kind)]),
            )
        )
    for finding in (await session.execute(_finding_rows(**filters))).scalars():
        found.append(
            Violation(
                id=finding.id,
                source=INSPECTION,
                plant_id=finding.plant_id,
                contractor_id=finding.contractor_id,
                permit_id=finding.permit_id,
                severity=finding.severity,
                points=policy.points(finding.severity),
                at=finding.observed_at,
                description=finding.description,
            )
        )
    found.sort(key=lambda violation: (violation.at, violation.id))
    return found
