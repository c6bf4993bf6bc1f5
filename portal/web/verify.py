"""The page a scanned QR code opens, and the same answer as JSON for scanners."""

from __future__ import annotations

from typing import Any

from litestar import Controller, get
from litestar.datastructures import State
from litestar.params import FromPath
from litestar.response import Template

from infra.db import utcnow
from infra.storage import ObjectStorage
from infra.verification import INVALID, STATUS_LABELS, Verdict, on_clock, verify_token
from portal.dependencies import AppSettings, DbSession

# A token is a few hundred characters; anything far longer is not one of ours.
_MAX_TOKEN_LENGTH = 1024


async def _verdict(
    db_session: DbSession, storage: ObjectStorage, settings: AppSettings, token: str
) -> Verdict:
    if len(token) > _MAX_TOKEN_LENGTH:
        return INVALID
    return await verify_token(db_session, storage, settings, token)


class VerificationController(Controller):
    @get("/v/{token:str}", include_in_schema=False)
    async def page(
        self, state: State, db_session: DbSession, settings: AppSettings, token: FromPath[str]
    ) -> Template:
        verdict = await _verdict(db_session, state.storage, settings, token)
        return Template(
            template_name="verify.html",
            context={
                "verdict": verdict,
                "status_label": STATUS_LABELS[verdict.status],
                "checked_at": on_clock(utcnow(), verdict.timezone),
            },
            headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
        )

    @get(
        "/api/v1/verify/{token:str}",
        summary="Live status of the record a QR code names",
        description=(
            "Public: no token needed. `status` is one of valid, not_started, suspended, expired, "
            "closed, superseded, invalid; a forged, altered or revoked link is `invalid`."
        ),
        tags=["verification"],
    )
    async def as_json(
        self, state: State, db_session: DbSession, settings: AppSettings, token: FromPath[str]
    ) -> dict[str, Any]:
        verdict = await _verdict(db_session, state.storage, settings, token)
        return {
            "status": verdict.status.value,
            "title": verdict.title,
            "facts": [{"label": label, "value": value} for label, value in verdict.facts],
            "checked_at": utcnow().isoformat(),
        }
