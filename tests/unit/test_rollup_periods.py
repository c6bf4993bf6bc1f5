"""How a span of days splits into whole months (read from the monthly rollups) and the days
around them: every day of the span is covered exactly once, whatever the span."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given
from hypothesis import strategies as st

from scoring.rollups import month_of, next_month, whole_months

days = st.dates(min_value=date(2020, 1, 1), max_value=date(2030, 12, 31))


def test_next_month_crosses_years_and_short_months() -> None:
    assert next_month(date(2026, 1, 1)) == date(2026, 2, 1)
    assert next_month(date(2026, 2, 1)) == date(2026, 3, 1)
    assert next_month(date(2026, 12, 1)) == date(2027, 1, 1)
    assert month_of(date(2028, 2, 29)) == date(2028, 2, 1)


def test_whole_months_of_a_year_and_of_a_part() -> None:
    assert whole_months(date(2025, 1, 1), date(2026, 1, 1)) == (date(2025, 1, 1), date(2026, 1, 1))
    assert whole_months(date(2025, 1, 2), date(2025, 3, 31)) == (date(2025, 2, 1), date(2025, 3, 1))
    first, last = whole_months(date(2025, 1, 2), date(2025, 1, 30))
    assert first >= last


@given(days, st.integers(min_value=0, max_value=800))
def test_months_and_edge_days_cover_the_span_once(start: date, length: int) -> None:
    end = start + timedelta(days=length)
    first, last = whole_months(start, end)
    covered: list[date] = []
    if first < last:
        month = first
        while month < last:
            following = next_month(month)
            covered += [month + timedelta(days=n) for n in range((following - month).days)]
            month = following
        edges = [start + timedelta(days=n) for n in range((first - start).days)]
        edges += [last + timedelta(days=n) for n in range((end - last).days)]
    else:
        edges = [start + timedelta(days=n) for n in range(length)]
    assert sorted(covered + edges) == [start + timedelta(days=n) for n in range(length)]
    assert all(month_of(day) == day for day in (first, last))
