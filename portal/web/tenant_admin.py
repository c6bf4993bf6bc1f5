"""The tenant administrator's pages: an index of every administration page, the plants (code,
name, time zone, position and boundary), the tenant's notification channels (its own SMTP
server, its SMS account, DingTalk/WeCom robots and other webhooks), the branding printed on
documents, the alert thresholds and the reminder days.

The pages parse forms, call the services of ``tenants``, ``geofence`` and ``onboarding`` (the
reminder days) and render; what is a valid plant, channel or threshold, and what the plan
allows, is decided there, and every change
is written to the ledger there. Stored secrets (the SMTP password, the SMS secret, webhook
signing secrets) are never shown back; a webhook's new secret is shown once, on the page that
answers its creation. Every page and form is the tenant administrators'; everyone else gets 404,
as from the permit settings pages.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.datastructures import State, UploadFile
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, FromQuery
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession

from geofence import tracking
from geofence.schemas import PolicyIn
from infra.errors import DomainError, FieldProblem, NotFound
from infra.field_encryption import field_cipher
from infra.i18n import N_
from infra.i18n import gettext as _
from infra.notify.sms_gateways import CONTENT_MAX_CHARS
from infra.storage import ObjectStorage
from infra.uploads import DOCUMENT_KINDS, store_upload
from onboarding import services as onboarding_services
from portal.dependencies import AppSettings, DbSession
from portal.guards import signed_in
from portal.web.forms import (
    INVALID_FORM,
    close_files,
    convert,
    ensure_tenant_admin,
    field_text,
)
from portal.web.onboarding import FormErrors
from tenants import entitlements, notifications, services
from tenants.access import Principal
from tenants.models import Plant
from tenants.schemas import (
    SMS_VENDORS,
    BrandingIn,
    PlantCreate,
    PlantEdit,
    SmsSettingsIn,
    SmtpSettingsIn,
    WebhookIn,
)

FormData = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]
MultipartForm = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.MULTI_PART)]
LOGO_KIND = DOCUMENT_KINDS["photo"]
# Room for the form fields around the logo.
_LOGO_BODY = LOGO_KIND.max_bytes + 64 * 1024
_BAD_NUMBER = N_("Must be a number.")
_BAD_JSON = N_("Not valid JSON.")
_BAD_DAYS = N_("Give whole numbers of days, separated by commas.")
# People type lists with ASCII or full-width commas, the enumeration comma or spaces.
_DAY_SEPARATORS = re.compile(r"[\s,，、;；]+")

PLANT_FIELDS = {"code", "name", "timezone", "latitude", "longitude", "boundary"}
SMTP_FIELDS = {"host", "port", "from_address", "username", "password"}
SMS_FIELDS = {"provider", "sign_name", "template_id", "access_key_id", "app_id", "secret"}
WEBHOOK_FIELDS = {"name", "url", "format", "secret"}
POLICY_FIELDS = (
    "dwell_s",
    "no_signal_minutes",
    "max_speed_mps",
    "guardian_absent_minutes",
    "overstay_grace_minutes",
)
POLICY_LABELS = {
    "dwell_s": N_("Seconds outside the zone before an alert"),
    "no_signal_minutes": N_("Minutes without a position before an alert"),
    "max_speed_mps": N_("Fastest plausible speed (m/s); faster fixes are discarded"),
    "guardian_absent_minutes": N_("Minutes the guardian may be away before an alert"),
    "overstay_grace_minutes": N_("Minutes of grace after the permit ends"),
}
WEBHOOK_FORMAT_LABELS = {
    "dingtalk": N_("DingTalk group robot"),
    "wecom": N_("WeCom group robot"),
    "generic": N_("Generic webhook (signed)"),
}
SMS_VENDOR_LABELS = {"aliyun": N_("Alibaba Cloud SMS"), "tencent": N_("Tencent Cloud SMS")}
DONE_NOTICES = {
    "plant_added": N_("Plant added."),
    "plant_saved": N_("Plant saved."),
    "plant_retired": N_("Plant retired. Its history stays; it takes no new work."),
    "plant_reinstated": N_("Plant back in service."),
    "smtp_saved": N_("E-mail server saved."),
    "sms_saved": N_("SMS account saved."),
    "webhook_removed": N_("Webhook removed."),
    "branding_saved": N_("Branding saved."),
    "thresholds_saved": N_("Alert thresholds saved."),
    "reminder_days_saved": N_("Reminder days saved."),
}


@dataclass(frozen=True)
class Problem:
    """A refused field as the page lists it: the field, the rule and what is wrong."""

    field: str
    rule: str
    message: str


def _problems(exc: DomainError) -> list[Problem]:
    return [
        Problem(problem.field, problem.rule, _(problem.message, **problem.params))
        for problem in exc.problems
    ]


def _refused(
    template: str, context: dict[str, Any], exc: DomainError, known: set[str], **extra: Any
) -> Template:
    return Template(
        template,
        context={
            **context,
            "errors": FormErrors.of(exc, known, extra.pop("aliases", None)),
            "problems": _problems(exc),
            **extra,
        },
        status_code=exc.status_code,
    )


def _notice(done: str | None) -> str | None:
    return DONE_NOTICES.get(done or "")


# --- plants ------------------------------------------------------------------------------------


def _number(data: dict[str, Any], name: str, problems: list[FieldProblem]) -> float | str | None:
    """A number as a number, nothing as ``None``; the schema checks the range."""
    text = field_text(data, name)
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        problems.append(FieldProblem(name, "number", _BAD_NUMBER))
        return text


def _boundary(data: dict[str, Any], problems: list[FieldProblem]) -> dict[str, Any] | None:
    text = field_text(data, "boundary", 200_000)
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        problems.append(FieldProblem("boundary", "json", _BAD_JSON))
        return None
    if not isinstance(value, dict):
        problems.append(FieldProblem("boundary", "json", _BAD_JSON))
        return None
    return value


def _plant_form(data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The plant's fields and its boundary, every unreadable field named at once."""
    problems: list[FieldProblem] = []
    payload = {
        "name": field_text(data, "name"),
        "timezone": field_text(data, "timezone") or "Asia/Shanghai",
        "latitude": _number(data, "latitude", problems),
        "longitude": _number(data, "longitude", problems),
    }
    boundary = _boundary(data, problems)
    if problems:
        raise DomainError(INVALID_FORM, problems)
    return payload, boundary


