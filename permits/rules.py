"""GB 30871-2022 as data: the limits, levels and checks that a permit to work must satisfy.

Pure functions over plain values, no database and no HTTP, so that the permit service can call
the same rules when a permit is requested, approved, started, resumed and closed, and so that
every rule is unit-tested against the clause it comes from.

Every rule is a `Rule` record in `RULES` with its clause and an English msgid (translated where
it is shown, like the rest of the project). Checks return a list of `RuleViolation` rather than
raise, so a gate can show every failure at once; an empty list means "allowed". Programming
errors (a naive datetime, an unknown enum) still raise, because no user can correct them.

A tenant's rules may be stricter than the standard, never looser: the functions here take the
standard's limits as defaults and the service may only narrow them.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Collection, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from types import MappingProxyType
from typing import TypeVar
from zoneinfo import ZoneInfo

from geopy.distance import geodesic

from infra.i18n import N_, gettext
from onboarding.catalogue import WorkType
from permits.holidays import HolidayCalendar


@dataclass(frozen=True)
class Rule:
    code: str
    # None for rules of plain logic (a window that ends before it starts) that no clause states.
    clause: str | None
    message: str


@dataclass(frozen=True)
class RuleViolation:
    code: str
    clause: str | None
    message: str
    # Left out of the hash so that violations can go in sets despite the dict.
    params: Mapping[str, object] = field(default_factory=dict, hash=False)
    subject: str | None = None

    def text(self) -> str:
        return gettext(self.message, **self.params)


_RULE_LIST = (
    # Permit window and validity
    Rule("window.reversed", None, N_("The permit must end after it starts.")),
    Rule("window.elapsed", None, N_("The permit's window has already ended.")),
    Rule("window.starts_in_past", None, N_("The permit cannot start before it is issued.")),
    Rule("validity.hot_work", "§5.1.5", N_("Valid for at most %(hours)s hours.")),
    Rule("validity.confined_space", "§6.10", N_("Valid for at most %(hours)s hours.")),
    Rule("validity.height", "§8.2.11", N_("Valid for at most %(days)s days.")),
    Rule("validity.temp_power", "§10.8", N_("Valid for at most %(days)s days.")),
    Rule("validity.temp_power_served", "§10.8", N_("Must stay within permit %(permit)s.")),
    # Levels
    Rule("hot_work.upgrade_holiday", "§5.1.1", N_("Upgraded one level: holiday.")),
    Rule("hot_work.upgrade_rest_day", "§5.1.1", N_("Upgraded one level: rest day.")),
    Rule("hot_work.upgrade_night", "§5.1.1", N_("Upgraded one level: night.")),
    Rule("hot_work.upgrade_wind", "§5.2.15", N_("Upgraded one level: wind force %(force)s.")),
    Rule("height.grade_method_a", "§8.1.1", N_("Graded by the height band.")),
    Rule("height.hazards", "§8.1.2", N_("Objective hazards raise the grade.")),
    Rule("height.grade_method_b", "§8.1.3", N_("Graded one step higher for hazards.")),
    Rule("height.communication", "§8.2.1", N_("Above 30 m: communication equipment needed.")),
    Rule("height.weather", "§8.2.6", N_("No work at height in strong wind or dense fog.")),
    Rule("lifting.grade", "§9.1", N_("Graded by the load's mass.")),
    Rule("lifting.small_load", "B.2", N_("Under 10 t: no permit, but a risk analysis.")),
    # Gas analysis
    Rule("gas.unknown", "§5.3.2", N_("%(gas)s is not in the gas catalogue.")),
    Rule("gas.out_of_range", "§5.3", N_("%(gas)s: %(value)s %(unit)s is impossible.")),
    Rule("gas.wrong_unit", "§5.3", N_("%(gas)s must be read in %(unit)s.")),
    Rule("gas.flammable", "§5.3.2", N_("%(gas)s at %(value)s %% v/v, limit %(limit)s %%.")),
    Rule("gas.oxygen_missing", "§6.4", N_("An oxygen reading is required.")),
    Rule("gas.oxygen_low", "§6.4", N_("Oxygen at %(value)s %%, below %(limit)s %%.")),
    Rule("gas.oxygen_high", "§6.4", N_("Oxygen at %(value)s %%, above %(limit)s %%.")),
    Rule("gas.toxic", "§6.4", N_("%(gas)s at %(value)s mg/m³, limit %(limit)s mg/m³.")),
    Rule("gas.oxygen_equipment", "§5.2.7", N_("Oxygen at %(value)s %%, above 23.5 %%.")),
    Rule("gas.sample_missing", "§5.3.1c", N_("Analyse the gas before hot work starts.")),
    Rule("gas.sample_stale", "§5.3.1c", N_("Sample older than %(minutes)s minutes.")),
    Rule("gas.sample_missing_confined", "§6.3a", N_("Test the gas before entry.")),
    Rule("gas.sample_stale_confined", "§6.3a", N_("Test older than %(minutes)s minutes.")),
    Rule("gas.reanalysis_pause", "§5.3.1d", N_("Paused over %(minutes)s minutes: analyse again.")),
    Rule("gas.reanalysis_daily", "§5.3.1d", N_("Analyse the gas again each day.")),
    Rule("gas.retest_pause_confined", "§6.3f", N_("Paused over %(minutes)s minutes: test again.")),
    Rule("gas.monitoring_confined", "§6.5", N_("Record monitoring every %(hours)s hours.")),
    Rule("gas.monitoring_special", "§5.3.1", N_("Monitor the gas continuously.")),
    # Approval
    Rule("approval.chain", "B.1", N_("Standard step %(role)s (%(kind)s) missing or moved.")),
    Rule("approval.off_site", "§4.11a", N_("Approve the permit at the work site.")),
    # Simultaneous work
    Rule("conflict.same_zone", "§4.7", N_("Overlaps permit %(other)s in the same zone.")),
    Rule("conflict.hot_work_near_blind_plate", "§7.6", N_("Within %(limit)s m of %(other)s.")),
    Rule("conflict.distance_unknown", "§7.6", N_("Distance to %(other)s unknown.")),
    Rule("conflict.same_pipeline", "§7.10", N_("Same pipeline as permit %(other)s.")),
    # Scope of one permit
    Rule("blind_plate.one_action", "§7.11", N_("One blind and one action per permit.")),
    Rule("permit.related_missing", "§4.6", N_("The related %(work_type)s permit is missing.")),
    Rule("excavation.as_confined_space", "§11.10", N_("Follows the confined space rules.")),
    Rule("excavation.definition", "§3.11", N_("Deeper than 0.5 m: excavation permit needed.")),
    # People
    Rule("worker.certificate", "§4.9", N_("%(worker)s holds no valid certificate for this.")),
    Rule("guardian.missing", "§4.10", N_("A guardian must be present throughout.")),
    Rule("guardian.not_certified", "§4.10", N_("The guardian must be certified.")),
    Rule("guardian.left", "§4.10", N_("The guardian left: permit withdrawn, work stops.")),
    Rule("guardian.inside", "§6.8", N_("The guardian stays outside the confined space.")),
    Rule(
        "briefing.given",
        "§4.4",
        N_("The safety briefing has not been given and signed by the briefer."),
    ),
    Rule("briefing.unsigned", "§4.4", N_("%(worker)s has not signed the safety briefing.")),
    # Life cycle
    Rule("closure.acceptance", "§4.15", N_("The work must pass completion acceptance.")),
    Rule("closure.video", "§5.2.11", N_("Special hot work keeps video of the whole job.")),
    Rule("permit.new_required", "§4.16", N_("A new permit is needed: %(change)s.")),
    Rule(
        "permit.immutable",
        "§4.18",
        N_("Only a draft can be changed; an approved permit is revised as a new version."),
    ),
    Rule("retention.too_early", "B.3", N_("This record must be kept until %(until)s.")),
)


RULES: Mapping[str, Rule] = MappingProxyType({rule.code: rule for rule in _RULE_LIST})


def violation(code: str, subject: str | None = None, **params: object) -> RuleViolation:
    rule = RULES[code]
    return RuleViolation(rule.code, rule.clause, rule.message, params, subject)


def _require_aware(*moments: datetime) -> None:
    for moment in moments:
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise ValueError("permit rules need timezone-aware datetimes")


# --- Hot work level (§5.1.1, §5.2.15) -------------------------------------------------------


class HotWorkLevel(enum.StrEnum):
    SPECIAL = "special"
    LEVEL1 = "level1"
    LEVEL2 = "level2"


_UPGRADE = MappingProxyType(
    {
        HotWorkLevel.LEVEL2: HotWorkLevel.LEVEL1,
        HotWorkLevel.LEVEL1: HotWorkLevel.SPECIAL,
        HotWorkLevel.SPECIAL: HotWorkLevel.SPECIAL,
    }
)


class UpgradeReason(enum.StrEnum):
    HOLIDAY = "holiday"
    REST_DAY = "rest_day"
    NIGHT = "night"
    WIND = "wind"


_UPGRADE_RULES = MappingProxyType(
    {
        UpgradeReason.HOLIDAY: "hot_work.upgrade_holiday",
        UpgradeReason.REST_DAY: "hot_work.upgrade_rest_day",
        UpgradeReason.NIGHT: "hot_work.upgrade_night",
        UpgradeReason.WIND: "hot_work.upgrade_wind",
    }
)

# Beaufort force at which GB 30871 forbids outdoor hot work (§5.2.15) and height work (§8.2.6).
STRONG_WIND_FORCE = 5


@dataclass(frozen=True)
class NightHours:
    """Local clock times; `start` after `end` means the night spans midnight."""

    start: time = time(22, 0)
    end: time = time(6, 0)


@dataclass(frozen=True)
class LevelDecision:
    requested: HotWorkLevel
    effective: HotWorkLevel
    reasons: tuple[UpgradeReason, ...]
    notices: tuple[RuleViolation, ...]


def _local_days(start: datetime, end: datetime, zone: ZoneInfo) -> list[date]:
    # Half-open window: work ending exactly at midnight does not touch the next day.
    first = start.astimezone(zone).date()
    last = (end - timedelta(microseconds=1)).astimezone(zone).date()
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def _touches_night(start: datetime, end: datetime, zone: ZoneInfo, night: NightHours) -> bool:
    wraps = night.start >= night.end
    days = _local_days(start, end, zone)
    # The night that began the evening before the first day can reach into the window.
    for day in [days[0] - timedelta(days=1), *days]:
        night_start = datetime.combine(day, night.start, zone)
        night_end = datetime.combine(day + timedelta(days=1) if wraps else day, night.end, zone)
        if night_start < end and start < night_end:
            return True
    return False


def hot_work_level(
    requested: HotWorkLevel,
    start: datetime,
    end: datetime,
    *,
    timezone: str,
    calendar: HolidayCalendar,
    night: NightHours = NightHours(),
    outdoor: bool = False,
    wind_force: int | None = None,
) -> LevelDecision:
    """The level a hot work permit must be managed at.

    §5.1.1 upgrades work on holidays, rest days or at night by one level, and §5.2.15 allows
    outdoor hot work at wind force ≥ 5 only when upgraded. Both are read as one single upgrade
    whatever the number of reasons: the standard says "升级一级管理", not one level per reason. A
    window that touches a rest day or the night anywhere counts, since the whole permit is
    managed at one level.
    """
    _require_aware(start, end)
    zone = ZoneInfo(timezone)
    days = _local_days(start, end, zone)
    reasons: list[UpgradeReason] = []
    if any(calendar.is_holiday(day) for day in days):
        reasons.append(UpgradeReason.HOLIDAY)
    elif any(calendar.is_rest_day(day) for day in days):
        reasons.append(UpgradeReason.REST_DAY)
    if _touches_night(start, end, zone, night):
        reasons.append(UpgradeReason.NIGHT)
    if outdoor and wind_force is not None and wind_force >= STRONG_WIND_FORCE:
        reasons.append(UpgradeReason.WIND)
    notices = tuple(
        violation(_UPGRADE_RULES[reason], force=wind_force)
        if reason is UpgradeReason.WIND
        else violation(_UPGRADE_RULES[reason])
        for reason in reasons
    )
    effective = _UPGRADE[requested] if reasons else requested
    return LevelDecision(requested, effective, tuple(reasons), notices)


# --- Height (§8.1, §8.2) ------------------------------------------------------------------


class HeightHazard(enum.StrEnum):
    """The nine objective hazards of §8.1.2."""

    GUSTS = "gusts"  # gusts of force 5 or more
    COLD = "cold"  # ambient ≤ 5 °C
    COLD_WATER = "cold_water"  # near water ≤ 12 °C
    SLIPPERY = "slippery"
    POOR_LIGHT = "poor_light"
    LIVE_CONDUCTORS = "live_conductors"
    UNSTABLE_FOOTING = "unstable_footing"
    TOXIC_OR_LOW_OXYGEN = "toxic_or_low_oxygen"  # toxic gas, or O₂ < 19.5 %
    RESCUE = "rescue"


class HeightGrade(enum.StrEnum):
    I = "grade_1"  # noqa: E741 - the standard's own Roman numeral
    II = "grade_2"
    III = "grade_3"
    IV = "grade_4"


# Upper bound of each band (inclusive); the last band is open.
_HEIGHT_BANDS = (5.0, 15.0, 30.0)
_METHOD_A = (HeightGrade.I, HeightGrade.II, HeightGrade.III, HeightGrade.IV)
_METHOD_B = (HeightGrade.II, HeightGrade.III, HeightGrade.IV, HeightGrade.IV)
HEIGHT_WORK_MIN_M = 2.0
COMMUNICATION_ABOVE_M = 30.0


def height_grade(height_m: float, hazards: Collection[HeightHazard] = ()) -> HeightGrade | None:
    """§8.1.1–§8.1.3: the grade, or None below 2 m where it is not work at height."""
    if not math.isfinite(height_m) or height_m < HEIGHT_WORK_MIN_M:
        return None
    band = sum(1 for upper in _HEIGHT_BANDS if height_m > upper)
    return (_METHOD_B if hazards else _METHOD_A)[band]


def height_grade_basis(hazards: Collection[HeightHazard] = ()) -> tuple[Rule, ...]:
    """The rules behind a grade, for showing why work at height got the grade it did."""
    if not hazards:
        return (RULES["height.grade_method_a"],)
    return RULES["height.hazards"], RULES["height.grade_method_b"]


def check_height_conditions(
    height_m: float, *, has_communication: bool, wind_force: int, dense_fog: bool
) -> list[RuleViolation]:
    found = []
    if height_m > COMMUNICATION_ABOVE_M and not has_communication:
        found.append(violation("height.communication"))
    if wind_force >= STRONG_WIND_FORCE or dense_fog:
        found.append(violation("height.weather", force=wind_force))
    return found


# --- Lifting (§9.1, B.2 note 3) -------------------------------------------------------------


class LiftingLevel(enum.StrEnum):
    LEVEL1 = "level1"
    LEVEL2 = "level2"
    LEVEL3 = "level3"


@dataclass(frozen=True)
class LiftingAssessment:
    level: LiftingLevel
    permit_required: bool
    # B.2 note 3: a recorded risk analysis with reliable measures stands in for the permit.
    risk_analysis_instead: bool
    rule: Rule


def lifting_grade(load_t: float) -> LiftingAssessment:
    """§9.1 grades by mass; under 10 t (a level 3 lift) B.2 note 3 waives the permit but still
    asks for a risk analysis, which the service must record instead."""
    if not math.isfinite(load_t) or load_t < 0:
        raise ValueError("a load is a finite, non-negative mass in tonnes")
    if load_t > 100:
        return LiftingAssessment(LiftingLevel.LEVEL1, True, False, RULES["lifting.grade"])
    if load_t >= 40:
        return LiftingAssessment(LiftingLevel.LEVEL2, True, False, RULES["lifting.grade"])
    if load_t >= 10:
        return LiftingAssessment(LiftingLevel.LEVEL3, True, False, RULES["lifting.grade"])
    return LiftingAssessment(LiftingLevel.LEVEL3, False, True, RULES["lifting.small_load"])


# --- Validity (§5.1.5, §6.10, §8.2.11, §10.8) ---------------------------------------------

_HOT_WORK_VALIDITY = MappingProxyType(
    {
        HotWorkLevel.SPECIAL: timedelta(hours=8),
        HotWorkLevel.LEVEL1: timedelta(hours=8),
        HotWorkLevel.LEVEL2: timedelta(hours=72),
    }
)
CONFINED_SPACE_VALIDITY = timedelta(hours=24)
HEIGHT_VALIDITY = timedelta(days=7)
TEMP_POWER_VALIDITY = timedelta(days=15)
TEMP_POWER_SPECIAL_VALIDITY = timedelta(days=30)


def validity_limit(
    work_type: WorkType, level: HotWorkLevel | None = None, *, special_case: bool = False
) -> timedelta | None:
    """The longest window the standard allows, or None where it sets none."""
    if work_type is WorkType.HOT_WORK:
        if level is None:
            raise ValueError("hot work validity depends on its level")
        return _HOT_WORK_VALIDITY[level]
    if work_type is WorkType.TEMP_POWER:
        return TEMP_POWER_SPECIAL_VALIDITY if special_case else TEMP_POWER_VALIDITY
    return {
        WorkType.CONFINED_SPACE: CONFINED_SPACE_VALIDITY,
        WorkType.HEIGHT: HEIGHT_VALIDITY,
    }.get(work_type)


@dataclass(frozen=True)
class ServedPermit:
    """The hot work or confined space permit that temporary power serves (§10.8)."""

    number: str
    start: datetime
    end: datetime


def check_window(
    work_type: WorkType,
    start: datetime,
    end: datetime,
    *,
    now: datetime,
    level: HotWorkLevel | None = None,
    special_case: bool = False,
    serving: ServedPermit | None = None,
    grace: timedelta = timedelta(0),
) -> list[RuleViolation]:
    """Check a requested window. `level` is the effective hot work level (after upgrades);
    `grace` tolerates a start slightly before `now` for a permit approved at the moment of work.
    """
    _require_aware(start, end, now)
    if end <= start:
        return [violation("window.reversed")]
    found = []
    if end <= now:
        found.append(violation("window.elapsed"))
    elif start < now - grace:
        found.append(violation("window.starts_in_past"))
    limit = validity_limit(work_type, level, special_case=special_case)
    if limit is not None and end - start > limit:
        code = f"validity.{work_type.value}"
        if work_type in (WorkType.HOT_WORK, WorkType.CONFINED_SPACE):
            found.append(violation(code, hours=int(limit / timedelta(hours=1))))
        else:
            found.append(violation(code, days=limit.days))
    if work_type is WorkType.TEMP_POWER and serving is not None:
        _require_aware(serving.start, serving.end)
        if start < serving.start or end > serving.end:
            found.append(violation("validity.temp_power_served", permit=serving.number))
    return found


# --- Gas analysis (§5.3, §6.3–§6.5, §5.2.7) -----------------------------------------------


class GasUnit(enum.StrEnum):
    PERCENT_VOL = "percent_vol"
    PPM = "ppm"
    MG_M3 = "mg_m3"


@dataclass(frozen=True)
class Gas:
    """A catalogue entry. `lel_percent` is the lower explosive limit in % v/v (None: not
    flammable); `limit_mg_m3` is the GBZ 2.1-2019 limit judged against a spot reading: the MAC
    where one is set, else the PC-STEL (None: not toxic); `molar_mass` converts ppm to mg/m³."""

    code: str
    name: str
    molar_mass: float
    lel_percent: float | None = None
    limit_mg_m3: float | None = None


OXYGEN = "oxygen"

GASES: Mapping[str, Gas] = MappingProxyType(
    {
        gas.code: gas
        for gas in (
            Gas(OXYGEN, N_("Oxygen"), 32.00),
            Gas("methane", N_("Methane"), 16.04, lel_percent=5.0),
            Gas("hydrogen", N_("Hydrogen"), 2.016, lel_percent=4.0),
            Gas("propane", N_("Propane"), 44.10, lel_percent=2.1),
            Gas("ethylene", N_("Ethylene"), 28.05, lel_percent=2.7),
            Gas("acetylene", N_("Acetylene"), 26.04, lel_percent=2.5),
            Gas("benzene", N_("Benzene"), 78.11, lel_percent=1.2, limit_mg_m3=10.0),
            Gas(
                "carbon_monoxide", N_("Carbon monoxide"), 28.01, lel_percent=12.5, limit_mg_m3=30.0
            ),
            Gas(
                "hydrogen_sulfide", N_("Hydrogen sulfide"), 34.08, lel_percent=4.0, limit_mg_m3=10.0
            ),
            Gas("ammonia", N_("Ammonia"), 17.03, lel_percent=15.0, limit_mg_m3=30.0),
            Gas("chlorine", N_("Chlorine"), 70.90, limit_mg_m3=1.0),
            Gas("sulfur_dioxide", N_("Sulfur dioxide"), 64.07, limit_mg_m3=10.0),
            Gas(
                "hydrogen_cyanide", N_("Hydrogen cyanide"), 27.03, lel_percent=5.6, limit_mg_m3=1.0
            ),
        )
    }
)

# LEL at or above which the looser hot work limit applies, and the two limits (§5.3.2), in % v/v.
LEL_SPLIT_PERCENT = 4.0
FLAMMABLE_LIMIT_HIGH_LEL = 0.5
FLAMMABLE_LIMIT_LOW_LEL = 0.2
OXYGEN_MIN_PERCENT = 19.5
OXYGEN_MAX_PERCENT = 21.0
OXYGEN_RICH_MAX_PERCENT = 23.5
# Molar volume at 20 °C and 101.325 kPa, the reference conditions of GBZ 2.1.
MOLAR_VOLUME_L = 24.04


def flammable_limit_percent(lel_percent: float) -> float:
    """§5.3.2: the highest concentration (% v/v) at which hot work may proceed."""
    return FLAMMABLE_LIMIT_HIGH_LEL if lel_percent >= LEL_SPLIT_PERCENT else FLAMMABLE_LIMIT_LOW_LEL


@dataclass(frozen=True)
class GasReading:
    gas: str
    value: float
    unit: GasUnit


_UNIT_MAX = MappingProxyType(
    {GasUnit.PERCENT_VOL: 100.0, GasUnit.PPM: 1_000_000.0, GasUnit.MG_M3: math.inf}
)


def _as_percent(reading: GasReading, gas: Gas) -> float:
    if reading.unit == GasUnit.PERCENT_VOL:
        return reading.value
    ppm = (
        reading.value
        if reading.unit == GasUnit.PPM
        else reading.value * MOLAR_VOLUME_L / gas.molar_mass
    )
    return ppm / 10_000


def _as_mg_m3(reading: GasReading, gas: Gas) -> float:
    if reading.unit == GasUnit.MG_M3:
        return reading.value
    ppm = reading.value * 10_000 if reading.unit == GasUnit.PERCENT_VOL else reading.value
    return ppm * gas.molar_mass / MOLAR_VOLUME_L


def gas_analysis_verdict(
    readings: Iterable[GasReading],
    work_type: WorkType,
    *,
    oxygen_rich: bool = False,
    oxygen_equipment: bool = False,
    catalogue: Mapping[str, Gas] = GASES,
) -> list[RuleViolation]:
    """Judge one round of readings. Hot work judges flammables (§5.3.2), and oxygen on oxygen
    equipment (§5.2.7); confined space judges oxygen, toxics and flammables (§6.4). Readings may
    come in any unit: flammables are compared in % v/v, toxics in mg/m³, oxygen only in % v/v.
    """
    confined = work_type is WorkType.CONFINED_SPACE
    found: list[RuleViolation] = []
    oxygen_seen = False
    for reading in readings:
        gas = catalogue.get(reading.gas)
        if gas is None:
            found.append(violation("gas.unknown", reading.gas, gas=reading.gas))
            continue
        if not math.isfinite(reading.value) or not 0 <= reading.value <= _UNIT_MAX[reading.unit]:
            found.append(
                violation(
                    "gas.out_of_range",
                    gas.code,
                    gas=gas.code,
                    value=reading.value,
                    unit=reading.unit,
                )
            )
            continue
        if gas.code == OXYGEN:
            if reading.unit != GasUnit.PERCENT_VOL:
                found.append(violation("gas.wrong_unit", gas.code, gas=gas.code, unit="% v/v"))
                continue
            oxygen_seen = True
            found.extend(_oxygen(reading.value, confined, oxygen_rich, oxygen_equipment))
            continue
        if gas.lel_percent is not None:
            limit = flammable_limit_percent(gas.lel_percent)
            percent = _as_percent(reading, gas)
            if percent > limit:
                found.append(
                    violation(
                        "gas.flammable",
                        gas.code,
                        gas=gas.code,
                        value=round(percent, 4),
                        limit=limit,
                    )
                )
        if confined and gas.limit_mg_m3 is not None:
            mg_m3 = _as_mg_m3(reading, gas)
            if mg_m3 > gas.limit_mg_m3:
                found.append(
                    violation(
                        "gas.toxic",
                        gas.code,
                        gas=gas.code,
                        value=round(mg_m3, 3),
                        limit=gas.limit_mg_m3,
                    )
                )
    if (confined or oxygen_equipment) and not oxygen_seen:
        found.append(violation("gas.oxygen_missing", OXYGEN))
    return found


def _oxygen(
    value: float, confined: bool, oxygen_rich: bool, oxygen_equipment: bool
) -> list[RuleViolation]:
    found = []
    if oxygen_equipment and value > OXYGEN_RICH_MAX_PERCENT:
        found.append(violation("gas.oxygen_equipment", OXYGEN, value=value))
    if confined:
        upper = OXYGEN_RICH_MAX_PERCENT if oxygen_rich else OXYGEN_MAX_PERCENT
        if value < OXYGEN_MIN_PERCENT:
            found.append(violation("gas.oxygen_low", OXYGEN, value=value, limit=OXYGEN_MIN_PERCENT))
        elif value > upper:
            found.append(violation("gas.oxygen_high", OXYGEN, value=value, limit=upper))
    return found


SAMPLE_MAX_AGE = timedelta(minutes=30)
_HOT_WORK_PAUSE = MappingProxyType(
    {
        HotWorkLevel.SPECIAL: timedelta(minutes=30),
        HotWorkLevel.LEVEL1: timedelta(minutes=30),
        HotWorkLevel.LEVEL2: timedelta(minutes=60),
    }
)
CONFINED_SPACE_PAUSE = timedelta(minutes=60)
CONFINED_SPACE_RECORD_INTERVAL = timedelta(hours=2)


def analysis_due(
    work_type: WorkType,
    *,
    at: datetime,
    last_sample_at: datetime | None,
    level: HotWorkLevel | None = None,
    paused_since: datetime | None = None,
    timezone: str = "Asia/Shanghai",
) -> list[RuleViolation]:
    """Why work may not (re)start at `at` without a fresh gas analysis; empty when the last
    sample still serves. `paused_since` is when work last stopped, None on the first start."""
    _require_aware(at, *(m for m in (last_sample_at, paused_since) if m is not None))
    if work_type is WorkType.HOT_WORK:
        if level is None:
            raise ValueError("hot work re-analysis depends on its level")
        missing, stale, pause = "gas.sample_missing", "gas.sample_stale", "gas.reanalysis_pause"
        pause_limit = _HOT_WORK_PAUSE[level]
    elif work_type is WorkType.CONFINED_SPACE:
        missing, stale = "gas.sample_missing_confined", "gas.sample_stale_confined"
        pause, pause_limit = "gas.retest_pause_confined", CONFINED_SPACE_PAUSE
    else:
        return []
    if last_sample_at is None or last_sample_at > at:
        return [violation(missing)]
    found = []
    if paused_since is None and at - last_sample_at > SAMPLE_MAX_AGE:
        found.append(violation(stale, minutes=int(SAMPLE_MAX_AGE.total_seconds() // 60)))
    if (
        paused_since is not None
        and at - paused_since > pause_limit
        and last_sample_at <= paused_since
    ):
        found.append(violation(pause, minutes=int(pause_limit.total_seconds() // 60)))
    zone = ZoneInfo(timezone)
    if (
        work_type is WorkType.HOT_WORK
        and last_sample_at.astimezone(zone).date() < at.astimezone(zone).date()
    ):
        found.append(violation("gas.reanalysis_daily"))
    return found


@dataclass(frozen=True)
class Monitoring:
    continuous: bool
    record_interval: timedelta | None
    clause: str


def monitoring_requirement(
    work_type: WorkType, level: HotWorkLevel | None = None
) -> Monitoring | None:
    """§6.5: confined space is monitored continuously and recorded every 2 h; §5.3.1: special
    hot work is monitored continuously. None where the standard asks for no monitoring."""
    if work_type is WorkType.CONFINED_SPACE:
        return Monitoring(True, CONFINED_SPACE_RECORD_INTERVAL, "§6.5")
    if work_type is WorkType.HOT_WORK and level is HotWorkLevel.SPECIAL:
        return Monitoring(True, None, "§5.3.1")
    return None


def check_monitoring(
    work_type: WorkType,
    *,
    now: datetime,
    last_record_at: datetime | None,
    level: HotWorkLevel | None = None,
    monitor_running: bool = True,
) -> list[RuleViolation]:
    requirement = monitoring_requirement(work_type, level)
    if requirement is None:
        return []
    if requirement.record_interval is None:
        return [] if monitor_running else [violation("gas.monitoring_special")]
    _require_aware(now)
    hours = int(requirement.record_interval.total_seconds() // 3600)
    if not monitor_running or last_record_at is None:
        return [violation("gas.monitoring_confined", hours=hours)]
    _require_aware(last_record_at)
    if now - last_record_at > requirement.record_interval:
        return [violation("gas.monitoring_confined", hours=hours)]
    return []


# --- Approval (Table B.1, §4.11a) ---------------------------------------------------------


class ApprovalRole(enum.StrEnum):
    LEADER_IN_CHARGE = "leader_in_charge"  # 主管领导
    SAFETY_DEPARTMENT = "safety_department"  # 安全管理部门
    LOCAL_UNIT = "local_unit"  # 所在基层单位
    SPECIALIST_DEPARTMENT = "specialist_department"  # 所在单位专业部门
    PLANT_MANAGER = "plant_manager"  # 主管厂长或总工程师
    POWER_SUPPLY_UNIT = "power_supply_unit"  # 配送电单位
    WATER_DEPARTMENT = "water_department"
    POWER_DEPARTMENT = "power_department"
    STEAM_DEPARTMENT = "steam_department"
    PROCESS_DEPARTMENT = "process_department"
    EQUIPMENT_DEPARTMENT = "equipment_department"
    FIRE_DEPARTMENT = "fire_department"
    WORK_LEADER = "work_leader"  # 作业负责人
    SHIFT_LEADER = "shift_leader"  # 岗位当班班长


class StepKind(enum.StrEnum):
    REVIEW = "review"
    CO_SIGN = "co_sign"
    APPROVE = "approve"
    # The shift leader's check of a hot work permit before fire (动火前验票).
    CHECK = "check"


@dataclass(frozen=True)
class ChainStep:
    role: ApprovalRole
    kind: StepKind
    # "B.1" for the standard's steps, None for the steps a tenant adds.
    clause: str | None = "B.1"


_EXCAVATION_CO_SIGNERS = (
    ApprovalRole.WATER_DEPARTMENT,
    ApprovalRole.POWER_DEPARTMENT,
    ApprovalRole.STEAM_DEPARTMENT,
    ApprovalRole.PROCESS_DEPARTMENT,
    ApprovalRole.EQUIPMENT_DEPARTMENT,
    ApprovalRole.FIRE_DEPARTMENT,
    ApprovalRole.SAFETY_DEPARTMENT,
)
_ROAD_CLOSURE_CO_SIGNERS = (ApprovalRole.FIRE_DEPARTMENT, ApprovalRole.SAFETY_DEPARTMENT)


_APPROVERS: Mapping[tuple[WorkType, str | None], ApprovalRole] = MappingProxyType(
    {
        (WorkType.HOT_WORK, HotWorkLevel.SPECIAL): ApprovalRole.LEADER_IN_CHARGE,
        (WorkType.HOT_WORK, HotWorkLevel.LEVEL1): ApprovalRole.SAFETY_DEPARTMENT,
        (WorkType.HOT_WORK, HotWorkLevel.LEVEL2): ApprovalRole.LOCAL_UNIT,
        (WorkType.CONFINED_SPACE, None): ApprovalRole.LOCAL_UNIT,
        (WorkType.BLIND_PLATE, None): ApprovalRole.LOCAL_UNIT,
        (WorkType.HEIGHT, HeightGrade.I): ApprovalRole.LOCAL_UNIT,
        (WorkType.HEIGHT, HeightGrade.II): ApprovalRole.SPECIALIST_DEPARTMENT,
        (WorkType.HEIGHT, HeightGrade.III): ApprovalRole.SPECIALIST_DEPARTMENT,
        (WorkType.HEIGHT, HeightGrade.IV): ApprovalRole.PLANT_MANAGER,
        (WorkType.LIFTING, LiftingLevel.LEVEL1): ApprovalRole.PLANT_MANAGER,
        (WorkType.LIFTING, LiftingLevel.LEVEL2): ApprovalRole.SPECIALIST_DEPARTMENT,
        (WorkType.LIFTING, LiftingLevel.LEVEL3): ApprovalRole.SPECIALIST_DEPARTMENT,
        (WorkType.TEMP_POWER, None): ApprovalRole.POWER_SUPPLY_UNIT,
        (WorkType.EXCAVATION, None): ApprovalRole.SPECIALIST_DEPARTMENT,
        (WorkType.ROAD_CLOSURE, None): ApprovalRole.SPECIALIST_DEPARTMENT,
    }
)


def _approver(work_type: WorkType, level: str | None) -> ApprovalRole:
    try:
        return _APPROVERS[(work_type, level)]
    except KeyError:
        raise ValueError(f"Table B.1 has no approver for {work_type} at {level!r}") from None


def standard_chain(work_type: WorkType, level: str | None = None) -> tuple[ChainStep, ...]:
    """Table B.1 with the opinions every Appendix A form carries, in signing order: the work
    leader, the unit (所在单位, read as the local unit), the reviewers or co-signers, the
    approver, and for hot work the shift leader's check before fire. `level` is a
    `HotWorkLevel`, `HeightGrade` or `LiftingLevel` value for the graded types."""
    steps = [
        ChainStep(ApprovalRole.WORK_LEADER, StepKind.REVIEW),
        ChainStep(ApprovalRole.LOCAL_UNIT, StepKind.REVIEW),
    ]
    if work_type is WorkType.TEMP_POWER:
        steps.append(ChainStep(ApprovalRole.POWER_SUPPLY_UNIT, StepKind.REVIEW))
    co_signers = {
        WorkType.EXCAVATION: _EXCAVATION_CO_SIGNERS,
        WorkType.ROAD_CLOSURE: _ROAD_CLOSURE_CO_SIGNERS,
    }.get(work_type, ())
    steps.extend(ChainStep(role, StepKind.CO_SIGN) for role in co_signers)
    steps.append(ChainStep(_approver(work_type, level), StepKind.APPROVE))
    if work_type is WorkType.HOT_WORK:
        steps.append(ChainStep(ApprovalRole.SHIFT_LEADER, StepKind.CHECK))
    return tuple(steps)


@dataclass(frozen=True)
class MergedChain:
    steps: tuple[ChainStep, ...]
    violations: tuple[RuleViolation, ...]


def merge_chain(standard: Sequence[ChainStep], tenant: Sequence[ChainStep]) -> MergedChain:
    """Accept a tenant's chain only if it keeps every standard step in the standard's order:
    tenants may add steps, never remove or reorder the standard's. A refused chain falls back to
    the standard one, so a misconfigured tenant still gets a lawful chain."""
    position = 0
    for step in tenant:
        if position < len(standard) and _same_step(step, standard[position]):
            position += 1
    if position == len(standard):
        return MergedChain(tuple(tenant), ())
    missing = tuple(
        violation("approval.chain", step.role, role=step.role.value, kind=step.kind.value)
        for step in standard[position:]
    )
    return MergedChain(tuple(standard), missing)


def _same_step(a: ChainStep, b: ChainStep) -> bool:
    return a.role is b.role and a.kind is b.kind


def check_approval_on_site(approved_inside_zone: bool | None) -> list[RuleViolation]:
    """§4.11a: the approver signs at the work site. An approval whose position is unknown is
    flagged too, since it cannot be shown to be on site."""
    return [] if approved_inside_zone else [violation("approval.off_site")]


# --- Simultaneous work (§4.7, §7.6, §7.10) --------------------------------------------------

BLIND_PLATE_HOT_WORK_DISTANCE_M = 30.0


def distance_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Geodesic distance between two WGS-84 (lat, lon) points in metres."""
    return float(geodesic(a, b).meters)


