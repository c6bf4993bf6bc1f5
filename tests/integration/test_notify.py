"""Notifications end to end over real sockets: an SMTP server (aiosmtpd) and an HTTP receiver on
loopback, the preferences and webhooks in the database (PostgreSQL under RLS too), and the outbox
handlers retrying one failed channel without repeating the others."""

from __future__ import annotations

import base64
import dataclasses
import email
import hashlib
import hmac
import json
import re
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from email import policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote_plus, urlsplit

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select, update

from infra.audit import AuditEntry
from infra.db import Database
from infra.errors import InvalidInput
from infra.notify import (
    ChannelName,
    Channels,
    DeliveryFailed,
    EmailChannel,
    LoggingSmsProvider,
    Notification,
    NotificationKind,
    SmsChannel,
    SmtpConfig,
    WebhookChannel,
    WebhookEndpoint,
    WebhookFormat,
    channels_for,
    render_notification,
)
from infra.outbox import OutboxMessage, OutboxStatus, deliver_outbox_message
from infra.tasks import worker_settings
from infra.tenancy import tenant_scope
from tenants import notifications
from tenants.models import Role, User
from tenants.notifications import DeliveryStatus
from tests.factories import TenantFactory

SIGNATURE_TOLERANCE_SECONDS = 300
CJK = re.compile(r"[\u4e00-\u9fff]")

APPROVAL_CONTEXT: dict[str, Any] = {
    "permit_number": "DH-20261128-0007",
    "work_type": "动火作业",
    "plant_name": "一厂",
    "zone_name": "罐区 A",
    "applicant": "华东安装工程有限公司",
    "step": "安全管理部门审批",
    "due_at": datetime(2026, 11, 28, 8, 30, tzinfo=UTC),
    "url": "https://portal.example.cn/t/demo/permits/7",
}
CONTEXTS: dict[NotificationKind, dict[str, Any]] = {
    NotificationKind.APPROVAL_REQUESTED: APPROVAL_CONTEXT,
    NotificationKind.ALERT_RAISED: {
        "alert": "人员离开作业区域",
        "plant_name": "一厂",
        "raised_at": "2026-11-28T08:00:00+00:00",
        "person": "李四",
    },
    NotificationKind.CERTIFICATE_EXPIRING: {
        "worker_name": "王五",
        "contractor_name": "华东安装",
        "certificate": "特种作业操作证（焊接与热切割）",
        "certificate_number": "T320100198001011234",
        "expires_on": date(2026, 12, 5),
        "days_left": 7,
    },
    NotificationKind.ADMISSION_DECIDED: {
        "contractor_name": "华东安装",
        "decision": "rejected",
        "reason": "安全生产许可证已过期",
    },
    NotificationKind.INDUCTION_LAPSING: {
        "worker_name": "张三",
        "contractor_name": "华东安装",
        "induction": "入厂安全教育",
        "plant_name": "一厂",
        "valid_until": date(2026, 12, 1),
        "days_left": 3,
    },
    NotificationKind.RATING_RECORDED: {
        "contractor_name": "华东安装",
        "permit_number": "DH-20261128-0007",
        "work_type": "动火作业 · 二级",
        "plant_name": "一厂",
        "rating": "85.25",
        "deductions": "8",
        "score": "77.25",
        "appeal_until": datetime(2026, 12, 5, 8, 0, tzinfo=UTC),
    },
    NotificationKind.APPEAL_FILED: {
        "contractor_name": "华东安装",
        "permit_number": "DH-20261128-0007",
        "work_type": "动火作业 · 二级",
        "plant_name": "一厂",
        "reason": "焊口质量已复检合格",
        "filed_at": datetime(2026, 11, 29, 2, 0, tzinfo=UTC),
    },
    NotificationKind.SCORECARD_ISSUED: {
        "contractor_name": "华东安装",
        "period_kind": "quarter",
        "year": 2026,
        "quarter": 4,
        "score": "84.5",
        "grade": "B",
        "decision": "keep",
    },
    NotificationKind.EMAIL_VERIFICATION: {
        "tenant_name": "华东化工集团",
        "url": "https://portal.example.cn/t/demo/verify-email/abc",
        "expires_at": datetime(2026, 11, 30, 8, 0, tzinfo=UTC),
    },
    NotificationKind.USER_INVITED: {
        "tenant_name": "华东化工集团",
        "inviter": "张三",
        "role": "ehs_officer",
        "plant_name": "一厂",
        "url": "https://portal.example.cn/t/demo/invitations/abc",
        "expires_at": datetime(2026, 12, 5, 8, 0, tzinfo=UTC),
    },
}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _notification(
    tenant_id: uuid.UUID | None = None,
    kind: NotificationKind = NotificationKind.APPROVAL_REQUESTED,
    **overrides: Any,
) -> Notification:
    values: dict[str, Any] = {
        "tenant_id": tenant_id or uuid.uuid4(),
        "kind": kind,
        "context": CONTEXTS[kind],
        "idempotency_key": f"test:{uuid.uuid4().hex}",
        "locale": "zh_CN",
    }
    values.update(overrides)
    return Notification(**values)


