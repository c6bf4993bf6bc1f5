"""The permit's life cycle. Every change of state goes through :func:`permit_transition`, so an
illegal change is refused the same way everywhere and the property tests can walk the table.

``draft → submitted → in_approval → approved → active ⇄ suspended → completed → closed``, with
``rejected``, ``cancelled``, ``expired`` and ``superseded`` as ends. A permit returned for changes
goes back to draft. An approved permit is never edited (GB 30871 §4.18): a change makes a new
version, and the old one is superseded (§4.16).
"""

from __future__ import annotations

import enum
from types import MappingProxyType

from onboarding.states import transition_refused


class PermitState(enum.StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    IN_APPROVAL = "in_approval"
    APPROVED = "approved"
    ACTIVE = "active"
    SUSPENDED = "suspended"
    COMPLETED = "completed"
    CLOSED = "closed"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    SUPERSEDED = "superseded"


class PermitAction(enum.StrEnum):
    SUBMIT = "submit"
    APPROVE_STEP = "approve_step"
    APPROVE_LAST = "approve_last"
    REJECT = "reject"
    RETURN = "return"
    START = "start"
    SUSPEND = "suspend"
    RESUME = "resume"
    COMPLETE = "complete"
    ACCEPT = "accept"
    CANCEL = "cancel"
    EXPIRE = "expire"
    SUPERSEDE = "supersede"


_S = PermitState
_A = PermitAction
_IN_CHAIN = {_S.SUBMITTED, _S.IN_APPROVAL}
_MOVES = MappingProxyType(
    {
        _A.SUBMIT: ({_S.DRAFT}, _S.SUBMITTED),
        _A.APPROVE_STEP: (_IN_CHAIN, _S.IN_APPROVAL),
        _A.APPROVE_LAST: (_IN_CHAIN, _S.APPROVED),
        _A.REJECT: (_IN_CHAIN, _S.REJECTED),
        _A.RETURN: (_IN_CHAIN, _S.DRAFT),
        _A.START: ({_S.APPROVED}, _S.ACTIVE),
        _A.SUSPEND: ({_S.ACTIVE}, _S.SUSPENDED),
        _A.RESUME: ({_S.SUSPENDED}, _S.ACTIVE),
        _A.COMPLETE: ({_S.ACTIVE}, _S.COMPLETED),
        _A.ACCEPT: ({_S.COMPLETED}, _S.CLOSED),
        _A.CANCEL: ({_S.DRAFT, *_IN_CHAIN, _S.APPROVED}, _S.CANCELLED),
        # Past its window a permit that never finished lapses; suspended work cannot resume.
        _A.EXPIRE: ({*_IN_CHAIN, _S.APPROVED, _S.ACTIVE, _S.SUSPENDED}, _S.EXPIRED),
        # A revision approved while the old version's work is under way replaces it: the work
        # stops and starts again under the new version, through its own start gates.
        _A.SUPERSEDE: ({_S.APPROVED, _S.ACTIVE, _S.SUSPENDED}, _S.SUPERSEDED),
    }
)

# Terminal: nothing leaves these states.
FINAL_STATES = frozenset({_S.CLOSED, _S.REJECTED, _S.CANCELLED, _S.EXPIRED, _S.SUPERSEDED})
# The applicant edits the permit only as a draft; from submission on it holds still.
EDITABLE_STATES = frozenset({_S.DRAFT})
# Work may go on, or be resumed, in these states: what the site and the geofence watch.
LIVE_STATES = frozenset({_S.ACTIVE, _S.SUSPENDED})


def permit_transition(current: str, action: PermitAction) -> PermitState:
    sources, target = _MOVES[action]
    if current not in sources:
        raise transition_refused(current, action.value)
    return target


def allowed_actions(current: str) -> list[PermitAction]:
    return [action for action, (sources, _) in _MOVES.items() if current in sources]
