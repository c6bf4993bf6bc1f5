"""GB 30871-2022 rules of the permit engine, one test (or more) per clause, each citing it.

The last tests tie the registry to the standard's digest and to this file: every clause the
digest lists has a rule, and every rule's clause and code is exercised here.
"""

from __future__ import annotations

import functools
import re
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from infra.i18n import locale_scope
from onboarding.catalogue import QUALIFYING_CERTIFICATES, WorkType
from permits.holidays import MAKE_UP_WORKDAYS, PUBLIC_HOLIDAYS, HolidayCalendar
from permits.rules import (
    GASES,
    RULES,
    ApprovalRole,
    BlindAction,
    ChainStep,
    GasReading,
    GasUnit,
    Guardian,
    HeightGrade,
    HeightHazard,
    HotWorkLevel,
    LiftingLevel,
    NightHours,
    PermitChange,
    PlannedWork,
    RecordKind,
    Rule,
    RuleViolation,
    ServedPermit,
    StepKind,
    UpgradeReason,
    analysis_due,
    check_approval_on_site,
    check_blind_plate_scope,
    check_briefing,
    check_change,
    check_closure,
    check_guardian,
    check_height_conditions,
    check_monitoring,
    check_permit_types,
    check_purge,
    check_video,
    check_window,
    distance_m,
    excavation_as_confined_space,
    find_conflicts,
    flammable_limit_percent,
    gas_analysis_verdict,
    height_grade,
    height_grade_basis,
    hot_work_level,
    is_excavation,
    lifting_grade,
    merge_chain,
    monitoring_requirement,
    retained_until,
    standard_chain,
    validity_limit,
)

TZ_NAME = "Asia/Shanghai"
TZ = ZoneInfo(TZ_NAME)
CALENDAR = HolidayCalendar()
# A Wednesday in ordinary working time.
WORKDAY = datetime(2026, 12, 2, 9, 0, tzinfo=TZ)


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), TZ)


def codes(violations: list[RuleViolation] | tuple[RuleViolation, ...]) -> list[str]:
    return [violation.code for violation in violations]


level = functools.partial(hot_work_level, timezone=TZ_NAME, calendar=CALENDAR)


# --- Holidays (for §5.1.1) ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "rest"),
    [
        (date(2025, 1, 28), True),  # Spring Festival 2025
        (date(2025, 1, 26), False),  # a Sunday worked in exchange
        (date(2026, 2, 14), False),  # a Saturday worked in exchange
        (date(2026, 10, 7), True),
        (date(2026, 12, 2), False),  # an ordinary Wednesday
        (date(2026, 12, 5), True),  # an ordinary Saturday
        (date(2027, 2, 6), True),  # 2027 Spring Festival, statutory
    ],
)
def test_5_1_1_calendar_knows_holidays_and_make_up_workdays(day: date, rest: bool) -> None:
    assert CALENDAR.is_rest_day(day) is rest


def test_5_1_1_tenant_extends_calendar_but_never_cancels_a_public_holiday() -> None:
    site_holiday, worked_saturday, national = (
        date(2026, 12, 9),
        date(2026, 12, 5),
        date(2026, 10, 1),
    )
    calendar = HolidayCalendar(
        extra_holidays=[site_holiday], extra_workdays=[worked_saturday, national]
    )
    assert calendar.is_rest_day(site_holiday)
    assert not calendar.is_rest_day(worked_saturday)
    assert calendar.is_rest_day(national), "a tenant may tighten the standard, never loosen it"


def test_holiday_tables_are_disjoint_and_make_up_days_fall_on_weekends() -> None:
    assert not PUBLIC_HOLIDAYS & MAKE_UP_WORKDAYS
    assert all(day.weekday() >= 5 for day in MAKE_UP_WORKDAYS)


# --- Hot work level §5.1.1, §5.2.15 ----------------------------------------------------------


def test_5_1_1_hot_work_on_a_working_day_keeps_its_level() -> None:
    decision = level(HotWorkLevel.LEVEL2, WORKDAY, WORKDAY + timedelta(hours=8))
    assert decision.effective is HotWorkLevel.LEVEL2
    assert decision.reasons == ()


@pytest.mark.parametrize(
    ("requested", "effective"),
    [
        (HotWorkLevel.LEVEL2, HotWorkLevel.LEVEL1),
        (HotWorkLevel.LEVEL1, HotWorkLevel.SPECIAL),
        (HotWorkLevel.SPECIAL, HotWorkLevel.SPECIAL),
    ],
)
def test_5_1_1_hot_work_on_a_holiday_is_upgraded_one_level(
    requested: HotWorkLevel, effective: HotWorkLevel
) -> None:
    decision = level(requested, at(date(2026, 10, 2), 9), at(date(2026, 10, 2), 12))
    assert decision.effective is effective
    assert decision.reasons == (UpgradeReason.HOLIDAY,)
    assert codes(decision.notices) == ["hot_work.upgrade_holiday"]
    assert decision.notices[0].clause == "§5.1.1"


def test_5_1_1_hot_work_on_a_rest_day_but_not_on_a_make_up_workday() -> None:
    saturday = level(HotWorkLevel.LEVEL2, at(date(2026, 12, 5), 9), at(date(2026, 12, 5), 12))
    assert saturday.reasons == (UpgradeReason.REST_DAY,)
    assert codes(saturday.notices) == ["hot_work.upgrade_rest_day"]
    worked = level(HotWorkLevel.LEVEL2, at(date(2026, 10, 10), 9), at(date(2026, 10, 10), 12))
    assert worked.reasons == ()


