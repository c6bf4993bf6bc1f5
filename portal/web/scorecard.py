"""The supplier scorecard download: the PDF of an approved review, for host users and for the
company's own logins; a draft, another company's review or another tenant's id answers 404."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get
from litestar.datastructures import State
from litestar.params import FromPath
from sqlalchemy import select

from onboarding.models import Contractor
from permits.services import actor_for
from portal.dependencies import DbSession
from portal.guards import signed_in
from portal.web.forms import ensure_own_tenant, page_id
from scoring import scorecard
from scoring.services import get_review, period_label
from tenants.access import Principal


class ScorecardPages(Controller):
    include_in_schema = False

    @get("/t/{slug:str}/reviews/{review_id:str}/scorecard.pdf", guards=[signed_in])
    async def scorecard_pdf(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        state: State,
        slug: FromPath[str],
        review_id: FromPath[str],
    ) -> Response[bytes]:
        ensure_own_tenant(request.user, slug)
        actor = await actor_for(db_session, request.user)
        review = await get_review(db_session, actor, page_id(review_id))
        pdf = await scorecard.scorecard_pdf(db_session, state.storage, review)
        uscc = await db_session.scalar(
            select(Contractor.uscc).where(Contractor.id == review.contractor_id)
        )
        name = f"scorecard-{uscc}-{period_label(review.period_kind, review.period_start)}.pdf"
        return Response(
            content=pdf,
            media_type="application/pdf",
            headers={
                "Content-Disposition": f'inline; filename="{name}"',
                "Cache-Control": "private",
            },
        )
