"""A mergeable sketch of approval times: counts per fixed bucket of minutes.

Rollup rows keep one histogram each; any grouping of rows adds them bucket by bucket, so the p90
of a plant's year is read from 365 small lists instead of every permit. Within a bucket the
quantile is interpolated linearly, so it is off by at most that bucket's width (5 minutes up to
half an hour, 15 minutes up to two hours, then coarser; the edges follow how approval times
are talked about).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Sequence

# Upper edges in minutes; the last bucket is open (anything beyond two days).
EDGES: tuple[float, ...] = (
    5, 10, 15, 20, 25, 30, 45, 60, 75, 90, 105, 120, 150, 180, 240, 300, 360, 480, 720, 1_440,
    2_880,
)  # fmt: skip
BUCKETS = len(EDGES) + 1


def bucket_of(minutes: float) -> int:
    return bisect_right(EDGES, max(0.0, minutes))


def histogram(values: Iterable[float]) -> list[int]:
    counts = [0] * BUCKETS
    for minutes in values:
        counts[bucket_of(minutes)] += 1
    return counts


def merge(histograms: Iterable[Sequence[int]]) -> list[int]:
    total = [0] * BUCKETS
    for counts in histograms:
        for index, count in enumerate(counts):
            total[index] += count
    return total


def quantile(counts: Sequence[int], q: float) -> float | None:
    """The ``q`` quantile (0–1) of the values counted, or None when there are none."""
    n = sum(counts)
    if n == 0:
        return None
    rank = q * n
    seen = 0
    for index, count in enumerate(counts):
        if count and seen + count >= rank:
            low = EDGES[index - 1] if index else 0.0
            high = EDGES[index] if index < len(EDGES) else EDGES[-1] * 2
            return low + (high - low) * (rank - seen) / count
        seen += count
    return float(EDGES[-1])
