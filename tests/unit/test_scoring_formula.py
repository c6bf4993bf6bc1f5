"""The scoring formula: weighted ratings, deductions, shrinkage toward the tenant mean, grades
and proposed decisions; a violation never raises a score."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scoring import formula
from scoring.formula import Policy, RiskLevel, WeightedScore
from scoring.models import Decision, Grade

scores = st.floats(min_value=0, max_value=100, allow_nan=False)
weights = st.sampled_from([1.0, 1.5, 2.0])
points = st.floats(min_value=0, max_value=30, allow_nan=False)
jobs = st.lists(st.tuples(scores, weights), max_size=12)


def test_default_weights_are_the_issue_defaults() -> None:
    assert dict(formula.DEFAULT_WEIGHTS) == {
        "safety": 40.0,
        "quality": 25.0,
        "schedule": 15.0,
        "housekeeping": 10.0,
        "cooperation": 10.0,
    }


def test_weighted_rating_uses_the_weights_given() -> None:
    ratings = {"safety": 100, "quality": 50, "schedule": 100, "housekeeping": 100, "cooperation": 0}
    assert formula.weighted_rating(ratings, formula.DEFAULT_WEIGHTS) == pytest.approx(77.5)
    only_safety = {name: 0.0 for name in formula.DEFAULT_WEIGHTS} | {"safety": 1.0}
    assert formula.weighted_rating(ratings, only_safety) == 100


def test_job_score_deducts_and_stays_in_range() -> None:
    assert formula.job_score(90, [3, 8]) == 79
    assert formula.job_score(10, [20]) == 0


@pytest.mark.parametrize(
    ("work_type", "level", "risk"),
    [
        ("hot_work", "special", RiskLevel.HIGH),
        ("hot_work", "level1", RiskLevel.HIGH),
        ("hot_work", "level2", RiskLevel.MEDIUM),
        ("confined_space", None, RiskLevel.HIGH),
        ("height", "grade_4", RiskLevel.HIGH),
        ("height", "grade_1", RiskLevel.LOW),
        ("lifting", "level3", RiskLevel.LOW),
        ("temp_power", None, RiskLevel.LOW),
        ("excavation", None, RiskLevel.MEDIUM),
    ],
)
def test_risk_level(work_type: str, level: str | None, risk: RiskLevel) -> None:
    assert formula.risk_level(work_type, level) is risk


def test_few_jobs_shrink_toward_the_tenant_mean() -> None:
    two_perfect = [WeightedScore(100, 1.0)] * 2
    forty_good = [WeightedScore(95, 1.0)] * 40
    few = formula.period_score(two_perfect, tenant_mean=80, prior_jobs=5)
    many = formula.period_score(forty_good, tenant_mean=80, prior_jobs=5)
    assert few == pytest.approx((200 + 5 * 80) / 7)
    assert many > few
    assert formula.period_score([], tenant_mean=80, prior_jobs=5) == 80


def test_general_deductions_come_off_the_period_score() -> None:
    base = formula.period_score([WeightedScore(90, 1)], tenant_mean=90, prior_jobs=1)
    less = formula.period_score(
        [WeightedScore(90, 1)], tenant_mean=90, prior_jobs=1, general_deductions=[8]
    )
    assert base - less == pytest.approx(8)


@pytest.mark.parametrize(
    ("score", "grade"),
    [(95, Grade.A), (90, Grade.A), (85, Grade.B), (70, Grade.C), (69.9, Grade.D)],
)
def test_grades_by_threshold(score: float, grade: Grade) -> None:
    assert formula.grade_for(score, formula.DEFAULT_GRADE_THRESHOLDS) is grade


def test_proposed_decisions() -> None:
    policy = Policy()
    assert formula.proposed_decision(Grade.A, 0, policy) is Decision.KEEP
    assert formula.proposed_decision(Grade.C, 0, policy) is Decision.PROBATION
    assert formula.proposed_decision(Grade.D, 0, policy) is Decision.SUSPEND
    assert formula.proposed_decision(Grade.A, 1, policy) is Decision.SUSPEND
    assert formula.proposed_decision(Grade.B, policy.blacklist_critical, policy) is (
        Decision.BLACKLIST
    )


def _period(
    own: list[tuple[float, float]],
    others: list[tuple[float, float]],
    own_deductions: list[float],
    general: list[float],
) -> float:
    """The period score as the services compute it: job scores after deductions, the tenant mean
    over everyone's jobs, then shrinkage."""
    own_scores = [
        WeightedScore(
            formula.job_score(rating, [own_deductions[i]] if i < len(own_deductions) else []), w
        )
        for i, (rating, w) in enumerate(own)
    ]
    everyone = own_scores + [WeightedScore(rating, w) for rating, w in others]
    mean = formula.weighted_mean(everyone)
    return formula.period_score(
        own_scores,
        tenant_mean=80.0 if mean is None else mean,
        prior_jobs=5,
        general_deductions=general,
    )


@given(
    own=jobs,
    others=jobs,
    deductions=st.lists(points, max_size=12),
    general=st.lists(points, max_size=4),
    extra=points,
    target=st.integers(min_value=0, max_value=11),
)
def test_a_job_violation_never_raises_the_score(
    own: list[tuple[float, float]],
    others: list[tuple[float, float]],
    deductions: list[float],
    general: list[float],
    extra: float,
    target: int,
) -> None:
    before = _period(own, others, deductions, general)
    if not own:
        return
    index = target % len(own)
    more = list(deductions) + [0.0] * (len(own) - len(deductions))
    more[index] += extra
    assert _period(own, others, more, general) <= before + 1e-9


@given(own=jobs, others=jobs, general=st.lists(points, max_size=4), extra=points)
def test_a_general_violation_never_raises_the_score(
    own: list[tuple[float, float]],
    others: list[tuple[float, float]],
    general: list[float],
    extra: float,
) -> None:
    before = _period(own, others, [], general)
    assert _period(own, others, [], [*general, extra]) <= before + 1e-9


@given(rating=scores, deductions=st.lists(points, max_size=5), extra=points)
def test_a_violation_never_raises_a_job_score(
    rating: float, deductions: list[float], extra: float
) -> None:
    assert formula.job_score(rating, [*deductions, extra]) <= formula.job_score(rating, deductions)


@given(own=jobs, others=jobs, general=st.lists(points, max_size=4))
def test_scores_stay_between_0_and_100(
    own: list[tuple[float, float]], others: list[tuple[float, float]], general: list[float]
) -> None:
    assert 0 <= _period(own, others, [], general) <= 100


@given(critical=st.integers(min_value=0, max_value=5), grade=st.sampled_from(list(Grade)))
def test_more_critical_violations_never_soften_the_decision(critical: int, grade: Grade) -> None:
    order = [Decision.KEEP, Decision.PROBATION, Decision.SUSPEND, Decision.BLACKLIST]
    policy = Policy()
    first = formula.proposed_decision(grade, critical, policy)
    second = formula.proposed_decision(grade, critical + 1, policy)
    assert order.index(second) >= order.index(first)


def test_no_jobs_and_no_prior_weight_gives_the_tenant_mean() -> None:
    assert formula.period_score([], tenant_mean=84, prior_jobs=0) == 84
    assert formula.period_score([WeightedScore(60, 1)], tenant_mean=84, prior_jobs=0) == 60