def _plant_values(plant: Plant) -> dict[str, str]:
    return {
        "code": plant.code,
        "name": plant.name,
        "timezone": plant.timezone,
        "latitude": "" if plant.latitude is None else f"{plant.latitude:g}",
        "longitude": "" if plant.longitude is None else f"{plant.longitude:g}",
        "boundary": json.dumps(plant.boundary, ensure_ascii=False) if plant.boundary else "",
    }


def _form_values(data: dict[str, Any], names: set[str]) -> dict[str, str]:
    return {name: field_text(data, name, 200_000) for name in names}


async def _plant_refused(
    session: AsyncSession,
    slug: str,
    plant_id: uuid.UUID,
    exc: DomainError,
    *,
    typed: dict[str, str] | None = None,
) -> Template:
    """The plant's page again with what was refused; the form shows what was ``typed``, or the
    plant as stored. Another tenant's plant stays not found."""
    if isinstance(exc, NotFound):
        raise exc
    await session.rollback()
    plant = await services.get_plant(session, plant_id)
    values = {**typed, "code": plant.code} if typed is not None else _plant_values(plant)
    context = {"tenant_slug": slug, "plant": plant}
    return _refused("admin/plants_edit.html", context, exc, PLANT_FIELDS, values=values)


async def _plants_context(session: AsyncSession, slug: str) -> dict[str, Any]:
    return {
        "tenant_slug": slug,
        "plants": await services.list_plants(session),
        "values": {"timezone": "Asia/Shanghai"},
        "errors": FormErrors(),
        "problems": [],
    }


# --- channels ----------------------------------------------------------------------------------


