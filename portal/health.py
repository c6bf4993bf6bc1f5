"""Liveness and readiness probes."""

from __future__ import annotations

from typing import Any

from litestar import get
from litestar.datastructures import State
from litestar.response import Response

from infra.migrate import current_revision, head_revision


@get("/healthz", include_in_schema=False, sync_to_thread=False)
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@get("/readyz", include_in_schema=False)
async def readyz(state: State) -> Response[dict[str, Any]]:
    """Ready when the database answers and its schema is at the newest migration."""
    try:
        async with state.database.async_engine.connect() as connection:
            current = await connection.run_sync(current_revision)
    except Exception as exc:
        return Response({"status": "unavailable", "database": type(exc).__name__}, status_code=503)
    head = head_revision()
    if current != head:
        body = {"status": "unavailable", "migrations": {"current": current, "head": head}}
        return Response(body, status_code=503)
    return Response({"status": "ready", "migration": current or ""}, status_code=200)
