"""The worker's phone page for supervised work (作业定位): the person's current jobs, check-in
and check-out (by GPS or by the permit's QR code), and the positions the phone sends while the
job runs.

The page posts JSON with the session cookie and the CSRF header (``x-csrftoken``, the value of
the ``portal_csrf`` cookie); the phone keeps pings in a queue while out of signal and replays
them, so the pings endpoint answers per ping and a replayed batch stores nothing twice. Checking
in, checking out and sending positions keep working while the tenant is read-only for billing:
safety on site never waits for a payment.

The service worker is served from the page's own path, not from ``/static/``, because a worker
may only control pages at or below its script's directory (unless a header widens it).
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.response import Template
from sqlalchemy.ext.asyncio import AsyncSession

from geofence import tracking
from geofence.schemas import CheckInIn, IngestReport, PingBatchIn
from infra.db import utcnow
from infra.errors import Conflict
from infra.i18n import N_
from infra.i18n import gettext as _
from portal.dependencies import AppSettings, DbSession
from portal.guards import BILLING_EXEMPT, signed_in
from portal.web.forms import ensure_own_tenant, page_id
from tenants.access import Principal

_SAFETY_ACTION = {BILLING_EXEMPT: True}
# Every plant the product serves today is on China Standard Time (see portal.plugin).
_PLANT_TIME = ZoneInfo("Asia/Shanghai")
_SERVICE_WORKER = Path(__file__).parent.parent / "static" / "track-sw.js"
# A phone on a site samples every 15 s by default: often enough for the no-signal and left-zone
# rules (minutes), rarely enough to spare the battery through a shift. Tests ask for less.
DEFAULT_SAMPLE_SECONDS = 15
_SAMPLE_SECONDS_RANGE = (1, 300)
# The login the page's queue belongs to. Offline, a phone may open the page a previous user left
# in its cache while someone else is signed in; their positions must not be filed as this one's.
QUEUE_OWNER_HEADER = "x-track-user"

ROLE_LABELS = {"crew": N_("Crew"), "guardian": N_("Guardian")}
# What the page's script writes when the server's answer changes; translated once per page.
SCRIPT_TEXTS = {
    "inside": N_("Inside the work zone"),
    "outside": N_("Outside the work zone"),
    "unknown": N_("Position not yet evaluated"),
    "online": N_("Online"),
    "offline": N_("Offline: positions are kept on the phone"),
    "checked_in": N_("Checked in at %(time)s"),
    "checked_out": N_("Checked out at %(time)s"),
    "not_checked_in": N_("Not checked in"),
    "locating": N_("Getting your position…"),
    "no_position": N_("The phone gave no position. Allow location access and try again."),
    "no_geolocation": N_("This browser cannot give a position. Scan the permit's QR code."),
    "failed": N_("Not sent: %(reason)s"),
    "network": N_("No connection. Try again when the phone has signal."),
    "sign_in": N_("Your sign-in has expired. Sign in again; queued positions are kept."),
    "never": N_("not yet"),
    "state_active": N_("Work in progress"),
    "state_suspended": N_("Suspended"),
    "state_closed": N_("Closed"),
}


def _local(value: datetime | None) -> str | None:
    return value.astimezone(_PLANT_TIME).strftime("%m-%d %H:%M") if value is not None else None


def _watch_json(watch: tracking.MyWatch) -> dict[str, Any]:
    """A watch as the page's script reads it, with the times also on the plant's clock."""
    data = asdict(watch)
    for name in ("starts_at", "ends_at", "checked_in_at", "checked_out_at", "last_seen_at"):
        data[f"{name}_local"] = _local(getattr(watch, name))
    # The same question the services ask of a member: a watch carries the member's times.
    checked_in = tracking.is_checked_in(watch)  # type: ignore[arg-type]
    data["checked_in"] = checked_in
    # The phone reports while the person is checked in, whatever became of the job (who is
    # still on site matters most when work was stopped), and from opening the page on while
    # the job runs, until they check out.
    data["tracking"] = checked_in or (watch.state == "active" and watch.checked_out_at is None)
    return data


async def _state(session: AsyncSession, principal: Principal) -> dict[str, Any]:
    watches = await tracking.my_watches(session, principal.user_id, utcnow())
    return {"watches": [_watch_json(watch) for watch in watches]}


def _sample_seconds(value: str | None) -> int:
    try:
        seconds = int(value) if value else DEFAULT_SAMPLE_SECONDS
    except ValueError:
        seconds = DEFAULT_SAMPLE_SECONDS
    low, high = _SAMPLE_SECONDS_RANGE
    return min(max(seconds, low), high)


class TrackingPages(Controller):
    include_in_schema = False

    @get("/t/{slug:str}/track", guards=[signed_in])
    async def page(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        slug: FromPath[str],
        interval: FromQuery[str | None] = None,
    ) -> Template:
        principal = request.user
        ensure_own_tenant(principal, slug)
        return Template(
            "geofence/track.html",
            context={
                "tenant_slug": slug,
                "watches": (await _state(db_session, principal))["watches"],
                "role_labels": ROLE_LABELS,
                "sample_seconds": _sample_seconds(interval),
                "user_id": principal.user_id,
                "texts": {key: _(text) for key, text in SCRIPT_TEXTS.items()},
            },
            # The service worker keeps its own copy for offline reloads; nothing in between may.
            headers={"Cache-Control": "no-store"},
        )

    @get("/t/{slug:str}/track/state.json", guards=[signed_in])
    async def state(
        self, request: Request[Principal, Any, Any], db_session: DbSession, slug: FromPath[str]
    ) -> Response[dict[str, Any]]:
        ensure_own_tenant(request.user, slug)
        return Response(
            await _state(db_session, request.user), headers={"Cache-Control": "no-store"}
        )

    @get("/t/{slug:str}/track/sw.js", sync_to_thread=False)
    def service_worker(self, slug: FromPath[str]) -> Response[bytes]:
        return Response(
            _SERVICE_WORKER.read_bytes(),
            media_type="application/javascript",
            headers={
                # The page is /t/{slug}/track, one level above the script's own directory.
                "Service-Worker-Allowed": f"/t/{slug}/track",
                "Cache-Control": "no-cache",
            },
        )

    @post("/t/{slug:str}/track/pings", guards=[signed_in], opt=_SAFETY_ACTION, status_code=200)
    async def pings(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        settings: AppSettings,
        slug: FromPath[str],
        data: JSONBody[PingBatchIn],
    ) -> IngestReport:
        ensure_own_tenant(request.user, slug)
        owner = request.headers.get(QUEUE_OWNER_HEADER)
        if owner is not None and owner != str(request.user.user_id):
            raise Conflict(
                "user",
                "session",
                N_("These positions were recorded for another sign-in on this phone."),
            )
        return await tracking.ingest(
            db_session, settings, request.user.user_id, data.pings, utcnow()
        )

    @post(
        "/t/{slug:str}/track/{watch_id:str}/check-in",
        guards=[signed_in],
        opt=_SAFETY_ACTION,
        status_code=200,
    )
    async def check_in(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        settings: AppSettings,
        slug: FromPath[str],
        watch_id: FromPath[str],
        data: JSONBody[CheckInIn],
    ) -> dict[str, Any]:
        ensure_own_tenant(request.user, slug)
        await tracking.check_in(
            db_session,
            settings,
            request.user.user_id,
            page_id(watch_id),
            data,
            utcnow(),
        )
        return await _state(db_session, request.user)

    @post(
        "/t/{slug:str}/track/{watch_id:str}/check-out",
        guards=[signed_in],
        opt=_SAFETY_ACTION,
        status_code=200,
    )
    async def check_out(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        slug: FromPath[str],
        watch_id: FromPath[str],
    ) -> dict[str, Any]:
        ensure_own_tenant(request.user, slug)
        await tracking.check_out(db_session, request.user.user_id, page_id(watch_id), utcnow())
        return await _state(db_session, request.user)
