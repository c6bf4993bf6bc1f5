"""Supervised work over the API: zones of a plant, work permits (作业票) from the application
through the approval chain to work on site and acceptance, the tenant's approval chains, and
the tenant's own holidays and working days that hot work levels follow.

Handlers parse, call ``permits.services``, ``permits.chains`` and ``geofence.services`` and shape
the answer; who may reach what is the services' business (what the caller may not reach answers
404, like what does not exist). Times come and go as ISO 8601 with their UTC offset; a time
without one is refused (422 ``timezone``). Gate failures answer 422 with every broken rule at once,
each with its ``rule``, the standard's ``clause`` and the ``subject`` (person or item) concerned.

Importing ``permits.records`` here registers the permit's verifier, which the QR code's page
(``/v/{token}``, ``/api/v1/verify/{token}``) asks.

Billing: a tenant that is read-only for billing keeps every action that stops or records work on
site — suspending, gas analyses, completion, acceptance and cancelling (safety never stops for
billing); applying, approving, starting and resuming new work stop until it pays.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, Response, delete, get, post, put
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import JSONBody, Parameter, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_204_NO_CONTENT
from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncSession

from geofence import services as zone_services
from geofence.models import Zone
from geofence.schemas import ZoneIn, ZoneRead
from infra.errors import Conflict, InvalidInput
from infra.i18n import N_
from infra.i18n import gettext as _
from infra.settings import Settings
from onboarding.catalogue import WorkType
from onboarding.models import Worker
from permits import chains, records, services
from permits.catalogue import CHECKLISTS
from permits.models import ApprovalStep, GasAnalysis, Permit, PermitCrewMember
from permits.schemas import (
    ChainPolicyIn,
    ConfirmIn,
    DecisionIn,
    GasAnalysisIn,
    PermitIn,
    ReasonIn,
)
from permits.states import FINAL_STATES, PermitAction, PermitState, allowed_actions
from portal.dependencies import AppSettings, DbSession
from portal.guards import BILLING_EXEMPT, ensure_plant_in_scope, requires_roles, signed_in
from portal.identity import CompanyCache
from portal.params import IdParam, parse_id
from tenants.access import Principal
from tenants.models import Role
from tenants.schemas import Input

_zone_editors = requires_roles(Role.EHS_OFFICER, Role.TENANT_ADMIN)
_applicants = requires_roles(Role.CONTRACTOR_ADMIN)
_tenant_admins = requires_roles(Role.TENANT_ADMIN)
# Stopping or recording work on site: keeps working while the tenant is read-only for billing.
_SAFETY_ACTION = {BILLING_EXEMPT: True}
_KEEPS_WORKING = " Keeps working while the tenant is read-only for billing (safety on site)."
_STOPS = " Refused while the tenant is read-only for billing."
_NOT_YOURS = (
    " What the caller may not do on this permit answers 404, like a permit that is not there."
)

WorkTypeQuery = Annotated[
    WorkType | None, QueryParameter(name="work_type", description="Only permits of this type")
]
# ``state`` is a name Litestar reserves for the application state.
PermitStateQuery = Annotated[
    PermitState | None, QueryParameter(name="state", description="Only permits in this state")
]
PlantQuery = Annotated[
    str | None,
    QueryParameter(name="plant_id", description="Only permits of this plant", max_length=64),
]
BeforeQuery = Annotated[
    datetime | None,
    QueryParameter(
        name="before",
        description="Page on: the last row's `planned_start` (ISO 8601 with offset), together "
        "with `before_id`.",
    ),
]
BeforeIdQuery = Annotated[
    str | None,
    QueryParameter(
        name="before_id",
        description="Page on: the last row's `id`; permits sharing a start time are ordered by "
        "id, so no row is skipped or repeated between pages.",
        max_length=64,
    ),
]
ZonePlantQuery = Annotated[
    str, QueryParameter(name="plant_id", description="The plant whose zones", max_length=64)
]
ChainWorkTypeQuery = Annotated[WorkType, QueryParameter(name="work_type")]
ChainLevelQuery = Annotated[
    str,
    QueryParameter(
        name="level",
        description="The level or grade (hot work `special`/`level1`/`level2`, height "
        "`grade_1`…`grade_4`, lifting `level1`…`level3`); empty for the ungraded types.",
        max_length=16,
    ),
]


async def provide_actor(
    request: Request[Principal, Any, Any], db_session: DbSession
) -> services.Actor:
    principal = request.user
    companies: CompanyCache = request.app.state.companies

    async def load() -> tuple[uuid.UUID | None, uuid.UUID | None]:
        actor = await services.actor_for(db_session, principal)
        return actor.contractor_id, actor.worker_id

    known = await companies.get_or_load((principal.tenant_id, principal.user_id), load)
    return services.Actor(principal, *known)


ActorDep = NamedDependency[services.Actor]
_ACTOR = {"actor": Provide(provide_actor)}


# --- shaping answers -------------------------------------------------------------------------


class PermitRow(msgspec.Struct, kw_only=True):
    """A permit as the lists show it."""

    id: uuid.UUID
    number: str | None
    version: int
    work_type: str
    level: str | None
    state: str
    plant_id: uuid.UUID
    zone_id: uuid.UUID
    contractor_id: uuid.UUID
    planned_start: datetime
    planned_end: datetime


class CrewRead(msgspec.Struct, kw_only=True):
    worker_id: uuid.UUID
    name: str
    duty: str | None


class ChecklistItemRead(msgspec.Struct, kw_only=True):
    code: str
    label: str
    applies: bool
    confirmed_by: uuid.UUID | None
    confirmed_at: datetime | None


class StepRead(msgspec.Struct, kw_only=True):
    """One step of the approval chain. ``on_site`` is where the approver stood (None: not
    given; false: away from the zone, flagged under §4.11a); ``minutes`` how long it waited."""

    position: int
    role: str
    kind: str
    label: str
    clause: str | None
    status: str
    activated_at: datetime | None
    due_at: datetime | None
    escalations: int
    decided_by: uuid.UUID | None
    decided_at: datetime | None
    comment: str | None
    on_site: bool | None
    minutes: float | None


class GasAnalysisRead(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    permit_id: uuid.UUID
    sampled_at: datetime
    point: str
    readings: list[dict[str, Any]]
    analyst: str
    instrument: str
    passed: bool
    violations: list[dict[str, Any]]
    recorded_by: uuid.UUID


class PermitRead(PermitRow, kw_only=True):
    """One permit in full: the application, the crew, the checklist, the chain, the gas
    analyses, and what its state allows next."""

    requested_level: str | None
    level_reasons: list[str]
    supersedes_id: uuid.UUID | None
    location: str
    work_content: str
    work_leader_id: uuid.UUID
    guardian_worker_id: uuid.UUID | None
    guardian_user_id: uuid.UUID | None
    related_numbers: list[str]
    hazards: list[str]
    emergency_measures: list[str]
    details: dict[str, Any]
    crew: list[CrewRead]
    checklist: list[ChecklistItemRead]
    steps: list[StepRead]
    gas_analyses: list[GasAnalysisRead]
    allowed_actions: list[str]
    content_hash: str | None
    submitted_at: datetime | None
    approved_at: datetime | None
    started_at: datetime | None
    paused_at: datetime | None
    completed_at: datetime | None
    closed_at: datetime | None
    state_reason: str | None
    verification_url: str | None = None


class AcceptIn(Input, kw_only=True):
    comment: Annotated[str, msgspec.Meta(max_length=1_000)] = ""


class ChainStepRead(msgspec.Struct, kw_only=True):
    role: str
    kind: str
    label: str | None
    standard: bool


class ChainPolicyRead(msgspec.Struct, kw_only=True):
    """The chain permits of this type and level go through; ``custom`` when the tenant set it."""

    work_type: str
    level: str
    custom: bool
    steps: list[ChainStepRead]


def permit_row(permit: Permit) -> PermitRow:
    return PermitRow(
        id=permit.id,
        number=permit.number,
        version=permit.version,
        work_type=permit.work_type,
        level=permit.level,
        state=permit.state,
        plant_id=permit.plant_id,
        zone_id=permit.zone_id,
        contractor_id=permit.contractor_id,
        planned_start=permit.planned_start,
        planned_end=permit.planned_end,
    )


def summary_rows(rows: Sequence[Row[Any]]) -> list[PermitRow]:
    """Rows of :data:`services.SUMMARY_COLUMNS`, unpacked by position: reading each field of a
    row by name costs more than the rest of building a page of the list."""
    return [
        PermitRow(
            id=permit_id,
            number=number,
            version=version,
            work_type=work_type,
            level=level,
            state=state,
            plant_id=plant_id,
            zone_id=zone_id,
            contractor_id=contractor_id,
            planned_start=planned_start,
            planned_end=planned_end,
        )
        for (
            permit_id,
            number,
            version,
            work_type,
            level,
            state,
            plant_id,
            zone_id,
            contractor_id,
            _location,
            planned_start,
            planned_end,
        ) in rows
    ]


def _actions(permit: Permit) -> list[str]:
    """What the permit's state allows next, in the API's words; whether the caller may is
    checked when they act."""
    names = {
        PermitAction.APPROVE_STEP: "decide",
        PermitAction.APPROVE_LAST: "decide",
        PermitAction.REJECT: "decide",
        PermitAction.RETURN: "decide",
        PermitAction.SUBMIT: "submit",
        PermitAction.START: "start",
        PermitAction.SUSPEND: "suspend",
        PermitAction.RESUME: "resume",
        PermitAction.COMPLETE: "complete",
        PermitAction.ACCEPT: "accept",
        PermitAction.CANCEL: "cancel",
    }
    found = [names[action] for action in allowed_actions(permit.state) if action in names]
    if permit.state == PermitState.DRAFT.value:
        found.append("update")
    if permit.state in (PermitState.APPROVED.value, PermitState.SUSPENDED.value):
        found += ["revise", "gas_analysis", "confirm_checklist"]
    elif permit.state == PermitState.ACTIVE.value:
        found.append("gas_analysis")
    return list(dict.fromkeys(found)) if permit.state not in FINAL_STATES else []


def step_read(step: ApprovalStep) -> StepRead:
    return StepRead(
        position=step.position,
        role=step.role,
        kind=step.kind,
        label=_(chains.step_role_label(step)),
        clause=step.clause,
        status=step.status,
        activated_at=step.activated_at,
        due_at=step.due_at,
        escalations=step.escalations,
        decided_by=step.decided_by,
        decided_at=step.decided_at,
        comment=step.comment,
        on_site=step.on_site,
        minutes=round(step.minutes, 1) if step.minutes is not None else None,
    )


def gas_analysis_read(analysis: GasAnalysis) -> GasAnalysisRead:
    return GasAnalysisRead(
        id=analysis.id,
        permit_id=analysis.permit_id,
        sampled_at=analysis.sampled_at,
        point=analysis.point,
        readings=list(analysis.readings),
        analyst=analysis.analyst,
        instrument=analysis.instrument,
        passed=analysis.passed,
        violations=list(analysis.violations),
        recorded_by=analysis.recorded_by,
    )


def _checklist(permit: Permit) -> list[ChecklistItemRead]:
    labels = dict(CHECKLISTS[WorkType(permit.work_type)])
    return [
        ChecklistItemRead(
            code=item["code"],
            label=_(labels[item["code"]]) if item["code"] in labels else item["code"],
            applies=item["applies"],
            confirmed_by=uuid.UUID(item["confirmed_by"]) if item.get("confirmed_by") else None,
            confirmed_at=(
                datetime.fromisoformat(item["confirmed_at"]) if item.get("confirmed_at") else None
            ),
        )
        for item in permit.checklist
    ]


async def _crew(session: AsyncSession, members: list[PermitCrewMember]) -> list[CrewRead]:
    names = dict(
        (
            await session.execute(
                select(Worker.id, Worker.name).where(
                    Worker.id.in_([member.worker_id for member in members])
                )
            )
        ).all()
    )
    return [
        CrewRead(worker_id=m.worker_id, name=names.get(m.worker_id, ""), duty=m.duty)
        for m in members
    ]


async def permit_read(session: AsyncSession, settings: Settings, permit: Permit) -> PermitRead:
    row = permit_row(permit)
    return PermitRead(
        **msgspec.structs.asdict(row),
        requested_level=permit.requested_level,
        level_reasons=list(permit.level_reasons or []),
        supersedes_id=permit.supersedes_id,
        location=permit.location,
        work_content=permit.work_content,
        work_leader_id=permit.work_leader_id,
        guardian_worker_id=permit.guardian_worker_id,
        guardian_user_id=permit.guardian_user_id,
        related_numbers=list(permit.related_numbers or []),
        hazards=list(permit.hazards or []),
        emergency_measures=list(permit.emergency_measures or []),
        details=dict(permit.details or {}),
        crew=await _crew(session, await services.crew_of(session, permit.id)),
        checklist=_checklist(permit),
        steps=[step_read(step) for step in await services.steps_of(session, permit.id)],
        gas_analyses=[
            gas_analysis_read(analysis)
            for analysis in await services.gas_analyses_of(session, permit.id)
        ],
        allowed_actions=_actions(permit),
        content_hash=permit.content_hash,
        submitted_at=permit.submitted_at,
        approved_at=permit.approved_at,
        started_at=permit.started_at,
        paused_at=permit.paused_at,
        completed_at=permit.completed_at,
        closed_at=permit.closed_at,
        state_reason=permit.state_reason,
        # The QR code's signed link, once the permit is approved (numbered and frozen).
        verification_url=(
            records.permit_url(settings, permit) if permit.approved_at is not None else None
        ),
    )


def zone_read(zone: Zone) -> ZoneRead:
    return ZoneRead(
        id=zone.id,
        plant_id=zone.plant_id,
        name=zone.name,
        kind=zone.kind,
        geometry=dict(zone.geometry),
        radius_m=zone.radius_m,
        buffer_m=zone.buffer_m,
    )


def _aware(value: datetime | None, field_name: str) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise InvalidInput(field_name, "timezone", N_("Give the time with its UTC offset."))
    return value


# --- zones -----------------------------------------------------------------------------------


class ZoneController(Controller):
    path = "/api/v1/zones"
    tags = ["zones"]  # noqa: RUF012
    guards = [signed_in]  # noqa: RUF012

    @get(
        "/",
        summary="The zones of a plant",
        description="Work areas, restricted zones and assembly points, by name; geometry is "
        "GeoJSON in WGS-84 (longitude first), a circle as a `Point` with `radius_m`. A plant "
        "outside the caller's scope answers 404.",
    )
    async def list_zones(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        plant: ZonePlantQuery,
    ) -> list[ZoneRead]:
        plant_id = parse_id(plant, "plant_id")
        ensure_plant_in_scope(request.user, plant_id)
        return [zone_read(zone) for zone in await zone_services.list_zones(db_session, plant_id)]

    @post(
        "/",
        summary="Draw a zone",
        description="EHS officers and tenant administrators of the plant: a GeoJSON `Polygon` "
        "(closed, simple, WGS-84) or a `Circle` with its centre and radius, and a buffer that "
        "tolerates GPS error. Names are unique per plant (409 `unique`)." + _STOPS,
        guards=[_zone_editors],
    )
    async def create_zone(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        data: JSONBody[ZoneIn],
    ) -> ZoneRead:
        ensure_plant_in_scope(request.user, data.plant_id)
        zone = await zone_services.create_zone(db_session, data, actor_id=request.user.user_id)
        return zone_read(zone)

    @get("/{zone_id:str}", summary="One zone", description="Another tenant's id answers 404.")
    async def get_zone(
        self, request: Request[Principal, Any, Any], db_session: DbSession, zone_id: IdParam
    ) -> ZoneRead:
        zone = await zone_services.get_zone(db_session, parse_id(zone_id, "zone_id"))
        ensure_plant_in_scope(request.user, zone.plant_id)
        return zone_read(zone)

    @put(
        "/{zone_id:str}",
        summary="Redraw a zone",
        description="The whole zone again, as when it was drawn: shape, name, kind and buffer. "
        "A zone stays in its plant (422 `unchanged`); names stay unique per plant (409 "
        "`unique`); a retired zone or another tenant's answers 404. The ledger keeps the shape "
        "before and after." + _STOPS,
        guards=[_zone_editors],
    )
    async def update_zone(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        zone_id: IdParam,
        data: JSONBody[ZoneIn],
    ) -> ZoneRead:
        zone = await zone_services.get_zone(db_session, parse_id(zone_id, "zone_id"))
        ensure_plant_in_scope(request.user, zone.plant_id)
        zone = await zone_services.update_zone(
            db_session, zone.id, data, actor_id=request.user.user_id
        )
        return zone_read(zone)

    @delete(
        "/{zone_id:str}",
        summary="Retire a zone",
        description="Takes the zone off the plant's map; permits and alerts that name it keep "
        "it. Refused while jobs under way are watched in it (409 `in_use`)." + _STOPS,
        guards=[_zone_editors],
        status_code=HTTP_204_NO_CONTENT,
    )
    async def retire_zone(
        self, request: Request[Principal, Any, Any], db_session: DbSession, zone_id: IdParam
    ) -> None:
        zone = await zone_services.get_zone(db_session, parse_id(zone_id, "zone_id"))
        ensure_plant_in_scope(request.user, zone.plant_id)
        await zone_services.retire_zone(db_session, zone.id, actor_id=request.user.user_id)


# --- permits ---------------------------------------------------------------------------------


class PermitController(Controller):
    path = "/api/v1/permits"
    tags = ["permits"]  # noqa: RUF012
    guards = [signed_in]  # noqa: RUF012
    dependencies = _ACTOR

    @get(
        "/",
        summary="Permits the caller may see",
        description="Newest planned start first, 50 at a time; page on with `before` and "
        "`before_id` set to the last row's `planned_start` and `id`. Host users see the permits "
        "of their plants, contractor users their own company's.",
    )
    async def list_permits(
        self,
        db_session: DbSession,
        actor: ActorDep,
        plant: PlantQuery = None,
        work_type: WorkTypeQuery = None,
        in_state: PermitStateQuery = None,
        before: BeforeQuery = None,
        before_id: BeforeIdQuery = None,
    ) -> list[PermitRow]:
        after = None
        if before is not None or before_id is not None:
            if before is None or before_id is None:
                raise InvalidInput(
                    "before_id",
                    "together",
                    N_("Page on with both before and before_id from the last row."),
                )
            after = (_aware(before, "before"), parse_id(before_id, "before_id"))
        filters = services.PermitFilter(
            plant_id=parse_id(plant, "plant_id") if plant is not None else None,
            work_type=work_type.value if work_type is not None else None,
            state=in_state.value if in_state is not None else None,
            after=after,
        )
        return summary_rows(await services.list_permit_summaries(db_session, actor, filters))

    @post(
        "/",
        summary="Apply for a permit (draft)",
        description="The company's administrator: plant, zone, window, crew, work leader, one "
        "guardian (a worker or a host user), hazards, emergency measures, every control measure "
        "of the type answered, and the type's own `details` (told apart by `details.work_type`). "
        "The level is decided by the rules (hot work is raised one level on rest days, holidays "
        "and at night). Everyone named must be a worker of the applying company (422 "
        "`crew.same_company`, `subject` the worker id)." + _STOPS,
        guards=[_applicants],
    )
    async def create_permit(
        self,
        db_session: DbSession,
        settings: AppSettings,
        actor: ActorDep,
        data: JSONBody[PermitIn],
    ) -> PermitRead:
        permit = await services.create_permit(db_session, actor, data)
        return await permit_read(db_session, settings, permit)

    @get(
        "/{permit_id:str}",
        summary="One permit in full",
        description="The application, crew, checklist with who confirmed each measure, the "
        "approval chain step by step (role, status, due time, decider, whether they were on "
        "site, minutes taken), gas analyses, and `allowed_actions`: what the permit's state "
        "allows next. Another company's, plant's or tenant's permit answers 404.",
    )
    async def get_permit(
        self, db_session: DbSession, settings: AppSettings, actor: ActorDep, permit_id: IdParam
    ) -> PermitRead:
        permit = await services.get_permit(db_session, actor, parse_id(permit_id, "permit_id"))
        return await permit_read(db_session, settings, permit)

    @get(
        "/{permit_id:str}/permit.pdf",
        summary="The printed permit as PDF",
        description="The GB 30871 Appendix A layout with the QR code of its verification page, "
        "once approved (409 `permit.approved` before); whoever may see the permit.",
        media_type="application/pdf",
    )
    async def permit_pdf(
        self,
        db_session: DbSession,
        state: State,
        settings: AppSettings,
        actor: ActorDep,
        permit_id: IdParam,
    ) -> Response[bytes]:
        permit = await services.get_permit(db_session, actor, parse_id(permit_id, "permit_id"))
        if permit.approved_at is None:
            raise Conflict("state", "permit.approved", N_("A permit is printed once approved."))
        pdf = await records.permit_pdf(db_session, state.storage, settings, permit)
        filename = f"permit-{permit.number}-v{permit.version}.pdf"
        return Response(
            pdf,
            media_type="application/pdf",
            headers={
                "Content-Disposition": f'inline; filename="{filename}"',
                "Cache-Control": "private, no-store",
            },
        )

    @put(
        "/{permit_id:str}",
        summary="Change a draft",
        description="The applying company's administrator, while the permit is a draft (409 "
        "`permit.immutable` after submission: an approved permit is revised as a new version)."
        + _STOPS,
        guards=[_applicants],
    )
    async def update_permit(
        self,
        db_session: DbSession,
        settings: AppSettings,
        actor: ActorDep,
        permit_id: IdParam,
        data: JSONBody[PermitIn],
    ) -> PermitRead:
        permit = await services.update_permit(
            db_session, actor, parse_id(permit_id, "permit_id"), data
        )
        return await permit_read(db_session, settings, permit)

    @post(
        "/{permit_id:str}/submit",
        summary="Submit a draft for approval",
        description="Runs the submission gates — company admitted, crew certified and inducted "
        "for the whole window, guardian, checklist answered, validity, conflicts in the zone — "
        "and answers every failure at once (422, each with `rule`, `clause`, `subject`). Passed, "
        "the approval chain starts and its first approver is notified." + _STOPS,
        guards=[_applicants],
        status_code=HTTP_200_OK,
    )
    async def submit(
        self, db_session: DbSession, settings: AppSettings, actor: ActorDep, permit_id: IdParam
    ) -> PermitRead:
        permit = await services.submit(db_session, actor, parse_id(permit_id, "permit_id"))
        return await permit_read(db_session, settings, permit)

    @post(
        "/{permit_id:str}/decisions",
        summary="Decide the pending approval step",
        description="`approve`, `reject` or `return` (the last two with a comment), by a holder "
        "of the step's role on the permit's plant (or whoever it was escalated to); send "
        "`position` to record where the approver stood (§4.11a: an approval away from the zone "
        "is flagged). Approving runs the gates again; the last approval numbers the permit and "
        "freezes it. Someone not on the step gets 404; a step already decided 409 "
        "`step.pending`." + _STOPS,
        status_code=HTTP_200_OK,
    )
    async def decide(
        self,
        db_session: DbSession,
        settings: AppSettings,
        actor: ActorDep,
        permit_id: IdParam,
        data: JSONBody[DecisionIn],
    ) -> PermitRead:
        permit = await services.decide(db_session, actor, parse_id(permit_id, "permit_id"), data)
        return await permit_read(db_session, settings, permit)

    @post(
        "/{permit_id:str}/revisions",
        summary="Revise an approved permit as a new version",
        description="A change of content, crew, scope, place or time (§4.16): a new draft "
        "version with the same number goes through approval again; the approved one stays in "
        "force until the new one is approved, then it is superseded." + _STOPS,
        guards=[_applicants],
    )
    async def revise(
        self, db_session: DbSession, settings: AppSettings, actor: ActorDep, permit_id: IdParam
    ) -> PermitRead:
        permit = await services.revise(db_session, actor, parse_id(permit_id, "permit_id"))
        return await permit_read(db_session, settings, permit)

    @post(
        "/{permit_id:str}/gas-analyses",
        summary="Record a gas analysis",
        description="EHS, the unit's supervisor, the plant manager or a guardian of the plant, "
        "for an approved, active or suspended permit. Pass or fail is decided from the readings "
        "(§5.3.2, §6.4); impossible readings are refused (422 `gas.out_of_range`, "
        "`gas.wrong_unit`, `gas.unknown`). `sampled_at` within the last 24 hours." + _KEEPS_WORKING,
        opt=_SAFETY_ACTION,
    )
    async def record_gas_analysis(
        self,
        db_session: DbSession,
        actor: ActorDep,
        permit_id: IdParam,
        data: JSONBody[GasAnalysisIn],
    ) -> GasAnalysisRead:
        analysis = await services.record_gas_analysis(
            db_session, actor, parse_id(permit_id, "permit_id"), data
        )
        return gas_analysis_read(analysis)

    @post(
        "/{permit_id:str}/checklist/confirmations",
        summary="Confirm control measures on site",
        description="A supervisor or guardian of the plant confirms measures that apply, before "
        "work starts or resumes; each item records who and when. A measure that does not apply "
        "answers 422 `checklist.applies`." + _STOPS,
        status_code=HTTP_200_OK,
    )
    async def confirm_checklist(
        self,
        db_session: DbSession,
        settings: AppSettings,
        actor: ActorDep,
        permit_id: IdParam,
        data: JSONBody[ConfirmIn],
    ) -> PermitRead:
        permit = await services.confirm_checklist(
            db_session, actor, parse_id(permit_id, "permit_id"), data
        )
        return await permit_read(db_session, settings, permit)

    @post(
        "/{permit_id:str}/start",
        summary="Start the work",
        description="The guardian, the work leader or a supervisor of the plant, within the "
        "window, once the start gates pass: measures confirmed, the briefing signed by the "
        "briefer and the whole crew, and a passed gas analysis in time where the type needs "
        "one (422 with every failure)." + _NOT_YOURS + _STOPS,
        status_code=HTTP_200_OK,
    )
    async def start(
        self, db_session: DbSession, settings: AppSettings, actor: ActorDep, permit_id: IdParam
    ) -> PermitRead:
        permit = await services.start(db_session, actor, parse_id(permit_id, "permit_id"))
        return await permit_read(db_session, settings, permit)

    @post(
        "/{permit_id:str}/suspend",
        summary="Stop the work",
        description="The guardian or a supervisor of the plant, with the reason; the permit "
        "is suspended until resumed." + _NOT_YOURS + _KEEPS_WORKING,
        opt=_SAFETY_ACTION,
        status_code=HTTP_200_OK,
    )
    async def suspend(
        self,
        db_session: DbSession,
        settings: AppSettings,
        actor: ActorDep,
        permit_id: IdParam,
        data: JSONBody[ReasonIn],
    ) -> PermitRead:
        permit = await services.suspend(
            db_session, actor, parse_id(permit_id, "permit_id"), data.reason
        )
        return await permit_read(db_session, settings, permit)

    @post(
        "/{permit_id:str}/resume",
        summary="Resume suspended work",
        description="As starting: the gates run again (gas analysed again after a long pause, "
        "§5.3.1d, §6.3f)." + _NOT_YOURS + _STOPS,
        status_code=HTTP_200_OK,
    )
    async def resume(
        self, db_session: DbSession, settings: AppSettings, actor: ActorDep, permit_id: IdParam
    ) -> PermitRead:
        permit = await services.resume(db_session, actor, parse_id(permit_id, "permit_id"))
        return await permit_read(db_session, settings, permit)

    @post(
        "/{permit_id:str}/complete",
        summary="Report the work done",
        description="The work leader or the company's administrator." + _NOT_YOURS + _KEEPS_WORKING,
        opt=_SAFETY_ACTION,
        status_code=HTTP_200_OK,
    )
    async def complete(
        self, db_session: DbSession, settings: AppSettings, actor: ActorDep, permit_id: IdParam
    ) -> PermitRead:
        permit = await services.complete(db_session, actor, parse_id(permit_id, "permit_id"))
        return await permit_read(db_session, settings, permit)

    @post(
        "/{permit_id:str}/accept",
        summary="Accept the completed work (完工验收)",
        description="EHS or the unit's supervisor of the plant checks the site and closes the "
        "permit (§4.15)." + _NOT_YOURS + _KEEPS_WORKING,
        opt=_SAFETY_ACTION,
        status_code=HTTP_200_OK,
    )
    async def accept(
        self,
        db_session: DbSession,
        settings: AppSettings,
        actor: ActorDep,
        permit_id: IdParam,
        data: JSONBody[AcceptIn],
    ) -> PermitRead:
        permit = await services.accept(
            db_session, actor, parse_id(permit_id, "permit_id"), data.comment
        )
        return await permit_read(db_session, settings, permit)

    @post(
        "/{permit_id:str}/cancel",
        summary="Cancel a permit",
        description="The applying company's administrator or EHS of the plant, with the reason, "
        "before work starts; open approval steps are cancelled." + _NOT_YOURS + _KEEPS_WORKING,
        opt=_SAFETY_ACTION,
        status_code=HTTP_200_OK,
    )
    async def cancel(
        self,
        db_session: DbSession,
        settings: AppSettings,
        actor: ActorDep,
        permit_id: IdParam,
        data: JSONBody[ReasonIn],
    ) -> PermitRead:
        permit = await services.cancel(
            db_session, actor, parse_id(permit_id, "permit_id"), data.reason
        )
        return await permit_read(db_session, settings, permit)


# --- the tenant's approval chains ------------------------------------------------------------


def _chain_read(
    work_type: WorkType, level: str, custom: bool, steps: list[services.PolicyStep]
) -> ChainPolicyRead:
    return ChainPolicyRead(
        work_type=work_type.value,
        level=level,
        custom=custom,
        steps=[
            ChainStepRead(role=s.role, kind=s.kind, label=s.label, standard=s.standard)
            for s in steps
        ],
    )


class ChainPolicyController(Controller):
    path = "/api/v1/permit-chains"
    tags = ["permits"]  # noqa: RUF012
    guards = [_tenant_admins]  # noqa: RUF012

    @get(
        "/",
        summary="The approval chain of a work type and level",
        description="Tenant administrators: the tenant's chain if it set one (`custom`), else "
        "GB 30871 Table B.1's; `standard` marks the standard's steps.",
    )
    async def get_chain(
        self,
        db_session: DbSession,
        work_type: ChainWorkTypeQuery,
        level: ChainLevelQuery = "",
    ) -> ChainPolicyRead:
        custom, steps = await services.chain_policy(db_session, work_type, level)
        return _chain_read(work_type, level, custom, steps)

    @put(
        "/",
        summary="Set the approval chain of a work type and level",
        description="Tenant administrators may add their own steps (with a `label`) anywhere; "
        "every standard step of Table B.1 must stay, in its order (422 `approval.chain`, "
        "`clause` B.1, `subject` the missing role)." + _STOPS,
    )
    async def set_chain(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        data: JSONBody[ChainPolicyIn],
    ) -> ChainPolicyRead:
        try:
            work_type = WorkType(data.work_type)
        except ValueError as exc:
            raise InvalidInput("work_type", "enum", N_("Not one of the allowed values.")) from exc
        steps = await services.save_chain_policy(
            db_session,
            request.user,
            work_type,
            data.level,
            [msgspec.to_builtins(step) for step in data.steps],
        )
        return _chain_read(work_type, data.level, True, steps)


# --- the tenant's calendar -------------------------------------------------------------------

_hosts = requires_roles(*[role for role in Role if role.is_host])
YearQuery = Annotated[
    int, QueryParameter(name="year", ge=2000, le=2100, description="The calendar year")
]
DayParam = Annotated[
    str, Parameter(description="The local date, ISO 8601 (`2026-10-01`)", max_length=10)
]


class CalendarDayIn(Input, kw_only=True):
    """The tenant's own day: a site holiday, or a working day on what would be a weekend."""

    kind: Literal["holiday", "workday"]
    note: Annotated[str, msgspec.Meta(max_length=200)] | None = None


