"""The tenant administrator's pages over HTTP on PostgreSQL: the index and each page for the
tenant administrator and 404 for everyone else; plants added and edited with a bad time zone,
position or boundary refused naming the field and the rule, and a plant beyond the plan refused
with 402 naming the limit and the upgrade; the tenant's SMTP server, SMS account and robots with
their secrets stored encrypted and never shown back; the alert thresholds; the branding printed
on the permit; every change in the ledger, and one tenant's plants and webhooks out of another's
reach."""

from __future__ import annotations

import dataclasses
import io
import json
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from litestar.testing import AsyncTestClient
from pypdf import PdfReader
from sqlalchemy import select

from infra.audit import AuditEntry
from infra.db import Database
from infra.field_encryption import field_cipher
from infra.notify import Channels, LoggingSmsProvider, SmsChannel, WebhookChannel
from infra.tasks import worker_settings
from infra.tenancy import tenant_scope
from onboarding.catalogue import WorkType
from permits import records
from portal.app import create_app
from tenants import notifications
from tenants import services as tenant_services
from tenants.models import NotificationChannelSettings, NotificationWebhook, Plant, Role, User
from tenants.schemas import SmtpSettingsIn
from tests.conftest import PostgresDatabase, settings_for
from tests.factories import SeededTenant, TenantFactory, audit_actions
from tests.integration.test_billing import with_billing
from tests.integration.test_notify import SmtpServer, _notification
from tests.integration.test_notify import (
    smtp_server as smtp_server,
)  # a fixture: pytest finds it here
from tests.integration.test_scoring_api import png
from tests.permit_factories import PermitWorld, window

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.postgres]

CSRF_FIELD = re.compile(r'name="_csrf_token"\s+value="([^"]+)"')
HOST_PASSWORD = "host-pass-12345"
NO_FILE = {"unused": ("", b"", "application/octet-stream")}
PAGES = ("", "/plants", "/channels", "/branding", "/thresholds")
SQUARE = {
    "type": "Polygon",
    "coordinates": [
        [[118.70, 32.20], [118.72, 32.20], [118.72, 32.22], [118.70, 32.22], [118.70, 32.20]]
    ],
}
PLANT = {
    "code": "P9",
    "name": "九号厂区",
    "timezone": "Asia/Shanghai",
    "latitude": "32.21",
    "longitude": "118.71",
}


@dataclasses.dataclass
class Site:
    """One test client for everyone (on PostgreSQL the app's connections belong to the client's
    event loop), with each user's cookies kept apart."""

    world: PermitWorld
    other: SeededTenant
    client: AsyncTestClient[Any]
    jars: dict[str, httpx.Cookies]

    @property
    def slug(self) -> str:
        return self.world.tenant.slug

    async def request(self, who: str, method: str, url: str, **kwargs: Any) -> Any:
        self.client.cookies = self.jars[who]
        try:
            return await self.client.request(method, url, **kwargs)
        finally:
            self.jars[who] = httpx.Cookies(self.client.cookies)

    async def get(self, who: str, url: str) -> Any:
        return await self.request(who, "GET", url)

    async def post(
        self, who: str, page: str, action: str, form: dict[str, str], files: Any = None
    ) -> Any:
        """Send a form as a browser would, with the CSRF token of a page the user may see."""
        shown = await self.get(who, page)
        assert shown.status_code == 200, shown.text
        token = CSRF_FIELD.search(shown.text)
        assert token is not None, shown.text
        data = {**form, "_csrf_token": token.group(1)}
        if files is None:
            return await self.request(who, "POST", action, data=data)
        return await self.request(who, "POST", action, data=data, files=files)

    def admin(self, path: str = "", tenant: SeededTenant | None = None) -> str:
        return f"/t/{(tenant or self.world.tenant).slug}/admin{path}"


