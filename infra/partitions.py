"""Daily range partitions of a PostgreSQL table partitioned by a time column.

Each partition is a table of its own in the catalog, so it gets the same tenant floor as its
parent (RLS enabled, forced, the tenant policy) and the application role's data rights. The
DDL needs the owner's connection (the migration URL): the application role owns nothing.
A partition is one UTC day; days are made from ``back_days`` ago (the oldest rows still
accepted) to ``ahead_days`` ahead, and dropped once they are older than ``keep_days``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import Connection, text

from infra import rls

_PARTITION_DAY = re.compile(r"_p(\d{8})$")


@dataclass
class PartitionChanges:
    created: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)


def is_partition(name: str | None) -> bool:
    """Whether a table name is one of the daily partitions (which no model maps)."""
    return bool(name and _PARTITION_DAY.search(name))


def include_in_autogenerate(name: str | None, type_: str, _parents: object) -> bool:
    return not (type_ == "table" and is_partition(name))


def partition_name(table: str, day: date) -> str:
    return f"{table}_p{day:%Y%m%d}"


def existing_days(connection: Connection, table: str) -> dict[date, str]:
    rows = connection.execute(
        text(
            "SELECT c.relname FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid "
            "JOIN pg_class p ON p.oid = i.inhparent "
            "WHERE p.relname = :table"
        ),
        {"table": table},
    ).scalars()
    found: dict[date, str] = {}
    for name in rows:
        matched = _PARTITION_DAY.search(name)
        if matched:
            found[datetime.strptime(matched.group(1), "%Y%m%d").date()] = name
    return found


def _bound(day: date) -> str:
    return datetime.combine(day, time(), tzinfo=UTC).isoformat()


def maintain_daily(
    connection: Connection,
    table: str,
    today: date,
    *,
    back_days: int,
    ahead_days: int,
    keep_days: int,
) -> PartitionChanges:
    changes = PartitionChanges()
    existing = existing_days(connection, table)
    oldest = today - timedelta(days=keep_days)
    day = today - timedelta(days=min(back_days, keep_days))
    while day <= today + timedelta(days=ahead_days):
        if day not in existing:
            name = partition_name(table, day)
            connection.execute(
                text(
                    f"CREATE TABLE {name} PARTITION OF {table} "
                    f"FOR VALUES FROM ('{_bound(day)}') TO ('{_bound(day + timedelta(days=1))}')"
                )
            )
            for statement in (*rls.tenant_rls_statements(name), rls.data_grant_statement(name)):
                connection.execute(text(statement))
            changes.created.append(name)
        day += timedelta(days=1)
    for old_day, name in sorted(existing.items()):
        if old_day < oldest:
            connection.execute(text(f"DROP TABLE {name}"))
            changes.dropped.append(name)
    return changes
