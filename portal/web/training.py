"""Training pages (培训): inductions read, answered and signed on a worker's phone (or on a
company administrator's tablet in an assisted session), the EHS authoring pages and board, and
job briefings signed on the briefer's tablet or the crew's phones.

The pages parse forms, call ``training.services`` / ``training.briefings`` and render. A refused
form is rendered again with the problem next to its field, after the request's transaction was
rolled back. The quiz pages never carry the correct answers; the signature pad sends the strokes,
the server checks them and draws the image itself.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State, UploadFile
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotFoundException
from litestar.params import Body, FromPath, FromQuery
from litestar.response import Redirect, Template
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from infra.errors import DomainError, FieldProblem, NotFound
from infra.i18n import N_
from infra.i18n import gettext as _
from infra.settings import Settings
from infra.storage import ObjectStorage
from infra.uploads import DOCUMENT_KINDS, MAX_UPLOAD_BYTES, StoredObject, store_upload
from onboarding import services as onboarding
from onboarding.access import viewer_for
from onboarding.catalogue import WORK_TYPE_LABELS, WorkType
from onboarding.models import Worker
from portal.dependencies import AppSettings, DbSession
from portal.guards import BILLING_EXEMPT, requires_roles, signed_in
from portal.web.forms import (
    INVALID_FORM,
    close_files,
    convert,
    ensure_own_tenant,
    field_text,
    field_texts,
    page_id,
)
from portal.web.onboarding import FormErrors
from tenants import services as tenants
from tenants.access import Principal, has_role_for_plant, visible_plant_ids
from tenants.models import Role
from training import briefings, records, services
from training import content as induction_content
from training.evidence import SigningDevice
from training.models import Briefing, BriefingSignature, InductionSignature
from training.schemas import (
    AnswersIn,
    DraftIn,
    InductionContent,
    InductionIn,
    PositionIn,
    SignatureIn,
    StrokesIn,
)
from training.signature import BRIEFING_CONSENT_SENTENCE, CONSENT_SENTENCE

MultipartForm = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.MULTI_PART)]
_LONG_LIMIT = 20_000
# 200 strokes of up to 2,000 points of about 20 characters each would be 8 MB; real signatures
# are a few kilobytes. Anything past this is not a drawing from our pad.
_STROKES_LIMIT = 1_000_000
_REQUIRED = N_("This field is required.")
_DRAW = N_("Sign in the box with your finger, a pen or the mouse.")
_BAD_CORRECT = N_("Type the numbers of the correct options, for example 1 or 1,3.")

_takers = requires_roles(Role.CONTRACTOR_WORKER, Role.CONTRACTOR_ADMIN)
_workers = requires_roles(Role.CONTRACTOR_WORKER)
_authors = requires_roles(*services.AUTHOR_ROLES)
_briefers = requires_roles(*briefings.BRIEFER_ROLES)
# Safety records (taking and signing inductions and briefings) keep working while the tenant is
# read-only for billing, as on the API.
_SAFETY_RECORD = {BILLING_EXEMPT: True}

STATUS_LABELS = {
    "done": N_("Done"),
    "expiring": N_("Expiring soon"),
    "pending": N_("Not yet trained"),
    "failed": N_("Not passed"),
    "lapsed": N_("Lapsed"),
}
SIGNATURE_FIELDS = {"strokes", "full_name", "consent"}
SECTION_FIELDS = ("title", "body", "video_url")
QUESTION_FIELDS = ("text", "kind", "options", "correct")
RULE_FIELDS = ("title", "draw_count", "pass_mark", "attempts_per_day", "validity_days")
EXTRA_SECTION_ROWS = 2
EXTRA_QUESTION_ROWS = 3


# --- small helpers ---------------------------------------------------------------------------


def _device(request: Request[Any, Any, Any]) -> SigningDevice:
    return SigningDevice(
        ip_address=request.client.host if request.client else None,
        user_agent=request.headers.get("user-agent"),
    )


def _link(storage: ObjectStorage, settings: Settings, key: str) -> str:
    """A short-lived download link, kept as a same-site path when it is one of ours."""
    url = storage.download_url(key, expires_seconds=900)
    base = settings.base_url.rstrip("/")
    return url[len(base) :] if url.startswith(base + "/") else url


async def _stored_link(
    session: AsyncSession, storage: ObjectStorage, settings: Settings, object_id: uuid.UUID
) -> str | None:
    record = await session.scalar(select(StoredObject).where(StoredObject.id == object_id))
    return _link(storage, settings, record.key) if record else None


# --- the signature form ----------------------------------------------------------------------


def _signature_in(data: dict[str, Any]) -> SignatureIn:
    """The pad's strokes, the typed name, the consent box and the position when the phone gave
    one; a position that does not parse is left out rather than holding the signature up."""
    problems: list[FieldProblem] = []
    raw = field_text(data, "strokes", _STROKES_LIMIT)
    strokes: StrokesIn | None = None
    if not raw:
        problems.append(FieldProblem("strokes", "required", _DRAW))
    else:
        try:
            strokes = msgspec.json.decode(raw, type=StrokesIn)
        except (msgspec.ValidationError, msgspec.DecodeError):
            problems.append(FieldProblem("strokes", "invalid", _DRAW))
    if not field_text(data, "full_name"):
        problems.append(FieldProblem("full_name", "required", _REQUIRED))
    if problems:
        raise DomainError(INVALID_FORM, problems)
    payload: dict[str, Any] = {
        "full_name": field_text(data, "full_name"),
        "consent": field_text(data, "consent") == "yes",
        "strokes": msgspec.to_builtins(strokes),
    }
    try:
        position = {
            "latitude": float(field_text(data, "latitude")),
            "longitude": float(field_text(data, "longitude")),
            "accuracy_m": float(field_text(data, "accuracy")),
        }
        payload["position"] = msgspec.to_builtins(msgspec.convert(position, PositionIn))
    except (ValueError, msgspec.ValidationError):
        pass
    return convert(payload, SignatureIn)


def _signature_values(data: dict[str, Any], errors: FormErrors | None = None) -> dict[str, Any]:
    """What to fill in again: the name and the box, and the drawing unless it was refused."""
    values = {
        "full_name": field_text(data, "full_name"),
        "consent": field_text(data, "consent") == "yes",
    }
    if errors is None or "strokes" not in errors.fields:
        values["strokes"] = field_text(data, "strokes", _STROKES_LIMIT)
    return values


def _signature_errors(exc: DomainError) -> FormErrors:
    return FormErrors.of(exc, SIGNATURE_FIELDS)


# --- worker pages ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Session:
    """Who the phone pages run for, and the query that keeps an assisted session going."""

    taker: services.Taker
    query: str

    @property
    def worker(self) -> Worker:
        return self.taker.worker


async def _taker(
    session: AsyncSession, principal: Principal, slug: str, worker: str | None
) -> _Session:
    ensure_own_tenant(principal, slug)
    worker_id = page_id(worker) if worker else None
    taker = await services.taker_for(session, principal, worker_id)
    return _Session(taker, f"?worker={worker_id}" if worker_id else "")


async def _assignment(
    session: AsyncSession, who: _Session, induction_id: uuid.UUID
) -> services.Assignment:
    for assignment in await services.assignments(session, who.taker):
        if assignment.induction.id == induction_id:
            return assignment
    raise NotFound(N_("Induction not found."))


def _base(slug: str, who: _Session) -> dict[str, Any]:
    return {
        "tenant_slug": slug,
        "worker": who.worker,
        "assisted": who.taker.assisted,
        "wq": who.query,
        "status_labels": STATUS_LABELS,
    }


async def _sections(
    session: AsyncSession,
    storage: ObjectStorage,
    settings: Settings,
    content: InductionContent,
) -> list[dict[str, Any]]:
    return [
        {
            "title": section.title,
            # markdown-it without raw HTML and with safe links: marked safe in the template.
            "html": induction_content.render_markdown(section.body),
            "video_url": section.video_url,
            "images": [
                link
                for image_id in section.image_ids
                if (link := await _stored_link(session, storage, settings, image_id))
            ],
        }
        for section in content.sections
    ]


async def _attempt_page(
    session: AsyncSession,
    slug: str,
    who: _Session,
    attempt_id: uuid.UUID,
    *,
    errors: FormErrors | None = None,
    chosen: dict[str, list[int]] | None = None,
    status_code: int = 200,
) -> Template:
    """The quiz while the attempt is open, its result once submitted."""
    attempt = await services.get_attempt(session, who.taker, attempt_id)
    version = await services.attempt_version(session, attempt)
    content = services.version_content(version)
    by_id = {question.id: question for question in content.questions}
    context = {
        **_base(slug, who),
        "attempt": attempt,
        "version": version,
        "title": content.title,
        "pass_mark": content.pass_mark,
        "errors": errors or FormErrors(),
        "chosen": chosen or {},
    }
    if attempt.submitted_at is None:
        # Only what the worker needs to answer: never the correct options.
        context["questions"] = [
            {
                "id": question_id,
                "text": by_id[question_id].text,
                "kind": by_id[question_id].kind,
                "options": by_id[question_id].options,
            }
            for question_id in attempt.drawn
        ]
        return Template("training/quiz.html", context=context, status_code=status_code)
    signature_id = await session.scalar(
        select(InductionSignature.id).where(InductionSignature.attempt_id == attempt.id)
    )
    left = None
    try:
        left = (await _assignment(session, who, attempt.induction_id)).attempts_left_today
    except NotFound:
        left = 0
    context.update(
        {
            "wrong": [by_id[question_id].text for question_id in attempt.wrong or []],
            "questions_count": len(attempt.drawn),
            "signature_id": signature_id,
            "attempts_left": left,
        }
    )
    return Template("training/result.html", context=context, status_code=status_code)


async def _induction_sign_page(
    session: AsyncSession,
    slug: str,
    who: _Session,
    attempt_id: uuid.UUID,
    *,
    values: dict[str, Any] | None = None,
    errors: FormErrors | None = None,
    status_code: int = 200,
) -> Template:
    attempt = await services.get_attempt(session, who.taker, attempt_id)
    version = await services.attempt_version(session, attempt)
    content = services.version_content(version)
    return Template(
        "training/sign.html",
        context={
            **_base(slug, who),
            "heading": content.title,
            "facts": [
                (N_("Version"), str(version.version)),
                (N_("Score"), f"{attempt.score}%"),
                (N_("Content SHA-256"), version.content_hash[:12]),
            ],
            "signer_name": who.worker.name,
            "consent_sentence": CONSENT_SENTENCE,
            "action": f"/t/{slug}/training/sign/{attempt.id}{who.query}",
            "back": f"/t/{slug}/training/quiz/{attempt.id}{who.query}",
            "can_sign": bool(attempt.passed),
            "values": values or {},
            "errors": errors or FormErrors(),
        },
        status_code=status_code,
    )


async def _record_page(
    session: AsyncSession,
    storage: ObjectStorage,
    settings: Settings,
    slug: str,
    signature: InductionSignature,
    query: str,
) -> Template:
    context = await records.record_context(session, storage, settings, signature)
    image = await _stored_link(session, storage, settings, signature.image_id)
    return Template(
        "training/record.html",
        context={
            "tenant_slug": slug,
            "record": context,
            "signature": signature,
            "image_url": image,
            "pdf_url": f"/t/{slug}/training/records/{signature.id}/record.pdf",
            "wq": query,
        },
    )


# --- authoring -------------------------------------------------------------------------------


@dataclass
class _Rows:
    """The form rows that were filled in, by their place in the content lists."""

    sections: list[int]
    questions: list[int]


def _row_indexes(data: dict[str, Any], prefix: str) -> list[int]:
    pattern = re.compile(rf"^{prefix}_(\d+)_")
    return sorted({int(m[1]) for key in data if (m := pattern.match(key)) and int(m[1]) < 500})


def _correct(text: str) -> list[int] | None:
    parts = [part for part in re.split(r"[\s,，、;；]+", text) if part]
    if not parts or not all(part.isdigit() for part in parts):
        return None
    return [int(part) - 1 for part in parts]


def _content_in(data: dict[str, Any]) -> tuple[InductionContent, _Rows]:
    """The form as an induction's content: blank rows are left out, options are one per line,
    correct options are numbered from 1; problems are named by their form field."""
    problems: list[FieldProblem] = []
    rows = _Rows([], [])
    sections: list[dict[str, Any]] = []
    for index in _row_indexes(data, "section"):
        values = {
            name: field_text(data, f"section_{index}_{name}", _LONG_LIMIT)
            for name in SECTION_FIELDS
        }
        images = field_texts(data, f"section_{index}_image_ids")
        if not any(values.values()) and not images:
            continue
        section: dict[str, Any] = {"title": values["title"], "body": values["body"]}
        if values["video_url"]:
            section["video_url"] = values["video_url"]
        if images:
            section["image_ids"] = images
        for name in ("title", "body"):
            if not values[name]:
                problems.append(FieldProblem(f"section_{index}_{name}", "required", _REQUIRED))
        rows.sections.append(index)
        sections.append(section)
    questions: list[dict[str, Any]] = []
    used = {field_text(data, f"question_{i}_id") for i in _row_indexes(data, "question")}
    number = 0
    for index in _row_indexes(data, "question"):
        text = field_text(data, f"question_{index}_text")
        options_text = field_text(data, f"question_{index}_options", _LONG_LIMIT)
        correct_text = field_text(data, f"question_{index}_correct")
        if not (text or options_text or correct_text):
            continue
        question_id = field_text(data, f"question_{index}_id")
        if not question_id:
            while not question_id or question_id in used:
                number += 1
                question_id = f"q{number}"
            used.add(question_id)
        correct = _correct(correct_text)
        if correct is None:
            problems.append(FieldProblem(f"question_{index}_correct", "format", _BAD_CORRECT))
        if not text:
            problems.append(FieldProblem(f"question_{index}_text", "required", _REQUIRED))
        rows.questions.append(index)
        questions.append(
            {
                "id": question_id,
                "text": text,
                "kind": "multiple"
                if field_text(data, f"question_{index}_kind") == "multiple"
                else "single",
                "options": [line.strip() for line in options_text.splitlines() if line.strip()],
                "correct": correct or [],
            }
        )
    for name in RULE_FIELDS:
        if not field_text(data, name):
            problems.append(FieldProblem(name, "required", _REQUIRED))
    if problems:
        raise _RowError(DomainError(INVALID_FORM, problems), rows)
    payload: dict[str, Any] = {
        "title": field_text(data, "title"),
        "sections": sections,
        "questions": questions,
    }
    for name in RULE_FIELDS[1:]:
        try:
            payload[name] = int(field_text(data, name))
        except ValueError:
            problems.append(FieldProblem(name, "integer", N_("Must be a whole number.")))
    if problems:
        raise _RowError(DomainError(INVALID_FORM, problems), rows)
    try:
        content = convert(payload, InductionContent)
    except DomainError as exc:
        raise _RowError(exc, rows) from None
    return content, rows


class _RowError(Exception):
    def __init__(self, error: DomainError, rows: _Rows) -> None:
        super().__init__(error.message)
        self.error = error
        self.rows = rows


_LIST_FIELD = re.compile(r"^(?:content\.)?(sections|questions)\[(\d+)\](?:\.(\w+))?")


def _authoring_errors(exc: DomainError, rows: _Rows, known: set[str]) -> FormErrors:
    """Name each problem by its form field: ``content.questions[2].correct`` is the third filled
    question row's correct-options field."""
    for problem in exc.problems:
        field = problem.field.removeprefix("content.")
        match = _LIST_FIELD.match(field)
        if match:
            kind, position, name = match[1], int(match[2]), match[3] or ""
            places = rows.sections if kind == "sections" else rows.questions
            if position < len(places):
                prefix = f"{kind[:-1]}_{places[position]}"
                name = {"id": "text", "image_ids": "images"}.get(name, name)
                problem.field = f"{prefix}_{name}" if name else f"{prefix}_text"
        elif field in ("sections", "questions"):
            problem.field = "title"
        else:
            problem.field = field
    return FormErrors.of(exc, known)


