"""Who gets a notification on which channel, and the outbox handlers that deliver it.

Domain code calls :func:`queue_notification` in the transaction of the change. The outbox then
runs two handlers:

* ``notification`` resolves the recipient (their preferences, language, address and phone) and
  the tenant's webhooks, and queues one ``notification.delivery`` message per channel and
  destination, in the same transaction that marks the notification delivered;
* ``notification.delivery`` sends on that one channel, and raises :class:`DeliveryFailed` when it
  could not, so the outbox retries it with backoff.

Splitting per channel is what keeps retries honest: when the DingTalk robot is down, the outbox
retries the robot alone, and the e-mail and SMS that already went out are not sent again. Each
channel is told the notification's idempotency key (Message-ID, ``X-Portal-Delivery``, the SMS
provider's id) so a receiver can drop the duplicate of an attempt that was cut off half-way.

:func:`dispatch` does the same in one call without the outbox, for a caller that needs the
per-channel results at once.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from infra import audit, outbox
from infra.errors import Conflict, InvalidInput, NotFound
from infra.field_encryption import FieldDecryptionError, field_cipher
from infra.i18n import N_
from infra.notify import (
    ChannelName,
    Channels,
    DeliveryFailed,
    Notification,
    NotificationKind,
    Rendered,
    WebhookEndpoint,
    WebhookFormat,
    channels_for,
    render_notification,
)
from infra.notify.email import EmailChannel, SmtpConfig
from infra.notify.sms import SmsChannel, mask_phone
from infra.notify.sms_gateways import SMS_VENDORS, SmsAccount, gateway_provider
from infra.security import new_secret
from infra.tasks import worker_settings
from infra.tenancy import TenantMismatch, current_tenant_id
from tenants.models import (
    NotificationChannelSettings,
    NotificationPreference,
    NotificationWebhook,
    Tenant,
    User,
)
from tenants.services import channel_secret_context, get_user

logger = logging.getLogger(__name__)

ALL_KINDS = "*"
NOTIFICATION_TOPIC = "notification"
DELIVERY_TOPIC = "notification.delivery"


@dataclass(frozen=True)
class ChannelChoice:
    email: bool
    sms: bool
    webhook: bool


# With no preference row a user gets e-mail and SMS; posting their notifications to the group
# robots is something they turn on.
DEFAULT_CHOICE = ChannelChoice(email=True, sms=True, webhook=False)


class DeliveryStatus(enum.StrEnum):
    SENT = "sent"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class Delivery:
    """One channel to one destination: an e-mail address, a phone number or a webhook's id."""

    channel: ChannelName
    destination: str
    label: str


@dataclass(frozen=True)
class DeliveryResult:
    channel: ChannelName
    destination: str
    status: DeliveryStatus
    retryable: bool = False
    detail: str = ""


def _check_tenant(notification: Notification) -> None:
    if notification.tenant_id != current_tenant_id():
        raise TenantMismatch(
            f"notification of tenant {notification.tenant_id} handled in scope of "
            f"{current_tenant_id()}"
        )


def preference_for(session: Session, user_id: uuid.UUID, kind: NotificationKind) -> ChannelChoice:
    rows = session.execute(
        select(NotificationPreference).where(
            NotificationPreference.user_id == user_id,
            NotificationPreference.kind.in_((kind.value, ALL_KINDS)),
        )
    ).scalars()
    by_kind = {row.kind: row for row in rows}
    row = by_kind.get(kind.value) or by_kind.get(ALL_KINDS)
    if row is None:
        return DEFAULT_CHOICE
    return ChannelChoice(email=row.email, sms=row.sms, webhook=row.webhook)


def webhooks_for(session: Session, kind: NotificationKind) -> list[NotificationWebhook]:
    """The tenant's enabled webhooks that take this kind (an empty list of kinds takes all)."""
    rows = session.execute(
        select(NotificationWebhook)
        .where(NotificationWebhook.enabled.is_(True))
        .order_by(NotificationWebhook.name)
    ).scalars()
    return [row for row in rows if not row.kinds or kind.value in row.kinds]


def _webhook_deliveries(session: Session, kind: NotificationKind) -> list[Delivery]:
    return [
        Delivery(ChannelName.WEBHOOK, str(row.id), f"webhook {row.name}")
        for row in webhooks_for(session, kind)
    ]


def _tenant_smtp(session: Session) -> NotificationChannelSettings | None:
    row = session.scalar(select(NotificationChannelSettings))
    return row if row is not None and row.smtp_host else None


