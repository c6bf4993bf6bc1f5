"""A hot work permit (动火作业票) on phones in a real browser: the contractor's administrator
applies for level-1 hot work in NB01 and submits it; each approver of the chain signs in on a
phone standing inside the work zone, finds the permit in "waiting for my decision" and approves
it, until the permit is approved with its number; the verification link (the QR code's target)
then says the permit has not started yet.

The second test carries such a permit on to closed with every start gate enforced: the guardian's
first try to start is refused (no briefing §4.4, no gas analysis §5.3.1c, measures unconfirmed);
the unit supervisor records a passing gas analysis, confirms the measures, prepares the job
briefing and signs it as briefer on the tablet, where the crew then signs; the guardian starts
the work (the QR page now says valid), the work leader reports it done on his own phone, and
EHS accepts completion, which closes the permit (the QR page says closed)."""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Browser, BrowserContext, Locator, Page, expect

from portal.demo import DEMO_PLANTS, DEMO_SLUG, DEMO_USERS
from portal.demo_permits import DEMO_BROWSER_PERMIT, DEMO_ZONES
from tests.browser.conftest import DemoServer

pytestmark = pytest.mark.browser

PERMIT = DEMO_BROWSER_PERMIT
PHONE = {"width": 390, "height": 844}
TIMEZONE = "Asia/Shanghai"
METRES_PER_DEGREE = 111_320.0
NUMBER = re.compile(rf"^{PERMIT.plant_code}-DH-\d{{8}}-\d{{4}}$")
# Who does what on site, by the demo's roles at NB01: the unit supervisor analyses, confirms and
# briefs, EHS accepts completion; the work leader reports completion from his own login.
SUPERVISOR_EMAIL = PERMIT.approvers["local_unit"]
ACCEPTOR_EMAIL = PERMIT.approvers["safety_department"]
WORK_LEADER_LOGIN = ("contractor_worker", "worker.done")
# Three strokes of 12 waypoints each, in shares of the pad, crossing most of it.
SIGNATURE = [
    [(0.06 + 0.03 * i, 0.3 + 0.04 * (i % 3)) for i in range(12)],
    [(0.3 + 0.01 * (i % 2), 0.1 + 0.07 * i) for i in range(12)],
    [(0.5 + 0.04 * i, 0.2 + 0.55 * (i % 2)) for i in range(12)],
]


def _zone_centre() -> dict[str, float]:
    """The middle of the permit's zone, where an approver standing at the work site is."""
    _code, _name, _tz, latitude, longitude = next(
        plant for plant in DEMO_PLANTS if plant[0] == PERMIT.plant_code
    )
    spec = next(zone for zone in DEMO_ZONES[PERMIT.plant_code] if zone.name == PERMIT.zone_name)
    return {
        "latitude": latitude + spec.north / METRES_PER_DEGREE,
        "longitude": longitude + spec.east / (METRES_PER_DEGREE * math.cos(math.radians(latitude))),
        "accuracy": 10,
    }


def _phone(browser: Browser) -> BrowserContext:
    context = browser.new_context(
        locale="zh-CN",
        viewport=PHONE,
        is_mobile=True,
        has_touch=True,
        device_scale_factor=3,
        timezone_id=TIMEZONE,
        permissions=["geolocation"],
        geolocation=_zone_centre(),
    )
    context.set_default_timeout(15_000)
    return context


def _password(server: DemoServer, email: str) -> str:
    for login in server.logins:
        if login["email"] == email:
            return login["password"]
    raise LookupError(f"no demo login for {email}")


def _sign_in(page: Page, server: DemoServer, email: str) -> None:
    page.goto(f"{server.base_url}/t/{DEMO_SLUG}/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", _password(server, email))
    page.get_by_role("button", name=re.compile("登录|Sign in")).click()
    expect(page).to_have_url(re.compile(rf"/t/{DEMO_SLUG}/?$"))


def _decide(page: Page) -> None:
    """Approve the pending step once the phone's position is in the form."""
    form = page.get_by_test_id("decide-form")
    expect(form).to_have_attribute("data-position", "ready")
    form.get_by_test_id("decision-approve").check()
    form.get_by_test_id("decide").click()
    expect(page.get_by_test_id("notice")).to_be_visible()