def _form_rows(data: dict[str, Any]) -> dict[str, Any]:
    """The typed form, to fill it in again."""
    sections = [
        {
            **{
                name: field_text(data, f"section_{i}_{name}", _LONG_LIMIT)
                for name in SECTION_FIELDS
            },
            "image_ids": field_texts(data, f"section_{i}_image_ids"),
            "index": i,
        }
        for i in _row_indexes(data, "section")
    ]
    questions = [
        {
            "id": field_text(data, f"question_{i}_id"),
            **{
                name: field_text(data, f"question_{i}_{name}", _LONG_LIMIT)
                for name in QUESTION_FIELDS
            },
            "index": i,
        }
        for i in _row_indexes(data, "question")
    ]
    return {
        **{name: field_text(data, name) for name in RULE_FIELDS},
        "plant_id": field_text(data, "plant_id"),
        "work_type": field_text(data, "work_type"),
        "sections": sections,
        "questions": questions,
    }


def _content_rows(content: InductionContent) -> dict[str, Any]:
    return {
        "title": content.title,
        "draw_count": str(content.draw_count),
        "pass_mark": str(content.pass_mark),
        "attempts_per_day": str(content.attempts_per_day),
        "validity_days": str(content.validity_days),
        "sections": [
            {
                "title": s.title,
                "body": s.body,
                "video_url": s.video_url or "",
                "image_ids": [str(i) for i in s.image_ids],
                "index": index,
            }
            for index, s in enumerate(content.sections)
        ],
        "questions": [
            {
                "id": q.id,
                "text": q.text,
                "kind": q.kind,
                "options": "\n".join(q.options),
                "correct": ",".join(str(c + 1) for c in q.correct),
                "index": index,
            }
            for index, q in enumerate(content.questions)
        ],
    }


