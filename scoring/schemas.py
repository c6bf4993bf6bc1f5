"""Shapes of evaluation data crossing the boundary. Ranges are checked here; the services check
what needs the database (the job is completed, the appeal is in time, periods do not overlap)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from tenants.schemas import Input

Score = Annotated[float, Meta(ge=0, le=100, description="0–100")]
Weight = Annotated[float, Meta(ge=0, le=100)]
Points = Annotated[float, Meta(ge=0, le=100)]
SeverityName = Literal["minor", "major", "critical"]
PhotoIds = Annotated[
    list[uuid.UUID],
    Meta(max_length=20, description="Stored images from the upload endpoint (kind `photo`)"),
]
Text = Annotated[str, Meta(min_length=1, max_length=4_000)]


class DimensionScores(Input, kw_only=True):
    safety: Score
    quality: Score
    schedule: Score
    housekeeping: Score
    cooperation: Score


class RatingIn(Input, kw_only=True):
    scores: DimensionScores
    comment: Annotated[str, Meta(max_length=4_000)] = ""
    photo_ids: PhotoIds = msgspec.field(default_factory=list)


class AppealIn(Input, kw_only=True):
    reason: Text


class AppealDecisionIn(Input, kw_only=True):
    """``amended`` replaces the rating's scores with ``scores``; ``upheld`` keeps them."""

    outcome: Literal["upheld", "amended"]
    text: Text
    scores: DimensionScores | None = None


class FindingIn(Input, kw_only=True):
    plant_id: uuid.UUID
    contractor_id: uuid.UUID
    permit_id: uuid.UUID | None = None
    severity: SeverityName
    description: Text
    observed_at: Annotated[datetime, Meta(tz=True)]
    photo_ids: PhotoIds = msgspec.field(default_factory=list)


class ReviewIn(Input, kw_only=True):
    contractor_id: uuid.UUID
    period_kind: Literal["quarter", "year"]
    year: Annotated[int, Meta(ge=2000, le=2100)]
    quarter: Annotated[int, Meta(ge=1, le=4)] | None = None


class ReviewApprovalIn(Input, kw_only=True):
    """Approve with the proposed decision, or with another one and the reason for it."""

    decision: Literal["keep", "probation", "suspend", "blacklist"] | None = None
    reason: Annotated[str, Meta(max_length=2_000)] = ""


class SeverityPoints(Input, kw_only=True):
    minor: Points
    major: Points
    critical: Points


class RiskWeights(Input, kw_only=True):
    low: Annotated[float, Meta(gt=0, le=10)]
    medium: Annotated[float, Meta(gt=0, le=10)]
    high: Annotated[float, Meta(gt=0, le=10)]


class GradeThresholds(Input, kw_only=True):
    A: Score
    B: Score
    C: Score


class AlertSeverities(Input, kw_only=True):
    left_zone: SeverityName
    restricted_zone: SeverityName
    no_signal: SeverityName
    overstay: SeverityName
    guardian_absent: SeverityName
    implausible_movement: SeverityName


class PolicyIn(Input, kw_only=True):
    weights: Annotated[
        DimensionScores, Meta(description="Dimension weights; they need not sum to 100")
    ]
    severity_points: SeverityPoints
    alert_severity: AlertSeverities
    risk_weights: RiskWeights
    grade_thresholds: GradeThresholds
    prior_jobs: Annotated[float, Meta(ge=0, le=100, description="Shrinkage weight, in jobs")]
    blacklist_critical: Annotated[int, Meta(ge=1, le=100)]
    appeal_days: Annotated[int, Meta(ge=1, le=90)]
    bi_webhook_url: Annotated[str, Meta(max_length=1_000, pattern=r"^https?://")] | None = None
    bi_webhook_secret: Annotated[str, Meta(max_length=200)] = ""


class RatingRead(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    permit_id: uuid.UUID
    plant_id: uuid.UUID
    contractor_id: uuid.UUID
    scores: dict[str, float]
    weights: dict[str, float]
    rating: float
    deductions: float
    score: float
    comment: str
    photo_ids: list[str]
    rated_at: datetime
    appeal_until: datetime
    appeal_state: str | None


class ViolationRead(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    source: Literal["alert", "inspection"]
    plant_id: uuid.UUID
    contractor_id: uuid.UUID | None
    permit_id: uuid.UUID | None
    severity: str
    points: float
    at: datetime
    description: str


class ReviewRead(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    contractor_id: uuid.UUID
    period_kind: str
    period_start: date
    period_end: date
    state: str
    jobs: int
    score: float
    grade: str
    violations: int
    critical_violations: int
    proposed_decision: str
    decision: str | None
    decision_reason: str | None
    approved_at: datetime | None
