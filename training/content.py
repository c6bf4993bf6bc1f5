"""An induction's content: the checks msgspec cannot make, the canonical form a version's hash is
computed over, and the safe rendering of its Markdown.

The hash covers the content, the induction and plant it belongs to, its version number and the
digest of every image a section shows, so a swapped picture, a moved induction or a renumbered
version no longer matches what was signed.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from typing import Any

import msgspec
from markdown_it import MarkdownIt

from infra.audit import canonical_json
from infra.errors import InvalidInput
from infra.i18n import N_
from training.schemas import InductionContent

# CommonMark without raw HTML: EHS officers format text, they do not inject markup. markdown-it
# also refuses javascript: and data: links by default.
_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False})


def check_content(content: InductionContent) -> None:
    """Refuse a bank or quiz rule that could not work, naming the field."""
    seen: set[str] = set()
    for index, question in enumerate(content.questions):
        where = f"content.questions[{index}]"
        if question.id in seen:
            raise InvalidInput(
                f"{where}.id",
                "unique",
                N_("Two questions have the same id %(id)s."),
                id=question.id,
            )
        seen.add(question.id)
        if any(choice >= len(question.options) for choice in question.correct):
            raise InvalidInput(
                f"{where}.correct",
                "option_exists",
                N_("A correct answer must be one of the question's options."),
            )
        if len(set(question.correct)) != len(question.correct):
            raise InvalidInput(
                f"{where}.correct", "unique", N_("A correct answer is listed twice.")
            )
        if question.kind == "single" and len(question.correct) != 1:
            raise InvalidInput(
                f"{where}.correct",
                "single_answer",
                N_("A single-choice question has exactly one correct answer."),
            )
    if content.draw_count > len(content.questions):
        raise InvalidInput(
            "content.draw_count",
            "max_bank",
            N_("Cannot draw %(count)s questions from a bank of %(bank)s."),
            count=content.draw_count,
            bank=len(content.questions),
        )


def image_ids(content: InductionContent) -> list[uuid.UUID]:
    return [image_id for section in content.sections for image_id in section.image_ids]


def frozen_document(
    *,
    induction_id: uuid.UUID,
    plant_id: uuid.UUID,
    work_type: str | None,
    version: int,
    content: Mapping[str, Any],
    image_digests: Mapping[str, str],
) -> dict[str, Any]:
    """What a version's hash is computed over."""
    return {
        "induction_id": str(induction_id),
        "plant_id": str(plant_id),
        "work_type": work_type,
        "version": version,
        "content": content,
        "images": dict(image_digests),
    }


def content_hash(document: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_json(document)).hexdigest()


def as_content(document: Mapping[str, Any]) -> InductionContent:
    return msgspec.convert(document, InductionContent)


def as_document(content: InductionContent) -> dict[str, Any]:
    return msgspec.to_builtins(content)  # type: ignore[no-any-return]


def render_markdown(text: str) -> str:
    return _markdown.render(text)
