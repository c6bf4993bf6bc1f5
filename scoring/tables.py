"""The tables of the HQ pages as data: their columns and how their rows are read. The pages
render them and the exports write them, so a download holds exactly what the page shows.

Values are plain (numbers, text, dates); headers are msgids, translated where they are shown.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from infra.i18n import N_, gettext
from onboarding.catalogue import WORK_TYPE_LABELS, WorkType
from scoring import reports
from scoring.models import Grade
from tenants.models import Plant


@dataclass(frozen=True)
class Params:
    """What a table is asked for: the days ``start`` up to ``end`` (exclusive), the plants the
    reader may see (``None``: all) and the drill-down filters."""

    start: date
    end: date
    plant_ids: Collection[uuid.UUID] | None = None
    plant_id: uuid.UUID | None = None
    work_type: str | None = None
    contractor_id: uuid.UUID | None = None

    @property
    def plants(self) -> Collection[uuid.UUID] | None:
        """The plants in scope: the one drilled into, within those visible."""
        if self.plant_id is None:
            return self.plant_ids
        if self.plant_ids is not None and self.plant_id not in self.plant_ids:
            return ()
        return (self.plant_id,)


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    kind: str = "number"  # number, percent, text, date
    params: dict[str, str] = field(default_factory=dict)

    def heading(self) -> str:
        return gettext(self.label, **self.params)


@dataclass(frozen=True)
class Table:
    name: str
    title: str
    columns: tuple[Column, ...]
    rows: Callable[[Session, Params], list[dict[str, Any]]]

    def headers(self) -> list[str]:
        return [column.heading() for column in self.columns]


FIGURE_COLUMNS = (
    Column("permits", N_("Permits")),
    Column("finished", N_("Finished")),
    Column("full_loop", N_("Full loop")),
    Column("compliance_rate", N_("Compliance rate (%)"), "percent"),
    Column("approval_mean_minutes", N_("Approval time, mean (min)")),
    Column("approval_p90_minutes", N_("Approval time, p90 (min)")),
    Column("alerts", N_("Alerts")),
    Column("response_mean_minutes", N_("Alert response, mean (min)")),
    Column("violations", N_("Violations")),
    Column("work_hours", N_("Work hours")),
    Column("violations_per_1000_hours", N_("Violations per 1,000 work-hours")),
    Column("checkins", N_("Check-ins")),
    Column("phone_share", N_("Phone check-ins (%)"), "percent"),
)
GRADE_COLUMNS = tuple(
    Column(f"grade_{grade.value}", N_("Grade %(grade)s"), params={"grade": grade.value})
    for grade in Grade
)


def work_type_label(work_type: str) -> str:
    if not work_type:
        return gettext(N_("No permit"))
    return gettext(WORK_TYPE_LABELS[WorkType(work_type)])


def _plant_rows(session: Session, params: Params) -> list[dict[str, Any]]:
    return [
        {
            "plant_id": row.plant_id,
            "plant": f"{row.code} {row.name}",
            **row.figures.as_row(),
            **{f"grade_{grade}": count for grade, count in row.grades.items()},
        }
        for row in reports.compare_plants(session, params.start, params.end, params.plants)
    ]


def _work_type_rows(session: Session, params: Params) -> list[dict[str, Any]]:
    figures = reports.breakdown(
        session,
        params.start,
        params.end,
        "work_type",
        plant_ids=params.plants,
        contractor_id=params.contractor_id,
    )
    return [
        {"work_type": work_type, "work_type_label": work_type_label(work_type), **f.as_row()}
        for work_type, f in sorted(figures.items(), key=lambda item: item[0])
    ]


def _contractor_rows(session: Session, params: Params) -> list[dict[str, Any]]:
    figures = reports.breakdown(
        session,
        params.start,
        params.end,
        "contractor",
        plant_ids=params.plants,
        work_type=params.work_type,
    )
    names = reports.contractor_names(session, figures)
    grades = reports.latest_grades(session, params.end)
    rows = [
        {
            "contractor_id": contractor_id,
            "contractor": names.get(contractor_id, gettext(N_("Unknown company")))
            if contractor_id
            else gettext(N_("Unknown company")),
            "grade": grades.get(contractor_id, "") if contractor_id else "",
            **f.as_row(),
        }
        for contractor_id, f in figures.items()
    ]
    return sorted(rows, key=lambda row: row["contractor"])


def _plant_names(session: Session) -> dict[uuid.UUID, str]:
    return {
        plant_id: f"{code} {name}"
        for plant_id, code, name in session.execute(select(Plant.id, Plant.code, Plant.name))
    }


def _contractor_plant_rows(session: Session, params: Params) -> list[dict[str, Any]]:
    figures = reports.breakdown(
        session,
        params.start,
        params.end,
        "plant",
        plant_ids=params.plants,
        contractor_id=params.contractor_id,
        work_type=params.work_type,
    )
    names = _plant_names(session)
    return [
        {"plant_id": plant_id, "plant": names.get(plant_id, ""), **f.as_row()}
        for plant_id, f in sorted(figures.items(), key=lambda item: names.get(item[0], ""))
    ]


def _trend_rows(session: Session, params: Params) -> list[dict[str, Any]]:
    weeks, series = reports.weekly_trend(session, params.start, params.end, params.plants)
    names = _plant_names(session)
    return [
        {"week": week, "plant_id": plant_id, "plant": names.get(plant_id, ""), **f.as_row()}
        for plant_id, figures in sorted(series.items(), key=lambda item: names.get(item[0], ""))
        for week, f in zip(weeks, figures, strict=True)
    ]


GAP_LABELS = {
    "approved_first": N_("not approved before work started"),
    "briefing": N_("briefing signatures missing"),
    "gas": N_("gas analysis not in time"),
    "check_in": N_("no check-in"),
    "open_alert": N_("alert unresolved"),
    "accepted": N_("completion not accepted"),
    "rated": N_("not rated"),
}


def _permit_rows(session: Session, params: Params) -> list[dict[str, Any]]:
    facts = reports.permits_behind(
        session,
        params.start,
        params.end,
        plant_ids=params.plants,
        work_type=params.work_type,
        contractor_id=params.contractor_id,
    )
    names = reports.contractor_names(session, {fact.row.contractor_id for fact in facts})
    plants = _plant_names(session)
    rows = []
    for fact in facts:
        row = fact.row
        gaps = fact.gaps() if fact.finished else []
        minutes = fact.approval_minutes
        rows.append(
            {
                "permit_id": row.id,
                "plant_id": row.plant_id,
                "number": row.number or "",
                "plant": plants.get(row.plant_id, ""),
                "work_type_label": work_type_label(row.work_type),
                "contractor": names.get(row.contractor_id, ""),
                "planned_start": row.planned_start,
                "state": row.state,
                "finished": fact.finished,
                "full_loop": fact.full_loop,
                "gaps": "; ".join(gettext(GAP_LABELS[gap]) for gap in gaps),
                "approval_minutes": None if minutes is None else round(minutes, 1),
                "alerts": row.alerts,
                "violations": row.violations,
                "work_hours": round(fact.work_minutes / 60, 1),
                "checkins": row.checkins,
                "phone_checkins": row.phone_checkins,
            }
        )
    return rows


TABLES: dict[str, Table] = {
    table.name: table
    for table in (
        Table(
            "plants",
            N_("Plants compared"),
            (Column("plant", N_("Plant"), "text"), *FIGURE_COLUMNS, *GRADE_COLUMNS),
            _plant_rows,
        ),
        Table(
            "work_types",
            N_("By work type"),
            (Column("work_type_label", N_("Work type"), "text"), *FIGURE_COLUMNS),
            _work_type_rows,
        ),
        Table(
            "contractors",
            N_("By contractor"),
            (
                Column("contractor", N_("Contractor"), "text"),
                Column("grade", N_("Grade"), "text"),
                *FIGURE_COLUMNS,
            ),
            _contractor_rows,
        ),
        Table(
            "contractor_plants",
            N_("The contractor across plants"),
            (Column("plant", N_("Plant"), "text"), *FIGURE_COLUMNS),
            _contractor_plant_rows,
        ),
        Table(
            "trend",
            N_("Weekly trend"),
            (
                Column("week", N_("Week of"), "date"),
                Column("plant", N_("Plant"), "text"),
                *FIGURE_COLUMNS,
            ),
            _trend_rows,
        ),
        Table(
            "permits",
            N_("Permits behind the figures"),
            (
                Column("number", N_("Number"), "text"),
                Column("plant", N_("Plant"), "text"),
                Column("work_type_label", N_("Work type"), "text"),
                Column("contractor", N_("Contractor"), "text"),
                Column("planned_start", N_("Planned start"), "date"),
                Column("state", N_("State"), "text"),
                Column("full_loop", N_("Full loop"), "text"),
                Column("gaps", N_("Why not a full loop"), "text"),
                Column("approval_minutes", N_("Approval time (min)")),
                Column("alerts", N_("Alerts")),
                Column("violations", N_("Violations")),
                Column("work_hours", N_("Work hours")),
                Column("checkins", N_("Check-ins")),
            ),
            _permit_rows,
        ),
    )
}