def _channel_secret(encrypted: str, name: str, what: str) -> str:
    """A secret of the tenant's own channel account; one that no longer decrypts (the key was
    replaced) fails the delivery for good, naming it, until the administrator enters it again."""
    try:
        return field_cipher(worker_settings()).decrypt(
            encrypted, context=channel_secret_context(name)
        )
    except FieldDecryptionError as exc:
        raise DeliveryFailed(
            f"the tenant's {what} does not decrypt: enter it again", retryable=False
        ) from exc


def email_channel_for(session: Session, channels: Channels) -> EmailChannel | None:
    """The tenant's own SMTP server when its administrator set one, else the installation's
    (``None``: e-mail is off)."""
    row = _tenant_smtp(session)
    if row is None or row.smtp_host is None:
        return channels.email
    password = ""
    if row.smtp_password_encrypted:
        password = _channel_secret(row.smtp_password_encrypted, "smtp_password", "SMTP password")
    return EmailChannel(
        SmtpConfig(
            host=row.smtp_host,
            port=row.smtp_port or 587,
            from_address=row.smtp_from or "",
            username=row.smtp_username or "",
            password=password,
            starttls=row.smtp_starttls,
        )
    )


def sms_channel_for(session: Session, channels: Channels) -> SmsChannel:
    """The tenant's own Alibaba Cloud or Tencent Cloud SMS account when its administrator set
    one, else the installation's provider. An account that cannot be used as stored (a secret
    that does not decrypt, a Tencent Cloud account without its SDK AppID) fails the delivery for
    good: retrying does not mend it, the administrator does."""
    row = session.scalar(select(NotificationChannelSettings))
    if row is None or not row.sms_provider:
        return channels.sms
    vendor = row.sms_provider
    if vendor not in SMS_VENDORS:
        raise DeliveryFailed(f"the tenant's SMS provider {vendor!r} is not known", retryable=False)
    if not (row.sms_sign_name and row.sms_template_id and row.sms_access_key_id):
        raise DeliveryFailed(
            "the tenant's SMS account lacks its signature, template or access key",
            retryable=False,
        )
    if vendor == "tencent" and not row.sms_app_id:
        raise DeliveryFailed(
            "the tenant's Tencent Cloud SMS account lacks its SDK AppID: enter it on the "
            "channels page",
            retryable=False,
        )
    if not row.sms_secret_encrypted:
        raise DeliveryFailed("the tenant's SMS account has no secret stored", retryable=False)
    secret = _channel_secret(row.sms_secret_encrypted, "sms_secret", "SMS secret")
    account = SmsAccount(
        vendor=vendor,
        sign_name=row.sms_sign_name,
        template_id=row.sms_template_id,
        access_key_id=row.sms_access_key_id,
        secret=secret,
        app_id=row.sms_app_id or "",
    )
    return SmsChannel(gateway_provider(account, channels.sms_endpoints))


def plan(
    session: Session, notification: Notification, channels: Channels
) -> tuple[Notification, list[Delivery], list[DeliveryResult]]:
    """The notification with the recipient's language and name filled in, the deliveries to
    make, and the channels skipped (turned off, or no address to send to)."""
    _check_tenant(notification)
    deliveries: list[Delivery] = []
    skipped: list[DeliveryResult] = []
    email, phone = notification.recipient_email, notification.recipient_phone
    want = ChannelChoice(email=bool(email), sms=bool(phone), webhook=notification.recipient is None)
    if isinstance(notification.recipient, uuid.UUID):
        user = session.execute(
            select(User).where(User.id == notification.recipient)
        ).scalar_one_or_none()
        if user is None or not user.is_active:
            logger.info(
                "notification %s: recipient %s is gone or disabled",
                notification.idempotency_key,
                notification.recipient,
            )
            return notification, [], []
        want = preference_for(session, user.id, notification.kind)
        email, phone = user.email, user.phone
        context = {"recipient_name": user.name, **notification.context}
        notification = dataclasses.replace(
            notification, locale=notification.locale or user.locale, context=context
        )
    if want.email:
        if channels.email is None and _tenant_smtp(session) is None:
            skipped.append(_skip(ChannelName.EMAIL, email or "", "e-mail is off"))
        elif email:
            deliveries.append(Delivery(ChannelName.EMAIL, email, email))
    if want.sms:
        if phone:
            deliveries.append(Delivery(ChannelName.SMS, phone, mask_phone(phone)))
        else:
            skipped.append(_skip(ChannelName.SMS, "", "no phone number"))
    if want.webhook:
        deliveries.extend(_webhook_deliveries(session, notification.kind))
    return notification, deliveries, skipped


def _skip(channel: ChannelName, destination: str, why: str) -> DeliveryResult:
    return DeliveryResult(channel, destination, DeliveryStatus.SKIPPED, detail=why)