@pytest.mark.parametrize(
    ("start_hour", "end_hour", "night"),
    [(21, 22, False), (21, 23, True), (5, 6, True), (6, 21, False), (23, 24, True)],
)
def test_5_1_1_hot_work_touching_the_night_is_upgraded(
    start_hour: int, end_hour: int, night: bool
) -> None:
    day = date(2026, 12, 2)
    start = at(day, start_hour)
    end = at(day, 23) + timedelta(hours=1) if end_hour == 24 else at(day, end_hour)
    decision = level(HotWorkLevel.LEVEL2, start, end)
    assert (UpgradeReason.NIGHT in decision.reasons) is night
    assert ("hot_work.upgrade_night" in codes(decision.notices)) is night


def test_5_1_1_night_hours_are_configurable_and_follow_the_plant_timezone() -> None:
    start = datetime(2026, 12, 2, 11, 0, tzinfo=ZoneInfo("UTC"))  # 19:00 in Shanghai
    evening = NightHours(start=time(18, 0), end=time(7, 0))
    decision = level(HotWorkLevel.LEVEL2, start, start + timedelta(hours=1), night=evening)
    assert decision.reasons == (UpgradeReason.NIGHT,)
    assert level(HotWorkLevel.LEVEL2, start, start + timedelta(hours=1)).reasons == ()


def test_5_1_1_several_reasons_still_upgrade_one_level_only() -> None:
    decision = level(HotWorkLevel.LEVEL2, at(date(2026, 10, 2), 23), at(date(2026, 10, 3), 1))
    assert decision.reasons == (UpgradeReason.HOLIDAY, UpgradeReason.NIGHT)
    assert decision.effective is HotWorkLevel.LEVEL1


def test_5_1_1_naive_datetimes_are_a_programming_error() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        level(HotWorkLevel.LEVEL2, datetime(2026, 12, 2, 9), datetime(2026, 12, 2, 10))


@pytest.mark.parametrize(
    ("outdoor", "force", "upgraded"), [(True, 4, False), (True, 5, True), (False, 7, False)]
)
def test_5_2_15_outdoor_hot_work_at_wind_force_5_is_upgraded(
    outdoor: bool, force: int, upgraded: bool
) -> None:
    decision = level(
        HotWorkLevel.LEVEL2,
        WORKDAY,
        WORKDAY + timedelta(hours=2),
        outdoor=outdoor,
        wind_force=force,
    )
    assert (decision.effective is HotWorkLevel.LEVEL1) is upgraded
    if upgraded:
        assert codes(decision.notices) == ["hot_work.upgrade_wind"]
        assert decision.notices[0].clause == "§5.2.15"
        assert decision.notices[0].params == {"force": 5}


# --- Height §8.1, §8.2 ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("height", "grade"),
    [
        (1.99, None),
        (2.0, HeightGrade.I),
        (5.0, HeightGrade.I),
        (5.01, HeightGrade.II),
        (15.0, HeightGrade.II),
        (15.5, HeightGrade.III),
        (30.0, HeightGrade.III),
        (30.1, HeightGrade.IV),
    ],
)
def test_8_1_1_method_a_grades_by_height_band(height: float, grade: HeightGrade | None) -> None:
    assert height_grade(height, set()) is grade


@pytest.mark.parametrize(
    ("height", "grade"),
    [(2.0, HeightGrade.II), (10.0, HeightGrade.III), (20.0, HeightGrade.IV), (40, HeightGrade.IV)],
)
def test_8_1_3_method_b_with_any_8_1_2_hazard_grades_higher(
    height: float, grade: HeightGrade
) -> None:
    for hazard in HeightHazard:
        assert height_grade(height, {hazard}) is grade
    assert height_grade(1.5, {HeightHazard.RESCUE}) is None


def test_8_1_2_the_nine_objective_hazards() -> None:
    assert len(HeightHazard) == 9
    assert codes_of(height_grade_basis()) == ["height.grade_method_a"]
    assert codes_of(height_grade_basis({HeightHazard.COLD})) == [
        "height.hazards",
        "height.grade_method_b",
    ]


def codes_of(rules: tuple[Rule, ...]) -> list[str]:
    return [rule.code for rule in rules]


_ORDER = list(HeightGrade)


@given(
    low=st.floats(min_value=0, max_value=200),
    high=st.floats(min_value=0, max_value=200),
    hazards=st.sets(st.sampled_from(HeightHazard)),
)
def test_8_1_grade_is_monotone_in_height_and_hazards(
    low: float, high: float, hazards: set[HeightHazard]
) -> None:
    low, high = min(low, high), max(low, high)
    lower, upper = height_grade(low, hazards), height_grade(high, hazards)
    if lower is not None:
        assert upper is not None and _ORDER.index(lower) <= _ORDER.index(upper)
    plain, hazardous = height_grade(high, set()), height_grade(high, hazards | {HeightHazard.COLD})
    if plain is not None:
        assert hazardous is not None and _ORDER.index(plain) <= _ORDER.index(hazardous)


def test_8_2_1_above_30_m_needs_communication_equipment() -> None:
    assert codes(
        check_height_conditions(31, has_communication=False, wind_force=0, dense_fog=False)
    ) == ["height.communication"]
    assert check_height_conditions(31, has_communication=True, wind_force=0, dense_fog=False) == []
    assert check_height_conditions(30, has_communication=False, wind_force=0, dense_fog=False) == []


@pytest.mark.parametrize(
    ("force", "fog", "forbidden"), [(4, False, False), (5, False, True), (0, True, True)]
)
def test_8_2_6_no_height_work_in_wind_force_5_or_dense_fog(
    force: int, fog: bool, forbidden: bool
) -> None:
    found = check_height_conditions(10, has_communication=False, wind_force=force, dense_fog=fog)
    assert (codes(found) == ["height.weather"]) is forbidden
    assert all(violation.clause == "§8.2.6" for violation in found)


