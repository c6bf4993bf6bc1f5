"""Approval chains (permits/chains.py): Table B.1 for every permit type and grade, and the
tenant's own steps — added ones accepted, dropped or reordered standard ones refused (B.1)."""

from __future__ import annotations

from typing import Any

import pytest

from infra.db import Database
from infra.errors import InvalidInput, RulesBroken
from infra.tenancy import tenant_scope
from onboarding.catalogue import WorkType
from permits import chains
from permits.models import ChainPolicy
from permits.rules import ApprovalRole, HeightGrade, HotWorkLevel, LiftingLevel
from tests.factories import TenantFactory

R = ApprovalRole
OPENING = [("work_leader", "review"), ("local_unit", "review")]
# Table B.1, row by row: the steps after the work leader's and the unit's opinions.
B1_ROWS: list[tuple[WorkType, str | None, list[tuple[str, str]]]] = [
    (WorkType.HOT_WORK, HotWorkLevel.SPECIAL, [("leader_in_charge", "approve")]),
    (WorkType.HOT_WORK, HotWorkLevel.LEVEL1, [("safety_department", "approve")]),
    (WorkType.HOT_WORK, HotWorkLevel.LEVEL2, [("local_unit", "approve")]),
    (WorkType.CONFINED_SPACE, None, [("local_unit", "approve")]),
    (WorkType.BLIND_PLATE, None, [("local_unit", "approve")]),
    (WorkType.HEIGHT, HeightGrade.I, [("local_unit", "approve")]),
    (WorkType.HEIGHT, HeightGrade.II, [("specialist_department", "approve")]),
    (WorkType.HEIGHT, HeightGrade.III, [("specialist_department", "approve")]),
    (WorkType.HEIGHT, HeightGrade.IV, [("plant_manager", "approve")]),
    (WorkType.LIFTING, LiftingLevel.LEVEL1, [("plant_manager", "approve")]),
    (WorkType.LIFTING, LiftingLevel.LEVEL2, [("specialist_department", "approve")]),
    (WorkType.LIFTING, LiftingLevel.LEVEL3, [("specialist_department", "approve")]),
    (
        WorkType.TEMP_POWER,
        None,
        [("power_supply_unit", "review"), ("power_supply_unit", "approve")],
    ),
    (
        WorkType.EXCAVATION,
        None,
        [
            ("water_department", "co_sign"),
            ("power_department", "co_sign"),
            ("steam_department", "co_sign"),
            ("process_department", "co_sign"),
            ("equipment_department", "co_sign"),
            ("fire_department", "co_sign"),
            ("safety_department", "co_sign"),
            ("specialist_department", "approve"),
        ],
    ),
    (
        WorkType.ROAD_CLOSURE,
        None,
        [
            ("fire_department", "co_sign"),
            ("safety_department", "co_sign"),
            ("specialist_department", "approve"),
        ],
    ),
]
B1_IDS = [f"B.1-{work_type.value}-{level or 'any'}" for work_type, level, _ in B1_ROWS]


def _expected(work_type: WorkType, rest: list[tuple[str, str]]) -> list[tuple[str, str]]:
    # The hot work forms end with the shift leader's check before fire (动火前验票).
    closing = [("shift_leader", "check")] if work_type is WorkType.HOT_WORK else []
    return OPENING + rest + closing


@pytest.fixture
async def tenant_db(sqlite_db: Database, factory: TenantFactory) -> tuple[Database, Any]:
    tenant = await factory.create(sqlite_db, plants=("P1",), users=())
    return sqlite_db, tenant.id


async def _chain(db: Database, tenant_id: Any, work_type: WorkType, level: str | None) -> list:
    async with db.session() as session:
        with tenant_scope(tenant_id):
            return await session.run_sync(
                lambda sync: chains.chain_for(sync, work_type, level and str(level))
            )


async def _store_policy(
    db: Database, tenant_id: Any, work_type: WorkType, level: str | None, steps: list[dict]
) -> None:
    async with db.session() as session:
        with tenant_scope(tenant_id):
            session.add(ChainPolicy(work_type=work_type.value, level=level or "", steps=steps))
            await session.commit()


@pytest.mark.parametrize(("work_type", "level", "rest"), B1_ROWS, ids=B1_IDS)
async def test_B_1_standard_chain_for_every_row(
    tenant_db: tuple[Database, Any], work_type: WorkType, level: str | None, rest: list
) -> None:
    """Without a tenant policy a permit goes through exactly Table B.1's steps, each citing
    B.1, and every step has someone to decide it."""
    db, tenant_id = tenant_db
    steps = await _chain(db, tenant_id, work_type, level)
    assert [(s["role"], s["kind"]) for s in steps] == _expected(work_type, rest)
    assert {s["clause"] for s in steps} == {"B.1"}
    assert all(s["label"] is None for s in steps)
    for step in steps:
        role = ApprovalRole(step["role"])
        assert role is R.WORK_LEADER or role in chains.HOLDERS
        assert chains.ROLE_LABELS[role]


def test_B_1_graded_types_need_their_grade() -> None:
    for work_type in (WorkType.HOT_WORK, WorkType.HEIGHT, WorkType.LIFTING):
        with pytest.raises(ValueError, match=r"Table B\.1"):
            chains.check_policy(work_type, None, [{"role": "work_leader", "kind": "review"}])


