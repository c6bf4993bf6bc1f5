"""Errors domain code raises; the portal turns them into 4xx answers naming the field and rule.

Messages are English msgids; the portal translates them for the user's locale.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class FieldProblem:
    field: str
    rule: str
    message: str
    params: dict[str, Any] = field(default_factory=dict)


class DomainError(Exception):
    status_code = 400

    def __init__(self, message: str, problems: list[FieldProblem] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.problems = problems or []


class InvalidInput(DomainError):
    status_code = 422

    def __init__(self, field_name: str, rule: str, message: str, **params: Any) -> None:
        super().__init__(message, [FieldProblem(field_name, rule, message, params)])


class Conflict(DomainError):
    status_code = 409

    def __init__(self, field_name: str, rule: str, message: str, **params: Any) -> None:
        super().__init__(message, [FieldProblem(field_name, rule, message, params)])


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