async def _channels_context(session: AsyncSession, slug: str) -> dict[str, Any]:
    row = await services.channel_settings(session)

    def stored(name: str) -> str:
        value = getattr(row, name) if row is not None else None
        return "" if value is None else str(value)

    smtp = {
        "host": stored("smtp_host"),
        "port": stored("smtp_port") or "587",
        "from_address": stored("smtp_from"),
        "username": stored("smtp_username"),
        "starttls": row.smtp_starttls if row is not None else True,
    }
    sms = {
        name: stored(f"sms_{name}")
        for name in ("provider", "sign_name", "template_id", "access_key_id", "app_id")
    }
    return {
        "tenant_slug": slug,
        "smtp": smtp,
        "smtp_configured": bool(row and row.smtp_host),
        "smtp_password_stored": bool(row and row.smtp_password_encrypted),
        "sms": sms,
        "sms_configured": bool(row and row.sms_provider),
        "sms_secret_stored": bool(row and row.sms_secret_encrypted),
        "sms_vendors": [(code, SMS_VENDOR_LABELS[code]) for code in SMS_VENDORS],
        "sms_content_max": CONTENT_MAX_CHARS,
        "webhooks": await notifications.list_notification_webhooks(session),
        "webhook_formats": WEBHOOK_FORMAT_LABELS,
        "webhook_values": {"format": "dingtalk"},
        "new_secret": None,
        "form": None,
        "errors": FormErrors(),
        "problems": [],
    }


def _port(data: dict[str, Any]) -> int | str:
    text = field_text(data, "port")
    return int(text) if text.isdigit() else text


# --- branding ----------------------------------------------------------------------------------


async def _branding_context(session: AsyncSession, slug: str) -> dict[str, Any]:
    row = await services.branding(session)
    logo = await services.brand_logo(session)
    logo_name = (logo.original_filename or logo.content_type) if logo is not None else None
    return {
        "tenant_slug": slug,
        "values": {"display_name": (row.display_name or "") if row else ""},
        "logo_name": logo_name,
        "errors": FormErrors(),
        "problems": [],
    }


def _logo_upload(data: dict[str, Any]) -> UploadFile | None:
    upload = data.get("logo")
    if isinstance(upload, UploadFile) and upload.filename:
        return upload
    return None


async def _undo(session: AsyncSession, storage: ObjectStorage, keys: list[str]) -> None:
    """A refused form stores nothing: neither the rows flushed so far nor the logo uploaded."""
    await session.rollback()
    for key in keys:
        storage.delete(key)


# --- thresholds --------------------------------------------------------------------------------


def _policy_values(policy: tracking.Policy) -> dict[str, str]:
    return {name: f"{getattr(policy, name):g}" for name in POLICY_FIELDS}


def _policy_payload(data: dict[str, Any]) -> dict[str, Any]:
    """Numbers as numbers; anything else goes on to the schema, which names the field."""
    payload: dict[str, Any] = {}
    for name in POLICY_FIELDS:
        text = field_text(data, name)
        try:
            payload[name] = int(text) if name != "max_speed_mps" else float(text)
        except ValueError:
            payload[name] = text
    return payload


def _reminder_days(data: dict[str, Any]) -> list[int]:
    """The days typed, in order; the service checks how many and which."""
    days = []
    for part in _DAY_SEPARATORS.split(field_text(data, "reminder_days")):
        if not part:
            continue
        try:
            days.append(int(part))
        except ValueError:
            raise DomainError(
                INVALID_FORM, [FieldProblem("reminder_days", "integer", _BAD_DAYS)]
            ) from None
    return days


async def _thresholds_context(session: AsyncSession, slug: str) -> dict[str, Any]:
    reminder_days = (await onboarding_services.onboarding_settings(session)).reminder_days
    return {
        "tenant_slug": slug,
        "values": {
            **_policy_values(await tracking.get_policy(session)),
            "reminder_days": ", ".join(str(day) for day in reminder_days),
        },
        "labels": [(name, POLICY_LABELS[name]) for name in POLICY_FIELDS],
        "reminder_days": reminder_days,
        "errors": FormErrors(),
        "problems": [],
    }


# --- routes ------------------------------------------------------------------------------------