def _endpoint(session: Session, webhook_id: str) -> WebhookEndpoint | None:
    row = session.execute(
        select(NotificationWebhook).where(NotificationWebhook.id == uuid.UUID(webhook_id))
    ).scalar_one_or_none()
    if row is None or not row.enabled:
        return None
    return WebhookEndpoint(url=row.url, format=WebhookFormat(row.format), secret=row.secret)


def send(
    session: Session,
    notification: Notification,
    rendered: Rendered,
    delivery: Delivery,
    channels: Channels,
) -> DeliveryStatus:
    """Deliver on one channel; raises :class:`DeliveryFailed`. A webhook disabled or removed
    since the delivery was planned is skipped."""
    if delivery.channel is ChannelName.EMAIL:
        email = email_channel_for(session, channels)
        if email is None:
            return DeliveryStatus.SKIPPED
        email.send(notification, rendered, delivery.destination)
    elif delivery.channel is ChannelName.SMS:
        sms_channel_for(session, channels).send(notification, rendered, delivery.destination)
    else:
        endpoint = _endpoint(session, delivery.destination)
        if endpoint is None:
            return DeliveryStatus.SKIPPED
        channels.webhook.send(notification, rendered, endpoint)
    return DeliveryStatus.SENT


def dispatch(
    session: Session, notification: Notification, channels: Channels | None = None
) -> list[DeliveryResult]:
    """Send the notification now on every channel the recipient and the tenant enabled; one
    result per channel and destination. A failing channel does not stop the others."""
    channels = channels or channels_for(worker_settings())
    resolved, deliveries, results = plan(session, notification, channels)
    if not deliveries:
        return results
    rendered = render_notification(resolved)
    for delivery in deliveries:
        try:
            status = send(session, resolved, rendered, delivery, channels)
        except DeliveryFailed as exc:
            logger.warning(
                "notification %s on %s to %s failed: %s",
                resolved.idempotency_key,
                delivery.channel,
                delivery.label,
                exc,
            )
            results.append(
                DeliveryResult(
                    delivery.channel,
                    delivery.label,
                    DeliveryStatus.FAILED,
                    retryable=exc.retryable,
                    detail=str(exc),
                )
            )
            continue
        results.append(DeliveryResult(delivery.channel, delivery.label, status))
    return results


def _outbox_key(*parts: str) -> str:
    # Idempotency keys may be up to 200 characters, as may outbox keys; a digest always fits.
    return "notify:" + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def portal_url(path: str) -> str:
    """``path`` as an absolute link, for a notification followed from an e-mail, an SMS or a
    chat robot: it carries the portal's address as configured for the process that sends it."""
    return worker_settings().base_url.rstrip("/") + path


def tenant_url(session: Session, path: str) -> str:
    """:func:`portal_url` of ``path`` under the current tenant's address (``/t/{slug}``)."""
    slug = session.execute(select(Tenant.slug).where(Tenant.id == current_tenant_id())).scalar_one()
    return portal_url(f"/t/{slug}{path}")


def enqueue_notification(session: Session, notification: Notification) -> outbox.OutboxMessage:
    """Queue the notification in the caller's transaction; the same idempotency key twice
    queues it once. The synchronous form, for tasks and for state changes they share with
    request handlers."""
    _check_tenant(notification)
    return outbox.enqueue(
        session,
        topic=NOTIFICATION_TOPIC,
        payload=notification.to_payload(),
        key=_outbox_key(notification.idempotency_key),
    )


async def queue_notification(
    session: AsyncSession, notification: Notification
) -> outbox.OutboxMessage:
    """The async form of :func:`enqueue_notification`, for request handlers."""
    return await session.run_sync(
        lambda sync_session: enqueue_notification(sync_session, notification)
    )


def _fan_out(session: Session, message: outbox.OutboxMessage) -> None:
    notification = Notification.from_payload(message.payload)
    resolved, deliveries, skipped = plan(session, notification, channels_for(worker_settings()))
    for result in skipped:
        logger.info(
            "notification %s: %s skipped (%s)",
            notification.idempotency_key,
            result.channel,
            result.detail,
        )
    for delivery in deliveries:
        outbox.enqueue(
            session,
            topic=DELIVERY_TOPIC,
            payload={
                "notification": resolved.to_payload(),
                "channel": delivery.channel.value,
                "destination": delivery.destination,
                "label": delivery.label,
            },
            key=_outbox_key(notification.idempotency_key, delivery.channel, delivery.destination),
        )


def _deliver(session: Session, message: outbox.OutboxMessage) -> None:
    payload = message.payload
    notification = Notification.from_payload(payload["notification"])
    _check_tenant(notification)
    delivery = Delivery(ChannelName(payload["channel"]), payload["destination"], payload["label"])
    send(
        session,
        notification,
        render_notification(notification),
        delivery,
        channels_for(worker_settings()),
    )


