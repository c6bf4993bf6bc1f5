"""SMS behind a provider interface. Chinese SMS gateways (Aliyun, Tencent Cloud) send only
pre-approved templates filled with parameters, so a provider gets the kind and the context as
well as the rendered text; the logging provider of the embedded default uses the text. A
tenant's own Alibaba Cloud or Tencent Cloud account is served by ``infra.notify.sms_gateways``."""

from __future__ import annotations

import logging
import re
import uuid
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from infra.db import utcnow
from infra.notify.message import ChannelName, DeliveryFailed, Notification, Rendered
from infra.settings import Settings

logger = logging.getLogger(__name__)
SMS_PROVIDERS = ("log",)
_PHONE = re.compile(r"^\+?[0-9]{5,20}$")
_PHONE_SEPARATORS = re.compile(r"[\s()-]")


@dataclass(frozen=True)
class SmsMessage:
    tenant_id: uuid.UUID
    phone: str
    text: str
    kind: str
    params: Mapping[str, Any]
    idempotency_key: str


class SmsProvider(Protocol):
    def send(self, message: SmsMessage) -> None:
        """Hand the message to the gateway or raise :class:`DeliveryFailed`."""
        ...


def mask_phone(phone: str) -> str:
    """138****5678: enough to tell numbers apart in a log, not enough to call one."""
    digits = phone.strip()
    if len(digits) <= 7:
        return "*" * len(digits)
    return f"{digits[:3]}{'*' * (len(digits) - 7)}{digits[-4:]}"


@dataclass(frozen=True)
class SentSms:
    message: SmsMessage
    sent_at: datetime


class LoggingSmsProvider:
    """Sends nothing: writes each message to the log and keeps the latest ones in memory, where
    the demo and the tests read them."""

    def __init__(self, keep: int = 1000) -> None:
        self.sent: deque[SentSms] = deque(maxlen=keep)

    def send(self, message: SmsMessage) -> None:
        logger.info(
            "SMS (log provider) to %s [%s]: %s",
            mask_phone(message.phone),
            message.kind,
            message.text,
        )
        self.sent.append(SentSms(message, utcnow()))


def sms_provider_from_settings(settings: Settings) -> SmsProvider:
    if settings.sms_provider == "log":
        return LoggingSmsProvider()
    raise ValueError(
        f"PORTAL_SMS_PROVIDER={settings.sms_provider!r} is not known; choose one of {SMS_PROVIDERS}"
    )


class SmsChannel:
    name = ChannelName.SMS

    def __init__(self, provider: SmsProvider) -> None:
        self.provider = provider

    def send(self, notification: Notification, rendered: Rendered, destination: str) -> None:
        phone = _PHONE_SEPARATORS.sub("", destination)
        if not _PHONE.match(phone):
            raise DeliveryFailed("not a phone number", retryable=False)
        self.provider.send(
            SmsMessage(
                tenant_id=notification.tenant_id,
                phone=phone,
                text=rendered.sms,
                kind=notification.kind.value,
                params=notification.to_payload()["context"],
                idempotency_key=notification.idempotency_key,
            )
        )