# --- an SMTP server on loopback --------------------------------------------------------------


class Mailbox:
    """Accepts everything except two addresses that answer a permanent and a temporary refusal."""

    def __init__(self) -> None:
        self.envelopes: list[Any] = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # type: ignore[no-untyped-def]
        if address.startswith("refused@"):
            return "550 5.1.1 No such user"
        if address.startswith("busy@"):
            return "451 4.3.0 Mailbox busy, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"

    def messages_to(self, address: str) -> list[EmailMessage]:
        return [
            email.message_from_bytes(envelope.content, policy=policy.default)  # type: ignore[misc]
            for envelope in self.envelopes
            if address in envelope.rcpt_tos
        ]


@dataclasses.dataclass
class SmtpServer:
    mailbox: Mailbox
    config: SmtpConfig


@pytest.fixture(scope="module")
def smtp_server() -> Iterator[SmtpServer]:
    mailbox = Mailbox()
    port = _free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield SmtpServer(
            mailbox,
            SmtpConfig(
                host="127.0.0.1",
                port=port,
                from_address="承包商协同管理平台 <no-reply@portal.example.cn>",
                starttls=False,
                timeout=5,
            ),
        )
    finally:
        controller.stop()


# --- an HTTP receiver on loopback ------------------------------------------------------------

ROBOT_OK = b'{"errcode":0,"errmsg":"ok"}'


@dataclasses.dataclass
class Received:
    path: str
    query: str
    headers: dict[str, str]
    body: bytes


class Receiver:
    def __init__(self, port: int) -> None:
        self.port = port
        self.requests: list[Received] = []
        # path → (status, body); other paths answer 200 with a robot's "ok"
        self.answers: dict[str, tuple[int, bytes]] = {
            "/status/500": (500, b"internal error"),
            "/status/503": (503, b"unavailable"),
            "/status/400": (400, b"bad request"),
            "/status/404": (404, b"not found"),
            "/robot/too-fast": (200, b'{"errcode":130101,"errmsg":"send too fast"}'),
            "/robot/bad-sign": (200, b'{"errcode":310000,"errmsg":"sign not match"}'),
        }

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def last(self, path: str) -> Received:
        return [request for request in self.requests if request.path == path][-1]

    def count(self, path: str) -> int:
        return sum(1 for request in self.requests if request.path == path)


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    state = Receiver(server.server_address[1])

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            parts = urlsplit(self.path)
            headers = {name.lower(): value for name, value in self.headers.items()}
            state.requests.append(Received(parts.path, parts.query, headers, body))
            if parts.path == "/slow":
                time.sleep(1.0)
            status, answer = state.answers.get(parts.path, (200, ROBOT_OK))
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up first (the timeout test)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server.RequestHandlerClass = Handler
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def verify_generic_signature(secret: str, header: str, body: bytes) -> bool:
    """What a receiver does, written from the documented scheme rather than from the sender's
    code, so a mistake on one side is not mirrored on the other."""
    fields = dict(part.split("=", 1) for part in header.split(","))
    timestamp = int(fields["t"])
    if abs(time.time() - timestamp) > SIGNATURE_TOLERANCE_SECONDS:
        return False
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return hmac.compare_digest(expected.hexdigest(), fields["v1"])