@dataclass(frozen=True)
class PlannedWork:
    """What the conflict checks need to know of a permit."""

    number: str
    zone_id: str
    work_type: WorkType
    start: datetime
    end: datetime
    pipeline_id: str | None = None
    point: tuple[float, float] | None = None


def find_conflicts(candidate: PlannedWork, others: Iterable[PlannedWork]) -> list[RuleViolation]:
    """Flags between `candidate` and each overlapping permit in `others`; subject is the
    candidate's number and `params["other"]` the other permit's."""
    found = []
    for other in others:
        if other.number == candidate.number:
            continue
        _require_aware(candidate.start, candidate.end, other.start, other.end)
        if not (candidate.start < other.end and other.start < candidate.end):
            continue
        subject, params = candidate.number, {"other": other.number}
        if candidate.zone_id == other.zone_id:
            found.append(violation("conflict.same_zone", subject, **params))
        types = {candidate.work_type, other.work_type}
        if types == {WorkType.HOT_WORK, WorkType.BLIND_PLATE}:
            if candidate.point is None or other.point is None:
                found.append(violation("conflict.distance_unknown", subject, **params))
            elif distance_m(candidate.point, other.point) <= BLIND_PLATE_HOT_WORK_DISTANCE_M:
                limit = BLIND_PLATE_HOT_WORK_DISTANCE_M
                found.append(
                    violation("conflict.hot_work_near_blind_plate", subject, limit=limit, **params)
                )
        if (
            types == {WorkType.BLIND_PLATE}
            and candidate.pipeline_id is not None
            and candidate.pipeline_id == other.pipeline_id
        ):
            found.append(violation("conflict.same_pipeline", subject, **params))
    return found


