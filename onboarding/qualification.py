"""Whether a worker may be named for a kind of work in a time window, and if not, the first rule
that stops them.

The rules are checked in a fixed order, so the answer names the most basic problem first: the
company (admitted, and offering that work), the worker (verified), then their certificates (one
of a kind that qualifies for the work, verified, not expired, valid from the start of the window
to after its end). Dates are compared on the plant's calendar. Expiry is judged here from the
dates themselves, not only from the state the daily watch sets, so a certificate stops counting
on its expiry day even before the watch has run.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from types import MappingProxyType
from typing import Any, Protocol

from infra.i18n import N_, gettext
from onboarding.catalogue import QUALIFYING_CERTIFICATES, WorkType
from onboarding.states import ContractorState, ItemState


class Reason(enum.StrEnum):
    CONTRACTOR_NOT_APPROVED = "contractor_not_approved"
    CONTRACTOR_SUSPENDED = "contractor_suspended"
    CONTRACTOR_BLACKLISTED = "contractor_blacklisted"
    WORK_TYPE_NOT_OFFERED = "work_type_not_offered"
    WORKER_NOT_VERIFIED = "worker_not_verified"
    CERTIFICATE_MISSING = "certificate_missing"
    CERTIFICATE_NOT_VERIFIED = "certificate_not_verified"
    CERTIFICATE_EXPIRED = "certificate_expired"
    CERTIFICATE_NOT_YET_VALID = "certificate_not_yet_valid"
    CERTIFICATE_EXPIRES_BEFORE_END = "certificate_expires_before_end"


MESSAGES = MappingProxyType(
    {
        Reason.CONTRACTOR_NOT_APPROVED: N_("The company has not been admitted."),
        Reason.CONTRACTOR_SUSPENDED: N_("The company's admission is suspended."),
        Reason.CONTRACTOR_BLACKLISTED: N_("The company is blacklisted."),
        Reason.WORK_TYPE_NOT_OFFERED: N_("The company is not registered for this kind of work."),
        Reason.WORKER_NOT_VERIFIED: N_("The worker has not been verified by EHS."),
        Reason.CERTIFICATE_MISSING: N_("The worker has no certificate for this kind of work."),
        Reason.CERTIFICATE_NOT_VERIFIED: N_("The certificate has not been verified by EHS."),
        Reason.CERTIFICATE_EXPIRED: N_("The certificate expired on %(date)s."),
        Reason.CERTIFICATE_NOT_YET_VALID: N_("The certificate is valid only from %(date)s."),
        Reason.CERTIFICATE_EXPIRES_BEFORE_END: N_(
            "The certificate expires on %(date)s, before the work ends."
        ),
    }
)
# How far a certificate got through the checks; the one that got furthest explains the refusal.
_CERTIFICATE_ORDER = (
    Reason.CERTIFICATE_NOT_VERIFIED,
    Reason.CERTIFICATE_EXPIRED,
    Reason.CERTIFICATE_NOT_YET_VALID,
    Reason.CERTIFICATE_EXPIRES_BEFORE_END,
)


class CertificateFacts(Protocol):
    id: uuid.UUID
    kind: str
    state: str
    issued_on: date
    expires_on: date


@dataclass(frozen=True)
class Verdict:
    reason: Reason | None = None
    params: dict[str, Any] = field(default_factory=dict)
    certificate_id: uuid.UUID | None = None

    @property
    def qualified(self) -> bool:
        return self.reason is None

    def message(self) -> str | None:
        """The reason in the current language, or None when qualified."""
        return None if self.reason is None else gettext(MESSAGES[self.reason], **self.params)


def contractor_verdict(state: str, work_types: Iterable[str], work_type: WorkType) -> Verdict:
    if state == ContractorState.SUSPENDED:
        return Verdict(Reason.CONTRACTOR_SUSPENDED)
    if state == ContractorState.BLACKLISTED:
        return Verdict(Reason.CONTRACTOR_BLACKLISTED)
    if state != ContractorState.APPROVED:
        return Verdict(Reason.CONTRACTOR_NOT_APPROVED)
    if work_type.value not in set(work_types):
        return Verdict(Reason.WORK_TYPE_NOT_OFFERED)
    return Verdict()


def certificate_verdict(
    certificate: CertificateFacts, *, first_day: date, last_day: date, today: date
) -> Verdict:
    if certificate.state in (ItemState.PENDING, ItemState.REJECTED):
        return Verdict(Reason.CERTIFICATE_NOT_VERIFIED, certificate_id=certificate.id)
    dated = {"date": certificate.expires_on.isoformat()}
    if certificate.state == ItemState.EXPIRED or certificate.expires_on <= today:
        return Verdict(Reason.CERTIFICATE_EXPIRED, dated, certificate.id)
    if certificate.issued_on > first_day:
        return Verdict(
            Reason.CERTIFICATE_NOT_YET_VALID,
            {"date": certificate.issued_on.isoformat()},
            certificate.id,
        )
    if certificate.expires_on <= last_day:
        return Verdict(Reason.CERTIFICATE_EXPIRES_BEFORE_END, dated, certificate.id)
    return Verdict(certificate_id=certificate.id)


def worker_verdict(
    worker_state: str,
    certificates: Iterable[CertificateFacts],
    work_type: WorkType,
    *,
    first_day: date,
    last_day: date,
    today: date,
) -> Verdict:
    """The worker's verdict once the company has passed; ``first_day`` and ``last_day`` are the
    plant-calendar dates of the window's start and end."""
    if worker_state != ItemState.VERIFIED:
        return Verdict(Reason.WORKER_NOT_VERIFIED)
    kinds = QUALIFYING_CERTIFICATES[work_type]
    if not kinds:
        return Verdict()
    candidates = [
        certificate_verdict(certificate, first_day=first_day, last_day=last_day, today=today)
        for certificate in certificates
        if certificate.kind in kinds
    ]
    if not candidates:
        return Verdict(Reason.CERTIFICATE_MISSING)
    passing = [verdict for verdict in candidates if verdict.qualified]
    if passing:
        return passing[0]
    return max(candidates, key=lambda verdict: _CERTIFICATE_ORDER.index(verdict.reason))  # type: ignore[arg-type]
