"""Chinese public holidays and make-up working days (调休上班日), as data.

GB 30871-2022 §5.1.1 upgrades hot work done on holidays and rest days, so the permit rules need
to know which local dates are rest days. Weekends alone are not enough: the State Council moves
working days onto Saturdays and Sundays around the long holidays, and those make-up days are
ordinary working days.

2025 and 2026 are the State Council's published arrangements (国办发明电〔2024〕12号 and
〔2025〕7号). The 2027 arrangement was not known when this was written, so 2027 holds only the
statutory holidays of the 2025 revision of 全国年节及纪念日放假办法 (Spring Festival: 除夕 to 初三;
Labour Day: 1–2 May; National Day: 1–3 October) with no make-up days: the bridging days and
weekend swaps that the published arrangement will add are missing until this table is updated,
and a tenant can add them meanwhile through `HolidayCalendar`'s extra holidays and workdays.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta


def _span(first: date, days: int) -> tuple[date, ...]:
    return tuple(first + timedelta(days=offset) for offset in range(days))


PUBLIC_HOLIDAYS: frozenset[date] = frozenset(
    (
        # 2025
        date(2025, 1, 1),
        *_span(date(2025, 1, 28), 8),
        *_span(date(2025, 4, 4), 3),
        *_span(date(2025, 5, 1), 5),
        *_span(date(2025, 5, 31), 3),
        *_span(date(2025, 10, 1), 8),
        # 2026
        *_span(date(2026, 1, 1), 3),
        *_span(date(2026, 2, 15), 9),
        *_span(date(2026, 4, 4), 3),
        *_span(date(2026, 5, 1), 5),
        *_span(date(2026, 6, 19), 3),
        *_span(date(2026, 9, 25), 3),
        *_span(date(2026, 10, 1), 7),
        # 2027: statutory days only (see the module docstring)
        date(2027, 1, 1),
        *_span(date(2027, 2, 5), 4),
        date(2027, 4, 5),
        *_span(date(2027, 5, 1), 2),
        date(2027, 6, 9),
        date(2027, 9, 15),
        *_span(date(2027, 10, 1), 3),
    )
)

MAKE_UP_WORKDAYS: frozenset[date] = frozenset(
    (
        date(2025, 1, 26),
        date(2025, 2, 8),
        date(2025, 4, 27),
        date(2025, 9, 28),
        date(2025, 10, 11),
        date(2026, 1, 4),
        date(2026, 2, 14),
        date(2026, 2, 28),
        date(2026, 5, 9),
        date(2026, 9, 20),
        date(2026, 10, 10),
    )
)


class HolidayCalendar:
    """The national calendar, extended by a tenant's own dates.

    A plant may declare its own rest days (a site holiday) or working weekend days (a shutdown
    campaign worked through). A holiday always wins over a workday, the national ones included:
    §5.1.1 upgrades holiday work because the plant is thinly staffed, and a tenant may tighten
    the standard but never loosen it, so a tenant workday only turns a weekend into a workday.
    """

    def __init__(
        self, *, extra_holidays: Iterable[date] = (), extra_workdays: Iterable[date] = ()
    ) -> None:
        self.holidays: frozenset[date] = PUBLIC_HOLIDAYS | frozenset(extra_holidays)
        self.workdays: frozenset[date] = (MAKE_UP_WORKDAYS | frozenset(extra_workdays)) - (
            self.holidays
        )

    def is_holiday(self, day: date) -> bool:
        return day in self.holidays

    def is_rest_day(self, day: date) -> bool:
        if day in self.holidays:
            return True
        return day.weekday() >= 5 and day not in self.workdays
