"""The tenant administrator's permit settings: the approval chain of each work type and level
(GB 30871 Table B.1's steps with the tenant's own inserted among them) and the tenant's holiday
calendar on top of the national one (site holidays and working days, which decide whether hot
work is raised a level, §5.1.1).

The pages parse forms, call ``permits.services`` and render; whether a chain keeps the standard
and whether a day may be set is decided there. Each change is one small form: add a step at a
position or remove one, set a day or delete it. For a chain the page reads the chain as it
stands, applies the change and hands the whole chain to ``save_chain_policy``, which refuses one
that drops or moves a standard step. The chain page and every change are the tenant
administrators'; other host users may read the calendar; everyone else gets 404, as from the API.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import msgspec
from litestar import Controller, Request, get, post
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotFoundException
from litestar.params import Body, FromPath, FromQuery, QueryParameter
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession

from infra.errors import DomainError, FieldProblem, NotFound
from infra.i18n import N_
from infra.i18n import gettext as _
from onboarding.catalogue import WORK_TYPE_LABELS, WorkType
from permits import services
from permits.catalogue import LEVEL_LABELS
from permits.chains import HOLDERS, ROLE_LABELS
from permits.rules import ApprovalRole, StepKind, standard_chain
from permits.schemas import ChainStepIn
from portal.api.permits import CalendarDayIn
from portal.dependencies import DbSession
from portal.guards import signed_in
from portal.web.forms import (
    INVALID_FORM,
    convert,
    ensure_own_tenant,
    ensure_tenant_admin,
    field_text,
)
from portal.web.onboarding import FormErrors
from portal.web.permits import STEP_KIND_LABELS
from tenants.access import Principal
from tenants.models import Role

FormData = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]
YearQuery = Annotated[int | None, QueryParameter(name="year", ge=2000, le=2100)]
FIRST_YEAR, LAST_YEAR = 2000, 2100
# The national calendar is China's: its year turns on China Standard Time.
NATIONAL_ZONE = ZoneInfo("Asia/Shanghai")
_REQUIRED = N_("This field is required.")
_CHANGED = N_("The chain changed in the meantime: check it and try again.")

CHAIN_FIELDS = {"role", "kind", "label", "position"}
CALENDAR_FIELDS = {"day", "kind", "note"}
FIELD_LABELS = {
    "steps": N_("Approval chain"),
    "role": N_("Approver"),
    "kind": N_("Kind"),
    "label": N_("Step name"),
    "position": N_("Position"),
    "day": N_("Day"),
    "note": N_("Note"),
}
CALENDAR_KIND_LABELS = {
    "national_holiday": N_("National holiday"),
    "national_workday": N_("Make-up working day"),
    "tenant_holiday": N_("Site holiday"),
    "tenant_workday": N_("Site working day"),
}
DAY_KIND_LABELS = {
    "holiday": N_("Holiday (a rest day: hot work is raised one level)"),
    "workday": N_("Working day (a weekend worked as a normal day)"),
}
WEEKDAY_LABELS = (
    N_("Monday"),
    N_("Tuesday"),
    N_("Wednesday"),
    N_("Thursday"),
    N_("Friday"),
    N_("Saturday"),
    N_("Sunday"),
)
DONE_NOTICES = {
    "added": N_("Step added to the chain."),
    "removed": N_("Step removed from the chain."),
    "set": N_("Day saved in the calendar."),
    "deleted": N_("Day removed: the national calendar applies to it again."),
}
# The approvers a tenant may add: those a host user decides (the work leader's opinion is the
# contractor's, so it is never an extra step of the tenant's).
ADDABLE_ROLES = tuple(HOLDERS)
_HOST_ROLES = frozenset(role for role in Role if role.is_host)
_ROLE_MSGIDS = {role.value: label for role, label in ROLE_LABELS.items()}


@dataclass(frozen=True)
class Refusal:
    """A refused rule as the page lists it: where, which rule, the clause, who or what."""

    field: str
    message: str
    rule: str
    clause: str | None
    subject: str | None


def _refusals(exc: DomainError) -> list[Refusal]:
    """Every problem of a refusal; a standard step missing is named by its approver."""
    found = []
    for problem in exc.problems:
        params = dict(problem.params)
        if "role" in params:
            params["role"] = _(_ROLE_MSGIDS.get(params["role"], params["role"]))
        if "kind" in params:
            params["kind"] = _(STEP_KIND_LABELS.get(params["kind"], params["kind"]))
        subject = problem.subject
        if subject in _ROLE_MSGIDS:
            subject = _(_ROLE_MSGIDS[subject])
        found.append(
            Refusal(
                _(FIELD_LABELS.get(problem.field, problem.field)),
                _(problem.message, **params),
                problem.rule,
                f"GB 30871 {problem.clause}" if problem.clause else None,
                subject,
            )
        )
    return found


# --- the approval chains ---------------------------------------------------------------------


def _levels(work_type: WorkType) -> list[str]:
    """The levels a type is graded in, or the one empty level of an ungraded type."""
    return list(LEVEL_LABELS.get(work_type, {})) or [""]


def _chain_address(work_type: str | None, level: str | None) -> tuple[WorkType, str]:
    if not work_type:
        first = next(iter(WorkType))
        return first, _levels(first)[0]
    try:
        chosen = WorkType(work_type)
    except ValueError:
        raise NotFoundException() from None
    return chosen, level if level is not None else _levels(chosen)[0]


async def _chain(
    session: AsyncSession, work_type: WorkType, level: str
) -> tuple[bool, list[services.PolicyStep]]:
    try:
        return await services.chain_policy(session, work_type, level)
    except DomainError:
        # A level the type does not have is an address that does not exist.
        raise NotFoundException() from None


def _step_rows(
    work_type: WorkType, level: str, steps: Sequence[services.PolicyStep]
) -> list[dict[str, Any]]:
    clauses = iter(step.clause for step in standard_chain(work_type, level or None))
    rows = []
    for position, step in enumerate(steps):
        role = ApprovalRole(step.role)
        holder = HOLDERS.get(role)
        rows.append(
            {
                "position": position,
                "role": step.role,
                "kind": step.kind,
                "role_label": ROLE_LABELS[role],
                "holder": holder.value if holder else None,
                "kind_label": STEP_KIND_LABELS.get(step.kind, step.kind),
                "label": step.label,
                "standard": step.standard,
                "clause": f"GB 30871 {next(clauses, None)}" if step.standard else None,
            }
        )
    return rows


def _documents(steps: Iterable[services.PolicyStep]) -> list[dict[str, Any]]:
    return [{"role": step.role, "kind": step.kind, "label": step.label} for step in steps]


async def _chain_page(
    session: AsyncSession,
    slug: str,
    work_type: WorkType,
    level: str,
    *,
    values: dict[str, str] | None = None,
    errors: FormErrors | None = None,
    refusals: Sequence[Refusal] = (),
    heading: str | None = None,
    notice: str | None = None,
    status_code: int = 200,
) -> Template:
    custom, steps = await _chain(session, work_type, level)
    rows = _step_rows(work_type, level, steps)
    return Template(
        "admin/permit_chains.html",
        context={
            "tenant_slug": slug,
            "work_type": work_type,
            "level": level,
            "level_label": LEVEL_LABELS.get(work_type, {}).get(level, ""),
            "work_type_labels": WORK_TYPE_LABELS,
            "choices": [
                (
                    chosen,
                    [(lv, LEVEL_LABELS.get(chosen, {}).get(lv, "")) for lv in _levels(chosen)],
                )
                for chosen in WorkType
            ],
            "custom": custom,
            "steps": rows,
            "roles": [
                (role.value, ROLE_LABELS[role], HOLDERS[role].value) for role in ADDABLE_ROLES
            ],
            "kinds": [(kind.value, STEP_KIND_LABELS[kind.value]) for kind in StepKind],
            "values": values or {"position": str(len(rows))},
            "errors": errors or FormErrors(),
            "refusals": refusals,
            "heading": heading,
            "notice": notice,
        },
        status_code=status_code,
    )


def _chain_url(slug: str, work_type: WorkType, level: str, done: str) -> str:
    return f"/t/{slug}/admin/permit-chains?work_type={work_type.value}&level={level}&done={done}"


def _new_step(data: dict[str, Any], length: int) -> tuple[int, dict[str, Any]]:
    """The step to add and where, every empty or unreadable field named at once."""
    problems = [
        FieldProblem(name, "required", _REQUIRED)
        for name in ("role", "kind", "label")
        if not field_text(data, name)
    ]
    position_text = field_text(data, "position")
    position = int(position_text) if position_text.isdigit() else -1
    if not 0 <= position <= length:
        problems.append(FieldProblem("position", "enum", N_("Not one of the allowed values.")))
    if problems:
        raise DomainError(INVALID_FORM, problems)
    step = convert(
        {
            "role": field_text(data, "role"),
            "kind": field_text(data, "kind"),
            "label": field_text(data, "label", 1_000),
        },
        ChainStepIn,
    )
    return position, msgspec.to_builtins(step)


# --- the calendar ----------------------------------------------------------------------------


def _this_year() -> int:
    return datetime.now(NATIONAL_ZONE).year


async def _calendar_page(
    session: AsyncSession,
    principal: Principal,
    slug: str,
    year: int,
    *,
    values: dict[str, str] | None = None,
    errors: FormErrors | None = None,
    refusals: Sequence[Refusal] = (),
    heading: str | None = None,
    notice: str | None = None,
    status_code: int = 200,
) -> Template:
    entries = await services.list_calendar(session, year)
    return Template(
        "admin/calendar.html",
        context={
            "tenant_slug": slug,
            "year": year,
            "previous_year": year - 1 if year > FIRST_YEAR else None,
            "next_year": year + 1 if year < LAST_YEAR else None,
            "entries": [
                {
                    "entry": entry,
                    "weekday": WEEKDAY_LABELS[entry.day.weekday()],
                    "kind_label": CALENDAR_KIND_LABELS.get(entry.kind, entry.kind),
                    "own": entry.kind.startswith("tenant_"),
                }
                for entry in entries
            ],
            "day_kinds": DAY_KIND_LABELS,
            "can_edit": Role.TENANT_ADMIN in principal.roles,
            "values": values or {"kind": "holiday"},
            "errors": errors or FormErrors(),
            "refusals": refusals,
            "heading": heading,
            "notice": notice,
        },
        status_code=status_code,
    )


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise DomainError(
            INVALID_FORM, [FieldProblem("day", "date", N_("Give the day as YYYY-MM-DD."))]
        ) from None


# --- routes ----------------------------------------------------------------------------------


class PermitAdminPages(Controller):
    include_in_schema = False
    guards = [signed_in]  # noqa: RUF012

    @get("/t/{slug:str}/admin/permit-chains")
    async def chains(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        slug: FromPath[str],
        work_type: FromQuery[str | None] = None,
        level: FromQuery[str | None] = None,
        done: FromQuery[str | None] = None,
    ) -> Template:
        ensure_tenant_admin(request.user, slug)
        chosen, chosen_level = _chain_address(work_type, level)
        return await _chain_page(
            db_session, slug, chosen, chosen_level, notice=DONE_NOTICES.get(done or "")
        )

    async def _change_chain(
        self,
        session: AsyncSession,
        principal: Principal,
        slug: str,
        data: dict[str, Any],
        change: Any,
        *,
        done: str,
    ) -> Template | Redirect:
        """Apply one change to the chain as it stands and save it; a refusal re-renders the
        page with what was typed and every problem."""
        ensure_tenant_admin(principal, slug)
        work_type, level = _chain_address(field_text(data, "work_type"), field_text(data, "level"))
        _custom, steps = await _chain(session, work_type, level)
        try:
            documents = change(_documents(steps))
            await services.save_chain_policy(session, principal, work_type, level, documents)
        except DomainError as exc:
            if isinstance(exc, NotFound):
                raise
            await session.rollback()
            return await _chain_page(
                session,
                slug,
                work_type,
                level,
                values={name: field_text(data, name, 1_000) for name in CHAIN_FIELDS},
                errors=FormErrors.of(exc, CHAIN_FIELDS),
                refusals=_refusals(exc),
                heading=_(exc.message),
                status_code=exc.status_code,
            )
        return Redirect(path=_chain_url(slug, work_type, level, done))

    @post("/t/{slug:str}/admin/permit-chains/add")
    async def add_step(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        slug: FromPath[str],
        data: FormData,
    ) -> Template | Redirect:
        def change(documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
            position, step = _new_step(data, len(documents))
            documents.insert(position, step)
            return documents

        return await self._change_chain(db_session, request.user, slug, data, change, done="added")

    @post("/t/{slug:str}/admin/permit-chains/remove")
    async def remove_step(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        slug: FromPath[str],
        data: FormData,
    ) -> Template | Redirect:
        def change(documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
            position_text = field_text(data, "position")
            position = int(position_text) if position_text.isdigit() else -1
            # The step the administrator saw there: a page left open while the chain changed
            # must not remove another step.
            seen = (field_text(data, "role"), field_text(data, "kind"))
            if not 0 <= position < len(documents) or seen != (
                documents[position]["role"],
                documents[position]["kind"],
            ):
                raise DomainError(_CHANGED)
            del documents[position]
            return documents

        return await self._change_chain(
            db_session, request.user, slug, data, change, done="removed"
        )

    @get("/t/{slug:str}/admin/calendar")
    async def calendar(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        slug: FromPath[str],
        year: YearQuery = None,
        done: FromQuery[str | None] = None,
    ) -> Template:
        ensure_own_tenant(request.user, slug)
        if not request.user.roles & _HOST_ROLES:
            raise NotFoundException()
        return await _calendar_page(
            db_session,
            request.user,
            slug,
            year or _this_year(),
            notice=DONE_NOTICES.get(done or ""),
        )

    async def _change_day(
        self,
        session: AsyncSession,
        principal: Principal,
        slug: str,
        data: dict[str, Any],
        run: Any,
        *,
        done: str,
    ) -> Template | Redirect:
        ensure_tenant_admin(principal, slug)
        year_text = field_text(data, "year")
        year = int(year_text) if year_text.isdigit() else _this_year()
        year = min(max(year, FIRST_YEAR), LAST_YEAR)
        try:
            day = await run()
        except DomainError as exc:
            if isinstance(exc, NotFound):
                raise
            await session.rollback()
            return await _calendar_page(
                session,
                principal,
                slug,
                year,
                values={name: field_text(data, name, 1_000) for name in CALENDAR_FIELDS},
                errors=FormErrors.of(exc, CALENDAR_FIELDS),
                refusals=_refusals(exc),
                heading=_(exc.message),
                status_code=exc.status_code,
            )
        shown = min(max(day.year, FIRST_YEAR), LAST_YEAR)
        return Redirect(path=f"/t/{slug}/admin/calendar?year={shown}&done={done}")

    @post("/t/{slug:str}/admin/calendar")
    async def set_day(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        slug: FromPath[str],
        data: FormData,
    ) -> Template | Redirect:
        async def run() -> date:
            text = field_text(data, "day")
            if not text:
                raise DomainError(INVALID_FORM, [FieldProblem("day", "required", _REQUIRED)])
            day = _day(text)
            note = field_text(data, "note", 1_000) or None
            entry = convert({"kind": field_text(data, "kind"), "note": note}, CalendarDayIn)
            await services.set_calendar_day(db_session, request.user, day, entry.kind, entry.note)
            return day

        return await self._change_day(db_session, request.user, slug, data, run, done="set")

    @post("/t/{slug:str}/admin/calendar/{day:str}/delete")
    async def delete_day(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        slug: FromPath[str],
        day: FromPath[str],
        data: FormData,
    ) -> Template | Redirect:
        async def run() -> date:
            try:
                parsed = date.fromisoformat(day[:10])
            except ValueError:
                raise NotFoundException() from None
            await services.delete_calendar_day(db_session, request.user, parsed)
            return parsed

        return await self._change_day(db_session, request.user, slug, data, run, done="deleted")
