"""What every signature keeps, and how it is sealed.

Inductions and briefings are signed the same way: the consent accepted, the typed name matching
the signer, the strokes checked and the image rendered from them stored through the upload
pipeline, the device facts, and a record hash over all of it that the ledger entry written in the
same transaction repeats. The verification page recomputes every part.
"""

from __future__ import annotations

import hashlib
import io
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from infra import audit
from infra.audit import canonical_json
from infra.db import utcnow
from infra.errors import Conflict, InvalidInput
from infra.i18n import N_
from infra.storage import ObjectStorage
from infra.uploads import document_kind, store_upload
from training.models import BriefingSignature, InductionSignature
from training.schemas import SignatureIn
from training.signature import (
    check_strokes,
    render_png,
    same_name,
    strokes_digest,
    strokes_document,
)

REPLAYED = N_("This signature was already given on another record; please sign again.")


@dataclass(frozen=True)
class SigningDevice:
    """Where a signature came from, as the request showed it."""

    ip_address: str | None
    user_agent: str | None


async def signature_evidence(
    session: AsyncSession,
    storage: ObjectStorage,
    *,
    data: SignatureIn,
    expected_name: str,
    content_hash: str,
    signer_user_id: uuid.UUID,
    device: SigningDevice,
) -> dict[str, Any]:
    """The checked, stored evidence common to every signature, ready for its model's fields."""
    if not data.consent:
        raise InvalidInput(
            "consent", "accepted", N_("The consent sentence must be accepted to sign.")
        )
    if not same_name(data.full_name, expected_name):
        raise InvalidInput(
            "full_name",
            "matches_signer",
            N_("Type the signer's full name as registered: %(name)s."),
            name=expected_name,
        )
    check_strokes(data.strokes)
    drawing = strokes_document(data.strokes)
    digest = strokes_digest(drawing)
    for model in (InductionSignature, BriefingSignature):
        if await session.scalar(select(model.id).where(model.strokes_sha256 == digest)):
            raise Conflict("signature.strokes", "not_replayed", REPLAYED)
    image = await store_upload(
        session,
        storage,
        document_kind("signature"),
        io.BytesIO(render_png(drawing)),
        filename="signature.png",
        created_by=signer_user_id,
    )
    position = data.position
    return {
        "signer_user_id": signer_user_id,
        "full_name": data.full_name.strip(),
        "content_hash": content_hash,
        "signed_at": utcnow(),
        "ip_address": device.ip_address,
        "user_agent": (device.user_agent or "")[:400] or None,
        "latitude": position.latitude if position else None,
        "longitude": position.longitude if position else None,
        "accuracy_m": position.accuracy_m if position else None,
        "strokes": drawing,
        "strokes_sha256": digest,
        "image_id": image.id,
        "image_sha256": image.sha256,
    }


EVIDENCE_FIELDS = (
    "signer_user_id",
    "full_name",
    "consent",
    "content_hash",
    "signed_at",
    "ip_address",
    "user_agent",
    "latitude",
    "longitude",
    "accuracy_m",
    "strokes_sha256",
    "image_id",
    "image_sha256",
)


def induction_record_document(signature: InductionSignature) -> dict[str, Any]:
    """What an induction signature's record hash is computed over."""
    return {
        "kind": "induction_signature",
        "tenant_id": signature.tenant_id,
        "id": signature.id,
        "worker_id": signature.worker_id,
        "induction_id": signature.induction_id,
        "version_id": signature.version_id,
        "attempt_id": signature.attempt_id,
        "assisted_by": signature.assisted_by,
        "valid_until": signature.valid_until.isoformat(),
        **{name: getattr(signature, name) for name in EVIDENCE_FIELDS},
    }


def briefing_record_document(signature: BriefingSignature) -> dict[str, Any]:
    return {
        "kind": "briefing_signature",
        "tenant_id": signature.tenant_id,
        "id": signature.id,
        "briefing_id": signature.briefing_id,
        "worker_id": signature.worker_id,
        "device": signature.device,
        **{name: getattr(signature, name) for name in EVIDENCE_FIELDS},
    }


def record_hash(document: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(document)).hexdigest()


async def seal(
    session: AsyncSession,
    signature: InductionSignature | BriefingSignature,
    document: dict[str, Any],
    *,
    action: str,
    subject_type: str,
    payload: dict[str, Any],
) -> None:
    """Hash the record and chain the hash into the ledger, in the signature's transaction."""
    signature.record_hash = record_hash(document)
    entry = await audit.record(
        session,
        action=action,
        subject_type=subject_type,
        subject_id=signature.id,
        actor_id=signature.signer_user_id,
        payload={**payload, "record_hash": signature.record_hash},
    )
    signature.ledger_seq = entry.seq
    session.add(signature)
    try:
        await session.flush()
    except IntegrityError as exc:
        raise Conflict("signature.strokes", "not_replayed", REPLAYED) from exc
