"""Work permit pages (作业票): the plant's permit list with the caller's approval queue, the
application form of a contractor's administrator, and the permit page where the chain is
decided, gas analysed, measures confirmed and the work started, stopped, completed and accepted.

The pages parse forms, call ``permits.services`` and render; every rule lives there. The
type-specific part of the form is drawn from :data:`DETAIL_FIELDS`, a description of which
inputs each work type shows — what they must hold is still decided by ``PermitIn``. A refused
form comes back with what was typed, each problem next to its field, and gate failures listed
with their rule, the clause of GB 30871 and the person or item concerned.
"""

from __future__ import annotations

import importlib
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotFoundException
from litestar.params import Body, FromPath, FromQuery, QueryParameter
from litestar.response import Redirect, Template
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from geofence.models import Zone
from geofence.services import list_zones
from infra.errors import DomainError, FieldProblem, NotFound, RulesBroken
from infra.i18n import N_
from infra.i18n import gettext as _
from infra.settings import Settings
from onboarding import services as onboarding
from onboarding.access import viewer_for
from onboarding.catalogue import WORK_TYPE_LABELS, WorkType
from onboarding.models import Contractor, Worker
from permits import chains, services
from permits.catalogue import CHECKLISTS, GAS_ANALYSED, HOT_WORK_LEVEL_LABELS, level_label
from permits.gates import GUARDIAN_ROLES
from permits.models import ApprovalStep, Permit
from permits.rules import GASES, RULES, GasUnit, HeightHazard
from permits.schemas import ConfirmIn, DecisionIn, GasAnalysisIn, PermitIn
from permits.states import EDITABLE_STATES, PermitAction, PermitState, allowed_actions
from portal.dependencies import AppSettings, DbSession
from portal.guards import requires_roles, signed_in
from portal.web.forms import (
    INVALID_FORM,
    convert,
    ensure_own_tenant,
    field_text,
    field_texts,
    page_id,
)
from portal.web.onboarding import FormErrors
from scoring import services as scoring
from tenants import services as tenants
from tenants.access import Principal, has_role_for_plant, visible_plant_ids
from tenants.models import Plant, Role, User
from training import briefings

MultipartForm = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.MULTI_PART)]
_LONG_LIMIT = 4_000
_REQUIRED = N_("This field is required.")
_BAD_TIME = N_("Give a date and time.")
_BAD_INTEGER = N_("Must be a whole number.")
_BAD_NUMBER = N_("Must be a number.")
GAS_ROWS = 4
_applicants = requires_roles(Role.CONTRACTOR_ADMIN)

STATE_LABELS = {
    PermitState.DRAFT: N_("Draft"),
    PermitState.SUBMITTED: N_("Submitted"),
    PermitState.IN_APPROVAL: N_("In approval"),
    # Not the admission msgids "Approved"/"Rejected": those read 已准入/未通过 in Chinese.
    PermitState.APPROVED: N_("Permit approved"),
    PermitState.ACTIVE: N_("Work in progress"),
    PermitState.SUSPENDED: N_("Suspended"),
    PermitState.COMPLETED: N_("Completed"),
    PermitState.CLOSED: N_("Closed"),
    PermitState.REJECTED: N_("Permit rejected"),
    PermitState.CANCELLED: N_("Cancelled"),
    PermitState.EXPIRED: N_("Expired"),
    PermitState.SUPERSEDED: N_("Superseded"),
}
STEP_STATUS_LABELS = {
    "waiting": N_("Waiting"),
    "pending": N_("Waiting for decision"),
    "approved": N_("Agreed"),
    "rejected": N_("Refused"),
    "returned": N_("Returned for changes"),
    "cancelled": N_("Cancelled"),
}
STEP_KIND_LABELS = {
    "review": N_("Opinion"),
    "co_sign": N_("Co-signature"),
    "approve": N_("Approval"),
    "check": N_("Check before work"),
}
DECISION_LABELS = {
    "approve": N_("Approve"),
    "reject": N_("Reject"),
    "return": N_("Return for changes"),
}
UNIT_LABELS = {GasUnit.PERCENT_VOL: "% v/v", GasUnit.PPM: "ppm", GasUnit.MG_M3: "mg/m³"}
UPGRADE_LABELS = {
    "holiday": "hot_work.upgrade_holiday",
    "rest_day": "hot_work.upgrade_rest_day",
    "night": "hot_work.upgrade_night",
    "wind": "hot_work.upgrade_wind",
}
# The buttons of the permit page, in the order they are shown, with what each one asks for.
ACTION_LABELS = {
    PermitAction.START: N_("Start work"),
    PermitAction.SUSPEND: N_("Suspend work"),
    PermitAction.RESUME: N_("Resume work"),
    PermitAction.COMPLETE: N_("Report work completed"),
    PermitAction.ACCEPT: N_("Accept completion"),
    PermitAction.CANCEL: N_("Cancel permit"),
}
ASKS_REASON = {PermitAction.SUSPEND, PermitAction.CANCEL}
ASKS_COMMENT = {PermitAction.ACCEPT}


# --- the type-specific fields ----------------------------------------------------------------


@dataclass(frozen=True)
class DetailField:
    """One input of a work type's own part of the form. ``kind`` picks the widget and how the
    typed text is read: choice, multi (checkboxes), bool, int, number, text, long, worker
    (one of the crew), workers."""

    name: str
    kind: str
    label: str
    options: tuple[tuple[str, str], ...] = ()
    required: bool = True
    hint: str | None = None


_D = DetailField
_HOT_LEVELS = tuple(HOT_WORK_LEVEL_LABELS.items())


