"""The admission state machines: one for the contractor company, one shared by its documents,
workers and certificates. Every change of state goes through :func:`contractor_transition` or
:func:`item_transition`, so an illegal change is refused the same way everywhere.
"""

from __future__ import annotations

import enum
from types import MappingProxyType

from infra.errors import Conflict
from infra.i18n import N_


class ContractorState(enum.StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    APPROVED = "approved"
    REJECTED = "rejected"
    CHANGES_REQUESTED = "changes_requested"
    SUSPENDED = "suspended"
    BLACKLISTED = "blacklisted"


class ContractorAction(enum.StrEnum):
    SUBMIT = "submit"
    APPROVE = "approve"
    REJECT = "reject"
    REQUEST_CHANGES = "request_changes"
    SUSPEND = "suspend"
    REINSTATE = "reinstate"
    BLACKLIST = "blacklist"


_C = ContractorState
_CONTRACTOR_MOVES = MappingProxyType(
    {
        ContractorAction.SUBMIT: ({_C.DRAFT, _C.CHANGES_REQUESTED}, _C.SUBMITTED),
        ContractorAction.APPROVE: ({_C.SUBMITTED}, _C.APPROVED),
        ContractorAction.REJECT: ({_C.SUBMITTED}, _C.REJECTED),
        ContractorAction.REQUEST_CHANGES: ({_C.SUBMITTED}, _C.CHANGES_REQUESTED),
        ContractorAction.SUSPEND: ({_C.APPROVED}, _C.SUSPENDED),
        ContractorAction.REINSTATE: ({_C.SUSPENDED}, _C.APPROVED),
        ContractorAction.BLACKLIST: (set(_C) - {_C.BLACKLISTED}, _C.BLACKLISTED),
    }
)

# The contractor's own admin edits company data, documents and workers in these states; while
# a review is under way (submitted) the record under review must hold still, and a rejected or
# blacklisted company has nothing left to edit.
EDITABLE_STATES = frozenset({_C.DRAFT, _C.CHANGES_REQUESTED, _C.APPROVED, _C.SUSPENDED})
# The company itself (name, code, representative) may change only before it is admitted.
PROFILE_EDITABLE_STATES = frozenset({_C.DRAFT, _C.CHANGES_REQUESTED})
# EHS may judge single items without deciding on the company while it is under review (a partial
# review) and after admission (workers and certificates added since).
ITEM_REVIEW_STATES = frozenset({_C.SUBMITTED, _C.APPROVED, _C.SUSPENDED})


class ItemState(enum.StrEnum):
    PENDING = "pending"
    VERIFIED = "verified"
    REJECTED = "rejected"
    EXPIRED = "expired"


class ItemAction(enum.StrEnum):
    VERIFY = "verify"
    REJECT = "reject"
    EXPIRE = "expire"
    REVISE = "revise"


_I = ItemState
_ITEM_MOVES = MappingProxyType(
    {
        ItemAction.VERIFY: ({_I.PENDING}, _I.VERIFIED),
        ItemAction.REJECT: ({_I.PENDING}, _I.REJECTED),
        ItemAction.EXPIRE: ({_I.PENDING, _I.VERIFIED}, _I.EXPIRED),
        # A changed document, worker or certificate is checked again, whatever it was before.
        ItemAction.REVISE: (set(_I), _I.PENDING),
    }
)


def transition_refused(current: str, action: str) -> Conflict:
    return Conflict(
        "state",
        "transition",
        N_("This cannot be done in the state %(state)s (%(action)s)."),
        state=current,
        action=action,
    )


def contractor_transition(current: str, action: ContractorAction) -> ContractorState:
    sources, target = _CONTRACTOR_MOVES[action]
    if current not in sources:
        raise transition_refused(current, action.value)
    return target


def item_transition(current: str, action: ItemAction) -> ItemState:
    sources, target = _ITEM_MOVES[action]
    if current not in sources:
        raise transition_refused(current, action.value)
    return target
