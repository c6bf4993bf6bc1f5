"""The signed induction record: its PDF (Chinese, with the signature image and a QR code) and
the check the QR code's page runs.

The check recomputes, from what is stored now: the version's content hash, the signature's
record hash, the ledger entry that repeats it (and that entry's own link hash), the strokes'
digest, and the signature image's bytes. Any difference means the record, its content or its
image was altered after signing, and the page says "invalid" — without saying which part, which
is for ``portal audit verify`` and the inspector.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import anyio
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from infra.audit import AuditEntry, entry_intact
from infra.documents import render_pdf_cached
from infra.i18n import N_
from infra.qr import VerificationRef, qr_svg, svg_data_uri, verification_url
from infra.settings import Settings
from infra.storage import ObjectNotFound, ObjectStorage
from infra.uploads import StoredObject
from infra.verification import Verdict, VerificationStatus, on_clock, register_verifier
from onboarding.clock import plant_today
from onboarding.models import Contractor, Worker
from onboarding.personal_data import attested_after_erasure
from tenants.models import Plant, Tenant
from training import content as induction_content
from training.evidence import induction_record_document, record_hash
from training.models import Induction, InductionSignature, InductionVersion, QuizAttempt
from training.signature import strokes_digest

SUBJECT_TYPE = "induction_signature"
PDF_TEMPLATE = "induction_record.html"


def signature_ref(signature: InductionSignature) -> VerificationRef:
    return VerificationRef(signature.tenant_id, SUBJECT_TYPE, signature.id, 1)


def record_url(settings: Settings, signature: InductionSignature) -> str:
    return verification_url(settings, signature_ref(signature))


async def _stored_bytes(storage: ObjectStorage, key: str) -> bytes | None:
    try:
        return await anyio.to_thread.run_sync(storage.get, key)
    except ObjectNotFound:
        return None


async def _intact(
    session: AsyncSession, storage: ObjectStorage, signature: InductionSignature
) -> InductionVersion | None:
    """The signed version when every part of the record still matches, else ``None``."""
    version = await session.scalar(
        select(InductionVersion).where(InductionVersion.id == signature.version_id)
    )
    entry = await session.scalar(select(AuditEntry).where(AuditEntry.seq == signature.ledger_seq))
    image = await session.scalar(select(StoredObject).where(StoredObject.id == signature.image_id))
    if version is None or entry is None or image is None:
        return None
    image_bytes = await _stored_bytes(storage, image.key)
    recomputed = record_hash(induction_record_document(signature))
    # Once the signer's personal data is erased, the typed name the hash covers is gone and the
    # strokes and image with it: the erasure's ledger entry attests what the record hashes to.
    erased = recomputed != signature.record_hash and await attested_after_erasure(
        session,
        worker_id=signature.worker_id,
        table=InductionSignature.__tablename__,
        record_id=signature.id,
        record_hash=signature.record_hash,
        recomputed=recomputed,
    )
    checks = (
        induction_content.content_hash(version.content) == version.content_hash,
        version.content_hash == signature.content_hash,
        recomputed == signature.record_hash or erased,
        entry_intact(entry),
        entry.subject_id == str(signature.id),
        entry.payload.get("record_hash") == signature.record_hash,
        erased or strokes_digest(signature.strokes) == signature.strokes_sha256,
        erased
        or (
            image_bytes is not None
            and hashlib.sha256(image_bytes).hexdigest() == signature.image_sha256
        ),
        image.sha256 == signature.image_sha256,
    )
    return version if all(checks) else None


async def verify_signature(
    session: AsyncSession, storage: ObjectStorage, signature_id: uuid.UUID, _version: int
) -> Verdict | None:
    signature = await session.scalar(
        select(InductionSignature).where(InductionSignature.id == signature_id)
    )
    if signature is None:
        return None
    version = await _intact(session, storage, signature)
    if version is None:
        return Verdict(VerificationStatus.INVALID, title=N_("Induction record"))
    induction = (
        await session.execute(select(Induction).where(Induction.id == signature.induction_id))
    ).scalar_one()
    if signature.valid_until < plant_today():
        status = VerificationStatus.EXPIRED
    elif induction.current_version != version.version:
        status = VerificationStatus.SUPERSEDED
    else:
        status = VerificationStatus.VALID
    timezone = (
        # The frozen document holds the id as text; the column compares UUIDs.
        await session.scalar(
            select(Plant.timezone).where(Plant.id == uuid.UUID(version.content["plant_id"]))
        )
    ) or "UTC"
    return Verdict(
        status,
        title=N_("Induction record"),
        timezone=timezone,
        facts=[
            (N_("Induction"), version.content["content"]["title"]),
            (N_("Version"), str(version.version)),
            (N_("Signed by"), signature.full_name),
            (N_("Signed at"), on_clock(signature.signed_at, timezone)),
            (N_("Valid until"), signature.valid_until.isoformat()),
            (N_("Content SHA-256"), signature.content_hash),
            (N_("Record SHA-256"), signature.record_hash),
        ],
    )


register_verifier(SUBJECT_TYPE, verify_signature)


def _local(moment: datetime, zone: str) -> str:
    return moment.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M")


async def record_context(
    session: AsyncSession,
    storage: ObjectStorage,
    settings: Settings,
    signature: InductionSignature,
) -> dict[str, Any]:
    """What the PDF shows; everything is text or a data URI, so the cached PDF's key changes
    exactly when the record does."""
    version = (
        await session.execute(
            select(InductionVersion).where(InductionVersion.id == signature.version_id)
        )
    ).scalar_one()
    attempt = (
        await session.execute(select(QuizAttempt).where(QuizAttempt.id == signature.attempt_id))
    ).scalar_one()
    worker, contractor = (
        await session.execute(
            select(Worker, Contractor)
            .join(Contractor, Contractor.id == Worker.contractor_id)
            .where(Worker.id == signature.worker_id)
        )
    ).one()
    plant = (
        # The frozen document holds the id as text; the column compares UUIDs.
        await session.execute(
            select(Plant).where(Plant.id == uuid.UUID(version.content["plant_id"]))
        )
    ).scalar_one()
    tenant = (
        await session.execute(select(Tenant).where(Tenant.id == signature.tenant_id))
    ).scalar_one()
    image = (
        await session.execute(select(StoredObject).where(StoredObject.id == signature.image_id))
    ).scalar_one()
    image_bytes = await _stored_bytes(storage, image.key) or b""
    url = record_url(settings, signature)
    content = version.content["content"]
    position = None
    if signature.latitude is not None and signature.longitude is not None:
        accuracy = signature.accuracy_m or 0
        position = f"{signature.latitude:.6f}, {signature.longitude:.6f} (±{accuracy:.0f} m)"
    return {
        "company_name": tenant.name,
        "plant_name": plant.name,
        "title": content["title"],
        "version": version.version,
        "published_at": _local(version.published_at, plant.timezone),
        "content_hash": version.content_hash,
        "sections": [section["title"] for section in content["sections"]],
        "worker_name": worker.name,
        "id_number_masked": worker.id_number_masked,
        "contractor_name": contractor.name,
        "score": attempt.score,
        "pass_mark": content["pass_mark"],
        "questions": len(attempt.drawn),
        "typed_name": signature.full_name,
        "consent": signature.consent,
        "signed_at": _local(signature.signed_at, plant.timezone),
        "timezone": plant.timezone,
        "valid_until": signature.valid_until.isoformat(),
        "assisted": signature.assisted_by is not None,
        "ip_address": signature.ip_address or "",
        "user_agent": signature.user_agent or "",
        "position": position,
        "record_hash": signature.record_hash,
        "ledger_seq": signature.ledger_seq,
        "signature_data_uri": "data:image/png;base64," + base64.b64encode(image_bytes).decode(),
        "qr_data_uri": svg_data_uri(qr_svg(url)),
        "verification_url": url,
    }


async def record_pdf(
    session: AsyncSession,
    storage: ObjectStorage,
    settings: Settings,
    signature: InductionSignature,
) -> bytes:
    context = await record_context(session, storage, settings, signature)
    _, pdf = await anyio.to_thread.run_sync(
        render_pdf_cached, storage, signature.tenant_id, PDF_TEMPLATE, context
    )
    return pdf