class CalendarDayRead(msgspec.Struct, kw_only=True):
    """One day of the calendar: ``kind`` is `national_holiday`, `national_workday` (a make-up
    working day), `tenant_holiday` or `tenant_workday`; ``rest_day`` is the day as the level
    rules see it, everything merged (hot work on a rest day is raised one level, §5.1.1)."""

    day: date
    kind: str
    note: str | None
    rest_day: bool


def _calendar_read(entry: services.CalendarEntry) -> CalendarDayRead:
    return CalendarDayRead(day=entry.day, kind=entry.kind, note=entry.note, rest_day=entry.rest_day)


def _parse_day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise InvalidInput("day", "date", N_("Give the day as YYYY-MM-DD.")) from exc


class PermitCalendarController(Controller):
    path = "/api/v1/permit-calendar"
    tags = ["permits"]  # noqa: RUF012
    guards = [signed_in]  # noqa: RUF012

    @get(
        "/",
        summary="The calendar hot work levels follow",
        description="Host users: the national public holidays and make-up working days of the "
        "year (the State Council's arrangement where published; for a year not yet published "
        "the statutory holidays only) with the tenant's own holidays and working days, by date. "
        "A day the tenant marked on top of a national one is listed twice; `rest_day` is the "
        "day as the level rules see it (hot work on a holiday or rest day is raised one level, "
        "GB 30871 §5.1.1). Weekends not listed are rest days.",
        guards=[_hosts],
    )
    async def list_calendar(self, db_session: DbSession, year: YearQuery) -> list[CalendarDayRead]:
        return [_calendar_read(entry) for entry in await services.list_calendar(db_session, year)]

    @put(
        "/{day:str}",
        summary="Set one of the tenant's own days",
        description="Tenant administrators: `holiday` (a site rest day: hot work on it is "
        "raised one level) or `workday` (a weekend worked as a normal day), replacing what was "
        "set for the day before. The tenant may tighten the national calendar but never loosen "
        "it: a `workday` on a national public holiday is refused (422 `calendar.holiday_kept`, "
        "`clause` §5.1.1, `subject` the day). Permits already applied for keep their level "
        "until they are changed." + _STOPS,
        guards=[_tenant_admins],
    )
    async def set_calendar_day(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        day: DayParam,
        data: JSONBody[CalendarDayIn],
    ) -> CalendarDayRead:
        entry = await services.set_calendar_day(
            db_session, request.user, _parse_day(day), data.kind, data.note
        )
        return _calendar_read(entry)

    @delete(
        "/{day:str}",
        summary="Remove one of the tenant's own days",
        description="Tenant administrators: the national calendar applies to the day again "
        "(404 when the tenant set nothing for it)." + _STOPS,
        guards=[_tenant_admins],
        status_code=HTTP_204_NO_CONTENT,
    )
    async def delete_calendar_day(
        self, request: Request[Principal, Any, Any], db_session: DbSession, day: DayParam
    ) -> None:
        await services.delete_calendar_day(db_session, request.user, _parse_day(day))