def _with_blank_rows(values: dict[str, Any]) -> dict[str, Any]:
    """A few empty rows after the filled ones, so a section or question can be added without
    script; saving gives more."""
    sections = list(values.get("sections", []))
    questions = list(values.get("questions", []))
    next_section = max((row["index"] for row in sections), default=-1) + 1
    next_question = max((row["index"] for row in questions), default=-1) + 1
    sections += [
        {"title": "", "body": "", "video_url": "", "image_ids": [], "index": next_section + n}
        for n in range(EXTRA_SECTION_ROWS)
    ]
    questions += [
        {
            "id": "",
            "text": "",
            "kind": "single",
            "options": "",
            "correct": "",
            "index": next_question + n,
        }
        for n in range(EXTRA_QUESTION_ROWS)
    ]
    return {**values, "sections": sections, "questions": questions}


def _known_fields(values: dict[str, Any]) -> set[str]:
    known = {*RULE_FIELDS, "plant_id", "work_type"}
    for row in values["sections"]:
        known.update(f"section_{row['index']}_{name}" for name in (*SECTION_FIELDS, "images"))
    for row in values["questions"]:
        known.update(f"question_{row['index']}_{name}" for name in QUESTION_FIELDS)
    return known


# Ten photos of a section, and the text fields around them.
_AUTHORING_MAX_BYTES = 10 * MAX_UPLOAD_BYTES + 256 * 1024
_MAX_IMAGES = 10