@pytest.mark.parametrize(("work_type", "level", "rest"), B1_ROWS, ids=B1_IDS)
def test_B_1_policy_adding_steps_is_accepted(
    work_type: WorkType, level: str | None, rest: list
) -> None:
    standard = _expected(work_type, rest)
    added = [
        {"role": "equipment_department", "kind": "review", "label": "设备科会签"},
        *({"role": role, "kind": kind, "standard": True} for role, kind in standard),
        {"role": "safety_department", "kind": "review", "label": "安全总监复核"},
    ]
    chains.check_policy(work_type, level, added)  # no error


@pytest.mark.parametrize(("work_type", "level", "rest"), B1_ROWS, ids=B1_IDS)
def test_B_1_policy_dropping_a_standard_step_is_refused(
    work_type: WorkType, level: str | None, rest: list
) -> None:
    standard = _expected(work_type, rest)
    dropped = [{"role": role, "kind": kind} for role, kind in standard[:-1]]
    with pytest.raises(RulesBroken) as refused:
        chains.check_policy(work_type, level, dropped)
    [problem] = refused.value.problems
    assert (problem.field, problem.rule, problem.clause) == ("steps", "approval.chain", "B.1")
    assert problem.subject == standard[-1][0]


@pytest.mark.parametrize(("work_type", "level", "rest"), B1_ROWS, ids=B1_IDS)
def test_B_1_policy_reordering_standard_steps_is_refused(
    work_type: WorkType, level: str | None, rest: list
) -> None:
    standard = _expected(work_type, rest)
    swapped = [standard[1], standard[0], *standard[2:]]
    with pytest.raises(RulesBroken) as refused:
        chains.check_policy(work_type, level, [{"role": r, "kind": k} for r, k in swapped])
    assert {p.rule for p in refused.value.problems} == {"approval.chain"}
    assert {p.clause for p in refused.value.problems} == {"B.1"}


def test_B_1_policy_with_unknown_role_or_kind_is_invalid_input() -> None:
    for step in ({"role": "janitor", "kind": "review"}, {"role": "local_unit", "kind": "stamp"}):
        with pytest.raises(InvalidInput) as refused:
            chains.check_policy(WorkType.CONFINED_SPACE, None, [step])
        assert refused.value.problems[0].rule == "enum"


async def test_B_1_tenant_policy_with_added_steps_is_used_with_its_labels(
    tenant_db: tuple[Database, Any],
) -> None:
    db, tenant_id = tenant_db
    steps = [
        {"role": "work_leader", "kind": "review", "clause": "B.1"},
        {"role": "equipment_department", "kind": "review", "label": "设备科会签", "clause": None},
        {"role": "local_unit", "kind": "review", "clause": "B.1"},
        {"role": "local_unit", "kind": "approve", "clause": "B.1"},
        {"role": "safety_department", "kind": "review", "label": "安全总监复核", "clause": None},
    ]
    await _store_policy(db, tenant_id, WorkType.CONFINED_SPACE, None, steps)
    chain = await _chain(db, tenant_id, WorkType.CONFINED_SPACE, None)
    assert [(s["role"], s["kind"], s["clause"], s["label"]) for s in chain] == [
        ("work_leader", "review", "B.1", None),
        ("equipment_department", "review", None, "设备科会签"),
        ("local_unit", "review", "B.1", None),
        ("local_unit", "approve", "B.1", None),
        ("safety_department", "review", None, "安全总监复核"),
    ]
    # A policy is per type and grade: hot work level 1 keeps Table B.1's own chain.
    hot = await _chain(db, tenant_id, WorkType.HOT_WORK, HotWorkLevel.LEVEL1)
    assert [s["role"] for s in hot] == [
        "work_leader",
        "local_unit",
        "safety_department",
        "shift_leader",
    ]


async def test_B_1_a_stored_policy_that_breaks_the_standard_falls_back_to_it(
    tenant_db: tuple[Database, Any],
) -> None:
    """A policy saved before a rule change, or written around the API, is checked again when
    used: dropping the approver leaves the permit on Table B.1's chain."""
    db, tenant_id = tenant_db
    broken = [
        {"role": "work_leader", "kind": "review", "clause": "B.1"},
        {"role": "local_unit", "kind": "review", "clause": "B.1"},
        {"role": "equipment_department", "kind": "review", "label": "设备科", "clause": None},
    ]
    await _store_policy(db, tenant_id, WorkType.HEIGHT, HeightGrade.IV, broken)
    chain = await _chain(db, tenant_id, WorkType.HEIGHT, HeightGrade.IV)
    assert [(s["role"], s["kind"], s["label"]) for s in chain] == [
        ("work_leader", "review", None),
        ("local_unit", "review", None),
        ("plant_manager", "approve", None),
    ]


def test_B_1_every_approval_role_has_a_decider_and_an_escalation() -> None:
    """Each B.1 role is decided by a host role of the plant, and every such role has someone
    above it to pass a late step to."""
    for role in ApprovalRole:
        if role is R.WORK_LEADER:
            continue
        holder = chains.HOLDERS[role]
        assert holder.is_host
        assert chains.ESCALATION[holder].is_host
