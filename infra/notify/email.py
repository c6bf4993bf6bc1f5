"""E-mail over SMTP (stdlib ``smtplib``): a multipart message with a plain-text and an HTML part,
UTF-8 throughout, the Chinese subject encoded as RFC 2047 by the ``email`` package."""

from __future__ import annotations

import hashlib
import re
import smtplib
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr

from infra.db import utcnow
from infra.notify.message import ChannelName, DeliveryFailed, Notification, Rendered
from infra.settings import Settings

DEFAULT_TIMEOUT_SECONDS = 15.0
_ADDRESS = re.compile(r"^[^@\s<>,;\"]+@[^@\s<>,;\"]+\.[^@\s<>,;\"]+$")


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    from_address: str
    username: str = ""
    password: str = field(default="", repr=False)
    starttls: bool = True
    timeout: float = DEFAULT_TIMEOUT_SECONDS

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpConfig | None:
        """``None`` when no SMTP host is set: e-mail is off."""
        if not settings.smtp_host:
            return None
        return cls(
            host=settings.smtp_host,
            port=settings.smtp_port,
            from_address=settings.smtp_from,
            username=settings.smtp_username,
            password=settings.smtp_password,
            starttls=settings.smtp_starttls,
        )


def _is_transient(code: int) -> bool:
    """SMTP 4xx replies are temporary by definition (RFC 5321 §4.2.1); 5xx are permanent."""
    return 400 <= code < 500


class EmailChannel:
    name = ChannelName.EMAIL

    def __init__(self, config: SmtpConfig) -> None:
        self.config = config

    def build_message(
        self, notification: Notification, rendered: Rendered, destination: str
    ) -> EmailMessage:
        message = EmailMessage()
        message["Subject"] = rendered.subject
        message["From"] = self.config.from_address
        message["To"] = destination
        message["Date"] = format_datetime(utcnow())
        # Derived from the idempotency key, so a resent notification carries the same id and
        # mail clients that thread or deduplicate by Message-ID show it once.
        digest = hashlib.sha256(
            f"{notification.tenant_id}:{notification.idempotency_key}".encode()
        ).hexdigest()[:32]
        domain = parseaddr(self.config.from_address)[1].rpartition("@")[2] or "localhost"
        message["Message-ID"] = f"<{digest}@{domain}>"
        message["Auto-Submitted"] = "auto-generated"
        message.set_content(rendered.text, charset="utf-8")
        message.add_alternative(rendered.html, subtype="html", charset="utf-8")
        return message

    def send(self, notification: Notification, rendered: Rendered, destination: str) -> None:
        if not _ADDRESS.match(destination):
            raise DeliveryFailed("not an e-mail address", retryable=False)
        message = self.build_message(notification, rendered, destination)
        config = self.config
        try:
            with smtplib.SMTP(config.host, config.port, timeout=config.timeout) as smtp:
                if config.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if config.username:
                    smtp.login(config.username, config.password)
                smtp.send_message(message)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _reply in exc.recipients.values()]
            raise DeliveryFailed(
                f"recipient refused ({', '.join(map(str, codes))})",
                retryable=all(_is_transient(code) for code in codes),
            ) from exc
        except smtplib.SMTPNotSupportedError as exc:
            raise DeliveryFailed(
                "SMTP server does not offer STARTTLS; set PORTAL_SMTP_STARTTLS=false only for a "
                "server on a trusted network",
                retryable=False,
            ) from exc
        except smtplib.SMTPResponseException as exc:
            raise DeliveryFailed(
                f"SMTP server answered {exc.smtp_code}", retryable=_is_transient(exc.smtp_code)
            ) from exc
        except (smtplib.SMTPException, OSError) as exc:
            # Disconnects, refused connections, timeouts, TLS handshakes: the server may be back.
            raise DeliveryFailed(f"SMTP unreachable: {type(exc).__name__}", retryable=True) from exc