# --- Lifting §9.1, B.2 note 3 -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("load", "grade", "permit"),
    [
        (100.1, LiftingLevel.LEVEL1, True),
        (100, LiftingLevel.LEVEL2, True),
        (40, LiftingLevel.LEVEL2, True),
        (39.9, LiftingLevel.LEVEL3, True),
        (10, LiftingLevel.LEVEL3, True),
    ],
)
def test_9_1_lifting_grade_by_mass(load: float, grade: LiftingLevel, permit: bool) -> None:
    assessment = lifting_grade(load)
    assert (assessment.level, assessment.permit_required) == (grade, permit)
    assert assessment.rule.code == "lifting.grade" and assessment.rule.clause == "§9.1"


def test_B_2_note_3_under_10_t_no_permit_but_a_risk_analysis() -> None:
    assessment = lifting_grade(9.99)
    assert not assessment.permit_required and assessment.risk_analysis_instead
    assert assessment.rule.code == "lifting.small_load" and assessment.rule.clause == "B.2"
    with pytest.raises(ValueError):
        lifting_grade(-1)


# --- Validity §5.1.5, §6.10, §8.2.11, §10.8 ---------------------------------------------------


def window(
    work_type: WorkType,
    length: timedelta,
    *,
    level: HotWorkLevel | None = None,
    special_case: bool = False,
    serving: ServedPermit | None = None,
) -> list[RuleViolation]:
    return check_window(
        work_type,
        WORKDAY,
        WORKDAY + length,
        now=WORKDAY,
        level=level,
        special_case=special_case,
        serving=serving,
    )


@pytest.mark.parametrize("hot_level", [HotWorkLevel.SPECIAL, HotWorkLevel.LEVEL1])
def test_5_1_5_hot_work_special_and_level1_validity_at_most_8_hours(
    hot_level: HotWorkLevel,
) -> None:
    assert window(WorkType.HOT_WORK, timedelta(hours=8), level=hot_level) == []
    found = window(WorkType.HOT_WORK, timedelta(hours=8, minutes=1), level=hot_level)
    assert codes(found) == ["validity.hot_work"]
    assert found[0].clause == "§5.1.5" and found[0].params == {"hours": 8}


def test_5_1_5_hot_work_level2_validity_at_most_72_hours() -> None:
    assert window(WorkType.HOT_WORK, timedelta(hours=72), level=HotWorkLevel.LEVEL2) == []
    assert codes(window(WorkType.HOT_WORK, timedelta(hours=73), level=HotWorkLevel.LEVEL2)) == [
        "validity.hot_work"
    ]
    with pytest.raises(ValueError):
        validity_limit(WorkType.HOT_WORK)


def test_6_10_confined_space_validity_at_most_24_hours() -> None:
    assert window(WorkType.CONFINED_SPACE, timedelta(hours=24)) == []
    found = window(WorkType.CONFINED_SPACE, timedelta(hours=25))
    assert codes(found) == ["validity.confined_space"] and found[0].params == {"hours": 24}


def test_8_2_11_height_validity_at_most_7_days() -> None:
    assert window(WorkType.HEIGHT, timedelta(days=7)) == []
    found = window(WorkType.HEIGHT, timedelta(days=7, seconds=1))
    assert codes(found) == ["validity.height"] and found[0].clause == "§8.2.11"


def test_10_8_temp_power_15_days_or_30_in_special_cases() -> None:
    assert window(WorkType.TEMP_POWER, timedelta(days=15)) == []
    assert codes(window(WorkType.TEMP_POWER, timedelta(days=16))) == ["validity.temp_power"]
    assert window(WorkType.TEMP_POWER, timedelta(days=30), special_case=True) == []
    assert codes(window(WorkType.TEMP_POWER, timedelta(days=31), special_case=True)) == [
        "validity.temp_power"
    ]


def test_10_8_temp_power_serving_hot_work_stays_within_that_permit() -> None:
    served = ServedPermit("DH-1", WORKDAY, WORKDAY + timedelta(hours=8))
    assert window(WorkType.TEMP_POWER, timedelta(hours=8), serving=served) == []
    found = window(WorkType.TEMP_POWER, timedelta(hours=9), serving=served)
    assert codes(found) == ["validity.temp_power_served"] and found[0].params == {"permit": "DH-1"}


def test_validity_unlimited_types_and_generic_window_rules() -> None:
    assert validity_limit(WorkType.EXCAVATION) is None
    assert window(WorkType.EXCAVATION, timedelta(days=90)) == []
    reversed_ = check_window(WorkType.HEIGHT, WORKDAY, WORKDAY, now=WORKDAY)
    assert codes(reversed_) == ["window.reversed"] and reversed_[0].clause is None
    later = WORKDAY + timedelta(days=1)
    assert codes(
        check_window(WorkType.HEIGHT, WORKDAY, WORKDAY + timedelta(hours=1), now=later)
    ) == ["window.elapsed"]
    started = check_window(WorkType.HEIGHT, WORKDAY, later, now=WORKDAY + timedelta(minutes=5))
    assert codes(started) == ["window.starts_in_past"]
    assert (
        check_window(
            WorkType.HEIGHT,
            WORKDAY,
            later,
            now=WORKDAY + timedelta(minutes=5),
            grace=timedelta(minutes=10),
        )
        == []
    )


# --- Gas analysis §5.3, §5.2.7, §6.3–§6.5 -----------------------------------------------------


def reading(gas: str, value: float, unit: GasUnit = GasUnit.PERCENT_VOL) -> GasReading:
    return GasReading(gas, value, unit)


@pytest.mark.parametrize(
    ("gas", "limit"),
    [
        ("methane", 0.5),
        ("hydrogen", 0.5),  # LEL exactly 4 %: the looser limit
        ("hydrogen_sulfide", 0.5),
        ("propane", 0.2),
        ("ethylene", 0.2),
        ("acetylene", 0.2),
        ("benzene", 0.2),
    ],
)
def test_5_3_2_hot_work_pass_criterion_by_lel(gas: str, limit: float) -> None:
    assert gas_analysis_verdict([reading(gas, limit)], WorkType.HOT_WORK) == []
    found = gas_analysis_verdict([reading(gas, limit + 0.01)], WorkType.HOT_WORK)
    assert codes(found) == ["gas.flammable"] and found[0].clause == "§5.3.2"
    assert found[0].subject == gas


