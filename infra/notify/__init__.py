"""Notifications: one interface, three channels (e-mail over SMTP, signed webhooks to generic
receivers or DingTalk/WeCom group robots, SMS through a provider), Chinese and English templates.

Domain code does not send anything itself: it queues a :class:`Notification` in the outbox in
the same transaction as the change (``tenants.notifications.queue_notification``), and the
outbox handlers there resolve the recipient's preferences and deliver, one channel at a time.

Contexts, by kind (times are timezone-aware ``datetime`` or ISO 8601 text and are shown on the
clock named by ``timezone``; labels are display text in the recipient's language):

``approval_requested`` (作业票待审批)
    ``permit_number``, ``work_type`` (e.g. 动火作业), ``plant_name``, ``applicant`` (the
    contractor), ``step`` (the approval step's name); optional ``zone_name``, ``due_at``.
``alert_raised`` (报警)
    ``alert`` (what happened, e.g. 人员离开作业区域), ``plant_name``, ``raised_at``; optional
    ``zone_name``, ``permit_number``, ``person``.
``certificate_expiring`` (证书即将到期)
    ``contractor_name``, ``certificate`` (kind), ``certificate_number``, ``expires_on`` (date),
    ``days_left`` (0 on the day, negative once expired); ``worker_name`` for a worker's
    certificate, left out for a company document (a licence, an insurance policy).
``admission_decided`` (准入审核结果)
    ``contractor_name``, ``decision`` (``approved``, ``rejected``, ``changes_requested``,
    ``suspended`` or ``blacklisted``); optional ``reason``.
``induction_lapsing`` (培训即将到期)
    ``worker_name``, ``contractor_name``, ``induction`` (its title), ``plant_name``,
    ``valid_until`` (date, the last day the signed induction counts), ``days_left``.
``rating_recorded`` (作业评分)
    ``contractor_name``, ``permit_number``, ``work_type``, ``plant_name``, ``rating`` (the
    weighted rating), ``deductions`` (points of the job's confirmed violations), ``score`` (the
    job's score), ``appeal_until`` (the appeal deadline).
``appeal_filed`` (评分申诉)
    ``contractor_name``, ``permit_number``, ``work_type``, ``plant_name``, ``reason`` (the
    appeal's text), ``filed_at``.
``scorecard_issued`` (供应商评价结果)
    ``contractor_name``, ``period_kind`` (``quarter`` or ``year``), ``year``, ``score``,
    ``grade`` (``A`` to ``D``), ``decision`` (``keep``, ``probation``, ``suspend`` or
    ``blacklist``); ``quarter`` (1-4) for a quarterly review; optional ``reason`` (why the
    decision differs from the proposed one); ``url`` links the scorecard PDF.

Every kind also takes optional ``recipient_name`` (filled from the user when the recipient is
one), ``url`` (an absolute link to the record) and ``timezone`` (IANA, default Asia/Shanghai).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache

from infra.notify.email import EmailChannel, SmtpConfig
from infra.notify.message import (
    Channel,
    ChannelName,
    DeliveryFailed,
    Notification,
    NotificationKind,
    Rendered,
)
from infra.notify.render import render_notification
from infra.notify.sms import (
    LoggingSmsProvider,
    SmsChannel,
    SmsMessage,
    SmsProvider,
    sms_provider_from_settings,
)
from infra.notify.sms_gateways import SmsAccount, SmsEndpoints, gateway_provider
from infra.notify.webhook import WebhookChannel, WebhookEndpoint, WebhookFormat
from infra.settings import Settings

__all__ = [
    "Channel",
    "ChannelName",
    "Channels",
    "DeliveryFailed",
    "EmailChannel",
    "LoggingSmsProvider",
    "Notification",
    "NotificationKind",
    "Rendered",
    "SmsAccount",
    "SmsChannel",
    "SmsEndpoints",
    "SmsMessage",
    "SmsProvider",
    "SmtpConfig",
    "WebhookChannel",
    "WebhookEndpoint",
    "WebhookFormat",
    "channels_for",
    "gateway_provider",
    "render_notification",
]


@dataclass(frozen=True)
class Channels:
    """The adapters a worker delivers with; ``email`` is ``None`` when no SMTP host is set.
    ``sms`` is the installation's provider; ``sms_endpoints`` is where a tenant's own gateway
    account is sent to."""

    email: EmailChannel | None
    sms: SmsChannel
    webhook: WebhookChannel
    sms_endpoints: SmsEndpoints = field(default_factory=SmsEndpoints)

    @classmethod
    def from_settings(cls, settings: Settings) -> Channels:
        smtp = SmtpConfig.from_settings(settings)
        return cls(
            email=EmailChannel(smtp) if smtp else None,
            sms=SmsChannel(sms_provider_from_settings(settings)),
            webhook=WebhookChannel(),
            sms_endpoints=SmsEndpoints(
                aliyun=settings.sms_aliyun_endpoint, tencent=settings.sms_tencent_endpoint
            ),
        )


@cache
def channels_for(settings: Settings) -> Channels:
    """One set per process and settings, so the logging SMS provider keeps its record across
    deliveries."""
    return Channels.from_settings(settings)
