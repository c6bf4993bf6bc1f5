"""Alibaba Cloud SMS and Tencent Cloud SMS, spoken to over their HTTP APIs with httpx.

Both gateways send only templates their reviewers approved, so the portal's contract with a
tenant's template is one variable, ``content``, that carries the notification's short text (the
SMS block of its template, see :func:`template_content`). The tenant applies for a notification
template such as ``承包商平台通知：${content}，请登录平台处理。`` (Alibaba Cloud) or
``承包商平台通知：{1}，请登录平台处理。`` (Tencent Cloud), asking for a variable long enough for
:data:`CONTENT_MAX_CHARS` characters, since both gateways keep template variables short unless
asked for more.

* **Alibaba Cloud** (dysmsapi, ``SendSms``, version 2017-05-25): an RPC call signed with
  signature version 1.0, HMAC-SHA1 (:func:`aliyun_rpc_signature`), sent as a form POST so the
  phone number and the text stay out of URLs. ``OutId`` carries the idempotency key.
* **Tencent Cloud** (``sms.tencentcloudapi.com``, ``SendSms``, version 2021-01-11): a JSON POST
  signed with TC3-HMAC-SHA256 (:func:`tc3_signature`) in region ``ap-guangzhou``.
  ``SessionContext`` carries the idempotency key.

Neither gateway drops a duplicate by these keys; they tie the gateway's records and receipts to
the notification. A refusal raises :class:`DeliveryFailed`: throttling and busy-system codes,
HTTP 5xx and transport errors may be retried; a wrong template, signature, number, key or
account may not, and neither may a code this module does not know, so a misconfigured account
does not keep knocking on the gateway.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from infra.notify.message import DeliveryFailed
from infra.notify.sms import SmsMessage, SmsProvider, mask_phone

logger = logging.getLogger(__name__)

ALIYUN_ENDPOINT = "https://dysmsapi.aliyuncs.com/"
TENCENT_ENDPOINT = "https://sms.tencentcloudapi.com/"
ALIYUN_VERSION = "2017-05-25"
TENCENT_VERSION = "2021-01-11"
TENCENT_REGION = "ap-guangzhou"
TEMPLATE_VARIABLE = "content"
CONTENT_MAX_CHARS = 100
TIMEOUT = httpx.Timeout(10.0, connect=5.0)
SMS_VENDORS = ("aliyun", "tencent")

# Codes after which a later attempt can succeed: the gateway's or the number's rate limits
# (per minute or hour) and a busy or failing gateway. Everything else is the account's to fix.
_ALIYUN_RETRYABLE = frozenset(
    {
        "isp.SYSTEM_ERROR",
        "isp.GATEWAY_ERROR",
        "isv.BUSINESS_LIMIT_CONTROL",
        "SignatureNonceUsed",
        "ServiceUnavailable",
        "InternalError",
    }
)
_ALIYUN_RETRYABLE_PREFIXES = ("Throttling",)
_TENCENT_RETRYABLE = frozenset(
    {
        "LimitExceeded.PhoneNumberThirtySecondLimit",
        "LimitExceeded.PhoneNumberOneHourLimit",
        "LimitExceeded.DeliveryFrequencyLimit",
        "ServiceUnavailable",
    }
)
_TENCENT_RETRYABLE_PREFIXES = ("InternalError", "RequestLimitExceeded")
_LEADING_LABEL = re.compile(r"^【([^】]*)】\s*")
_MAINLAND_MOBILE = re.compile(r"^1[0-9]{10}$")


@dataclass(frozen=True)
class SmsEndpoints:
    """Where the gateways are; tests point them at a stand-in."""

    aliyun: str = ALIYUN_ENDPOINT
    tencent: str = TENCENT_ENDPOINT


@dataclass(frozen=True)
class SmsAccount:
    """A tenant's account at one gateway. ``template_id`` is Alibaba Cloud's template code or
    Tencent Cloud's template id; ``app_id`` is Tencent Cloud's SmsSdkAppId."""

    vendor: str
    sign_name: str
    template_id: str
    access_key_id: str
    secret: str = field(repr=False)
    app_id: str = ""


def template_content(text: str, limit: int = CONTENT_MAX_CHARS) -> str:
    """The value of the template's ``content`` variable: the SMS text with its 【kind】 label
    written as ``kind：`` (the gateways keep 【】 for the signature and refuse it inside a
    variable) and without its final full stop (the template's sentence goes on after it), cut
    at ``limit`` characters with an ellipsis."""
    content = _LEADING_LABEL.sub(r"\1：", text.strip(), count=1).removesuffix("。")
    content = content.replace("【", "[").replace("】", "]")
    if len(content) > limit:
        content = content[: limit - 1].rstrip() + "…"
    return content


def _percent(value: str) -> str:
    # RFC 3986 unreserved characters stay, everything else is %XX of its UTF-8 bytes (a space
    # is %20, not +), as Alibaba Cloud's signature rules require.
    return quote(value, safe="")


def aliyun_rpc_signature(method: str, params: Mapping[str, str], secret: str) -> str:
    """Alibaba Cloud RPC signature 1.0: base64 HMAC-SHA1, keyed ``secret + "&"``, over
    ``METHOD&%2F&percent(sorted, percent-encoded query)``."""
    canonical = "&".join(f"{_percent(k)}={_percent(v)}" for k, v in sorted(params.items()))
    string_to_sign = f"{method}&{_percent('/')}&{_percent(canonical)}"
    digest = hmac.new(f"{secret}&".encode(), string_to_sign.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def tc3_canonical_request(
    *, method: str, path: str, content_type: str, host: str, payload: bytes
) -> str:
    return "\n".join(
        (
            method,
            path or "/",
            "",
            f"content-type:{content_type}\nhost:{host}\n",
            "content-type;host",
            hashlib.sha256(payload).hexdigest(),
        )
    )


def tc3_signature(secret_key: str, *, service: str, timestamp: int, canonical_request: str) -> str:
    """Tencent Cloud TC3-HMAC-SHA256: the key derived from the secret, the UTC date of
    ``timestamp`` and the service, then HMAC-SHA256 over the string to sign, in hex."""
    day = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
    string_to_sign = "\n".join(
        (
            "TC3-HMAC-SHA256",
            str(timestamp),
            f"{day}/{service}/tc3_request",
            hashlib.sha256(canonical_request.encode()).hexdigest(),
        )
    )
    key = f"TC3{secret_key}".encode()
    for part in (day, service, "tc3_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()


def tencent_phone(phone: str) -> str:
    """E.164 as Tencent Cloud wants it: a mainland mobile number without a country code gets
    +86; a number with 00 or + keeps its own."""
    if phone.startswith("+"):
        return phone
    if phone.startswith("00"):
        return "+" + phone[2:]
    if _MAINLAND_MOBILE.match(phone):
        return "+86" + phone
    return "+" + phone


def _post(
    vendor: str, url: str, *, content: bytes, headers: dict[str, str], timeout: httpx.Timeout
) -> httpx.Response:
    try:
        # Redirects are not followed: the signed request must reach the gateway it was signed for.
        with httpx.Client(timeout=timeout, follow_redirects=False) as client:
            return client.post(url, content=content, headers=headers)
    except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
        raise DeliveryFailed(f"{vendor} SMS endpoint is not usable", retryable=False) from exc
    except httpx.TimeoutException as exc:
        raise DeliveryFailed(f"{vendor} SMS gateway timed out", retryable=True) from exc
    except httpx.TransportError as exc:
        raise DeliveryFailed(
            f"{vendor} SMS gateway unreachable: {type(exc).__name__}", retryable=True
        ) from exc


def _json_answer(vendor: str, response: httpx.Response) -> dict[str, Any]:
    if response.status_code >= 500 or response.status_code in (408, 429):
        raise DeliveryFailed(
            f"{vendor} SMS gateway answered {response.status_code}", retryable=True
        )
    try:
        answer = response.json()
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        raise DeliveryFailed(
            f"{vendor} SMS gateway answered {response.status_code} without JSON",
            retryable=False,
        )
    return answer


def _refusal(vendor: str, code: str, message: str, *, retryable: bool) -> DeliveryFailed:
    return DeliveryFailed(f"{vendor} SMS refused: {code} {message}"[:300], retryable=retryable)


class AliyunSmsProvider:
    """Sends through the tenant's Alibaba Cloud SMS account."""

    def __init__(
        self,
        account: SmsAccount,
        endpoint: str = ALIYUN_ENDPOINT,
        *,
        timeout: httpx.Timeout = TIMEOUT,
    ) -> None:
        self.account = account
        self.endpoint = endpoint
        self.timeout = timeout

    def params(self, message: SmsMessage) -> dict[str, str]:
        """The signed form: the common parameters of an RPC call and SendSms's own."""
        moment = datetime.fromtimestamp(time.time(), UTC)
        params = {
            "AccessKeyId": self.account.access_key_id,
            "Action": "SendSms",
            "Format": "JSON",
            "RegionId": "cn-hangzhou",
            "SignatureMethod": "HMAC-SHA1",
            "SignatureNonce": uuid.uuid4().hex,
            "SignatureVersion": "1.0",
            "Timestamp": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "Version": ALIYUN_VERSION,
            # Alibaba Cloud takes mainland numbers with or without 86 and others as the country
            # code and number, never with a plus sign.
            "PhoneNumbers": message.phone.removeprefix("+"),
            "SignName": self.account.sign_name,
            "TemplateCode": self.account.template_id,
            "TemplateParam": json.dumps(
                {TEMPLATE_VARIABLE: template_content(message.text)}, ensure_ascii=False
            ),
            "OutId": message.idempotency_key,
        }
        params["Signature"] = aliyun_rpc_signature("POST", params, self.account.secret)
        return params

    def send(self, message: SmsMessage) -> None:
        params = self.params(message)
        body = "&".join(f"{_percent(k)}={_percent(v)}" for k, v in params.items())
        response = _post(
            "Alibaba Cloud",
            self.endpoint,
            content=body.encode(),
            headers={
                "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
                "Accept": "application/json",
            },
            timeout=self.timeout,
        )
        answer = _json_answer("Alibaba Cloud", response)
        code = str(answer.get("Code", ""))
        if code != "OK":
            retryable = code in _ALIYUN_RETRYABLE or code.startswith(_ALIYUN_RETRYABLE_PREFIXES)
            raise _refusal(
                "Alibaba Cloud",
                code or "(no code)",
                str(answer.get("Message", "")),
                retryable=retryable,
            )
        logger.info(
            "SMS to %s sent through Alibaba Cloud, BizId %s",
            mask_phone(message.phone),
            answer.get("BizId"),
        )


class TencentSmsProvider:
    """Sends through the tenant's Tencent Cloud SMS application."""

    def __init__(
        self,
        account: SmsAccount,
        endpoint: str = TENCENT_ENDPOINT,
        *,
        timeout: httpx.Timeout = TIMEOUT,
    ) -> None:
        self.account = account
        self.endpoint = endpoint
        self.timeout = timeout

    def request(self, message: SmsMessage) -> tuple[bytes, dict[str, str]]:
        """The signed request's body and headers."""
        body = json.dumps(
            {
                "PhoneNumberSet": [tencent_phone(message.phone)],
                "SmsSdkAppId": self.account.app_id,
                "SignName": self.account.sign_name,
                "TemplateId": self.account.template_id,
                "TemplateParamSet": [template_content(message.text)],
                "SessionContext": message.idempotency_key,
            },
            ensure_ascii=False,
            separators=(",", ":"),
        ).encode()
        url = urlsplit(self.endpoint)
        content_type = "application/json; charset=utf-8"
        timestamp = int(time.time())
        canonical = tc3_canonical_request(
            method="POST", path=url.path, content_type=content_type, host=url.netloc, payload=body
        )
        signature = tc3_signature(
            self.account.secret, service="sms", timestamp=timestamp, canonical_request=canonical
        )
        day = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
        headers = {
            "Authorization": (
                f"TC3-HMAC-SHA256 Credential={self.account.access_key_id}/{day}/sms/tc3_request, "
                f"SignedHeaders=content-type;host, Signature={signature}"
            ),
            "Content-Type": content_type,
            "Host": url.netloc,
            "X-TC-Action": "SendSms",
            "X-TC-Version": TENCENT_VERSION,
            "X-TC-Timestamp": str(timestamp),
            "X-TC-Region": TENCENT_REGION,
        }
        return body, headers

    def send(self, message: SmsMessage) -> None:
        body, headers = self.request(message)
        response = _post(
            "Tencent Cloud", self.endpoint, content=body, headers=headers, timeout=self.timeout
        )
        answer = _json_answer("Tencent Cloud", response).get("Response")
        if not isinstance(answer, dict):
            raise DeliveryFailed("Tencent Cloud SMS answered without a Response", retryable=False)
        error = answer.get("Error")
        statuses = answer.get("SendStatusSet")
        if isinstance(error, dict):
            code, text = str(error.get("Code", "")), str(error.get("Message", ""))
        elif isinstance(statuses, list) and statuses and isinstance(statuses[0], dict):
            code, text = str(statuses[0].get("Code", "")), str(statuses[0].get("Message", ""))
        else:
            raise DeliveryFailed("Tencent Cloud SMS answered without a status", retryable=False)
        if code != "Ok":
            retryable = code in _TENCENT_RETRYABLE or code.startswith(_TENCENT_RETRYABLE_PREFIXES)
            raise _refusal("Tencent Cloud", code or "(no code)", text, retryable=retryable)
        logger.info(
            "SMS to %s sent through Tencent Cloud, SerialNo %s",
            mask_phone(message.phone),
            statuses[0].get("SerialNo") if isinstance(statuses, list) else None,
        )


def gateway_provider(account: SmsAccount, endpoints: SmsEndpoints) -> SmsProvider:
    if account.vendor == "aliyun":
        return AliyunSmsProvider(account, endpoints.aliyun)
    if account.vendor == "tencent":
        return TencentSmsProvider(account, endpoints.tencent)
    raise ValueError(f"SMS vendor {account.vendor!r} is not one of {SMS_VENDORS}")
