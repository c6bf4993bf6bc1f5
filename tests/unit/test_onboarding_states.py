"""The admission state machines: every legal move, and every other refused with
``state``/``transition``."""

from __future__ import annotations

import itertools

import pytest

from infra.errors import Conflict
from onboarding.states import (
    ContractorAction,
    ContractorState,
    ItemAction,
    ItemState,
    contractor_transition,
    item_transition,
)

C, A = ContractorState, ContractorAction
LEGAL_CONTRACTOR_MOVES = {
    (C.DRAFT, A.SUBMIT): C.SUBMITTED,
    (C.CHANGES_REQUESTED, A.SUBMIT): C.SUBMITTED,
    (C.SUBMITTED, A.APPROVE): C.APPROVED,
    (C.SUBMITTED, A.REJECT): C.REJECTED,
    (C.SUBMITTED, A.REQUEST_CHANGES): C.CHANGES_REQUESTED,
    (C.APPROVED, A.SUSPEND): C.SUSPENDED,
    (C.SUSPENDED, A.REINSTATE): C.APPROVED,
    **{(state, A.BLACKLIST): C.BLACKLISTED for state in C if state is not C.BLACKLISTED},
}
S, IA = ItemState, ItemAction
LEGAL_ITEM_MOVES = {
    (S.PENDING, IA.VERIFY): S.VERIFIED,
    (S.PENDING, IA.REJECT): S.REJECTED,
    (S.PENDING, IA.EXPIRE): S.EXPIRED,
    (S.VERIFIED, IA.EXPIRE): S.EXPIRED,
    **{(state, IA.REVISE): S.PENDING for state in S},
}


@pytest.mark.parametrize(("state", "action"), list(itertools.product(C, A)))
def test_contractor_moves(state: ContractorState, action: ContractorAction) -> None:
    expected = LEGAL_CONTRACTOR_MOVES.get((state, action))
    if expected is not None:
        assert contractor_transition(state.value, action) is expected
        return
    with pytest.raises(Conflict) as error:
        contractor_transition(state.value, action)
    [problem] = error.value.problems
    assert (problem.field, problem.rule) == ("state", "transition")
    assert problem.params == {"state": state.value, "action": action.value}


@pytest.mark.parametrize(("state", "action"), list(itertools.product(S, IA)))
def test_item_moves(state: ItemState, action: ItemAction) -> None:
    expected = LEGAL_ITEM_MOVES.get((state, action))
    if expected is not None:
        assert item_transition(state.value, action) is expected
        return
    with pytest.raises(Conflict) as error:
        item_transition(state.value, action)
    assert [(p.field, p.rule) for p in error.value.problems] == [("state", "transition")]


def test_the_story_of_a_company() -> None:
    """Registered, sent back once, admitted, suspended and reinstated, then blacklisted."""
    state = C.DRAFT
    for action in (
        A.SUBMIT,
        A.REQUEST_CHANGES,
        A.SUBMIT,
        A.APPROVE,
        A.SUSPEND,
        A.REINSTATE,
        A.BLACKLIST,
    ):
        state = contractor_transition(state, action)
    assert state is C.BLACKLISTED
    assert not any((C.BLACKLISTED, action) in LEGAL_CONTRACTOR_MOVES for action in A)
