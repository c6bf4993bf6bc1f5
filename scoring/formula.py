"""The scoring rules: how a rating, its violations and a period of jobs become a score, a grade
and a proposed decision. Pure functions of their inputs; ``docs/scoring.md`` states the same
formulas for people.

A job's score is its weighted rating less the points of its confirmed violations, kept within
0–100. A contractor's period score is the risk-weighted mean of its job scores, shrunk toward
the tenant's mean by ``prior_jobs`` jobs' worth of weight, less the points of violations that
belong to no job::

    score = (Σ wᵢ·sᵢ + k·μ) / (Σ wᵢ + k) − Σ general deductions

so a company with two good jobs does not outrank one with forty, and a company with none sits at
the mean. Every deduction lowers a job's score or the general term, and the tenant mean moves
the same way, so a violation never raises a score.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from scoring.models import Decision, Dimension, Grade, Severity

SCORE_MIN = 0.0
SCORE_MAX = 100.0


class RiskLevel(enum.StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


# Which permits carry the most risk: the levels whose approval GB 30871 Table B.1 sends highest
# (leader in charge, plant manager) and confined space weigh most.
_HIGH_RISK = frozenset(
    {
        ("hot_work", "special"),
        ("hot_work", "level1"),
        ("confined_space", None),
        ("height", "grade_4"),
        ("lifting", "level1"),
    }
)
_MEDIUM_RISK = frozenset(
    {
        ("hot_work", "level2"),
        ("height", "grade_3"),
        ("height", "grade_2"),
        ("lifting", "level2"),
        ("blind_plate", None),
        ("excavation", None),
    }
)


def risk_level(work_type: str, level: str | None) -> RiskLevel:
    for key in ((work_type, level), (work_type, None)):
        if key in _HIGH_RISK:
            return RiskLevel.HIGH
        if key in _MEDIUM_RISK:
            return RiskLevel.MEDIUM
    return RiskLevel.LOW


DEFAULT_WEIGHTS: Mapping[str, float] = MappingProxyType(
    {
        Dimension.SAFETY.value: 40.0,
        Dimension.QUALITY.value: 25.0,
        Dimension.SCHEDULE.value: 15.0,
        Dimension.HOUSEKEEPING.value: 10.0,
        Dimension.COOPERATION.value: 10.0,
    }
)
DEFAULT_SEVERITY_POINTS: Mapping[str, float] = MappingProxyType(
    {Severity.MINOR.value: 3.0, Severity.MAJOR.value: 8.0, Severity.CRITICAL.value: 20.0}
)
# Alerts confirmed as violations: leaving the zone or losing signal is a lapse; being where a
# permit is needed without one, leaving the job unguarded or faking a position is worse.
DEFAULT_ALERT_SEVERITY: Mapping[str, str] = MappingProxyType(
    {
        "left_zone": Severity.MINOR.value,
        "no_signal": Severity.MINOR.value,
        "overstay": Severity.MINOR.value,
        "restricted_zone": Severity.MAJOR.value,
        "guardian_absent": Severity.MAJOR.value,
        "implausible_movement": Severity.MAJOR.value,
    }
)
DEFAULT_RISK_WEIGHTS: Mapping[str, float] = MappingProxyType(
    {RiskLevel.LOW.value: 1.0, RiskLevel.MEDIUM.value: 1.5, RiskLevel.HIGH.value: 2.0}
)
DEFAULT_GRADE_THRESHOLDS: Mapping[str, float] = MappingProxyType(
    {Grade.A.value: 90.0, Grade.B.value: 80.0, Grade.C.value: 70.0}
)
DEFAULT_PRIOR_JOBS = 5.0
DEFAULT_BLACKLIST_CRITICAL = 2
DEFAULT_APPEAL_DAYS = 7

# What a grade proposes; critical violations can propose more (see :func:`proposed_decision`).
GRADE_DECISIONS: Mapping[Grade, Decision] = MappingProxyType(
    {
        Grade.A: Decision.KEEP,
        Grade.B: Decision.KEEP,
        Grade.C: Decision.PROBATION,
        Grade.D: Decision.SUSPEND,
    }
)


@dataclass(frozen=True)
class Policy:
    weights: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    severity_points: Mapping[str, float] = field(
        default_factory=lambda: dict(DEFAULT_SEVERITY_POINTS)
    )
    alert_severity: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_ALERT_SEVERITY))
    risk_weights: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_RISK_WEIGHTS))
    grade_thresholds: Mapping[str, float] = field(
        default_factory=lambda: dict(DEFAULT_GRADE_THRESHOLDS)
    )
    prior_jobs: float = DEFAULT_PRIOR_JOBS
    blacklist_critical: int = DEFAULT_BLACKLIST_CRITICAL
    appeal_days: int = DEFAULT_APPEAL_DAYS

    def points(self, severity: str) -> float:
        return float(self.severity_points.get(severity, 0.0))

    def severity_of_alert(self, kind: str) -> str:
        return self.alert_severity.get(kind, Severity.MINOR.value)

    def risk_weight(self, work_type: str, level: str | None) -> float:
        return float(self.risk_weights[risk_level(work_type, level).value])


def clamp(score: float) -> float:
    return min(SCORE_MAX, max(SCORE_MIN, score))


def weighted_rating(scores: Mapping[str, float], weights: Mapping[str, float]) -> float:
    """The weighted mean of the dimension scores (each 0–100) with the weights in force."""
    total = sum(weights.values())
    return sum(scores[name] * weight for name, weight in weights.items()) / total


def job_score(rating: float, deductions: Iterable[float]) -> float:
    return clamp(rating - sum(deductions))


@dataclass(frozen=True)
class WeightedScore:
    score: float
    weight: float


def weighted_mean(jobs: Iterable[WeightedScore]) -> float | None:
    jobs = list(jobs)
    weight = sum(job.weight for job in jobs)
    if weight == 0:
        return None
    return sum(job.score * job.weight for job in jobs) / weight


def period_score(
    jobs: Iterable[WeightedScore],
    *,
    tenant_mean: float,
    prior_jobs: float,
    general_deductions: Iterable[float] = (),
) -> float:
    """Shrink the contractor's risk-weighted mean toward the tenant mean by ``prior_jobs``
    weight, then deduct the violations that belong to no job."""
    jobs = list(jobs)
    weight = sum(job.weight for job in jobs)
    total = sum(job.score * job.weight for job in jobs)
    # No jobs and no prior weight: nothing to go on but the tenant mean.
    shrunk = (
        tenant_mean
        if weight + prior_jobs == 0
        else (total + prior_jobs * tenant_mean) / (weight + prior_jobs)
    )
    return clamp(shrunk - sum(general_deductions))


def grade_for(score: float, thresholds: Mapping[str, float]) -> Grade:
    for grade in (Grade.A, Grade.B, Grade.C):
        if score >= thresholds[grade.value]:
            return grade
    return Grade.D


def proposed_decision(grade: Grade, critical_violations: int, policy: Policy) -> Decision:
    """The grade's decision, raised to blacklist when the period held at least
    ``blacklist_critical`` critical violations, and to suspend at the first one."""
    decision = GRADE_DECISIONS[grade]
    if critical_violations >= policy.blacklist_critical:
        return Decision.BLACKLIST
    if critical_violations and decision in (Decision.KEEP, Decision.PROBATION):
        return Decision.SUSPEND
    return decision