def _apply(page: Page, artifacts_dir: Path, lead: timedelta) -> None:
    page.get_by_test_id("apply-link").click()
    chooser = page.get_by_test_id("choose-type")
    plant = chooser.locator("select[name=plant] option", has_text=PERMIT.plant_code)
    chooser.locator("select[name=plant]").select_option(plant.get_attribute("value"))
    chooser.locator("select[name=work_type]").select_option(PERMIT.work_type)
    page.get_by_test_id("choose-type-next").click()

    form = page.locator("form.permit-form")
    form.get_by_test_id("zone").select_option(label=PERMIT.zone_name)
    form.locator("input[name=location]").fill("常压塔 T-101 塔底出口管线")
    form.locator("textarea[name=work_content]").fill("更换塔底出口阀门，焊接 DN150 法兰")
    now = datetime.now(ZoneInfo(TIMEZONE)).replace(second=0, microsecond=0)
    start = now + lead
    end = start + timedelta(hours=PERMIT.window_hours)
    form.locator("input[name=planned_start]").fill(start.strftime("%Y-%m-%dT%H:%M"))
    form.locator("input[name=planned_end]").fill(end.strftime("%Y-%m-%dT%H:%M"))
    crew = form.get_by_test_id("crew")
    for name in PERMIT.crew:
        row = crew.locator(".crew-row", has=page.locator(f'input[data-name="{name}"]'))
        row.locator("input[name=crew]").check()
        row.locator("input.duty").fill("焊工")
    form.get_by_test_id("work-leader").select_option(label=PERMIT.work_leader)
    form.get_by_test_id("guardian").select_option(label=PERMIT.guardian_name)
    form.get_by_test_id("details_requested_level").select_option(PERMIT.requested_level)
    form.locator("select[name=details_method]").select_option("electric_welding")
    form.get_by_test_id("details_wind_force").fill("2")
    form.locator("textarea[name=hazards]").fill("可燃气体泄漏遇明火\n焊渣飞溅")
    form.locator("textarea[name=emergency_measures]").fill("立即停止动火，撤离现场\n拨打 119")
    items = form.get_by_test_id("checklist-item")
    for index in range(items.count()):
        items.nth(index).locator("input[value=yes]").check()
    page.screenshot(path=str(artifacts_dir / "permit-form-phone.png"), full_page=True)
    form.get_by_test_id("save-draft").click()
    expect(page.get_by_test_id("permit-state")).to_have_attribute("data-state", "draft")


def _approve_everywhere(browser: Browser, server: DemoServer, page: Page, permit_url: str) -> int:
    """Each approver of the chain decides on a phone in the zone; the number of steps decided."""
    page.get_by_test_id("submit").click()
    expect(page.get_by_test_id("notice")).to_be_visible()
    expect(page.get_by_test_id("permit-state")).to_have_attribute("data-state", "submitted")
    # The first step is the work leader's opinion, given by the company's administrator.
    pending = page.locator('[data-testid="chain-step"][data-status="pending"]')
    assert pending.get_attribute("data-role") == "work_leader"
    _decide(page)

    decided = 1
    for _round in range(6):
        page.goto(permit_url)
        pending = page.locator('[data-testid="chain-step"][data-status="pending"]')
        if pending.count() == 0:
            return decided
        role = pending.get_attribute("data-role")
        assert role in PERMIT.approvers, role
        approver = _phone(browser)
        try:
            phone = approver.new_page()
            _sign_in(phone, server, PERMIT.approvers[role])
            phone.get_by_test_id("permit-queue-link").click()
            queued = phone.get_by_test_id("queue").locator(
                f'a[href="{permit_url.split(server.base_url, 1)[1]}"]'
            )
            expect(queued).to_be_visible()
            queued.click()
            _decide(phone)
            decided += 1
        finally:
            approver.close()
    pytest.fail("the approval chain did not end")


def _approved(
    browser: Browser,
    server: DemoServer,
    page: Page,
    artifacts_dir: Path,
    lead: timedelta = timedelta(minutes=10),
) -> str:
    """Apply for work starting ``lead`` from now, submit and take the permit through its
    chain; the permit's number."""
    _sign_in(page, server, PERMIT.applicant_email)
    _apply(page, artifacts_dir, lead)
    permit_url = page.url
    decided = _approve_everywhere(browser, server, page, permit_url)
    page.goto(permit_url)
    expect(page.get_by_test_id("permit-state")).to_have_attribute("data-state", "approved")
    number = page.get_by_test_id("permit-number").inner_text().strip()
    assert NUMBER.match(number), number
    # Every step was decided standing in the zone (§4.11a).
    expect(page.get_by_test_id("on-site")).to_have_count(decided)
    return number