def _uploads(data: dict[str, Any], name: str) -> list[UploadFile]:
    """An empty file input still sends a part, with no file name."""
    value = data.get(name, [])
    values = value if isinstance(value, list) else [value]
    return [item for item in values if isinstance(item, UploadFile) and item.filename]


async def _store_section_images(
    session: AsyncSession,
    storage: ObjectStorage,
    user_id: uuid.UUID,
    data: dict[str, Any],
    values: dict[str, Any],
    stored: list[str],
) -> None:
    """Store each section's new photos (upload kind "photo") and put their ids with the images
    the section keeps; ticked images are dropped."""
    for row in values["sections"]:
        field_name = f"section_{row['index']}_images"
        removed = set(field_texts(data, f"section_{row['index']}_remove_images"))
        kept = [image for image in row["image_ids"] if image not in removed]
        for upload in _uploads(data, field_name):
            if len(kept) >= _MAX_IMAGES:
                raise DomainError(
                    INVALID_FORM,
                    [
                        FieldProblem(
                            field_name,
                            "max_images",
                            N_("At most %(count)s images per section."),
                            {"count": _MAX_IMAGES},
                        )
                    ],
                )
            try:
                record = await store_upload(
                    session,
                    storage,
                    DOCUMENT_KINDS["photo"],
                    upload.file,
                    filename=upload.filename,
                    created_by=user_id,
                )
            except DomainError as exc:
                for problem in exc.problems:
                    problem.field = field_name
                raise
            stored.append(record.key)
            kept.append(str(record.id))
        data[f"section_{row['index']}_image_ids"] = kept
        row["image_ids"] = kept


async def _with_image_links(
    session: AsyncSession, storage: ObjectStorage, settings: Settings, values: dict[str, Any]
) -> dict[str, Any]:
    """Thumbnails of the images each section keeps."""
    for row in values["sections"]:
        images = []
        for image_id in row.get("image_ids", []):
            try:
                link = await _stored_link(session, storage, settings, uuid.UUID(image_id))
            except ValueError:
                link = None
            images.append({"id": image_id, "url": link})
        row["images"] = images
    return values


async def _authoring_page(
    session: AsyncSession,
    principal: Principal,
    slug: str,
    *,
    induction_id: uuid.UUID | None,
    values: dict[str, Any],
    errors: FormErrors | None = None,
    published: str | None = None,
    status_code: int = 200,
) -> Template:
    plants = [
        plant
        for plant in await tenants.list_plants(
            session, visible_plant_ids(principal), current_only=True
        )
        if has_role_for_plant(principal, services.AUTHOR_ROLES, plant.id)
    ]
    context: dict[str, Any] = {
        "tenant_slug": slug,
        "plants": plants,
        "work_types": list(WorkType),
        "work_type_labels": WORK_TYPE_LABELS,
        "values": _with_blank_rows(values),
        "errors": errors or FormErrors(),
        "induction": None,
        "published": published,
    }
    if induction_id is not None:
        induction = await services.get_induction(session, principal, induction_id)
        version = await services.current_version(session, induction)
        context.update(
            {
                "induction": induction,
                "version": version,
                "draft_changed": await services.draft_differs(session, induction),
                "plant_name": next((p.name for p in plants if p.id == induction.plant_id), ""),
            }
        )
    return Template("training/induction_form.html", context=context, status_code=status_code)


# --- briefings -------------------------------------------------------------------------------


def _briefing_facts(briefing: Briefing) -> dict[str, Any]:
    return {
        "briefing": briefing,
        "content": briefing.content,
        "sections": [
            (label, briefing.content.get(key, [])) for key, label in briefings.BRIEFING_SECTIONS
        ],
        "work_type_labels": WORK_TYPE_LABELS,
    }


async def _briefer_briefing(
    session: AsyncSession, principal: Principal, briefing_id: uuid.UUID
) -> Briefing:
    briefing = await briefings.get_briefing(session, briefing_id)
    if not has_role_for_plant(principal, briefings.BRIEFER_ROLES, briefing.plant_id):
        raise NotFound(N_("Briefing not found."))
    return briefing


