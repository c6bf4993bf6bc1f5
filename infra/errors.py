"""Errors domain code raises; the portal turns them into 4xx answers naming the field and rule.

Messages are English msgids; the portal translates them for the user's locale.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class FieldProblem:
    """What is wrong and where. ``clause`` names the standard's clause a rule comes from (GB
    30871 §…), ``subject`` the person or item it concerns, when there is one."""

    field: str
    rule: str
    message: str
    params: dict[str, Any] = field(default_factory=dict)
    clause: str | None = None
    subject: str | None = None


class DomainError(Exception):
    status_code = 400

    def __init__(self, message: str, problems: list[FieldProblem] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.problems = problems or []


class FieldError(DomainError):
    """One problem with one field: the rule it breaks, and where a standard states that rule,
    its clause and the person or item concerned."""

    def __init__(
        self,
        field_name: str,
        rule: str,
        message: str,
        *,
        clause: str | None = None,
        subject: str | None = None,
        **params: Any,
    ) -> None:
        problem = FieldProblem(field_name, rule, message, params, clause=clause, subject=subject)
        super().__init__(message, [problem])


class InvalidInput(FieldError):
    status_code = 422


class RulesBroken(DomainError):
    """A request that breaks one or more rules at once, each named with its clause: a gate
    answers every failure together, so the applicant can fix them in one go."""

    status_code = 422


class Conflict(FieldError):
    status_code = 409


class NotFound(DomainError):
    """Also the answer for another tenant's ids: no existence oracle."""

    status_code = 404


class AuthenticationFailed(DomainError):
    status_code = 401


class PaymentRequired(DomainError):
    """The tenant's plan does not cover this, or its subscription is not paid."""

    status_code = 402

    def __init__(self, message: str, field_name: str, rule: str, problem: str, **params: Any):
        super().__init__(message, [FieldProblem(field_name, rule, problem, params)])
