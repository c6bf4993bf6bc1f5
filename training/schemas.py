"""Shapes of training data crossing the boundary, validated by msgspec.

Unknown fields are refused and every string and list has a limit. What msgspec cannot say — a
correct answer that is not one of the options, a draw larger than the bank — the services check
and answer with the field and the rule.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from onboarding.catalogue import WorkType
from tenants.schemas import Input, Latitude, Longitude, Name

Title = Annotated[str, Meta(min_length=1, max_length=200)]
Markdown = Annotated[str, Meta(min_length=1, max_length=20_000)]
QuestionText = Annotated[str, Meta(min_length=1, max_length=500)]
OptionText = Annotated[str, Meta(min_length=1, max_length=200)]
QuestionId = Annotated[str, Meta(pattern=r"^[A-Za-z0-9_-]{1,40}$")]
VideoUrl = Annotated[str, Meta(pattern=r"^https://\S+$", max_length=500)]
OptionIndex = Annotated[int, Meta(ge=0, le=7)]
Text = Annotated[str, Meta(min_length=1, max_length=500)]
# A stroke point: x and y in CSS pixels of the canvas, and milliseconds since the pad opened.
Point = tuple[float, float, int]
Stroke = Annotated[list[Point], Meta(min_length=1, max_length=2_000)]


class Section(Input, kw_only=True):
    title: Title
    body: Markdown
    image_ids: Annotated[list[uuid.UUID], Meta(max_length=10)] = msgspec.field(default_factory=list)
    video_url: VideoUrl | None = None


class Question(Input, kw_only=True):
    id: QuestionId
    text: QuestionText
    kind: Literal["single", "multiple"] = "single"
    options: Annotated[list[OptionText], Meta(min_length=2, max_length=8)]
    correct: Annotated[list[OptionIndex], Meta(min_length=1, max_length=8)]


class InductionContent(Input, kw_only=True):
    """Everything a version freezes: the reading, the bank and the quiz's rules."""

    title: Title
    sections: Annotated[list[Section], Meta(min_length=1, max_length=30)]
    questions: Annotated[list[Question], Meta(min_length=1, max_length=200)]
    draw_count: Annotated[int, Meta(ge=1, le=50)]
    pass_mark: Annotated[int, Meta(ge=1, le=100, description="Percent of drawn questions")]
    attempts_per_day: Annotated[int, Meta(ge=1, le=20)] = 3
    validity_days: Annotated[int, Meta(ge=1, le=1095)] = 365


class InductionIn(Input, kw_only=True):
    plant_id: uuid.UUID
    work_type: WorkType | None = None
    content: InductionContent


class DraftIn(Input, kw_only=True):
    content: InductionContent


class AnswersIn(Input, kw_only=True):
    """Chosen option indexes per drawn question id."""

    answers: Annotated[
        dict[QuestionId, Annotated[list[OptionIndex], Meta(max_length=8)]],
        Meta(max_length=50),
    ]


class StrokesIn(Input, kw_only=True):
    """What the signature pad drew, point by point; the server renders the image from it."""

    width: Annotated[int, Meta(ge=100, le=4_000)]
    height: Annotated[int, Meta(ge=50, le=4_000)]
    strokes: Annotated[list[Stroke], Meta(min_length=1, max_length=200)]


class PositionIn(Input, kw_only=True):
    latitude: Latitude
    longitude: Longitude
    accuracy_m: Annotated[float, Meta(ge=0, le=100_000)]


class SignatureIn(Input, kw_only=True):
    """A signature: the drawing, the typed full name, and the consent sentence accepted."""

    full_name: Name
    consent: bool
    strokes: StrokesIn
    position: PositionIn | None = None


class BriefingSource(msgspec.Struct, frozen=True, kw_only=True):
    """What a permit hands training to brief its crew on (GB 30871 §4.4). ``crew`` are worker
    ids; the briefing is generated from the hazards, controls and emergency measures."""

    permit_id: uuid.UUID
    permit_number: str
    plant_id: uuid.UUID
    work_type: WorkType
    location: str
    work_content: str
    hazards: tuple[str, ...]
    control_measures: tuple[str, ...]
    emergency_measures: tuple[str, ...]
    crew: tuple[uuid.UUID, ...]


class BriefingIn(Input, kw_only=True):
    """The briefer's own signature opens the briefing to the crew."""

    signature: SignatureIn


class CrewSignatureIn(Input, kw_only=True):
    worker_id: uuid.UUID
    signature: SignatureIn


# --- answers ---------------------------------------------------------------------------------


class VersionRead(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    version: int
    content_hash: str
    published_at: datetime


class InductionRead(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    plant_id: uuid.UUID
    work_type: str | None
    title: str
    current_version: int
    draft_changed: bool
    retired: bool
    draft: InductionContent


class DrawnQuestion(msgspec.Struct, kw_only=True):
    id: str
    text: str
    kind: str
    options: list[str]


class AttemptRead(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    induction_id: uuid.UUID
    version: int
    worker_id: uuid.UUID
    started_at: datetime
    questions: list[DrawnQuestion]
    submitted_at: datetime | None = None
    score: int | None = None
    passed: bool | None = None
    wrong: list[str] | None = None
    pass_mark: int


class SignatureRead(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    worker_id: uuid.UUID | None
    full_name: str
    signed_at: datetime
    content_hash: str
    record_hash: str
    valid_until: date | None = None
    verification_url: str | None = None


class WorkerInductionStatus(msgspec.Struct, kw_only=True):
    worker_id: uuid.UUID
    worker_name: str
    contractor_id: uuid.UUID
    contractor_name: str
    induction_id: uuid.UUID
    induction_title: str
    status: Literal["done", "expiring", "pending", "failed", "lapsed"]
    valid_until: date | None
    signed_version: int | None


class BriefingCrewRead(msgspec.Struct, kw_only=True):
    worker_id: uuid.UUID
    worker_name: str
    signed_at: datetime | None


class BriefingRead(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    permit_id: uuid.UUID
    permit_number: str
    content_hash: str
    briefer_id: uuid.UUID
    briefer_signed: bool
    complete: bool
    crew: list[BriefingCrewRead]
    content: dict[str, object]