_HOT_METHODS = (
    ("electric_welding", N_("Electric welding")),
    ("gas_welding", N_("Gas welding")),
    ("cutting", N_("Cutting")),
    ("grinding", N_("Grinding")),
    ("heating", N_("Heating")),
    ("other", N_("Other")),
)
_HEIGHT_HAZARDS = (
    (HeightHazard.GUSTS.value, N_("Gusts of force 5 or more")),
    (HeightHazard.COLD.value, N_("Ambient 5 °C or colder")),
    (HeightHazard.COLD_WATER.value, N_("Near water of 12 °C or colder")),
    (HeightHazard.SLIPPERY.value, N_("Slippery surface")),
    (HeightHazard.POOR_LIGHT.value, N_("Poor light")),
    (HeightHazard.LIVE_CONDUCTORS.value, N_("Near live conductors")),
    (HeightHazard.UNSTABLE_FOOTING.value, N_("Unstable footing")),
    (HeightHazard.TOXIC_OR_LOW_OXYGEN.value, N_("Toxic gas, or oxygen under 19.5 per cent")),
    (HeightHazard.RESCUE.value, N_("Disaster rescue")),
)
_WIND_HINT = N_("Beaufort force, 0 to 17.")
DETAIL_FIELDS: dict[WorkType, tuple[DetailField, ...]] = {
    WorkType.HOT_WORK: (
        _D(
            "requested_level",
            "choice",
            N_("Requested level"),
            _HOT_LEVELS,
            hint=N_("Holidays, rest days, night work and strong wind raise it one level."),
        ),
        _D("method", "choice", N_("Method"), _HOT_METHODS),
        _D("outdoor", "bool", N_("Outdoors")),
        _D("wind_force", "int", N_("Wind force"), hint=_WIND_HINT),
        _D("oxygen_equipment", "bool", N_("On oxygen equipment")),
    ),
    WorkType.CONFINED_SPACE: (
        _D("space_name", "text", N_("Confined space")),
        _D("medium", "text", N_("Medium it held")),
        _D("oxygen_rich", "bool", N_("Oxygen-rich setting")),
    ),
    WorkType.BLIND_PLATE: (
        _D("pipeline_id", "text", N_("Pipeline")),
        _D("blind_id", "text", N_("Blind number")),
        _D(
            "action",
            "choice",
            N_("Action"),
            (("insert", N_("Insert the blind")), ("remove", N_("Remove the blind"))),
        ),
        _D("medium", "text", N_("Medium")),
        _D("temperature_c", "number", N_("Temperature (°C)")),
        _D("pressure_mpa", "number", N_("Pressure (MPa)")),
        _D("blind_material", "text", N_("Blind material")),
        _D("blind_size", "text", N_("Blind size")),
    ),
    WorkType.HEIGHT: (
        _D("height_m", "number", N_("Working height (m)")),
        _D("hazards", "multi", N_("Objective hazards (§8.1.2)"), _HEIGHT_HAZARDS, required=False),
        _D("has_communication", "bool", N_("Communication equipment on hand")),
        _D("wind_force", "int", N_("Wind force"), hint=_WIND_HINT),
        _D("dense_fog", "bool", N_("Dense fog")),
    ),
    WorkType.LIFTING: (
        _D("load_t", "number", N_("Load (t)")),
        _D("crane", "text", N_("Crane")),
        _D("operator_id", "worker", N_("Crane operator")),
        _D("signaller_id", "worker", N_("Signaller")),
        _D("rigger_ids", "workers", N_("Riggers"), required=False),
    ),
    WorkType.TEMP_POWER: (
        _D("source", "text", N_("Power source")),
        _D("voltage_v", "int", N_("Voltage (V)")),
        _D("load_kw", "number", N_("Load (kW)")),
        _D(
            "served_permit_number",
            "text",
            N_("Hot work or confined space permit served"),
            required=False,
        ),
        _D("special_case", "bool", N_("Special case (up to 30 days)")),
    ),
    WorkType.EXCAVATION: (
        _D("depth_m", "number", N_("Depth (m)")),
        _D("extent", "text", N_("Extent")),
        _D("hazardous_area", "bool", N_("In a hazardous area")),
        _D("near_buried_hazardous_line", "bool", N_("Near buried flammable or toxic lines")),
    ),
    WorkType.ROAD_CLOSURE: (
        _D("road_section", "text", N_("Road section")),
        _D("traffic_plan", "long", N_("Traffic diversion plan")),
    ),
}
FORM_FIELDS = (
    "plant_id",
    "zone_id",
    "work_type",
    "location",
    "work_content",
    "planned_start",
    "planned_end",
    "crew",
    "work_leader_id",
    "guardian",
    "related_numbers",
    "hazards",
    "emergency_measures",
)
_ALIASES = {"guardian_worker_id": "guardian", "guardian_user_id": "guardian", "crew_duty": "crew"}


