"""The HQ figures per plant computed the slow, obvious way: one aggregate query over the raw
tables, written apart from :mod:`scoring.rollups` and sharing none of its code, so the two can be
held against each other (``portal scoring verify``, the rollup tests and the HQ benchmark).

The definitions are those of :mod:`scoring.rollups`: every figure of a counted permit (neither
a draft nor superseded) counts on the plant-local day its planned window starts, in its own
plant; alerts that belong to no job and findings that belong to no permit count on their own
plant-local day. Work minutes pair each person's check-in with the next check-out (a repeated
check-in while inside, or a check-out while outside, changes nothing); a check-in never checked
out runs until the work was completed, if it was. PostgreSQL only.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import Boolean, Date, String, Uuid, bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from infra.tenancy import current_tenant_id
from permits.catalogue import GAS_ANALYSED
from permits.states import PermitState
from scoring import sketch

GAS_WINDOW_MINUTES = 30
FINISHED_STATES = (
    PermitState.CLOSED.value,
    PermitState.COMPLETED.value,
    PermitState.EXPIRED.value,
    PermitState.CANCELLED.value,
)
UNCOUNTED_STATES = (PermitState.DRAFT.value, PermitState.SUPERSEDED.value)


def _quoted(values: Collection[str]) -> str:
    return ", ".join(f"'{value}'" for value in sorted(values))


def _histogram_sql() -> str:
    return ", ".join(
        f"count(*) FILTER (WHERE approval_bucket = {index})" for index in range(sketch.BUCKETS)
    )


_EDGES = ", ".join(f"{edge:g}" for edge in sketch.EDGES)

# The plant-local calendar day of a timestamptz column, in the plant's own zone.
_LOCAL_DAY = "({column} AT TIME ZONE plant.timezone)::date"

# Only this module's constants are formatted in; every value is a bound parameter.
NAIVE_SQL = f"""
WITH plant AS (
    SELECT id, timezone FROM plants
    WHERE tenant_id = :tenant_id AND (:every_plant OR id = ANY(:plant_ids))
),
permit AS (
    SELECT p.id, p.plant_id, p.work_type, p.state, p.submitted_at, p.approved_at, p.started_at,
           coalesce(p.completed_at, p.closed_at) AS ended_at
    FROM permits p JOIN plant ON plant.id = p.plant_id
    WHERE p.tenant_id = :tenant_id
      AND p.state NOT IN ({_quoted(UNCOUNTED_STATES)})
      AND {_LOCAL_DAY.format(column="p.planned_start")} >= :start_day
      AND {_LOCAL_DAY.format(column="p.planned_start")} < :end_day
),
permit_alert AS (
    SELECT a.watch_id AS permit_id,
           count(*) AS alerts,
           count(a.response_seconds) AS responses,
           coalesce(sum(a.response_seconds), 0) / 60.0 AS response_minutes,
           count(*) FILTER (WHERE a.violation) AS violations,
           bool_or(a.state <> 'resolved') AS open_alert
    FROM geofence_alerts a JOIN permit ON permit.id = a.watch_id
    WHERE a.tenant_id = :tenant_id
    GROUP BY a.watch_id
),
permit_finding AS (
    SELECT f.permit_id, count(*) AS violations
    FROM scoring_findings f JOIN permit ON permit.id = f.permit_id
    WHERE f.tenant_id = :tenant_id
    GROUP BY f.permit_id
),
signed AS (
    SELECT DISTINCT b.permit_id, s.worker_id
    FROM briefings b
    JOIN permit ON permit.id = b.permit_id
    JOIN briefing_signatures s ON s.tenant_id = b.tenant_id AND s.briefing_id = b.id
    WHERE b.tenant_id = :tenant_id
),
crew AS (
    SELECT c.permit_id, bool_and(signed.worker_id IS NOT NULL) AS all_signed
    FROM permit_crew c
    JOIN permit ON permit.id = c.permit_id
    LEFT JOIN signed ON signed.permit_id = c.permit_id AND signed.worker_id = c.worker_id
    WHERE c.tenant_id = :tenant_id
    GROUP BY c.permit_id
),
gas AS (
    SELECT g.permit_id, max(g.sampled_at) AS last_gas_at
    FROM gas_analyses g JOIN permit ON permit.id = g.permit_id
    WHERE g.tenant_id = :tenant_id AND g.passed AND g.sampled_at <= permit.started_at
    GROUP BY g.permit_id
),
rated AS (
    SELECT DISTINCT r.permit_id
    FROM scoring_ratings r JOIN permit ON permit.id = r.permit_id
    WHERE r.tenant_id = :tenant_id
),
movement AS (
    -- Each event numbered by the check-outs before it: a stint is the check-ins after one
    -- check-out and the check-out that ends them.
    SELECT c.watch_id, c.member_id, c.direction, c.method, c.at,
           count(*) FILTER (WHERE c.direction = 'out') OVER (
               PARTITION BY c.watch_id, c.member_id ORDER BY c.at, c.direction
               ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
           ) AS stint
    FROM geofence_checkins c JOIN permit ON permit.id = c.watch_id
    WHERE c.tenant_id = :tenant_id
),
stints AS (
    SELECT watch_id, member_id, stint,
           min(at) FILTER (WHERE direction = 'in') AS since,
           min(at) FILTER (WHERE direction = 'out') AS until,
           count(*) FILTER (WHERE direction = 'in') AS checkins,
           count(*) FILTER (WHERE direction = 'in' AND method = 'gps') AS phone_checkins
    FROM movement
    GROUP BY watch_id, member_id, stint
),
presence AS (
    SELECT s.watch_id AS permit_id,
           sum(s.checkins) AS checkins,
           sum(s.phone_checkins) AS phone_checkins,
           coalesce(sum(extract(epoch FROM coalesce(
               s.until,
               CASE WHEN permit.ended_at > s.since THEN permit.ended_at END
           ) - s.since)), 0) / 60.0 AS work_minutes
    FROM stints s JOIN permit ON permit.id = s.watch_id
    GROUP BY s.watch_id
),
fact AS (
    SELECT permit.plant_id, permit.id,
           permit.approved_at IS NOT NULL
               AND permit.state IN ({_quoted(FINISHED_STATES)}) AS finished,
           permit.started_at IS NOT NULL AND permit.approved_at IS NOT NULL
               AND permit.started_at >= permit.approved_at
               AND coalesce(crew.all_signed, true)
               AND (permit.work_type NOT IN (SELECT unnest(CAST(:gas_types AS text[])))
                    OR permit.started_at - gas.last_gas_at
                       <= make_interval(mins => {GAS_WINDOW_MINUTES}))
               AND coalesce(presence.checkins, 0) > 0
               AND NOT coalesce(permit_alert.open_alert, false)
               AND permit.state = '{PermitState.CLOSED.value}'
               AND rated.permit_id IS NOT NULL AS loop_closed,
           CAST(extract(epoch FROM permit.approved_at - permit.submitted_at) / 60.0
                AS double precision) AS approval_minutes,
           coalesce(permit_alert.alerts, 0) AS alerts,
           coalesce(permit_alert.responses, 0) AS responses,
           coalesce(permit_alert.response_minutes, 0) AS response_minutes,
           coalesce(permit_alert.violations, 0) + coalesce(permit_finding.violations, 0)
               AS violations,
           coalesce(presence.work_minutes, 0) AS work_minutes,
           coalesce(presence.checkins, 0) AS checkins,
           coalesce(presence.phone_checkins, 0) AS phone_checkins
    FROM permit
    LEFT JOIN permit_alert ON permit_alert.permit_id = permit.id
    LEFT JOIN permit_finding ON permit_finding.permit_id = permit.id
    LEFT JOIN crew ON crew.permit_id = permit.id
    LEFT JOIN gas ON gas.permit_id = permit.id
    LEFT JOIN rated ON rated.permit_id = permit.id
    LEFT JOIN presence ON presence.permit_id = permit.id
),
bucketed AS (
    SELECT fact.*,
           CASE WHEN approval_minutes IS NOT NULL THEN
               width_bucket(greatest(approval_minutes, 0), ARRAY[{_EDGES}]::double precision[])
           END AS approval_bucket
    FROM fact
),
per_plant AS (
    SELECT plant_id,
           count(*) AS permits,
           count(*) FILTER (WHERE finished) AS finished,
           count(*) FILTER (WHERE finished AND loop_closed) AS full_loop,
           count(approval_minutes) AS approvals,
           coalesce(sum(approval_minutes), 0) AS approval_minutes,
           percentile_cont(0.9) WITHIN GROUP (ORDER BY approval_minutes) AS approval_p90,
           ARRAY[{_histogram_sql()}] AS approval_histogram,
           sum(alerts) AS alerts,
           sum(responses) AS responses,
           sum(response_minutes) AS response_minutes,
           sum(violations) AS violations,
           sum(work_minutes) AS work_minutes,
           sum(checkins) AS checkins,
           sum(phone_checkins) AS phone_checkins
    FROM bucketed
    GROUP BY plant_id
),
loose_alert AS (
    SELECT a.plant_id,
           count(*) AS alerts,
           count(a.response_seconds) AS responses,
           coalesce(sum(a.response_seconds), 0) / 60.0 AS response_minutes,
           count(*) FILTER (WHERE a.violation) AS violations
    FROM geofence_alerts a JOIN plant ON plant.id = a.plant_id
    WHERE a.tenant_id = :tenant_id AND a.watch_id IS NULL
      AND {_LOCAL_DAY.format(column="a.opened_at")} >= :start_day
      AND {_LOCAL_DAY.format(column="a.opened_at")} < :end_day
    GROUP BY a.plant_id
),
loose_finding AS (
    SELECT f.plant_id, count(*) AS violations
    FROM scoring_findings f JOIN plant ON plant.id = f.plant_id
    WHERE f.tenant_id = :tenant_id AND f.permit_id IS NULL
      AND {_LOCAL_DAY.format(column="f.observed_at")} >= :start_day
      AND {_LOCAL_DAY.format(column="f.observed_at")} < :end_day
    GROUP BY f.plant_id
)
SELECT plant.id AS plant_id,
       coalesce(per_plant.permits, 0) AS permits,
       coalesce(per_plant.finished, 0) AS finished,
       coalesce(per_plant.full_loop, 0) AS full_loop,
       coalesce(per_plant.approvals, 0) AS approvals,
       CAST(coalesce(per_plant.approval_minutes, 0) AS double precision) AS approval_minutes,
       per_plant.approval_p90,
       per_plant.approval_histogram,
       CAST(coalesce(per_plant.alerts, 0) + coalesce(loose_alert.alerts, 0) AS bigint) AS alerts,
       CAST(coalesce(per_plant.responses, 0) + coalesce(loose_alert.responses, 0) AS bigint)
           AS responses,
       CAST(coalesce(per_plant.response_minutes, 0) + coalesce(loose_alert.response_minutes, 0)
            AS double precision) AS response_minutes,
       CAST(coalesce(per_plant.violations, 0) + coalesce(loose_alert.violations, 0)
            + coalesce(loose_finding.violations, 0) AS bigint) AS violations,
       CAST(coalesce(per_plant.work_minutes, 0) AS double precision) AS work_minutes,
       CAST(coalesce(per_plant.checkins, 0) AS bigint) AS checkins,
       CAST(coalesce(per_plant.phone_checkins, 0) AS bigint) AS phone_checkins