# --- templates -------------------------------------------------------------------------------


@pytest.mark.parametrize("locale", ["zh_CN", "en"])
@pytest.mark.parametrize("kind", list(NotificationKind))
def test_every_kind_renders_in_both_languages(kind: NotificationKind, locale: str) -> None:
    rendered = render_notification(_notification(kind=kind, locale=locale))
    for part in (rendered.subject, rendered.text, rendered.html, rendered.markdown, rendered.sms):
        assert part.strip()
    assert "\n" not in rendered.subject and "\n" not in rendered.sms
    assert f'lang="{"zh-CN" if locale == "zh_CN" else "en"}"' in rendered.html


def test_chinese_is_the_default_and_english_renders_english() -> None:
    english_context = {
        **APPROVAL_CONTEXT,
        "work_type": "Hot work",
        "plant_name": "Plant 1",
        "zone_name": "Tank farm A",
        "applicant": "East China Installation Co.",
        "step": "EHS approval",
        "recipient_name": "Zhang San",
    }
    chinese = render_notification(_notification(locale=None))
    assert chinese.subject.startswith("【作业票待审批】DH-20261128-0007 动火作业")
    # 08:30 UTC on the plant's clock (Asia/Shanghai)
    assert "请于 2026-11-28 16:30 前处理" in chinese.text
    english = render_notification(_notification(locale="en", context=english_context))
    assert english.subject == "[Approval needed] DH-20261128-0007 Hot work · Plant 1"
    assert "Hello Zhang San," in english.text
    assert "Please decide by 2026-11-28 16:30" in english.text
    for part in (english.subject, english.text, english.html, english.markdown, english.sms):
        assert not CJK.search(part), part


def test_html_part_escapes_and_text_parts_do_not() -> None:
    context = {**CONTEXTS[NotificationKind.ADMISSION_DECIDED], "reason": "<b>执照</b> & 证书"}
    rendered = render_notification(
        _notification(kind=NotificationKind.ADMISSION_DECIDED, context=context)
    )
    assert "&lt;b&gt;执照&lt;/b&gt; &amp; 证书" in rendered.html
    assert "<b>执照</b> & 证书" in rendered.text


def test_a_context_missing_a_field_or_with_a_stray_one_is_refused() -> None:
    context = {key: value for key, value in APPROVAL_CONTEXT.items() if key != "step"}
    with pytest.raises(ValueError, match="lacks step"):
        render_notification(_notification(context=context))
    with pytest.raises(ValueError, match="unknown context"):
        render_notification(_notification(context={**APPROVAL_CONTEXT, "stpe": "x"}))
    with pytest.raises(ValueError, match="decision"):
        render_notification(
            _notification(
                kind=NotificationKind.ADMISSION_DECIDED,
                context={"contractor_name": "华东安装", "decision": "maybe"},
            )
        )


# --- e-mail ----------------------------------------------------------------------------------


