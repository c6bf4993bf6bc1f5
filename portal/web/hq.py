"""The HQ pages of the evaluation step: the plants side by side with charts, a plant's work types
and companies, one company across the plants, the permits behind any figure, and a plant's
big-screen board for the dispatch centre.

The figures come from :mod:`scoring.tables`, the same rows the exports write, so a download holds
what the page shows; every figure cell links to the drill-down listing the permits it counts.
HQ analysts and tenant administrators see every plant; plant managers and EHS officers the
plants their grants cover; anyone else, a plant outside the reader's scope and another tenant's
ids answer 404. Periods are whole days in the group's time zone; the board shows the plant's.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from litestar import Controller, Request, get
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Template
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from geofence.alerts import KIND_LABELS as ALERT_KIND_LABELS
from geofence.models import AlertKind, AlertState
from infra import charts
from infra.db import utcnow
from infra.errors import InvalidInput
from infra.i18n import N_
from infra.i18n import gettext as _
from onboarding.models import Contractor
from permits.states import PermitState
from portal.dependencies import DbSession
from portal.guards import signed_in
from portal.web.forms import ensure_own_tenant, page_id
from portal.web.hq_params import (
    GROUP_ZONE,
    PRESETS,
    Period,
    hq_scope,
    in_scope,
    period_of,
    query_id,
    query_work_type,
    today_in_group,
)
from portal.web.permits import STATE_LABELS
from scoring import reports
from scoring.models import Grade
from scoring.rollups import plant_zones
from scoring.tables import FIGURE_COLUMNS, TABLES, Column, Params, Table, work_type_label
from tenants import services as tenants
from tenants.access import Principal
from tenants.models import Plant

# The drill-down lists this many permits on one page; the export holds them all.
PAGE_SIZE = 500
# The dispatch centre's screen reloads itself this often.
BOARD_REFRESH_SECONDS = 15
EXPORT_FORMATS = ("csv", "xlsx")
FIGURE_KEYS = frozenset(column.key for column in FIGURE_COLUMNS)
EMPTY = "—"


def _single(request: Request[Principal, Any, Any]) -> dict[str, str]:
    return {key: request.query_params.get(key, "") for key in request.query_params}


# --- tables as the pages show them --------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    text: str
    kind: str
    href: str | None = None
    key: str = ""


@dataclass(frozen=True)
class ShownTable:
    name: str
    title: str
    headers: list[str]
    kinds: list[str]
    rows: list[list[Cell]]
    exports: dict[str, str]


class Links:
    """The addresses of one tenant's HQ pages, carrying the page's period."""

    def __init__(self, slug: str, period: Period) -> None:
        self.slug = slug
        self.period = period

    def _url(self, path: str, **params: object) -> str:
        given = {k: str(v) for k, v in params.items() if v is not None}
        # Days of their own (a trend week) replace the page's period.
        query = given if "from" in given else {**self.period.query(), **given}
        return f"/t/{self.slug}{path}?{urlencode(query)}"

    def compare(self) -> str:
        return self._url("/hq")

    def plant(self, plant_id: uuid.UUID) -> str:
        return self._url(f"/hq/plants/{plant_id}")

    def contractor(self, contractor_id: uuid.UUID) -> str:
        return self._url(f"/hq/contractors/{contractor_id}")

    def permits(self, **filters: object) -> str:
        return self._url("/hq/permits", **filters)

    def permit(self, permit_id: uuid.UUID) -> str:
        return f"/t/{self.slug}/permits/{permit_id}"

    def board(self, plant_id: uuid.UUID) -> str:
        return f"/t/{self.slug}/board/{plant_id}"

    def exports(self, table: str, filters: Mapping[str, object]) -> dict[str, str]:
        return {
            fmt: self._url("/hq/export", table=table, format=fmt, **filters)
            for fmt in EXPORT_FORMATS
        }


def _text(column: Column, value: Any, zone: ZoneInfo) -> str:
    if value is None or value == "":
        return EMPTY
    if isinstance(value, bool):
        return _("Yes") if value else _("No")
    if isinstance(value, datetime):
        return value.astimezone(zone).strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    if column.key == "state":
        return _(STATE_LABELS.get(PermitState(value), value))
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


Link = Callable[[dict[str, Any]], str | None]


def shown(
    table: Table,
    rows: Sequence[dict[str, Any]],
    links: Links,
    filters: Mapping[str, object],
    *,
    label: Link | None = None,
    figures: Link | None = None,
    zones: Mapping[uuid.UUID, ZoneInfo] | None = None,
) -> ShownTable:
    """A table of :mod:`scoring.tables` as cells: the first column links by ``label``, each
    figure by ``figures`` (the permits behind it)."""
    body = []
    for row in rows:
        zone = (zones or {}).get(row.get("plant_id"), GROUP_ZONE)
        cells = []
        for position, column in enumerate(table.columns):
            link = label if position == 0 else figures if column.key in FIGURE_KEYS else None
            cells.append(
                Cell(
                    _text(column, row.get(column.key), zone),
                    column.kind,
                    link(row) if link else None,
                    column.key,
                )
            )
        body.append(cells)
    return ShownTable(
        table.name,
        _(table.title),
        table.headers(),
        [column.kind for column in table.columns],
        body,
        links.exports(table.name, filters),
    )


def _of_type(links: Links, row: dict[str, Any], **filters: object) -> str | None:
    """The permits of a work type's row; the row of alerts and findings that belong to no
    permit has none behind it."""
    if not row["work_type"]:
        return None
    return links.permits(work_type=row["work_type"], **filters)


def _rows(name: str, session: Session, params: Params) -> list[dict[str, Any]]:
    return TABLES[name].rows(session, params)


# --- charts -----------------------------------------------------------------------------


def _values(rows: Sequence[dict[str, Any]], key: str) -> list[float | None]:
    return [row[key] for row in rows]


def compare_charts(
    plants: Sequence[dict[str, Any]], trend: Sequence[dict[str, Any]]
) -> dict[str, Markup]:
    names = [row["plant"] for row in plants]
    weeks = sorted({row["week"] for row in trend})
    week_labels = [week.strftime("%m-%d") for week in weeks]
    by_plant: dict[Any, dict[date, float | None]] = {}
    for row in trend:
        by_plant.setdefault(row["plant_id"], {})[row["week"]] = row["compliance_rate"]
    return {
        "compliance": charts.bar_chart(
            names,
            [charts.Series(_("Compliance rate"), _values(plants, "compliance_rate"))],
            title=_("Compliance rate per plant"),
            unit="%",
            empty_text=_("No finished permits in this period."),
        ),
        "approval": charts.bar_chart(
            names,
            [
                charts.Series(_("Mean"), _values(plants, "approval_mean_minutes")),
                charts.Series(_("p90"), _values(plants, "approval_p90_minutes")),
            ],
            title=_("Approval time per plant"),
            unit=_("min"),
            empty_text=_("No approvals in this period."),
        ),
        "trend": charts.line_chart(
            week_labels,
            [
                charts.Series(
                    row["plant"], [by_plant.get(row["plant_id"], {}).get(w) for w in weeks]
                )
                for row in plants
            ],
            title=_("Compliance rate by week"),
            unit="%",
            y_max=100.0,
            empty_text=_("No finished permits in this period."),
        ),
        "grades": charts.stacked_bar_chart(
            names,
            [
                charts.Series(
                    _("Grade %(grade)s", grade=grade.value),
                    [float(row[f"grade_{grade.value}"]) for row in plants],
                )
                for grade in Grade
            ],
            title=_("Contractor grades per plant"),
            colors=charts.GRADE_COLORS,
            empty_text=_("No reviewed contractors worked here in this period."),
        ),
    }


def trend_chart(trend: Sequence[dict[str, Any]], title: str) -> Markup:
    weeks = [row["week"].strftime("%m-%d") for row in trend]
    return charts.line_chart(
        weeks,
        [
            charts.Series(_("Compliance rate"), _values(trend, "compliance_rate")),
            charts.Series(_("Phone check-ins"), _values(trend, "phone_share")),
        ],
        title=title,
        unit="%",
        y_max=100.0,
        empty_text=_("No permits in this period."),
    )


# --- the pages -------------------------------------------------------------------------------


@dataclass(frozen=True)
class HqView:
    """What every HQ page starts from: the reader's scope, the period and the links."""

    scope: frozenset[uuid.UUID] | None
    period: Period
    links: Links
    query: dict[str, str]

    def params(self, **filters: Any) -> Params:
        return Params(self.period.start, self.period.end, self.scope, **filters)

    def context(self, **values: Any) -> dict[str, Any]:
        return {
            "tenant_slug": self.links.slug,
            "period": self.period,
            "presets": PRESETS,
            "links": self.links,
            **values,
        }


