"""Writing a notification out in the recipient's language from the templates under
``infra/templates/notify/<locale>/``: ``<template>.txt.j2`` holds the blocks ``subject``,
``text``, ``markdown`` and ``sms``; ``<template>.html.j2`` is the HTML e-mail part."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import (
    Environment,
    FileSystemLoader,
    StrictUndefined,
    Template,
    pass_context,
    select_autoescape,
)
from jinja2.runtime import Context

from infra.i18n import DEFAULT_LOCALE
from infra.notify.message import Notification, NotificationKind, Rendered

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates" / "notify"
DEFAULT_TIMEZONE = "Asia/Shanghai"
COMMON_OPTIONAL = ("recipient_name", "url", "timezone")
_BLANK_LINES = re.compile(r"\n{3,}")
_WHITESPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class ContextSpec:
    required: tuple[str, ...]
    optional: tuple[str, ...] = ()
    choices: Mapping[str, frozenset[str]] = field(default_factory=dict)


CONTEXTS: dict[NotificationKind, ContextSpec] = {
    NotificationKind.APPROVAL_REQUESTED: ContextSpec(
        required=("permit_number", "work_type", "plant_name", "applicant", "step"),
        optional=("zone_name", "due_at"),
    ),
    NotificationKind.ALERT_RAISED: ContextSpec(
        required=("alert", "plant_name", "raised_at"),
        optional=("zone_name", "permit_number", "person"),
    ),
    NotificationKind.CERTIFICATE_EXPIRING: ContextSpec(
        required=(
            "contractor_name",
            "certificate",
            "certificate_number",
            "expires_on",
            "days_left",
        ),
        optional=("worker_name",),
    ),
    NotificationKind.ADMISSION_DECIDED: ContextSpec(
        required=("contractor_name", "decision"),
        optional=("reason",),
        choices={
            "decision": frozenset(
                {"approved", "rejected", "changes_requested", "suspended", "blacklisted"}
            )
        },
    ),
    NotificationKind.INDUCTION_LAPSING: ContextSpec(
        required=(
            "worker_name",
            "contractor_name",
            "induction",
            "plant_name",
            "valid_until",
            "days_left",
        ),
    ),
    NotificationKind.RATING_RECORDED: ContextSpec(
        required=(
            "contractor_name",
            "permit_number",
            "work_type",
            "plant_name",
            "rating",
            "deductions",
            "score",
            "appeal_until",
        ),
    ),
    NotificationKind.APPEAL_FILED: ContextSpec(
        required=(
            "contractor_name",
            "permit_number",
            "work_type",
            "plant_name",
            "reason",
            "filed_at",
        ),
    ),
    NotificationKind.SCORECARD_ISSUED: ContextSpec(
        required=("contractor_name", "period_kind", "year", "score", "grade", "decision"),
        optional=("quarter", "reason"),
        choices={
            "period_kind": frozenset({"quarter", "year"}),
            "grade": frozenset({"A", "B", "C", "D"}),
            "decision": frozenset({"keep", "probation", "suspend", "blacklist"}),
        },
    ),
    NotificationKind.EMAIL_VERIFICATION: ContextSpec(
        required=("tenant_name", "url", "expires_at"),
    ),
    NotificationKind.USER_INVITED: ContextSpec(
        required=("tenant_name", "inviter", "role", "url", "expires_at"),
        optional=("plant_name",),
        choices={
            "role": frozenset(
                {
                    "tenant_admin",
                    "hq_analyst",
                    "plant_manager",
                    "ehs_officer",
                    "unit_supervisor",
                    "guardian",
                }
            )
        },
    ),
}


def _as_datetime(value: Any) -> datetime:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if not isinstance(moment, datetime):
        raise TypeError(f"expected a datetime, got {type(value).__name__}")
    if moment.tzinfo is None:
        raise ValueError("naive datetime in a notification; pass times in UTC with tzinfo")
    return moment


def _zone(context: Context) -> ZoneInfo:
    return ZoneInfo(context.get("timezone") or DEFAULT_TIMEZONE)


@pass_context
def _local_time(context: Context, value: Any) -> str:
    """Times are shown on the plant's clock (北京时间 unless the context names a zone)."""
    return _as_datetime(value).astimezone(_zone(context)).strftime("%Y-%m-%d %H:%M")


@pass_context
def _local_date(context: Context, value: Any) -> str:
    if isinstance(value, str):
        value = datetime.fromisoformat(value) if "T" in value else date.fromisoformat(value)
    if isinstance(value, datetime):
        value = _as_datetime(value).astimezone(_zone(context)).date()
    if not isinstance(value, date):
        raise TypeError(f"expected a date, got {type(value).__name__}")
    return value.isoformat()


@cache
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(enabled_extensions=("html.j2",), default=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    env.filters["local_time"] = _local_time
    env.filters["local_date"] = _local_date
    return env


def _checked_context(notification: Notification) -> dict[str, Any]:
    spec = CONTEXTS[notification.kind]
    context = dict(notification.context)
    missing = [key for key in spec.required if context.get(key) in (None, "")]
    if missing:
        raise ValueError(f"{notification.kind} notification lacks {', '.join(missing)}")
    for key, allowed in spec.choices.items():
        if context[key] not in allowed:
            raise ValueError(f"{key} must be one of {sorted(allowed)}, got {context[key]!r}")
    unknown = set(context) - set(spec.required) - set(spec.optional) - set(COMMON_OPTIONAL)
    if unknown:
        raise ValueError(f"unknown context for {notification.kind}: {sorted(unknown)}")
    return {key: None for key in (*spec.optional, *COMMON_OPTIONAL)} | context


def _block(template: Template, name: str, variables: dict[str, Any]) -> str:
    return "".join(template.blocks[name](template.new_context(variables)))


def _paragraphs(text: str) -> str:
    return _BLANK_LINES.sub("\n\n", text).strip() + "\n"


def _one_line(text: str) -> str:
    return _WHITESPACE.sub(" ", text).strip()


def render_notification(notification: Notification) -> Rendered:
    """The notification in its locale (Chinese when none is set). Raises ``ValueError`` when the
    context lacks a field its kind needs, so a broken caller fails in its tests, not in a mail."""
    locale = notification.locale or DEFAULT_LOCALE
    env = environment()
    variables = _checked_context(notification)
    variables["macros"] = env.get_template(f"{locale}/_macros.j2").module
    variables["html_lang"] = "zh-CN" if locale == "zh_CN" else locale
    parts = env.get_template(f"{locale}/{notification.template_name}.txt.j2")
    subject = _one_line(_block(parts, "subject", variables))
    html = env.get_template(f"{locale}/{notification.template_name}.html.j2").render(
        variables | {"subject": subject}
    )
    return Rendered(
        subject=subject,
        text=_paragraphs(_block(parts, "text", variables)),
        html=html,
        markdown=_paragraphs(_block(parts, "markdown", variables)),
        sms=_one_line(_block(parts, "sms", variables)),
    )
