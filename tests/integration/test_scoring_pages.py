"""The evaluation pages over HTTP in Chinese: EHS finds a completed job waiting on the ratings
page, rates it on the form with the tenant's weights shown and a photo, records an inspection
finding that deducts from it; the company's administrator sees "我的评价" with the deduction and
appeals; EHS decides; a supplier review is computed, read with its figures and approved; the
scoring policy form saves; another company and another tenant reach none of it. Forms are sent
as a browser does, multipart with the page's CSRF token."""

from __future__ import annotations

import dataclasses
import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from litestar.testing import AsyncTestClient
from sqlalchemy import select

from infra.db import Database
from onboarding.models import Contractor
from permits.models import Permit
from portal.app import create_app
from scoring.models import Finding, Rating
from tenants import services as tenant_services
from tenants.models import Role, User
from tests.conftest import PostgresDatabase, settings_for
from tests.factories import TenantFactory
from tests.integration.test_scoring_api import completed_job, job_windows, png
from tests.permit_factories import PLANT_TZ, PermitWorld, Window

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.postgres]

CSRF_FIELD = re.compile(r'name="_csrf_token"\s+value="([^"]+)"')
NO_FILE = {"unused": ("", b"", "application/octet-stream")}
HOST_PASSWORD = "host-pass-12345"
SCORES = {"safety": "90", "quality": "80", "schedule": "70", "housekeeping": "60"}


@dataclasses.dataclass
class Site:
    """One test client for everyone (on PostgreSQL the app's connections belong to the client's
    event loop), with each user's cookies kept apart."""

    world: PermitWorld
    client: AsyncTestClient[Any]
    jars: dict[str, httpx.Cookies]
    jobs: list[uuid.UUID]
    windows: list[Window]

    @property
    def slug(self) -> str:
        return self.world.tenant.slug

    def page(self, path: str) -> str:
        return f"/t/{self.slug}{path}"

    async def request(self, who: str, method: str, url: str, **kwargs: Any) -> Any:
        self.client.cookies = self.jars[who]
        try:
            return await self.client.request(method, url, **kwargs)
        finally:
            self.jars[who] = httpx.Cookies(self.client.cookies)

    async def get(self, who: str, path: str) -> Any:
        return await self.request(who, "GET", self.page(path))

    async def post(
        self, who: str, form_path: str, action: str, form: dict[str, Any], files: Any = None
    ) -> Any:
        """Send a page's form as a browser would: multipart, with the page's CSRF token."""
        page = await self.get(who, form_path)
        assert page.status_code == 200, page.text
        token = CSRF_FIELD.search(page.text)
        assert token is not None, page.text
        return await self.request(
            who,
            "POST",
            self.page(action),
            data={**form, "_csrf_token": token.group(1)},
            files=files or NO_FILE,
        )


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


def assert_sent_to_sign_in(response: Any) -> None:
    """Another tenant's session is no session here: the page asks to sign in to this tenant."""
    assert response.status_code in (302, 303), response.text
    assert "/login" in response.headers["location"]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def site(
    postgres: PostgresDatabase, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Site]:
    directory = tmp_path_factory.mktemp("scoring-pages")
    settings = settings_for(
        postgres.app_url,
        directory / "var",
        migration_database_url=postgres.owner_url,
        login_rate_per_minute=10_000,
    )
    database = Database.from_settings(settings)
    factory = TenantFactory()
    try:
        world = await PermitWorld.create(database, settings, factory)
        windows = job_windows(2)
        jobs = [await completed_job(world, at) for at in windows]
        logins = {"x": (world.company.admin_email, world.company.admin_password)}
        y = await world.onboarding.register(world.tenant)
        logins["y"] = (y.admin_email, y.admin_password)
        async with world.session() as session:
            for name, role in (("ehs", Role.EHS_OFFICER), ("admin", Role.TENANT_ADMIN)):
                user = await session.scalar(
                    select(User).where(User.id == world.hosts[role].user_id)
                )
                assert user is not None
                await tenant_services.set_password(session, user, HOST_PASSWORD)
                logins[name] = (user.email, HOST_PASSWORD)
        other = await factory.create(database, plants=("P1",), users=((Role.EHS_OFFICER, None),))
        async with AsyncTestClient(app=create_app(settings)) as client:
            client.follow_redirects = False
            jars = {
                name: await _sign_in(client, world.tenant.slug, email, password)
                for name, (email, password) in logins.items()
            }
            stranger = other.user(Role.EHS_OFFICER)
            jars["b_ehs"] = await _sign_in(client, other.slug, stranger.email, stranger.password)
            yield Site(world, client, jars, jobs, windows)
    finally:
        await database.dispose()


async def test_dashboard_links_by_role(site: Site) -> None:
    ehs = (await site.get("ehs", "/")).text
    assert 'data-testid="ratings-link"' in ehs and 'data-testid="findings-link"' in ehs
    assert 'data-testid="scoring-policy-link"' in ehs and "评价" in ehs
    company = (await site.get("x", "/")).text
    assert 'data-testid="my-ratings-link"' in company
    assert 'data-testid="findings-link"' not in company
    assert 'data-testid="scoring-policy-link"' not in company


