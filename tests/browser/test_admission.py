"""Admission (准入) in a real browser: a company registers and files its records on a phone, EHS
approves them at a desk, and the company sees that it is admitted."""

from __future__ import annotations

import io
import re
from datetime import date, timedelta
from pathlib import Path

import openpyxl
import pytest
from PIL import Image, ImageDraw
from playwright.sync_api import Browser, BrowserContext, Page, expect

from onboarding.validators import id_check_char, uscc_check_char
from tests.browser.conftest import DemoServer

pytestmark = pytest.mark.browser

TENANT = "donghai-chem"
PHONE = {"width": 390, "height": 844}
USCC = "91330206MA2XY7K3" + "9"
USCC += uscc_check_char(USCC)
ID_BODY = "33020619880512" + "071"
ID_NUMBER = ID_BODY + id_check_char(ID_BODY)
ADMIN_EMAIL = "zhang.hua@xinghai-install.example"
ADMIN_PASSWORD = "Xinghai-2026-secure"


def _png(label: str) -> bytes:
    image = Image.new("RGB", (320, 220), (245, 245, 235))
    draw = ImageDraw.Draw(image)
    draw.rectangle((6, 6, 313, 213), outline=(6, 118, 71), width=5)
    draw.text((20, 20), label, fill=(20, 20, 20))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _file(label: str) -> dict[str, object]:
    return {"name": f"{label}.png", "mimeType": "image/png", "buffer": _png(label)}


def _new_context(browser: Browser, viewport: dict[str, int]) -> BrowserContext:
    context = browser.new_context(locale="zh-CN", viewport=viewport, timezone_id="Asia/Shanghai")
    context.set_default_timeout(10_000)
    return context