@given(
    lel=st.floats(min_value=0.1, max_value=80, allow_nan=False),
    value=st.floats(min_value=0, max_value=100, allow_nan=False),
)
def test_5_3_2_pass_criterion_boundary_property(lel: float, value: float) -> None:
    limit = flammable_limit_percent(lel)
    assert limit == (0.5 if lel >= 4 else 0.2)
    assert (value <= limit) is (value <= (0.5 if lel >= 4 else 0.2))


def test_5_3_2_readings_in_ppm_are_converted_and_unknown_gases_refused() -> None:
    assert gas_analysis_verdict([reading("methane", 5000, GasUnit.PPM)], WorkType.HOT_WORK) == []
    assert codes(
        gas_analysis_verdict([reading("methane", 5001, GasUnit.PPM)], WorkType.HOT_WORK)
    ) == ["gas.flammable"]
    unknown = gas_analysis_verdict([reading("unobtainium", 0)], WorkType.HOT_WORK)
    assert codes(unknown) == ["gas.unknown"] and unknown[0].clause == "§5.3.2"


@pytest.mark.parametrize(
    ("value", "unit"),
    [(-0.1, GasUnit.PERCENT_VOL), (100.1, GasUnit.PERCENT_VOL), (1_000_001, GasUnit.PPM),
     (-1, GasUnit.MG_M3), (float("nan"), GasUnit.PERCENT_VOL)],
)  # fmt: skip
def test_5_3_physically_impossible_readings_are_refused(value: float, unit: GasUnit) -> None:
    found = gas_analysis_verdict([reading("methane", value, unit)], WorkType.HOT_WORK)
    assert codes(found) == ["gas.out_of_range"] and found[0].clause == "§5.3"


def test_5_3_oxygen_is_read_in_percent_only() -> None:
    found = gas_analysis_verdict([reading("oxygen", 209_000, GasUnit.PPM)], WorkType.CONFINED_SPACE)
    assert codes(found) == ["gas.wrong_unit", "gas.oxygen_missing"]


@pytest.mark.parametrize(
    ("oxygen", "rich", "expected"),
    [
        (19.5, False, []),
        (19.4, False, ["gas.oxygen_low"]),
        (21.0, False, []),
        (21.1, False, ["gas.oxygen_high"]),
        (23.5, True, []),
        (23.6, True, ["gas.oxygen_high"]),
    ],
)
def test_6_4_confined_space_oxygen_range(oxygen: float, rich: bool, expected: list[str]) -> None:
    found = gas_analysis_verdict(
        [reading("oxygen", oxygen)], WorkType.CONFINED_SPACE, oxygen_rich=rich
    )
    assert codes(found) == expected
    assert all(violation.clause == "§6.4" for violation in found)


def test_6_4_confined_space_needs_oxygen_toxics_within_gbz_2_1_and_flammables_per_5_3_2() -> None:
    assert codes(gas_analysis_verdict([], WorkType.CONFINED_SPACE)) == ["gas.oxygen_missing"]
    air = reading("oxygen", 20.9)
    assert (
        gas_analysis_verdict(
            [air, reading("hydrogen_sulfide", 10, GasUnit.MG_M3)], WorkType.CONFINED_SPACE
        )
        == []
    )
    toxic = gas_analysis_verdict(
        [air, reading("hydrogen_sulfide", 10.1, GasUnit.MG_M3)], WorkType.CONFINED_SPACE
    )
    assert codes(toxic) == ["gas.toxic"] and toxic[0].params["limit"] == 10.0
    # 30 ppm of CO is about 35 mg/m³, above its PC-STEL of 30 mg/m³.
    assert codes(
        gas_analysis_verdict(
            [air, reading("carbon_monoxide", 30, GasUnit.PPM)], WorkType.CONFINED_SPACE
        )
    ) == ["gas.toxic"]
    assert codes(gas_analysis_verdict([air, reading("propane", 0.3)], WorkType.CONFINED_SPACE)) == [
        "gas.flammable"
    ]
    # Hot work judges flammables only: a toxic reading is the confined space rule's business.
    assert (
        gas_analysis_verdict([reading("hydrogen_sulfide", 20, GasUnit.MG_M3)], WorkType.HOT_WORK)
        == []
    )


def test_6_4_catalogue_units_and_limits() -> None:
    assert GASES["methane"].lel_percent == 5.0
    assert GASES["carbon_monoxide"].lel_percent == 12.5
    assert GASES["carbon_monoxide"].limit_mg_m3 == 30.0
    assert GASES["hydrogen_sulfide"].limit_mg_m3 == 10.0
    assert GASES["ammonia"].lel_percent == 15.0
    assert GASES["oxygen"].lel_percent is None and GASES["oxygen"].limit_mg_m3 is None


def test_5_2_7_oxygen_equipment_hot_work_at_most_23_5_percent() -> None:
    ok = gas_analysis_verdict([reading("oxygen", 23.5)], WorkType.HOT_WORK, oxygen_equipment=True)
    assert ok == []
    found = gas_analysis_verdict(
        [reading("oxygen", 23.6)], WorkType.HOT_WORK, oxygen_equipment=True
    )
    assert codes(found) == ["gas.oxygen_equipment"] and found[0].clause == "§5.2.7"
    missing = gas_analysis_verdict([], WorkType.HOT_WORK, oxygen_equipment=True)
    assert codes(missing) == ["gas.oxygen_missing"]


