"""Evaluation (评价): job ratings and their appeals, inspection findings, supplier reviews, the
tenant's scoring policy and the daily rollups behind the HQ comparison.

A confirmed violation is either a geofence alert marked as a violation (kept on the alert) or an
inspection finding recorded here; :mod:`scoring.violations` reads both as one list. Scores are
never stored apart from what they are computed from: a job's score is its rating less the
deductions of its violations at the time it is read, so a violation confirmed after the rating
still counts.

The rollups (``scoring_daily``, ``scoring_plant_daily``, ``scoring_plant_monthly``) are a cache
of one query over the raw tables, rebuilt per plant and plant-local day whenever something on
that day changes, the month's row with its days (see :mod:`scoring.rollups`).
"""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from infra.tenancy import TenantOwned, tenant_foreign_key


class Dimension(enum.StrEnum):
    SAFETY = "safety"
    QUALITY = "quality"
    SCHEDULE = "schedule"
    HOUSEKEEPING = "housekeeping"
    COOPERATION = "cooperation"


class Severity(enum.StrEnum):
    MINOR = "minor"
    MAJOR = "major"
    CRITICAL = "critical"


class Grade(enum.StrEnum):
    A = "A"
    B = "B"
    C = "C"
    D = "D"


class Decision(enum.StrEnum):
    KEEP = "keep"
    PROBATION = "probation"
    SUSPEND = "suspend"
    BLACKLIST = "blacklist"


class PeriodKind(enum.StrEnum):
    QUARTER = "quarter"
    YEAR = "year"


class ReviewState(enum.StrEnum):
    DRAFT = "draft"
    APPROVED = "approved"


class AppealState(enum.StrEnum):
    OPEN = "open"
    UPHELD = "upheld"
    AMENDED = "amended"


def _values_check(column: str, values: type[enum.StrEnum]) -> str:
    return f"{column} IN (" + ", ".join(f"'{value.value}'" for value in values) + ")"


class ScoringPolicy(TenantOwned):
    """The tenant's weights, deductions and thresholds; defaults in :mod:`scoring.formula`."""

    __tablename__ = "scoring_policies"
    __table_args__ = (UniqueConstraint("tenant_id"),)

    weights: Mapped[dict[str, float]] = mapped_column(JSON)
    severity_points: Mapped[dict[str, float]] = mapped_column(JSON)
    alert_severity: Mapped[dict[str, str]] = mapped_column(JSON)
    risk_weights: Mapped[dict[str, float]] = mapped_column(JSON)
    grade_thresholds: Mapped[dict[str, float]] = mapped_column(JSON)
    prior_jobs: Mapped[float]
    blacklist_critical: Mapped[int]
    appeal_days: Mapped[int]
    bi_webhook_url: Mapped[str | None] = mapped_column(String(1000))
    bi_webhook_secret: Mapped[str] = mapped_column(String(200), default="")


class Rating(TenantOwned):
    """EHS's rating of one completed job: a score of 0–100 per dimension and the weights in force
    when it was made, so a later change of policy does not rewrite past ratings."""

    __tablename__ = "scoring_ratings"
    __table_args__ = (
        tenant_foreign_key(("permit_id",), "permits"),
        tenant_foreign_key(("plant_id",), "plants"),
        tenant_foreign_key(("contractor_id",), "contractors"),
        UniqueConstraint("tenant_id", "permit_id"),
        Index("ix_scoring_ratings_contractor", "tenant_id", "contractor_id", "rated_at"),
    )

    permit_id: Mapped[uuid.UUID]
    plant_id: Mapped[uuid.UUID]
    contractor_id: Mapped[uuid.UUID]
    scores: Mapped[dict[str, float]] = mapped_column(JSON)
    weights: Mapped[dict[str, float]] = mapped_column(JSON)
    comment: Mapped[str] = mapped_column(Text, default="")
    photo_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    rated_by: Mapped[uuid.UUID]
    rated_at: Mapped[datetime]
    appeal_until: Mapped[datetime]