def test_chinese_email_arrives_with_its_subject_decoded_and_both_parts(
    smtp_server: SmtpServer,
) -> None:
    notification = _notification()
    rendered = render_notification(notification)
    address = f"ehs.{uuid.uuid4().hex[:8]}@plant.example.cn"
    EmailChannel(smtp_server.config).send(notification, rendered, address)

    [received] = smtp_server.mailbox.messages_to(address)
    raw = next(e.content for e in smtp_server.mailbox.envelopes if address in e.rcpt_tos)
    raw_headers = raw.split(b"\r\n\r\n", 1)[0]
    assert raw_headers.isascii(), "headers must be encoded, not raw UTF-8"
    assert b"=?utf-8?" in raw_headers.lower()
    assert received["Subject"] == "【作业票待审批】DH-20261128-0007 动火作业 · 一厂"
    assert received["From"].addresses[0].display_name == "承包商协同管理平台"
    assert received.get_content_type() == "multipart/alternative"
    plain = received.get_body(preferencelist=("plain",))
    html = received.get_body(preferencelist=("html",))
    assert plain is not None and html is not None
    assert plain.get_content_charset() == "utf-8"
    assert "作业票 DH-20261128-0007（动火作业）待您审批。" in plain.get_content()
    assert "<strong>DH-20261128-0007</strong>" in html.get_content()

    EmailChannel(smtp_server.config).send(notification, rendered, address)
    first, again = smtp_server.mailbox.messages_to(address)
    assert first["Message-ID"] == again["Message-ID"], "a resend keeps its Message-ID"


@pytest.mark.parametrize(
    ("address", "retryable"),
    [("refused@plant.example.cn", False), ("busy@plant.example.cn", True)],
)
def test_smtp_refusals_are_typed(smtp_server: SmtpServer, address: str, retryable: bool) -> None:
    notification = _notification()
    with pytest.raises(DeliveryFailed) as failure:
        EmailChannel(smtp_server.config).send(
            notification, render_notification(notification), address
        )
    assert failure.value.retryable is retryable


def test_an_unreachable_smtp_server_is_retryable(smtp_server: SmtpServer) -> None:
    config = dataclasses.replace(smtp_server.config, port=_free_port(), timeout=2)
    notification = _notification()
    with pytest.raises(DeliveryFailed) as failure:
        EmailChannel(config).send(
            notification, render_notification(notification), "ehs@plant.example.cn"
        )
    assert failure.value.retryable


# --- webhooks --------------------------------------------------------------------------------


def test_generic_webhook_is_signed_and_a_tampered_body_fails(receiver: Receiver) -> None:
    secret = "whsec-" + uuid.uuid4().hex
    notification = _notification()
    rendered = render_notification(notification)
    endpoint = WebhookEndpoint(receiver.url("/generic"), WebhookFormat.GENERIC, secret)
    WebhookChannel().send(notification, rendered, endpoint)

    request = receiver.last("/generic")
    signature = request.headers["x-portal-signature"]
    assert verify_generic_signature(secret, signature, request.body)
    tampered = request.body.replace("动火作业".encode(), "高处作业".encode())
    assert tampered != request.body
    assert not verify_generic_signature(secret, signature, tampered)
    assert not verify_generic_signature("another-secret", signature, request.body)
    stale = re.sub(r"t=\d+", f"t={int(time.time()) - 3600}", signature)
    assert not verify_generic_signature(secret, stale, request.body), "replays are refused"

    document = json.loads(request.body)
    assert document["id"] == notification.idempotency_key
    assert document["kind"] == "approval_requested"
    assert document["subject"] == rendered.subject
    assert document["data"]["due_at"] == "2026-11-28T08:30:00+00:00"
    assert request.headers["x-portal-delivery"] == notification.idempotency_key
    assert secret not in repr(endpoint) and "/generic" not in repr(endpoint)


def test_dingtalk_robot_gets_markdown_and_a_valid_sign(receiver: Receiver) -> None:
    secret = "SEC" + uuid.uuid4().hex
    notification = _notification()
    rendered = render_notification(notification)
    endpoint = WebhookEndpoint(
        receiver.url("/robot/send?access_token=abc123"), WebhookFormat.DINGTALK, secret
    )
    WebhookChannel().send(notification, rendered, endpoint)

    request = receiver.last("/robot/send")
    query = parse_qs(request.query)
    assert query["access_token"] == ["abc123"]
    timestamp = query["timestamp"][0]
    assert abs(int(timestamp) - time.time() * 1000) < 60_000, "DingTalk wants milliseconds"
    digest = hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256)
    expected = base64.b64encode(digest.digest()).decode()
    assert query["sign"] == [expected]
    assert f"sign={quote_plus(expected)}" in request.query, "sign is URL-encoded"
    assert json.loads(request.body) == {
        "msgtype": "markdown",
        "markdown": {"title": rendered.subject, "text": rendered.markdown},
    }


