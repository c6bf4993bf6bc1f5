"""A new company signs up in a real browser, verifies its address from the mail, invites a
colleague who joins from the invitation mail, and adds plants until its plan says no.

Billing is on (a Stripe key and plans are configured; nothing here calls Stripe) and the
mails reach an SMTP server on loopback, so the links are the ones a person would get.
"""

from __future__ import annotations

import email
import re
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.browser.conftest import (
    PORTAL,
    _free_port,
    _portal_env,
    _wait_until_healthy,
)

pytestmark = pytest.mark.browser

# The first plan is the one a tenant without a subscription is held to.
PLANS = (
    '{"starter": {"price": "price_starter", "max_plants": 1},'
    ' "pro": {"price": "price_pro", "max_plants": 5}}'
)
# Two relay passes (the notification, then its e-mail delivery) on a busy machine.
MAIL_TIMEOUT_SECONDS = 60.0
MIGRATE_TIMEOUT_SECONDS = 300

SLUG = "haixin-chem"
COMPANY = "海信化工有限公司"
ADMIN = {"name": "周海涛", "email": "zhou.haitao@haixin-chem.example.cn"}
ADMIN_PASSWORD = "Haixin-Admin-2026!"
FIRST_PLANT = {"code": "QD01", "name": "青岛炼化厂区"}
OFFICER = {"name": "孙丽", "email": "sun.li@haixin-chem.example.cn"}
OFFICER_PASSWORD = "Sunli-Safety-2026!"