def _sign_in(page: Page, server: DemoServer, email: str, password: str) -> None:
    page.goto(f"{server.base_url}/t/{TENANT}/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.get_by_role("button", name=re.compile("登录|Sign in")).click()
    expect(page).to_have_url(re.compile(rf"/t/{TENANT}/?$"))


def _add_document(page: Page, kind: str, number: str, today: date) -> None:
    section = page.locator("#documents")
    section.locator("summary").click()
    section.locator("select[name=kind]").select_option(kind)
    section.locator("input[name=number]").fill(number)
    section.locator("input[name=issuer]").fill("宁波市市场监督管理局")
    section.locator("input[name=valid_from]").fill((today - timedelta(days=400)).isoformat())
    section.locator("input[name=valid_until]").fill((today + timedelta(days=700)).isoformat())
    section.locator("input[name=scan]").set_input_files(_file(number))
    section.get_by_role("button", name="添加证照").click()
    expect(
        page.locator("#documents [data-testid=document]").filter(has_text=number)
    ).to_be_visible()


def test_register_file_review_and_admit(
    browser: Browser, demo_server: DemoServer, artifacts_dir: Path
) -> None:
    today = date.today()
    contractor = _new_context(browser, PHONE)
    page = contractor.new_page()

    # Registration on a phone, open to anyone on the demo tenant.
    page.goto(f"{demo_server.base_url}/t/{TENANT}/register")
    expect(page.get_by_role("heading", level=1)).to_have_text("企业注册")
    page.fill("input[name=name]", "宁波星海设备安装有限公司")
    page.fill("input[name=uscc]", USCC)
    page.fill("input[name=legal_representative]", "张海")
    page.fill("input[name=contact_name]", "张华")
    page.fill("input[name=contact_phone]", "13912345678")
    page.fill("input[name=address]", "浙江省宁波市北仑区长江路 1 号")
    page.get_by_label("动火作业").check()
    page.get_by_label("高处作业").check()
    page.fill("input[name=admin_name]", "张华")
    page.fill("input[name=admin_email]", ADMIN_EMAIL)
    page.fill("input[name=admin_password]", ADMIN_PASSWORD)
    page.screenshot(path=str(artifacts_dir / "admission-register.png"), full_page=True)
    page.get_by_role("button", name="注册").click()

    # Signed in at once, on the company's own page.
    expect(page).to_have_url(f"{demo_server.base_url}/t/{TENANT}/contractor")
    company = page.get_by_test_id("company")
    expect(company.get_by_role("heading", level=1)).to_have_text("宁波星海设备安装有限公司")
    expect(company.locator(".badge")).to_have_text("草稿")

    _add_document(page, "business_licence", "YYZZ-XH-2024", today)
    _add_document(page, "safety_production_licence", "AQSC-XH-2024", today)

    # A typo in the ID number is refused next to the field, keeping what was typed.
    workers = page.locator("#workers")
    workers.locator("summary").click()
    workers.locator("input[name=name]").fill("李焊")
    workers.locator("input[name=id_number]").fill(
        ID_NUMBER[:-1] + ("1" if ID_NUMBER[-1] != "1" else "2")
    )
    workers.locator("input[name=phone]").fill("13812345678")
    workers.locator("input[name=trade]").fill("焊工")
    workers.get_by_role("button", name="添加人员").click()
    expect(page.locator("#workers .field-error[data-field=id_number]")).to_contain_text("校验")
    expect(page.locator("#workers input[name=name]")).to_have_value("李焊")
    page.locator("#workers input[name=id_number]").fill(ID_NUMBER)
    page.locator("#workers").get_by_role("button", name="添加人员").click()
    worker = page.locator("#workers [data-testid=worker]").filter(has_text="李焊")
    expect(worker).to_contain_text(ID_NUMBER[:6] + "********" + ID_NUMBER[-4:])
    expect(worker).not_to_contain_text(ID_NUMBER)

    certificates = page.locator("#certificates")
    certificates.locator("summary").click()
    certificates.locator("select[name=kind]").select_option(label="熔化焊接与热切割作业")
    certificates.locator("input[name=number]").fill("T330206198805120712")
    certificates.locator("input[name=issuing_authority]").fill("宁波市应急管理局")
    certificates.locator("input[name=issued_on]").fill((today - timedelta(days=300)).isoformat())
    certificates.locator("input[name=expires_on]").fill((today + timedelta(days=1500)).isoformat())
    photo = certificates.locator("input[name=scan]")
    expect(photo).to_have_attribute("capture", "environment")
    photo.set_input_files(_file("welding-certificate"))
    certificates.get_by_role("button", name="添加证书").click()
    certificate = page.locator("#certificates [data-testid=certificate]")
    expect(certificate).to_contain_text("熔化焊接与热切割作业")
    expect(certificate.locator("img")).to_be_visible()

    page.get_by_role("button", name="提交审核").click()
    expect(page.get_by_test_id("company").locator(".badge")).to_have_text("已提交审核")
    page.screenshot(path=str(artifacts_dir / "admission-contractor.png"), full_page=True)
    contractor.close()

    # EHS reviews at a desk: every item verified, the company approved, in one decision.
    officer_login = demo_server.login("ehs_officer", email_prefix="li.guoqiang")
    desk = _new_context(browser, {"width": 1280, "height": 900})
    page = desk.new_page()
    _sign_in(page, demo_server, officer_login["email"], officer_login["password"])
    page.get_by_role("link", name="准入审核").click()
    page.get_by_test_id("review-queue").get_by_role("link", name="宁波星海设备安装有限公司").click()
    for radio in page.locator("input[type=radio][value=verified]").all():
        radio.check()
    page.locator("input[name=decision][value=approve]").check()
    expect(page.locator("[data-testid=review-certificate] img")).to_be_visible()
    page.screenshot(path=str(artifacts_dir / "admission-review.png"), full_page=True)
    page.get_by_role("button", name="提交审核结论").click()
    expect(page).to_have_url(f"{demo_server.base_url}/t/{TENANT}/review")
    expect(page.get_by_test_id("review-queue")).not_to_contain_text("宁波星海设备安装有限公司")
    desk.close()

    # The company signs in again and sees that it is admitted.
    phone = _new_context(browser, PHONE)
    page = phone.new_page()
    _sign_in(page, demo_server, ADMIN_EMAIL, ADMIN_PASSWORD)
    page.get_by_role("link", name="我的企业").click()
    expect(page.get_by_test_id("company").locator(".badge")).to_have_text("已准入")
    expect(page.locator("#certificates [data-testid=certificate] .badge")).to_have_text("已核验")
    page.screenshot(path=str(artifacts_dir / "admission-approved.png"), full_page=True)
    phone.close()


def test_contractor_corrects_an_expired_certificate(
    browser: Browser, demo_server: DemoServer
) -> None:
    admin = demo_server.login("contractor_admin", email_prefix="lin.xiaodong")
    phone = _new_context(browser, PHONE)
    page = phone.new_page()
    _sign_in(page, demo_server, admin["email"], admin["password"])
    page.get_by_role("link", name="我的企业").click()
    expired = page.locator("#certificates [data-testid=certificate]").filter(has_text="已过期")
    expect(expired).to_have_count(1)
    expect(expired.locator(".reason")).to_contain_text("过期")
    expired.locator("summary").click()
    # A renewal that ends before it starts is refused next to the date, and nothing changes.
    expired.locator("input[name=issued_on]").fill(date.today().isoformat())
    expired.locator("input[name=expires_on]").fill(date.today().isoformat())
    expired.get_by_role("button", name="保存修改").click()
    error = page.locator("#certificates .field-error[data-field=expires_on]")
    expect(error).to_be_visible()
    renewed = page.locator("#certificates [data-testid=certificate]").filter(
        has=page.locator(".field-error[data-field=expires_on]")
    )
    renewed.locator("input[name=issued_on]").fill((date.today() - timedelta(days=1)).isoformat())
    renewed.locator("input[name=expires_on]").fill(
        (date.today() + timedelta(days=1460)).isoformat()
    )
    renewed.locator("input[name=scan]").set_input_files(_file("renewed"))
    renewed.get_by_role("button", name="保存修改").click()
    expect(
        page.locator("#certificates [data-testid=certificate]").filter(has_text="已过期")
    ).to_have_count(0)
    expect(page.locator("#certificates .badge", has_text="待审核")).to_have_count(1)
    phone.close()


def _roster(rows: list[list[str]]) -> dict[str, object]:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["姓名", "身份证号", "手机号", "工种"])
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return {
        "name": "roster.xlsx",
        "mimeType": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "buffer": buffer.getvalue(),
    }


