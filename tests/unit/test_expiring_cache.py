"""The in-process caches of who is asking: entries expire, and a change to a watched table made
through the ORM drops them at once, however it is made."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import String, create_engine, delete, update
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from infra.cache import ExpiringCache


class _Base(DeclarativeBase):
    pass


class Watched(_Base):
    __tablename__ = "cache_test_watched"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(20))


class Unwatched(_Base):
    __tablename__ = "cache_test_unwatched"
    id: Mapped[int] = mapped_column(primary_key=True)


@pytest.fixture
def session() -> Iterator[Session]:
    engine = create_engine("sqlite://")
    _Base.metadata.create_all(engine)
    with Session(engine) as session:
        session.add(Watched(id=1, name="张三"))
        session.add(Unwatched(id=1))
        session.commit()
        yield session
    engine.dispose()


def _filled(ttl: float = 60) -> ExpiringCache[str]:
    cache: ExpiringCache[str] = ExpiringCache(ttl=ttl, watched=(Watched,))
    cache.put("who", "张三", generation=cache.generation)
    assert cache.get("who") == "张三"
    return cache


def test_an_entry_lives_ttl_seconds() -> None:
    cache = _filled(ttl=0.05)
    time.sleep(0.06)
    assert cache.get("who") is None


def test_ttl_zero_keeps_nothing() -> None:
    cache: ExpiringCache[str] = ExpiringCache(ttl=0, watched=(Watched,))
    cache.put("who", "张三", generation=cache.generation)
    assert cache.get("who") is None


def test_the_oldest_entries_go_first_beyond_the_limit() -> None:
    cache: ExpiringCache[int] = ExpiringCache(ttl=60, watched=(Watched,), max_entries=2)
    for key in range(3):
        cache.put(key, key, generation=cache.generation)
    assert (cache.get(0), cache.get(1), cache.get(2)) == (None, 1, 2)


def test_a_value_loaded_before_a_change_is_not_kept(session: Session) -> None:
    cache: ExpiringCache[str] = ExpiringCache(ttl=60, watched=(Watched,))
    before = cache.generation
    session.get(Watched, 1).name = "李四"  # type: ignore[union-attr]
    session.flush()
    cache.put("who", "张三", generation=before)
    assert cache.get("who") is None


def test_a_flushed_change_of_a_watched_row_drops_every_entry(session: Session) -> None:
    cache = _filled()
    session.get(Watched, 1).name = "李四"  # type: ignore[union-attr]
    session.flush()
    assert cache.get("who") is None


@pytest.mark.parametrize("statement", ["update", "delete"])
def test_a_bulk_statement_on_a_watched_table_drops_every_entry(
    session: Session, statement: str
) -> None:
    cache = _filled()
    if statement == "update":
        session.execute(update(Watched).values(name="王五"))
    else:
        session.execute(delete(Watched))
    assert cache.get("who") is None


def test_changes_elsewhere_keep_the_entries(session: Session) -> None:
    cache = _filled()
    session.add(Unwatched(id=2))
    session.flush()
    session.execute(update(Unwatched).values(id=3).where(Unwatched.id == 2))
    assert cache.get("who") == "张三"


async def test_requests_missing_one_key_at_once_share_one_load() -> None:
    cache: ExpiringCache[str] = ExpiringCache(ttl=60, watched=(Watched,))
    loads = 0
    release = asyncio.Event()

    async def load() -> str:
        nonlocal loads
        loads += 1
        await release.wait()
        return "张三"

    waiting = [asyncio.create_task(cache.get_or_load("who", load)) for _ in range(5)]
    await asyncio.sleep(0)
    release.set()
    assert await asyncio.gather(*waiting) == ["张三"] * 5
    assert loads == 1
    assert await cache.get_or_load("who", load) == "张三"
    assert loads == 1


async def test_a_failed_or_abandoned_load_is_not_remembered() -> None:
    cache: ExpiringCache[str] = ExpiringCache(ttl=60, watched=(Watched,))

    async def fail() -> str:
        raise RuntimeError("database away")

    with pytest.raises(RuntimeError):
        await cache.get_or_load("who", fail)
    started = asyncio.Event()

    async def hang() -> str:
        started.set()
        await asyncio.sleep(60)
        return "never"

    loader = asyncio.create_task(cache.get_or_load("who", hang))
    await started.wait()

    async def load() -> str:
        return "张三"

    waiter = asyncio.create_task(cache.get_or_load("who", load))
    await asyncio.sleep(0)
    loader.cancel()
    assert await waiter == "张三"
    assert cache.get("who") == "张三"
