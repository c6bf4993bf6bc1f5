"""Request-scoped dependencies the handlers ask for by name."""

from __future__ import annotations

from collections.abc import AsyncIterator

from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from sqlalchemy.ext.asyncio import AsyncSession

from infra.settings import Settings

DbSession = NamedDependency[AsyncSession]
AppSettings = NamedDependency[Settings]


async def provide_db_session(state: State) -> AsyncIterator[AsyncSession]:
    """One transaction per request: committed when the handler returns, rolled back if it
    raises (the exception is thrown back into this generator)."""
    async with state.database.session() as session:
        yield session
        await session.commit()


def provide_settings(state: State) -> Settings:
    return state.settings


DEPENDENCIES = {
    "db_session": Provide(provide_db_session),
    "settings": Provide(provide_settings, sync_to_thread=False),
}