async def _briefing_page(
    session: AsyncSession,
    principal: Principal,
    slug: str,
    briefing_id: uuid.UUID,
    *,
    values: dict[str, Any] | None = None,
    errors: FormErrors | None = None,
    status_code: int = 200,
) -> Template:
    briefing = await _briefer_briefing(session, principal, briefing_id)
    status = await briefings.briefing_status(session, briefing.permit_id)
    live = status.briefing is not None and status.briefing.id == briefing.id
    return Template(
        "training/briefing.html",
        context={
            "tenant_slug": slug,
            **_briefing_facts(briefing),
            "live": live,
            "briefer_signed": live and status.briefer_signed,
            "crew": status.crew if live else [],
            "complete": live and status.complete,
            "signer_name": principal.name,
            "consent_sentence": BRIEFING_CONSENT_SENTENCE,
            "action": f"/t/{slug}/briefings/{briefing.id}/briefer",
            "values": values or {},
            "errors": errors or FormErrors(),
        },
        status_code=status_code,
    )


async def _crew_sign_page(
    session: AsyncSession,
    slug: str,
    briefing: Briefing,
    worker: Worker,
    *,
    action: str,
    back: str,
    values: dict[str, Any] | None = None,
    errors: FormErrors | None = None,
    status_code: int = 200,
) -> Template:
    return Template(
        "training/sign.html",
        context={
            "tenant_slug": slug,
            **_briefing_facts(briefing),
            "heading": _("Job briefing for permit %(number)s", number=briefing.permit_number),
            "facts": [(N_("Location"), briefing.content.get("location", ""))],
            "show_briefing": True,
            "signer_name": worker.name,
            "consent_sentence": BRIEFING_CONSENT_SENTENCE,
            "action": action,
            "back": back,
            "can_sign": True,
            "values": values or {},
            "errors": errors or FormErrors(),
            "wq": "",
        },
        status_code=status_code,
    )


async def _crew_worker(
    session: AsyncSession, briefing: Briefing, worker_id: uuid.UUID
) -> Worker | None:
    """The crew member about to sign on the tablet; ``None`` while the briefer has not signed:
    the briefing is given before anyone confirms receiving it."""
    status = await briefings.briefing_status(session, briefing.permit_id)
    if status.briefing is None or status.briefing.id != briefing.id:
        raise NotFound(N_("Briefing not found."))
    if not status.briefer_signed:
        return None
    for worker, _signature in status.crew:
        if worker.id == worker_id:
            return worker
    raise NotFound(N_("Briefing not found."))


# --- routes ----------------------------------------------------------------------------------