def test_contractor_imports_a_roster_on_a_phone(browser: Browser, demo_server: DemoServer) -> None:
    admin = demo_server.login("contractor_admin", email_prefix="lin.xiaodong")
    phone = _new_context(browser, PHONE)
    page = phone.new_page()
    _sign_in(page, demo_server, admin["email"], admin["password"])
    page.get_by_role("link", name="我的企业").click()
    good_body = "33020619910304" + "157"
    bad_body = "33020619920405" + "268"
    bad_id = bad_body + ("1" if id_check_char(bad_body) != "1" else "2")
    roster = _roster(
        [
            ["周卫东", good_body + id_check_char(good_body), "13811112222", "架子工"],
            ["吴建", bad_id, "13811113333", "起重工"],
        ]
    )
    section = page.locator("#roster")
    section.locator("summary").click()
    expect(section.get_by_role("link", name="下载模板")).to_have_attribute(
        "href", f"/t/{TENANT}/contractor/roster-template.xlsx"
    )
    section.locator("input[name=file]").set_input_files(roster)
    section.get_by_role("button", name="导入人员", exact=True).click()

    # Nothing is imported; the report names the row and the column in Chinese.
    report = page.get_by_test_id("roster-report")
    expect(report.locator("tbody tr")).to_have_count(1)
    expect(report.locator("tbody tr")).to_contain_text("3")
    expect(report.locator("tbody tr")).to_contain_text("身份证号")
    expect(page.locator("#workers [data-testid=worker]").filter(has_text="周卫东")).to_have_count(0)

    # The browser does not keep the file across pages: the same file is chosen again.
    page.locator("#roster input[name=file]").set_input_files(roster)
    page.locator("#roster").get_by_role("button", name="仅导入无误的行", exact=True).click()
    expect(page.get_by_test_id("roster-imported")).to_contain_text("1")
    expect(page.get_by_test_id("roster-report").locator("tbody tr")).to_contain_text("身份证号")
    expect(page.locator("#workers [data-testid=worker]").filter(has_text="周卫东")).to_have_count(1)
    expect(page.locator("#workers [data-testid=worker]").filter(has_text="吴建")).to_have_count(0)
    phone.close()
