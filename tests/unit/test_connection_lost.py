"""Which errors mean the database connection was lost (the request answers 503 and may be sent
again), followed through the errors they were raised from."""

from __future__ import annotations

import asyncpg
import pytest

from infra.db import is_connection_lost


def _raised_from(cause: BaseException) -> BaseException:
    try:
        try:
            raise cause
        except BaseException as exc:
            raise RuntimeError("while storing the batch") from exc
    except RuntimeError as wrapped:
        return wrapped


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.exceptions.AdminShutdownError("terminating connection due to administrator"),
        asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
        asyncpg.InternalClientError("cannot switch to state 21; another operation is in progress"),
        ConnectionResetError("reset by peer"),
    ],
)
def test_a_dropped_connection_is_lost_directly_and_as_a_cause(error: BaseException) -> None:
    assert is_connection_lost(error)
    assert is_connection_lost(_raised_from(error))


@pytest.mark.parametrize(
    "error",
    [ValueError("bad ping"), asyncpg.UniqueViolationError("duplicate key"), KeyError("plant")],
)
def test_other_errors_are_not(error: BaseException) -> None:
    assert not is_connection_lost(error)
    assert not is_connection_lost(_raised_from(error))
