"""The tenant administrator's permit settings pages over HTTP: the approval chain of a work type
and level with Table B.1's steps marked and the tenant's own steps added and removed through the
page's forms, a chain without a standard step refused with the rule and clause; the calendar
with the national holidays and the tenant's own days, a working day on a national holiday
refused (GB 30871 §5.1.1), a day set and removed; who may open and post (others get 404) and one
tenant's settings never shown to another."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import pytest
from litestar.testing import AsyncTestClient

from infra.db import Database
from infra.settings import Settings
from portal.app import create_app
from tenants.models import Role
from tests.factories import SeededTenant, TenantFactory, audit_actions

CSRF_FIELD = re.compile(r'name="_csrf_token"\s+value="([^"]+)"')
STEP = re.compile(
    r'data-testid="chain-step" data-role="([a-z_]+)" data-kind="([a-z_]+)" '
    r'data-standard="(true|false)"'
)
CHAINS = "/t/{slug}/admin/permit-chains"
HOT_WORK_LEVEL1 = "?work_type=hot_work&level=level1"
USERS = ((Role.TENANT_ADMIN, None), (Role.EHS_OFFICER, "P1"), (Role.GUARDIAN, "P1"))
# Table B.1 for level-1 hot work, in signing order.
HOT_WORK_LEVEL1_STANDARD = [
    ("work_leader", "review"),
    ("local_unit", "review"),
    ("safety_department", "approve"),
    ("shift_leader", "check"),
]


@dataclasses.dataclass
class Site:
    settings: Settings
    database: Database
    tenant: SeededTenant
    other: SeededTenant
    browsers: list[AsyncTestClient[Any]] = dataclasses.field(default_factory=list)

    def chains(self, tenant: SeededTenant | None = None) -> str:
        return CHAINS.format(slug=(tenant or self.tenant).slug)

    def calendar(self, tenant: SeededTenant | None = None) -> str:
        return f"/t/{(tenant or self.tenant).slug}/admin/calendar"

    async def browser(self, role: Role, tenant: SeededTenant | None = None) -> Any:
        """A signed-in browser of the user with this role, in Chinese."""
        tenant = tenant or self.tenant
        user = tenant.user(role)
        client = AsyncTestClient(app=create_app(self.settings))
        await client.__aenter__()
        self.browsers.append(client)
        client.follow_redirects = False
        client.headers["Accept-Language"] = "zh-CN,zh;q=0.9"
        login = await client.get(f"/t/{tenant.slug}/login")
        csrf = CSRF_FIELD.search(login.text)
        assert csrf is not None, login.text
        response = await client.post(
            "/login",
            data={
                "tenant": tenant.slug,
                "email": user.email,
                "password": user.password,
                "_csrf_token": csrf.group(1),
            },
        )
        assert response.status_code in (302, 303), response.text
        return client


@pytest.fixture
async def site(sqlite_settings: Settings, factory: TenantFactory) -> AsyncIterator[Site]:
    settings = dataclasses.replace(sqlite_settings, login_rate_per_minute=10_000)
    database = Database.from_settings(settings)
    tenant = await factory.create(database, users=USERS)
    other = await factory.create(database, users=((Role.TENANT_ADMIN, None),))
    site = Site(settings, database, tenant, other)
    try:
        yield site
    finally:
        # The browsers share nothing but the database: close them in the reverse order.
        for client in reversed(site.browsers):
            await client.__aexit__(None, None, None)
        await database.dispose()


async def _post(client: Any, page: str, action: str, form: dict[str, str]) -> Any:
    """Send a page's form as a browser would, with the CSRF token of the page."""
    shown = await client.get(page)
    assert shown.status_code == 200, shown.text
    csrf = CSRF_FIELD.search(shown.text)
    assert csrf is not None, shown.text
    return await client.post(action, data={**form, "_csrf_token": csrf.group(1)})


def _steps(html: str) -> list[tuple[str, str, bool]]:
    return [(role, kind, standard == "true") for role, kind, standard in STEP.findall(html)]


def _row(html: str, day: str, kind: str) -> str | None:
    match = re.search(
        rf'<tr data-testid="calendar-day" data-day="{day}" data-kind="{kind}"[^>]*>.*?</tr>',
        html,
        re.S,
    )
    return match.group(0) if match else None


# --- the approval chains ---------------------------------------------------------------------