def test_5_3_1c_hot_work_sample_at_most_30_minutes_before_start() -> None:
    level2 = HotWorkLevel.LEVEL2
    assert codes(
        analysis_due(WorkType.HOT_WORK, at=WORKDAY, last_sample_at=None, level=level2)
    ) == ["gas.sample_missing"]
    fresh = WORKDAY - timedelta(minutes=30)
    assert analysis_due(WorkType.HOT_WORK, at=WORKDAY, last_sample_at=fresh, level=level2) == []
    stale = analysis_due(
        WorkType.HOT_WORK, at=WORKDAY, last_sample_at=fresh - timedelta(minutes=1), level=level2
    )
    assert codes(stale) == ["gas.sample_stale"] and stale[0].clause == "§5.3.1c"


@pytest.mark.parametrize(
    ("hot_level", "pause", "due"),
    [
        (HotWorkLevel.SPECIAL, 30, False),
        (HotWorkLevel.SPECIAL, 31, True),
        (HotWorkLevel.LEVEL1, 31, True),
        (HotWorkLevel.LEVEL2, 60, False),
        (HotWorkLevel.LEVEL2, 61, True),
    ],
)
def test_5_3_1d_hot_work_reanalysis_after_pause(
    hot_level: HotWorkLevel, pause: int, due: bool
) -> None:
    paused = WORKDAY + timedelta(hours=1)
    found = analysis_due(
        WorkType.HOT_WORK,
        at=paused + timedelta(minutes=pause),
        last_sample_at=WORKDAY - timedelta(minutes=10),
        level=hot_level,
        paused_since=paused,
    )
    assert (codes(found) == ["gas.reanalysis_pause"]) is due


def test_5_3_1d_hot_work_reanalysis_every_day_and_a_new_sample_clears_the_pause() -> None:
    evening = at(date(2026, 12, 2), 17, 50)
    next_morning = at(date(2026, 12, 3), 8)
    found = analysis_due(
        WorkType.HOT_WORK,
        at=next_morning,
        last_sample_at=evening,
        level=HotWorkLevel.LEVEL2,
        paused_since=at(date(2026, 12, 2), 18),
    )
    assert codes(found) == ["gas.reanalysis_pause", "gas.reanalysis_daily"]
    resumed = analysis_due(
        WorkType.HOT_WORK,
        at=next_morning,
        last_sample_at=next_morning - timedelta(minutes=5),
        level=HotWorkLevel.LEVEL2,
        paused_since=at(date(2026, 12, 2), 18),
    )
    assert resumed == []


def test_6_3a_confined_space_test_at_most_30_minutes_before_entry() -> None:
    assert codes(analysis_due(WorkType.CONFINED_SPACE, at=WORKDAY, last_sample_at=None)) == [
        "gas.sample_missing_confined"
    ]
    old = WORKDAY - timedelta(minutes=31)
    found = analysis_due(WorkType.CONFINED_SPACE, at=WORKDAY, last_sample_at=old)
    assert codes(found) == ["gas.sample_stale_confined"] and found[0].clause == "§6.3a"
    assert analysis_due(WorkType.HEIGHT, at=WORKDAY, last_sample_at=None) == []


@pytest.mark.parametrize(("pause", "due"), [(60, False), (61, True)])
def test_6_3f_confined_space_retest_after_pause_over_60_minutes(pause: int, due: bool) -> None:
    found = analysis_due(
        WorkType.CONFINED_SPACE,
        at=WORKDAY + timedelta(minutes=pause),
        last_sample_at=WORKDAY - timedelta(minutes=5),
        paused_since=WORKDAY,
    )
    assert (codes(found) == ["gas.retest_pause_confined"]) is due


def test_6_5_confined_space_monitoring_recorded_every_2_hours() -> None:
    requirement = monitoring_requirement(WorkType.CONFINED_SPACE)
    assert requirement is not None and requirement.record_interval == timedelta(hours=2)
    recent = WORKDAY - timedelta(hours=2)
    assert check_monitoring(WorkType.CONFINED_SPACE, last_record_at=recent, now=WORKDAY) == []
    late = check_monitoring(
        WorkType.CONFINED_SPACE, last_record_at=recent - timedelta(minutes=1), now=WORKDAY
    )
    assert codes(late) == ["gas.monitoring_confined"] and late[0].clause == "§6.5"
    assert codes(check_monitoring(WorkType.CONFINED_SPACE, last_record_at=None, now=WORKDAY)) == [
        "gas.monitoring_confined"
    ]


def test_5_3_1_special_hot_work_is_monitored_continuously() -> None:
    requirement = monitoring_requirement(WorkType.HOT_WORK, HotWorkLevel.SPECIAL)
    assert requirement is not None and requirement.continuous and requirement.clause == "§5.3.1"
    assert monitoring_requirement(WorkType.HOT_WORK, HotWorkLevel.LEVEL1) is None
    stopped = check_monitoring(
        WorkType.HOT_WORK,
        now=WORKDAY,
        last_record_at=None,
        level=HotWorkLevel.SPECIAL,
        monitor_running=False,
    )
    assert codes(stopped) == ["gas.monitoring_special"]


# --- Approval Table B.1, §4.11a ---------------------------------------------------------------


def approver(work_type: WorkType, grade: str | None = None) -> ApprovalRole:
    chain = standard_chain(work_type, grade)
    (step,) = [step for step in chain if step.kind is StepKind.APPROVE]
    return step.role


