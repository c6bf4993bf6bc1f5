"""HQ in a real browser on the seeded demo: the group's analyst opens the comparison of the
three plants from the dashboard, sees the server-drawn charts, opens a plant, follows its
compliance rate to the permits behind it and reaches one permit's page; the plant's board for
the dispatch centre shows today's figures and reloads itself."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from portal.demo import DEMO_PLANTS, DEMO_SLUG
from tests.browser.conftest import DemoServer

pytestmark = pytest.mark.browser

PLANT_CODE, PLANT_NAME = DEMO_PLANTS[0][0], DEMO_PLANTS[0][1]


def _sign_in(page: Page, server: DemoServer) -> None:
    analyst = server.login("hq_analyst")
    page.goto(f"{server.base_url}/t/{DEMO_SLUG}/login")
    page.fill("input[name=email]", analyst["email"])
    page.fill("input[name=password]", analyst["password"])
    page.get_by_role("button", name=re.compile("登录|Sign in")).click()
    expect(page).to_have_url(re.compile(rf"/t/{DEMO_SLUG}/?$"))


def test_hq_compares_the_plants_and_drills_down_to_a_permit(
    page: Page, demo_server: DemoServer, artifacts_dir: Path
) -> None:
    _sign_in(page, demo_server)
    page.get_by_test_id("hq-link").click()
    expect(page).to_have_url(re.compile(rf"/t/{DEMO_SLUG}/hq$"))

    plants = page.get_by_test_id("table-plants").get_by_test_id("row-plants")
    expect(plants).to_have_count(len(DEMO_PLANTS))
    charts = page.get_by_test_id("charts")
    expect(charts.locator("svg[role=img]")).to_have_count(4)
    assert charts.locator(".chart-bar").count() > 0
    assert charts.locator(".chart-point").count() > 0
    compliance_bars = page.get_by_test_id("chart-compliance").locator(".chart-bar")
    assert compliance_bars.count() > 0
    rates = page.get_by_test_id("table-plants").locator("td[data-key=compliance_rate]")
    shown = {float(text) for text in rates.all_inner_texts() if text != "—"}
    drawn = {
        float(value or "nan")
        for value in compliance_bars.evaluate_all(
            "bars => bars.map(bar => bar.getAttribute('data-value'))"
        )
    }
    assert {round(value, 1) for value in drawn} == shown
    page.screenshot(path=str(artifacts_dir / "hq-compare.png"), full_page=True)

    row = plants.filter(has_text=PLANT_NAME)
    row.locator("td[data-key=plant] a").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"{PLANT_CODE} {PLANT_NAME}")
    expect(page.get_by_test_id("chart-trend").locator("svg[role=img]")).to_have_count(1)
    summary = page.get_by_test_id("table-plants").locator("td[data-key=compliance_rate] a")
    finished = int(
        page.get_by_test_id("table-plants").locator("td[data-key=finished]").inner_text()
    )
    rate = summary.inner_text()
    summary.click()

    expect(page).to_have_url(re.compile(rf"/t/{DEMO_SLUG}/hq/permits\?"))
    expect(page.get_by_test_id("count-finished")).to_have_text(str(finished))
    expect(page.get_by_test_id("compliance-rate")).to_have_text(rate)
    listed = page.get_by_test_id("table-permits").locator("tr[data-finished=true]")
    expect(listed).to_have_count(finished)
    page.screenshot(path=str(artifacts_dir / "hq-permits.png"), full_page=True)

    first = listed.first.locator("td[data-key=number] a")
    number = first.inner_text()
    first.click()
    expect(page).to_have_url(re.compile(rf"/t/{DEMO_SLUG}/permits/[0-9a-f-]{{36}}$"))
    expect(page.locator("body")).to_contain_text(number)


def test_the_plant_board_shows_today_and_refreshes(
    page: Page, demo_server: DemoServer, artifacts_dir: Path
) -> None:
    _sign_in(page, demo_server)
    page.goto(f"{demo_server.base_url}/t/{DEMO_SLUG}/hq")
    page.get_by_test_id("board-link").first.click()
    expect(page).to_have_url(re.compile(rf"/t/{DEMO_SLUG}/board/[0-9a-f-]{{36}}$"))
    expect(page.get_by_test_id("plant-board")).to_be_visible()
    refresh = page.locator("meta[http-equiv=refresh]")
    expect(refresh).to_have_attribute("content", "15")
    for testid in ("board-permits", "board-people", "board-alerts", "board-overtime"):
        expect(page.get_by_test_id(testid)).to_have_text(re.compile(r"^\d+$"))
    page.screenshot(path=str(artifacts_dir / "hq-board.png"), full_page=True)
