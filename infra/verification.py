"""What a scanned QR code answers: the live status of the record its signed link names.

Domain packages register a verifier per subject type (``permit``, ``training_signature`` …).
A verifier looks the record up inside the tenant named by the link and says how it stands now;
the page shows that to whoever scanned it, signed in or not. Anything that does not check out —
a forged or altered token, an unknown subject type, a record that is gone or was revoked — is
"invalid", and the page says so without telling which.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from infra.i18n import N_
from infra.qr import VerificationRef, read_verification_token
from infra.security import InvalidSignedToken
from infra.settings import Settings
from infra.storage import ObjectStorage
from infra.tenancy import tenant_scope


class VerificationStatus(enum.StrEnum):
    VALID = "valid"
    NOT_STARTED = "not_started"
    SUSPENDED = "suspended"
    EXPIRED = "expired"
    CLOSED = "closed"
    SUPERSEDED = "superseded"
    INVALID = "invalid"


STATUS_LABELS = {
    VerificationStatus.VALID: N_("Valid"),
    VerificationStatus.NOT_STARTED: N_("Not started"),
    VerificationStatus.SUSPENDED: N_("Suspended"),
    VerificationStatus.EXPIRED: N_("Expired"),
    VerificationStatus.CLOSED: N_("Closed"),
    VerificationStatus.SUPERSEDED: N_("Superseded by a newer version"),
    VerificationStatus.INVALID: N_("Invalid"),
}


@dataclass(frozen=True)
class Verdict:
    """How a record stands. ``title`` and fact labels are msgids; values are shown as they are."""

    status: VerificationStatus
    title: str = ""
    facts: list[tuple[str, str]] = field(default_factory=list)
    # The clock of the record's place (an IANA name): its times, and the moment of the check,
    # are shown on it.
    timezone: str = "UTC"


def on_clock(moment: datetime, zone: str) -> str:
    """``moment`` on the clock of ``zone``, with the clock's offset from UTC: whoever checks a
    printout at the gate compares it with their watch, and may not know the zone by name."""
    local = moment.astimezone(ZoneInfo(zone))
    minutes = int((local.utcoffset() or timedelta(0)).total_seconds()) // 60
    sign = "+" if minutes >= 0 else "-"
    hours, rest = divmod(abs(minutes), 60)
    return f"{local:%Y-%m-%d %H:%M} (UTC{sign}{hours:02d}:{rest:02d})"


INVALID = Verdict(VerificationStatus.INVALID)

Verifier = Callable[[AsyncSession, ObjectStorage, uuid.UUID, int], Awaitable[Verdict | None]]
_verifiers: dict[str, Verifier] = {}


def register_verifier(subject_type: str, verifier: Verifier) -> None:
    """``verifier(session, storage, subject_id, printed_version)`` runs in the record's tenant
    scope and answers ``None`` when there is no such record (or it was revoked). The storage lets
    a verifier re-hash the stored files a record binds, such as a signature image."""
    if subject_type in _verifiers and _verifiers[subject_type] is not verifier:
        raise ValueError(f"a verifier for {subject_type!r} is already registered")
    _verifiers[subject_type] = verifier


async def verify_token(
    session: AsyncSession, storage: ObjectStorage, settings: Settings, token: str
) -> Verdict:
    try:
        ref = read_verification_token(settings, token)
    except InvalidSignedToken:
        return INVALID
    return await verify(session, storage, ref)


async def verify(session: AsyncSession, storage: ObjectStorage, ref: VerificationRef) -> Verdict:
    verifier = _verifiers.get(ref.subject_type)
    if verifier is None:
        return INVALID
    with tenant_scope(ref.tenant_id):
        verdict = await verifier(session, storage, ref.subject_id, ref.version)
    return verdict or INVALID
