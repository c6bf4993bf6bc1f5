"""The approval-time sketch: its quantile is off by at most the width of the bucket the exact
value falls in, and histograms merge in any grouping and order, as the rollups rely on."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from scoring import sketch

# Up to the last closed edge: beyond two days the bucket is open and has no width.
minutes = st.floats(min_value=0, max_value=sketch.EDGES[-1], allow_nan=False, exclude_max=True)
samples = st.lists(minutes, min_size=1, max_size=300)
quantiles = st.floats(min_value=0.01, max_value=1.0)


def _bucket_bounds(value: float) -> tuple[float, float]:
    index = sketch.bucket_of(value)
    return (sketch.EDGES[index - 1] if index else 0.0), sketch.EDGES[index]


def _nearest_rank(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


@given(samples, quantiles)
def test_quantile_within_the_bucket_of_the_exact_value(values: list[float], q: float) -> None:
    exact = _nearest_rank(values, q)
    low, high = _bucket_bounds(exact)
    estimate = sketch.quantile(sketch.histogram(values), q)
    assert estimate is not None
    assert low <= estimate <= high
    assert abs(estimate - exact) <= high - low


@given(samples)
def test_p90_of_the_documented_widths(values: list[float]) -> None:
    """5 minutes up to half an hour, 15 up to two hours (the module's promise)."""
    exact = _nearest_rank(values, 0.9)
    estimate = sketch.quantile(sketch.histogram(values), 0.9)
    assert estimate is not None
    if exact < 30:
        assert abs(estimate - exact) <= 5
    elif exact < 120:
        assert abs(estimate - exact) <= 15


def test_edges_fall_into_the_upper_bucket_and_negatives_into_the_first() -> None:
    assert sketch.bucket_of(-3) == 0
    assert sketch.bucket_of(4.999) == 0
    assert sketch.bucket_of(5) == 1
    assert sketch.bucket_of(sketch.EDGES[-1]) == sketch.BUCKETS - 1
    assert sketch.bucket_of(10 * sketch.EDGES[-1]) == sketch.BUCKETS - 1


def test_beyond_the_last_edge_reads_at_least_the_last_edge() -> None:
    estimate = sketch.quantile(sketch.histogram([5_000.0, 9_000.0]), 0.9)
    assert estimate is not None and estimate >= sketch.EDGES[-1]


def test_nothing_counted_has_no_quantile() -> None:
    assert sketch.quantile(sketch.histogram([]), 0.9) is None
    assert sketch.quantile([0] * sketch.BUCKETS, 0.5) is None


@given(samples, samples, samples)
def test_merge_is_associative_and_commutative(a: list[float], b: list[float], c: list[float]):
    ha, hb, hc = (sketch.histogram(values) for values in (a, b, c))
    left = sketch.merge((sketch.merge((ha, hb)), hc))
    right = sketch.merge((ha, sketch.merge((hb, hc))))
    assert left == right == sketch.merge((hc, hb, ha))
    # Merging histograms is counting the values together.
    assert left == sketch.histogram(a + b + c)
    assert sketch.quantile(left, 0.9) == sketch.quantile(sketch.histogram(c + a + b), 0.9)


@given(samples)
def test_merging_an_empty_histogram_changes_nothing(values: list[float]) -> None:
    counts = sketch.histogram(values)
    assert sketch.merge((counts, [0] * sketch.BUCKETS)) == counts
    assert sketch.merge((counts, ())) == counts
    assert sum(counts) == len(values)
