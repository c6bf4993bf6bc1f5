"""A connection pool for the request engine that serves waiting requests in the order they came.

SQLAlchemy's async pool keeps idle connections in an ``asyncio.Queue``. When a connection comes
back while requests are waiting, the first waiter is woken, but a request arriving in the
meantime takes the connection first; the woken waiter finds the queue empty and queues again at
the back. Under a burst larger than the pool a few requests lose that race over and over and
wait many times as long as the rest. Here a returned connection goes straight to the longest
waiting request, and a newcomer takes an idle connection only when nobody is waiting.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TypeVar

from sqlalchemy.pool import AsyncAdaptedQueuePool
from sqlalchemy.util import await_only
from sqlalchemy.util.queue import Empty, Full, QueueCommon

_T = TypeVar("_T")


class FairQueue(QueueCommon[_T]):
    """Idle connections, handed out first come, first served. Used from one event loop, like
    the pool it belongs to."""

    def __init__(self, maxsize: int = 0, use_lifo: bool = False) -> None:
        self.maxsize = maxsize
        self.use_lifo = use_lifo
        self._idle: deque[_T] = deque()
        self._waiters: deque[asyncio.Future[_T]] = deque()

    def empty(self) -> bool:
        return not self._idle

    def full(self) -> bool:
        return 0 < self.maxsize <= len(self._idle)

    def qsize(self) -> int:
        return len(self._idle)

    def put_nowait(self, item: _T) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(item)
                return
        if self.full():
            raise Full()
        self._idle.append(item)

    def put(self, item: _T, block: bool = True, timeout: float | None = None) -> None:
        # The pool never returns more connections than it made, so a put never has to wait.
        self.put_nowait(item)

    def get_nowait(self) -> _T:
        if not self._idle:
            raise Empty()
        return self._idle.pop() if self.use_lifo else self._idle.popleft()

    def get(self, block: bool = True, timeout: float | None = None) -> _T:
        if self._idle and not self._has_waiters():
            return self.get_nowait()
        if not block:
            raise Empty()
        return await_only(self._wait(timeout))

    def _has_waiters(self) -> bool:
        while self._waiters and self._waiters[0].done():
            self._waiters.popleft()
        return bool(self._waiters)

    async def _wait(self, seconds: float | None) -> _T:
        waiter: asyncio.Future[_T] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await asyncio.wait((waiter,), timeout=seconds)
        except BaseException:
            self._give_back(waiter)
            raise
        if waiter.done():
            return waiter.result()
        waiter.cancel()
        raise Empty()

    def _give_back(self, waiter: asyncio.Future[_T]) -> None:
        """A waiter cancelled after a connection was handed to it passes the connection on."""
        if waiter.done() and not waiter.cancelled():
            self.put_nowait(waiter.result())
        else:
            waiter.cancel()


class FairAsyncQueuePool(AsyncAdaptedQueuePool):
    """SQLAlchemy's async queue pool with :class:`FairQueue` for its idle connections."""

    _queue_class = FairQueue