class Appeal(TenantOwned):
    """The contractor's appeal of a rating and EHS's decision; an amendment keeps the scores it
    replaced, and both texts stay here and in the ledger."""

    __tablename__ = "scoring_appeals"
    __table_args__ = (
        tenant_foreign_key(("rating_id",), "scoring_ratings", ondelete="CASCADE"),
        UniqueConstraint("tenant_id", "rating_id"),
        CheckConstraint(_values_check("state", AppealState), name="state"),
    )

    rating_id: Mapped[uuid.UUID]
    reason: Mapped[str] = mapped_column(Text)
    filed_by: Mapped[uuid.UUID]
    filed_at: Mapped[datetime]
    state: Mapped[str] = mapped_column(String(16), default=AppealState.OPEN.value)
    decision_text: Mapped[str | None] = mapped_column(Text)
    previous_scores: Mapped[dict[str, float] | None] = mapped_column(JSON)
    decided_by: Mapped[uuid.UUID | None]
    decided_at: Mapped[datetime | None]


class Finding(TenantOwned):
    """An inspection finding EHS confirmed as a violation, with photos; ``permit_id`` when it
    concerns a job, empty when it concerns the company on site in general."""

    __tablename__ = "scoring_findings"
    __table_args__ = (
        tenant_foreign_key(("plant_id",), "plants"),
        tenant_foreign_key(("contractor_id",), "contractors"),
        tenant_foreign_key(("permit_id",), "permits"),
        CheckConstraint(_values_check("severity", Severity), name="severity"),
        Index("ix_scoring_findings_contractor", "tenant_id", "contractor_id", "observed_at"),
        Index("ix_scoring_findings_permit", "tenant_id", "permit_id"),
    )

    plant_id: Mapped[uuid.UUID]
    contractor_id: Mapped[uuid.UUID]
    permit_id: Mapped[uuid.UUID | None]
    severity: Mapped[str] = mapped_column(String(16))
    description: Mapped[str] = mapped_column(Text)
    photo_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    observed_at: Mapped[datetime]
    recorded_by: Mapped[uuid.UUID]


class Review(TenantOwned):
    """A contractor's supplier review for a period. ``figures`` keeps what the score was computed
    from (jobs, their scores and weights, violations, the tenant mean) so the scorecard and an
    inspector see the same numbers the decision was made on."""

    __tablename__ = "scoring_reviews"
    __table_args__ = (
        tenant_foreign_key(("contractor_id",), "contractors"),
        CheckConstraint(_values_check("period_kind", PeriodKind), name="period_kind"),
        CheckConstraint(_values_check("state", ReviewState), name="state"),
        CheckConstraint(_values_check("grade", Grade), name="grade"),
        CheckConstraint(_values_check("proposed_decision", Decision), name="proposed_decision"),
        CheckConstraint("period_end > period_start", name="period"),
        Index("ix_scoring_reviews_contractor", "tenant_id", "contractor_id", "period_start"),
    )

    contractor_id: Mapped[uuid.UUID]
    period_kind: Mapped[str] = mapped_column(String(8))
    # First day and the day after the last, plant-local calendar days.
    period_start: Mapped[date]
    period_end: Mapped[date]
    state: Mapped[str] = mapped_column(String(16), default=ReviewState.DRAFT.value)
    jobs: Mapped[int]
    score: Mapped[float]
    grade: Mapped[str] = mapped_column(String(1))
    violations: Mapped[int]
    critical_violations: Mapped[int]
    proposed_decision: Mapped[str] = mapped_column(String(16))
    decision: Mapped[str | None] = mapped_column(String(16))
    decision_reason: Mapped[str | None] = mapped_column(Text)
    figures: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_by: Mapped[uuid.UUID]
    approved_by: Mapped[uuid.UUID | None]
    approved_at: Mapped[datetime | None]
    scorecard_key: Mapped[str | None] = mapped_column(String(300))


