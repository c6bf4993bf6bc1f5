"""Plants and users of the caller's tenant."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.datastructures import State
from litestar.params import JSONBody
from litestar.status_codes import HTTP_200_OK
from sqlalchemy.ext.asyncio import AsyncSession

from infra.errors import InvalidInput
from portal.dependencies import DbSession
from portal.guards import ensure_plant_in_scope, requires_roles, signed_in
from portal.params import IdParam, parse_id
from tenants import entitlements, services
from tenants.access import Principal, visible_plant_ids
from tenants.models import Plant, Role, User
from tenants.schemas import GrantRead, MeRead, PlantCreate, PlantRead, UserCreate, UserRead


def plant_read(plant: Plant) -> PlantRead:
    return PlantRead(
        id=plant.id,
        code=plant.code,
        name=plant.name,
        timezone=plant.timezone,
        latitude=plant.latitude,
        longitude=plant.longitude,
        retired_at=plant.retired_at,
    )


async def user_read(session: AsyncSession, user: User) -> UserRead:
    grants = await services.grants_of(session, user.id)
    return UserRead(
        id=user.id,
        email=user.email,
        name=user.name,
        phone=user.phone,
        locale=user.locale,
        is_active=user.is_active,
        grants=[GrantRead(role=g.role.value, plant_id=g.plant_id) for g in grants],
    )


class MeController(Controller):
    path = "/api/v1/me"
    tags = ["auth"]  # noqa: RUF012

    @get("/", summary="The signed-in user, their tenant and roles", guards=[signed_in])
    async def me(self, request: Request[Principal, Any, Any], db_session: DbSession) -> MeRead:
        principal = request.user
        user = await services.get_user(db_session, principal.user_id)
        return MeRead(
            user=await user_read(db_session, user),
            tenant_id=principal.tenant_id,
            tenant_slug=principal.tenant_slug,
            tenant_name=principal.tenant_name,
        )


class PlantController(Controller):
    path = "/api/v1/plants"
    tags = ["plants"]  # noqa: RUF012
    guards = [signed_in]  # noqa: RUF012

    @get(
        "/",
        summary="Plants the caller may see",
        description="Retired plants too, with the moment in `retired_at`; plants in service "
        "have `retired_at: null`.",
    )
    async def list_plants(
        self, request: Request[Principal, Any, Any], db_session: DbSession
    ) -> list[PlantRead]:
        plants = await services.list_plants(db_session, visible_plant_ids(request.user))
        return [plant_read(plant) for plant in plants]

    @get("/{plant_id:str}", summary="One plant", description="Another tenant's id answers 404.")
    async def get_plant(
        self, request: Request[Principal, Any, Any], db_session: DbSession, plant_id: IdParam
    ) -> PlantRead:
        parsed = parse_id(plant_id, "plant_id")
        ensure_plant_in_scope(request.user, parsed)
        return plant_read(await services.get_plant(db_session, parsed))

    @post(
        "/",
        summary="Add a plant",
        description="Tenant admins only. Position in WGS-84; time zone as an IANA name. "
        "With billing on, a plant beyond the plan's limit answers 402 naming the upgrade.",
        guards=[requires_roles(Role.TENANT_ADMIN)],
    )
    async def create_plant(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        state: State,
        data: JSONBody[PlantCreate],
    ) -> PlantRead:
        await entitlements.ensure_can_add_plant(db_session, state.billing)
        plant = await services.add_plant(
            db_session,
            code=data.code,
            name=data.name,
            timezone=data.timezone,
            latitude=data.latitude,
            longitude=data.longitude,
            actor_id=request.user.user_id,
        )
        return plant_read(plant)

    @post(
        "/{plant_id:str}/retire",
        summary="Retire a plant",
        description="Tenant admins only. The plant keeps its permits, ratings and ledger and "
        "still shows in lists and reports, but takes no new permits, zones, inductions or roles "
        "(422 `plant.retired`) and is no longer billed or counted against the plan. Refused "
        "while permits of the plant are in approval, approved, under way or awaiting "
        "acceptance (409 `plant.open_permits`). Retiring a retired plant changes nothing.",
        guards=[requires_roles(Role.TENANT_ADMIN)],
        status_code=HTTP_200_OK,
    )
    async def retire_plant(
        self, request: Request[Principal, Any, Any], db_session: DbSession, plant_id: IdParam
    ) -> PlantRead:
        plant = await services.retire_plant(
            db_session, parse_id(plant_id, "plant_id"), actor_id=request.user.user_id
        )
        return plant_read(plant)

    @post(
        "/{plant_id:str}/reinstate",
        summary="Put a retired plant back in service",
        description="Tenant admins only. The plant counts against the plan again: with billing "
        "on, a plant beyond the plan's limit answers 402 naming the upgrade.",
        guards=[requires_roles(Role.TENANT_ADMIN)],
        status_code=HTTP_200_OK,
    )
    async def reinstate_plant(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        state: State,
        plant_id: IdParam,
    ) -> PlantRead:
        plant = await services.reinstate_plant(
            db_session,
            parse_id(plant_id, "plant_id"),
            state.billing,
            actor_id=request.user.user_id,
        )
        return plant_read(plant)


class UserController(Controller):
    path = "/api/v1/users"
    tags = ["users"]  # noqa: RUF012
    guards = [requires_roles(Role.TENANT_ADMIN)]  # noqa: RUF012

    @get("/", summary="Users of the tenant")
    async def list_users(self, db_session: DbSession) -> list[UserRead]:
        return [await user_read(db_session, user) for user in await services.list_users(db_session)]

    @get("/{user_id:str}", summary="One user", description="Another tenant's id answers 404.")
    async def get_user(self, db_session: DbSession, user_id: IdParam) -> UserRead:
        user = await services.get_user(db_session, parse_id(user_id, "user_id"))
        return await user_read(db_session, user)

    @post(
        "/",
        summary="Create a user with roles",
        description="The password needs at least 10 characters; roles may be limited to a plant.",
    )
    async def create_user(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        data: JSONBody[UserCreate],
    ) -> UserRead:
        actor = request.user.user_id
        user = await services.create_user(
            db_session,
            email=data.email,
            name=data.name,
            password=data.password,
            phone=data.phone,
            locale=data.locale,
            actor_id=actor,
        )
        for index, grant in enumerate(data.grants):
            try:
                await services.grant_role(
                    db_session,
                    user_id=user.id,
                    role=grant.role,
                    plant_id=grant.plant_id,
                    actor_id=actor,
                )
            except InvalidInput as exc:
                # The service knows one grant; the client sent a list and must learn which.
                for problem in exc.problems:
                    problem.field = f"grants[{index}].{problem.field}"
                raise
        return await user_read(db_session, user)