async def test_the_chain_page_shows_table_b1_with_its_clause(site: Site) -> None:
    admin = await site.browser(Role.TENANT_ADMIN)
    page = await admin.get(site.chains() + HOT_WORK_LEVEL1)
    assert page.status_code == 200, page.text
    assert _steps(page.text) == [(role, kind, True) for role, kind in HOT_WORK_LEVEL1_STANDARD]
    assert page.text.count('data-testid="step-clause">GB 30871 B.1<') == 4
    assert 'data-custom="false"' in page.text
    # Chinese first: the type, level and approvers in the catalogue's words.
    for text in (
        "动火作业",
        "一级",
        "安全管理部门",
        "所在基层单位",
        "岗位当班班长验票",
        "作业负责人",
    ):
        assert text in page.text
    # No step of the standard offers a remove button.
    assert 'data-testid="remove-step"' not in page.text
    # Every type and level can be chosen; an ungraded type has one chain.
    assert 'data-work-type="height" data-level="grade_4"' in page.text
    assert 'data-work-type="confined_space" data-level=""' in page.text
    confined = await admin.get(site.chains() + "?work_type=confined_space&level=")
    assert _steps(confined.text)[-1] == ("local_unit", "approve", True)
    # A level the type does not have, or no such type, is no page.
    assert (await admin.get(site.chains() + "?work_type=hot_work&level=grade_1")).status_code == 404
    assert (await admin.get(site.chains() + "?work_type=welding")).status_code == 404


async def test_an_own_step_is_added_where_chosen_and_removed_again(site: Site) -> None:
    admin = await site.browser(Role.TENANT_ADMIN)
    page = site.chains() + HOT_WORK_LEVEL1
    added = await _post(
        admin,
        page,
        site.chains() + "/add",
        {
            "work_type": "hot_work",
            "level": "level1",
            "role": "equipment_department",
            "kind": "co_sign",
            "label": "设备部会签",
            "position": "2",
        },
    )
    assert added.status_code in (302, 303), added.text
    assert added.headers["location"].startswith(site.chains() + HOT_WORK_LEVEL1)
    shown = await admin.get(added.headers["location"])
    assert _steps(shown.text) == [
        ("work_leader", "review", True),
        ("local_unit", "review", True),
        ("equipment_department", "co_sign", False),
        ("safety_department", "approve", True),
        ("shift_leader", "check", True),
    ]
    assert "设备部会签" in shown.text
    assert 'data-custom="true"' in shown.text
    assert 'data-testid="notice"' in shown.text
    assert shown.text.count('data-testid="remove-step"') == 1
    # Saved for the tenant: a fresh page (another level untouched) shows it.
    again = await admin.get(page)
    assert ("equipment_department", "co_sign", False) in _steps(again.text)
    level2 = await admin.get(site.chains() + "?work_type=hot_work&level=level2")
    assert all(standard for _role, _kind, standard in _steps(level2.text))
    assert "permit.chain_policy_set" in await audit_actions(site.database, site.tenant.id)

    removed = await _post(
        admin,
        page,
        site.chains() + "/remove",
        {
            "work_type": "hot_work",
            "level": "level1",
            "position": "2",
            "role": "equipment_department",
            "kind": "co_sign",
        },
    )
    assert removed.status_code in (302, 303), removed.text
    after = await admin.get(page)
    assert _steps(after.text) == [(role, kind, True) for role, kind in HOT_WORK_LEVEL1_STANDARD]


async def test_dropping_a_standard_step_is_refused_with_the_rule(site: Site) -> None:
    admin = await site.browser(Role.TENANT_ADMIN)
    page = site.chains() + HOT_WORK_LEVEL1
    refused = await _post(
        admin,
        page,
        site.chains() + "/remove",
        {
            "work_type": "hot_work",
            "level": "level1",
            "position": "2",
            "role": "safety_department",
            "kind": "approve",
        },
    )
    assert refused.status_code == 422, refused.text
    assert 'data-testid="refusal" data-rule="approval.chain"' in refused.text
    assert 'data-testid="refusal-clause">GB 30871 B.1<' in refused.text
    # The field and the missing step by name, in Chinese.
    assert 'data-testid="refusal-field">审批流程<' in refused.text
    assert 'data-testid="refusal-subject">安全管理部门<' in refused.text
    assert "审批流程缺少标准要求的环节或改变了其顺序。" in refused.text
    # Nothing was saved.
    after = await admin.get(page)
    assert _steps(after.text) == [(role, kind, True) for role, kind in HOT_WORK_LEVEL1_STANDARD]
    assert "permit.chain_policy_set" not in await audit_actions(site.database, site.tenant.id)