async def _sign_in(client: AsyncTestClient[Any], slug: str, email: str, password: str) -> Any:
    client.cookies = httpx.Cookies({"portal_lang": "zh_CN"})
    login = await client.get(f"/t/{slug}/login")
    token = CSRF_FIELD.search(login.text)
    assert token is not None, login.text
    answer = await client.post(
        "/login",
        data={"tenant": slug, "email": email, "password": password, "_csrf_token": token.group(1)},
    )
    assert answer.status_code in (302, 303), answer.text
    return httpx.Cookies(client.cookies)


async def _host_logins(world: PermitWorld) -> dict[str, tuple[str, str]]:
    logins = {}
    async with world.session() as session:
        for name, role in (("admin", Role.TENANT_ADMIN), ("ehs", Role.EHS_OFFICER)):
            user = await session.scalar(select(User).where(User.id == world.hosts[role].user_id))
            assert user is not None
            await tenant_services.set_password(session, user, HOST_PASSWORD)
            logins[name] = (user.email, HOST_PASSWORD)
    return logins


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def site(
    postgres: PostgresDatabase, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Site]:
    directory = tmp_path_factory.mktemp("tenant-admin-pages")
    settings = settings_for(
        postgres.app_url,
        directory / "var",
        migration_database_url=postgres.owner_url,
        login_rate_per_minute=10_000,
    )
    database = Database.from_settings(settings)
    factory = TenantFactory()
    try:
        world = await PermitWorld.create(database, settings, factory, induct=False)
        logins = await _host_logins(world)
        other = await factory.create(database, plants=("Q1",), users=((Role.TENANT_ADMIN, None),))
        async with AsyncTestClient(app=create_app(settings)) as client:
            client.follow_redirects = False
            jars = {
                name: await _sign_in(client, world.tenant.slug, email, password)
                for name, (email, password) in logins.items()
            }
            stranger = other.user(Role.TENANT_ADMIN)
            jars["b_admin"] = await _sign_in(client, other.slug, stranger.email, stranger.password)
            yield Site(world, other, client, jars)
    finally:
        await database.dispose()


def _problem(html: str, field: str, rule: str) -> bool:
    return f'data-testid="problem" data-field="{field}" data-rule="{rule}"' in html


async def _ledger(site: Site, action: str) -> list[dict[str, Any]]:
    async with site.world.database.session() as session:
        with tenant_scope(site.world.tenant.id):
            rows = await session.scalars(
                select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.seq)
            )
            return [dict(row.payload or {}) for row in rows]


# --- who may -----------------------------------------------------------------------------------


async def test_every_page_renders_for_the_tenant_admin_and_the_index_links_them(
    site: Site,
) -> None:
    for path in PAGES:
        page = await site.get("admin", site.admin(path))
        assert page.status_code == 200, (path, page.text)
        assert 'lang="zh' in page.text
    index = (await site.get("admin", site.admin())).text
    for path in (
        "/plants",
        "/users",
        "/channels",
        "/branding",
        "/export",
        "/thresholds",
        "/permit-chains",
        "/calendar",
    ):
        assert f'href="{site.admin(path)}"' in index, path
    assert f'href="/t/{site.slug}/scoring-policy"' in index
    plants = (await site.get("admin", site.admin("/plants"))).text
    assert 'data-testid="plant" data-code="P1"' in plants
    assert 'data-testid="plant" data-code="P2"' in plants
    thresholds = (await site.get("admin", site.admin("/thresholds"))).text
    assert 'data-testid="reminder-days"' in thresholds and "30、7、1" in thresholds
    assert f'href="/t/{site.slug}/scoring-policy"' in thresholds