def test_hot_work_permit_applied_approved_on_site_and_verified(
    browser: Browser, demo_server: DemoServer, artifacts_dir: Path
) -> None:
    applicant = _phone(browser)
    page = applicant.new_page()
    try:
        number = _approved(browser, demo_server, page, artifacts_dir)
        page.screenshot(path=str(artifacts_dir / "permit-approved-phone.png"), full_page=True)

        page.get_by_test_id("verify-link").click()
        verdict = page.locator("section.verify")
        expect(verdict).to_have_attribute("data-status", "not_started")
        expect(verdict).to_contain_text(number)
    finally:
        applicant.close()


def _user_name(email: str) -> str:
    return next(name for _role, name, address, _phone, _plant in DEMO_USERS if address == email)


def _signed_in(browser: Browser, server: DemoServer, email: str) -> tuple[BrowserContext, Page]:
    context = _phone(browser)
    page = context.new_page()
    _sign_in(page, server, email)
    return context, page


def _done(page: Page, what: str) -> None:
    """The change went through: the page came back with its notice."""
    expect(page).to_have_url(re.compile(rf"\?done={what}$"))
    expect(page.get_by_test_id("notice")).to_be_visible()


def _verdict(page: Page, permit_url: str) -> Locator:
    """The verification page the permit's QR code leads to."""
    page.goto(permit_url)
    page.get_by_test_id("verify-link").click()
    return page.locator("section.verify")


def _sign_on_pad(page: Page, full_name: str) -> None:
    """Draw a signature with the pointer, type the registered name, consent and send."""
    submit = page.get_by_test_id("sign-submit")
    expect(submit).to_be_disabled()
    pad = page.get_by_test_id("signature-pad")
    pad.scroll_into_view_if_needed()
    box = pad.bounding_box()
    assert box is not None
    for stroke in SIGNATURE:
        x, y = stroke[0]
        page.mouse.move(box["x"] + x * box["width"], box["y"] + y * box["height"])
        page.mouse.down()
        for x, y in stroke[1:]:
            page.mouse.move(box["x"] + x * box["width"], box["y"] + y * box["height"], steps=3)
        page.mouse.up()
    expect(submit).to_be_enabled()
    expect(page.get_by_test_id("strokes")).to_have_value(re.compile(r'"strokes":\[\[\['))
    page.get_by_test_id("full-name").fill(full_name)
    page.get_by_test_id("consent").check()
    submit.click()


