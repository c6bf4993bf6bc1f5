"""The tenant administrator's data page, ``/t/{slug}/admin/export``: export everything the
tenant owns as one zip (built by a task, its progress shown until the download is ready), and
ask for the tenant's deletion by typing its short name, or cancel it during the grace period.

The rules live in :mod:`tenants.export` and :mod:`tenants.deletion`. Only tenant
administrators see the page and its downloads; everyone else gets 404.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.datastructures import State
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotFoundException
from litestar.params import Body, FromPath, FromQuery
from litestar.response import Redirect, Stream, Template
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from infra.db import utcnow
from infra.errors import DomainError
from infra.i18n import N_
from infra.i18n import gettext as _
from portal.dependencies import AppSettings, DbSession
from portal.guards import DATA_RIGHT, signed_in
from portal.web.exports import start_job, stored_attachment
from portal.web.forms import ensure_tenant_admin, field_text, page_id
from portal.web.onboarding import FormErrors
from tenants import deletion, export
from tenants.access import Principal
from tenants.models import DataExport, DataExportState, Tenant
from tenants.tasks import build_export

FormData = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]
POLL_SECONDS = 3
# The exports the page lists, newest first.
LISTED_EXPORTS = 10
DELETION_FIELDS = {deletion.CONFIRMATION_FIELD}
DONE_NOTICES = {
    "export": N_("The export has started. This page shows its progress."),
    "scheduled": N_("The tenant is scheduled for deletion."),
    "cancelled": N_("The deletion is cancelled."),
}


async def _tenant(session: AsyncSession, principal: Principal) -> Tenant:
    return await session.get_one(Tenant, principal.tenant_id)


async def _data_page(
    session: AsyncSession,
    principal: Principal,
    slug: str,
    *,
    values: dict[str, str] | None = None,
    errors: FormErrors | None = None,
    notice: str | None = None,
    status_code: int = 200,
) -> Template:
    tenant = await _tenant(session, principal)
    exports = list(
        (
            await session.execute(
                select(DataExport).order_by(DataExport.created_at.desc()).limit(LISTED_EXPORTS)
            )
        ).scalars()
    )
    return Template(
        "admin/data_export.html",
        context={
            "tenant_slug": slug,
            "tenant": tenant,
            "exports": exports,
            "running": any(item.state == DataExportState.RUNNING for item in exports),
            "poll_seconds": POLL_SECONDS,
            "values": values or {},
            "errors": errors or FormErrors(),
            "notice": notice,
        },
        status_code=status_code,
        headers={"Cache-Control": "no-store"},
    )


class TenantDataPages(Controller):
    include_in_schema = False
    guards = [signed_in]  # noqa: RUF012

    @get("/t/{slug:str}/admin/export")
    async def page(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        slug: FromPath[str],
        done: FromQuery[str | None] = None,
    ) -> Template:
        ensure_tenant_admin(request.user, slug)
        return await _data_page(db_session, request.user, slug, notice=DONE_NOTICES.get(done or ""))

    @post("/t/{slug:str}/admin/export", opt=DATA_RIGHT)
    async def start_export(
        self, request: Request[Principal, Any, Any], db_session: DbSession, slug: FromPath[str]
    ) -> Redirect:
        principal = request.user
        ensure_tenant_admin(principal, slug)
        tenant = await _tenant(db_session, principal)
        created = await db_session.run_sync(
            lambda sync: export.create_export(sync, tenant, requested_by=principal.user_id)
        )
        export_id = created.id
        await start_job(
            db_session,
            build_export,
            {"tenant_id": str(principal.tenant_id), "export_id": str(export_id)},
            lambda sync, reason: export.fail_export(sync, export_id, reason),
        )
        return Redirect(f"/t/{slug}/admin/export?done=export", status_code=303)

    @get("/t/{slug:str}/admin/export/{export_id:str}/download")
    async def download(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        state: State,
        slug: FromPath[str],
        export_id: FromPath[str],
    ) -> Stream:
        ensure_tenant_admin(request.user, slug)
        found = await db_session.get(DataExport, page_id(export_id))
        if found is None or found.state != DataExportState.DONE or not found.object_key:
            raise NotFoundException()
        return await stored_attachment(
            state.storage, found.object_key, export.ZIP_TYPE, found.filename
        )

    @post("/t/{slug:str}/admin/deletion", opt=DATA_RIGHT)
    async def request_deletion(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        settings: AppSettings,
        slug: FromPath[str],
        data: FormData,
    ) -> Template | Redirect:
        principal = request.user
        ensure_tenant_admin(principal, slug)
        tenant = await _tenant(db_session, principal)
        confirmation = field_text(data, deletion.CONFIRMATION_FIELD)
        try:
            await db_session.run_sync(
                lambda sync: deletion.request_deletion(
                    sync,
                    tenant,
                    confirmation=confirmation,
                    grace_days=settings.tenant_deletion_grace_days,
                    actor_id=principal.user_id,
                    now=utcnow(),
                )
            )
        except DomainError as exc:
            await db_session.rollback()
            return await _data_page(
                db_session,
                principal,
                slug,
                values={deletion.CONFIRMATION_FIELD: confirmation},
                errors=FormErrors.of(exc, DELETION_FIELDS),
                status_code=exc.status_code,
            )
        return Redirect(f"/t/{slug}/admin/export?done=scheduled", status_code=303)

    @post("/t/{slug:str}/admin/deletion/cancel", opt=DATA_RIGHT)
    async def cancel_deletion(
        self, request: Request[Principal, Any, Any], db_session: DbSession, slug: FromPath[str]
    ) -> Template | Redirect:
        principal = request.user
        ensure_tenant_admin(principal, slug)
        tenant = await _tenant(db_session, principal)
        try:
            await db_session.run_sync(
                lambda sync: deletion.cancel_deletion(sync, tenant, actor_id=principal.user_id)
            )
        except DomainError as exc:
            await db_session.rollback()
            return await _data_page(
                db_session,
                principal,
                slug,
                errors=FormErrors(general=[_(exc.message)]),
                status_code=exc.status_code,
            )
        return Redirect(f"/t/{slug}/admin/export?done=cancelled", status_code=303)