async def test_ehs_rates_a_job_on_the_form_with_a_photo(site: Site) -> None:
    job = site.jobs[0]
    listing = await site.get("ehs", "/ratings")
    assert listing.status_code == 200, listing.text
    assert listing.text.count('data-testid="unrated-job"') == 2
    assert f"/permits/{job}/rate" in listing.text

    form = await site.get("ehs", f"/permits/{job}/rate")
    assert form.status_code == 200, form.text
    assert "安全" in form.text and 'data-testid="weight-safety"' in form.text
    assert "40" in form.text
    # The permit page leads to the form while the job is unrated.
    permit_page = await site.get("ehs", f"/permits/{job}")
    assert 'data-testid="rating-link"' in permit_page.text
    to_form = await site.get("ehs", f"/permits/{job}/rating")
    assert to_form.headers["location"].endswith(f"/permits/{job}/rate")

    out_of_range = await site.post(
        "ehs",
        f"/permits/{job}/rate",
        f"/permits/{job}/rate",
        {**SCORES, "cooperation": "120"},
    )
    assert out_of_range.status_code == 400, out_of_range.text
    assert 'data-field="cooperation"' in out_of_range.text
    not_a_photo = await site.post(
        "ehs",
        f"/permits/{job}/rate",
        f"/permits/{job}/rate",
        {**SCORES, "cooperation": "100"},
        files={"photos": ("site.png", b"not an image at all", "image/png")},
    )
    assert not_a_photo.status_code == 422, not_a_photo.text
    assert 'data-field="photos"' in not_a_photo.text
    async with site.world.session() as session:
        assert await session.scalar(select(Rating.id).where(Rating.permit_id == job)) is None

    rated = await site.post(
        "ehs",
        f"/permits/{job}/rate",
        f"/permits/{job}/rate",
        {**SCORES, "cooperation": "100", "comment": "现场整洁，配合良好"},
        files={"photos": ("site.png", png(), "image/png")},
    )
    assert rated.status_code in (302, 303), rated.text
    detail = await site.request("ehs", "GET", rated.headers["location"])
    assert detail.status_code == 200, detail.text
    assert "82.5" in detail.text and "现场整洁，配合良好" in detail.text
    assert 'data-testid="photo"' in detail.text
    async with site.world.session() as session:
        rating = await session.scalar(select(Rating).where(Rating.permit_id == job))
        assert rating is not None and len(rating.photo_ids) == 1
    # A second rating on the form is refused with the rule's message.
    again = await site.get("ehs", f"/permits/{job}/rate")
    assert 'data-testid="already-rated"' in again.text
    # The company cannot open the form; another tenant finds nothing.
    assert (await site.get("x", f"/permits/{job}/rate")).status_code == 403
    assert_sent_to_sign_in(await site.get("b_ehs", f"/permits/{job}/rate"))


async def test_a_finding_deducts_and_the_company_appeals(site: Site) -> None:
    world, job = site.world, site.jobs[0]
    async with world.session() as session:
        number = await session.scalar(select(Permit.number).where(Permit.id == job))
    page = await site.get("ehs", "/findings")
    assert page.status_code == 200 and "检查" in page.text
    observed = site.windows[0].at(30).astimezone(PLANT_TZ).strftime("%Y-%m-%dT%H:%M")
    finding = {
        "plant_id": str(world.plant_id),
        "contractor_id": str(world.company.contractor_id),
        "permit": number,
        "severity": "major",
        "description": "动火点周边可燃物未清理",
        "observed_at": observed,
    }
    unknown = await site.post("ehs", "/findings", "/findings", {**finding, "permit": "XX-1"})
    assert unknown.status_code == 400 and 'data-field="permit"' in unknown.text
    recorded = await site.post(
        "ehs",
        "/findings",
        "/findings",
        finding,
        files={"photos": ("finding.png", png(), "image/png")},
    )
    assert recorded.status_code in (302, 303), recorded.text
    listed = await site.get("ehs", "/findings")
    assert "动火点周边可燃物未清理" in listed.text
    async with world.session() as session:
        stored = await session.scalar(select(Finding).where(Finding.permit_id == job))
        assert stored is not None and len(stored.photo_ids) == 1
    assert (await site.get("x", "/findings")).status_code == 403

    mine = await site.get("x", "/ratings")
    assert mine.status_code == 200
    assert "我的评价" in mine.text
    assert "动火点周边可燃物未清理" in mine.text and 'data-testid="deductions">8<' in mine.text
    assert 'data-testid="appeal-link"' in mine.text
    # Another company sees none of it, nor the rating's page.
    theirs = await site.get("y", "/ratings")
    assert 'data-testid="rating"' not in theirs.text
    async with world.session() as session:
        rating_id = await session.scalar(select(Rating.id).where(Rating.permit_id == job))
    assert (await site.get("y", f"/ratings/{rating_id}")).status_code == 404
    assert (await site.get("y", "/ratings/not-an-id")).status_code == 404

    appealed = await site.post(
        "x",
        f"/ratings/{rating_id}",
        f"/ratings/{rating_id}/appeal",
        {"reason": "可燃物为业主方堆放"},
    )
    assert appealed.status_code in (302, 303), appealed.text
    shown = await site.get("x", f"/ratings/{rating_id}")
    assert "可燃物为业主方堆放" in shown.text and 'data-testid="appeal-form"' not in shown.text

    decided = await site.post(
        "ehs",
        f"/ratings/{rating_id}",
        f"/ratings/{rating_id}/decision",
        {"outcome": "upheld", "text": "现场照片确认为承包商堆放"},
    )
    assert decided.status_code in (302, 303), decided.text
    final = await site.get("x", f"/ratings/{rating_id}")
    assert "现场照片确认为承包商堆放" in final.text