def test_hot_work_permit_started_through_its_gates_and_closed(
    browser: Browser, demo_server: DemoServer, artifacts_dir: Path
) -> None:
    applicant = _phone(browser)
    others: list[BrowserContext] = []

    def phone_of(email: str) -> Page:
        context, phone = _signed_in(browser, demo_server, email)
        others.append(context)
        return phone

    try:
        page = applicant.new_page()
        # Work planned from this very minute, as for a permit approved at the moment of work:
        # started, it is inside its window. (The QR page still says not_started for a permit
        # started in the 15 minutes' grace before its planned start: permits.records.)
        number = _approved(browser, demo_server, page, artifacts_dir, lead=timedelta(0))
        permit_url = page.url

        # 1. The guardian tries to start: refused, with every gate that is not met.
        guardian = phone_of(PERMIT.guardian_email)
        guardian.goto(permit_url)
        guardian.get_by_test_id("action-start").click()
        refused = guardian.get_by_test_id("gate-problems")
        expect(refused).to_be_visible()
        applicable = guardian.locator('[data-testid="measure"]:not(.not-applicable)')
        assert applicable.count() > 0
        problems = refused.get_by_test_id("gate-problem")
        expect(problems.and_(guardian.locator('[data-rule="checklist.confirmed"]'))).to_have_count(
            applicable.count()
        )
        rules = {problems.nth(i).get_attribute("data-rule") for i in range(problems.count())}
        assert rules == {"briefing.given", "gas.sample_missing", "checklist.confirmed"}, rules
        clauses = refused.get_by_test_id("gate-clause").all_inner_texts()
        assert "GB 30871 §4.4" in clauses, clauses
        assert "GB 30871 §5.3.1c" in clauses, clauses
        expect(guardian.get_by_test_id("permit-state")).to_have_attribute("data-state", "approved")
        guardian.screenshot(
            path=str(artifacts_dir / "permit-start-refused-phone.png"), full_page=True
        )

        # 2. The unit supervisor analyses the gas (methane 0.1 % v/v, sampled now on the plant's
        # clock) and confirms every measure that applies.
        supervisor = phone_of(SUPERVISOR_EMAIL)
        supervisor.goto(permit_url)
        supervisor.get_by_test_id("gas").locator("summary").click()
        gas = supervisor.get_by_test_id("gas-form")
        plant_tz = next(plant[2] for plant in DEMO_PLANTS if plant[0] == PERMIT.plant_code)
        sampled = datetime.now(ZoneInfo(plant_tz)).strftime("%Y-%m-%dT%H:%M")
        gas.locator("input[name=sampled_at]").fill(sampled)
        gas.locator("input[name=point]").fill("T-101 塔底出口阀门处")
        gas.locator("select[name=reading_0_gas]").select_option("methane")
        gas.locator("input[name=reading_0_value]").fill("0.1")
        gas.locator("select[name=reading_0_unit]").select_option("percent_vol")
        gas.locator("input[name=analyst]").fill(_user_name(SUPERVISOR_EMAIL))
        gas.locator("input[name=instrument]").fill("便携式四合一气体检测仪 MX4")
        gas.locator("button[type=submit]").click()
        _done(supervisor, "gas")
        expect(supervisor.get_by_test_id("gas-analysis")).to_have_attribute("data-passed", "true")

        checklist = supervisor.get_by_test_id("checklist")
        boxes = checklist.locator("input[name=codes]")
        expect(boxes).to_have_count(applicable.count())
        for index in range(boxes.count()):
            boxes.nth(index).check()
        supervisor.get_by_test_id("confirm-measures").click()
        _done(supervisor, "confirmed")
        expect(supervisor.locator('[data-testid="measure"][data-confirmed="true"]')).to_have_count(
            applicable.count()
        )

        # 3. The job briefing on the supervisor's tablet: the briefer signs, then the crew.
        supervisor.get_by_test_id("prepare-briefing").click()
        expect(supervisor).to_have_url(re.compile(rf"/t/{DEMO_SLUG}/briefings/[0-9a-f-]+$"))
        briefing_url = supervisor.url
        briefer = supervisor.get_by_test_id("briefer")
        expect(briefer).to_contain_text(_user_name(SUPERVISOR_EMAIL))
        _sign_on_pad(supervisor, _user_name(SUPERVISOR_EMAIL))
        expect(supervisor.get_by_test_id("briefer-signed")).to_be_visible()
        for name in PERMIT.crew:
            member = supervisor.get_by_test_id("crew-member").filter(has_text=name)
            expect(member).to_have_attribute("data-signed", "false")
            member.get_by_test_id("crew-sign").click()
            expect(supervisor.get_by_test_id("signer")).to_have_text(name)
            _sign_on_pad(supervisor, name)
            expect(supervisor).to_have_url(briefing_url)
            expect(
                supervisor.get_by_test_id("crew-member").filter(has_text=name)
            ).to_have_attribute("data-signed", "true")
        expect(supervisor.get_by_test_id("briefing-complete")).to_be_visible()
        supervisor.screenshot(
            path=str(artifacts_dir / "permit-briefing-tablet.png"), full_page=True
        )

        # 4. Every gate passes now: the guardian starts the work; the QR page says valid.
        guardian.goto(permit_url)
        guardian.get_by_test_id("action-start").click()
        _done(guardian, "start")
        expect(guardian.get_by_test_id("gate-problems")).to_have_count(0)
        expect(guardian.get_by_test_id("permit-state")).to_have_attribute("data-state", "active")
        guardian.screenshot(path=str(artifacts_dir / "permit-active-phone.png"), full_page=True)
        verdict = _verdict(guardian, permit_url)
        expect(verdict).to_have_attribute("data-status", "valid")
        expect(verdict).to_contain_text(number)

        # 5. The work leader reports the work done from his own phone.
        role, prefix = WORK_LEADER_LOGIN
        leader = phone_of(demo_server.login(role, prefix)["email"])
        leader.goto(permit_url)
        leader.get_by_test_id("action-complete").click()
        _done(leader, "complete")
        expect(leader.get_by_test_id("permit-state")).to_have_attribute("data-state", "completed")

        # 6. EHS accepts completion: the permit is closed, and so says its QR page.
        acceptor = phone_of(ACCEPTOR_EMAIL)
        acceptor.goto(permit_url)
        accept = acceptor.locator(
            "form.permit-action", has=acceptor.get_by_test_id("action-accept")
        )
        accept.locator("input[name=comment]").fill("现场已清理，无遗留火种")
        accept.get_by_test_id("action-accept").click()
        _done(acceptor, "accept")
        expect(acceptor.get_by_test_id("permit-state")).to_have_attribute("data-state", "closed")
        expect(acceptor.get_by_test_id("actions")).to_have_count(0)
        acceptor.screenshot(path=str(artifacts_dir / "permit-closed-phone.png"), full_page=True)
        verdict = _verdict(acceptor, permit_url)
        expect(verdict).to_have_attribute("data-status", "closed")
        expect(verdict).to_contain_text(number)
    finally:
        for context in others:
            context.close()
        applicant.close()
