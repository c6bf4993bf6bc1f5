"""What the permit forms of GB 30871-2022 Appendix A ask by name: the number prefixes, the level
labels, and each type's control-measure checklist (安全措施). Labels are English msgids,
translated where they are shown; codes are what is stored.

Every checklist item must be answered (applies or not) before a permit is submitted; an item
that applies must be confirmed, by whom and when, before work starts.
"""

from __future__ import annotations

from types import MappingProxyType

from infra.i18n import N_
from onboarding.catalogue import WorkType
from permits.rules import HeightGrade, HotWorkLevel, LiftingLevel

# The pinyin initials Chinese plants print on permits: 动火 DH, 受限空间 SX, 盲板抽堵 MB, 高处 GC,
# 吊装 DZ, 临时用电 LD, 动土 DT, 断路 DL.
NUMBER_PREFIX = MappingProxyType(
    {
        WorkType.HOT_WORK: "DH",
        WorkType.CONFINED_SPACE: "SX",
        WorkType.BLIND_PLATE: "MB",
        WorkType.HEIGHT: "GC",
        WorkType.LIFTING: "DZ",
        WorkType.TEMP_POWER: "LD",
        WorkType.EXCAVATION: "DT",
        WorkType.ROAD_CLOSURE: "DL",
    }
)

# Level values repeat across types (hot work and lifting both have "level1"), so labels are
# keyed by the type too.
HOT_WORK_LEVEL_LABELS = MappingProxyType(
    {
        HotWorkLevel.SPECIAL.value: N_("Special level"),
        HotWorkLevel.LEVEL1.value: N_("Level 1"),
        HotWorkLevel.LEVEL2.value: N_("Level 2"),
    }
)
LEVEL_LABELS = MappingProxyType(
    {
        WorkType.HOT_WORK: HOT_WORK_LEVEL_LABELS,
        WorkType.HEIGHT: MappingProxyType(
            {
                HeightGrade.I.value: N_("Grade I"),
                HeightGrade.II.value: N_("Grade II"),
                HeightGrade.III.value: N_("Grade III"),
                HeightGrade.IV.value: N_("Grade IV"),
            }
        ),
        WorkType.LIFTING: MappingProxyType(
            {
                LiftingLevel.LEVEL1.value: N_("Lifting level 1"),
                LiftingLevel.LEVEL2.value: N_("Lifting level 2"),
                LiftingLevel.LEVEL3.value: N_("Lifting level 3"),
            }
        ),
    }
)


def level_label(work_type: str, level: str | None) -> str:
    """The msgid naming a permit's level, or "" for a type without levels."""
    if not level:
        return ""
    return LEVEL_LABELS.get(WorkType(work_type), {}).get(level, level)


# The types whose work starts only after a gas analysis (§5.3, §6.3).
GAS_ANALYSED = frozenset({WorkType.HOT_WORK, WorkType.CONFINED_SPACE})

# Special hot work keeps video of the whole job (§5.2.11): this measure must apply at that level.
VIDEO_MEASURE = "video"

_COMMON = (
    ("briefing", N_("Safety briefing given to the crew and site walked together (§4.4)")),
    ("ppe", N_("Personal protective equipment suited to the work is worn")),
    ("guardian_present", N_("The guardian is on site and knows the emergency measures (§4.10)")),
)

CHECKLISTS = MappingProxyType(
    {
        WorkType.HOT_WORK: (
            *_COMMON,
            ("isolated", N_("Equipment and lines cut off, blinded and purged; drains sealed")),
            ("combustibles", N_("Combustibles within 15 m removed or covered")),
            ("extinguishers", N_("Fire extinguishers and fire blanket at hand")),
            ("gas_tested", N_("Gas analysed within 30 minutes before fire (§5.3.1)")),
            (
                VIDEO_MEASURE,
                N_("Explosion-proof camera films the whole job (special level, §5.2.11)"),
            ),
            (
                "welding_gear",
                N_("Welding machine, cylinders and hoses checked; cylinders 5 m apart"),
            ),
        ),
        WorkType.CONFINED_SPACE: (
            *_COMMON,
            (
                "isolated",
                N_("Connected lines blinded or disconnected; drives locked out and tagged"),
            ),
            ("ventilated", N_("Ventilated; no pure oxygen used for ventilation")),
            ("gas_tested", N_("Atmosphere tested within 30 minutes before entry (§6.3)")),
            ("rescue", N_("Rescue equipment and breathing apparatus at the entrance")),
            ("entry_log", N_("People and tools logged in and out at the entrance (§6.8)")),
        ),
        WorkType.BLIND_PLATE: (
            *_COMMON,
            ("depressurised", N_("Line depressurised, drained and cooled to a safe temperature")),
            ("blind_spec", N_("Blind plate and gaskets match the line's pressure and medium")),
            ("marked", N_("Blind position marked on the drawing and tagged on site")),
            ("no_hot_work_nearby", N_("No hot work within 30 m while the line is opened (§7.6)")),
        ),
        WorkType.HEIGHT: (
            *_COMMON,
            ("harness", N_("Full-body harness worn and anchored above the worker")),
            ("platform", N_("Scaffold or platform inspected and tagged as safe")),
            ("edges", N_("Edges guarded; area below cordoned off")),
            ("weather", N_("Wind below force 5 and no dense fog (§8.2.6)")),
        ),
        WorkType.LIFTING: (
            *_COMMON,
            ("plan", N_("Lifting plan approved; load, radius and capacity checked")),
            ("rigging", N_("Slings, shackles and hooks inspected")),
            ("area", N_("Lifting area cordoned off; nobody under the load")),
            ("signals", N_("Signaller appointed; signals agreed with the operator")),
        ),
        WorkType.TEMP_POWER: (
            *_COMMON,
            ("rcd", N_("Residual-current device fitted and tested")),
            ("cables", N_("Cables intact, routed or buried away from traffic")),
            ("explosion_proof", N_("Explosion-proof equipment in hazardous areas")),
            ("connection", N_("Connection and disconnection by a certified electrician")),
        ),
        WorkType.EXCAVATION: (
            *_COMMON,
            ("buried", N_("Buried cables and pipes located and marked (§4.4)")),
            ("shoring", N_("Sides sloped or shored; spoil kept 1 m from the edge")),
            ("barriers", N_("Barriers and warning lights around the pit")),
            ("access", N_("Ladders for getting in and out")),
        ),
        WorkType.ROAD_CLOSURE: (
            *_COMMON,
            ("buried", N_("Buried facilities under the road located (§4.4)")),
            ("signs", N_("Closure signs and barriers at both ends; lights at night")),
            ("fire_access", N_("Fire brigade informed; a fire access route kept open")),
            ("traffic_plan", N_("Traffic diversion plan in force")),
        ),
    }
)


def checklist_codes(work_type: WorkType) -> tuple[str, ...]:
    return tuple(code for code, _ in CHECKLISTS[work_type])


def checklist_label(work_type: WorkType, code: str) -> str:
    return dict(CHECKLISTS[work_type])[code]