async def test_other_roles_and_other_tenants_get_no_page(site: Site) -> None:
    plant_id = site.world.tenant.plants["P1"]
    for path in (*PAGES, f"/plants/{plant_id}"):
        assert (await site.get("ehs", site.admin(path))).status_code == 404, path
        away = await site.get("b_admin", site.admin(path))
        assert away.status_code in (302, 303) and "/login" in away.headers["location"], path
    home = f"/t/{site.slug}/"
    for action, form in (
        ("/plants", PLANT),
        (f"/plants/{plant_id}", {"name": "改名"}),
        ("/channels/sms", {"provider": "aliyun"}),
        ("/thresholds", {"dwell_s": "30"}),
    ):
        answer = await site.post("ehs", home, site.admin(action), form)
        assert answer.status_code == 404, (action, answer.text)
    async with site.world.session() as session:
        assert await session.scalar(select(Plant.id).where(Plant.code == "P9")) is None
        assert await session.scalar(select(Plant.id).where(Plant.name == "改名")) is None


# --- plants ------------------------------------------------------------------------------------


async def test_a_plant_with_a_bad_time_zone_position_or_boundary_is_refused_by_name(
    site: Site,
) -> None:
    page = site.admin("/plants")
    cases = (
        ({"timezone": "Asia/Nowhere"}, "timezone", "iana_timezone", 422),
        ({"latitude": "91"}, "latitude", "maximum", 400),
        ({"latitude": "北纬32"}, "latitude", "number", 400),
        ({"longitude": ""}, "longitude", "pair", 422),
        ({"boundary": "{not json"}, "boundary", "json", 400),
        (
            {"boundary": json.dumps({"type": "Point", "coordinates": [118.7, 32.2]})},
            "boundary",
            "geojson_polygon",
            422,
        ),
        (
            {
                "boundary": json.dumps(
                    {"type": "Polygon", "coordinates": [SQUARE["coordinates"][0][:-1]]}
                )
            },
            "boundary",
            "closed",
            422,
        ),
        (
            {
                "boundary": json.dumps(
                    {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}
                )
            },
            "boundary",
            "simple",
            422,
        ),
        (
            {
                "boundary": json.dumps(
                    {"type": "Polygon", "coordinates": [[[0, 0], [200, 0], [200, 1], [0, 0]]]}
                )
            },
            "boundary",
            "wgs84",
            422,
        ),
    )
    for change, field, rule, status in cases:
        answer = await site.post("admin", page, page, {**PLANT, **change})
        assert answer.status_code == status, (change, answer.text)
        assert f'class="field-error" data-field="{field}"' in answer.text, change
        assert _problem(answer.text, field, rule), (change, answer.text)
        # What was typed stays in the form.
        assert 'value="九号厂区"' in answer.text
    async with site.world.session() as session:
        assert await session.scalar(select(Plant.id).where(Plant.code == "P9")) is None


async def test_a_plant_is_added_and_edited_but_its_code_never_changes(site: Site) -> None:
    page = site.admin("/plants")
    added = await site.post(
        "admin", page, page, {**PLANT, "code": "P7", "boundary": json.dumps(SQUARE)}
    )
    assert added.status_code in (302, 303), added.text
    listing = (await site.get("admin", added.headers["location"])).text
    assert 'data-testid="plant" data-code="P7"' in listing and 'data-testid="notice"' in listing
    async with site.world.session() as session:
        plant = await session.scalar(select(Plant).where(Plant.code == "P7"))
        assert plant is not None and plant.boundary == SQUARE and plant.latitude == 32.21
    created = await _ledger(site, "plant.created")
    assert created[-1]["code"] == "P7" and created[-1]["boundary"] == SQUARE
    duplicate = await site.post("admin", page, page, {**PLANT, "code": "P7"})
    assert duplicate.status_code == 409 and _problem(duplicate.text, "code", "unique")

    edit = site.admin(f"/plants/{plant.id}")
    shown = await site.get("admin", edit)
    assert 'data-testid="plant-code">P7<' in shown.text and "118.7" in shown.text
    refused = await site.post(
        "admin", edit, edit, {"name": "七号厂区", "timezone": "Mars/Base", "boundary": ""}
    )
    assert refused.status_code == 422 and _problem(refused.text, "timezone", "iana_timezone")
    saved = await site.post(
        "admin",
        edit,
        edit,
        {
            "code": "X1",
            "name": "七号厂区",
            "timezone": "Asia/Urumqi",
            "latitude": "",
            "longitude": "",
        },
    )
    assert saved.status_code in (302, 303), saved.text
    async with site.world.session() as session:
        changed = await session.scalar(select(Plant).where(Plant.id == plant.id))
        assert changed is not None
        assert (changed.code, changed.name, changed.timezone) == ("P7", "七号厂区", "Asia/Urumqi")
        assert changed.latitude is None and changed.boundary is None
    entry = (await _ledger(site, "plant.changed"))[-1]
    assert (
        entry["code"] == "P7" and entry["timezone"] == "Asia/Urumqi" and entry["boundary"] is None
    )