@pytest.mark.parametrize(
    ("work_type", "grade", "role"),
    [
        (WorkType.HOT_WORK, HotWorkLevel.SPECIAL, ApprovalRole.LEADER_IN_CHARGE),
        (WorkType.HOT_WORK, HotWorkLevel.LEVEL1, ApprovalRole.SAFETY_DEPARTMENT),
        (WorkType.HOT_WORK, HotWorkLevel.LEVEL2, ApprovalRole.LOCAL_UNIT),
        (WorkType.CONFINED_SPACE, None, ApprovalRole.LOCAL_UNIT),
        (WorkType.BLIND_PLATE, None, ApprovalRole.LOCAL_UNIT),
        (WorkType.HEIGHT, HeightGrade.I, ApprovalRole.LOCAL_UNIT),
        (WorkType.HEIGHT, HeightGrade.II, ApprovalRole.SPECIALIST_DEPARTMENT),
        (WorkType.HEIGHT, HeightGrade.III, ApprovalRole.SPECIALIST_DEPARTMENT),
        (WorkType.HEIGHT, HeightGrade.IV, ApprovalRole.PLANT_MANAGER),
        (WorkType.LIFTING, LiftingLevel.LEVEL1, ApprovalRole.PLANT_MANAGER),
        (WorkType.LIFTING, LiftingLevel.LEVEL2, ApprovalRole.SPECIALIST_DEPARTMENT),
        (WorkType.LIFTING, LiftingLevel.LEVEL3, ApprovalRole.SPECIALIST_DEPARTMENT),
        (WorkType.TEMP_POWER, None, ApprovalRole.POWER_SUPPLY_UNIT),
        (WorkType.EXCAVATION, None, ApprovalRole.SPECIALIST_DEPARTMENT),
        (WorkType.ROAD_CLOSURE, None, ApprovalRole.SPECIALIST_DEPARTMENT),
    ],
)
def test_B_1_approver_by_type_and_level(
    work_type: WorkType, grade: str | None, role: ApprovalRole
) -> None:
    assert approver(work_type, grade) is role


def test_B_1_every_chain_opens_with_work_leader_and_unit_and_cites_B_1() -> None:
    for work_type in WorkType:
        grade = {
            WorkType.HOT_WORK: HotWorkLevel.LEVEL2,
            WorkType.HEIGHT: HeightGrade.I,
            WorkType.LIFTING: LiftingLevel.LEVEL3,
        }.get(work_type)
        chain = standard_chain(work_type, grade)
        assert chain[:2] == (
            ChainStep(ApprovalRole.WORK_LEADER, StepKind.REVIEW),
            ChainStep(ApprovalRole.LOCAL_UNIT, StepKind.REVIEW),
        )
        assert {step.clause for step in chain} == {"B.1"}


def test_B_1_graded_types_need_their_grade() -> None:
    with pytest.raises(ValueError, match=r"Table B\.1"):
        standard_chain(WorkType.HOT_WORK)
    assert approver(WorkType.HEIGHT, "grade_4") is ApprovalRole.PLANT_MANAGER


def test_B_1_hot_work_ends_with_the_shift_leader_check() -> None:
    assert standard_chain(WorkType.HOT_WORK, HotWorkLevel.LEVEL1)[-1] == ChainStep(
        ApprovalRole.SHIFT_LEADER, StepKind.CHECK
    )


def test_B_1_excavation_and_road_closure_co_signers() -> None:
    def co_signers(work_type: WorkType) -> set[ApprovalRole]:
        return {s.role for s in standard_chain(work_type) if s.kind is StepKind.CO_SIGN}

    assert co_signers(WorkType.EXCAVATION) == {
        ApprovalRole.WATER_DEPARTMENT,
        ApprovalRole.POWER_DEPARTMENT,
        ApprovalRole.STEAM_DEPARTMENT,
        ApprovalRole.PROCESS_DEPARTMENT,
        ApprovalRole.EQUIPMENT_DEPARTMENT,
        ApprovalRole.FIRE_DEPARTMENT,
        ApprovalRole.SAFETY_DEPARTMENT,
    }
    assert co_signers(WorkType.ROAD_CLOSURE) == {
        ApprovalRole.FIRE_DEPARTMENT,
        ApprovalRole.SAFETY_DEPARTMENT,
    }
    assert ChainStep(ApprovalRole.POWER_SUPPLY_UNIT, StepKind.REVIEW) in standard_chain(
        WorkType.TEMP_POWER
    )


def test_B_1_tenants_may_add_steps_never_remove_or_reorder_the_standard() -> None:
    standard = standard_chain(WorkType.CONFINED_SPACE)
    team_leader = ChainStep(ApprovalRole.SHIFT_LEADER, StepKind.REVIEW, clause=None)
    added = (standard[0], team_leader, *standard[1:])
    merged = merge_chain(standard, added)
    assert merged.steps == added and merged.violations == ()

    dropped = merge_chain(standard, (standard[0], team_leader))
    assert dropped.steps == standard
    assert codes(dropped.violations) == ["approval.chain", "approval.chain"]
    assert dropped.violations[0].clause == "B.1"

    swapped = merge_chain(standard, (standard[1], standard[0], standard[2]))
    assert swapped.steps == standard and len(swapped.violations) >= 1


def test_4_11a_approval_at_the_work_site() -> None:
    assert check_approval_on_site(True) == []
    for position in (False, None):
        found = check_approval_on_site(position)
        assert codes(found) == ["approval.off_site"] and found[0].clause == "§4.11a"


# --- Simultaneous work §4.7, §7.6, §7.10 ------------------------------------------------------

ORIGIN = (30.0, 120.0)


def planned(
    number: str,
    work_type: WorkType,
    *,
    zone_id: str = "Z1",
    start: datetime = WORKDAY,
    hours: int = 4,
    pipeline_id: str | None = None,
    point: tuple[float, float] | None = None,
) -> PlannedWork:
    end = start + timedelta(hours=hours)
    return PlannedWork(number, zone_id, work_type, start, end, pipeline_id, point)


def test_4_7_overlapping_permits_in_one_zone_are_flagged() -> None:
    first = planned("A", WorkType.HEIGHT)
    second = planned("B", WorkType.LIFTING)
    found = find_conflicts(first, [first, second])
    assert codes(found) == ["conflict.same_zone"] and found[0].params == {"other": "B"}
    assert found[0].subject == "A" and found[0].clause == "§4.7"
    later = planned("C", WorkType.LIFTING, start=WORKDAY + timedelta(hours=4), hours=1)
    assert find_conflicts(first, [later]) == [], "back-to-back windows do not overlap"
    elsewhere = planned("D", WorkType.LIFTING, zone_id="Z2")
    assert find_conflicts(first, [elsewhere]) == []


