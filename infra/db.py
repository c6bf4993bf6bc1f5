"""Database engines, sessions and the declarative base every model uses.

The application talks to the database through async sessions (aiosqlite or asyncpg); workers,
migrations and the CLI use the synchronous engine on the same database. Both carry the tenancy
events from :mod:`infra.tenancy`, because those are registered on the ``Session`` class.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from datetime import UTC, datetime
from typing import Any

import asyncpg
import uuid_utils
from sqlalchemy import DateTime, MetaData, Uuid, create_engine, event
from sqlalchemy.dialects.postgresql import Insert as PgInsert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import Insert as SqliteInsert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.types import TypeDecorator

from infra.pool import FairAsyncQueuePool
from infra.settings import Settings

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


# What the driver raises when the server went away under a statement (a restart, a failover, an
# administrator ending the backend, a cut network).
# A statement sent on a connection the server dropped while an earlier one was still running
# (the earlier one's error may surface elsewhere) finds the protocol stuck mid-operation: asyncpg
# refuses it before it starts, with an internal client error.
CONNECTION_LOST = (
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    ConnectionError,
)


# Older connections are replaced before use, ahead of idle time-outs along the way.
POOL_RECYCLE_SECONDS = 1800


def is_connection_lost(exc: BaseException) -> bool:
    """Whether the error, or any error it was raised from, says the database connection was
    lost: nothing was committed, and the same request sent again will do its work once."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, (*CONNECTION_LOST, OperationalError, InterfaceError)):
            return True
        if isinstance(seen, DBAPIError) and seen.connection_invalidated:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def new_id() -> uuid.UUID:
    """A UUIDv7: time-ordered, so inserts stay local in B-tree indexes, yet opaque in URLs."""
    return uuid.UUID(bytes=uuid_utils.uuid7().bytes)


def utcnow() -> datetime:
    return datetime.now(UTC)


def dialect_insert(session: Session | AsyncSession, model: type[Any]) -> PgInsert | SqliteInsert:
    """An INSERT of the session's dialect, so callers can use ``on_conflict_do_nothing`` (both
    databases spell it the same way, through different constructs)."""
    if session.get_bind().dialect.name == "postgresql":
        return pg_insert(model)
    return sqlite_insert(model)


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps are stored in UTC and always come back timezone-aware.

    SQLite has no time zone type and would hand back naive values; PostgreSQL's
    ``timestamptz`` keeps the instant. Naive input is refused rather than guessed.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; store times in UTC with tzinfo")
        return value.astimezone(UTC)

    def result_processor(self, dialect: Any, coltype: Any) -> Any:
        # asyncpg hands timestamptz back already in UTC (psycopg in the session's time zone);
        # converting it again would be two calls per row of every list the requests read.
        if dialect.driver == "asyncpg":
            return None
        return super().result_processor(dialect, coltype)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {uuid.UUID: Uuid(), datetime: UTCDateTime()}  # noqa: RUF012


class Entity(Base):
    """Abstract base: a UUIDv7 key and UTC creation and update stamps."""

    __abstract__ = True

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def _configure_engine(engine: Engine) -> None:
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)


class Database:
    """One database: an async engine for the app, a sync engine for workers and the CLI."""

    def __init__(self, url: str, sync_url: str, *, echo: bool = False, pool_size: int = 20) -> None:
        self.url = url
        self.sync_url = sync_url
        self._echo = echo
        self._pool_size = pool_size
        self._async_engine: AsyncEngine | None = None
        self._sync_engine: Engine | None = None
        self._async_factory: async_sessionmaker[AsyncSession] | None = None
        self._sync_factory: sessionmaker[Session] | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        return cls(
            settings.database_url, settings.sync_database_url, pool_size=settings.db_pool_size
        )

    @property
    def async_engine(self) -> AsyncEngine:
        if self._async_engine is None:
            # No ping before each use: it is one more round trip on every request. A connection
            # the server dropped fails its statement instead, the request answers 503 (see
            # is_connection_lost) and the pool drops every connection made before the failure.
            # A fixed pool: a request beyond it waits for a connection to come back. Opening
            # one for a burst and closing it after costs more than the wait, and a request
            # holds at most one connection at a time, so waiting cannot deadlock. Requests
            # waiting for a connection get one in the order they came (infra.pool).
            self._async_engine = create_async_engine(
                self.url,
                echo=self._echo,
                poolclass=FairAsyncQueuePool,
                pool_size=self._pool_size,
                max_overflow=0,
                pool_recycle=POOL_RECYCLE_SECONDS,
            )
            _configure_engine(self._async_engine.sync_engine)
        return self._async_engine

    @property
    def sync_engine(self) -> Engine:
        if self._sync_engine is None:
            self._sync_engine = create_engine(self.sync_url, echo=self._echo, pool_pre_ping=True)
            _configure_engine(self._sync_engine)
        return self._sync_engine

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """An async session; the caller commits. Rolled back if the block raises."""
        if self._async_factory is None:
            self._async_factory = async_sessionmaker(self.async_engine, expire_on_commit=False)
        async with self._async_factory() as session:
            try:
                yield session
            except BaseException:
                # A connection that died under the block has no transaction left to roll back;
                # the error being raised already says what happened.
                with suppress(DBAPIError):
                    await session.rollback()
                raise

    @contextmanager
    def sync_session(self) -> Iterator[Session]:
        if self._sync_factory is None:
            self._sync_factory = sessionmaker(self.sync_engine, expire_on_commit=False)
        with self._sync_factory() as session:
            try:
                yield session
            except BaseException:
                session.rollback()
                raise

    async def dispose(self) -> None:
        if self._async_engine is not None:
            await self._async_engine.dispose()
            self._async_engine = None
            self._async_factory = None
        if self._sync_engine is not None:
            self._sync_engine.dispose()
            self._sync_engine = None
            self._sync_factory = None
