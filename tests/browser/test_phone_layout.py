"""The pages people open on a cheap phone, at 360 × 740 on the seeded demo: none is wider than
the screen, every table column stays shown and a few characters wide (a squeezed column stacks a
Chinese name one character per line), the top bar names who is signed in with a sign-out a
thumb can hit, and a link followed while signed out (from an SMS or a WeChat message) opens its
page after signing in."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from portal.demo import DEMO_SLUG
from tests.browser.conftest import DemoServer

pytestmark = pytest.mark.browser

PHONE = {"width": 360, "height": 740}
# Four characters of body text: a column any narrower wraps names and dates character by
# character.
NARROWEST_COLUMN_PX = 60
THUMB_PX = 44

HOST_PAGES = (
    "/",
    "/review",
    "/permits",
    "/induction-board",
    "/reviews",
    "/hq",
    "/hq/permits",
    "/ratings",
)
CONTRACTOR_PAGES = ("/", "/permits", "/reviews", "/ratings")

MEASURE = """(narrowest) => {
  const visible = (element) => element.getClientRects().length > 0;
  const cells = [...document.querySelectorAll("main th, main td")];
  const shown = (cell) => visible(cell.closest("table"));
  return {
    overflow: document.documentElement.scrollWidth - document.documentElement.clientWidth,
    hidden: cells.filter((cell) => shown(cell) && !visible(cell))
      .map((cell) => cell.textContent.trim()).slice(0, 5),
    narrow: cells.filter((cell) => visible(cell) && cell.textContent.trim()
      && cell.getBoundingClientRect().width < narrowest)
      .map((cell) => `${cell.textContent.trim()} ${Math.round(cell.getBoundingClientRect().width)}`)
      .slice(0, 5),
  };
}"""


@pytest.fixture
def phone(browser: Browser) -> Iterator[BrowserContext]:
    context = browser.new_context(
        locale="zh-CN",
        viewport=PHONE,
        is_mobile=True,
        has_touch=True,
        timezone_id="Asia/Shanghai",
    )
    context.set_default_timeout(10_000)
    try:
        yield context
    finally:
        context.close()


def _sign_in(page: Page, login: dict[str, str]) -> None:
    page.fill("input[name=email]", login["email"])
    page.fill("input[name=password]", login["password"])
    page.get_by_role("button", name=re.compile("登录|Sign in")).click()


def _check_pages(page: Page, server: DemoServer, paths: tuple[str, ...], shots: Path) -> None:
    for index, path in enumerate(paths):
        url = f"{server.base_url}/t/{DEMO_SLUG}{path}"
        answer = page.goto(url)
        assert answer is not None and answer.status == 200, path
        page.screenshot(path=str(shots / f"{index}.png"), full_page=True)
        found = page.evaluate(MEASURE, NARROWEST_COLUMN_PX)
        assert found["overflow"] <= 1, f"{path} is {found['overflow']}px wider than the phone"
        assert not found["hidden"], f"{path} hides columns: {found['hidden']}"
        assert not found["narrow"], f"{path} squeezes columns: {found['narrow']}"
        sign_out = page.get_by_test_id("sign-out")
        expect(sign_out).to_be_visible()
        box = sign_out.bounding_box()
        assert box is not None and box["height"] >= THUMB_PX, path


@pytest.mark.parametrize(
    ("role", "paths"),
    [("ehs_officer", HOST_PAGES), ("contractor_admin", CONTRACTOR_PAGES)],
)
def test_the_pages_fit_a_phone(
    phone: BrowserContext,
    demo_server: DemoServer,
    artifacts_dir: Path,
    role: str,
    paths: tuple[str, ...],
) -> None:
    page = phone.new_page()
    page.goto(f"{demo_server.base_url}/t/{DEMO_SLUG}/login")
    _sign_in(page, demo_server.login(role))
    expect(page).to_have_url(re.compile(rf"/t/{DEMO_SLUG}/?$"))
    shots = artifacts_dir / f"phone-{role}"
    shots.mkdir(parents=True, exist_ok=True)
    _check_pages(page, demo_server, paths, shots)


def test_a_link_opened_while_signed_out_leads_back_to_its_page(
    phone: BrowserContext, demo_server: DemoServer
) -> None:
    page = phone.new_page()
    wanted = f"/t/{DEMO_SLUG}/reviews"
    page.goto(demo_server.base_url + wanted)
    expect(page).to_have_url(re.compile(rf"/t/{DEMO_SLUG}/login\?next="))
    _sign_in(page, demo_server.login("ehs_officer"))
    expect(page).to_have_url(demo_server.base_url + wanted)
    expect(page.get_by_test_id("reviews")).to_be_visible()
