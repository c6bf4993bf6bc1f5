"""A worker's personal data on request, for EHS officers and tenant administrators: a page
reached from the worker's row on the review page, with the export (a zip of the worker's data,
the ID number decrypted, and their files) and the erasure (confirmed by ticking a box).

The rules live in :mod:`onboarding.personal_data`; another tenant's or an unknown worker
answers 404, as does the page for anyone who does not review contractors.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import anyio
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotFoundException
from litestar.params import Body, FromPath, FromQuery
from litestar.response import Redirect, Template
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from infra.errors import DomainError, InvalidInput
from infra.field_encryption import field_cipher
from infra.i18n import N_
from infra.storage import ObjectNotFound, ObjectStorage
from onboarding import personal_data
from onboarding.access import viewer_for
from onboarding.models import Worker
from portal.dependencies import AppSettings, DbSession
from portal.guards import DATA_RIGHT, requires_roles
from portal.web.exports import attachment
from portal.web.forms import ensure_own_tenant, field_text, page_id
from portal.web.onboarding import FormErrors
from tenants.access import Principal
from tenants.models import Role

FormData = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]
_reviewers = requires_roles(Role.EHS_OFFICER, Role.TENANT_ADMIN)
CONFIRM_FIELD = "confirm"
ERASE_FIELDS = {CONFIRM_FIELD}
DONE_NOTICES = {"erased": N_("The worker's personal data is erased.")}
PAGE = "/t/{slug}/review/{contractor_id}/workers/{worker_id}/personal-data"


async def _worker(session: AsyncSession, contractor_id: uuid.UUID, worker_id: uuid.UUID) -> Worker:
    worker = await session.scalar(
        select(Worker).where(Worker.id == worker_id, Worker.contractor_id == contractor_id)
    )
    if worker is None:
        raise NotFoundException()
    return worker


async def _page(
    session: AsyncSession,
    slug: str,
    contractor_id: uuid.UUID,
    worker_id: uuid.UUID,
    *,
    errors: FormErrors | None = None,
    notice: str | None = None,
    status_code: int = 200,
) -> Template:
    worker = await _worker(session, contractor_id, worker_id)
    return Template(
        "onboarding/personal_data.html",
        context={
            "tenant_slug": slug,
            "contractor_id": contractor_id,
            "worker": worker,
            "erased": personal_data.is_erased(worker),
            "page": PAGE.format(slug=slug, contractor_id=contractor_id, worker_id=worker_id),
            "errors": errors or FormErrors(),
            "notice": notice,
        },
        status_code=status_code,
        headers={"Cache-Control": "no-store"},
    )


def _read_all(storage: ObjectStorage, keys: list[str]) -> dict[str, bytes]:
    contents = {}
    for key in keys:
        try:
            contents[key] = storage.get(key)
        except ObjectNotFound:
            continue
    return contents


class PersonalDataPages(Controller):
    include_in_schema = False
    guards = [_reviewers]  # noqa: RUF012

    @get("/t/{slug:str}/review/{contractor_id:str}/workers/{worker_id:str}/personal-data")
    async def page(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        slug: FromPath[str],
        contractor_id: FromPath[str],
        worker_id: FromPath[str],
        done: FromQuery[str | None] = None,
    ) -> Template:
        ensure_own_tenant(request.user, slug)
        return await _page(
            db_session,
            slug,
            page_id(contractor_id),
            page_id(worker_id),
            notice=DONE_NOTICES.get(done or ""),
        )

    @post(
        "/t/{slug:str}/review/{contractor_id:str}/workers/{worker_id:str}/personal-data/export",
        status_code=200,
        opt=DATA_RIGHT,
    )
    async def export(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        settings: AppSettings,
        state: State,
        slug: FromPath[str],
        contractor_id: FromPath[str],
        worker_id: FromPath[str],
    ) -> Response[bytes]:
        ensure_own_tenant(request.user, slug)
        viewer = await viewer_for(db_session, request.user)
        found = await personal_data.export_personal_data(
            db_session,
            viewer,
            page_id(contractor_id),
            page_id(worker_id),
            cipher=field_cipher(settings),
        )
        # Object storage is a blocking client (boto3 or the disk).
        contents = await anyio.to_thread.run_sync(
            _read_all, state.storage, list(found.files.values())
        )
        return attachment(found.archive(contents), "application/zip", found.filename)

    @post(
        "/t/{slug:str}/review/{contractor_id:str}/workers/{worker_id:str}/personal-data/erase",
        opt=DATA_RIGHT,
    )
    async def erase(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        settings: AppSettings,
        state: State,
        slug: FromPath[str],
        contractor_id: FromPath[str],
        worker_id: FromPath[str],
        data: FormData,
    ) -> Template | Redirect:
        ensure_own_tenant(request.user, slug)
        contractor, worker = page_id(contractor_id), page_id(worker_id)
        viewer = await viewer_for(db_session, request.user)
        try:
            if field_text(data, CONFIRM_FIELD) != "yes":
                raise InvalidInput(
                    CONFIRM_FIELD, "required", N_("Tick the box to confirm the erasure.")
                )
            keys = await personal_data.erase_personal_data(
                db_session, viewer, contractor, worker, cipher=field_cipher(settings)
            )
        except DomainError as exc:
            if exc.status_code == 404:
                raise NotFoundException() from None
            await db_session.rollback()
            return await _page(
                db_session,
                slug,
                contractor,
                worker,
                errors=FormErrors.of(exc, ERASE_FIELDS),
                status_code=exc.status_code,
            )
        # The files go once the erasure is committed: a failure before leaves the worker whole.
        await db_session.commit()
        await anyio.to_thread.run_sync(
            personal_data.delete_erased_objects, state.storage, request.user.tenant_id, keys
        )
        page = PAGE.format(slug=slug, contractor_id=contractor, worker_id=worker)
        return Redirect(f"{page}?done=erased", status_code=303)
