"""Signing in to the seeded Chinese demo tenant in a real browser, and what the dashboard shows."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import DemoServer

pytestmark = pytest.mark.browser

TENANT = "donghai-chem"
PLANTS = {"NB01": "宁波石化基地", "NJ01": "南京化学工业园厂区", "HZ01": "惠州大亚湾新材料厂"}
# The dashboard lists plants by code.
PLANT_NAMES_IN_TABLE = [PLANTS[code] for code in sorted(PLANTS)]


def _sign_in(page: Page, server: DemoServer, email: str, password: str) -> None:
    page.goto(f"{server.base_url}/t/{TENANT}/login")
    tenant_field = page.locator("input[name=tenant]")
    expect(tenant_field).to_have_value(TENANT)
    expect(tenant_field).to_have_attribute("readonly", "")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.get_by_role("button", name=re.compile("登录|Sign in")).click()
    page.wait_for_load_state()


def test_admin_sees_chinese_dashboard_then_switches_to_english(
    page: Page, demo_server: DemoServer, artifacts_dir: Path
) -> None:
    admin = demo_server.login("tenant_admin")
    _sign_in(page, demo_server, admin["email"], admin["password"])

    expect(page).to_have_url(f"{demo_server.base_url}/t/{TENANT}/")
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    expect(page.get_by_role("heading", level=1)).to_have_text("工作台")
    expect(page.get_by_test_id("tenant-name")).to_have_text("东海化工集团")
    whoami = page.get_by_test_id("whoami")
    expect(whoami).to_contain_text("王建国")
    expect(whoami.locator(".role")).to_have_text(["租户管理员"])
    plant_names = page.locator("table tbody tr td:nth-child(2)")
    expect(plant_names).to_have_text(PLANT_NAMES_IN_TABLE)
    page.screenshot(path=str(artifacts_dir / "dashboard-zh_CN.png"), full_page=True)

    page.get_by_role("link", name="English").click()

    # Litestar strips the trailing slash from request.url.path, which the link sends as ?next=;
    # both spellings route to the dashboard.
    expect(page).to_have_url(re.compile(rf"^{re.escape(demo_server.base_url)}/t/{TENANT}/?$"))
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_role("heading", level=1)).to_have_text("Dashboard")
    expect(whoami.locator(".role")).to_have_text(["Tenant administrator"])
    # Names are data, not interface text: switching the language must leave them as entered.
    expect(page.get_by_test_id("tenant-name")).to_have_text("东海化工集团")
    expect(plant_names).to_have_text(PLANT_NAMES_IN_TABLE)
    page.screenshot(path=str(artifacts_dir / "dashboard-en.png"), full_page=True)


def test_wrong_password_and_plant_scoped_dashboard(page: Page, demo_server: DemoServer) -> None:
    admin = demo_server.login("tenant_admin")
    _sign_in(page, demo_server, admin["email"], admin["password"] + "-wrong")

    expect(page.get_by_role("alert")).to_contain_text("邮箱地址或密码错误")
    expect(page.get_by_role("heading", level=1)).to_have_text("登录")
    # The form posts to /login; staying there (not the dashboard) with the tenant still fixed
    # and the address kept is what lets the user simply retype the password.
    assert page.url.endswith("/login"), page.url
    expect(page.locator("input[name=tenant]")).to_have_value(TENANT)
    expect(page.locator("input[name=email]")).to_have_value(admin["email"])
    expect(page.locator("input[name=password]")).to_have_value("")

    officer = demo_server.login("ehs_officer", email_prefix="li.guoqiang")
    _sign_in(page, demo_server, officer["email"], officer["password"])

    expect(page).to_have_url(f"{demo_server.base_url}/t/{TENANT}/")
    plants_table = page.locator("table tbody")
    expect(plants_table.locator("tr")).to_have_count(1)
    expect(plants_table).to_contain_text(PLANTS["NB01"])
    for elsewhere in (PLANTS["NJ01"], PLANTS["HZ01"]):
        expect(plants_table).not_to_contain_text(elsewhere)