async def test_a_review_is_computed_read_and_approved(site: Site) -> None:
    world = site.world
    day = site.windows[0].start.astimezone(PLANT_TZ).date()
    contractor_id = str(world.company.contractor_id)
    listing = await site.get("ehs", "/reviews")
    assert listing.status_code == 200 and "供应商" in listing.text
    form = {
        "contractor_id": contractor_id,
        "period_kind": "quarter",
        "year": str(day.year),
        "quarter": str((day.month - 1) // 3 + 1),
    }
    computed = await site.post("ehs", "/reviews", "/reviews", form)
    assert computed.status_code in (302, 303), computed.text
    review_path = computed.headers["location"].removeprefix(f"/t/{site.slug}")
    review = await site.get("ehs", review_path)
    assert review.status_code == 200, review.text
    assert review.text.count('data-testid="job"') == 1
    assert "动火点周边可燃物未清理" in review.text
    assert f"{review_path}/scorecard.pdf" not in review.text, "a draft has no scorecard yet"
    # The company sees no draft.
    assert (await site.get("x", review_path)).status_code == 404

    no_reason = await site.post(
        "ehs", review_path, f"{review_path}/approve", {"decision": "blacklist", "reason": ""}
    )
    assert no_reason.status_code == 422 and 'data-field="reason"' in no_reason.text
    approved = await site.post(
        "ehs", review_path, f"{review_path}/approve", {"decision": "probation", "reason": "观察"}
    )
    assert approved.status_code in (302, 303), approved.text
    shown = await site.get("x", review_path)
    assert shown.status_code == 200 and 'data-testid="decision"' in shown.text
    assert f"{review_path}/scorecard.pdf" in shown.text
    scorecard = await site.get("x", f"{review_path}/scorecard.pdf")
    assert scorecard.status_code == 200 and scorecard.content.startswith(b"%PDF")
    assert "观察" in shown.text
    overlap = await site.post("ehs", "/reviews", "/reviews", form)
    assert overlap.status_code == 409 and 'data-field="period"' in overlap.text
    async with world.session() as session:
        state = await session.scalar(
            select(Contractor.state).where(Contractor.id == world.company.contractor_id)
        )
    assert state == "approved"
    assert_sent_to_sign_in(await site.get("b_ehs", review_path))


async def test_the_policy_form_saves_and_refuses_upside_down_grades(site: Site) -> None:
    page = await site.get("admin", "/scoring-policy")
    assert page.status_code == 200 and '<html lang="zh-CN">' in page.text
    assert 'name="weights_safety"' in page.text and 'value="40.0"' in page.text
    assert (await site.get("x", "/scoring-policy")).status_code == 403
    form = {
        "weights_safety": "50",
        "weights_quality": "20",
        "weights_schedule": "10",
        "weights_housekeeping": "10",
        "weights_cooperation": "10",
        "severity_points_minor": "3",
        "severity_points_major": "8",
        "severity_points_critical": "20",
        "alert_severity_left_zone": "minor",
        "alert_severity_restricted_zone": "major",
        "alert_severity_no_signal": "minor",
        "alert_severity_overstay": "minor",
        "alert_severity_guardian_absent": "major",
        "alert_severity_implausible_movement": "critical",
        "risk_weights_low": "1",
        "risk_weights_medium": "1.5",
        "risk_weights_high": "2",
        "grade_thresholds_A": "90",
        "grade_thresholds_B": "80",
        "grade_thresholds_C": "70",
        "prior_jobs": "5",
        "blacklist_critical": "2",
        "appeal_days": "14",
        "bi_webhook_url": "",
        "bi_webhook_secret": "",
    }
    upside_down = await site.post(
        "admin",
        "/scoring-policy",
        "/scoring-policy",
        {**form, "grade_thresholds_A": "60"},
    )
    assert upside_down.status_code == 422 and 'data-field="grade_thresholds"' in upside_down.text
    saved = await site.post("admin", "/scoring-policy", "/scoring-policy", form)
    assert saved.status_code == 200 and 'data-testid="notice"' in saved.text
    again = await site.get("ehs", "/scoring-policy")
    assert 'value="50.0"' in again.text and 'value="14"' in again.text
    rate_form = await site.get("ehs", f"/permits/{site.jobs[1]}/rate")
    assert "50" in rate_form.text
