"""Short-lived in-process caches of rows that nearly every request reads and almost none writes
(who is asking, with which roles, for which tenant).

An entry lives ``ttl`` seconds at most. Any change to a watched table made through this process's
ORM (a flush that adds, changes or deletes such a row, or an ``UPDATE``/``DELETE`` statement on
it) drops every entry of every cache watching that table at once, so the process that revokes a
token or a role never serves the old answer. Other processes serve it for at most ``ttl``
seconds: that bound is the whole price of the cache, and it is why ``ttl`` stays small.
"""

from __future__ import annotations

import asyncio
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable, Iterable
from typing import Any, Generic, TypeVar

from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction

Value = TypeVar("Value")

_watchers: dict[str, weakref.WeakSet[ExpiringCache[Any]]] = {}
_watchers_lock = threading.Lock()


class ExpiringCache(Generic[Value]):
    """At most ``max_entries`` values, each for at most ``ttl`` seconds; ``ttl`` 0 keeps nothing."""

    def __init__(self, *, ttl: float, watched: Iterable[type[Any]], max_entries: int = 10_000):
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: OrderedDict[Hashable, tuple[float, Value]] = OrderedDict()
        self._lock = threading.Lock()
        self._generation = 0
        self._loading: dict[Hashable, asyncio.Future[Value]] = {}
        with _watchers_lock:
            for model in watched:
                _watchers.setdefault(model.__table__.name, weakref.WeakSet()).add(self)

    def get(self, key: Hashable) -> Value | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            expires, value = entry
            if time.monotonic() >= expires:
                del self._entries[key]
                return None
            return value

    @property
    def generation(self) -> int:
        """Read before loading a value from the database and hand to :meth:`put`: a change
        committed meanwhile must not be covered by the value loaded before it."""
        return self._generation

    def put(self, key: Hashable, value: Value, *, generation: int) -> None:
        if self.ttl <= 0:
            return
        with self._lock:
            if generation != self._generation:
                return
            self._entries[key] = (time.monotonic() + self.ttl, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    async def get_or_load(self, key: Hashable, load: Callable[[], Awaitable[Value]]) -> Value:
        """The remembered value, or ``load()``'s. Requests that miss the same key at once (as
        all of a client's do when its entry expires under load) share one ``load``."""
        value = self.get(key)
        if value is not None:
            return value
        pending = self._loading.get(key)
        if pending is not None:
            try:
                return await asyncio.shield(pending)
            except asyncio.CancelledError:
                if not pending.cancelled():
                    raise
                # The request that was loading it went away: load it here instead.
                return await self.get_or_load(key, load)
        generation = self._generation
        pending = asyncio.get_running_loop().create_future()
        self._loading[key] = pending
        try:
            value = await load()
        except asyncio.CancelledError:
            pending.cancel()
            raise
        except BaseException as exc:
            pending.set_exception(exc)
            # Those waiting see the error; nobody else needs to retrieve it.
            pending.exception()
            raise
        else:
            pending.set_result(value)
            self.put(key, value, generation=generation)
            return value
        finally:
            del self._loading[key]

    def clear(self) -> None:
        with self._lock:
            self._generation += 1
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


def _forget(table_names: Iterable[str]) -> None:
    with _watchers_lock:
        caches = {cache for name in table_names for cache in _watchers.get(name, ())}
    for cache in caches:
        cache.clear()


@event.listens_for(Session, "after_flush")
def _after_flush(session: Session, _flush: UOWTransaction) -> None:
    if not _watchers:
        return
    changed = {
        table.name
        for instance in (*session.new, *session.dirty, *session.deleted)
        if (table := getattr(type(instance), "__table__", None)) is not None
    }
    if changed & _watchers.keys():
        _forget(changed)


@event.listens_for(Session, "do_orm_execute")
def _on_bulk_write(state: ORMExecuteState) -> None:
    if (state.is_update or state.is_delete) and _watchers:
        table = getattr(state.statement, "table", None)
        if table is not None and getattr(table, "name", None) in _watchers:
            _forget((table.name,))