class RollupFields:
    """The measures kept per day; each is a sum, so any grouping of rows adds them up, and the
    approval-time histogram adds bucket by bucket (see :mod:`scoring.sketch`)."""

    permits: Mapped[int] = mapped_column(default=0)
    finished: Mapped[int] = mapped_column(default=0)
    full_loop: Mapped[int] = mapped_column(default=0)
    approvals: Mapped[int] = mapped_column(default=0)
    approval_minutes: Mapped[float] = mapped_column(default=0.0)
    approval_histogram: Mapped[list[int]] = mapped_column(JSON, default=list)
    alerts: Mapped[int] = mapped_column(default=0)
    responses: Mapped[int] = mapped_column(default=0)
    response_minutes: Mapped[float] = mapped_column(default=0.0)
    violations: Mapped[int] = mapped_column(default=0)
    work_minutes: Mapped[float] = mapped_column(default=0.0)
    checkins: Mapped[int] = mapped_column(default=0)
    phone_checkins: Mapped[int] = mapped_column(default=0)


class DailyRollup(RollupFields, TenantOwned):
    """Per plant-local day × plant × work type × contractor. Alerts and findings that belong to
    no permit have an empty ``work_type``; those of no known company no ``contractor_id``."""

    __tablename__ = "scoring_daily"
    __table_args__ = (
        tenant_foreign_key(("plant_id",), "plants", ondelete="CASCADE"),
        Index("ix_scoring_daily_plant_day", "tenant_id", "plant_id", "day"),
        Index("ix_scoring_daily_contractor_day", "tenant_id", "contractor_id", "day"),
    )

    day: Mapped[date]
    plant_id: Mapped[uuid.UUID]
    work_type: Mapped[str] = mapped_column(String(32))
    contractor_id: Mapped[uuid.UUID | None]


class PlantDailyRollup(RollupFields, TenantOwned):
    """The same measures per day × plant, what the group comparison reads for a year, with the
    companies that had rows that day (for the grade distribution of those who worked there)."""

    __tablename__ = "scoring_plant_daily"
    __table_args__ = (
        tenant_foreign_key(("plant_id",), "plants", ondelete="CASCADE"),
        UniqueConstraint("tenant_id", "day", "plant_id"),
    )

    day: Mapped[date]
    plant_id: Mapped[uuid.UUID]
    contractor_ids: Mapped[list[str]] = mapped_column(JSON, default=list)


class PlantMonthlyRollup(RollupFields, TenantOwned):
    """The sum of a plant's daily rows over a plant-local calendar month, rebuilt with them: a
    year's comparison of twenty plants reads 240 rows instead of 7,300."""

    __tablename__ = "scoring_plant_monthly"
    __table_args__ = (
        tenant_foreign_key(("plant_id",), "plants", ondelete="CASCADE"),
        UniqueConstraint("tenant_id", "month", "plant_id"),
    )

    # The month's first day.
    month: Mapped[date]
    plant_id: Mapped[uuid.UUID]
    contractor_ids: Mapped[list[str]] = mapped_column(JSON, default=list)


class StaleDay(TenantOwned):
    """A plant-local day whose rollups must be rebuilt. Written in the transaction of the change
    that made it stale, so no change is missed; rebuilding is idempotent, so a day marked twice
    or late is simply rebuilt again."""

    __tablename__ = "scoring_stale_days"
    __table_args__ = (
        tenant_foreign_key(("plant_id",), "plants", ondelete="CASCADE"),
        UniqueConstraint("tenant_id", "plant_id", "day"),
    )

    plant_id: Mapped[uuid.UUID]
    day: Mapped[date]
    # Counts the marks, so a rebuild clears the mark only if nothing marked the day meanwhile.
    generation: Mapped[int] = mapped_column(default=1)


class ExportState(enum.StrEnum):
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class Export(TenantOwned):
    """A long export of an HQ table, built by a task; ``progress`` is 0–100 for the page."""

    __tablename__ = "scoring_exports"
    __table_args__ = (CheckConstraint(_values_check("state", ExportState), name="state"),)

    table: Mapped[str] = mapped_column(String(40))
    format: Mapped[str] = mapped_column(String(8))
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16), default=ExportState.RUNNING.value)
    progress: Mapped[int] = mapped_column(default=0)
    rows: Mapped[int] = mapped_column(default=0)
    object_key: Mapped[str | None] = mapped_column(String(300))
    filename: Mapped[str | None] = mapped_column(String(200))
    error: Mapped[str | None] = mapped_column(Text)
    requested_by: Mapped[uuid.UUID]
    finished_at: Mapped[datetime | None]
