"""Plant maps: the zone editor of EHS and the tenant's administrators, and the live plant map of
the people who supervise work on site.

The editor's page draws with JavaScript and saves through JSON endpoints here, under the tenant's
address, because the JSON API under ``/api/v1`` takes bearer tokens only: these take the session
cookie and Litestar's CSRF check (the ``x-csrftoken`` header, copied by the page from the
``portal_csrf`` cookie). They call ``geofence.services`` and answer like the API, errors as
``{"detail", "errors": [{"field", "rule", "message"}]}`` in the user's language.

Who may reach a plant's map is decided per plant: a role held for another plant, a plant of
another tenant and a role that may not see the map all answer 404 (no existence oracle); under
another tenant's address the caller is signed out, as everywhere on the site.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from litestar import Controller, Request, Response, delete, get, post, put
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, JSONBody
from litestar.response import Template
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT
from sqlalchemy.ext.asyncio import AsyncSession

from geofence import services as zones
from geofence.live import plant_snapshot, zone_document
from geofence.models import Zone, ZoneKind
from geofence.schemas import ZoneIn
from infra.db import utcnow
from infra.i18n import N_
from infra.i18n import gettext as _
from infra.settings import Settings
from portal.api.geofence import ALERT_HANDLERS, WATCHERS
from portal.dependencies import AppSettings, DbSession
from portal.guards import signed_in
from portal.web.forms import ensure_own_tenant, page_id
from tenants import services as tenants
from tenants.access import Principal, has_role_for_plant
from tenants.models import Plant, Role

ZONE_EDITORS = (Role.EHS_OFFICER, Role.TENANT_ADMIN)
KIND_LABELS = {
    ZoneKind.WORK_AREA: N_("Work area"),
    ZoneKind.RESTRICTED: N_("Restricted zone"),
    ZoneKind.ASSEMBLY_POINT: N_("Assembly point"),
}
EDITOR_TEXTS = {
    "edit": N_("Edit"),
    "retire": N_("Retire"),
    "confirm_retire": N_(
        "Retire zone %(name)s? It leaves the map; permits and alerts that name it keep it."
    ),
    "saved": N_("Zone saved."),
    "retired": N_("Zone retired."),
    "need_shape": N_("Draw the shape first."),
    "need_finish": N_("Finish the polygon first: it needs at least three corners."),
    "need_radius": N_("Give the radius in metres."),
    "failed": N_("The server could not be reached. Try again."),
    "buffer": N_("buffer %(m)s m"),
    "radius": N_("radius %(m)s m"),
    **{f"kind_{kind.value}": label for kind, label in KIND_LABELS.items()},
}
LIVE_TEXTS = {
    "inside": N_("Inside the zone"),
    "outside": N_("Outside the zone"),
    "unknown": N_("Not yet evaluated"),
    "no_fix": N_("No position"),
    "not_checked_in": N_("Not checked in"),
    "acknowledge": N_("Acknowledge"),
    "resolve": N_("Resolve"),
    "violation": N_("Mark as violation"),
    "note": N_("Note"),
    "need_note": N_("Write a note first."),
    "acknowledged": N_("Acknowledged"),
    "failed": N_("The server could not be reached. Try again."),
    "stale": N_("Not refreshed since %(time)s"),
}
# The live map asks this often; the engine evaluates pings as they arrive, so a person's dot is
# never more than one poll behind what the server knows.
LIVE_POLL_SECONDS = 3


def _texts(texts: dict[str, str]) -> dict[str, str]:
    return {key: _(text) for key, text in texts.items()}


def map_settings(settings: Settings, plant: Plant) -> dict[str, Any]:
    """What map.js needs to open a map: the tiles, whose datum they are in, and where to look
    before any zone is known."""
    return {
        "tile_url": settings.map_tile_url,
        "attribution": settings.map_tile_attribution,
        "coordinates": settings.map_coordinates,
        "latitude": plant.latitude,
        "longitude": plant.longitude,
    }


async def _plant_for(
    session: AsyncSession,
    principal: Principal,
    slug: str,
    plant_id: str,
    roles: Iterable[Role],
) -> Plant:
    ensure_own_tenant(principal, slug)
    plant_uuid = page_id(plant_id)
    if not has_role_for_plant(principal, roles, plant_uuid):
        raise NotFoundException()
    return await tenants.get_plant(session, plant_uuid)


async def _zone_of(session: AsyncSession, plant: Plant, zone_id: str) -> Zone:
    zone = await zones.get_zone(session, page_id(zone_id))
    if zone.plant_id != plant.id:
        raise NotFoundException()
    return zone


class MapPages(Controller):
    include_in_schema = False
    guards = [signed_in]  # noqa: RUF012

    @get("/t/{slug:str}/plants/{plant_id:str}/zones")
    async def zone_editor(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        settings: AppSettings,
        slug: FromPath[str],
        plant_id: FromPath[str],
    ) -> Template:
        plant = await _plant_for(db_session, request.user, slug, plant_id, ZONE_EDITORS)
        listed = await zones.list_zones(db_session, plant.id)
        return Template(
            "geofence/zones.html",
            context={
                "tenant_slug": slug,
                "plant": plant,
                "zones": [zone_document(zone) for zone in listed],
                "map": map_settings(settings, plant),
                "kind_labels": KIND_LABELS,
                "texts": _texts(EDITOR_TEXTS),
                "can_watch": has_role_for_plant(request.user, WATCHERS, plant.id),
            },
        )

    @post("/t/{slug:str}/plants/{plant_id:str}/zones", status_code=HTTP_201_CREATED)
    async def create_zone(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        slug: FromPath[str],
        plant_id: FromPath[str],
        data: JSONBody[ZoneIn],
    ) -> dict[str, Any]:
        plant = await _plant_for(db_session, request.user, slug, plant_id, ZONE_EDITORS)
        if data.plant_id != plant.id:
            raise NotFoundException()
        zone = await zones.create_zone(db_session, data, actor_id=request.user.user_id)
        return zone_document(zone)

    @put("/t/{slug:str}/plants/{plant_id:str}/zones/{zone_id:str}")
    async def update_zone(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        slug: FromPath[str],
        plant_id: FromPath[str],
        zone_id: FromPath[str],
        data: JSONBody[ZoneIn],
    ) -> dict[str, Any]:
        plant = await _plant_for(db_session, request.user, slug, plant_id, ZONE_EDITORS)
        zone = await _zone_of(db_session, plant, zone_id)
        zone = await zones.update_zone(db_session, zone.id, data, actor_id=request.user.user_id)
        return zone_document(zone)

    @delete(
        "/t/{slug:str}/plants/{plant_id:str}/zones/{zone_id:str}", status_code=HTTP_204_NO_CONTENT
    )
    async def retire_zone(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        slug: FromPath[str],
        plant_id: FromPath[str],
        zone_id: FromPath[str],
    ) -> None:
        plant = await _plant_for(db_session, request.user, slug, plant_id, ZONE_EDITORS)
        zone = await _zone_of(db_session, plant, zone_id)
        await zones.retire_zone(db_session, zone.id, actor_id=request.user.user_id)

    @get("/t/{slug:str}/plants/{plant_id:str}/live")
    async def live(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        settings: AppSettings,
        slug: FromPath[str],
        plant_id: FromPath[str],
    ) -> Template:
        plant = await _plant_for(db_session, request.user, slug, plant_id, WATCHERS)
        listed = await zones.list_zones(db_session, plant.id)
        return Template(
            "geofence/live.html",
            context={
                "tenant_slug": slug,
                "plant": plant,
                "zones": [zone_document(zone) for zone in listed],
                "map": map_settings(settings, plant),
                "kind_labels": KIND_LABELS,
                "texts": _texts(LIVE_TEXTS),
                "poll_seconds": LIVE_POLL_SECONDS,
                "can_edit": has_role_for_plant(request.user, ZONE_EDITORS, plant.id),
                # Only those who handle alerts get the buttons; the others watch.
                "can_handle_alerts": has_role_for_plant(request.user, ALERT_HANDLERS, plant.id),
            },
        )

    @get("/t/{slug:str}/plants/{plant_id:str}/live.json")
    async def live_data(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        slug: FromPath[str],
        plant_id: FromPath[str],
    ) -> Response[Any]:
        plant = await _plant_for(db_session, request.user, slug, plant_id, WATCHERS)
        snapshot = await plant_snapshot(db_session, plant.id, utcnow())
        # Positions and alerts change by the second: no cache may hand out an old answer.
        return Response(snapshot, headers={"Cache-Control": "no-store"})