async def test_a_plant_is_retired_and_put_back_in_service_from_its_page(site: Site) -> None:
    page = site.admin("/plants")
    added = await site.post("admin", page, page, {**PLANT, "code": "P6"})
    assert added.status_code in (302, 303), added.text
    async with site.world.session() as session:
        plant_id = await session.scalar(select(Plant.id).where(Plant.code == "P6"))
    edit = site.admin(f"/plants/{plant_id}")
    assert 'data-testid="retire-plant"' in (await site.get("admin", edit)).text

    retired = await site.post("admin", edit, f"{edit}/retire", {})
    assert retired.status_code in (302, 303), retired.text
    shown = (await site.get("admin", retired.headers["location"])).text
    assert 'data-testid="plant-service" data-retired="true"' in shown
    assert 'data-testid="notice"' in shown and 'data-testid="reinstate-plant"' in shown
    listing = (await site.get("admin", page)).text
    assert 'data-code="P6" data-retired="true"' in listing
    assert 'data-code="P1" data-retired="false"' in listing
    assert (await _ledger(site, "plant.retired"))[-1]["code"] == "P6"

    back = await site.post("admin", edit, f"{edit}/reinstate", {})
    assert back.status_code in (302, 303), back.text
    assert 'data-retired="false"' in (await site.get("admin", edit)).text
    assert (await _ledger(site, "plant.reinstated"))[-1]["code"] == "P6"


async def test_a_plant_with_work_in_hand_is_not_retired(site: Site) -> None:
    world = site.world
    at = window()
    await world.approved(world.permit_in(WorkType.HEIGHT, at, zone="Z3"), now=at.now)
    edit = site.admin(f"/plants/{world.plant_id}")
    refused = await site.post("admin", edit, f"{edit}/retire", {})
    assert refused.status_code == 409, refused.text
    assert _problem(refused.text, "plant_id", "plant.open_permits")
    async with world.session() as session:
        plant = await session.get_one(Plant, world.plant_id)
        assert plant.retired_at is None
    mine = site.admin("/plants", site.other)
    theirs = site.admin(f"/plants/{world.plant_id}", site.other)
    for action in ("retire", "reinstate"):
        reached = await site.post("b_admin", mine, f"{theirs}/{action}", {})
        assert reached.status_code == 404, (action, reached.text)


async def test_a_plant_beyond_the_plan_answers_402_naming_the_limit_and_the_upgrade(
    site: Site, tmp_path_factory: pytest.TempPathFactory
) -> None:
    directory = tmp_path_factory.mktemp("tenant-admin-billing")
    settings = with_billing(
        settings_for(
            site.world.settings.database_url,
            directory / "var",
            migration_database_url=site.world.settings.migration_database_url,
            login_rate_per_minute=10_000,
        ),
        "http://127.0.0.1:9",
    )
    email, password = (await _host_logins(site.world))["admin"]
    async with AsyncTestClient(app=create_app(settings)) as client:
        client.follow_redirects = False
        client.cookies = await _sign_in(client, site.slug, email, password)
        page = await client.get(site.admin("/plants"))
        token = CSRF_FIELD.search(page.text)
        assert token is not None, page.text
        refused = await client.post(
            site.admin("/plants"),
            data={**PLANT, "code": "P8", "_csrf_token": token.group(1)},
        )
    assert refused.status_code == 402, refused.text
    assert _problem(refused.text, "plan", "max_plants")
    # The starter plan's limit and the plan to upgrade to, with the way to do it.
    assert "starter" in refused.text and "pro" in refused.text
    assert "/api/v1/billing/checkout" in refused.text
    async with site.world.session() as session:
        assert await session.scalar(select(Plant.id).where(Plant.code == "P8")) is None


