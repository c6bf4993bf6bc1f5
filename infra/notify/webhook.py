"""Outgoing webhooks: a signed generic JSON payload, or a DingTalk or WeCom group robot message.

Generic payloads carry ``X-Portal-Signature: t=<unix seconds>,v1=<hex>``, where ``v1`` is
HMAC-SHA256 with the endpoint's secret over ``"<t>." + body``. A receiver recomputes it, compares
in constant time, and rejects a ``t`` older than a few minutes, so a captured request cannot be
replayed later. ``X-Portal-Delivery`` repeats the idempotency key for deduplication.

DingTalk robots with 加签 get ``timestamp`` (milliseconds) and ``sign`` query parameters, where
``sign`` is the URL-encoded base64 of HMAC-SHA256(secret, ``"<timestamp>\\n<secret>"``), as
DingTalk documents. WeCom robots authenticate by the ``key`` in their URL.

Robot URLs carry their access token in the query string, so neither the URL nor the secret is
ever written to a log or an error message: endpoints are named by ``label``.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import json
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote_plus, urlsplit

import httpx

from infra.notify.message import ChannelName, DeliveryFailed, Notification, Rendered

DEFAULT_TIMEOUT_SECONDS = 10.0
SIGNATURE_HEADER = "X-Portal-Signature"
DELIVERY_HEADER = "X-Portal-Delivery"
EVENT_HEADER = "X-Portal-Event"
# Robot API codes that mean "too fast" or "busy, try again": DingTalk 130101 (sending too
# fast), WeCom 45009 (frequency limit), -1 on both (system busy).
_ROBOT_RETRYABLE_CODES = frozenset({-1, 130101, 45009})


class WebhookFormat(enum.StrEnum):
    GENERIC = "generic"
    DINGTALK = "dingtalk"
    WECOM = "wecom"


@dataclass(frozen=True)
class WebhookEndpoint:
    url: str = field(repr=False)
    format: WebhookFormat
    secret: str = field(default="", repr=False)

    @property
    def label(self) -> str:
        """How logs and results name the endpoint: scheme and host, never the token."""
        parts = urlsplit(self.url)
        return f"{self.format.value}:{parts.scheme}://{parts.hostname or ''}"


def generic_signature(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    digest = hmac.new(
        secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256
    ).digest()
    return quote_plus(base64.b64encode(digest).decode())


def _json_bytes(document: dict[str, Any]) -> bytes:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


def _headers() -> dict[str, str]:
    return {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": "contractor-portal-notify/1",
    }


def _post(url: str, body: bytes, headers: dict[str, str]) -> httpx.Request:
    try:
        return httpx.Request("POST", url, content=body, headers=headers)
    except httpx.InvalidURL as exc:
        raise DeliveryFailed("webhook URL is not usable", retryable=False) from exc


def signed_json_request(
    endpoint: WebhookEndpoint, document: dict[str, Any], *, delivery: str, event: str
) -> httpx.Request:
    """A generic webhook request: ``document`` as JSON, signed with the endpoint's secret, the
    idempotency key in ``X-Portal-Delivery`` and the kind of message in ``X-Portal-Event``."""
    if not endpoint.secret:
        raise DeliveryFailed("generic webhook without a signing secret", retryable=False)
    body = _json_bytes(document)
    headers = _headers()
    headers[SIGNATURE_HEADER] = generic_signature(endpoint.secret, int(time.time()), body)
    headers[DELIVERY_HEADER] = delivery
    headers[EVENT_HEADER] = event
    return _post(endpoint.url, body, headers)


def build_request(
    notification: Notification, rendered: Rendered, endpoint: WebhookEndpoint
) -> httpx.Request:
    if endpoint.format is WebhookFormat.GENERIC:
        document = {
            "id": notification.idempotency_key,
            "kind": notification.kind.value,
            "tenant_id": str(notification.tenant_id),
            "locale": notification.locale,
            "subject": rendered.subject,
            "text": rendered.text,
            "markdown": rendered.markdown,
            "data": notification.to_payload()["context"],
        }
        return signed_json_request(
            endpoint,
            document,
            delivery=notification.idempotency_key,
            event=notification.kind.value,
        )
    moment = time.time()
    headers = _headers()
    url = endpoint.url
    if endpoint.format is WebhookFormat.DINGTALK:
        body = _json_bytes(
            {
                "msgtype": "markdown",
                "markdown": {"title": rendered.subject, "text": rendered.markdown},
            }
        )
        if endpoint.secret:
            timestamp_ms = int(moment * 1000)
            separator = "&" if urlsplit(url).query else "?"
            sign = dingtalk_sign(endpoint.secret, timestamp_ms)
            url = f"{url}{separator}timestamp={timestamp_ms}&sign={sign}"
    else:
        body = _json_bytes({"msgtype": "markdown", "markdown": {"content": rendered.markdown}})
    return _post(url, body, headers)


def _check_robot_answer(response: httpx.Response) -> None:
    """DingTalk and WeCom answer 200 even when they refuse; the verdict is ``errcode``."""
    try:
        answer = response.json()
    except ValueError as exc:
        raise DeliveryFailed("robot answered something other than JSON", retryable=True) from exc
    code = answer.get("errcode", 0) if isinstance(answer, dict) else 0
    if code != 0:
        raise DeliveryFailed(
            f"robot refused: errcode {code}", retryable=code in _ROBOT_RETRYABLE_CODES
        )


def send_request(
    request: httpx.Request, timeout: float = DEFAULT_TIMEOUT_SECONDS
) -> httpx.Response:
    """Send a webhook request; raise :class:`DeliveryFailed` saying whether a retry can help."""
    try:
        # Redirects are not followed: a signed request must reach the URL the tenant set.
        with httpx.Client(timeout=timeout, follow_redirects=False) as client:
            response = client.send(request)
    except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
        raise DeliveryFailed("webhook URL is not usable", retryable=False) from exc
    except httpx.TimeoutException as exc:
        raise DeliveryFailed("webhook timed out", retryable=True) from exc
    except httpx.TransportError as exc:
        raise DeliveryFailed(f"webhook unreachable: {type(exc).__name__}", retryable=True) from exc
    status = response.status_code
    if status >= 500 or status in (408, 429):
        raise DeliveryFailed(f"webhook answered {status}", retryable=True)
    if status >= 300:
        raise DeliveryFailed(f"webhook answered {status}", retryable=False)
    return response


class WebhookChannel:
    name = ChannelName.WEBHOOK

    def __init__(self, *, timeout: float = DEFAULT_TIMEOUT_SECONDS) -> None:
        self.timeout = timeout

    def send(
        self, notification: Notification, rendered: Rendered, destination: WebhookEndpoint
    ) -> None:
        response = send_request(build_request(notification, rendered, destination), self.timeout)
        if destination.format is not WebhookFormat.GENERIC:
            _check_robot_answer(response)