async def test_the_add_form_names_the_fields_it_cannot_use(site: Site) -> None:
    admin = await site.browser(Role.TENANT_ADMIN)
    page = site.chains() + HOT_WORK_LEVEL1
    form = {"work_type": "hot_work", "level": "level1", "role": "fire_department"}
    empty = await _post(admin, page, site.chains() + "/add", {**form, "kind": "review"})
    assert empty.status_code == 400, empty.text
    assert 'class="field-error" data-field="label"' in empty.text
    assert 'class="field-error" data-field="position"' in empty.text
    assert 'data-rule="required"' in empty.text
    unknown = await _post(
        admin,
        page,
        site.chains() + "/add",
        {**form, "kind": "veto", "label": "消防", "position": "0"},
    )
    assert unknown.status_code == 400, unknown.text
    assert 'class="field-error" data-field="kind"' in unknown.text
    # A page left open while the chain changed does not remove another step.
    stale = await _post(
        admin,
        page,
        site.chains() + "/remove",
        {**form, "position": "1", "kind": "review"},
    )
    assert stale.status_code == 400, stale.text
    assert _steps((await admin.get(page)).text) == [
        (role, kind, True) for role, kind in HOT_WORK_LEVEL1_STANDARD
    ]


# --- the calendar ----------------------------------------------------------------------------


async def test_the_calendar_lists_national_and_own_days_and_sets_and_removes_them(
    site: Site,
) -> None:
    admin = await site.browser(Role.TENANT_ADMIN)
    page = site.calendar() + "?year=2026"
    shown = await admin.get(page)
    assert shown.status_code == 200, shown.text
    national = _row(shown.text, "2026-10-01", "national_holiday")
    assert national is not None and 'data-rest-day="true"' in national
    assert _row(shown.text, "2026-10-10", "national_workday") is not None
    assert 'data-testid="delete-day"' not in shown.text

    saved = await _post(
        admin,
        page,
        site.calendar(),
        {"day": "2026-07-15", "kind": "holiday", "note": "厂庆日", "year": "2026"},
    )
    assert saved.status_code in (302, 303), saved.text
    assert saved.headers["location"].startswith(site.calendar() + "?year=2026")
    after = await admin.get(saved.headers["location"])
    own = _row(after.text, "2026-07-15", "tenant_holiday")
    assert own is not None
    assert "厂庆日" in own and 'data-rest-day="true"' in own and 'data-testid="delete-day"' in own
    # A Saturday worked through: the tenant's working day makes it no rest day.
    worked = await _post(
        admin, page, site.calendar(), {"day": "2026-08-01", "kind": "workday", "year": "2026"}
    )
    assert worked.status_code in (302, 303), worked.text
    saturday = _row((await admin.get(page)).text, "2026-08-01", "tenant_workday")
    assert saturday is not None and 'data-rest-day="false"' in saturday

    deleted = await _post(admin, page, site.calendar() + "/2026-07-15/delete", {"year": "2026"})
    assert deleted.status_code in (302, 303), deleted.text
    gone = await admin.get(page)
    assert _row(gone.text, "2026-07-15", "tenant_holiday") is None
    assert _row(gone.text, "2026-08-01", "tenant_workday") is not None
    # Nothing left to delete on that day.
    again = await _post(admin, page, site.calendar() + "/2026-07-15/delete", {"year": "2026"})
    assert again.status_code == 404
    actions = await audit_actions(site.database, site.tenant.id, "permit.calendar")
    assert actions.count("permit.calendar_day_set") == 2
    assert "permit.calendar_day_deleted" in actions


