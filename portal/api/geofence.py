"""Geofence supervision over the API: phones posting positions and checking in, the live plant
picture, a job's timeline, alert handling and the tenant's alert thresholds.

Handlers parse, call ``geofence.tracking``, ``geofence.alerts`` and ``geofence.live`` and shape
the answer. Everything a phone does on site (pings, check-in and out) and everything that
handles an alert keeps working while the tenant is read-only for billing: safety never stops
for billing.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, post, put
from litestar.params import JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK

from geofence import alerts, live, tracking
from geofence.schemas import AlertNoteIn, CheckInIn, IngestReport, PingBatchIn, PolicyIn
from infra.db import utcnow
from portal.dependencies import AppSettings, DbSession
from portal.guards import BILLING_EXEMPT, ensure_plant_in_scope, requires_roles, signed_in
from portal.params import IdParam, parse_id
from tenants import services as tenant_services
from tenants.access import Principal
from tenants.models import Role

WATCHERS = (
    Role.EHS_OFFICER,
    Role.PLANT_MANAGER,
    Role.UNIT_SUPERVISOR,
    Role.TENANT_ADMIN,
    Role.HQ_ANALYST,
)
ALERT_HANDLERS = (Role.EHS_OFFICER, Role.PLANT_MANAGER)
_watchers = requires_roles(*WATCHERS)
_alert_handlers = requires_roles(*ALERT_HANDLERS)
_policy_editors = requires_roles(Role.TENANT_ADMIN, Role.EHS_OFFICER)
_ON_SITE = {BILLING_EXEMPT: True}
_KEEPS_WORKING = " Keeps working while the tenant is read-only for billing (safety on site)."

AlertPlantQuery = Annotated[
    str, QueryParameter(name="plant_id", description="The plant whose alerts", max_length=64)
]
UnresolvedQuery = Annotated[
    bool, QueryParameter(name="unresolved", description="Only open and acknowledged alerts")
]


class MyWatchRead(msgspec.Struct, kw_only=True):
    watch_id: str
    label: str
    zone_id: str
    zone_name: str
    zone_kind: str
    geometry: dict[str, Any]
    radius_m: float | None
    buffer_m: float
    starts_at: str
    ends_at: str
    state: str
    role: str
    checked_in_at: str | None
    checked_out_at: str | None
    inside: bool | None
    last_seen_at: str | None


class MemberRead(msgspec.Struct, kw_only=True):
    watch_id: str
    user_id: str
    role: str
    checked_in_at: str | None
    checked_out_at: str | None
    inside: bool | None


def my_watch_read(watch: tracking.MyWatch) -> MyWatchRead:
    values = {
        name: getattr(watch, name)
        for name in MyWatchRead.__struct_fields__
        if name not in ("watch_id", "zone_id")
    }
    for name in ("starts_at", "ends_at", "checked_in_at", "checked_out_at", "last_seen_at"):
        values[name] = values[name].isoformat() if values[name] else None
    return MyWatchRead(watch_id=str(watch.watch_id), zone_id=str(watch.zone_id), **values)


def member_read(member: Any) -> MemberRead:
    return MemberRead(
        watch_id=str(member.watch_id),
        user_id=str(member.user_id),
        role=member.role,
        checked_in_at=member.checked_in_at.isoformat() if member.checked_in_at else None,
        checked_out_at=member.checked_out_at.isoformat() if member.checked_out_at else None,
        inside=member.inside,
    )


class TrackingController(Controller):
    path = "/api/v1"
    tags = ["geofence"]  # noqa: RUF012
    guards = [signed_in]  # noqa: RUF012

    @post(
        "/pings",
        summary="Send a batch of positions",
        description="Up to 1,000 pings from the caller's phone, each with the id the phone made "
        "for it, its device time (with offset), WGS-84 position and accuracy. Each ping is "
        "checked on its own: ranges, a device time neither in the future beyond a small skew "
        "nor older than the offline window, a permit the caller is on. Bad pings come back in "
        "`rejected` with the field and rule; good ones are stored once — a batch sent again "
        "(or overlapping an earlier one, in any order) counts its pings as `duplicates`. The "
        "answer is sent only after the pings are stored: an acknowledged ping is never lost. A "
        "batch over the limit answers 422 `max_items` and stores nothing." + _KEEPS_WORKING,
        status_code=HTTP_200_OK,
        opt=_ON_SITE,
    )
    async def post_pings(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        settings: AppSettings,
        data: JSONBody[PingBatchIn],
    ) -> IngestReport:
        return await tracking.ingest(db_session, settings, request.user.user_id, data.pings)

    @get(
        "/me/watches",
        summary="The caller's jobs on site",
        description="Permits the caller works on (crew, work leader or guardian) that are "
        "running or paused, or ended while the caller is still checked in: the zone, the "
        "window, check-in state and the engine's last inside/outside verdict.",
    )
    async def my_watches(
        self, request: Request[Principal, Any, Any], db_session: DbSession
    ) -> list[MyWatchRead]:
        watches = await tracking.my_watches(db_session, request.user.user_id, utcnow())
        return [my_watch_read(watch) for watch in watches]

    @post(
        "/watches/{watch_id:str}/check-in",
        summary="Check in on site",
        description="By GPS (`method: gps`, a fix inside the permit's zone, accuracy at most "
        "100 m) or by the permit's QR code scanned on site (`method: qr`, the scanned link or "
        "token). A permit the caller is not on answers 404; work not running, 409 `active`; "
        "a position outside the zone, 409 `inside_zone`; another permit's code, 422 "
        "`permit`." + _KEEPS_WORKING,
        status_code=HTTP_200_OK,
        opt=_ON_SITE,
    )
    async def check_in(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        settings: AppSettings,
        watch_id: IdParam,
        data: JSONBody[CheckInIn],
    ) -> MemberRead:
        member = await tracking.check_in(
            db_session,
            settings,
            request.user.user_id,
            parse_id(watch_id, "watch_id"),
            data,
            utcnow(),
        )
        return member_read(member)

    @post(
        "/watches/{watch_id:str}/check-out",
        summary="Check out",
        description="Leaving the site; 409 `checked_in` when not checked in." + _KEEPS_WORKING,
        status_code=HTTP_200_OK,
        opt=_ON_SITE,
    )
    async def check_out(
        self, request: Request[Principal, Any, Any], db_session: DbSession, watch_id: IdParam
    ) -> MemberRead:
        member = await tracking.check_out(
            db_session, request.user.user_id, parse_id(watch_id, "watch_id"), utcnow()
        )
        return member_read(member)


class SupervisionController(Controller):
    path = "/api/v1"
    tags = ["geofence"]  # noqa: RUF012
    guards = [_watchers]  # noqa: RUF012

    @get(
        "/plants/{plant_id:str}/live",
        summary="The live plant picture",
        description="Zones, jobs running or paused (and ended ones with people still checked "
        "in), each person's last position and inside/outside state, and unresolved alerts — "
        "what the live map polls. Positions WGS-84. A plant outside the caller's scope answers "
        "404.",
    )
    async def plant_live(
        self, request: Request[Principal, Any, Any], db_session: DbSession, plant_id: IdParam
    ) -> dict[str, Any]:
        plant = await _plant(request, db_session, plant_id)
        return await live.plant_snapshot(db_session, plant, utcnow())

    @get(
        "/watches/{watch_id:str}/timeline",
        summary="A job's timeline",
        description="The permit's job on site in time order: check-ins and outs, alerts, the "
        "permit's ledgered changes (started, suspended, resumed, completed), and the pings to "
        "draw on the map.",
    )
    async def timeline(
        self, request: Request[Principal, Any, Any], db_session: DbSession, watch_id: IdParam
    ) -> dict[str, Any]:
        watch = await live.get_watch(db_session, parse_id(watch_id, "watch_id"))
        ensure_plant_in_scope(request.user, watch.plant_id)
        return await live.timeline(db_session, watch.id)

    @get(
        "/alerts",
        summary="A plant's alerts",
        description="Newest first; `unresolved=true` for open and acknowledged ones only.",
    )
    async def list_alerts(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        plant: AlertPlantQuery,
        unresolved: UnresolvedQuery = False,
    ) -> list[dict[str, Any]]:
        plant_id = await _plant(request, db_session, plant)
        found = await alerts.list_alerts(db_session, plant_id=plant_id, unresolved_only=unresolved)
        return [live.alert_document(alert) for alert in found]

    @post(
        "/alerts/{alert_id:str}/acknowledge",
        summary="Acknowledge an alert",
        description="EHS officers and plant managers; the response time is measured from the "
        "alert to its first acknowledgement. 409 `open` when not open." + _KEEPS_WORKING,
        status_code=HTTP_200_OK,
        guards=[_alert_handlers],
        opt=_ON_SITE,
    )
    async def acknowledge(
        self, request: Request[Principal, Any, Any], db_session: DbSession, alert_id: IdParam
    ) -> dict[str, Any]:
        alert = await _handled_alert(request, db_session, alert_id)
        alert = await alerts.acknowledge(
            db_session, alert.id, actor_id=request.user.user_id, now=utcnow()
        )
        return live.alert_document(alert)

    @post(
        "/alerts/{alert_id:str}/resolve",
        summary="Resolve an alert",
        description="With a note saying what was found and done. 409 `unresolved` when already "
        "resolved." + _KEEPS_WORKING,
        status_code=HTTP_200_OK,
        guards=[_alert_handlers],
        opt=_ON_SITE,
    )
    async def resolve(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        alert_id: IdParam,
        data: JSONBody[AlertNoteIn],
    ) -> dict[str, Any]:
        alert = await _handled_alert(request, db_session, alert_id)
        alert = await alerts.resolve(
            db_session, alert.id, data.note, actor_id=request.user.user_id, now=utcnow()
        )
        return live.alert_document(alert)

    @post(
        "/alerts/{alert_id:str}/violation",
        summary="Confirm an alert as a violation",
        description="It counts against the contractor in the job's rating; an unresolved alert "
        "is resolved with the note. 409 `once` when already marked." + _KEEPS_WORKING,
        status_code=HTTP_200_OK,
        guards=[_alert_handlers],
        opt=_ON_SITE,
    )
    async def violation(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        alert_id: IdParam,
        data: JSONBody[AlertNoteIn],
    ) -> dict[str, Any]:
        alert = await _handled_alert(request, db_session, alert_id)
        alert = await alerts.mark_violation(
            db_session, alert.id, data.note, actor_id=request.user.user_id, now=utcnow()
        )
        return live.alert_document(alert)


async def _plant(
    request: Request[Principal, Any, Any], db_session: DbSession, plant_id: str
) -> uuid.UUID:
    """A plant of the tenant within the caller's scope; any other id answers 404."""
    plant = parse_id(plant_id, "plant_id")
    ensure_plant_in_scope(request.user, plant)
    return (await tenant_services.get_plant(db_session, plant)).id