def test_7_6_no_hot_work_within_30_m_of_blind_plate_work() -> None:
    blind = planned("M", WorkType.BLIND_PLATE, zone_id="Z2", point=ORIGIN)
    near = planned("H1", WorkType.HOT_WORK, point=(30.0, 120.0003))  # about 29 m east
    far = planned("H2", WorkType.HOT_WORK, point=(30.0, 120.0004))  # about 38.6 m east
    found = find_conflicts(near, [blind])
    assert codes(found) == ["conflict.hot_work_near_blind_plate"] and found[0].clause == "§7.6"
    assert find_conflicts(far, [blind]) == []
    unknown = find_conflicts(planned("H3", WorkType.HOT_WORK), [blind])
    assert codes(unknown) == ["conflict.distance_unknown"]


def test_7_6_distance_is_ellipsoidal() -> None:
    assert distance_m(ORIGIN, (30.0, 120.0003)) == pytest.approx(28.946, abs=0.01)
    assert distance_m(ORIGIN, (30.00027, 120.0)) == pytest.approx(29.930, abs=0.01)
    assert distance_m((0.0, 179.99995), (0.0, -179.99995)) == pytest.approx(11.13, abs=0.01)


def test_7_10_no_two_blind_plate_jobs_on_one_pipeline() -> None:
    first = planned("M1", WorkType.BLIND_PLATE, zone_id="Z1", pipeline_id="P-7")
    second = planned("M2", WorkType.BLIND_PLATE, zone_id="Z9", pipeline_id="P-7")
    other_line = planned("M3", WorkType.BLIND_PLATE, zone_id="Z9", pipeline_id="P-8")
    found = find_conflicts(first, [second, other_line])
    assert codes(found) == ["conflict.same_pipeline"] and found[0].clause == "§7.10"


# --- Scope §7.11, §4.6, §11.10, §3.11 ---------------------------------------------------------


def test_7_11_one_blind_one_action_per_permit() -> None:
    assert check_blind_plate_scope(["B-1"], [BlindAction.INSERT]) == []
    for blinds, actions in (
        (["B-1", "B-2"], [BlindAction.INSERT]),
        (["B-1"], [BlindAction.INSERT, BlindAction.REMOVE]),
        ([], []),
    ):
        found = check_blind_plate_scope(blinds, actions)
        assert codes(found) == ["blind_plate.one_action"] and found[0].clause == "§7.11"


def test_4_6_one_permit_per_type_related_permits_linked_by_number() -> None:
    """One type per permit is the application's shape (one ``details`` per type); the rule
    checks that every related permit the job involves exists."""
    involved = {WorkType.HOT_WORK, WorkType.HEIGHT, WorkType.TEMP_POWER}
    found = check_permit_types(involved, {WorkType.HOT_WORK: "DH-1", WorkType.HEIGHT: None})
    assert codes(found) == ["permit.related_missing", "permit.related_missing"]
    assert {violation.subject for violation in found} == {"height", "temp_power"}


@pytest.mark.parametrize(
    ("depth", "hazardous", "near_line", "confined"),
    [
        (1.3, True, True, True),
        (1.2, True, True, False),
        (2, False, True, False),
        (2, True, False, False),
    ],
)
def test_11_10_deep_excavation_near_buried_lines_follows_confined_space_rules(
    depth: float, hazardous: bool, near_line: bool, confined: bool
) -> None:
    result = excavation_as_confined_space(
        depth, hazardous_area=hazardous, near_buried_hazardous_line=near_line
    )
    assert result is confined
    assert RULES["excavation.as_confined_space"].clause == "§11.10"


def test_3_11_excavation_means_deeper_than_half_a_metre() -> None:
    assert not is_excavation(0.5)
    assert is_excavation(0.51)
    assert is_excavation(0.1, machinery_grading=True)
    assert RULES["excavation.definition"].clause == "§3.11"


# --- People §4.4, §4.9, §4.10, §6.8 -----------------------------------------------------------


def test_4_9_certificates_are_admissions_and_the_registry_names_the_clause() -> None:
    """Admission's worker verdict judges §4.9 for the permit gates too; the registry keeps the
    clause they cite, and every special-operation type asks for a certificate."""
    assert RULES["worker.certificate"].clause == "§4.9"
    for work_type in (WorkType.HOT_WORK, WorkType.LIFTING, WorkType.TEMP_POWER, WorkType.HEIGHT):
        assert QUALIFYING_CERTIFICATES[work_type]


def test_4_10_guardian_present_certified_throughout() -> None:
    assert check_guardian(WorkType.HEIGHT, Guardian("Wang", certified=True)) == []
    assert codes(check_guardian(WorkType.HEIGHT, None)) == ["guardian.missing"]
    left = check_guardian(WorkType.HEIGHT, Guardian("Wang", certified=False, on_site=False))
    assert codes(left) == ["guardian.not_certified", "guardian.left"]
    assert {v.subject for v in left} == {"Wang"} and left[1].clause == "§4.10"
    # A host user who is not a guardian is refused unnamed.
    assert check_guardian(WorkType.HEIGHT, Guardian(None, certified=False))[0].subject is None


def test_6_8_confined_space_guardian_stays_outside() -> None:
    inside = Guardian("Wang", certified=True, outside_space=False)
    found = check_guardian(WorkType.CONFINED_SPACE, inside)
    assert codes(found) == ["guardian.inside"] and found[0].clause == "§6.8"
    assert check_guardian(WorkType.HEIGHT, inside) == []


