"""The permit's life cycle (permits/states.py) walked by property and stateful tests: only the
table's moves succeed, nothing leaves a final state, and every state can still end."""

from __future__ import annotations

from collections import deque

import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from infra.errors import Conflict
from permits.states import (
    _MOVES,
    EDITABLE_STATES,
    FINAL_STATES,
    LIVE_STATES,
    PermitAction,
    PermitState,
    allowed_actions,
    permit_transition,
)

states = st.sampled_from(list(PermitState))
actions = st.sampled_from(list(PermitAction))


def _try(state: PermitState, action: PermitAction) -> PermitState | None:
    try:
        return permit_transition(state, action)
    except Conflict:
        return None


@given(states, actions)
def test_a_move_succeeds_exactly_when_the_table_lists_it(
    state: PermitState, action: PermitAction
) -> None:
    sources, target = _MOVES[action]
    if state in sources:
        assert permit_transition(state, action) is target
        assert action in allowed_actions(state)
    else:
        with pytest.raises(Conflict) as refused:
            permit_transition(state, action)
        assert refused.value.problems[0].rule == "transition"
        assert refused.value.problems[0].params == {"state": state, "action": action.value}
        assert action not in allowed_actions(state)


@given(st.lists(actions, max_size=40))
def test_random_action_sequences_never_leave_a_final_state(sequence: list[PermitAction]) -> None:
    state = PermitState.DRAFT
    for action in sequence:
        moved = _try(state, action)
        if state in FINAL_STATES:
            assert moved is None
        if moved is not None:
            state = moved
    assert state in set(PermitState)


def test_final_states_allow_nothing() -> None:
    for state in FINAL_STATES:
        assert allowed_actions(state) == []
    assert {s for s in PermitState if not allowed_actions(s)} == FINAL_STATES


def _reachable(start: PermitState) -> set[PermitState]:
    seen, queue = {start}, deque([start])
    while queue:
        state = queue.popleft()
        for action in allowed_actions(state):
            target = permit_transition(state, action)
            if target not in seen:
                seen.add(target)
                queue.append(target)
    return seen


@pytest.mark.parametrize("state", sorted(set(PermitState) - FINAL_STATES))
def test_every_open_state_can_still_end(state: PermitState) -> None:
    assert _reachable(state) & FINAL_STATES


def test_every_state_is_reachable_from_a_draft() -> None:
    assert _reachable(PermitState.DRAFT) == set(PermitState)


def test_the_happy_path_and_the_sets() -> None:
    state = PermitState.DRAFT
    for action in (
        PermitAction.SUBMIT,
        PermitAction.APPROVE_STEP,
        PermitAction.APPROVE_LAST,
        PermitAction.START,
        PermitAction.SUSPEND,
        PermitAction.RESUME,
        PermitAction.COMPLETE,
        PermitAction.ACCEPT,
    ):
        state = permit_transition(state, action)
    assert state is PermitState.CLOSED
    # Only a draft is edited (§4.18); only work under way is live; a returned permit is a draft.
    assert EDITABLE_STATES == {PermitState.DRAFT}
    assert LIVE_STATES == {PermitState.ACTIVE, PermitState.SUSPENDED}
    assert not (EDITABLE_STATES | LIVE_STATES) & FINAL_STATES
    assert permit_transition(PermitState.IN_APPROVAL, PermitAction.RETURN) is PermitState.DRAFT
    # Work done is accepted, never expired or cancelled; live work cannot be cancelled.
    for action in (PermitAction.EXPIRE, PermitAction.CANCEL, PermitAction.SUPERSEDE):
        assert _try(PermitState.COMPLETED, action) is None
    assert _try(PermitState.ACTIVE, PermitAction.CANCEL) is None


class PermitLife(RuleBasedStateMachine):
    """A permit driven by random actions, checked against a model kept beside it."""

    def __init__(self) -> None:
        super().__init__()
        self.state = PermitState.DRAFT
        self.history: list[PermitState] = [self.state]

    @rule(action=actions)
    def act(self, action: PermitAction) -> None:
        sources, target = _MOVES[action]
        moved = _try(self.state, action)
        if self.state in sources:
            assert moved is target
            self.state = target
            self.history.append(target)
        else:
            assert moved is None

    @invariant()
    def final_is_forever(self) -> None:
        finals = [i for i, s in enumerate(self.history) if s in FINAL_STATES]
        if finals:
            assert self.history[finals[0] :] == [self.history[finals[0]]]

    @invariant()
    def approval_precedes_work(self) -> None:
        # Work never starts on a permit that was not approved first.
        if PermitState.ACTIVE in self.history:
            assert PermitState.APPROVED in self.history[: self.history.index(PermitState.ACTIVE)]

    @invariant()
    def can_always_end(self) -> None:
        assert self.state in FINAL_STATES or _reachable(self.state) & FINAL_STATES


TestPermitLife = PermitLife.TestCase
