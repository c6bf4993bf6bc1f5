"""A permit's timeline on site (作业轨迹): what happened while the work ran — check-ins and
check-outs with their method, the alerts the engine raised with their handling, and the permit's
changes (started, suspended, resumed, completed, accepted) — in time order on the plant's clock,
the people with their last state, and their tracks on a map.

The data is ``geofence.live.timeline``'s, as the API serves it. One correction: the ledger dates
an entry when it was written, while the permit keeps when the work started, was reported done
and was accepted; those are the times shown, so work recorded after the fact (a form filled in
late, the demo's seeded morning) still lands where it happened.

Who may open it is who may watch the plant (:data:`portal.api.geofence.WATCHERS`); a contractor,
a host of another plant, a permit of another tenant or one never started all answer 404.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from litestar import Controller, Request, get
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Template
from sqlalchemy import select

from geofence import live
from geofence.models import AlertState
from infra.errors import NotFound
from infra.i18n import N_
from onboarding.catalogue import WORK_TYPE_LABELS, WorkType
from permits.models import Permit
from portal.api.geofence import WATCHERS
from portal.dependencies import AppSettings, DbSession
from portal.guards import ensure_plant_in_scope, signed_in
from portal.web.forms import ensure_own_tenant, page_id
from portal.web.maps import map_settings
from portal.web.permits import STATE_LABELS
from tenants import services as tenants
from tenants.access import Principal, has_role_for_plant

# The permit's changes the timeline shows; the application and its approval are on the permit
# page.
PERMIT_EVENTS = {
    "permit.start": N_("Work started"),
    "permit.suspend": N_("Work suspended"),
    "permit.resume": N_("Work resumed"),
    "permit.complete": N_("Work reported completed"),
    "permit.accept": N_("Completion accepted"),
    "permit.expire": N_("Permit expired"),
    "permit.supersede": N_("Replaced by a new version"),
}
# When the permit itself keeps the moment of a change, that is when it happened.
_PERMIT_TIMES = {
    "permit.start": "started_at",
    "permit.complete": "completed_at",
    "permit.accept": "closed_at",
}
CHECK_LABELS = {"check_in": N_("Checked in"), "check_out": N_("Checked out")}
METHOD_LABELS = {"gps": N_("by GPS position"), "qr": N_("by the permit's QR code")}
ALERT_STATE_LABELS = {
    AlertState.OPEN.value: N_("Not handled"),
    AlertState.ACKNOWLEDGED.value: N_("Acknowledged"),
    AlertState.RESOLVED.value: N_("Resolved"),
}
ROLE_LABELS = {"crew": N_("Crew"), "guardian": N_("Guardian")}
PRESENCE_LABELS = {
    "inside": N_("Inside the work zone"),
    "outside": N_("Outside the work zone"),
    "unknown": N_("Position not yet evaluated"),
    "not_checked_in": N_("Not checked in"),
}


def _instant(value: str | datetime, zone: ZoneInfo) -> datetime:
    return (datetime.fromisoformat(value) if isinstance(value, str) else value).astimezone(zone)


def _events(data: dict[str, Any], permit: Permit, zone: ZoneInfo) -> list[dict[str, Any]]:
    events = []
    for event in data["events"]:
        kind = event["kind"]
        at = _instant(event["at"], zone)
        if kind == "permit":
            action = event["action"]
            if action not in PERMIT_EVENTS:
                continue
            kept = getattr(permit, _PERMIT_TIMES.get(action, ""), None)
            if kept is not None:
                at = _instant(kept, zone)
            events.append({"at": at, "kind": kind, "action": action})
        elif kind == "alert":
            alert = event["alert"]
            events.append(
                {
                    "at": at,
                    "kind": kind,
                    "alert": alert,
                    "state_label": ALERT_STATE_LABELS.get(alert["state"], alert["state"]),
                }
            )
        else:
            events.append({**event, "at": at})
    # Stable, so a check-in and the alert it caused keep the order the engine saw them in.
    events.sort(key=lambda item: item["at"])
    return events


def _presence(person: dict[str, Any]) -> str:
    if not person["checked_in"]:
        return "not_checked_in"
    return {True: "inside", False: "outside"}.get(person["inside"], "unknown")


def _tracks(data: dict[str, Any]) -> list[dict[str, Any]]:
    tracks: dict[str, list[list[float]]] = {}
    for ping in data["pings"]:
        tracks.setdefault(ping["person"] or "", []).append([ping["latitude"], ping["longitude"]])
    return [{"person": person, "points": points} for person, points in tracks.items()]


class TimelinePages(Controller):
    include_in_schema = False
    guards = [signed_in]  # noqa: RUF012

    @get("/t/{slug:str}/permits/{permit_id:str}/timeline")
    async def timeline(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        settings: AppSettings,
        slug: FromPath[str],
        permit_id: FromPath[str],
    ) -> Template:
        principal = request.user
        ensure_own_tenant(principal, slug)
        permit = await db_session.scalar(select(Permit).where(Permit.id == page_id(permit_id)))
        if permit is None or not has_role_for_plant(principal, WATCHERS, permit.plant_id):
            raise NotFoundException()
        ensure_plant_in_scope(principal, permit.plant_id)
        try:
            data = await live.timeline(db_session, permit.id)
        except NotFound:
            # Never started: nobody was ever watched on it.
            raise NotFoundException() from None
        plant = await tenants.get_plant(db_session, permit.plant_id)
        zone = ZoneInfo(plant.timezone)
        people = [
            {
                **person,
                "presence": _presence(person),
                "last_seen": _instant(person["last_seen_at"], zone)
                if person["last_seen_at"]
                else None,
            }
            for person in data["watch"]["people"]
        ]
        alerts = [event["alert"] for event in data["events"] if event["kind"] == "alert"]
        return Template(
            "geofence/timeline.html",
            context={
                "tenant_slug": slug,
                "permit": permit,
                "plant": plant,
                "zone": data["zone"],
                "timezone": plant.timezone,
                "work_type_label": WORK_TYPE_LABELS[WorkType(permit.work_type)],
                "state_labels": STATE_LABELS,
                "events": _events(data, permit, zone),
                "people": people,
                "permit_labels": PERMIT_EVENTS,
                "check_labels": CHECK_LABELS,
                "method_labels": METHOD_LABELS,
                "role_labels": ROLE_LABELS,
                "presence_labels": PRESENCE_LABELS,
                "map": map_settings(settings, plant),
                "map_data": {
                    "zone": data["zone"],
                    "tracks": _tracks(data),
                    "alerts": [
                        {
                            "kind": alert["kind"],
                            "latitude": alert["latitude"],
                            "longitude": alert["longitude"],
                            "label": f"{alert['kind_label']} · {alert['person'] or ''}",
                        }
                        for alert in alerts
                        if alert["latitude"] is not None and alert["longitude"] is not None
                    ],
                },
                "ping_count": len(data["pings"]),
            },
        )