def test_wecom_robot_gets_markdown(receiver: Receiver) -> None:
    notification = _notification(kind=NotificationKind.ALERT_RAISED)
    rendered = render_notification(notification)
    endpoint = WebhookEndpoint(receiver.url("/cgi-bin/webhook/send?key=k-1"), WebhookFormat.WECOM)
    WebhookChannel().send(notification, rendered, endpoint)

    request = receiver.last("/cgi-bin/webhook/send")
    assert parse_qs(request.query) == {"key": ["k-1"]}
    assert json.loads(request.body) == {
        "msgtype": "markdown",
        "markdown": {"content": rendered.markdown},
    }
    assert rendered.markdown.startswith("### 报警：人员离开作业区域")
    assert "x-portal-signature" not in request.headers


@pytest.mark.parametrize(
    ("path", "webhook_format", "retryable"),
    [
        ("/status/500", WebhookFormat.GENERIC, True),
        ("/status/503", WebhookFormat.WECOM, True),
        ("/status/400", WebhookFormat.GENERIC, False),
        ("/status/404", WebhookFormat.DINGTALK, False),
        ("/robot/too-fast", WebhookFormat.DINGTALK, True),
        ("/robot/bad-sign", WebhookFormat.DINGTALK, False),
        ("/slow", WebhookFormat.GENERIC, True),
    ],
)
def test_webhook_failures_say_whether_to_retry(
    receiver: Receiver, path: str, webhook_format: WebhookFormat, retryable: bool
) -> None:
    notification = _notification()
    endpoint = WebhookEndpoint(receiver.url(path), webhook_format, "s3cret-value")
    with pytest.raises(DeliveryFailed) as failure:
        WebhookChannel(timeout=0.3).send(notification, render_notification(notification), endpoint)
    assert failure.value.retryable is retryable
    assert "s3cret-value" not in str(failure.value)
    assert "127.0.0.1" not in str(failure.value), "errors never carry the URL"


# --- SMS -------------------------------------------------------------------------------------


def test_logging_sms_provider_records_the_message(caplog: pytest.LogCaptureFixture) -> None:
    provider = LoggingSmsProvider()
    notification = _notification(kind=NotificationKind.CERTIFICATE_EXPIRING)
    rendered = render_notification(notification)
    caplog.set_level("INFO", logger="infra.notify.sms")
    SmsChannel(provider).send(notification, rendered, "138 0013 8000")

    [sent] = provider.sent
    assert sent.message.phone == "13800138000"
    assert sent.message.text == rendered.sms
    assert sent.message.text.startswith("【证书即将到期】华东安装 王五")
    assert sent.message.params["expires_on"] == "2026-12-05"
    assert sent.message.idempotency_key == notification.idempotency_key
    assert "138****8000" in caplog.text and "13800138000" not in caplog.text
    with pytest.raises(DeliveryFailed) as failure:
        SmsChannel(provider).send(notification, rendered, "call me")
    assert not failure.value.retryable
    assert len(provider.sent) == 1


# --- preferences, webhooks and dispatch in the database --------------------------------------


def _channels(smtp_server: SmtpServer) -> Channels:
    return Channels(
        email=EmailChannel(smtp_server.config),
        sms=SmsChannel(LoggingSmsProvider()),
        webhook=WebhookChannel(timeout=2),
    )


def _set_contact(
    database: Database, tenant_id: uuid.UUID, user_id: uuid.UUID, **values: Any
) -> None:
    with tenant_scope(tenant_id), database.sync_session() as session:
        session.execute(update(User).where(User.id == user_id).values(**values))
        session.commit()