async def _handled_alert(
    request: Request[Principal, Any, Any], db_session: DbSession, alert_id: str
) -> Any:
    alert = await alerts.get_alert(db_session, parse_id(alert_id, "alert_id"))
    ensure_plant_in_scope(request.user, alert.plant_id)
    return alert


class PolicyRead(msgspec.Struct, kw_only=True):
    dwell_s: int
    no_signal_minutes: int
    max_speed_mps: float
    guardian_absent_minutes: int
    overstay_grace_minutes: int


def _policy_read(policy: tracking.Policy) -> PolicyRead:
    return PolicyRead(
        dwell_s=policy.dwell_s,
        no_signal_minutes=policy.no_signal_minutes,
        max_speed_mps=policy.max_speed_mps,
        guardian_absent_minutes=policy.guardian_absent_minutes,
        overstay_grace_minutes=policy.overstay_grace_minutes,
    )


class GeofencePolicyController(Controller):
    path = "/api/v1/geofence-policy"
    tags = ["geofence"]  # noqa: RUF012
    guards = [_watchers]  # noqa: RUF012

    @get("/", summary="The tenant's alert thresholds")
    async def get_policy(self, db_session: DbSession) -> PolicyRead:
        return _policy_read(await tracking.get_policy(db_session))

    @put(
        "/",
        summary="Set the tenant's alert thresholds",
        description="Tenant administrators and EHS officers: the dwell outside a zone before "
        "'left the zone', minutes of silence before 'no signal', the speed above which "
        "movement is implausible, minutes a guardian may be away, and the grace after a "
        "permit's end. The change is ledgered.",
        guards=[_policy_editors],
    )
    async def put_policy(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        data: JSONBody[PolicyIn],
    ) -> PolicyRead:
        policy = await tracking.save_policy(db_session, data, actor_id=request.user.user_id)
        return _policy_read(policy)
