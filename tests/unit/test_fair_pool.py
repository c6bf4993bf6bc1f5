"""The request engine's pool hands connections to waiting requests in the order they came."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.util import greenlet_spawn
from sqlalchemy.util.queue import Empty

from infra.db import Database
from infra.pool import FairAsyncQueuePool, FairQueue


async def _get(queue: FairQueue[str], seconds: float | None = None) -> str:
    return await greenlet_spawn(queue.get, True, seconds)


async def test_a_returned_item_goes_to_the_longest_waiting_caller() -> None:
    queue: FairQueue[str] = FairQueue(maxsize=1)
    queue.put("connection", False)
    held = await _get(queue)
    served: list[str] = []

    async def wait(name: str) -> None:
        await _get(queue)
        served.append(name)
        queue.put("connection", False)

    waiters = []
    for name in ("first", "second", "third"):
        waiters.append(asyncio.create_task(wait(name)))
        await asyncio.sleep(0)
    queue.put(held, False)
    # A caller arriving after the return, before the woken waiter runs, must not take it.
    late = asyncio.create_task(wait("late"))
    await asyncio.gather(*waiters, late)
    assert served == ["first", "second", "third", "late"]


async def test_an_idle_item_is_taken_at_once_when_nobody_waits() -> None:
    queue: FairQueue[str] = FairQueue(maxsize=2)
    queue.put("a", False)
    queue.put("b", False)
    assert queue.qsize() == 2
    assert await _get(queue) == "a"
    assert queue.get(False) == "b"
    with pytest.raises(Empty):
        queue.get(False)


async def test_waiting_past_the_timeout_raises_empty_and_leaves_no_waiter() -> None:
    queue: FairQueue[str] = FairQueue(maxsize=1)
    with pytest.raises(Empty):
        await _get(queue, seconds=0.01)
    queue.put("a", False)
    assert queue.qsize() == 1


async def test_a_cancelled_waiter_passes_its_item_on() -> None:
    queue: FairQueue[str] = FairQueue(maxsize=1)
    first = asyncio.create_task(_get(queue))
    await asyncio.sleep(0)
    second = asyncio.create_task(_get(queue))
    await asyncio.sleep(0)
    queue.put("a", False)
    # The item is handed to the first waiter, which is cancelled before it runs.
    first.cancel()
    assert await second == "a"
    with pytest.raises(asyncio.CancelledError):
        await first


async def test_the_request_engine_uses_it_and_serves_a_burst_in_order(tmp_path: Path) -> None:
    database = Database(
        f"sqlite+aiosqlite:///{tmp_path / 'pool.db'}",
        f"sqlite:///{tmp_path / 'pool.db'}",
        pool_size=1,
    )
    order: list[int] = []

    async def request(number: int) -> None:
        async with database.async_engine.connect() as connection:
            order.append(number)
            await connection.execute(text("SELECT 1"))

    try:
        assert isinstance(database.async_engine.pool, FairAsyncQueuePool)
        async with database.async_engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
        tasks = []
        for number in range(8):
            tasks.append(asyncio.create_task(request(number)))
            await asyncio.sleep(0)
        await asyncio.gather(*tasks)
    finally:
        await database.dispose()
    assert order == list(range(8))