class TrainingPages(Controller):
    include_in_schema = False

    # worker phone ------------------------------------------------------------------------

    @get("/t/{slug:str}/training", guards=[_takers])
    async def assignments(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        slug: FromPath[str],
        worker: FromQuery[str | None] = None,
    ) -> Template:
        principal = request.user
        ensure_own_tenant(principal, slug)
        if worker is None and Role.CONTRACTOR_WORKER not in principal.roles:
            # A company administrator first picks whose session this is.
            viewer = await viewer_for(db_session, principal)
            if viewer.contractor_id is None:
                raise NotFoundException()
            workers = await onboarding.list_workers(db_session, viewer, viewer.contractor_id)
            return Template(
                "training/pick_worker.html",
                context={"tenant_slug": slug, "workers": workers},
            )
        who = await _taker(db_session, principal, slug, worker)
        return Template(
            "training/assignments.html",
            context={
                **_base(slug, who),
                "assignments": await services.assignments(db_session, who.taker),
            },
        )

    @get("/t/{slug:str}/training/read/{induction_id:str}", guards=[_takers])
    async def read(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        settings: AppSettings,
        state: State,
        slug: FromPath[str],
        induction_id: FromPath[str],
        worker: FromQuery[str | None] = None,
    ) -> Template:
        who = await _taker(db_session, request.user, slug, worker)
        return await self._read_page(db_session, state.storage, settings, slug, who, induction_id)

    async def _read_page(
        self,
        session: AsyncSession,
        storage: ObjectStorage,
        settings: Settings,
        slug: str,
        who: _Session,
        induction_id: str,
        errors: FormErrors | None = None,
        status_code: int = 200,
    ) -> Template:
        assignment = await _assignment(session, who, page_id(induction_id))
        content = services.version_content(assignment.version)
        return Template(
            "training/read.html",
            context={
                **_base(slug, who),
                "assignment": assignment,
                "content": content,
                "sections": await _sections(session, storage, settings, content),
                "errors": errors or FormErrors(),
            },
            status_code=status_code,
        )

    @post(
        "/t/{slug:str}/training/read/{induction_id:str}/start", guards=[_takers], opt=_SAFETY_RECORD
    )
    async def start(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        settings: AppSettings,
        state: State,
        slug: FromPath[str],
        induction_id: FromPath[str],
        worker: FromQuery[str | None] = None,
    ) -> Template | Redirect:
        who = await _taker(db_session, request.user, slug, worker)
        try:
            attempt = await services.start_attempt(db_session, who.taker, page_id(induction_id))
        except DomainError as exc:
            if isinstance(exc, NotFound):
                raise
            await db_session.rollback()
            # The rollback expired the worker row: load it again for the page.
            who = await _taker(db_session, request.user, slug, worker)
            return await self._read_page(
                db_session,
                state.storage,
                settings,
                slug,
                who,
                induction_id,
                FormErrors.of(exc, set()),
                exc.status_code,
            )
        return Redirect(path=f"/t/{slug}/training/quiz/{attempt.id}{who.query}")

    @get("/t/{slug:str}/training/quiz/{attempt_id:str}", guards=[_takers])
    async def quiz(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        slug: FromPath[str],
        attempt_id: FromPath[str],
        worker: FromQuery[str | None] = None,
    ) -> Template:
        who = await _taker(db_session, request.user, slug, worker)
        return await _attempt_page(db_session, slug, who, page_id(attempt_id))

    @post("/t/{slug:str}/training/quiz/{attempt_id:str}", guards=[_takers], opt=_SAFETY_RECORD)
    async def answer(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        slug: FromPath[str],
        attempt_id: FromPath[str],
        data: MultipartForm,
        worker: FromQuery[str | None] = None,
    ) -> Template | Redirect:
        who = await _taker(db_session, request.user, slug, worker)
        parsed_id = page_id(attempt_id)
        answers: dict[str, list[int]] = {}
        for key in data:
            if key.startswith("q_"):
                chosen = [int(v) for v in field_texts(data, key) if v.isdigit() and len(v) < 3]
                answers[key[2:]] = chosen
        try:
            payload = convert({"answers": answers}, AnswersIn)
            await services.submit_answers(db_session, who.taker, parsed_id, payload)
        except DomainError as exc:
            if isinstance(exc, NotFound):
                raise
            await db_session.rollback()
            who = await _taker(db_session, request.user, slug, worker)
            return await _attempt_page(
                db_session,
                slug,
                who,
                parsed_id,
                errors=FormErrors.of(exc, set()),
                chosen=answers,
                status_code=exc.status_code,
            )
        return Redirect(path=f"/t/{slug}/training/quiz/{parsed_id}{who.query}")

    @get("/t/{slug:str}/training/sign/{attempt_id:str}", guards=[_takers])
    async def sign_form(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        slug: FromPath[str],
        attempt_id: FromPath[str],
        worker: FromQuery[str | None] = None,
    ) -> Template | Redirect:
        who = await _taker(db_session, request.user, slug, worker)
        parsed_id = page_id(attempt_id)
        signed = await db_session.scalar(
            select(InductionSignature.id).where(InductionSignature.attempt_id == parsed_id)
        )
        attempt = await services.get_attempt(db_session, who.taker, parsed_id)
        if signed is not None:
            return Redirect(path=f"/t/{slug}/training/records/{signed}{who.query}")
        if not attempt.passed:
            return Redirect(path=f"/t/{slug}/training/quiz/{parsed_id}{who.query}")
        return await _induction_sign_page(db_session, slug, who, parsed_id)

    @post("/t/{slug:str}/training/sign/{attempt_id:str}", guards=[_takers], opt=_SAFETY_RECORD)
    async def sign(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        state: State,
        slug: FromPath[str],
        attempt_id: FromPath[str],
        data: MultipartForm,
        worker: FromQuery[str | None] = None,
    ) -> Template | Redirect:
        who = await _taker(db_session, request.user, slug, worker)
        parsed_id = page_id(attempt_id)
        try:
            signature = await services.sign_induction(
                db_session,
                state.storage,
                who.taker,
                parsed_id,
                _signature_in(data),
                _device(request),
            )
        except DomainError as exc:
            if isinstance(exc, NotFound):
                raise
            await db_session.rollback()
            who = await _taker(db_session, request.user, slug, worker)
            errors = _signature_errors(exc)
            return await _induction_sign_page(
                db_session,
                slug,
                who,
                parsed_id,
                values=_signature_values(data, errors),
                errors=errors,
                status_code=exc.status_code,
            )
        return Redirect(path=f"/t/{slug}/training/records/{signature.id}{who.query}")

    @get("/t/{slug:str}/training/records/{signature_id:str}", guards=[signed_in])
    async def record(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        settings: AppSettings,
        state: State,
        slug: FromPath[str],
        signature_id: FromPath[str],
        worker: FromQuery[str | None] = None,
    ) -> Template:
        ensure_own_tenant(request.user, slug)
        signature = await services.get_signature(db_session, request.user, page_id(signature_id))
        query = f"?worker={page_id(worker)}" if worker else ""
        return await _record_page(db_session, state.storage, settings, slug, signature, query)

    @get("/t/{slug:str}/training/records/{signature_id:str}/record.pdf", guards=[signed_in])
    async def record_pdf(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        settings: AppSettings,
        state: State,
        slug: FromPath[str],
        signature_id: FromPath[str],
    ) -> Response[bytes]:
        ensure_own_tenant(request.user, slug)
        signature = await services.get_signature(db_session, request.user, page_id(signature_id))
        pdf = await records.record_pdf(db_session, state.storage, settings, signature)
        return Response(
            content=pdf,
            media_type="application/pdf",
            headers={
                "Content-Disposition": f'inline; filename="induction-{signature.id}.pdf"',
                "Cache-Control": "private",
            },
        )

    # EHS ---------------------------------------------------------------------------------

    @get("/t/{slug:str}/inductions", guards=[_authors])
    async def inductions(
        self, request: Request[Principal, Any, Any], db_session: DbSession, slug: FromPath[str]
    ) -> Template:
        principal = request.user
        ensure_own_tenant(principal, slug)
        inductions = await services.list_inductions(db_session, principal)
        plants = await tenants.list_plants(db_session, visible_plant_ids(principal))
        by_plant = []
        for plant in plants:
            rows = []
            for induction in inductions:
                if induction.plant_id != plant.id:
                    continue
                version = await services.current_version(db_session, induction)
                rows.append(
                    {
                        "induction": induction,
                        "title": induction_content.as_content(induction.draft).title,
                        "version": version,
                        "draft_changed": await services.draft_differs(db_session, induction),
                    }
                )
            if has_role_for_plant(principal, services.AUTHOR_ROLES, plant.id):
                by_plant.append({"plant": plant, "rows": rows})
        return Template(
            "training/inductions.html",
            context={
                "tenant_slug": slug,
                "plants": by_plant,
                "work_type_labels": WORK_TYPE_LABELS,
            },
        )

    @get("/t/{slug:str}/inductions/new", guards=[_authors])
    async def new_induction(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        slug: FromPath[str],
        plant: FromQuery[str | None] = None,
    ) -> Template:
        ensure_own_tenant(request.user, slug)
        values = {
            "plant_id": (plant or "")[:64],
            "draw_count": "5",
            "pass_mark": "80",
            "attempts_per_day": "3",
            "validity_days": "365",
            "sections": [],
            "questions": [],
        }
        return await _authoring_page(
            db_session, request.user, slug, induction_id=None, values=values
        )

    @post(
        "/t/{slug:str}/inductions",
        guards=[_authors],
        request_max_body_size=_AUTHORING_MAX_BYTES,
    )
    async def create_induction(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        settings: AppSettings,
        state: State,
        slug: FromPath[str],
        data: MultipartForm,
    ) -> Template | Redirect:
        return await self._save(request, db_session, settings, state, slug, data, None)

    @get("/t/{slug:str}/inductions/{induction_id:str}", guards=[_authors])
    async def edit_induction(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        settings: AppSettings,
        state: State,
        slug: FromPath[str],
        induction_id: FromPath[str],
        published: FromQuery[str | None] = None,
    ) -> Template:
        ensure_own_tenant(request.user, slug)
        parsed_id = page_id(induction_id)
        induction = await services.get_induction(db_session, request.user, parsed_id)
        values = _content_rows(induction_content.as_content(induction.draft))
        return await _authoring_page(
            db_session,
            request.user,
            slug,
            induction_id=parsed_id,
            values=await _with_image_links(db_session, state.storage, settings, values),
            published=published[:8] if published and published.isdigit() else None,
        )

    @post(
        "/t/{slug:str}/inductions/{induction_id:str}",
        guards=[_authors],
        request_max_body_size=_AUTHORING_MAX_BYTES,
    )
    async def save_draft(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        settings: AppSettings,
        state: State,
        slug: FromPath[str],
        induction_id: FromPath[str],
        data: MultipartForm,
    ) -> Template | Redirect:
        return await self._save(
            request, db_session, settings, state, slug, data, page_id(induction_id)
        )

    async def _save(
        self,
        request: Request[Principal, Any, Any],
        db_session: AsyncSession,
        settings: Settings,
        state: State,
        slug: str,
        data: dict[str, Any],
        induction_id: uuid.UUID | None,
    ) -> Template | Redirect:
        """Create the induction or change its draft; photos chosen for a section are stored
        through the upload pipeline first, and removed again if the form is refused."""
        principal = request.user
        ensure_own_tenant(principal, slug)
        storage: ObjectStorage = state.storage
        stored: list[str] = []
        rows = _Rows([], [])
        # Two copies: one takes the stored photos' ids, the other is the form as it came.
        values, typed = _form_rows(data), _form_rows(data)
        try:
            await _store_section_images(
                db_session, storage, principal.user_id, data, values, stored
            )
            content, rows = _content_in(data)
            if induction_id is None:
                payload: dict[str, Any] = {
                    "plant_id": values["plant_id"],
                    "content": msgspec.to_builtins(content),
                }
                if values["work_type"]:
                    payload["work_type"] = values["work_type"]
                induction = await services.create_induction(
                    db_session, principal, convert(payload, InductionIn)
                )
                induction_id = induction.id
            else:
                await services.update_draft(
                    db_session, principal, induction_id, DraftIn(content=content)
                )
        except (DomainError, _RowError) as exc:
            error, rows = (exc.error, exc.rows) if isinstance(exc, _RowError) else (exc, rows)
            if isinstance(error, NotFound):
                raise error from None
            await db_session.rollback()
            for key in stored:
                storage.delete(key)
            values = typed
            return await _authoring_page(
                db_session,
                principal,
                slug,
                induction_id=induction_id,
                values=await _with_image_links(db_session, storage, settings, values),
                errors=_authoring_errors(error, rows, _known_fields(values)),
                status_code=error.status_code,
            )
        finally:
            await close_files(data)
        return Redirect(path=f"/t/{slug}/inductions/{induction_id}")

    @post(
        [
            "/t/{slug:str}/inductions/{induction_id:str}/publish",
            "/t/{slug:str}/inductions/{induction_id:str}/retire",
        ],
        guards=[_authors],
    )
    async def publish_or_retire(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        slug: FromPath[str],
        induction_id: FromPath[str],
    ) -> Template | Redirect:
        principal = request.user
        ensure_own_tenant(principal, slug)
        parsed_id = page_id(induction_id)
        action = request.url.path.rstrip("/").rsplit("/", 1)[-1]
        try:
            if action == "publish":
                version = await services.publish(db_session, principal, parsed_id)
                return Redirect(
                    path=f"/t/{slug}/inductions/{parsed_id}?published={version.version}"
                )
            await services.retire(db_session, principal, parsed_id)
        except DomainError as exc:
            if isinstance(exc, NotFound):
                raise
            await db_session.rollback()
            induction = await services.get_induction(db_session, principal, parsed_id)
            return await _authoring_page(
                db_session,
                principal,
                slug,
                induction_id=parsed_id,
                values=_content_rows(induction_content.as_content(induction.draft)),
                errors=FormErrors.of(exc, set()),
                status_code=exc.status_code,
            )
        return Redirect(path=f"/t/{slug}/inductions")

    @get("/t/{slug:str}/induction-board", guards=[_authors])
    async def board(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        slug: FromPath[str],
        plant: FromQuery[str | None] = None,
        status: FromQuery[str | None] = None,
    ) -> Template:
        principal = request.user
        ensure_own_tenant(principal, slug)
        plants = await tenants.list_plants(db_session, visible_plant_ids(principal))
        if not plants:
            raise NotFoundException()
        chosen = page_id(plant) if plant else plants[0].id
        wanted = status if status in STATUS_LABELS else None
        rows = await services.induction_board(db_session, principal, chosen, status=wanted)
        return Template(
            "training/board.html",
            context={
                "tenant_slug": slug,
                "plants": plants,
                "plant_id": chosen,
                "status": wanted or "",
                "rows": rows,
                "status_labels": STATUS_LABELS,
            },
        )

    # briefings -----------------------------------------------------------------------------

    @get("/t/{slug:str}/briefings/{briefing_id:str}", guards=[_briefers])
    async def briefing(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        slug: FromPath[str],
        briefing_id: FromPath[str],
    ) -> Template:
        ensure_own_tenant(request.user, slug)
        return await _briefing_page(db_session, request.user, slug, page_id(briefing_id))

    @post(
        "/t/{slug:str}/briefings/{briefing_id:str}/briefer", guards=[_briefers], opt=_SAFETY_RECORD
    )
    async def sign_as_briefer(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        state: State,
        slug: FromPath[str],
        briefing_id: FromPath[str],
        data: MultipartForm,
    ) -> Template | Redirect:
        ensure_own_tenant(request.user, slug)
        parsed_id = page_id(briefing_id)
        try:
            await briefings.sign_as_briefer(
                db_session,
                state.storage,
                request.user,
                parsed_id,
                _signature_in(data),
                _device(request),
            )
        except DomainError as exc:
            if isinstance(exc, NotFound):
                raise
            await db_session.rollback()
            errors = _signature_errors(exc)
            return await _briefing_page(
                db_session,
                request.user,
                slug,
                parsed_id,
                values=_signature_values(data, errors),
                errors=errors,
                status_code=exc.status_code,
            )
        return Redirect(path=f"/t/{slug}/briefings/{parsed_id}")

    @get("/t/{slug:str}/briefings/{briefing_id:str}/crew/{worker_id:str}", guards=[_briefers])
    async def crew_sign_form(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        slug: FromPath[str],
        briefing_id: FromPath[str],
        worker_id: FromPath[str],
    ) -> Template | Redirect:
        ensure_own_tenant(request.user, slug)
        briefing = await _briefer_briefing(db_session, request.user, page_id(briefing_id))
        worker = await _crew_worker(db_session, briefing, page_id(worker_id))
        base = f"/t/{slug}/briefings/{briefing.id}"
        if worker is None:
            return Redirect(path=base)
        return await _crew_sign_page(
            db_session, slug, briefing, worker, action=f"{base}/crew/{worker.id}", back=base
        )

    @post(
        "/t/{slug:str}/briefings/{briefing_id:str}/crew/{worker_id:str}",
        guards=[_briefers],
        opt=_SAFETY_RECORD,
    )
    async def crew_sign(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        state: State,
        slug: FromPath[str],
        briefing_id: FromPath[str],
        worker_id: FromPath[str],
        data: MultipartForm,
    ) -> Template | Redirect:
        ensure_own_tenant(request.user, slug)
        parsed_id, parsed_worker = page_id(briefing_id), page_id(worker_id)
        base = f"/t/{slug}/briefings/{parsed_id}"
        briefing = await _briefer_briefing(db_session, request.user, parsed_id)
        if await _crew_worker(db_session, briefing, parsed_worker) is None:
            return Redirect(path=base)
        try:
            await briefings.sign_as_crew(
                db_session,
                state.storage,
                request.user,
                parsed_id,
                parsed_worker,
                _signature_in(data),
                _device(request),
            )
        except DomainError as exc:
            if isinstance(exc, NotFound):
                raise
            await db_session.rollback()
            errors = _signature_errors(exc)
            briefing = await _briefer_briefing(db_session, request.user, parsed_id)
            worker = await _crew_worker(db_session, briefing, parsed_worker)
            if worker is None:
                return Redirect(path=base)
            return await _crew_sign_page(
                db_session,
                slug,
                briefing,
                worker,
                action=f"{base}/crew/{worker.id}",
                back=base,
                values=_signature_values(data, errors),
                errors=errors,
                status_code=exc.status_code,
            )
        return Redirect(path=base)

    @get("/t/{slug:str}/my-briefings", guards=[_workers])
    async def my_briefings(
        self, request: Request[Principal, Any, Any], db_session: DbSession, slug: FromPath[str]
    ) -> Template:
        ensure_own_tenant(request.user, slug)
        return Template(
            "training/my_briefings.html",
            context={
                "tenant_slug": slug,
                "briefings": await briefings.briefings_to_sign(db_session, request.user),
            },
        )

    async def _own_briefing(
        self, session: AsyncSession, principal: Principal, briefing_id: uuid.UUID
    ) -> tuple[Briefing, Worker]:
        worker = await onboarding.worker_for_user(session, principal.user_id)
        if worker is None:
            raise NotFound(N_("Briefing not found."))
        for briefing in await briefings.briefings_to_sign(session, principal):
            if briefing.id == briefing_id:
                return briefing, worker
        raise NotFound(N_("Briefing not found."))

    @get("/t/{slug:str}/my-briefings/{briefing_id:str}", guards=[_workers])
    async def my_briefing(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        slug: FromPath[str],
        briefing_id: FromPath[str],
    ) -> Template | Redirect:
        ensure_own_tenant(request.user, slug)
        parsed_id = page_id(briefing_id)
        worker = await onboarding.worker_for_user(db_session, request.user.user_id)
        if worker is not None and await db_session.scalar(
            select(BriefingSignature.id).where(
                BriefingSignature.briefing_id == parsed_id,
                BriefingSignature.worker_id == worker.id,
            )
        ):
            return Redirect(path=f"/t/{slug}/my-briefings?signed={parsed_id}")
        briefing, worker = await self._own_briefing(db_session, request.user, parsed_id)
        action = f"/t/{slug}/my-briefings/{briefing.id}"
        return await _crew_sign_page(
            db_session, slug, briefing, worker, action=action, back=f"/t/{slug}/my-briefings"
        )

    @post("/t/{slug:str}/my-briefings/{briefing_id:str}", guards=[_workers], opt=_SAFETY_RECORD)
    async def sign_my_briefing(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        state: State,
        slug: FromPath[str],
        briefing_id: FromPath[str],
        data: MultipartForm,
    ) -> Template | Redirect:
        ensure_own_tenant(request.user, slug)
        parsed_id = page_id(briefing_id)
        try:
            await briefings.sign_as_crew(
                db_session,
                state.storage,
                request.user,
                parsed_id,
                None,
                _signature_in(data),
                _device(request),
            )
        except DomainError as exc:
            if isinstance(exc, NotFound):
                raise
            await db_session.rollback()
            errors = _signature_errors(exc)
            briefing, worker = await self._own_briefing(db_session, request.user, parsed_id)
            return await _crew_sign_page(
                db_session,
                slug,
                briefing,
                worker,
                action=f"/t/{slug}/my-briefings/{parsed_id}",
                back=f"/t/{slug}/my-briefings",
                values=_signature_values(data, errors),
                errors=errors,
                status_code=exc.status_code,
            )
        return Redirect(path=f"/t/{slug}/my-briefings?signed={parsed_id}")