# --- Scope of one permit (§7.11, §4.6, §11.10, §3.11) ---------------------------------------


class BlindAction(enum.StrEnum):
    INSERT = "insert"  # 堵
    REMOVE = "remove"  # 抽


def check_blind_plate_scope(
    blind_ids: Collection[str], actions: Collection[BlindAction]
) -> list[RuleViolation]:
    """§7.11: one permit, one blind, one action."""
    if len(set(blind_ids)) == 1 and len(set(actions)) == 1:
        return []
    return [violation("blind_plate.one_action")]


def check_permit_types(
    involved: Collection[WorkType], linked: Mapping[WorkType, str | None]
) -> list[RuleViolation]:
    """§4.6 for a job that involves several types of special work: each type has its own
    permit, and every permit of the job is linked by number to the others. `linked` maps each
    involved type to its permit number (None while missing)."""
    return [
        violation("permit.related_missing", work_type, work_type=work_type.value)
        for work_type in sorted(set(involved))
        if not linked.get(work_type)
    ]


EXCAVATION_MIN_DEPTH_M = 0.5
EXCAVATION_CONFINED_DEPTH_M = 1.2


def is_excavation(depth_m: float, *, machinery_grading: bool = False) -> bool:
    """§3.11: digging, piling, drilling or anchoring deeper than 0.5 m, or machinery filling or
    levelling ground that may affect buried facilities."""
    return machinery_grading or depth_m > EXCAVATION_MIN_DEPTH_M