async def test_another_tenants_plant_is_not_found(site: Site) -> None:
    plant_id = site.world.tenant.plants["P2"]
    mine = site.admin("/plants", site.other)
    theirs = site.admin(f"/plants/{plant_id}", site.other)
    assert (await site.get("b_admin", theirs)).status_code == 404
    changed = await site.post("b_admin", mine, theirs, {"name": "被改了", "timezone": "UTC"})
    assert changed.status_code == 404
    listing = (await site.get("b_admin", mine)).text
    assert 'data-code="Q1"' in listing and 'data-code="P1"' not in listing
    async with site.world.session() as session:
        plant = await session.scalar(select(Plant).where(Plant.id == plant_id))
        assert plant is not None and plant.name != "被改了"


# --- channels ----------------------------------------------------------------------------------


async def test_smtp_and_sms_secrets_are_stored_encrypted_and_never_shown(site: Site) -> None:
    page = site.admin("/channels")
    smtp = {
        "host": "smtp.yangzi.example",
        "port": "465",
        "from_address": "ehs@yangzi.example",
        "username": "ehs",
        "password": "smtp-secret-Ω1",
        "starttls": "1",
    }
    bad_port = await site.post(
        "admin", page, site.admin("/channels/smtp"), {**smtp, "port": "70000"}
    )
    assert bad_port.status_code == 400 and 'class="field-error" data-field="port"' in bad_port.text
    assert "smtp-secret-Ω1" not in bad_port.text
    saved = await site.post("admin", page, site.admin("/channels/smtp"), smtp)
    assert saved.status_code in (302, 303), saved.text
    sms = {
        "provider": "aliyun",
        "sign_name": "扬子江石化",
        "template_id": "SMS_1234",
        "access_key_id": "LTAI5t",
    }
    no_secret = await site.post("admin", page, site.admin("/channels/sms"), sms)
    assert no_secret.status_code == 422 and _problem(no_secret.text, "secret", "required")
    unknown = await site.post(
        "admin", page, site.admin("/channels/sms"), {**sms, "provider": "acme", "secret": "x"}
    )
    assert (
        unknown.status_code == 400 and 'class="field-error" data-field="provider"' in unknown.text
    )
    saved = await site.post(
        "admin", page, site.admin("/channels/sms"), {**sms, "secret": "sms-secret-Ψ2"}
    )
    assert saved.status_code in (302, 303), saved.text
    # Saving again without the secrets keeps them.
    again = await site.post("admin", page, site.admin("/channels/smtp"), {**smtp, "password": ""})
    assert again.status_code in (302, 303), again.text

    shown = (await site.get("admin", page)).text
    assert 'value="smtp.yangzi.example"' in shown and 'value="扬子江石化"' in shown
    assert 'data-testid="smtp-configured"' in shown and 'data-testid="sms-configured"' in shown
    assert "smtp-secret-Ω1" not in shown and "sms-secret-Ψ2" not in shown
    cipher = field_cipher(site.world.settings)
    async with site.world.session() as session:
        row = await session.scalar(select(NotificationChannelSettings))
        assert row is not None and row.smtp_password_encrypted and row.sms_secret_encrypted
        assert "smtp-secret" not in row.smtp_password_encrypted
        password = cipher.decrypt(
            row.smtp_password_encrypted,
            context=tenant_services.channel_secret_context("smtp_password"),
        )
        secret = cipher.decrypt(
            row.sms_secret_encrypted, context=tenant_services.channel_secret_context("sms_secret")
        )
    assert (password, secret) == ("smtp-secret-Ω1", "sms-secret-Ψ2")
    ledger = json.dumps(
        await _ledger(site, "notification_channel.smtp_set")
        + await _ledger(site, "notification_channel.sms_set"),
        ensure_ascii=False,
    )
    assert "smtp.yangzi.example" in ledger and "LTAI5t" in ledger
    assert "smtp-secret" not in ledger and "sms-secret" not in ledger