class TenantAdminPages(Controller):
    include_in_schema = False
    guards = [signed_in]  # noqa: RUF012

    @get("/t/{slug:str}/admin")
    async def index(self, request: Request[Principal, Any, Any], slug: FromPath[str]) -> Template:
        ensure_tenant_admin(request.user, slug)
        return Template("admin/admin_index.html", context={"tenant_slug": slug})

    # --- plants --------------------------------------------------------------------------------

    @get("/t/{slug:str}/admin/plants")
    async def plants(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        slug: FromPath[str],
        done: FromQuery[str | None] = None,
    ) -> Template:
        ensure_tenant_admin(request.user, slug)
        context = await _plants_context(db_session, slug)
        return Template("admin/plants.html", context={**context, "notice": _notice(done)})

    @post("/t/{slug:str}/admin/plants")
    async def add_plant(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        state: State,
        slug: FromPath[str],
        data: FormData,
    ) -> Template | Redirect:
        ensure_tenant_admin(request.user, slug)
        try:
            await entitlements.ensure_can_add_plant(db_session, state.billing)
            payload, boundary = _plant_form(data)
            plant = convert({"code": field_text(data, "code"), **payload}, PlantCreate)
            await services.add_plant(
                db_session,
                code=plant.code,
                name=plant.name,
                timezone=plant.timezone,
                latitude=plant.latitude,
                longitude=plant.longitude,
                boundary=boundary,
                actor_id=request.user.user_id,
            )
        except DomainError as exc:
            await db_session.rollback()
            context = await _plants_context(db_session, slug)
            return _refused(
                "admin/plants.html",
                context,
                exc,
                PLANT_FIELDS,
                values=_form_values(data, PLANT_FIELDS),
            )
        return Redirect(path=f"/t/{slug}/admin/plants?done=plant_added")

    @get("/t/{slug:str}/admin/plants/{plant_id:uuid}")
    async def plant(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        slug: FromPath[str],
        plant_id: FromPath[uuid.UUID],
        done: FromQuery[str | None] = None,
    ) -> Template:
        ensure_tenant_admin(request.user, slug)
        plant = await services.get_plant(db_session, plant_id)
        return Template(
            "admin/plants_edit.html",
            context={
                "tenant_slug": slug,
                "plant": plant,
                "values": _plant_values(plant),
                "errors": FormErrors(),
                "problems": [],
                "notice": _notice(done),
            },
        )

    @post("/t/{slug:str}/admin/plants/{plant_id:uuid}")
    async def edit_plant(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        slug: FromPath[str],
        plant_id: FromPath[uuid.UUID],
        data: FormData,
    ) -> Template | Redirect:
        ensure_tenant_admin(request.user, slug)
        plant = await services.get_plant(db_session, plant_id)
        try:
            payload, boundary = _plant_form(data)
            await services.edit_plant(
                db_session,
                plant_id,
                convert(payload, PlantEdit),
                boundary=boundary,
                actor_id=request.user.user_id,
            )
        except DomainError as exc:
            return await _plant_refused(
                db_session, slug, plant_id, exc, typed=_form_values(data, PLANT_FIELDS)
            )
        return Redirect(path=f"/t/{slug}/admin/plants/{plant.id}?done=plant_saved")

    @post("/t/{slug:str}/admin/plants/{plant_id:uuid}/retire")
    async def retire_plant(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        slug: FromPath[str],
        plant_id: FromPath[uuid.UUID],
    ) -> Template | Redirect:
        ensure_tenant_admin(request.user, slug)
        try:
            await services.retire_plant(db_session, plant_id, actor_id=request.user.user_id)
        except DomainError as exc:
            return await _plant_refused(db_session, slug, plant_id, exc)
        return Redirect(path=f"/t/{slug}/admin/plants/{plant_id}?done=plant_retired")

    @post("/t/{slug:str}/admin/plants/{plant_id:uuid}/reinstate")
    async def reinstate_plant(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        state: State,
        slug: FromPath[str],
        plant_id: FromPath[uuid.UUID],
    ) -> Template | Redirect:
        ensure_tenant_admin(request.user, slug)
        try:
            await services.reinstate_plant(
                db_session, plant_id, state.billing, actor_id=request.user.user_id
            )
        except DomainError as exc:
            return await _plant_refused(db_session, slug, plant_id, exc)
        return Redirect(path=f"/t/{slug}/admin/plants/{plant_id}?done=plant_reinstated")

    # --- channels ------------------------------------------------------------------------------

    @get("/t/{slug:str}/admin/channels")
    async def channels(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        slug: FromPath[str],
        done: FromQuery[str | None] = None,
    ) -> Template:
        ensure_tenant_admin(request.user, slug)
        context = await _channels_context(db_session, slug)
        return Template("admin/channels.html", context={**context, "notice": _notice(done)})

    async def _channel_refused(
        self, session: AsyncSession, slug: str, exc: DomainError, form: str, values: dict[str, Any]
    ) -> Template:
        await session.rollback()
        context = await _channels_context(session, slug)
        known = {"smtp": SMTP_FIELDS, "sms": SMS_FIELDS, "webhook": WEBHOOK_FIELDS}[form]
        key = {"smtp": "smtp", "sms": "sms", "webhook": "webhook_values"}[form]
        return _refused("admin/channels.html", context, exc, known, form=form, **{key: values})

    @post("/t/{slug:str}/admin/channels/smtp")
    async def save_smtp(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        settings: AppSettings,
        slug: FromPath[str],
        data: FormData,
    ) -> Template | Redirect:
        ensure_tenant_admin(request.user, slug)
        payload = {
            "host": field_text(data, "host"),
            "port": _port(data),
            "from_address": field_text(data, "from_address"),
            "username": field_text(data, "username"),
            "password": field_text(data, "password"),
            "starttls": bool(field_text(data, "starttls")),
        }
        try:
            await services.save_smtp_settings(
                db_session,
                convert(payload, SmtpSettingsIn),
                cipher=field_cipher(settings),
                actor_id=request.user.user_id,
            )
        except DomainError as exc:
            values = {**payload, "port": field_text(data, "port"), "password": ""}
            return await self._channel_refused(db_session, slug, exc, "smtp", values)
        return Redirect(path=f"/t/{slug}/admin/channels?done=smtp_saved")

    @post("/t/{slug:str}/admin/channels/sms")
    async def save_sms(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        settings: AppSettings,
        slug: FromPath[str],
        data: FormData,
    ) -> Template | Redirect:
        ensure_tenant_admin(request.user, slug)
        payload = {name: field_text(data, name) for name in SMS_FIELDS}
        try:
            await services.save_sms_settings(
                db_session,
                convert(payload, SmsSettingsIn),
                cipher=field_cipher(settings),
                actor_id=request.user.user_id,
            )
        except DomainError as exc:
            values = {**payload, "secret": ""}
            return await self._channel_refused(db_session, slug, exc, "sms", values)
        return Redirect(path=f"/t/{slug}/admin/channels?done=sms_saved")

    @post("/t/{slug:str}/admin/channels/webhooks")
    async def add_webhook(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        slug: FromPath[str],
        data: FormData,
    ) -> Template:
        ensure_tenant_admin(request.user, slug)
        payload = {name: field_text(data, name, 1_000) for name in WEBHOOK_FIELDS}
        try:
            webhook = convert(payload, WebhookIn)
            _row, secret = await notifications.add_notification_webhook(
                db_session,
                name=webhook.name,
                url=webhook.url,
                format=webhook.format,
                secret=webhook.secret or None,
                actor_id=request.user.user_id,
            )
        except DomainError as exc:
            values = {**payload, "secret": ""}
            return await self._channel_refused(db_session, slug, exc, "webhook", values)
        context = await _channels_context(db_session, slug)
        # A generic webhook's secret was made here: this answer is the only time it is shown.
        shown = secret if webhook.format == "generic" and not webhook.secret else None
        return Template(
            "admin/channels.html",
            context={**context, "new_secret": shown, "notice": N_("Webhook added.")},
        )

    @post("/t/{slug:str}/admin/channels/webhooks/{webhook_id:uuid}/remove")
    async def remove_webhook(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        slug: FromPath[str],
        webhook_id: FromPath[uuid.UUID],
    ) -> Redirect:
        ensure_tenant_admin(request.user, slug)
        await notifications.remove_notification_webhook(
            db_session, webhook_id, actor_id=request.user.user_id
        )
        return Redirect(path=f"/t/{slug}/admin/channels?done=webhook_removed")

    # --- branding ------------------------------------------------------------------------------

    @get("/t/{slug:str}/admin/branding")
    async def branding(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        slug: FromPath[str],
        done: FromQuery[str | None] = None,
    ) -> Template:
        ensure_tenant_admin(request.user, slug)
        context = await _branding_context(db_session, slug)
        return Template("admin/branding.html", context={**context, "notice": _notice(done)})

    @post("/t/{slug:str}/admin/branding", request_max_body_size=_LOGO_BODY)
    async def save_branding(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        state: State,
        slug: FromPath[str],
        data: MultipartForm,
    ) -> Template | Redirect:
        ensure_tenant_admin(request.user, slug)
        stored: list[str] = []
        try:
            brand = convert({"display_name": field_text(data, "display_name")}, BrandingIn)
            current = await services.branding(db_session)
            logo_id = current.logo_id if current is not None else None
            if field_text(data, "remove_logo"):
                logo_id = None
            upload = _logo_upload(data)
            if upload is not None:
                record = await store_upload(
                    db_session,
                    state.storage,
                    LOGO_KIND,
                    upload.file,
                    filename=upload.filename,
                    created_by=request.user.user_id,
                )
                stored.append(record.key)
                logo_id = record.id
            await services.set_branding(
                db_session,
                display_name=brand.display_name,
                logo_id=logo_id,
                actor_id=request.user.user_id,
            )
        except DomainError as exc:
            await _undo(db_session, state.storage, stored)
            context = await _branding_context(db_session, slug)
            return _refused(
                "admin/branding.html",
                context,
                exc,
                {"display_name", "logo"},
                aliases={"file": "logo"},
                values={"display_name": field_text(data, "display_name")},
            )
        finally:
            await close_files(data)
        return Redirect(path=f"/t/{slug}/admin/branding?done=branding_saved")

    # --- thresholds ----------------------------------------------------------------------------

    @get("/t/{slug:str}/admin/thresholds")
    async def thresholds(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        slug: FromPath[str],
        done: FromQuery[str | None] = None,
    ) -> Template:
        ensure_tenant_admin(request.user, slug)
        context = await _thresholds_context(db_session, slug)
        return Template("admin/thresholds.html", context={**context, "notice": _notice(done)})

    @post("/t/{slug:str}/admin/thresholds")
    async def save_thresholds(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        slug: FromPath[str],
        data: FormData,
    ) -> Template | Redirect:
        ensure_tenant_admin(request.user, slug)
        try:
            policy = convert(_policy_payload(data), PolicyIn)
            await tracking.save_policy(db_session, policy, actor_id=request.user.user_id)
        except DomainError as exc:
            await db_session.rollback()
            context = await _thresholds_context(db_session, slug)
            return _refused(
                "admin/thresholds.html",
                context,
                exc,
                set(POLICY_FIELDS),
                values={
                    **context["values"],
                    **{name: field_text(data, name) for name in POLICY_FIELDS},
                },
            )
        return Redirect(path=f"/t/{slug}/admin/thresholds?done=thresholds_saved")

    @post("/t/{slug:str}/admin/thresholds/reminders")
    async def save_reminder_days(
        self,
        request: Request[Principal, Any, Any],
        db_session: DbSession,
        slug: FromPath[str],
        data: FormData,
    ) -> Template | Redirect:
        ensure_tenant_admin(request.user, slug)
        try:
            await onboarding_services.set_reminder_days(
                db_session, _reminder_days(data), actor_id=request.user.user_id
            )
        except DomainError as exc:
            await db_session.rollback()
            context = await _thresholds_context(db_session, slug)
            return _refused(
                "admin/thresholds.html",
                context,
                exc,
                {"reminder_days"},
                values={**context["values"], "reminder_days": field_text(data, "reminder_days")},
            )
        return Redirect(path=f"/t/{slug}/admin/thresholds?done=reminder_days_saved")