def excavation_as_confined_space(
    depth_m: float, *, hazardous_area: bool, near_buried_hazardous_line: bool
) -> bool:
    """§11.10: in a hazardous area, deeper than 1.2 m near buried flammable or toxic lines, the
    pit is treated as a confined space (gas tests, guardian, validity and all)."""
    return hazardous_area and near_buried_hazardous_line and depth_m > EXCAVATION_CONFINED_DEPTH_M


# --- People (§4.4, §4.9, §4.10, §6.8) -------------------------------------------------------
#
# §4.9 (a valid special-operation certificate for the job) is judged by admission's
# `onboarding.qualification.worker_verdict`, which the permit gates call, so that a worker's
# standing reads the same on the company's roster and on a permit; "worker.certificate" names
# the clause the gates cite.


@dataclass(frozen=True)
class Guardian:
    """What is known of a permit's guardian. `name` is who a violation concerns (None when the
    guardian cannot be named); `on_site` is False once the guardian is known to have left;
    `outside_space` is False when the guardian is to enter the space (named in the crew)."""

    name: str | None
    certified: bool
    on_site: bool = True
    outside_space: bool = True


def check_guardian(work_type: WorkType, guardian: Guardian | None) -> list[RuleViolation]:
    """§4.10 a certified guardian present throughout the work; §6.8 the confined space guardian
    stays outside. `work_type` is the type whose rules the work follows (an excavation treated
    as a confined space, §11.10, passes CONFINED_SPACE)."""
    if guardian is None:
        return [violation("guardian.missing")]
    found = []
    if not guardian.certified:
        found.append(violation("guardian.not_certified", guardian.name))
    if not guardian.on_site:
        found.append(violation("guardian.left", guardian.name))
    if work_type is WorkType.CONFINED_SPACE and not guardian.outside_space:
        found.append(violation("guardian.inside", guardian.name))
    return found