async def test_preferences_and_tenant_webhooks_decide_the_channels(
    any_db: Database, factory: TenantFactory, smtp_server: SmtpServer, receiver: Receiver
) -> None:
    tenant = await factory.create(
        any_db, users=((Role.EHS_OFFICER, None), (Role.PLANT_MANAGER, None))
    )
    other = await factory.create(any_db)
    quiet, default = tenant.user(Role.EHS_OFFICER), tenant.user(Role.PLANT_MANAGER)
    _set_contact(any_db, tenant.id, quiet.id, phone="13800138001")
    _set_contact(any_db, tenant.id, default.id, phone="13800138002", locale="en")
    robot_path, foreign_path = f"/wecom/{uuid.uuid4().hex}", f"/foreign/{uuid.uuid4().hex}"
    async with any_db.session() as session:
        with tenant_scope(tenant.id):
            await notifications.set_notification_preference(
                session, user_id=quiet.id, email=False, sms=True, webhook=False
            )
            await notifications.set_notification_preference(
                session,
                user_id=quiet.id,
                kind="approval_requested",
                email=False,
                sms=True,
                webhook=True,
            )
            await notifications.add_notification_webhook(
                session,
                name="安全部钉钉群",
                url=receiver.url(robot_path + "?key=group-key"),
                format="wecom",
                kinds=["approval_requested", "alert_raised"],
            )
        with tenant_scope(other.id):
            await notifications.add_notification_webhook(
                session, name="其他集团", url=receiver.url(foreign_path), format="generic"
            )
        await session.commit()

    channels = _channels(smtp_server)
    with tenant_scope(tenant.id), any_db.sync_session() as session:
        to_quiet = notifications.dispatch(
            session, _notification(tenant.id, recipient=quiet.id, locale=None), channels
        )
        to_default = notifications.dispatch(
            session, _notification(tenant.id, recipient=default.id, locale=None), channels
        )
        certificate = _notification(
            tenant.id, NotificationKind.CERTIFICATE_EXPIRING, recipient=quiet.id
        )
        quiet_certificate = notifications.dispatch(session, certificate, channels)

    assert {(r.channel, r.status) for r in to_quiet} == {
        (ChannelName.SMS, DeliveryStatus.SENT),
        (ChannelName.WEBHOOK, DeliveryStatus.SENT),
    }
    assert smtp_server.mailbox.messages_to(quiet.email) == [], "e-mail was turned off"
    assert receiver.count(robot_path) == 1
    robot_text = json.loads(receiver.last(robot_path).body)["markdown"]["content"]
    assert robot_text.startswith("### 作业票待审批：DH-20261128-0007")
    assert receiver.count(foreign_path) == 0, "another tenant's webhook is never used"

    assert {(r.channel, r.status) for r in to_default} == {
        (ChannelName.EMAIL, DeliveryStatus.SENT),
        (ChannelName.SMS, DeliveryStatus.SENT),
    }
    [mail] = smtp_server.mailbox.messages_to(default.email)
    assert mail["Subject"].startswith("[Approval needed] DH-20261128-0007"), "user's language"
    assert "Hello 用户1," in mail.get_body(preferencelist=("plain",)).get_content()

    # the kind-less "*" row applies to kinds without a row of their own: no e-mail, no robot
    assert [(r.channel, r.status) for r in quiet_certificate] == [
        (ChannelName.SMS, DeliveryStatus.SENT)
    ]
    sms_phones = [sent.message.phone for sent in channels.sms.provider.sent]  # type: ignore[attr-defined]
    assert sms_phones == ["13800138001", "13800138002", "13800138001"]


async def test_webhook_secrets_stay_out_of_the_ledger_and_bad_input_is_refused(
    sqlite_db: Database, factory: TenantFactory
) -> None:
    tenant = await factory.create(sqlite_db)
    async with sqlite_db.session() as session:
        with tenant_scope(tenant.id):
            webhook, secret = await notifications.add_notification_webhook(
                session,
                name="BI",
                url="https://bi.example.cn/hooks/portal?token=t0ken",
                format="generic",
            )
            assert len(secret) >= 32 and webhook.secret == secret
            for field, values in {
                "url": {"url": "ftp://bi.example.cn/x"},
                "format": {"format": "slack"},
                "kinds": {"kinds": ["approval_requested", "lunch_ready"]},
            }.items():
                arguments = {"name": field, "url": "https://x.example.cn", "format": "generic"}
                with pytest.raises(InvalidInput) as refused:
                    await notifications.add_notification_webhook(session, **{**arguments, **values})
                assert refused.value.problems[0].field == field
            payloads = (
                await session.execute(
                    select(AuditEntry.payload).where(
                        AuditEntry.action == "notification_webhook.added"
                    )
                )
            ).scalars()
            ledger = json.dumps(list(payloads))
    assert "bi.example.cn" in ledger
    assert secret not in ledger and "t0ken" not in ledger


