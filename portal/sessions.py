"""Server-side sessions whose id changes at sign-in.

Litestar keeps whatever session id the browser sent. Keeping it across sign-in would let an
attacker who planted a cookie (session fixation) ride the victim's session, so signing in asks
for a fresh id and drops the old one from the store.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar.connection import ASGIConnection
from litestar.middleware.session.server_side import (
    ServerSideSessionBackend,
    ServerSideSessionConfig,
)
from litestar.types import Message, Scope, ScopeSession

_ROTATE_KEY = "portal_rotate_session_id"


def rotate_session_id(scope: Scope) -> None:
    scope.setdefault("state", {})[_ROTATE_KEY] = True


class RotatingSessionBackend(ServerSideSessionBackend):
    def get_session_id(self, connection: ASGIConnection[Any, Any, Any, Any]) -> str:
        state = connection.scope.setdefault("state", {})
        rotation = state.get(_ROTATE_KEY)
        if rotation is True:
            state[_ROTATE_KEY] = self.generate_session_id()
            return state[_ROTATE_KEY]
        if isinstance(rotation, str):
            return rotation
        return super().get_session_id(connection)

    async def store_in_message(
        self,
        scope_session: ScopeSession,
        message: Message,
        connection: ASGIConnection[Any, Any, Any, Any],
    ) -> None:
        if connection.scope.get("state", {}).get(_ROTATE_KEY):
            old_id = connection.cookies.get(self.config.key)
            if old_id and old_id != "null":
                await self.delete(old_id, store=self.config.get_store_from_app(connection.app))
        await super().store_in_message(scope_session, message, connection)


@dataclass
class RotatingSessionConfig(ServerSideSessionConfig):
    _backend_class = RotatingSessionBackend