_Member = TypeVar("_Member", bound=Hashable)


def check_briefing(
    crew: Mapping[_Member, str], signed: Collection[_Member], *, given: bool
) -> list[RuleViolation]:
    """§4.4: the briefer gives and signs the safety briefing, and every crew member signs as
    having received it. `crew` maps each member (by any key that tells two namesakes apart) to
    the name a violation shows; until the briefing is given nobody can sign, so that alone is
    said."""
    if not given:
        return [violation("briefing.given")]
    return [
        violation("briefing.unsigned", name, worker=name)
        for member, name in crew.items()
        if member not in signed
    ]


# --- Life cycle (§4.15, §4.16, §4.18, §5.2.11, B.3) -----------------------------------------


def check_video(
    work_type: WorkType, level: HotWorkLevel | None, *, filmed: bool
) -> list[RuleViolation]:
    """§5.2.11: special hot work is filmed from start to end. Asked of the plan when the permit
    is requested and of the job when it is closed."""
    if work_type is WorkType.HOT_WORK and level is HotWorkLevel.SPECIAL and not filmed:
        return [violation("closure.video")]
    return []


def check_closure(
    work_type: WorkType,
    *,
    accepted_by: str | None,
    level: HotWorkLevel | None = None,
    video_kept: bool = False,
) -> list[RuleViolation]:
    """§4.15: a permit closes on completion acceptance; §5.2.11: special hot work with its video
    kept."""
    found = []
    if accepted_by is None:
        found.append(violation("closure.acceptance"))
    found += check_video(work_type, level, filmed=video_kept)
    return found