async def test_robots_are_added_listed_and_removed_without_showing_secrets(site: Site) -> None:
    page = site.admin("/channels")
    action = site.admin("/channels/webhooks")
    robot = {
        "name": "安全部钉钉群",
        "format": "dingtalk",
        "url": "https://oapi.dingtalk.com/robot/send?access_token=tok123",
        "secret": "SECdingtalk-signing-secret",
    }
    bad = await site.post("admin", page, action, {**robot, "url": "ftp://example.com"})
    assert bad.status_code == 422 and _problem(bad.text, "url", "url")
    added = await site.post("admin", page, action, robot)
    assert added.status_code == 200, added.text
    assert "SECdingtalk-signing-secret" not in added.text
    assert 'data-testid="new-secret"' not in added.text
    generic = await site.post(
        "admin",
        page,
        action,
        {"name": "BI 接收", "format": "generic", "url": "https://bi.example/hook"},
    )
    assert generic.status_code == 200 and 'data-testid="new-secret"' in generic.text
    listing = (await site.get("admin", page)).text
    assert listing.count('data-testid="webhook"') == 2
    assert "SECdingtalk-signing-secret" not in listing and 'data-testid="new-secret"' not in listing
    assert "access_token=tok123" not in listing

    async with site.world.session() as session:
        webhook_id = await session.scalar(
            select(NotificationWebhook.id).where(NotificationWebhook.name == "安全部钉钉群")
        )
    assert webhook_id is not None
    # Under another tenant's address the robot does not exist.
    foreign = await site.post(
        "b_admin",
        site.admin("/channels", site.other),
        site.admin(f"/channels/webhooks/{webhook_id}/remove", site.other),
        {},
    )
    assert foreign.status_code == 404
    removed = await site.post(
        "admin", page, site.admin(f"/channels/webhooks/{webhook_id}/remove"), {}
    )
    assert removed.status_code in (302, 303), removed.text
    assert (await site.get("admin", page)).text.count('data-testid="webhook"') == 1
    gone = await site.post("admin", page, site.admin(f"/channels/webhooks/{webhook_id}/remove"), {})
    assert gone.status_code == 404
    actions = await audit_actions(site.world.database, site.world.tenant.id, "notification_webhook")
    assert actions == [
        "notification_webhook.added",
        "notification_webhook.added",
        "notification_webhook.removed",
    ]
    theirs = await site.get("b_admin", site.admin("/channels", site.other))
    assert 'data-testid="webhook"' not in theirs.text