def _start(request: Request[Principal, Any, Any], slug: str) -> HqView:
    ensure_own_tenant(request.user, slug)
    scope = hq_scope(request.user)
    query = _single(request)
    period = period_of(query, today_in_group())
    return HqView(scope, period, Links(slug, period), query)


async def _visible_plant(session: AsyncSession, page: HqView, plant_id: uuid.UUID) -> Plant:
    if not in_scope(page.scope, plant_id):
        raise NotFoundException()
    return await tenants.get_plant(session, plant_id)


class HqPages(Controller):
    include_in_schema = False
    guards = [signed_in]  # noqa: RUF012

    @get("/t/{slug:str}/hq")
    async def compare(
        self, request: Request[Principal, Any, Any], db_session: DbSession, slug: FromPath[str]
    ) -> Template:
        page = _start(request, slug)
        params = page.params()

        def read(session: Session) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
            return _rows("plants", session, params), _rows("trend", session, params)

        plants, trend = await db_session.run_sync(read)
        links = page.links
        filters: dict[str, object] = {}
        tables = [
            shown(
                TABLES["plants"],
                plants,
                links,
                filters,
                label=lambda row: links.plant(row["plant_id"]),
                figures=lambda row: links.permits(plant_id=row["plant_id"]),
            ),
            shown(
                TABLES["trend"],
                trend,
                links,
                filters,
                label=lambda row: links.plant(row["plant_id"]),
                figures=lambda row: links.permits(
                    plant_id=row["plant_id"],
                    **_week_days(row["week"], page.period),
                ),
            ),
        ]
        return Template(
            "hq/compare.html",
            context=page.context(
                tables=tables,
                charts=compare_charts(plants, trend),
                boards=[(row["plant"], links.board(row["plant_id"])) for row in plants],
                action=f"/t/{slug}/hq",
            ),
        )

    @get("/t/{slug:str}/hq/plants/{plant_id:str}")
    async def plant(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        slug: FromPath[str],
        plant_id: FromPath[str],
    ) -> Template:
        page = _start(request, slug)
        plant = await _visible_plant(db_session, page, page_id(plant_id))
        params = page.params(plant_id=plant.id)

        def read(session: Session) -> dict[str, list[dict[str, Any]]]:
            return {
                name: _rows(name, session, params)
                for name in ("plants", "work_types", "contractors", "trend")
            }

        rows = await db_session.run_sync(read)
        links = page.links
        filters = {"plant_id": plant.id}
        tables = [
            shown(
                TABLES["work_types"],
                rows["work_types"],
                links,
                filters,
                label=lambda row: _of_type(links, row, plant_id=plant.id),
                figures=lambda row: _of_type(links, row, plant_id=plant.id),
            ),
            shown(
                TABLES["contractors"],
                rows["contractors"],
                links,
                filters,
                label=lambda row: (
                    links.contractor(row["contractor_id"]) if row["contractor_id"] else None
                ),
                figures=lambda row: (
                    links.permits(plant_id=plant.id, contractor_id=row["contractor_id"])
                    if row["contractor_id"]
                    else None
                ),
            ),
        ]
        summary = shown(
            TABLES["plants"],
            rows["plants"],
            links,
            filters,
            figures=lambda _row: links.permits(plant_id=plant.id),
        )
        return Template(
            "hq/plant.html",
            context=page.context(
                plant=plant,
                summary=summary,
                tables=tables,
                trend=trend_chart(rows["trend"], _("%(plant)s by week", plant=plant.name)),
                action=f"/t/{slug}/hq/plants/{plant.id}",
            ),
        )

    @get("/t/{slug:str}/hq/contractors/{contractor_id:str}")
    async def contractor(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        slug: FromPath[str],
        contractor_id: FromPath[str],
    ) -> Template:
        page = _start(request, slug)
        company = await db_session.scalar(
            select(Contractor).where(Contractor.id == page_id(contractor_id))
        )
        if company is None:
            raise NotFoundException()
        params = page.params(contractor_id=company.id)

        def read(session: Session) -> tuple[list[dict[str, Any]], list[dict[str, Any]], str]:
            grade = reports.latest_grades(session, params.end).get(company.id, "")
            return (
                _rows("contractor_plants", session, params),
                _rows("work_types", session, params),
                grade,
            )

        by_plant, by_type, grade = await db_session.run_sync(read)
        links = page.links
        filters = {"contractor_id": company.id}
        tables = [
            shown(
                TABLES["contractor_plants"],
                by_plant,
                links,
                filters,
                label=lambda row: links.plant(row["plant_id"]),
                figures=lambda row: links.permits(
                    plant_id=row["plant_id"], contractor_id=company.id
                ),
            ),
            shown(
                TABLES["work_types"],
                by_type,
                links,
                filters,
                label=lambda row: _of_type(links, row, contractor_id=company.id),
                figures=lambda row: _of_type(links, row, contractor_id=company.id),
            ),
        ]
        chart = charts.bar_chart(
            [row["plant"] for row in by_plant],
            [charts.Series(_("Compliance rate"), _values(by_plant, "compliance_rate"))],
            title=_("Compliance rate per plant"),
            unit="%",
            empty_text=_("No finished permits in this period."),
        )
        return Template(
            "hq/contractor.html",
            context=page.context(
                company=company,
                grade=grade,
                tables=tables,
                chart=chart,
                action=f"/t/{slug}/hq/contractors/{company.id}",
            ),
        )

    @get("/t/{slug:str}/hq/permits")
    async def permits(
        self, request: Request[Principal, Any, Any], db_session: DbSession, slug: FromPath[str]
    ) -> Template:
        page = _start(request, slug)
        plant_id = query_id(page.query, "plant_id")
        contractor_id = query_id(page.query, "contractor_id")
        work_type = query_work_type(page.query)
        plant = await _visible_plant(db_session, page, plant_id) if plant_id else None
        company = (
            await db_session.scalar(select(Contractor).where(Contractor.id == contractor_id))
            if contractor_id
            else None
        )
        if contractor_id and company is None:
            raise NotFoundException()
        params = page.params(plant_id=plant_id, work_type=work_type, contractor_id=contractor_id)

        def read(session: Session) -> tuple[list[dict[str, Any]], dict[uuid.UUID, ZoneInfo]]:
            return _rows("permits", session, params), plant_zones(session)

        rows, zones = await db_session.run_sync(read)
        links = page.links
        filters = {"plant_id": plant_id, "work_type": work_type, "contractor_id": contractor_id}
        try:
            offset = max(0, int(page.query.get("offset") or 0))
        except ValueError as exc:
            raise InvalidInput("offset", "type", N_("Must be a whole number.")) from exc
        table = shown(
            TABLES["permits"],
            rows[offset : offset + PAGE_SIZE],
            links,
            filters,
            label=lambda row: links.permit(row["permit_id"]),
            zones=zones,
        )
        counts = {
            "permits": len(rows),
            "finished": sum(1 for row in rows if row["finished"]),
            "full_loop": sum(1 for row in rows if row["full_loop"]),
        }
        finished = [row["finished"] for row in rows[offset : offset + PAGE_SIZE]]
        more = offset + PAGE_SIZE < len(rows)
        return Template(
            "hq/permits.html",
            context=page.context(
                table=table,
                finished=finished,
                counts=counts,
                rate=None
                if not counts["finished"]
                else 100.0 * counts["full_loop"] / counts["finished"],
                plant=plant,
                company=company,
                work_type=None if work_type is None else work_type_label(work_type),
                next_page=links.permits(**filters, offset=offset + PAGE_SIZE) if more else None,
                offset=offset,
                action=f"/t/{slug}/hq/permits",
                filters={k: v for k, v in filters.items() if v is not None},
            ),
        )

    @get("/t/{slug:str}/board/{plant_id:str}")
    async def board(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        slug: FromPath[str],
        plant_id: FromPath[str],
    ) -> Template:
        ensure_own_tenant(request.user, slug)
        scope = hq_scope(request.user)
        if not in_scope(scope, page_id(plant_id)):
            raise NotFoundException()
        plant = await tenants.get_plant(db_session, page_id(plant_id))
        now = utcnow()
        board = await db_session.run_sync(
            lambda session: reports.plant_board(session, plant.id, now)
        )
        zone = ZoneInfo(plant.timezone)
        return Template(
            "hq/board.html",
            context={
                "tenant_slug": slug,
                "plant": plant,
                "board": board,
                "now": now.astimezone(zone),
                "zone": zone,
                "refresh_seconds": BOARD_REFRESH_SECONDS,
                "by_state": [
                    (_(STATE_LABELS[PermitState(state)]), count)
                    for state, count in sorted(board.permits_by_state.items())
                ],
                "by_type": [
                    (work_type_label(work_type), count)
                    for work_type, count in sorted(board.permits_by_type.items())
                ],
                "total": sum(board.permits_by_state.values()),
                "alerts": [
                    {
                        "kind": _(ALERT_KIND_LABELS[AlertKind(alert.kind)]),
                        "person": alert.person or "",
                        "opened_at": alert.opened_at.astimezone(zone),
                        "acknowledged": alert.state != AlertState.OPEN.value,
                    }
                    for alert in board.open_alerts
                ],
                "overtime": [
                    {
                        "number": permit.number or "",
                        "href": f"/t/{slug}/permits/{permit.id}",
                        "work_type": work_type_label(permit.work_type),
                        "location": permit.location,
                        "planned_end": permit.planned_end.astimezone(zone),
                        "minutes": int((now - permit.planned_end).total_seconds() // 60),
                    }
                    for permit in board.overtime
                ],
            },
            headers={"Cache-Control": "no-store"},
        )


def _week_days(week: date, period: Period) -> dict[str, str]:
    """The days of a trend week within the period, so the drill-down lists what the week's
    figure counts."""
    return {
        "from": max(week, period.start).isoformat(),
        "to": min(week + timedelta(days=6), period.last).isoformat(),
    }