FROM plant
LEFT JOIN per_plant ON per_plant.plant_id = plant.id
LEFT JOIN loose_alert ON loose_alert.plant_id = plant.id
LEFT JOIN loose_finding ON loose_finding.plant_id = plant.id
"""  # noqa: S608

_STATEMENT = text(NAIVE_SQL).bindparams(
    bindparam("tenant_id", type_=Uuid()),
    bindparam("every_plant", type_=Boolean()),
    bindparam("plant_ids", type_=ARRAY(Uuid())),
    bindparam("gas_types", type_=ARRAY(String())),
    bindparam("start_day", type_=Date()),
    bindparam("end_day", type_=Date()),
)


@dataclass
class NaiveFigures:
    """One plant's measures as the raw tables say, with the exact p90 of the approval times
    (``percentile_cont``) beside the histogram the sketch would keep of them."""

    permits: int = 0
    finished: int = 0
    full_loop: int = 0
    approvals: int = 0
    approval_minutes: float = 0.0
    approval_p90_exact: float | None = None
    approval_histogram: list[int] = field(default_factory=lambda: [0] * sketch.BUCKETS)
    alerts: int = 0
    responses: int = 0
    response_minutes: float = 0.0
    violations: int = 0
    work_minutes: float = 0.0
    checkins: int = 0
    phone_checkins: int = 0

    @property
    def approval_p90_sketch(self) -> float | None:
        return sketch.quantile(self.approval_histogram, 0.9)


COUNTS = (
    "permits",
    "finished",
    "full_loop",
    "approvals",
    "alerts",
    "responses",
    "violations",
    "checkins",
    "phone_checkins",
)
MINUTES = ("approval_minutes", "response_minutes", "work_minutes")


def naive_query_parameters(
    tenant_id: uuid.UUID,
    start: date,
    end: date,
    plant_ids: Collection[uuid.UUID] | None = None,
) -> dict[str, Any]:
    return {
        "tenant_id": tenant_id,
        "every_plant": plant_ids is None,
        "plant_ids": list(plant_ids or ()),
        "gas_types": sorted(work_type.value for work_type in GAS_ANALYSED),
        "start_day": start,
        "end_day": end,
    }


def plant_figures(
    session: Session,
    start: date,
    end: date,
    plant_ids: Collection[uuid.UUID] | None = None,
) -> dict[uuid.UUID, NaiveFigures]:
    """Each plant's figures over the plant-local days ``start`` up to ``end`` (exclusive), for
    the current tenant's plants (those given, or all)."""
    if session.get_bind().dialect.name != "postgresql":
        raise RuntimeError("the naive HQ computation runs on PostgreSQL only")
    parameters = naive_query_parameters(current_tenant_id(), start, end, plant_ids)
    figures = {}
    for row in session.execute(_STATEMENT, parameters).mappings():
        values = {name: row[name] for name in (*COUNTS, *MINUTES)}
        figures[row["plant_id"]] = NaiveFigures(
            **values,
            approval_p90_exact=row["approval_p90"],
            approval_histogram=list(row["approval_histogram"] or [0] * sketch.BUCKETS),
        )
    return figures


def differences(ours: Any, naive: NaiveFigures, *, tolerance: float = 1e-6) -> list[str]:
    """What differs between a set of rollup measures (:class:`scoring.rollups.Measures`) and
    the naive figures: counts and the histogram exactly, minutes within ``tolerance`` (relative
    to the larger value, or absolute below one minute)."""
    found = []
    for name in COUNTS:
        if getattr(ours, name) != getattr(naive, name):
            found.append(f"{name}: rollups {getattr(ours, name)} ≠ raw {getattr(naive, name)}")
    for name in MINUTES:
        mine, theirs = getattr(ours, name), getattr(naive, name)
        if not math.isclose(mine, theirs, rel_tol=tolerance, abs_tol=tolerance):
            found.append(f"{name}: rollups {mine:.6f} ≠ raw {theirs:.6f}")
    if list(ours.approval_histogram) != naive.approval_histogram:
        found.append(
            f"approval_histogram: rollups {list(ours.approval_histogram)} "
            f"≠ raw {naive.approval_histogram}"
        )
    return found