def test_4_4_every_crew_member_signs_the_briefing() -> None:
    crew = {1: "Li", 2: "Zhao", 3: "Li"}
    assert check_briefing(crew, {1, 2, 3}, given=True) == []
    found = check_briefing(crew, {1}, given=True)
    assert codes(found) == ["briefing.unsigned"] * 2
    assert [v.subject for v in found] == ["Zhao", "Li"] and found[0].clause == "§4.4"
    # Until the briefer gives and signs it, nobody can sign: that alone is said.
    not_given = check_briefing(crew, set(), given=False)
    assert codes(not_given) == ["briefing.given"] and not_given[0].clause == "§4.4"


# --- Life cycle §4.15, §4.16, §4.18, §5.2.11, B.3 ---------------------------------------------


def test_4_15_completion_acceptance_and_5_2_11_video_of_special_hot_work() -> None:
    assert check_closure(WorkType.HEIGHT, accepted_by="Zhou") == []
    assert codes(check_closure(WorkType.HEIGHT, accepted_by=None)) == ["closure.acceptance"]
    special = HotWorkLevel.SPECIAL
    assert codes(check_closure(WorkType.HOT_WORK, accepted_by="Zhou", level=special)) == [
        "closure.video"
    ]
    assert (
        check_closure(WorkType.HOT_WORK, accepted_by="Zhou", video_kept=True, level=special) == []
    )
    assert RULES["closure.video"].clause == "§5.2.11"


def test_5_2_11_the_plan_and_the_job_of_special_hot_work_are_filmed() -> None:
    assert codes(check_video(WorkType.HOT_WORK, HotWorkLevel.SPECIAL, filmed=False)) == [
        "closure.video"
    ]
    assert check_video(WorkType.HOT_WORK, HotWorkLevel.SPECIAL, filmed=True) == []
    assert check_video(WorkType.HOT_WORK, HotWorkLevel.LEVEL1, filmed=False) == []
    assert check_video(WorkType.HEIGHT, None, filmed=False) == []


def test_4_16_new_permit_on_change_and_4_18_approved_permit_immutable() -> None:
    # A draft is still being filled in.
    assert check_change({PermitChange.LOCATION}, frozen=False) == []
    # Any edit of a frozen permit is refused, even one that changes nothing.
    same = check_change(set(), frozen=True)
    assert codes(same) == ["permit.immutable"] and same[0].clause == "§4.18"
    found = check_change({PermitChange.SCOPE, PermitChange.LOCATION}, frozen=True)
    assert codes(found) == ["permit.immutable", "permit.new_required", "permit.new_required"]
    assert found[1].clause == "§4.16"
    assert [v.subject for v in found[1:]] == [PermitChange.LOCATION, PermitChange.SCOPE]


@pytest.mark.parametrize(
    ("kind", "closed", "until"),
    [
        (RecordKind.PERMIT, date(2026, 3, 15), date(2027, 3, 15)),
        (RecordKind.PERMIT, date(2028, 2, 29), date(2029, 2, 28)),
        (RecordKind.VIDEO, date(2026, 1, 31), date(2026, 2, 28)),
        (RecordKind.VIDEO, date(2026, 12, 15), date(2027, 1, 15)),
    ],
)
def test_B_3_permits_kept_a_year_and_video_a_month(
    kind: RecordKind, closed: date, until: date
) -> None:
    assert retained_until(kind, closed) == until
    assert check_purge(kind, closed, until) == []
    early = check_purge(kind, closed, until - timedelta(days=1))
    assert codes(early) == ["retention.too_early"] and early[0].clause == "B.3"


# --- The registry ---------------------------------------------------------------------------


def test_violation_text_is_translated_with_its_params() -> None:
    violation = check_window(WorkType.HEIGHT, WORKDAY, WORKDAY + timedelta(days=8), now=WORKDAY)[0]
    with locale_scope("en"):
        assert violation.text() == "Valid for at most 7 days."


# Clauses of the digest that define terms rather than state a rule: the eight work types are
# the WorkType enum of onboarding.catalogue.
DEFINITIONS = {"§1", "§3.1"}


def _covered(clause: str, registered: set[str]) -> bool:
    return any(
        known == clause
        or known.startswith(clause + ".")
        or re.fullmatch(re.escape(clause) + "[a-z]", known)
        for known in registered
    )


# Every clause of GB 30871-2022 the permit engine enforces (see docs/permits.md): each must be
# carried by a rule.
ENFORCED_CLAUSES = frozenset(
    {
        "B.1",
        "B.2",
        "B.3",
        "§1",
        "§10.8",
        "§11.10",
        "§3.1",
        "§3.11",
        "§4.10",
        "§4.11a",
        "§4.15",
        "§4.16",
        "§4.18",
        "§4.4",
        "§4.6",
        "§4.7",
        "§4.9",
        "§5.1",
        "§5.1.1",
        "§5.1.5",
        "§5.2.11",
        "§5.2.15",
        "§5.2.7",
        "§5.3",
        "§5.3.1c",
        "§5.3.1d",
        "§5.3.2",
        "§6.10",
        "§6.3",
        "§6.3a",
        "§6.3f",
        "§6.4",
        "§6.5",
        "§6.8",
        "§7.10",
        "§7.11",
        "§7.6",
        "§8.1",
        "§8.1.1",
        "§8.1.2",
        "§8.2.1",
        "§8.2.11",
        "§8.2.6",
        "§9.1",
    }
)


def test_every_enforced_clause_has_a_rule() -> None:
    listed = ENFORCED_CLAUSES
    registered = {rule.clause for rule in RULES.values() if rule.clause}
    missing = sorted(c for c in listed - DEFINITIONS if not _covered(c, registered))
    assert missing == []


def test_every_rule_clause_and_code_is_tested_here() -> None:
    source = Path(__file__).read_text()
    names = " ".join(re.findall(r"def (test_\w+)", source))
    for rule in RULES.values():
        assert f'"{rule.code}"' in source, rule.code
        if rule.clause:
            cited = rule.clause.lstrip("§").replace(".", "_")
            assert f"test_{cited}" in names or rule.clause in source, rule.clause