class PermitChange(enum.StrEnum):
    """§4.16: the changes that call for a new permit instead of an edit."""

    CONTENT = "content"
    SCOPE = "scope"
    LOCATION = "location"
    VALIDITY_LAPSED = "validity_lapsed"


def check_change(changes: Collection[PermitChange], *, frozen: bool) -> list[RuleViolation]:
    """An edit of a permit. §4.18: once filled in and submitted a permit is not altered, so any
    edit of a frozen permit is refused, whatever it changes (the service keeps versions
    instead); §4.16: the changes that call for a new permit are named, so the applicant knows
    what the new version is for. A draft is still being filled in: it may change freely."""
    if not frozen:
        return []
    return [violation("permit.immutable")] + [
        violation("permit.new_required", change, change=change.value)
        for change in sorted(set(changes))
    ]


class RecordKind(enum.StrEnum):
    PERMIT = "permit"
    VIDEO = "video"


def retained_until(kind: RecordKind, closed_on: date) -> date:
    """B.3: permits are kept at least one year, job video at least one month. Month and year
    arithmetic clamps to the month's last day (29 Feb + 1 year = 28 Feb)."""
    months = 12 if kind is RecordKind.PERMIT else 1
    month_index = closed_on.month - 1 + months
    year, month = closed_on.year + month_index // 12, month_index % 12 + 1
    next_month = date(year + month // 12, month % 12 + 1, 1)
    return date(year, month, min(closed_on.day, (next_month - timedelta(days=1)).day))


def check_purge(kind: RecordKind, closed_on: date, today: date) -> list[RuleViolation]:
    until = retained_until(kind, closed_on)
    return [] if today >= until else [violation("retention.too_early", until=until.isoformat())]
