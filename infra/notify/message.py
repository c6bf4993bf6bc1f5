"""The values every channel shares: what to send, how it reads, and how a delivery fails."""

from __future__ import annotations

import enum
import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any, Protocol, TypeVar

from infra.i18n import SUPPORTED_LOCALES

_TEMPLATE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


def _json_default(value: Any) -> Any:
    """Times become ISO 8601 text, which the templates' time filters read back."""
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, uuid.UUID | Decimal):
        return str(value)
    raise TypeError(f"cannot put {type(value).__name__} in a notification context")


class NotificationKind(enum.StrEnum):
    APPROVAL_REQUESTED = "approval_requested"
    ALERT_RAISED = "alert_raised"
    CERTIFICATE_EXPIRING = "certificate_expiring"
    ADMISSION_DECIDED = "admission_decided"
    INDUCTION_LAPSING = "induction_lapsing"
    RATING_RECORDED = "rating_recorded"
    APPEAL_FILED = "appeal_filed"
    SCORECARD_ISSUED = "scorecard_issued"
    EMAIL_VERIFICATION = "email_verification"
    USER_INVITED = "user_invited"


class ChannelName(enum.StrEnum):
    EMAIL = "email"
    SMS = "sms"
    WEBHOOK = "webhook"


@dataclass(frozen=True)
class Notification:
    """One message for one recipient.

    ``recipient`` is a user id (channels follow the user's preferences), an e-mail address, a
    phone number, or ``None`` for the tenant's group robots only. ``locale`` ``None`` means the
    recipient's own language. The outbox queues one ``idempotency_key`` once, and every
    channel passes it on (Message-ID, ``X-Portal-Delivery``, the SMS provider) so a receiver can
    drop the duplicate of a delivery that was retried.
    """

    tenant_id: uuid.UUID
    kind: NotificationKind
    context: Mapping[str, Any]
    idempotency_key: str
    recipient: uuid.UUID | str | None = None
    locale: str | None = None
    template: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", NotificationKind(self.kind))
        if self.template is not None and not _TEMPLATE_NAME.match(self.template):
            raise ValueError(f"not a template name: {self.template!r}")
        if self.locale is not None and self.locale not in SUPPORTED_LOCALES:
            raise ValueError(f"unsupported locale {self.locale!r}")
        if not self.idempotency_key or len(self.idempotency_key) > 200:
            raise ValueError("idempotency_key must be 1 to 200 characters")
        if isinstance(self.recipient, str) and not self.recipient.strip():
            raise ValueError("an address recipient must not be blank")

    @property
    def template_name(self) -> str:
        return self.template or self.kind.value

    @property
    def recipient_email(self) -> str | None:
        if isinstance(self.recipient, str) and "@" in self.recipient:
            return self.recipient
        return None

    @property
    def recipient_phone(self) -> str | None:
        if isinstance(self.recipient, str) and "@" not in self.recipient:
            return self.recipient
        return None

    def to_payload(self) -> dict[str, Any]:
        """A JSON-safe form for the outbox; :meth:`from_payload` reads it back."""
        return {
            "tenant_id": str(self.tenant_id),
            "kind": self.kind.value,
            "template": self.template,
            "context": json.loads(json.dumps(dict(self.context), default=_json_default)),
            "idempotency_key": self.idempotency_key,
            "recipient": str(self.recipient) if self.recipient is not None else None,
            "recipient_is_user": isinstance(self.recipient, uuid.UUID),
            "locale": self.locale,
        }

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> Notification:
        recipient = payload.get("recipient")
        if recipient is not None and payload.get("recipient_is_user"):
            recipient = uuid.UUID(recipient)
        return cls(
            tenant_id=uuid.UUID(payload["tenant_id"]),
            kind=NotificationKind(payload["kind"]),
            context=payload.get("context") or {},
            idempotency_key=payload["idempotency_key"],
            recipient=recipient,
            locale=payload.get("locale"),
            template=payload.get("template"),
        )


@dataclass(frozen=True)
class Rendered:
    """One notification written out for every channel: e-mail subject, plain text and HTML,
    Markdown for the chat robots, and a short SMS text."""

    subject: str
    text: str
    html: str
    markdown: str
    sms: str = field(default="")


class DeliveryFailed(Exception):
    """A channel could not deliver. ``retryable`` says whether trying again later can help
    (timeouts, 5xx, a busy server) or not (a refused address, a 4xx, a wrong secret)."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


DestinationT_contra = TypeVar("DestinationT_contra", contravariant=True)


class Channel(Protocol[DestinationT_contra]):
    """An adapter that delivers a rendered notification to one destination (an e-mail address,
    a phone number, a webhook endpoint) or raises :class:`DeliveryFailed`."""

    name: ChannelName

    def send(
        self, notification: Notification, rendered: Rendered, destination: DestinationT_contra
    ) -> None: ...
