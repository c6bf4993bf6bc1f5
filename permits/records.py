"""The printed permit (作业票): its PDF in the GB 30871-2022 Appendix A layout, with a QR code, and
the check that the QR code's page runs.

The PDF is the permit as approved — its content, crew and checklist — together with what has
happened to it since: gas analyses, the approval steps with who decided them, where and when,
the safety briefing, completion and acceptance. The context is plain text and data URIs, so
the cached PDF's key (:func:`infra.documents.render_pdf_cached`) changes exactly when any of
that does.

The check answers the live status of the version the printout names. It recomputes the
approved content's hash from what is stored now (``permits.services.content_hash``): a permit
whose content, crew or checklist answers were altered after approval is "invalid", as is one
that was never approved, or was rejected or cancelled. Otherwise:

=============================================  ======================
state (and time)                               status
=============================================  ======================
a newer approved version exists; superseded    ``superseded``
approved, or active before its planned start   ``not_started``
active                                         ``valid``
suspended                                      ``suspended``
expired; approved/active/suspended past end    ``expired``
completed (awaiting acceptance), closed        ``closed``
rejected, cancelled, never approved, altered   ``invalid``
=============================================  ======================

A completed permit is "closed" to whoever scans it: the work it covers is over and may not go
on under it, whether or not the acceptance (完工验收) has been signed yet; the facts show the
state itself.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import anyio
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from geofence.models import Zone
from infra.audit import AuditEntry
from infra.db import utcnow
from infra.documents import render_pdf_cached
from infra.i18n import N_, gettext, locale_scope
from infra.qr import VerificationRef, qr_svg, svg_data_uri, verification_url
from infra.settings import Settings
from infra.storage import ObjectStorage
from infra.verification import Verdict, VerificationStatus, on_clock, register_verifier
from onboarding.catalogue import QUALIFYING_CERTIFICATES, WORK_TYPE_LABELS, WorkType
from onboarding.models import Certificate, Contractor, Worker
from onboarding.states import ItemState
from permits.catalogue import checklist_label, level_label
from permits.models import Permit
from permits.services import content_hash, crew_of, gas_analyses_of, steps_of
from permits.states import PermitState
from tenants.models import Plant, User
from tenants.services import pdf_brand
from training.briefings import briefing_status

SUBJECT_TYPE = "permit"
PDF_TEMPLATE = "permit.html"
# The locale the printed form is in: PDF templates are Chinese; what comes from the catalogues
# as msgids is translated to it when the context is built.
PDF_LOCALE = "zh_CN"

STATE_LABELS = {
    PermitState.DRAFT: N_("Draft"),
    PermitState.SUBMITTED: N_("Submitted"),
    PermitState.IN_APPROVAL: N_("In approval"),
    PermitState.APPROVED: N_("Approved"),
    PermitState.ACTIVE: N_("Work in progress"),
    PermitState.SUSPENDED: N_("Suspended"),
    PermitState.COMPLETED: N_("Completed, awaiting acceptance"),
    PermitState.CLOSED: N_("Closed"),
    PermitState.REJECTED: N_("Rejected"),
    PermitState.CANCELLED: N_("Cancelled"),
    PermitState.EXPIRED: N_("Expired"),
    PermitState.SUPERSEDED: N_("Superseded"),
}

# States a permit reaches only through approval: its content was frozen under content_hash.
_APPROVED_STATES = frozenset(
    {
        PermitState.APPROVED,
        PermitState.ACTIVE,
        PermitState.SUSPENDED,
        PermitState.COMPLETED,
        PermitState.CLOSED,
        PermitState.EXPIRED,
        PermitState.SUPERSEDED,
    }
)


def permit_ref(permit: Permit) -> VerificationRef:
    return VerificationRef(permit.tenant_id, SUBJECT_TYPE, permit.id, permit.version)


def permit_url(settings: Settings, permit: Permit) -> str:
    return verification_url(settings, permit_ref(permit))


# --- the check -------------------------------------------------------------------------------


async def _newer_version_approved(session: AsyncSession, permit: Permit) -> bool:
    newer = await session.scalar(
        select(Permit.id)
        .where(
            Permit.number == permit.number,
            Permit.version > permit.version,
            Permit.content_hash.is_not(None),
        )
        .limit(1)
    )
    return newer is not None


def permit_status(
    permit: Permit, *, intact: bool, newer_version_approved: bool, now: datetime
) -> VerificationStatus:
    """The status a scan shows, from the permit's state and window (see the module's table).
    ``intact``: the stored content still hashes to ``content_hash``."""
    if permit.number is None or permit.content_hash is None or not intact:
        return VerificationStatus.INVALID
    state = PermitState(permit.state)
    if state not in _APPROVED_STATES:
        return VerificationStatus.INVALID
    if state is PermitState.SUPERSEDED or newer_version_approved:
        return VerificationStatus.SUPERSEDED
    if state in (PermitState.COMPLETED, PermitState.CLOSED):
        return VerificationStatus.CLOSED
    if state is PermitState.EXPIRED or now >= permit.planned_end:
        return VerificationStatus.EXPIRED
    if state is PermitState.SUSPENDED:
        return VerificationStatus.SUSPENDED
    # Work may start a little before the planned start (the start gate's grace): once it has,
    # the permit is in force, whatever the clock says of the plan.
    if state is PermitState.APPROVED:
        return VerificationStatus.NOT_STARTED
    return VerificationStatus.VALID


def _local(moment: datetime | None, zone: str) -> str:
    return moment.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M") if moment else ""


async def verify_permit(
    session: AsyncSession, storage: ObjectStorage, permit_id: uuid.UUID, printed_version: int
) -> Verdict | None:
    """The live status of the permit version a printout names; ``None`` when there is none."""
    permit = await session.scalar(select(Permit).where(Permit.id == permit_id))
    if permit is None:
        return None
    title = N_("Work permit")
    # Every version is its own row: a link naming another version of this row was not ours.
    if printed_version != permit.version:
        return Verdict(VerificationStatus.INVALID, title=title)
    crew = await crew_of(session, permit.id)
    intact = permit.content_hash is not None and content_hash(permit, crew) == permit.content_hash
    status = permit_status(
        permit,
        intact=intact,
        newer_version_approved=permit.number is not None
        and await _newer_version_approved(session, permit),
        now=utcnow(),
    )
    if status is VerificationStatus.INVALID:
        # Nothing of an altered or unapproved permit is vouched for.
        return Verdict(status, title=title)
    plant = (await session.execute(select(Plant).where(Plant.id == permit.plant_id))).scalar_one()
    zone_name = await _zone_name(session, permit.zone_id)
    contractor = await session.scalar(
        select(Contractor.name).where(Contractor.id == permit.contractor_id)
    )
    work_type = WorkType(permit.work_type)
    facts = [
        (N_("Permit number"), permit.number or ""),
        (N_("Version"), str(permit.version)),
        (N_("Work type"), gettext(WORK_TYPE_LABELS[work_type])),
    ]
    if permit.level:
        facts.append((N_("Level"), gettext(level_label(permit.work_type, permit.level))))
    facts += [
        (N_("Plant"), plant.name),
        (N_("Zone"), zone_name),
        (N_("Location"), permit.location),
        (
            N_("Planned window"),
            f"{_local(permit.planned_start, plant.timezone)} – "
            f"{on_clock(permit.planned_end, plant.timezone)}",
        ),
        (N_("Contractor"), contractor or ""),
        (N_("State"), gettext(STATE_LABELS[PermitState(permit.state)])),
    ]
    return Verdict(status, title=title, facts=facts, timezone=plant.timezone)


register_verifier(SUBJECT_TYPE, verify_permit)


# --- the PDF ---------------------------------------------------------------------------------


async def _zone_name(session: AsyncSession, zone_id: uuid.UUID) -> str:
    return await session.scalar(select(Zone.name).where(Zone.id == zone_id)) or ""


def _window(moment: datetime, zone: str) -> str:
    return moment.astimezone(ZoneInfo(zone)).strftime("%Y年%m月%d日 %H时%M分")


async def _user_names(session: AsyncSession, ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    if not ids:
        return {}
    rows = await session.execute(select(User.id, User.name).where(User.id.in_(ids)))
    return {row.id: row.name for row in rows}


async def _worker_names(session: AsyncSession, ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    if not ids:
        return {}
    rows = await session.execute(select(Worker.id, Worker.name).where(Worker.id.in_(ids)))
    return {row.id: row.name for row in rows}


def _uuid(value: object) -> uuid.UUID | None:
    if value is None or value == "":
        return None
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def _named(names: dict[uuid.UUID, str], value: object) -> str:
    found = _uuid(value)
    return names.get(found, "") if found is not None else ""


async def _ledger_entry(session: AsyncSession, permit: Permit, action: str) -> AuditEntry | None:
    return await session.scalar(
        select(AuditEntry)
        .where(
            AuditEntry.subject_type == SUBJECT_TYPE,
            AuditEntry.subject_id == str(permit.id),
            AuditEntry.action == action,
        )
        .order_by(AuditEntry.seq.desc())
        .limit(1)
    )


async def _certificates(
    session: AsyncSession, work_type: WorkType, worker_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[dict[str, str]]]:
    kinds = QUALIFYING_CERTIFICATES[work_type]
    if not kinds or not worker_ids:
        return {}
    rows = (
        await session.execute(
            select(Certificate)
            .where(
                Certificate.worker_id.in_(list(worker_ids)),
                Certificate.kind.in_([kind.value for kind in kinds]),
                Certificate.state == ItemState.VERIFIED.value,
            )
            .order_by(Certificate.expires_on.desc())
        )
    ).scalars()
    found: dict[uuid.UUID, list[dict[str, str]]] = {}
    for certificate in rows:
        found.setdefault(certificate.worker_id, []).append(
            {
                "kind": certificate.kind,
                "number": certificate.number,
                "expires_on": certificate.expires_on.isoformat(),
            }
        )
    return found


async def permit_context(
    session: AsyncSession, storage: ObjectStorage, settings: Settings, permit: Permit
) -> dict[str, Any]:
    """What the PDF shows. Everything is text, numbers, booleans or a data URI."""
    work_type = WorkType(permit.work_type)
    plant = (await session.execute(select(Plant).where(Plant.id == permit.plant_id))).scalar_one()
    contractor = await session.scalar(
        select(Contractor.name).where(Contractor.id == permit.contractor_id)
    )
    zone = plant.timezone
    crew = await crew_of(session, permit.id)
    steps = await steps_of(session, permit.id)
    analyses = await gas_analyses_of(session, permit.id)
    briefing = await briefing_status(session, permit.id)
    completed = await _ledger_entry(session, permit, "permit.complete")
    accepted = await _ledger_entry(session, permit, "permit.accept")

    details = dict(permit.details)
    worker_ids = {permit.work_leader_id, *(member.worker_id for member in crew)}
    if permit.guardian_worker_id:
        worker_ids.add(permit.guardian_worker_id)
    if work_type is WorkType.LIFTING:
        for key in ("operator_id", "signaller_id"):
            if (found := _uuid(details.get(key))) is not None:
                worker_ids.add(found)
        worker_ids |= {
            found for value in details.get("rigger_ids", []) if (found := _uuid(value)) is not None
        }
    workers = await _worker_names(session, worker_ids)
    user_ids = {step.decided_by for step in steps if step.decided_by}
    user_ids |= {
        found
        for item in permit.checklist
        if item.get("confirmed_by") and (found := _uuid(item["confirmed_by"])) is not None
    }
    for entry in (completed, accepted):
        if entry is not None and entry.actor_id:
            user_ids.add(entry.actor_id)
    if permit.guardian_user_id:
        user_ids.add(permit.guardian_user_id)
    if briefing.briefing is not None:
        user_ids.add(briefing.briefing.briefer_id)
    users = await _user_names(session, user_ids)

    if work_type is WorkType.LIFTING:
        details["operator_name"] = _named(workers, details.get("operator_id"))
        details["signaller_name"] = _named(workers, details.get("signaller_id"))
        details["rigger_names"] = [
            _named(workers, value) for value in details.get("rigger_ids", [])
        ]
    certificates = await _certificates(session, work_type, [member.worker_id for member in crew])

    with locale_scope(PDF_LOCALE):
        checklist = [
            {
                "code": item["code"],
                "text": gettext(checklist_label(work_type, item["code"])),
                "applies": bool(item.get("applies")),
                "confirmed_by": _named(users, item.get("confirmed_by")),
                "confirmed_at": _local(
                    datetime.fromisoformat(item["confirmed_at"])
                    if item.get("confirmed_at")
                    else None,
                    zone,
                ),
            }
            for item in permit.checklist
        ]

    briefer = None
    if briefing.briefing is not None:
        briefer = {
            "name": users.get(briefing.briefing.briefer_id, ""),
            "signed": briefing.briefer_signed,
            "crew_signed": sum(1 for _, signature in briefing.crew if signature is not None),
            "crew_total": len(briefing.crew),
            "signed_at": _local(
                max(
                    (signature.signed_at for _, signature in briefing.crew if signature),
                    default=None,
                ),
                zone,
            ),
        }

    guardian = (
        _named(workers, permit.guardian_worker_id)
        if permit.guardian_worker_id
        else _named(users, permit.guardian_user_id)
    )
    url = permit_url(settings, permit)
    return {
        **await pdf_brand(session, storage),
        "plant_name": plant.name,
        "work_type": work_type.value,
        "level": permit.level or "",
        "requested_level": permit.requested_level or "",
        "level_reasons": list(permit.level_reasons),
        "number": permit.number or "",
        "version": permit.version,
        "state": permit.state,
        "zone_name": await _zone_name(session, permit.zone_id),
        "location": permit.location,
        "work_content": permit.work_content,
        "contractor_name": contractor or "",
        "applied_at": _local(permit.submitted_at, zone),
        "approved_at": _local(permit.approved_at, zone),
        "planned_start": _window(permit.planned_start, zone),
        "planned_end": _window(permit.planned_end, zone),
        "timezone": zone,
        "work_leader": workers.get(permit.work_leader_id, ""),
        "guardian": guardian,
        "crew": [
            {
                "name": workers.get(member.worker_id, ""),
                "duty": member.duty or "",
                "certificates": certificates.get(member.worker_id, []),
            }
            for member in crew
        ],
        "certificates_required": bool(QUALIFYING_CERTIFICATES[work_type]),
        "related_numbers": list(permit.related_numbers),
        "hazards": list(permit.hazards),
        "emergency_measures": list(permit.emergency_measures),
        "checklist": checklist,
        "details": details,
        "gas_analyses": [
            {
                "time": _local(analysis.sampled_at, zone),
                "point": analysis.point,
                "readings": [
                    {"gas": r["gas"], "value": float(r["value"]), "unit": r["unit"]}
                    for r in analysis.readings
                ],
                "instrument": analysis.instrument,
                "analyst": analysis.analyst,
                "passed": analysis.passed,
            }
            for analysis in analyses
        ],
        "approvals": [
            {
                "role": step.role,
                "label": step.label or "",
                "kind": step.kind,
                "status": step.status,
                "decider": _named(users, step.decided_by),
                "decided_at": _local(step.decided_at, zone),
                "comment": step.comment or "",
                "on_site": step.on_site,
            }
            for step in steps
        ],
        "briefing": briefer,
        "completion": {
            "completed_at": _local(permit.completed_at, zone),
            "completed_by": _named(users, completed.actor_id if completed else None),
            "closed_at": _local(permit.closed_at, zone),
            "accepted_by": _named(users, accepted.actor_id if accepted else None),
            "comment": str(accepted.payload.get("comment", "")) if accepted else "",
        },
        "content_hash": permit.content_hash or "",
        "qr_data_uri": svg_data_uri(qr_svg(url)),
        "verification_url": url,
    }


async def permit_pdf(
    session: AsyncSession, storage: ObjectStorage, settings: Settings, permit: Permit
) -> bytes:
    context = await permit_context(session, storage, settings, permit)
    _, pdf = await anyio.to_thread.run_sync(
        render_pdf_cached, storage, permit.tenant_id, PDF_TEMPLATE, context
    )
    return pdf
