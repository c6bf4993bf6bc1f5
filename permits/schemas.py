"""Shapes of permit data crossing the boundary, validated by msgspec.

The permit's own fields come as ``details``, one struct per work type told apart by
``work_type`` — the type decides which fields exist, so a hot work permit cannot carry a load or
miss its method. Levels and grades are never typed in: the rules compute them from these facts
(the applicant only requests a hot work level, which the calendar may raise).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from permits.rules import GasUnit, HeightHazard, HotWorkLevel
from tenants.schemas import Input, Latitude, Longitude

Text100 = Annotated[str, Meta(min_length=1, max_length=100)]
Text200 = Annotated[str, Meta(min_length=1, max_length=200)]
Text300 = Annotated[str, Meta(min_length=1, max_length=300)]
LongText = Annotated[str, Meta(min_length=1, max_length=2_000)]
Items = Annotated[list[Text300], Meta(min_length=1, max_length=30)]
PermitNumber = Annotated[str, Meta(min_length=1, max_length=40)]
WindForce = Annotated[int, Meta(ge=0, le=17, description="Beaufort scale")]


class HotWorkDetails(Input, kw_only=True, tag="hot_work", tag_field="work_type"):
    requested_level: HotWorkLevel
    method: Literal["electric_welding", "gas_welding", "cutting", "grinding", "heating", "other"]
    outdoor: bool = False
    wind_force: WindForce = 0
    oxygen_equipment: bool = False


class ConfinedSpaceDetails(Input, kw_only=True, tag="confined_space", tag_field="work_type"):
    space_name: Text100
    medium: Text100
    oxygen_rich: bool = False


class BlindPlateDetails(Input, kw_only=True, tag="blind_plate", tag_field="work_type"):
    pipeline_id: Text100
    blind_id: Text100
    action: Literal["insert", "remove"]
    medium: Text100
    temperature_c: Annotated[float, Meta(ge=-200, le=1_000)]
    pressure_mpa: Annotated[float, Meta(ge=-0.1, le=100)]
    blind_material: Text100
    blind_size: Text100


class HeightDetails(Input, kw_only=True, tag="height", tag_field="work_type"):
    height_m: Annotated[float, Meta(ge=0, le=1_000)]
    hazards: Annotated[list[HeightHazard], Meta(max_length=9)] = msgspec.field(default_factory=list)
    has_communication: bool = False
    wind_force: WindForce = 0
    dense_fog: bool = False


class LiftingDetails(Input, kw_only=True, tag="lifting", tag_field="work_type"):
    load_t: Annotated[float, Meta(gt=0, le=20_000)]
    crane: Text100
    operator_id: uuid.UUID
    signaller_id: uuid.UUID
    rigger_ids: Annotated[list[uuid.UUID], Meta(max_length=20)] = msgspec.field(
        default_factory=list
    )


class TempPowerDetails(Input, kw_only=True, tag="temp_power", tag_field="work_type"):
    source: Text200
    voltage_v: Annotated[int, Meta(ge=1, le=35_000)]
    load_kw: Annotated[float, Meta(gt=0, le=10_000)]
    served_permit_number: PermitNumber | None = None
    special_case: bool = False


class ExcavationDetails(Input, kw_only=True, tag="excavation", tag_field="work_type"):
    depth_m: Annotated[float, Meta(gt=0, le=100)]
    extent: Text200
    sketch_id: uuid.UUID | None = None
    hazardous_area: bool = False
    near_buried_hazardous_line: bool = False


class RoadClosureDetails(Input, kw_only=True, tag="road_closure", tag_field="work_type"):
    road_section: Text200
    traffic_plan: LongText


PermitDetails = (
    HotWorkDetails
    | ConfinedSpaceDetails
    | BlindPlateDetails
    | HeightDetails
    | LiftingDetails
    | TempPowerDetails
    | ExcavationDetails
    | RoadClosureDetails
)


class CrewIn(Input, kw_only=True):
    worker_id: uuid.UUID
    duty: Annotated[str, Meta(max_length=40)] | None = None


class ChecklistAnswer(Input, kw_only=True):
    code: Annotated[str, Meta(min_length=1, max_length=40)]
    applies: bool


class PermitIn(Input, kw_only=True):
    plant_id: uuid.UUID
    zone_id: uuid.UUID
    location: Text300
    work_content: LongText
    planned_start: datetime
    planned_end: datetime
    crew: Annotated[list[CrewIn], Meta(min_length=1, max_length=50)]
    work_leader_id: uuid.UUID
    guardian_worker_id: uuid.UUID | None = None
    guardian_user_id: uuid.UUID | None = None
    related_numbers: Annotated[list[PermitNumber], Meta(max_length=10)] = msgspec.field(
        default_factory=list
    )
    hazards: Items
    emergency_measures: Items
    checklist: Annotated[list[ChecklistAnswer], Meta(max_length=30)]
    details: PermitDetails


class PositionIn(Input, kw_only=True):
    latitude: Latitude
    longitude: Longitude
    accuracy_m: Annotated[float, Meta(ge=0, le=100_000)]


class DecisionIn(Input, kw_only=True):
    decision: Literal["approve", "reject", "return"]
    comment: Annotated[str, Meta(max_length=1_000)] = ""
    position: PositionIn | None = None
    # The position of the step the approver was shown. Given, a second press after the step was
    # decided is refused instead of deciding the next step (which may be the same person's).
    step: Annotated[int, Meta(ge=0)] | None = None


class ConfirmIn(Input, kw_only=True):
    """Checklist items confirmed on site by the signed-in user."""

    codes: Annotated[list[Annotated[str, Meta(max_length=40)]], Meta(min_length=1, max_length=30)]


class ReadingIn(Input, kw_only=True):
    gas: Annotated[str, Meta(min_length=1, max_length=40)]
    value: float
    unit: GasUnit


class GasAnalysisIn(Input, kw_only=True):
    sampled_at: datetime
    point: Text200
    readings: Annotated[list[ReadingIn], Meta(min_length=1, max_length=20)]
    analyst: Text100
    instrument: Text100


class ReasonIn(Input, kw_only=True):
    reason: Annotated[str, Meta(min_length=1, max_length=500)]


class ChainStepIn(Input, kw_only=True):
    role: str
    kind: Literal["review", "co_sign", "approve", "check"]
    label: Annotated[str, Meta(max_length=100)] | None = None


class ChainPolicyIn(Input, kw_only=True):
    work_type: str
    level: Annotated[str, Meta(max_length=16)] = ""
    steps: Annotated[list[ChainStepIn], Meta(min_length=1, max_length=30)]
