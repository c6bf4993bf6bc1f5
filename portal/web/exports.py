"""Downloads of the HQ tables: ``/t/{slug}/hq/export`` takes the table, the format and the
query of the page it was linked from (:mod:`portal.web.hq_params`) and answers the file, or,
for an export that may be long, starts the task that builds it and sends the browser to a page
that shows its progress and then the download link. The rules (what is long, how cells are
written) live in :mod:`scoring.exports`.

An export is its requester's: anyone else, like another tenant, gets 404 for its pages.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import anyio
from kombu.exceptions import OperationalError
from litestar import Controller, Request, Response, get
from litestar.background_tasks import BackgroundTask
from litestar.datastructures import State
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Redirect, Stream, Template
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from infra.errors import InvalidInput
from infra.i18n import N_, current_locale
from infra.storage import ObjectNotFound, ObjectReader, ObjectStorage
from portal.dependencies import DbSession
from portal.guards import signed_in
from portal.web.forms import ensure_own_tenant, page_id
from portal.web.hq_params import hq_params, hq_scope
from scoring import exports
from scoring.models import Export, ExportState
from scoring.tables import TABLES, Table
from scoring.tasks import build_export
from tenants.access import Principal

POLL_SECONDS = 2


def _table(name: str | None) -> Table:
    table = TABLES.get(name or "")
    if table is None:
        raise InvalidInput(
            "table",
            "one_of",
            N_("Choose one of: %(choices)s."),
            choices=", ".join(TABLES),
        )
    return table


def _format(value: str | None) -> str:
    if value not in exports.FORMATS:
        raise InvalidInput(
            "format",
            "one_of",
            N_("Choose one of: %(choices)s."),
            choices=", ".join(exports.FORMATS),
        )
    return value


def _attachment_headers(filename: str) -> dict[str, str]:
    return {
        "Content-Disposition": f'attachment; filename="{filename}"',
        "Cache-Control": "no-store",
    }


def attachment(data: bytes, content_type: str, filename: str) -> Response[bytes]:
    return Response(data, media_type=content_type, headers=_attachment_headers(filename))


async def _parts(reader: ObjectReader) -> AsyncIterator[bytes]:
    try:
        # Object storage is a blocking client (boto3 or the disk): each part is read on a thread.
        while part := await anyio.to_thread.run_sync(reader.read):
            yield part
    finally:
        reader.close()


async def stored_attachment(
    storage: ObjectStorage, key: str, content_type: str, filename: str
) -> Stream:
    """A finished job's file from object storage as a download, sent a part at a time (a
    tenant's export can be gigabytes); 404 when it is gone."""
    try:
        reader = await anyio.to_thread.run_sync(storage.open, key)
    except ObjectNotFound:
        raise NotFoundException() from None
    return Stream(
        _parts(reader),
        media_type=content_type,
        headers={**_attachment_headers(filename), "Content-Length": str(reader.size)},
        # Also when the body is never read (a HEAD request) or the client goes away.
        background=BackgroundTask(reader.close),
    )


async def start_job(
    db_session: AsyncSession,
    task: Any,
    kwargs: dict[str, str],
    fail: Callable[[Session, str], object],
) -> None:
    """Commit the job's row, then queue its task; with the queue down, the row says so."""
    # The task reads the job's row: it must be committed before the task can start.
    await db_session.commit()
    try:
        task.apply_async(kwargs=kwargs)
    except OperationalError:
        await db_session.run_sync(lambda sync: fail(sync, "the task queue is unavailable"))


async def _own_export(
    session: AsyncSession, principal: Principal, slug: str, export_id: str
) -> Export:
    ensure_own_tenant(principal, slug)
    hq_scope(principal)
    export = await session.get(Export, page_id(export_id))
    if export is None or export.requested_by != principal.user_id:
        raise NotFoundException()
    return export


class ExportPages(Controller):
    include_in_schema = False
    guards = [signed_in]  # noqa: RUF012

    @get("/t/{slug:str}/hq/export")
    async def export(
        self, request: Request[Principal, Any, Any], db_session: DbSession, slug: FromPath[str]
    ) -> Response[Any]:
        """Query: ``table``, ``format`` (csv or xlsx) and those of the HQ page it was linked
        from (``from``, ``to`` or ``period``, ``plant_id``, ``work_type``, ``contractor_id``)."""
        principal = request.user
        ensure_own_tenant(principal, slug)
        query = {key: request.query_params.get(key, "") for key in request.query_params}
        params = hq_params(principal, query)
        chosen, fmt = _table(query.get("table")), _format(query.get("format"))
        estimate = await db_session.run_sync(
            lambda sync: exports.estimated_rows(sync, chosen, params)
        )
        if estimate <= exports.DIRECT_ROW_LIMIT:
            built = await db_session.run_sync(
                lambda sync: exports.export_now(sync, chosen, params, fmt)
            )
            return attachment(built.data, built.content_type, built.filename)
        export = await db_session.run_sync(
            lambda sync: exports.create_export(
                sync,
                chosen,
                params,
                fmt,
                locale=current_locale(),
                requested_by=principal.user_id,
            )
        )
        export_id = export.id
        await start_job(
            db_session,
            build_export,
            {"tenant_id": str(principal.tenant_id), "export_id": str(export_id)},
            lambda sync, reason: exports.fail_export(sync, export_id, reason),
        )
        return Redirect(f"/t/{slug}/hq/exports/{export_id}", status_code=303)

    @get("/t/{slug:str}/hq/exports/{export_id:str}")
    async def progress(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        slug: FromPath[str],
        export_id: FromPath[str],
    ) -> Template:
        export = await _own_export(db_session, request.user, slug, export_id)
        table = TABLES[export.table]
        params = exports.params_from_document(export.parameters)
        return Template(
            "hq/export.html",
            context={
                "tenant_slug": slug,
                "export": export,
                "table_title": table.title,
                "first_day": params.start,
                "last_day": params.end - timedelta(days=1),
                "poll_seconds": POLL_SECONDS,
                # HTMX asks for the status panel alone while it polls.
                "fragment": request.headers.get("HX-Request") == "true",
            },
            headers={"Cache-Control": "no-store"},
        )

    @get("/t/{slug:str}/hq/exports/{export_id:str}/download")
    async def download(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        state: State,
        slug: FromPath[str],
        export_id: FromPath[str],
    ) -> Stream:
        export = await _own_export(db_session, request.user, slug, export_id)
        if export.state != ExportState.DONE or not export.object_key:
            raise NotFoundException()
        return await stored_attachment(
            state.storage,
            export.object_key,
            exports.CONTENT_TYPES[export.format],
            export.filename or "export",
        )