async def test_the_tenants_own_smtp_server_sends_its_email(
    site: Site, smtp_server: SmtpServer
) -> None:
    """E-mail is off for the installation here; the tenant's own server carries its mail."""
    tenant, user = site.other, site.other.user(Role.TENANT_ADMIN)
    cipher = field_cipher(worker_settings())
    server = SmtpSettingsIn(
        host="127.0.0.1",
        port=smtp_server.config.port,
        from_address="ehs@b-group.example",
        starttls=False,
    )
    async with site.world.database.session() as session:
        with tenant_scope(tenant.id):
            await tenant_services.save_smtp_settings(session, server, cipher=cipher)
        await session.commit()
    channels = Channels(
        email=None, sms=SmsChannel(LoggingSmsProvider()), webhook=WebhookChannel(timeout=2)
    )
    with tenant_scope(tenant.id), site.world.database.sync_session() as session:
        results = notifications.dispatch(
            session, _notification(tenant.id, recipient=user.id, locale=None), channels
        )
    sent = [result for result in results if result.channel == "email"]
    assert [result.status for result in sent] == [notifications.DeliveryStatus.SENT], results
    [mail] = smtp_server.mailbox.messages_to(user.email)
    assert mail["From"] == "ehs@b-group.example"

    signed_in = SmtpSettingsIn(
        host="127.0.0.1",
        port=smtp_server.config.port,
        from_address="ehs@b-group.example",
        username="ehs",
        password="b-smtp-pass",
        starttls=False,
    )
    async with site.world.database.session() as session:
        with tenant_scope(tenant.id):
            await tenant_services.save_smtp_settings(session, signed_in, cipher=cipher)
        await session.commit()
    with tenant_scope(tenant.id), site.world.database.sync_session() as session:
        channel = notifications.email_channel_for(session, channels)
    assert channel is not None
    assert (channel.config.username, channel.config.password) == ("ehs", "b-smtp-pass")


# --- thresholds --------------------------------------------------------------------------------


async def test_alert_thresholds_are_saved_through_the_geofence_rules(site: Site) -> None:
    page = site.admin("/thresholds")
    form = {
        "dwell_s": "90",
        "no_signal_minutes": "15",
        "max_speed_mps": "12.5",
        "guardian_absent_minutes": "3",
        "overstay_grace_minutes": "10",
    }
    refused = await site.post("admin", page, page, {**form, "dwell_s": "5"})
    assert refused.status_code == 400, refused.text
    assert 'class="field-error" data-field="dwell_s"' in refused.text
    assert 'value="5"' in refused.text
    saved = await site.post("admin", page, page, form)
    assert saved.status_code in (302, 303), saved.text
    shown = (await site.get("admin", saved.headers["location"])).text
    assert 'value="90"' in shown and 'value="12.5"' in shown
    assert (await _ledger(site, "geofence.policy_changed"))[-1]["dwell_s"] == 90


# --- branding ----------------------------------------------------------------------------------


async def test_the_brand_name_and_logo_head_the_permit(site: Site) -> None:
    page = site.admin("/branding")
    not_an_image = await site.post(
        "admin",
        page,
        page,
        {"display_name": "扬子江安全"},
        files={"logo": ("logo.png", b"not an image at all", "image/png")},
    )
    assert not_an_image.status_code == 422, not_an_image.text
    assert 'class="field-error" data-field="logo"' in not_an_image.text
    saved = await site.post(
        "admin",
        page,
        page,
        {"display_name": "扬子江安全品牌"},
        files={"logo": ("logo.png", png(), "image/png")},
    )
    assert saved.status_code in (302, 303), saved.text
    shown = (await site.get("admin", page)).text
    assert 'value="扬子江安全品牌"' in shown and 'data-testid="logo-set"' in shown
    entry = (await _ledger(site, "tenant.branding_set"))[-1]
    assert entry["display_name"] == "扬子江安全品牌" and entry["logo_id"]

    world = site.world
    at = window()
    permit = await world.approved(world.permit_in(WorkType.HOT_WORK, at), now=at.now)
    async with world.session() as session:
        pdf = await records.permit_pdf(session, world.storage, world.settings, permit)
    reader = PdfReader(io.BytesIO(pdf))
    assert "扬子江安全品牌" in "".join(reader.pages[0].extract_text().split())
    assert len(reader.pages[0].images) == 1

    removed = await site.post(
        "admin", page, page, {"display_name": "", "remove_logo": "1"}, files=NO_FILE
    )
    assert removed.status_code in (302, 303), removed.text
    async with world.session() as session:
        brand = await tenant_services.pdf_brand(session, world.storage)
    assert brand == {"company_name": f"测试集团 {site.slug}", "company_logo": ""}