class Mailbox:
    """Every message the server sends; a reader waits on the condition, not on a clock."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.arrived = threading.Condition()

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        message = email.message_from_bytes(envelope.content, policy=policy.default)
        with self.arrived:
            self.messages.append(message)  # type: ignore[arg-type]
            self.arrived.notify_all()
        return "250 Message accepted for delivery"

    def link_to(self, address: str, pattern: re.Pattern[str], log: Path) -> str:
        """The link matching ``pattern`` in the plain-text part of a mail to ``address``."""

        def find() -> str | None:
            for message in self.messages:
                if message["To"] != address:
                    continue
                text = message.get_body(preferencelist=("plain",))
                found = pattern.search(text.get_content()) if text else None
                if found:
                    return found.group(0)
            return None

        with self.arrived:
            link = self.arrived.wait_for(find, timeout=MAIL_TIMEOUT_SECONDS)
        if link is None:
            pytest.fail(f"no mail to {address} with {pattern.pattern}:\n{log.read_text()}")
        return link


@dataclass(frozen=True)
class BillingServer:
    base_url: str
    log: Path
    mailbox: Mailbox


@pytest.fixture(scope="module")
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    box = Mailbox()
    port = _free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield box, port
    finally:
        controller.stop()


@pytest.fixture(scope="module")
def billing_server(
    tmp_path_factory: pytest.TempPathFactory, mailbox: tuple[Mailbox, int]
) -> Iterator[BillingServer]:
    box, smtp_port = mailbox
    var_dir = tmp_path_factory.mktemp("portal-signup")
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = _portal_env(var_dir)
    env.update(
        PORTAL_BASE_URL=base_url,
        PORTAL_STRIPE_SECRET_KEY="sk_test_dummy",
        PORTAL_STRIPE_WEBHOOK_SECRET="whsec_dummy",
        PORTAL_BILLING_PLANS=PLANS,
        PORTAL_SMTP_HOST="127.0.0.1",
        PORTAL_SMTP_PORT=str(smtp_port),
        PORTAL_SMTP_STARTTLS="false",
        PORTAL_SMTP_FROM="承包商协同管理平台 <no-reply@portal.example.cn>",
        # The relay's default pass every few seconds would make each mail wait that long.
        PORTAL_OUTBOX_RELAY_SECONDS="0.5",
    )
    migrated = subprocess.run(
        [str(PORTAL), "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=MIGRATE_TIMEOUT_SECONDS,
        check=False,
    )
    assert migrated.returncode == 0, f"portal migrate failed:\n{migrated.stdout}{migrated.stderr}"

    log = var_dir / "server.log"
    with log.open("wb") as log_file:
        server = subprocess.Popen(
            [str(PORTAL), "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_until_healthy(base_url, server, log)
        yield BillingServer(base_url=base_url, log=log, mailbox=box)
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)


def _link(server: BillingServer, kind: str) -> re.Pattern[str]:
    return re.compile(rf"{re.escape(server.base_url)}/t/{SLUG}/{kind}/[A-Za-z0-9_-]+")


def _new_context(browser: Browser) -> BrowserContext:
    """A second person's browser, set up like the ``context`` fixture's."""
    browser_context = browser.new_context(
        locale="zh-CN", viewport={"width": 1280, "height": 800}, timezone_id="Asia/Shanghai"
    )
    browser_context.set_default_timeout(10_000)
    return browser_context


def _sign_up(page: Page, server: BillingServer) -> None:
    page.goto(f"{server.base_url}/signup")
    form = page.get_by_test_id("signup")
    expect(form.get_by_role("heading", level=1)).to_have_text("注册开通")
    expect(page.locator("input[name=timezone]")).to_have_value("Asia/Shanghai")
    fields = {
        "company_name": COMPANY,
        "slug": SLUG,
        "plant_code": FIRST_PLANT["code"],
        "plant_name": FIRST_PLANT["name"],
        "admin_name": ADMIN["name"],
        "email": ADMIN["email"],
        "password": ADMIN_PASSWORD,
    }
    for name, value in fields.items():
        page.fill(f"input[name={name}]", value)
    form.locator("button[type=submit]").click()
    page.wait_for_load_state()


def _verify_email(page: Page, server: BillingServer) -> None:
    link = server.mailbox.link_to(ADMIN["email"], _link(server, "verify-email"), server.log)
    page.goto(link)
    card = page.get_by_test_id("verify-email")
    card.locator("button[type=submit]").click()
    expect(card.get_by_test_id("verified")).to_be_visible()
    card.get_by_role("link").click()
    expect(page).to_have_url(f"{server.base_url}/t/{SLUG}/admin/users")


def _invite_officer(page: Page) -> None:
    invite = page.get_by_test_id("invite")
    invite.locator("input[name=email]").fill(OFFICER["email"])
    invite.locator("select[name=role]").select_option("ehs_officer")
    invite.locator("button[type=submit]").click()
    page.wait_for_load_state()
    expect(page.get_by_test_id("notice")).to_have_text("邀请已发送。")
    pending = page.get_by_test_id("invitation")
    expect(pending).to_have_count(1)
    expect(pending).to_have_attribute("data-email", OFFICER["email"])
    expect(pending).to_contain_text("安全管理人员")
    expect(pending).to_contain_text("全部厂区")


def _join(browser: Browser, server: BillingServer, artifacts_dir: Path) -> None:
    link = server.mailbox.link_to(OFFICER["email"], _link(server, "invitations"), server.log)
    joining = _new_context(browser)
    try:
        page = joining.new_page()
        page.goto(link)
        card = page.get_by_test_id("invitation")
        expect(card.get_by_test_id("invited-email")).to_have_text(OFFICER["email"])
        expect(card.get_by_test_id("invited-role")).to_have_attribute("data-role", "ehs_officer")
        page.fill("input[name=name]", OFFICER["name"])
        page.fill("input[name=password]", OFFICER_PASSWORD)
        page.screenshot(path=str(artifacts_dir / "signup-invitation-zh_CN.png"), full_page=True)
        card.locator("button[type=submit]").click()

        expect(page).to_have_url(f"{server.base_url}/t/{SLUG}/")
        expect(page.get_by_test_id("tenant-name")).to_have_text(COMPANY)
        whoami = page.get_by_test_id("whoami")
        expect(whoami).to_contain_text(OFFICER["name"])
        expect(whoami.locator(".role")).to_have_text(["安全管理人员"])
    finally:
        joining.close()


def test_new_company_signs_up_invites_a_colleague_and_reaches_its_plant_limit(
    page: Page, browser: Browser, billing_server: BillingServer, artifacts_dir: Path
) -> None:
    server = billing_server
    _sign_up(page, server)

    # Signed in at once, but no invitations before the address is shown to be the admin's.
    expect(page).to_have_url(f"{server.base_url}/t/{SLUG}/admin/users?done=signed_up")
    expect(page.get_by_test_id("notice")).to_contain_text("租户已开通")
    expect(page.get_by_test_id("unverified")).to_be_visible()
    expect(page.get_by_test_id("invite")).to_have_count(0)
    admin_row = page.get_by_test_id("user")
    expect(admin_row).to_have_attribute("data-email", ADMIN["email"])
    expect(admin_row.locator(".role")).to_have_text(["租户管理员"])
    page.screenshot(path=str(artifacts_dir / "signup-done-zh_CN.png"), full_page=True)

    _verify_email(page, server)
    expect(page.get_by_test_id("unverified")).to_have_count(0)
    _invite_officer(page)
    _join(browser, server, artifacts_dir)

    # The colleague now counts among the users, and the invitation is spent.
    page.reload()
    expect(page.get_by_test_id("user")).to_have_count(2)
    officer_row = page.locator(f"[data-testid=user][data-email='{OFFICER['email']}']")
    expect(officer_row).to_contain_text(OFFICER["name"])
    expect(page.get_by_test_id("invitation")).to_have_count(0)

    page.goto(f"{server.base_url}/t/{SLUG}/admin/plants")
    plants = page.get_by_test_id("plant")
    expect(plants).to_have_count(1)
    expect(plants).to_have_attribute("data-code", FIRST_PLANT["code"])
    add = page.get_by_test_id("add-plant")
    add.locator("input[name=code]").fill("YT02")
    add.locator("input[name=name]").fill("烟台港区储运厂")
    with page.expect_response(
        lambda response: (
            response.request.method == "POST"
            and response.url == f"{server.base_url}/t/{SLUG}/admin/plants"
        )
    ) as refused:
        page.get_by_test_id("add-plant-submit").click()
    assert refused.value.status == 402
    page.wait_for_load_state()

    problem = page.get_by_test_id("problem")
    expect(problem).to_have_count(1)
    expect(problem).to_have_attribute("data-field", "plan")
    expect(problem).to_have_attribute("data-rule", "max_plants")
    expect(problem).to_contain_text("starter 套餐最多允许 1 个厂区")
    expect(problem).to_contain_text("升级到 pro 套餐")
    # What was typed stays, to add it once the plan allows; the refused plant was not stored.
    expect(add.locator("input[name=code]")).to_have_value("YT02")
    expect(plants).to_have_count(1)
    page.screenshot(path=str(artifacts_dir / "signup-plant-limit-zh_CN.png"), full_page=True)

    page.goto(f"{server.base_url}/t/{SLUG}/admin/plants")
    expect(plants).to_have_count(1)
    expect(plants).to_contain_text(FIRST_PLANT["name"])
