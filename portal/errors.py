"""Turning every failure into a clear answer: JSON naming the field and the rule for the API,
an HTML page for the browser, and never a stack trace."""

from __future__ import annotations

import logging
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from litestar import MediaType, Request, Response
from litestar.exceptions import (
    ClientException,
    HTTPException,
    NotAuthorizedException,
    NotFoundException,
    ValidationException,
)
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR, HTTP_503_SERVICE_UNAVAILABLE
from sqlalchemy.exc import DBAPIError

from infra.db import is_connection_lost
from infra.errors import DomainError, FieldProblem
from infra.i18n import N_
from infra.i18n import gettext as _
from portal.identity import API_PREFIX
from tenants.validation import problem_from_msgspec

logger = logging.getLogger(__name__)

_BODY_PARAMETER = "data"


def problem_from_validation_message(message: str, key: str | None) -> FieldProblem:
    if key == _BODY_PARAMETER and message == repr(_BODY_PARAMETER):
        return FieldProblem("body", "required", N_("This field is required."))
    return problem_from_msgspec(message, "" if key in (None, _BODY_PARAMETER) else key)


def problems_from_validation(exc: ValidationException) -> list[FieldProblem]:
    extra = exc.extra
    items: list[Any] = extra if isinstance(extra, list) else [extra] if extra else []
    problems: list[FieldProblem] = []
    for item in items:
        if isinstance(item, dict):
            message = str(item.get("message", ""))
            key = item.get("key")
            problem = problem_from_validation_message(message, str(key) if key else None)
            if (
                item.get("source") in {"path", "query", "header", "cookie"}
                and problem.rule == "type"
            ):
                problem.rule = "format"
            problems.append(problem)
    if not problems:
        problems.append(problem_from_validation_message(str(exc.detail), None))
    return problems


def _wants_json(request: Request[Any, Any, Any]) -> bool:
    if request.url.path.startswith(API_PREFIX) or request.url.path.startswith("/schema"):
        return True
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


def _problem_dict(problem: FieldProblem) -> dict[str, Any]:
    answer = {
        "field": problem.field,
        "rule": problem.rule,
        "message": _(problem.message, **problem.params),
    }
    if problem.clause:
        answer["clause"] = problem.clause
    if problem.subject:
        answer["subject"] = problem.subject
    return answer


def _problem_dicts(problems: list[FieldProblem]) -> list[dict[str, Any]]:
    return [_problem_dict(problem) for problem in problems]


def error_response(
    request: Request[Any, Any, Any],
    status_code: int,
    detail: str,
    problems: list[FieldProblem] | None = None,
    headers: dict[str, str] | None = None,
) -> Response[Any]:
    if _wants_json(request):
        body: dict[str, Any] = {"status_code": status_code, "detail": detail}
        if problems:
            body["errors"] = _problem_dicts(problems)
        return Response(body, status_code=status_code, media_type=MediaType.JSON, headers=headers)
    return Template(
        template_name="error.html",
        context={
            "status_code": status_code,
            "detail": detail,
            "errors": _problem_dicts(problems or []),
        },
        status_code=status_code,
        headers=headers,
    )


def handle_domain_error(request: Request[Any, Any, Any], exc: DomainError) -> Response[Any]:
    return error_response(request, exc.status_code, _(exc.message), exc.problems)


def handle_validation_error(
    request: Request[Any, Any, Any], exc: ValidationException
) -> Response[Any]:
    problems = problems_from_validation(exc)
    return error_response(request, 400, _("The request is not valid."), problems)


_GENERIC_DETAILS = {
    401: N_("Sign in first."),
    403: N_("Your role does not allow this."),
    404: N_("Not found."),
    405: N_("This method is not allowed here."),
    413: N_("The request is too large."),
    429: N_("Too many requests. Wait a moment and try again."),
}


def handle_http_exception(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    if isinstance(exc, NotAuthorizedException) and not _wants_json(request):
        return Redirect(path=login_path(request))
    if type(exc) is ClientException and exc.status_code == 400:
        problem = problem_from_validation_message(str(exc.detail), None)
        return error_response(request, 400, _("The request is not valid."), [problem])
    if exc.status_code >= 500:
        detail = N_("Something went wrong on our side.")
    elif isinstance(exc, NotFoundException) or exc.detail == HTTPStatus(exc.status_code).phrase:
        detail = _GENERIC_DETAILS.get(exc.status_code, exc.detail)
    else:
        detail = exc.detail
    return error_response(request, exc.status_code, _(detail), headers=dict(exc.headers or {}))


_REQUEST_MODULE_PARTS = ("litestar", "connection", "request.py")


def _raised_reading_the_request(exc: BaseException) -> bool:
    traceback = exc.__traceback__
    while traceback is not None:
        if Path(traceback.tb_frame.f_code.co_filename).parts[-3:] == _REQUEST_MODULE_PARTS:
            return True
        traceback = traceback.tb_next
    return False


def handle_undecodable_text(
    request: Request[Any, Any, Any], exc: UnicodeDecodeError
) -> Response[Any]:
    """msgspec raises UnicodeDecodeError, which Litestar does not turn into a 400, for invalid
    UTF-8 inside a JSON string. Only a body the client sent is its fault; anything else is ours."""
    if not _raised_reading_the_request(exc):
        return handle_unexpected(request, exc)
    problem = FieldProblem("body", "json", N_("The request body is not valid JSON."))
    return error_response(request, 400, _("The request is not valid."), [problem])


def handle_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    logger.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(
        request, HTTP_500_INTERNAL_SERVER_ERROR, _("Something went wrong on our side.")
    )


# The database went away under the request (a restart, a failover, a cut connection): nothing
# was committed, and the same request sent again will do it once, so the client is told to retry.
RETRY_AFTER_SECONDS = 5


def handle_database_unavailable(request: Request[Any, Any, Any], exc: DBAPIError) -> Response[Any]:
    if not is_connection_lost(exc):
        return handle_unexpected(request, exc)
    logger.warning("database unavailable on %s %s: %s", request.method, request.url.path, exc.orig)
    return error_response(
        request,
        HTTP_503_SERVICE_UNAVAILABLE,
        _("The service is briefly unavailable; nothing was saved. Please try again."),
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def login_path(request: Request[Any, Any, Any]) -> str:
    """The sign-in page, told to come back to the page asked for: a link from a notification
    (a permit to approve, a briefing to sign) leads there after signing in, not to the
    dashboard. Only for pages read with GET, which can be asked for again."""
    tenant = request.scope.get("state", {}).get("tenant")
    path = f"/t/{tenant.slug}/login" if tenant is not None else "/login"
    if request.method != "GET":
        return path
    # The path as the browser sent it (the router's copy has lost a trailing slash), without the
    # query some servers leave on it.
    raw_path = request.scope.get("raw_path") or b""
    wanted = raw_path.split(b"?", 1)[0].decode("latin-1") or request.url.path
    if request.url.query:
        wanted += f"?{request.url.query}"
    return f"{path}?{urlencode({'next': wanted})}"


EXCEPTION_HANDLERS = {
    DomainError: handle_domain_error,
    ValidationException: handle_validation_error,
    HTTPException: handle_http_exception,
    UnicodeDecodeError: handle_undecodable_text,
    DBAPIError: handle_database_unavailable,
    Exception: handle_unexpected,
}
