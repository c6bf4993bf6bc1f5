"""A tenant's own SMS account, end to end against local stand-ins for Alibaba Cloud SMS and
Tencent Cloud SMS.

Each stand-in knows the secret of the access keys it was given and checks every request's
signature with its own implementation of the vendor's documented scheme (nothing is imported
from the code under test), so a request signed with the wrong key is refused the way the vendor
refuses it. It records what it accepted and answers success or the code a test asks for."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import re
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, quote_plus

import msgspec
import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import select, update

from infra.db import Database
from infra.errors import InvalidInput
from infra.field_encryption import field_cipher
from infra.notify import (
    ChannelName,
    Channels,
    DeliveryFailed,
    LoggingSmsProvider,
    Notification,
    NotificationKind,
    SmsChannel,
    SmsEndpoints,
    SmsMessage,
    WebhookChannel,
)
from infra.notify.sms_gateways import AliyunSmsProvider, SmsAccount, TencentSmsProvider
from infra.settings import Settings
from infra.tasks import worker_settings
from infra.tenancy import tenant_scope
from portal.app import create_app
from tenants import notifications
from tenants import services as tenant_services
from tenants.models import NotificationChannelSettings, Role, User
from tenants.notifications import DeliveryStatus
from tenants.schemas import SmsSettingsIn
from tests.factories import SeededTenant, TenantFactory
from tests.integration.test_notify import CONTEXTS, _free_port

ALIYUN_KEY, ALIYUN_SECRET = "LTAI5tStandIn", "aliyun-secret-Ω1"
TENCENT_KEY, TENCENT_SECRET = "AKIDstandin0001", "tencent-secret-Ψ2"
TENCENT_APP = "1400123456"


# --- the gateways' stand-ins -------------------------------------------------------------------


@dataclasses.dataclass
class GatewayCall:
    vendor: str
    fields: dict[str, Any]
    signature_ok: bool


class Gateways:
    """Both vendors on one server: ``/aliyun/`` and ``/tencent/``."""

    def __init__(self) -> None:
        self.secrets = {ALIYUN_KEY: ALIYUN_SECRET, TENCENT_KEY: TENCENT_SECRET}
        self.calls: list[GatewayCall] = []
        # What the next request to a vendor is answered: an HTTP status and a vendor code.
        self.answers: dict[str, list[tuple[int, str]]] = {"aliyun": [], "tencent": []}
        self.nonces: set[str] = set()
        self.lock = threading.Lock()
        self.base = ""

    @property
    def endpoints(self) -> SmsEndpoints:
        return SmsEndpoints(aliyun=f"{self.base}/aliyun/", tencent=f"{self.base}/tencent/")

    def answer_next(self, vendor: str, code: str, status: int = 200) -> None:
        with self.lock:
            self.answers[vendor].append((status, code))

    def calls_of(self, vendor: str) -> list[GatewayCall]:
        with self.lock:
            return [call for call in self.calls if call.vendor == vendor]

    def _next(self, vendor: str, default: str) -> tuple[int, str]:
        with self.lock:
            return self.answers[vendor].pop(0) if self.answers[vendor] else (200, default)

    def _record(self, call: GatewayCall) -> None:
        with self.lock:
            self.calls.append(call)

    # Alibaba Cloud: RPC signature 1.0 as its documentation writes it, on quote_plus's output.
    @staticmethod
    def _aliyun_encode(value: str) -> str:
        return quote_plus(value).replace("+", "%20").replace("*", "%2A").replace("%7E", "~")

    def aliyun(self, method: str, body: str) -> tuple[int, dict[str, Any]]:
        fields = dict(parse_qsl(body, keep_blank_values=True))
        signature = fields.pop("Signature", "")
        secret = self.secrets.get(fields.get("AccessKeyId", ""))
        if secret is None:
            return 404, {"Code": "InvalidAccessKeyId.NotFound", "Message": "Specified key"}
        query = "&".join(
            f"{self._aliyun_encode(k)}={self._aliyun_encode(v)}" for k, v in sorted(fields.items())
        )
        to_sign = f"{method}&%2F&{self._aliyun_encode(query)}"
        expected = base64.b64encode(
            hmac.new((secret + "&").encode(), to_sign.encode(), hashlib.sha1).digest()
        ).decode()
        signed = hmac.compare_digest(signature, expected)
        stamp = datetime.strptime(fields.get("Timestamp", ""), "%Y-%m-%dT%H:%M:%SZ")
        fresh = abs(stamp.replace(tzinfo=UTC).timestamp() - time.time()) < 900
        with self.lock:
            replayed = fields.get("SignatureNonce") in self.nonces
            self.nonces.add(fields.get("SignatureNonce", ""))
        self._record(GatewayCall("aliyun", fields, signed))
        if not signed:
            return 400, {"Code": "SignatureDoesNotMatch", "Message": "Specified signature"}
        if replayed or not fresh:
            return 400, {"Code": "SignatureNonceUsed", "Message": "nonce used or stale"}
        if (fields.get("Action"), fields.get("Version")) != ("SendSms", "2017-05-25"):
            return 400, {"Code": "InvalidAction.NotFound", "Message": "unknown action"}
        status, code = self._next("aliyun", "OK")
        return status, {"Code": code, "Message": code, "BizId": "900619746936498440^0"}

    # Tencent Cloud: TC3-HMAC-SHA256 over the headers and body as they arrived.
    def tencent(self, path: str, headers: Any, body: bytes) -> tuple[int, dict[str, Any]]:
        authorization = headers.get("Authorization", "")
        algorithm, _, rest = authorization.partition(" ")
        parts = dict(item.strip().split("=", 1) for item in rest.split(",") if "=" in item)
        key_id, day, service, terminator = parts.get("Credential", "////").split("/")
        secret = self.secrets.get(key_id)
        fields = json.loads(body or b"{}")
        if secret is None:
            return 200, _tencent_error("AuthFailure.SecretIdNotFound")
        timestamp = headers.get("X-TC-Timestamp", "0")
        canonical = (
            f"POST\n{path}\n\ncontent-type:{headers.get('Content-Type')}\n"
            f"host:{headers.get('Host')}\n\ncontent-type;host\n{hashlib.sha256(body).hexdigest()}"
        )
        to_sign = (
            f"TC3-HMAC-SHA256\n{timestamp}\n{day}/{service}/{terminator}\n"
            f"{hashlib.sha256(canonical.encode()).hexdigest()}"
        )
        derived = hmac.new(f"TC3{secret}".encode(), day.encode(), hashlib.sha256).digest()
        derived = hmac.new(derived, service.encode(), hashlib.sha256).digest()
        derived = hmac.new(derived, b"tc3_request", hashlib.sha256).digest()
        expected = hmac.new(derived, to_sign.encode(), hashlib.sha256).hexdigest()
        signed = (
            algorithm == "TC3-HMAC-SHA256"
            and parts.get("SignedHeaders") == "content-type;host"
            and (service, terminator) == ("sms", "tc3_request")
            and day == datetime.fromtimestamp(int(timestamp), UTC).strftime("%Y-%m-%d")
            and hmac.compare_digest(parts.get("Signature", ""), expected)
        )
        self._record(GatewayCall("tencent", fields, signed))
        if not signed:
            return 200, _tencent_error("AuthFailure.SignatureFailure")
        if abs(int(timestamp) - time.time()) > 300:
            return 200, _tencent_error("AuthFailure.SignatureExpire")
        if (headers.get("X-TC-Action"), headers.get("X-TC-Version")) != ("SendSms", "2021-01-11"):
            return 200, _tencent_error("InvalidAction")
        status, code = self._next("tencent", "Ok")
        if status != 200 or code.startswith(("InternalError", "RequestLimitExceeded")):
            return status, _tencent_error(code)
        return 200, {
            "Response": {
                "SendStatusSet": [
                    {
                        "SerialNo": "5000:1045710669157053657849499619",
                        "PhoneNumber": fields["PhoneNumberSet"][0],
                        "Fee": 1,
                        "SessionContext": fields.get("SessionContext", ""),
                        "Code": code,
                        "Message": "send success" if code == "Ok" else code,
                        "IsoCode": "CN",
                    }
                ],
                "RequestId": str(uuid.uuid4()),
            }
        }


def _tencent_error(code: str) -> dict[str, Any]:
    return {"Response": {"Error": {"Code": code, "Message": code}, "RequestId": "r"}}


@pytest.fixture(scope="module")
def gateways() -> Iterator[Gateways]:
    stand_in = Gateways()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path == "/aliyun/":
                status, answer = stand_in.aliyun("POST", body.decode())
            elif self.path == "/tencent/":
                status, answer = stand_in.tencent(self.path, self.headers, body)
            else:
                status, answer = 404, {}
            data = json.dumps(answer).encode()
            if status >= 500:
                data = b"<html>bad gateway</html>"
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the calls are asserted, not printed."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    stand_in.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield stand_in
    finally:
        server.shutdown()
        server.server_close()


# --- helpers -----------------------------------------------------------------------------------


def _channels(gateways: Gateways) -> Channels:
    return Channels(
        email=None,
        sms=SmsChannel(LoggingSmsProvider()),
        webhook=WebhookChannel(timeout=2),
        sms_endpoints=gateways.endpoints,
    )


async def _tenant_with_phone(
    database: Database, factory: TenantFactory, phone: str
) -> tuple[SeededTenant, uuid.UUID]:
    tenant = await factory.create(database, users=((Role.EHS_OFFICER, None),))
    officer = tenant.user(Role.EHS_OFFICER).id
    async with database.session() as session:
        with tenant_scope(tenant.id):
            await session.execute(update(User).where(User.id == officer).values(phone=phone))
        await session.commit()
    return tenant, officer


async def _save_account(database: Database, tenant: SeededTenant, data: SmsSettingsIn) -> None:
    async with database.session() as session:
        with tenant_scope(tenant.id):
            await tenant_services.save_sms_settings(
                session, data, cipher=field_cipher(worker_settings())
            )
        await session.commit()


def _alert(tenant_id: uuid.UUID, recipient: uuid.UUID) -> Notification:
    return Notification(
        tenant_id=tenant_id,
        kind=NotificationKind.ALERT_RAISED,
        context=CONTEXTS[NotificationKind.ALERT_RAISED],
        idempotency_key=f"alert:{uuid.uuid4().hex}",
        recipient=recipient,
        locale="zh_CN",
    )


def _dispatch_sms(
    database: Database, tenant: SeededTenant, notification: Notification, channels: Channels
) -> notifications.DeliveryResult:
    with tenant_scope(tenant.id), database.sync_session() as session:
        results = notifications.dispatch(session, notification, channels)
    [sms] = [result for result in results if result.channel is ChannelName.SMS]
    return sms


ALIYUN = SmsSettingsIn(
    provider="aliyun",
    sign_name="扬子江石化",
    template_id="SMS_465390001",
    access_key_id=ALIYUN_KEY,
    secret=ALIYUN_SECRET,
)
TENCENT = SmsSettingsIn(
    provider="tencent",
    sign_name="扬子江石化",
    template_id="2210001",
    access_key_id=TENCENT_KEY,
    secret=TENCENT_SECRET,
    app_id=TENCENT_APP,
)
EXPECTED_CONTENT = "报警：一厂 人员离开作业区域（李四），2026-11-28 16:00，请尽快处置"


# --- the tenant's account reaches its gateway --------------------------------------------------


async def test_an_alibaba_cloud_account_sends_the_template_signed(
    sqlite_db: Database, factory: TenantFactory, gateways: Gateways
) -> None:
    tenant, officer = await _tenant_with_phone(sqlite_db, factory, "138 0013 8001")
    await _save_account(sqlite_db, tenant, ALIYUN)
    channels = _channels(gateways)
    before = len(gateways.calls_of("aliyun"))
    notification = _alert(tenant.id, officer)

    result = _dispatch_sms(sqlite_db, tenant, notification, channels)

    assert result.status is DeliveryStatus.SENT, result
    [call] = gateways.calls_of("aliyun")[before:]
    assert call.signature_ok
    assert call.fields["PhoneNumbers"] == "13800138001"
    assert call.fields["SignName"] == "扬子江石化"
    assert call.fields["TemplateCode"] == "SMS_465390001"
    assert json.loads(call.fields["TemplateParam"]) == {"content": EXPECTED_CONTENT}
    assert call.fields["OutId"] == notification.idempotency_key
    assert call.fields["SignatureMethod"] == "HMAC-SHA1" and call.fields["Format"] == "JSON"
    assert not channels.sms.provider.sent, "the installation's provider was not used"  # type: ignore[attr-defined]


async def test_a_tencent_cloud_account_sends_the_template_signed(
    sqlite_db: Database, factory: TenantFactory, gateways: Gateways
) -> None:
    tenant, officer = await _tenant_with_phone(sqlite_db, factory, "13800138002")
    await _save_account(sqlite_db, tenant, TENCENT)
    channels = _channels(gateways)
    before = len(gateways.calls_of("tencent"))
    notification = _alert(tenant.id, officer)

    result = _dispatch_sms(sqlite_db, tenant, notification, channels)

    assert result.status is DeliveryStatus.SENT, result
    [call] = gateways.calls_of("tencent")[before:]
    assert call.signature_ok
    assert call.fields == {
        "PhoneNumberSet": ["+8613800138002"],
        "SmsSdkAppId": TENCENT_APP,
        "SignName": "扬子江石化",
        "TemplateId": "2210001",
        "TemplateParamSet": [EXPECTED_CONTENT],
        "SessionContext": notification.idempotency_key,
    }
    assert not channels.sms.provider.sent  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("account", "vendor", "refusal"),
    [
        (ALIYUN, "aliyun", "SignatureDoesNotMatch"),
        (TENCENT, "tencent", "AuthFailure.SignatureFailure"),
    ],
)
async def test_a_wrong_secret_is_refused_by_the_gateways_signature_check(
    sqlite_db: Database,
    factory: TenantFactory,
    gateways: Gateways,
    account: SmsSettingsIn,
    vendor: str,
    refusal: str,
) -> None:
    tenant, officer = await _tenant_with_phone(sqlite_db, factory, "13800138003")
    await _save_account(
        sqlite_db, tenant, msgspec.structs.replace(account, secret="not-the-secret")
    )
    before = len(gateways.calls_of(vendor))

    result = _dispatch_sms(sqlite_db, tenant, _alert(tenant.id, officer), _channels(gateways))

    [call] = gateways.calls_of(vendor)[before:]
    assert not call.signature_ok
    assert result.status is DeliveryStatus.FAILED and not result.retryable
    assert refusal in result.detail


async def test_a_tenant_without_an_account_uses_the_installations_provider(
    sqlite_db: Database, factory: TenantFactory, gateways: Gateways
) -> None:
    tenant, officer = await _tenant_with_phone(sqlite_db, factory, "13800138004")
    channels = _channels(gateways)
    before = len(gateways.calls)
    notification = _alert(tenant.id, officer)

    result = _dispatch_sms(sqlite_db, tenant, notification, channels)

    assert result.status is DeliveryStatus.SENT
    [sent] = channels.sms.provider.sent  # type: ignore[attr-defined]
    assert (sent.message.phone, sent.message.idempotency_key) == (
        "13800138004",
        notification.idempotency_key,
    )
    assert len(gateways.calls) == before


async def test_an_account_that_cannot_be_used_fails_for_good(
    sqlite_db: Database, factory: TenantFactory, gateways: Gateways
) -> None:
    tenant, officer = await _tenant_with_phone(sqlite_db, factory, "13800138005")
    await _save_account(sqlite_db, tenant, TENCENT)
    channels = _channels(gateways)
    before = len(gateways.calls)

    def break_row(**values: Any) -> None:
        with tenant_scope(tenant.id), sqlite_db.sync_session() as session:
            session.execute(update(NotificationChannelSettings).values(**values))
            session.commit()

    # sealed for another tenant's row: the cipher binds the secret to tenant and column
    foreign = field_cipher(worker_settings()).encrypt(
        TENCENT_SECRET, context=f"{uuid.uuid4()}/notification_channel_settings.sms_secret"
    )
    break_row(sms_secret_encrypted=foreign)
    undecryptable = _dispatch_sms(sqlite_db, tenant, _alert(tenant.id, officer), channels)
    assert undecryptable.status is DeliveryStatus.FAILED and not undecryptable.retryable
    assert "does not decrypt" in undecryptable.detail

    await _save_account(sqlite_db, tenant, TENCENT)
    break_row(sms_app_id=None)
    no_app = _dispatch_sms(sqlite_db, tenant, _alert(tenant.id, officer), channels)
    assert no_app.status is DeliveryStatus.FAILED and not no_app.retryable
    assert "SDK AppID" in no_app.detail

    assert len(gateways.calls) == before, "nothing reached a gateway"
    assert not channels.sms.provider.sent, "no silent fallback to the installation's provider"  # type: ignore[attr-defined]


async def test_a_tencent_account_needs_its_app_id_and_keeps_it(
    sqlite_db: Database, factory: TenantFactory
) -> None:
    tenant = await factory.create(sqlite_db)
    with pytest.raises(InvalidInput) as refused:
        await _save_account(sqlite_db, tenant, msgspec.structs.replace(TENCENT, app_id=""))
    assert (refused.value.problems[0].field, refused.value.problems[0].rule) == (
        "app_id",
        "required",
    )
    await _save_account(sqlite_db, tenant, TENCENT)
    with tenant_scope(tenant.id), sqlite_db.sync_session() as session:
        row = session.scalar(select(NotificationChannelSettings))
        assert row is not None and row.sms_app_id == TENCENT_APP


# --- what the gateways' codes mean ---------------------------------------------------------------


def _message(phone: str = "13800138009") -> SmsMessage:
    return SmsMessage(
        tenant_id=uuid.uuid4(),
        phone=phone,
        text="【报警】一厂 人员离开作业区域，请尽快处置。",
        kind="alert_raised",
        params={},
        idempotency_key=f"codes:{uuid.uuid4().hex}",
    )


def _provider(vendor: str, endpoints: SmsEndpoints) -> AliyunSmsProvider | TencentSmsProvider:
    if vendor == "aliyun":
        account = SmsAccount("aliyun", "扬子江石化", "SMS_1", ALIYUN_KEY, ALIYUN_SECRET)
        return AliyunSmsProvider(account, endpoints.aliyun)
    account = SmsAccount("tencent", "扬子江石化", "1", TENCENT_KEY, TENCENT_SECRET, TENCENT_APP)
    return TencentSmsProvider(account, endpoints.tencent)


@pytest.mark.parametrize(
    ("vendor", "status", "code", "retryable"),
    [
        ("aliyun", 200, "isv.BUSINESS_LIMIT_CONTROL", True),
        ("aliyun", 400, "Throttling.User", True),
        ("aliyun", 200, "isp.SYSTEM_ERROR", True),
        ("aliyun", 200, "isv.SMS_TEMPLATE_ILLEGAL", False),
        ("aliyun", 200, "isv.SMS_SIGNATURE_ILLEGAL", False),
        ("aliyun", 200, "isv.MOBILE_NUMBER_ILLEGAL", False),
        ("aliyun", 200, "isv.AMOUNT_NOT_ENOUGH", False),
        ("aliyun", 503, "-", True),
        ("tencent", 200, "LimitExceeded.PhoneNumberThirtySecondLimit", True),
        ("tencent", 200, "RequestLimitExceeded", True),
        ("tencent", 200, "InternalError.Timeout", True),
        ("tencent", 200, "FailedOperation.TemplateIncorrectOrUnapproved", False),
        ("tencent", 200, "FailedOperation.SignatureIncorrectOrUnapproved", False),
        ("tencent", 200, "InvalidParameterValue.IncorrectPhoneNumber", False),
        ("tencent", 200, "LimitExceeded.PhoneNumberDailyLimit", False),
        ("tencent", 502, "-", True),
    ],
)
def test_gateway_codes_say_whether_to_retry(
    gateways: Gateways, vendor: str, status: int, code: str, retryable: bool
) -> None:
    gateways.answer_next(vendor, code, status)
    before = len(gateways.calls_of(vendor))
    with pytest.raises(DeliveryFailed) as failure:
        _provider(vendor, gateways.endpoints).send(_message())
    assert failure.value.retryable is retryable
    if status < 500:
        assert code in str(failure.value)
    [call] = gateways.calls_of(vendor)[before:]
    assert call.signature_ok


@pytest.mark.parametrize("vendor", ["aliyun", "tencent"])
def test_an_unreachable_gateway_is_retryable(vendor: str) -> None:
    closed = f"http://127.0.0.1:{_free_port()}/"
    with pytest.raises(DeliveryFailed) as failure:
        _provider(vendor, SmsEndpoints(aliyun=closed, tencent=closed)).send(_message())
    assert failure.value.retryable and "unreachable" in str(failure.value)


def test_the_endpoints_come_from_the_settings(sqlite_settings: Settings) -> None:
    settings = dataclasses.replace(
        sqlite_settings,
        sms_aliyun_endpoint="http://127.0.0.1:1/aliyun/",
        sms_tencent_endpoint="http://127.0.0.1:1/tencent/",
    )
    assert Channels.from_settings(settings).sms_endpoints == SmsEndpoints(
        aliyun="http://127.0.0.1:1/aliyun/", tencent="http://127.0.0.1:1/tencent/"
    )


# --- the channels page -------------------------------------------------------------------------

CSRF_FIELD = re.compile(r'name="_csrf_token"\s+value="([^"]+)"')


async def test_the_channels_page_takes_the_tencent_app_id_and_states_the_template_contract(
    sqlite_settings: Settings, sqlite_db: Database, factory: TenantFactory
) -> None:
    tenant = await factory.create(sqlite_db)
    admin = tenant.user(Role.TENANT_ADMIN)
    page = f"/t/{tenant.slug}/admin/channels"
    async with AsyncTestClient(app=create_app(sqlite_settings)) as browser:
        browser.cookies.set("portal_lang", "en")
        login = await browser.get(f"/t/{tenant.slug}/login")
        token = CSRF_FIELD.search(login.text)
        assert token is not None, login.text
        signed_in = await browser.post(
            "/login",
            data={
                "tenant": tenant.slug,
                "email": admin.email,
                "password": admin.password,
                "_csrf_token": token.group(1),
            },
            follow_redirects=False,
        )
        assert signed_in.status_code in (302, 303), signed_in.text

        async def save(form: dict[str, str]) -> Any:
            shown = await browser.get(page)
            csrf = CSRF_FIELD.search(shown.text)
            assert csrf is not None, shown.text
            return await browser.post(
                f"{page}/sms",
                data={**form, "_csrf_token": csrf.group(1)},
                follow_redirects=False,
            )

        form = {
            "provider": "tencent",
            "sign_name": "扬子江石化",
            "template_id": "2210001",
            "access_key_id": TENCENT_KEY,
            "secret": TENCENT_SECRET,
        }
        missing = await save(form)
        assert missing.status_code == 422, missing.text
        assert 'data-field="app_id" data-rule="required"' in missing.text
        letters = await save({**form, "app_id": "14OO"})
        assert letters.status_code == 400, letters.text
        assert 'class="field-error" data-field="app_id"' in letters.text
        saved = await save({**form, "app_id": TENCENT_APP})
        assert saved.status_code in (302, 303), saved.text

        shown = (await browser.get(page)).text
    assert f'name="app_id" type="text" value="{TENCENT_APP}"' in shown
    hint = re.search(r'data-testid="sms-template-hint">(.*?)</p>', shown, re.S)
    assert hint is not None and "${content}" in hint.group(1) and "{1}" in hint.group(1)
    assert "100 characters" in hint.group(1)