async def test_a_working_day_on_a_national_holiday_is_refused(site: Site) -> None:
    admin = await site.browser(Role.TENANT_ADMIN)
    page = site.calendar() + "?year=2026"
    refused = await _post(
        admin,
        page,
        site.calendar(),
        {"day": "2026-10-01", "kind": "workday", "note": "检修", "year": "2026"},
    )
    assert refused.status_code == 422, refused.text
    assert 'data-testid="refusal" data-rule="calendar.holiday_kept"' in refused.text
    assert 'data-testid="refusal-clause">GB 30871 §5.1.1<' in refused.text
    assert 'data-testid="refusal-subject">2026-10-01<' in refused.text
    assert "法定节假日始终是节假日" in refused.text
    assert 'class="field-error" data-field="kind"' in refused.text
    # What was typed is kept.
    assert 'value="2026-10-01"' in refused.text and 'value="检修"' in refused.text
    after = await admin.get(page)
    assert _row(after.text, "2026-10-01", "tenant_workday") is None
    bad_day = await _post(admin, page, site.calendar(), {"day": "2026-13-01", "kind": "holiday"})
    assert bad_day.status_code == 400
    assert 'class="field-error" data-field="day"' in bad_day.text


# --- who may ---------------------------------------------------------------------------------


async def test_only_the_tenant_administrator_changes_and_others_get_404(site: Site) -> None:
    ehs = await site.browser(Role.EHS_OFFICER)
    guardian = await site.browser(Role.GUARDIAN)
    chain_form = {
        "work_type": "hot_work",
        "level": "level1",
        "role": "fire_department",
        "kind": "review",
        "label": "消防",
        "position": "0",
    }
    for client in (ehs, guardian):
        assert (await client.get(site.chains() + HOT_WORK_LEVEL1)).status_code == 404
        # The CSRF token of a page they may see: the refusal is the role's, not the token's.
        for action, form in (
            (site.chains() + "/add", chain_form),
            (site.chains() + "/remove", {**chain_form, "position": "0"}),
            (site.calendar(), {"day": "2026-07-15", "kind": "holiday"}),
            (site.calendar() + "/2026-10-01/delete", {}),
        ):
            answer = await _post(client, site.calendar() + "?year=2026", action, form)
            assert answer.status_code == 404, (action, answer.text)
    # A host user sees the calendar without the forms.
    viewed = await ehs.get(site.calendar() + "?year=2026")
    assert _row(viewed.text, "2026-10-01", "national_holiday") is not None
    assert 'data-testid="set-day"' not in viewed.text
    assert 'data-testid="delete-day"' not in viewed.text
    assert "permit.calendar" not in " ".join(await audit_actions(site.database, site.tenant.id))

    admin = await site.browser(Role.TENANT_ADMIN)
    dashboard = await admin.get(f"/t/{site.tenant.slug}/")
    assert f'href="{site.chains()}"' in dashboard.text
    assert f'href="{site.calendar()}"' in dashboard.text
    ehs_dashboard = await ehs.get(f"/t/{site.tenant.slug}/")
    assert site.chains() not in ehs_dashboard.text


async def test_each_tenant_sees_only_its_own_chain_and_days(site: Site) -> None:
    admin = await site.browser(Role.TENANT_ADMIN)
    stranger = await site.browser(Role.TENANT_ADMIN, site.other)
    page = site.chains() + HOT_WORK_LEVEL1
    await _post(
        admin,
        page,
        site.chains() + "/add",
        {
            "work_type": "hot_work",
            "level": "level1",
            "role": "fire_department",
            "kind": "review",
            "label": "消防队意见",
            "position": "0",
        },
    )
    await _post(
        admin,
        site.calendar() + "?year=2026",
        site.calendar(),
        {"day": "2026-07-15", "kind": "holiday", "note": "厂庆日"},
    )
    theirs = await stranger.get(site.chains(site.other) + HOT_WORK_LEVEL1)
    assert theirs.status_code == 200
    assert "消防队意见" not in theirs.text and 'data-custom="false"' in theirs.text
    calendar = await stranger.get(site.calendar(site.other) + "?year=2026")
    assert _row(calendar.text, "2026-07-15", "tenant_holiday") is None
    assert _row(calendar.text, "2026-10-01", "national_holiday") is not None
    # Under the first tenant's address the stranger is nobody: sign in first.
    away = await stranger.get(page)
    assert (away.status_code, away.headers["location"]) == (
        302,
        f"/t/{site.tenant.slug}/login?" + urlencode({"next": page}),
    )
    # Their own delete of the first tenant's day finds nothing.
    gone = await _post(
        stranger,
        site.calendar(site.other) + "?year=2026",
        site.calendar(site.other) + "/2026-07-15/delete",
        {},
    )
    assert gone.status_code == 404
    mine = await admin.get(site.calendar() + "?year=2026")
    assert _row(mine.text, "2026-07-15", "tenant_holiday") is not None
