"""The audit ledger: a per-tenant hash chain of every state change an inspector may ask about.

Each entry's hash is ``sha256(prev_hash ‖ canonical JSON of the entry)``. Entries are appended in
the same transaction as the change they record, one at a time per tenant (the chain head row is
locked), so the chain never forks and a rolled-back change leaves no entry behind.
:func:`verify_chain` walks a tenant's chain and names the first broken link.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from sqlalchemy import JSON, String, UniqueConstraint, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, Session, mapped_column

from infra.db import dialect_insert, new_id, utcnow
from infra.tenancy import TenantOwned, current_tenant_id

GENESIS_HASH = "0" * 64


class AuditEntry(TenantOwned):
    __tablename__ = "audit_entries"
    __table_args__ = (UniqueConstraint("tenant_id", "seq"),)

    seq: Mapped[int]
    occurred_at: Mapped[datetime]
    actor_id: Mapped[uuid.UUID | None]
    action: Mapped[str] = mapped_column(String(64))
    subject_type: Mapped[str] = mapped_column(String(64))
    subject_id: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditChainHead(TenantOwned):
    """The last link of a tenant's chain: the lock that serializes appends, and the anchor that
    makes a deleted tail detectable."""

    __tablename__ = "audit_chain_heads"
    __table_args__ = (UniqueConstraint("tenant_id"),)

    last_seq: Mapped[int] = mapped_column(default=0)
    last_hash: Mapped[str] = mapped_column(String(64), default=GENESIS_HASH)


def _json_default(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat(timespec="microseconds")
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    raise TypeError(f"cannot put {type(value).__name__} in the ledger")


def canonical_json(value: Any) -> bytes:
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_json_default
    ).encode()


def _entry_document(entry: AuditEntry) -> dict[str, Any]:
    return {
        "seq": entry.seq,
        "tenant_id": entry.tenant_id,
        "occurred_at": entry.occurred_at,
        "actor_id": entry.actor_id,
        "action": entry.action,
        "subject_type": entry.subject_type,
        "subject_id": entry.subject_id,
        "payload": entry.payload,
    }


def chain_hash(prev_hash: str, document: Mapping[str, Any]) -> str:
    return hashlib.sha256(prev_hash.encode() + canonical_json(document)).hexdigest()


def _lock_head(session: Session, tenant_id: uuid.UUID) -> AuditChainHead:
    """The tenant's chain head, locked until the transaction ends; made by the first entry. Two
    first entries at once both insert it: one insert waits for the other and does nothing."""
    locked = select(AuditChainHead).with_for_update()
    head = session.execute(locked).scalar_one_or_none()
    if head is not None:
        return head
    session.execute(
        dialect_insert(session, AuditChainHead)
        .values(id=new_id(), tenant_id=tenant_id, last_seq=0, last_hash=GENESIS_HASH)
        .on_conflict_do_nothing(index_elements=["tenant_id"])
    )
    return session.execute(locked).scalar_one()


def append_entry(
    session: Session,
    *,
    action: str,
    subject_type: str,
    subject_id: uuid.UUID | str,
    payload: Mapping[str, Any] | None = None,
    actor_id: uuid.UUID | None = None,
) -> AuditEntry:
    """Append one entry to the current tenant's chain inside the caller's transaction."""
    tenant_id = current_tenant_id()
    head = _lock_head(session, tenant_id)
    entry = AuditEntry(
        tenant_id=tenant_id,
        seq=head.last_seq + 1,
        occurred_at=utcnow(),
        actor_id=actor_id,
        action=action,
        subject_type=subject_type,
        subject_id=str(subject_id),
        payload=json.loads(canonical_json(dict(payload or {}))),
        prev_hash=head.last_hash,
    )
    entry.hash = chain_hash(head.last_hash, _entry_document(entry))
    head.last_seq = entry.seq
    head.last_hash = entry.hash
    session.add(entry)
    session.flush()
    return entry


async def record(
    session: AsyncSession,
    *,
    action: str,
    subject_type: str,
    subject_id: uuid.UUID | str,
    payload: Mapping[str, Any] | None = None,
    actor_id: uuid.UUID | None = None,
) -> AuditEntry:
    """The async form of :func:`append_entry`, for request handlers."""
    return await session.run_sync(
        lambda sync_session: append_entry(
            sync_session,
            action=action,
            subject_type=subject_type,
            subject_id=subject_id,
            payload=payload,
            actor_id=actor_id,
        )
    )


@dataclass(frozen=True)
class BrokenLink:
    seq: int
    entry_id: uuid.UUID | None
    reason: str

    def describe(self) -> str:
        where = f"entry #{self.seq}" + (f" ({self.entry_id})" if self.entry_id else "")
        return f"{where}: {self.reason}"


@dataclass(frozen=True)
class ChainReport:
    tenant_id: uuid.UUID
    entries_checked: int
    broken: BrokenLink | None

    @property
    def ok(self) -> bool:
        return self.broken is None


def verify_chain(session: Session) -> ChainReport:
    """Walk the current tenant's chain from the start; stop at the first broken link."""
    tenant_id = current_tenant_id()
    expected_prev = GENESIS_HASH
    expected_seq = 1
    checked = 0
    rows = session.execute(
        select(AuditEntry).order_by(AuditEntry.seq).execution_options(yield_per=1000)
    ).scalars()
    for entry in rows:
        broken = _check_entry(entry, expected_seq, expected_prev)
        if broken is not None:
            return ChainReport(tenant_id, checked, broken)
        checked += 1
        expected_prev = entry.hash
        expected_seq += 1
    head = session.execute(select(AuditChainHead)).scalar_one_or_none()
    last_seq = expected_seq - 1
    if head is not None and (head.last_seq != last_seq or head.last_hash != expected_prev):
        reason = (
            f"chain head says #{head.last_seq} but the chain ends at #{last_seq}: "
            "entries were removed from the end, or the head was altered"
        )
        return ChainReport(tenant_id, checked, BrokenLink(last_seq + 1, None, reason))
    if head is None and checked:
        return ChainReport(tenant_id, checked, BrokenLink(1, None, "chain head is missing"))
    return ChainReport(tenant_id, checked, None)


def entry_intact(entry: AuditEntry) -> bool:
    """Whether one entry still hashes to its stored hash: the check a record that cites its
    ledger entry can make without walking the whole chain."""
    return chain_hash(entry.prev_hash, _entry_document(entry)) == entry.hash


def _check_entry(entry: AuditEntry, expected_seq: int, expected_prev: str) -> BrokenLink | None:
    if entry.seq != expected_seq:
        return BrokenLink(
            expected_seq, None, f"entry #{expected_seq} is missing (next stored is #{entry.seq})"
        )
    if entry.prev_hash != expected_prev:
        return BrokenLink(entry.seq, entry.id, "previous-hash link does not match the entry before")
    if not entry_intact(entry):
        return BrokenLink(entry.seq, entry.id, "content does not match its hash (row altered)")
    return None
