"""Alert handling from the live plant map: acknowledge, resolve with a note, confirm as a
violation. JSON endpoints under the tenant's address with the session cookie and the CSRF
header (the map's script sends both); they call ``geofence.alerts`` and answer the alert as the
live map shows it. An alert of a plant outside the caller's scope answers 404, like one that is
not there. Safety never stops for billing: these keep working while the tenant is read-only.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_200_OK
from msgspec import Meta

from geofence import alerts
from geofence.live import alert_document
from infra.db import utcnow
from infra.errors import InvalidInput
from infra.i18n import N_
from portal.api.geofence import ALERT_HANDLERS
from portal.dependencies import DbSession
from portal.guards import BILLING_EXEMPT, signed_in
from portal.web.forms import ensure_own_tenant, page_id
from tenants.access import Principal, has_role_for_plant
from tenants.schemas import Input


class HandlingIn(Input, kw_only=True):
    note: Annotated[str, Meta(max_length=2_000)] = ""


ACTIONS = frozenset({"acknowledge", "resolve", "violation"})


class AlertPages(Controller):
    include_in_schema = False
    guards = [signed_in]  # noqa: RUF012

    @post(
        "/t/{slug:str}/alerts/{alert_id:str}/{action:str}",
        status_code=HTTP_200_OK,
        opt={BILLING_EXEMPT: True},
    )
    async def handle(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        slug: FromPath[str],
        alert_id: FromPath[str],
        action: FromPath[str],
        data: JSONBody[HandlingIn],
    ) -> Response[Any]:
        ensure_own_tenant(request.user, slug)
        if action not in ACTIONS:
            raise NotFoundException()
        alert = await alerts.get_alert(db_session, page_id(alert_id))
        if not has_role_for_plant(request.user, ALERT_HANDLERS, alert.plant_id):
            raise NotFoundException()
        actor, now, note = request.user.user_id, utcnow(), data.note.strip()
        if action == "acknowledge":
            handled = await alerts.acknowledge(db_session, alert.id, actor_id=actor, now=now)
        else:
            if not note:
                raise InvalidInput("note", "required", N_("Write a note first."))
            handle = alerts.resolve if action == "resolve" else alerts.mark_violation
            handled = await handle(db_session, alert.id, note, actor_id=actor, now=now)
        return Response(alert_document(handled), headers={"Cache-Control": "no-store"})