# --- small helpers ---------------------------------------------------------------------------


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def _maybe_id(value: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID((value or "")[:64]) if value else None
    except ValueError:
        return None


def _local_input(value: datetime | None, timezone: str) -> str:
    """An instant as a ``datetime-local`` value on the plant's clock."""
    if value is None:
        return ""
    return value.astimezone(ZoneInfo(timezone)).strftime("%Y-%m-%dT%H:%M")


def _parse_local(text: str, timezone: str) -> datetime | None:
    """A ``datetime-local`` value read on the plant's clock, as an aware instant."""
    for pattern in ("%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"):
        try:
            naive = datetime.strptime(text, pattern)
        except ValueError:
            continue
        return naive.replace(tzinfo=ZoneInfo(timezone))
    return None


def _records() -> Any | None:
    """``permits.records`` (the permit PDF and its QR link), once it exists."""
    try:
        return importlib.import_module("permits.records")
    except ImportError:
        return None


async def _names(session: AsyncSession, model: Any, ids: Iterable[uuid.UUID | None]) -> dict:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    rows = await session.execute(select(model.id, model.name).where(model.id.in_(wanted)))
    return {row[0]: row[1] for row in rows}


@dataclass(frozen=True)
class GateProblem:
    """A refused rule as the page lists it."""

    message: str
    rule: str
    clause: str | None
    subject: str | None


def _gate_problems(
    exc: DomainError, subjects: dict[str, str], checklist_labels: dict[str, str]
) -> list[GateProblem]:
    found = []
    for problem in exc.problems:
        subject = problem.subject
        if subject is not None:
            subject = subjects.get(subject, subject)
        elif problem.field.startswith("checklist."):
            code = problem.field.removeprefix("checklist.")
            subject = _(checklist_labels[code]) if code in checklist_labels else code
        clause = problem.clause or problem.params.get("clause")
        found.append(
            GateProblem(
                _(problem.message, **problem.params),
                problem.rule,
                f"GB 30871 {clause}" if clause else None,
                subject,
            )
        )
    return found


# --- who may do what (the services decide; the page only hides what would be refused) --------


@dataclass(frozen=True)
class Abilities:
    decide: bool
    edit: bool
    submit: bool
    revise: bool
    supervise: bool
    brief: bool
    actions: list[PermitAction]


def _abilities(actor: services.Actor, permit: Permit, can_decide: bool) -> Abilities:
    principal = actor.principal
    applicant = actor.applies_for(permit.contractor_id)
    supervisor = has_role_for_plant(principal, services.SUPERVISOR_ROLES, permit.plant_id)
    guardian = actor.user_id == permit.guardian_user_id or (
        actor.worker_id is not None and actor.worker_id == permit.guardian_worker_id
    )
    leader = actor.worker_id is not None and actor.worker_id == permit.work_leader_id
    may = {
        PermitAction.START: guardian or leader or supervisor,
        PermitAction.RESUME: guardian or leader or supervisor,
        PermitAction.SUSPEND: guardian or supervisor,
        PermitAction.COMPLETE: leader or applicant,
        PermitAction.ACCEPT: has_role_for_plant(
            principal, services.ACCEPTOR_ROLES, permit.plant_id
        ),
        PermitAction.CANCEL: applicant
        or has_role_for_plant(principal, (Role.EHS_OFFICER,), permit.plant_id),
    }
    state_allows = allowed_actions(permit.state)
    return Abilities(
        decide=can_decide,
        edit=applicant and permit.state in EDITABLE_STATES,
        submit=applicant and PermitAction.SUBMIT in state_allows,
        revise=applicant
        and permit.state in (PermitState.APPROVED.value, PermitState.SUSPENDED.value),
        supervise=has_role_for_plant(
            principal, (*services.SUPERVISOR_ROLES, Role.GUARDIAN), permit.plant_id
        ),
        brief=has_role_for_plant(principal, briefings.BRIEFER_ROLES, permit.plant_id),
        actions=[action for action in ACTION_LABELS if action in state_allows and may[action]],
    )


async def _may_decide(
    session: AsyncSession, actor: services.Actor, permit: Permit
) -> tuple[ApprovalStep | None, bool]:
    if permit.state not in (PermitState.SUBMITTED.value, PermitState.IN_APPROVAL.value):
        return None, False
    step = await services.current_step(session, permit)
    if step is None:
        return None, False
    allowed = await session.run_sync(
        lambda sync: chains.may_decide(sync, permit, step, actor.user_id)
    )
    return step, allowed


async def _queue(session: AsyncSession, actor: services.Actor) -> list[Permit]:
    """The permits whose pending step this user may decide now."""
    waiting: list[Permit] = []
    for state in (PermitState.SUBMITTED, PermitState.IN_APPROVAL):
        for permit in await services.list_permits(
            session, actor, services.PermitFilter(state=state.value), limit=200
        ):
            if (await _may_decide(session, actor, permit))[1]:
                waiting.append(permit)
    return sorted(waiting, key=lambda permit: permit.planned_start)


# --- the application form --------------------------------------------------------------------


@dataclass
class FormChoices:
    plant: Plant
    work_type: WorkType
    zones: list[Zone]
    workers: list[Worker]
    guardians: list[User]


async def _choices(
    session: AsyncSession, actor: services.Actor, plant_id: uuid.UUID, work_type: WorkType
) -> FormChoices:
    plant = await session.scalar(select(Plant).where(Plant.id == plant_id))
    if plant is None:
        raise NotFoundException()
    viewer = await viewer_for(session, actor.principal)
    if viewer.contractor_id is None:
        raise NotFoundException()
    workers = await onboarding.list_workers(session, viewer, viewer.contractor_id)
    guardians = list(
        await session.scalars(tenants.role_holders(GUARDIAN_ROLES, plant.id).order_by(User.name))
    )
    zones = [zone for zone in await list_zones(session, plant.id) if zone.retired_at is None]
    return FormChoices(plant, work_type, zones, workers, guardians)


def _detail_payload(
    work_type: WorkType, data: dict[str, Any], problems: list[FieldProblem]
) -> dict[str, Any]:
    details: dict[str, Any] = {"work_type": work_type.value}
    for spec in DETAIL_FIELDS[work_type]:
        name = f"details_{spec.name}"
        text = field_text(data, name, _LONG_LIMIT)
        if spec.kind == "bool":
            details[spec.name] = text == "yes"
        elif spec.kind in ("multi", "workers"):
            details[spec.name] = field_texts(data, name)
        elif not text:
            if spec.required:
                problems.append(FieldProblem(name, "required", _REQUIRED))
        elif spec.kind == "int":
            try:
                details[spec.name] = int(text)
            except ValueError:
                problems.append(FieldProblem(name, "integer", _BAD_INTEGER))
        elif spec.kind == "number":
            try:
                details[spec.name] = float(text.replace(",", "."))
            except ValueError:
                problems.append(FieldProblem(name, "number", _BAD_NUMBER))
        else:
            details[spec.name] = text
    return details


def _permit_in(data: dict[str, Any], choices: FormChoices) -> PermitIn:
    """The form as a ``PermitIn``; every empty or unreadable field is named at once, the rest
    is msgspec's to judge."""
    problems: list[FieldProblem] = []
    timezone = choices.plant.timezone
    for name in ("zone_id", "location", "work_content", "work_leader_id"):
        if not field_text(data, name):
            problems.append(FieldProblem(name, "required", _REQUIRED))
    window: dict[str, datetime] = {}
    for name in ("planned_start", "planned_end"):
        text = field_text(data, name)
        moment = _parse_local(text, timezone) if text else None
        if moment is None:
            problems.append(FieldProblem(name, "required" if not text else "datetime", _BAD_TIME))
        else:
            window[name] = moment
    crew = [
        {"worker_id": worker_id, "duty": field_text(data, f"duty_{worker_id}")[:40] or None}
        for worker_id in field_texts(data, "crew")
    ]
    if not crew:
        problems.append(FieldProblem("crew", "required", N_("Tick at least one crew member.")))
    guardian = field_text(data, "guardian")
    kind, _sep, guardian_id = guardian.partition(":")
    if kind not in ("worker", "user") or not guardian_id:
        problems.append(FieldProblem("guardian", "required", _REQUIRED))
    for name in ("hazards", "emergency_measures"):
        if not _lines(field_text(data, name, _LONG_LIMIT)):
            problems.append(FieldProblem(name, "required", N_("Write at least one line.")))
    checklist = []
    for code, _label in CHECKLISTS[choices.work_type]:
        answer = field_text(data, f"checklist_{code}")
        if answer in ("yes", "no"):
            checklist.append({"code": code, "applies": answer == "yes"})
        else:
            problems.append(
                FieldProblem(
                    f"checklist_{code}", "required", N_("Say whether this measure applies.")
                )
            )
    details = _detail_payload(choices.work_type, data, problems)
    if problems:
        raise DomainError(INVALID_FORM, problems)
    payload: dict[str, Any] = {
        "plant_id": str(choices.plant.id),
        "zone_id": field_text(data, "zone_id"),
        "location": field_text(data, "location"),
        "work_content": field_text(data, "work_content", _LONG_LIMIT),
        **window,
        "crew": crew,
        "work_leader_id": field_text(data, "work_leader_id"),
        "related_numbers": _lines(field_text(data, "related_numbers", _LONG_LIMIT)),
        "hazards": _lines(field_text(data, "hazards", _LONG_LIMIT)),
        "emergency_measures": _lines(field_text(data, "emergency_measures", _LONG_LIMIT)),
        "checklist": checklist,
        "details": details,
    }
    payload["guardian_worker_id" if kind == "worker" else "guardian_user_id"] = guardian_id
    return convert(payload, PermitIn)


def _form_values(data: dict[str, Any]) -> dict[str, Any]:
    """What was typed, to fill the form in again."""
    values: dict[str, Any] = {
        name: field_text(data, name, _LONG_LIMIT) for name in FORM_FIELDS if name != "crew"
    }
    values["crew"] = field_texts(data, "crew")
    for key in data:
        if key.startswith(("duty_", "checklist_", "details_")):
            values[key] = (
                field_texts(data, key)
                if isinstance(data[key], list)
                else field_text(data, key, _LONG_LIMIT)
            )
    return values


async def _permit_values(session: AsyncSession, permit: Permit, timezone: str) -> dict[str, Any]:
    crew = await services.crew_of(session, permit.id)
    values: dict[str, Any] = {
        "plant_id": str(permit.plant_id),
        "zone_id": str(permit.zone_id),
        "work_type": permit.work_type,
        "location": permit.location,
        "work_content": permit.work_content,
        "planned_start": _local_input(permit.planned_start, timezone),
        "planned_end": _local_input(permit.planned_end, timezone),
        "crew": [str(member.worker_id) for member in crew],
        "work_leader_id": str(permit.work_leader_id),
        "guardian": f"worker:{permit.guardian_worker_id}"
        if permit.guardian_worker_id
        else f"user:{permit.guardian_user_id}",
        "related_numbers": "\n".join(permit.related_numbers),
        "hazards": "\n".join(permit.hazards),
        "emergency_measures": "\n".join(permit.emergency_measures),
    }
    for member in crew:
        values[f"duty_{member.worker_id}"] = member.duty or ""
    for item in permit.checklist:
        values[f"checklist_{item['code']}"] = "yes" if item["applies"] else "no"
    for spec in DETAIL_FIELDS[WorkType(permit.work_type)]:
        value = permit.details.get(spec.name)
        name = f"details_{spec.name}"
        if spec.kind == "bool":
            values[name] = "yes" if value else ""
        elif spec.kind in ("multi", "workers"):
            values[name] = [str(item) for item in value or []]
        else:
            values[name] = "" if value is None else str(value)
    return values


def _known_fields(work_type: WorkType) -> set[str]:
    known = set(FORM_FIELDS)
    known.update(f"checklist_{code}" for code, _label in CHECKLISTS[work_type])
    known.update(f"details_{spec.name}" for spec in DETAIL_FIELDS[work_type])
    return known


async def _form_page(
    session: AsyncSession,
    actor: services.Actor,
    slug: str,
    *,
    choices: FormChoices | None,
    plants: Sequence[Plant],
    values: dict[str, Any],
    permit: Permit | None = None,
    errors: FormErrors | None = None,
    problems: Sequence[GateProblem] = (),
    status_code: int = 200,
) -> Template:
    return Template(
        "permits/form.html",
        context={
            "tenant_slug": slug,
            "plants": plants,
            "work_types": list(WorkType),
            "work_type_labels": WORK_TYPE_LABELS,
            "choices": choices,
            "detail_fields": DETAIL_FIELDS[choices.work_type] if choices else (),
            "checklist": CHECKLISTS[choices.work_type] if choices else (),
            "values": values,
            "permit": permit,
            "errors": errors or FormErrors(),
            "problems": problems,
            "action": f"/t/{slug}/permits/{permit.id}/edit" if permit else f"/t/{slug}/permits/new",
        },
        status_code=status_code,
    )


def _work_type(value: str | None) -> WorkType | None:
    try:
        return WorkType(value) if value else None
    except ValueError:
        return None


# --- the permit page -------------------------------------------------------------------------


def _problem_text(entry: dict[str, Any]) -> str:
    rule = RULES.get(entry.get("rule", ""))
    if rule is None:
        return entry.get("rule", "")
    params = dict(entry.get("params") or {})
    if "gas" in params:
        gas = GASES.get(str(params["gas"]))
        params["gas"] = _(gas.name) if gas else params["gas"]
    if "unit" in params:
        params["unit"] = UNIT_LABELS.get(params["unit"], params["unit"])
    try:
        return _(rule.message, **params)
    except (KeyError, ValueError, TypeError):
        return _(rule.message.split("%(")[0]) if "%(" in rule.message else _(rule.message)


async def _permit_page(
    session: AsyncSession,
    actor: services.Actor,
    settings: Settings,
    slug: str,
    permit_id: uuid.UUID,
    *,
    problems: Sequence[GateProblem] = (),
    problem_heading: str | None = None,
    errors: FormErrors | None = None,
    values: dict[str, Any] | None = None,
    notice: str | None = None,
    status_code: int = 200,
) -> Template:
    permit = await services.get_permit(session, actor, permit_id)
    plant = (await session.execute(select(Plant).where(Plant.id == permit.plant_id))).scalar_one()
    zone = await session.scalar(select(Zone).where(Zone.id == permit.zone_id))
    contractor = await session.scalar(
        select(Contractor.name).where(Contractor.id == permit.contractor_id)
    )
    crew = await services.crew_of(session, permit.id)
    steps = await services.steps_of(session, permit.id)
    analyses = await services.gas_analyses_of(session, permit.id)
    work_type = WorkType(permit.work_type)
    details = permit.details
    lifting_ids = [details.get("operator_id"), details.get("signaller_id")]
    worker_names = await _names(
        session,
        Worker,
        [
            *(member.worker_id for member in crew),
            permit.work_leader_id,
            permit.guardian_worker_id,
            *(_maybe_id(str(i)) for i in [*lifting_ids, *details.get("rigger_ids", [])] if i),
        ],
    )
    user_ids = [permit.guardian_user_id, permit.applicant_id]
    user_ids += [step.decided_by for step in steps]
    user_ids += [_maybe_id(item.get("confirmed_by")) for item in permit.checklist]
    user_ids += [analysis.recorded_by for analysis in analyses]
    user_names = await _names(session, User, user_ids)
    step, can_decide = await _may_decide(session, actor, permit)
    abilities = _abilities(actor, permit, can_decide)
    labels = dict(CHECKLISTS[work_type])
    detail_rows = []
    for spec in DETAIL_FIELDS[work_type]:
        value = details.get(spec.name)
        if spec.kind == "bool":
            shown = _("Yes") if value else _("No")
        elif spec.kind == "choice":
            shown = _(dict(spec.options).get(str(value), str(value)))
        elif spec.kind == "multi":
            options = dict(spec.options)
            shown = "、".join(_(options.get(v, v)) for v in value or []) or "—"
        elif spec.kind == "worker":
            shown = worker_names.get(_maybe_id(str(value)), "") if value else "—"
        elif spec.kind == "workers":
            shown = "、".join(worker_names.get(_maybe_id(str(v)), "") for v in value or []) or "—"
        else:
            shown = "—" if value in (None, "") else str(value)
        detail_rows.append((spec.label, shown))
    reasons = []
    for reason in permit.level_reasons:
        rule = RULES.get(UPGRADE_LABELS.get(reason, reason))
        if rule is not None:
            reasons.append(
                (_(rule.message, force=details.get("wind_force", "")), f"GB 30871 {rule.clause}")
            )
    briefing = await briefings.live_briefing(session, permit.id)
    records = _records()
    verify_url = pdf_url = None
    if records is not None and permit.number and permit.approved_at is not None:
        permit_url = getattr(records, "permit_url", None)
        if permit_url is not None:
            # Shown on a page, the link must work on whichever address the browser used: the
            # same-site part is kept as a path (the QR code itself carries the full address).
            verify_url = permit_url(settings, permit)
            base = settings.base_url.rstrip("/")
            if verify_url.startswith(base + "/"):
                verify_url = verify_url[len(base) :]
        if hasattr(records, "permit_pdf"):
            pdf_url = f"/t/{slug}/permits/{permit.id}/permit.pdf"
    rating = (
        await scoring.rating_of_permit(session, actor, permit.id)
        if permit.state in scoring.RATED_STATES
        else None
    )
    timezone = plant.timezone
    return Template(
        "permits/permit.html",
        context={
            "tenant_slug": slug,
            "permit": permit,
            "plant": plant,
            "zone": zone,
            "contractor_name": contractor or "",
            "timezone": timezone,
            "work_type_label": WORK_TYPE_LABELS[work_type],
            "level_label": level_label(permit.work_type, permit.level),
            "requested_label": level_label(permit.work_type, permit.requested_level),
            "level_reasons": reasons,
            "state_labels": STATE_LABELS,
            "detail_rows": detail_rows,
            "crew": [(worker_names.get(m.worker_id, ""), m.duty) for m in crew],
            "work_leader": worker_names.get(permit.work_leader_id, ""),
            "guardian": worker_names.get(permit.guardian_worker_id)
            if permit.guardian_worker_id
            else user_names.get(permit.guardian_user_id, ""),
            "applicant": user_names.get(permit.applicant_id, ""),
            "steps": [
                {
                    "step": item,
                    "label": chains.step_role_label(item),
                    "kind": STEP_KIND_LABELS.get(item.kind, item.kind),
                    "status": STEP_STATUS_LABELS.get(item.status, item.status),
                    "decider": user_names.get(item.decided_by, ""),
                }
                for item in steps
            ],
            "current_step": step,
            "current_label": chains.step_role_label(step) if step else "",
            "decision_labels": DECISION_LABELS,
            "checklist": [
                {
                    **item,
                    "label": labels.get(item["code"], item["code"]),
                    "confirmer": user_names.get(_maybe_id(item.get("confirmed_by")), ""),
                    "confirmed_at_time": datetime.fromisoformat(item["confirmed_at"])
                    if item.get("confirmed_at")
                    else None,
                }
                for item in permit.checklist
            ],
            "analyses": [
                {
                    "analysis": analysis,
                    "recorder": user_names.get(analysis.recorded_by, ""),
                    "readings": [
                        (
                            _(GASES[r["gas"]].name) if r["gas"] in GASES else r["gas"],
                            r["value"],
                            UNIT_LABELS.get(r["unit"], r["unit"]),
                        )
                        for r in analysis.readings
                    ],
                    "violations": [_problem_text(v) for v in analysis.violations],
                }
                for analysis in analyses
            ],
            "gas_needed": work_type in GAS_ANALYSED or work_type is WorkType.EXCAVATION,
            "gases": [(code, gas.name) for code, gas in GASES.items()],
            "units": UNIT_LABELS,
            "gas_rows": range(GAS_ROWS),
            "can": abilities,
            "action_labels": ACTION_LABELS,
            "asks_reason": ASKS_REASON,
            "asks_comment": ASKS_COMMENT,
            "briefing": briefing,
            "verify_url": verify_url,
            "rating": rating,
            "pdf_url": pdf_url,
            "records_ready": records is not None,
            "problems": problems,
            "problem_heading": problem_heading,
            "errors": errors or FormErrors(),
            "values": values
            or {"sampled_at": _local_input(datetime.now(ZoneInfo(timezone)), timezone)},
            "notice": notice,
        },
        status_code=status_code,
    )


# --- routes ----------------------------------------------------------------------------------


class PermitPages(Controller):
    include_in_schema = False

    async def _actor(
        self, session: AsyncSession, principal: Principal, slug: str
    ) -> services.Actor:
        ensure_own_tenant(principal, slug)
        return await services.actor_for(session, principal)

    @get("/t/{slug:str}/permits", guards=[signed_in])
    async def index(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        slug: FromPath[str],
        plant: FromQuery[str | None] = None,
        work_type: FromQuery[str | None] = None,
        permit_state: Annotated[str | None, QueryParameter(name="state")] = None,
    ) -> Template:
        actor = await self._actor(db_session, request.user, slug)
        plants = await tenants.list_plants(db_session, visible_plant_ids(request.user))
        plant_id = _maybe_id(plant)
        if plant_id is not None and plant_id not in {p.id for p in plants}:
            plant_id = None
        chosen_type = _work_type(work_type)
        chosen_state = permit_state if permit_state in {s.value for s in PermitState} else None
        permits = await services.list_permits(
            db_session,
            actor,
            services.PermitFilter(
                plant_id=plant_id,
                work_type=chosen_type.value if chosen_type else None,
                state=chosen_state,
            ),
        )
        return Template(
            "permits/list.html",
            context={
                "tenant_slug": slug,
                "plants": plants,
                "plant_names": {p.id: p.name for p in plants},
                "plant_zones": {p.id: p.timezone for p in plants},
                "plant_id": plant_id,
                "work_type": chosen_type.value if chosen_type else "",
                "state": chosen_state or "",
                "work_types": list(WorkType),
                "work_type_labels": WORK_TYPE_LABELS,
                "state_labels": STATE_LABELS,
                "level_label": level_label,
                "permits": permits,
                "queue": await _queue(db_session, actor),
                "can_apply": Role.CONTRACTOR_ADMIN in request.user.roles
                and actor.contractor_id is not None,
            },
        )

    @get("/t/{slug:str}/permits/new", guards=[_applicants])
    async def new(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        slug: FromPath[str],
        plant: FromQuery[str | None] = None,
        work_type: FromQuery[str | None] = None,
    ) -> Template:
        actor = await self._actor(db_session, request.user, slug)
        plants = await tenants.list_plants(
            db_session, visible_plant_ids(request.user), current_only=True
        )
        plant_id, chosen = _maybe_id(plant), _work_type(work_type)
        choices = None
        if plant_id in {p.id for p in plants} and chosen is not None:
            choices = await _choices(db_session, actor, plant_id, chosen)  # type: ignore[arg-type]
        return await _form_page(
            db_session,
            actor,
            slug,
            choices=choices,
            plants=plants,
            values={
                "plant_id": plant or "",
                "work_type": chosen.value if chosen else "",
                "hazards": "",
                "emergency_measures": "",
            },
        )

    async def _save(
        self,
        session: AsyncSession,
        principal: Principal,
        slug: str,
        data: dict[str, Any],
        permit_id: uuid.UUID | None,
    ) -> Template | Redirect:
        actor = await self._actor(session, principal, slug)
        plants = await tenants.list_plants(session, visible_plant_ids(principal))
        plant_id = _maybe_id(field_text(data, "plant_id"))
        work_type = _work_type(field_text(data, "work_type"))
        if permit_id is not None:
            existing = await services.get_permit(session, actor, permit_id)
            plant_id, work_type = existing.plant_id, WorkType(existing.work_type)
        if plant_id not in {p.id for p in plants} or work_type is None:
            raise NotFoundException()
        choices = await _choices(session, actor, plant_id, work_type)  # type: ignore[arg-type]
        try:
            payload = _permit_in(data, choices)
            if permit_id is None:
                permit = await services.create_permit(session, actor, payload)
            else:
                permit = await services.update_permit(session, actor, permit_id, payload)
        except DomainError as exc:
            if isinstance(exc, NotFound):
                raise
            await session.rollback()
            actor = await services.actor_for(session, principal)
            choices = await _choices(session, actor, plant_id, work_type)  # type: ignore[arg-type]
            names = {str(w.id): w.name for w in choices.workers}
            problems = (
                _gate_problems(exc, names, dict(CHECKLISTS[work_type]))
                if isinstance(exc, RulesBroken)
                else []
            )
            existing = await services.get_permit(session, actor, permit_id) if permit_id else None
            return await _form_page(
                session,
                actor,
                slug,
                choices=choices,
                plants=plants,
                values=_form_values(data),
                permit=existing,
                errors=FormErrors.of(exc, _known_fields(work_type), _ALIASES),
                problems=problems,
                status_code=exc.status_code,
            )
        return Redirect(path=f"/t/{slug}/permits/{permit.id}")

    @post("/t/{slug:str}/permits/new", guards=[_applicants])
    async def create(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        slug: FromPath[str],
        data: MultipartForm,
    ) -> Template | Redirect:
        return await self._save(db_session, request.user, slug, data, None)

    @get("/t/{slug:str}/permits/{permit_id:str}/edit", guards=[_applicants])
    async def edit(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        slug: FromPath[str],
        permit_id: FromPath[str],
    ) -> Template | Redirect:
        actor = await self._actor(db_session, request.user, slug)
        permit = await services.get_permit(db_session, actor, page_id(permit_id))
        if not actor.applies_for(permit.contractor_id):
            raise NotFoundException()
        if permit.state not in EDITABLE_STATES:
            return Redirect(path=f"/t/{slug}/permits/{permit.id}")
        plants = await tenants.list_plants(db_session, visible_plant_ids(request.user))
        choices = await _choices(db_session, actor, permit.plant_id, WorkType(permit.work_type))
        return await _form_page(
            db_session,
            actor,
            slug,
            choices=choices,
            plants=plants,
            values=await _permit_values(db_session, permit, choices.plant.timezone),
            permit=permit,
        )

    @post("/t/{slug:str}/permits/{permit_id:str}/edit", guards=[_applicants])
    async def update(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        slug: FromPath[str],
        permit_id: FromPath[str],
        data: MultipartForm,
    ) -> Template | Redirect:
        return await self._save(db_session, request.user, slug, data, page_id(permit_id))

    @get("/t/{slug:str}/permits/{permit_id:str}", guards=[signed_in])
    async def show(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        settings: AppSettings,
        slug: FromPath[str],
        permit_id: FromPath[str],
        done: FromQuery[str | None] = None,
    ) -> Template:
        actor = await self._actor(db_session, request.user, slug)
        notice = DONE_NOTICES.get(done or "")
        return await _permit_page(
            db_session, actor, settings, slug, page_id(permit_id), notice=notice
        )

    async def _act(
        self,
        session: AsyncSession,
        principal: Principal,
        settings: Settings,
        slug: str,
        permit_id: str,
        run: Any,
        *,
        done: str,
        data: dict[str, Any] | None = None,
    ) -> Template | Redirect:
        """Run one change of the permit; a refusal re-renders the page with every problem."""
        actor = await self._actor(session, principal, slug)
        parsed = page_id(permit_id)
        try:
            target = await run(actor, parsed)
        except DomainError as exc:
            if isinstance(exc, NotFound):
                raise
            await session.rollback()
            actor = await services.actor_for(session, principal)
            permit = await services.get_permit(session, actor, parsed)
            names = {
                str(k): v
                for k, v in (
                    await _names(
                        session,
                        Worker,
                        [m.worker_id for m in await services.crew_of(session, parsed)],
                    )
                ).items()
            }
            labels = dict(CHECKLISTS[WorkType(permit.work_type)])
            return await _permit_page(
                session,
                actor,
                settings,
                slug,
                parsed,
                problems=_gate_problems(exc, names, labels),
                problem_heading=_(exc.message),
                errors=FormErrors.of(exc, GAS_FIELDS | {"comment", "reason"}),
                values={key: field_text(data or {}, key) for key in (data or {})},
                status_code=exc.status_code,
            )
        if done == "revised":
            return Redirect(path=f"/t/{slug}/permits/{target.id}/edit")
        target_id = target.id if isinstance(target, Permit) else parsed
        return Redirect(path=f"/t/{slug}/permits/{target_id}?done={done}")

    @post("/t/{slug:str}/permits/{permit_id:str}/submit", guards=[_applicants])
    async def submit(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        settings: AppSettings,
        slug: FromPath[str],
        permit_id: FromPath[str],
    ) -> Template | Redirect:
        async def run(actor: services.Actor, parsed: uuid.UUID) -> Permit:
            return await services.submit(db_session, actor, parsed)

        return await self._act(
            db_session, request.user, settings, slug, permit_id, run, done="submitted"
        )

    @post("/t/{slug:str}/permits/{permit_id:str}/decide", guards=[signed_in])
    async def decide(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        settings: AppSettings,
        slug: FromPath[str],
        permit_id: FromPath[str],
        data: MultipartForm,
    ) -> Template | Redirect:
        payload: dict[str, Any] = {
            "decision": field_text(data, "decision"),
            "comment": field_text(data, "comment", 1_000),
        }
        # The step the approver was shown: a second press after it was decided is refused
        # rather than deciding the next step.
        if field_text(data, "step").isdigit():
            payload["step"] = int(field_text(data, "step"))
        try:
            position = {
                "latitude": float(field_text(data, "latitude")),
                "longitude": float(field_text(data, "longitude")),
                "accuracy_m": float(field_text(data, "accuracy")),
            }
            payload["position"] = position
            msgspec.convert(payload, DecisionIn)
        except (ValueError, msgspec.ValidationError):
            # No position, or one that does not parse: the decision goes without it.
            payload.pop("position", None)

        async def run(actor: services.Actor, parsed: uuid.UUID) -> Permit:
            return await services.decide(db_session, actor, parsed, convert(payload, DecisionIn))

        return await self._act(
            db_session,
            request.user,
            settings,
            slug,
            permit_id,
            run,
            done="decided",
            data=data,
        )

    @post("/t/{slug:str}/permits/{permit_id:str}/gas", guards=[signed_in])
    async def gas(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        settings: AppSettings,
        slug: FromPath[str],
        permit_id: FromPath[str],
        data: MultipartForm,
    ) -> Template | Redirect:
        async def run(actor: services.Actor, parsed: uuid.UUID) -> Any:
            permit = await services.get_permit(db_session, actor, parsed)
            plant = (
                await db_session.execute(select(Plant).where(Plant.id == permit.plant_id))
            ).scalar_one()
            return await services.record_gas_analysis(
                db_session, actor, parsed, _gas_in(data, plant.timezone)
            )

        return await self._act(
            db_session, request.user, settings, slug, permit_id, run, done="gas", data=data
        )

    @post("/t/{slug:str}/permits/{permit_id:str}/checklist", guards=[signed_in])
    async def confirm(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        settings: AppSettings,
        slug: FromPath[str],
        permit_id: FromPath[str],
        data: MultipartForm,
    ) -> Template | Redirect:
        async def run(actor: services.Actor, parsed: uuid.UUID) -> Permit:
            codes = field_texts(data, "codes")
            if not codes:
                raise DomainError(
                    INVALID_FORM,
                    [FieldProblem("codes", "required", N_("Tick the measures you confirm."))],
                )
            return await services.confirm_checklist(
                db_session, actor, parsed, convert({"codes": codes}, ConfirmIn)
            )

        return await self._act(
            db_session, request.user, settings, slug, permit_id, run, done="confirmed"
        )

    @post("/t/{slug:str}/permits/{permit_id:str}/briefing", guards=[signed_in])
    async def briefing(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        settings: AppSettings,
        slug: FromPath[str],
        permit_id: FromPath[str],
    ) -> Template | Redirect:
        """Prepare (or bring up to date) the permit's job briefing and open it."""
        actor = await self._actor(db_session, request.user, slug)
        parsed = page_id(permit_id)
        try:
            briefing = await services.prepare_briefing(db_session, actor, parsed)
        except DomainError as exc:
            if isinstance(exc, NotFound):
                raise
            await db_session.rollback()
            actor = await services.actor_for(db_session, request.user)
            return await _permit_page(
                db_session,
                actor,
                settings,
                slug,
                parsed,
                problem_heading=_(exc.message),
                errors=FormErrors.of(exc, set()),
                status_code=exc.status_code,
            )
        return Redirect(path=f"/t/{slug}/briefings/{briefing.id}")

    @post("/t/{slug:str}/permits/{permit_id:str}/revise", guards=[_applicants])
    async def revise(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        settings: AppSettings,
        slug: FromPath[str],
        permit_id: FromPath[str],
    ) -> Template | Redirect:
        async def run(actor: services.Actor, parsed: uuid.UUID) -> Permit:
            return await services.revise(db_session, actor, parsed)

        return await self._act(
            db_session, request.user, settings, slug, permit_id, run, done="revised"
        )

    @post("/t/{slug:str}/permits/{permit_id:str}/do/{action:str}", guards=[signed_in])
    async def act(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        settings: AppSettings,
        slug: FromPath[str],
        permit_id: FromPath[str],
        action: FromPath[str],
        data: MultipartForm,
    ) -> Template | Redirect:
        try:
            chosen = PermitAction(action)
        except ValueError:
            raise NotFoundException() from None
        if chosen not in ACTION_LABELS:
            raise NotFoundException()
        reason = field_text(data, "reason")
        comment = field_text(data, "comment", 1_000)

        async def run(actor: services.Actor, parsed: uuid.UUID) -> Permit:
            if chosen in ASKS_REASON and not reason:
                raise DomainError(
                    INVALID_FORM, [FieldProblem("reason", "required", N_("Give a reason."))]
                )
            if chosen is PermitAction.START:
                return await services.start(db_session, actor, parsed)
            if chosen is PermitAction.SUSPEND:
                return await services.suspend(db_session, actor, parsed, reason)
            if chosen is PermitAction.RESUME:
                return await services.resume(db_session, actor, parsed)
            if chosen is PermitAction.COMPLETE:
                return await services.complete(db_session, actor, parsed)
            if chosen is PermitAction.ACCEPT:
                return await services.accept(db_session, actor, parsed, comment)
            return await services.cancel(db_session, actor, parsed, reason)

        return await self._act(
            db_session, request.user, settings, slug, permit_id, run, done=chosen.value, data=data
        )

    @get("/t/{slug:str}/permits/{permit_id:str}/permit.pdf", guards=[signed_in])
    async def pdf(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        settings: AppSettings,
        state: State,
        slug: FromPath[str],
        permit_id: FromPath[str],
    ) -> Response[bytes]:
        actor = await self._actor(db_session, request.user, slug)
        permit = await services.get_permit(db_session, actor, page_id(permit_id))
        records = _records()
        if records is None or not hasattr(records, "permit_pdf") or permit.approved_at is None:
            raise NotFoundException()
        pdf = await records.permit_pdf(db_session, state.storage, settings, permit)
        return Response(
            content=pdf,
            media_type="application/pdf",
            headers={
                "Content-Disposition": f'inline; filename="{permit.number or permit.id}.pdf"',
                "Cache-Control": "private",
            },
        )


GAS_FIELDS = {
    "sampled_at",
    "point",
    "analyst",
    "instrument",
    "readings",
    "codes",
    *(f"reading_{i}_{part}" for i in range(GAS_ROWS) for part in ("gas", "value", "unit")),
}
DONE_NOTICES = {
    "submitted": N_("Submitted: the approval chain has started."),
    "decided": N_("Your decision is recorded."),
    "gas": N_("Gas analysis recorded."),
    "confirmed": N_("Measures confirmed."),
    PermitAction.START.value: N_("Work started."),
    PermitAction.SUSPEND.value: N_("Work suspended."),
    PermitAction.RESUME.value: N_("Work resumed."),
    PermitAction.COMPLETE.value: N_("Work reported completed."),
    PermitAction.ACCEPT.value: N_("Completion accepted: the permit is closed."),
    PermitAction.CANCEL.value: N_("Permit cancelled."),
}


def _gas_in(data: dict[str, Any], timezone: str) -> GasAnalysisIn:
    problems: list[FieldProblem] = []
    sampled_text = field_text(data, "sampled_at")
    sampled = _parse_local(sampled_text, timezone) if sampled_text else None
    if sampled is None:
        problems.append(FieldProblem("sampled_at", "datetime", _BAD_TIME))
    for name in ("point", "analyst", "instrument"):
        if not field_text(data, name):
            problems.append(FieldProblem(name, "required", _REQUIRED))
    readings = []
    for index in range(GAS_ROWS):
        gas = field_text(data, f"reading_{index}_gas")
        value = field_text(data, f"reading_{index}_value")
        if not gas and not value:
            continue
        if not gas:
            problems.append(FieldProblem(f"reading_{index}_gas", "required", _REQUIRED))
            continue
        try:
            number = float(value.replace(",", "."))
        except ValueError:
            problems.append(FieldProblem(f"reading_{index}_value", "number", _BAD_NUMBER))
            continue
        readings.append(
            {"gas": gas, "value": number, "unit": field_text(data, f"reading_{index}_unit")}
        )
    if not readings and not problems:
        problems.append(
            FieldProblem("reading_0_gas", "required", N_("Enter at least one reading."))
        )
    if problems:
        raise DomainError(INVALID_FORM, problems)
    return convert(
        {
            "sampled_at": sampled,
            "point": field_text(data, "point"),
            "readings": readings,
            "analyst": field_text(data, "analyst"),
            "instrument": field_text(data, "instrument"),
        },
        GasAnalysisIn,
    )