outbox.register_handler(NOTIFICATION_TOPIC, _fan_out)
outbox.register_handler(DELIVERY_TOPIC, _deliver)


def _check_kind(kind: str, field_name: str) -> None:
    if kind != ALL_KINDS and kind not in NotificationKind.__members__.values():
        raise InvalidInput(field_name, "choice", N_("Not a notification kind."))


async def set_notification_preference(
    session: AsyncSession,
    *,
    user_id: uuid.UUID,
    kind: str = ALL_KINDS,
    email: bool,
    sms: bool,
    webhook: bool,
    actor_id: uuid.UUID | None = None,
) -> NotificationPreference:
    """Choose a user's channels for one kind, or for every kind with ``*``."""
    _check_kind(kind, "kind")
    await get_user(session, user_id)
    row = (
        await session.execute(
            select(NotificationPreference).where(
                NotificationPreference.user_id == user_id, NotificationPreference.kind == kind
            )
        )
    ).scalar_one_or_none()
    if row is None:
        row = NotificationPreference(user_id=user_id, kind=kind)
        session.add(row)
    row.email, row.sms, row.webhook = email, sms, webhook
    await session.flush()
    await audit.record(
        session,
        action="notification_preference.set",
        subject_type="user",
        subject_id=user_id,
        actor_id=actor_id,
        payload={"kind": kind, "email": email, "sms": sms, "webhook": webhook},
    )
    return row


def _check_webhook_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname or len(url) > 1000:
        raise InvalidInput("url", "url", N_("Enter an http:// or https:// address."))


async def add_notification_webhook(
    session: AsyncSession,
    *,
    name: str,
    url: str,
    format: WebhookFormat | str,
    secret: str | None = None,
    kinds: Iterable[str] = (),
    actor_id: uuid.UUID | None = None,
) -> tuple[NotificationWebhook, str]:
    """Add a webhook; returns it with its signing secret, which is shown to the admin this once.

    A generic webhook gets a new secret unless one is given; a DingTalk robot takes the SEC…
    secret of its 加签 setting (or none, when it checks keywords or addresses instead); a WeCom
    robot has no secret, its key is in the URL.
    """
    _check_webhook_url(url)
    try:
        webhook_format = WebhookFormat(format)
    except ValueError as exc:
        raise InvalidInput("format", "choice", N_("Choose generic, dingtalk or wecom.")) from exc
    kinds = sorted(set(kinds))
    for kind in kinds:
        _check_kind(kind, "kinds")
    if webhook_format is WebhookFormat.GENERIC:
        secret = secret or new_secret()
    elif webhook_format is WebhookFormat.WECOM:
        secret = ""
    secret = secret or ""
    if len(secret) > 200:
        raise InvalidInput("secret", "max_length", N_("At most %(limit)s characters."), limit=200)
    exists = await session.execute(
        select(NotificationWebhook.id).where(NotificationWebhook.name == name)
    )
    if exists.first():
        raise Conflict("name", "unique", N_("A webhook with this name already exists."))
    webhook = NotificationWebhook(
        name=name, url=url, format=webhook_format.value, secret=secret, kinds=kinds
    )
    session.add(webhook)
    await session.flush()
    await audit.record(
        session,
        action="notification_webhook.added",
        subject_type="notification_webhook",
        subject_id=webhook.id,
        actor_id=actor_id,
        # The URL's path and query carry robot access tokens; the ledger keeps the host only.
        payload={
            "name": name,
            "format": webhook_format.value,
            "host": urlsplit(url).hostname,
            "kinds": kinds,
            "signed": bool(secret),
        },
    )
    return webhook, secret


async def list_notification_webhooks(session: AsyncSession) -> list[NotificationWebhook]:
    query = select(NotificationWebhook).order_by(NotificationWebhook.name)
    return list((await session.execute(query)).scalars())


async def remove_notification_webhook(
    session: AsyncSession, webhook_id: uuid.UUID, *, actor_id: uuid.UUID | None = None
) -> None:
    """Remove a webhook; deliveries already planned for it are skipped (see :func:`send`)."""
    webhook = await session.scalar(
        select(NotificationWebhook).where(NotificationWebhook.id == webhook_id)
    )
    if webhook is None:
        raise NotFound(N_("Webhook not found."))
    payload = {
        "name": webhook.name,
        "format": webhook.format,
        "host": urlsplit(webhook.url).hostname,
    }
    await session.delete(webhook)
    await session.flush()
    await audit.record(
        session,
        action="notification_webhook.removed",
        subject_type="notification_webhook",
        subject_id=webhook_id,
        actor_id=actor_id,
        payload=payload,
    )