async def test_reminder_days_are_edited_on_the_thresholds_page(site: Site) -> None:
    page = site.admin("/thresholds")
    action = site.admin("/thresholds/reminders")
    for typed, status, rule in (
        ("14, 三", 400, "integer"),
        ("14, 0", 422, "range"),
        ("14 14", 422, "distinct"),
        ("", 422, "count"),
    ):
        refused = await site.post("admin", page, action, {"reminder_days": typed})
        assert refused.status_code == status, (typed, refused.text)
        assert _problem(refused.text, "reminder_days", rule), typed
        assert f'value="{typed}"' in refused.text
    assert (
        await site.post("ehs", f"/t/{site.slug}/", action, {"reminder_days": "5"})
    ).status_code == 404
    saved = await site.post("admin", page, action, {"reminder_days": "3、14"})
    assert saved.status_code in (302, 303), saved.text
    shown = (await site.get("admin", saved.headers["location"])).text
    assert 'data-testid="notice"' in shown and "14、3" in shown and 'value="14, 3"' in shown
    assert (await _ledger(site, "onboarding_settings.changed"))[-1] == {"reminder_days": [14, 3]}
    # Back to the defaults, which the other tests of the page expect, in whatever order they run.
    restored = await site.post("admin", page, action, {"reminder_days": "30, 7, 1"})
    assert restored.status_code in (302, 303), restored.text


# --- every administration route ----------------------------------------------------------------

ADMIN_PREFIX = "/t/{slug:str}/admin"
PARAMETER = re.compile(r"\{(\w+):(\w+)\}")


def _admin_routes(site: Site) -> list[tuple[str, str]]:
    """Every administration page and form of the app, as (method, path template)."""
    return sorted(
        (method, route.path)
        for route in site.client.app.routes
        if route.path.startswith(ADMIN_PREFIX)
        for handler in getattr(route, "route_handlers", [])
        for method in handler.http_methods
        if method in ("GET", "POST")
    )


def _filled(path: str, slug: str, ids: dict[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        return slug if name == "slug" else ids.get(name, "01a22494-0000-7000-8000-000000000000")

    return PARAMETER.sub(value, path)


async def test_no_administration_route_reaches_another_tenant(site: Site) -> None:
    """Each page and form under /t/{slug}/admin, tried by this tenant's administrator against
    the other tenant (its slug, its plant), answers no page and changes nothing there; and this
    tenant's routes given the other tenant's plant answer 404."""
    routes = _admin_routes(site)
    assert len(routes) >= 25, routes
    other = site.other
    other_ids = {"plant_id": str(other.plants["Q1"]), "day": "2026-10-01"}

    async def other_ledger() -> int:
        async with site.world.database.session() as session:
            with tenant_scope(other.id):
                return len(list(await session.scalars(select(AuditEntry.id))))

    before = await other_ledger()
    own_page = site.admin()
    for method, template in routes:
        url = _filled(template, other.slug, other_ids)
        if method == "GET":
            answer = await site.get("admin", url)
        else:
            answer = await site.post("admin", own_page, url, {"name": "x", "confirmation": "x"})
        assert not answer.is_success, (method, url, answer.status_code)
        if answer.is_redirect:
            assert "/login" in answer.headers["location"], (method, url)
        else:
            assert answer.status_code in (401, 403, 404), (method, url, answer.status_code)
        if "{plant_id" in template:
            own = _filled(template, site.slug, other_ids)
            if method == "GET":
                mine = await site.get("admin", own)
            else:
                mine = await site.post("admin", own_page, own, {"name": "改名"})
            assert mine.status_code == 404, (method, own, mine.status_code)
    assert await other_ledger() == before
    async with site.world.database.session() as session:
        with tenant_scope(other.id):
            assert (await session.get_one(Plant, other.plants["Q1"])).name != "改名"