async def test_outbox_retries_the_failed_channel_alone(
    any_db: Database, factory: TenantFactory, receiver: Receiver
) -> None:
    tenant = await factory.create(any_db, users=((Role.EHS_OFFICER, None),))
    officer = tenant.user(Role.EHS_OFFICER)
    _set_contact(any_db, tenant.id, officer.id, phone="13900139000")
    flaky = f"/flaky/{uuid.uuid4().hex}"
    receiver.answers[flaky] = (503, b"down for maintenance")
    notification = _notification(
        tenant.id, NotificationKind.ALERT_RAISED, recipient=officer.id, locale=None
    )
    async with any_db.session() as session:
        with tenant_scope(tenant.id):
            await notifications.set_notification_preference(
                session, user_id=officer.id, email=True, sms=True, webhook=True
            )
            await notifications.add_notification_webhook(
                session, name="BI", url=receiver.url(flaky), format="generic"
            )
            queued = await notifications.queue_notification(session, notification)
            again = await notifications.queue_notification(session, notification)
            assert again.id == queued.id, "the idempotency key queues it once"
        await session.commit()

    assert worker_settings().smtp_host == "", "this test expects e-mail off in the environment"
    sms = channels_for(worker_settings()).sms.provider
    sms_before = len(sms.sent)  # type: ignore[attr-defined]

    def deliver(message_id: uuid.UUID, attempt: int) -> None:
        with tenant_scope(tenant.id), any_db.sync_session() as session:
            deliver_outbox_message.run(session, message_id=str(message_id), attempt=attempt)
            session.commit()

    def messages(topic: str) -> list[OutboxMessage]:
        with tenant_scope(tenant.id), any_db.sync_session() as session:
            query = select(OutboxMessage).where(OutboxMessage.topic == topic)
            return list(session.execute(query.order_by(OutboxMessage.created_at)).scalars())

    deliver(queued.id, 0)
    [fanned_out] = messages(notifications.NOTIFICATION_TOPIC)
    assert fanned_out.status == OutboxStatus.DELIVERED
    # the test environment sets no SMTP host, so e-mail is off: SMS and the webhook remain
    deliveries = messages(notifications.DELIVERY_TOPIC)
    assert sorted(message.payload["channel"] for message in deliveries) == ["sms", "webhook"]
    for message in deliveries:
        deliver(message.id, 0)

    by_channel = {m.payload["channel"]: m for m in messages(notifications.DELIVERY_TOPIC)}
    assert by_channel["sms"].status == OutboxStatus.DELIVERED
    webhook = by_channel["webhook"]
    assert (webhook.status, webhook.attempts) == (OutboxStatus.PENDING, 1)
    assert "webhook answered 503" in (webhook.last_error or "")

    receiver.answers[flaky] = (200, b"{}")
    deliver(webhook.id, 1)
    by_channel = {m.payload["channel"]: m for m in messages(notifications.DELIVERY_TOPIC)}
    assert by_channel["webhook"].status == OutboxStatus.DELIVERED
    assert receiver.count(flaky) == 2
    sent_here = [s for s in sms.sent if s.message.idempotency_key == notification.idempotency_key]  # type: ignore[attr-defined]
    assert len(sent_here) == 1 and len(sms.sent) == sms_before + 1, "the SMS went out once"  # type: ignore[attr-defined]
    assert sent_here[0].message.text.startswith("【报警】一厂")
