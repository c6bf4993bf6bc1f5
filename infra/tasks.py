"""The Celery app, tasks that run for one tenant, and idempotent task effects.

Delivery is at least once: ``acks_late`` acknowledges a message only after its task finished,
and ``task_reject_on_worker_lost`` hands it back to the broker when the worker process dies, so a
task cut off half-way runs again. A task whose effect must happen once records it under an
idempotency key with :func:`record_effect` in the same transaction as the effect; the unique
``(tenant_id, key)`` constraint turns the second run into a no-op.

With no broker configured (the embedded default) the broker is in memory and
:class:`EmbeddedWorker` consumes it from a thread of the same process (``portal demo`` and
``portal serve`` start one). Production runs ``portal worker --beat`` against Redis.
"""

from __future__ import annotations

import inspect
import logging
import os
import threading
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from celery import Celery, Task
from celery._state import _set_task_join_will_block
from celery.beat import PersistentScheduler, Service
from celery.utils.nodenames import anon_nodename
from sqlalchemy import String, UniqueConstraint, Uuid, column, select, table
from sqlalchemy.orm import Mapped, Session, mapped_column

from infra.db import Database, dialect_insert, new_id, utcnow
from infra.settings import Settings, get_settings
from infra.tenancy import TenantOwned, current_tenant_id, tenant_scope

EMBEDDED_BROKER = "memory://"

# Modules that define tasks or outbox handlers; every worker imports them at start. Named as
# strings because infra sits below the packages it lists.
TASK_MODULES = (
    "infra.outbox",
    "tenants.notifications",
    "tenants.billing",
    "onboarding.tasks",
    "training.tasks",
    "permits.tasks",
    "geofence.tasks",
    "scoring.tasks",
    "tenants.tasks",
)


def periodic_jobs(settings: Settings) -> dict[str, tuple[str, float]]:
    """Jobs beat sends on a schedule: name → (task name, seconds between runs). One line each."""
    return {
        "outbox-relay": ("outbox.relay", settings.outbox_relay_seconds),
        # Hourly, so the day's expiries happen within an hour of midnight on the plant's clock;
        # the watch is idempotent, and the day's later passes find nothing new to do.
        "onboarding-expiry-watch": ("onboarding.expiry_fan_out", 3600.0),
        # Hourly for the same reason: reminders before an induction lapses, each sent once.
        "training-lapse-watch": ("training.lapse_fan_out", 3600.0),
        # Late approval steps go up a level, and permits past their window lapse, within minutes.
        "permits-watch": ("permits.watch_fan_out", 300.0),
        # Silence, an absent guardian and overstays show only as time passes: looked at each minute.
        "geofence-sweep": ("geofence.sweep_fan_out", 60.0),
        # Partitions of the ping table are made two weeks ahead; twice a day leaves slack.
        "ping-partitions": ("geofence.ping_partitions", 12 * 3600.0),
        # Days marked stale by changes are rebuilt within a minute; reports rebuild any left.
        "scoring-rollups": ("scoring.refresh_fan_out", 60.0),
        # Hourly: a day goes to the BI webhook within an hour of the plants' midnight, once.
        "scoring-bi-push": ("scoring.bi_push_fan_out", 3600.0),
        # Requests apply the billing clock to their own tenant; this keeps idle tenants current.
        "billing-clock": ("billing.apply_clock", 3600.0),
        # Tenants whose deletion grace ended are removed within the hour.
        "tenant-deletions": ("tenants.delete_due", 3600.0),
    }


def celery_config(settings: Settings) -> dict[str, Any]:
    embedded = not settings.celery_broker_url
    if embedded:
        # The in-memory transport polls; its default second would make every task feel slow.
        transport_options: dict[str, Any] = {"polling_interval": 0.1}
    else:
        # A message taken by a worker that died is handed out again after this long; it must
        # exceed the longest task, or a slow task would run twice at once.
        transport_options = {"visibility_timeout": settings.celery_visibility_timeout}
    if settings.celery_key_prefix:
        transport_options["global_keyprefix"] = settings.celery_key_prefix
    return {
        "broker_url": settings.celery_broker_url or EMBEDDED_BROKER,
        "broker_transport_options": transport_options,
        "broker_connection_retry_on_startup": True,
        "result_backend": settings.celery_result_backend or None,
        "result_backend_transport_options": (
            {"global_keyprefix": settings.celery_key_prefix} if settings.celery_key_prefix else {}
        ),
        # Effects live in the database; a result store is only worth it when someone reads it.
        "task_ignore_result": not settings.celery_result_backend,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "timezone": "UTC",
        "enable_utc": True,
        "beat_schedule": {
            name: {"task": task, "schedule": seconds, "options": {"expires": seconds}}
            for name, (task, seconds) in periodic_jobs(settings).items()
        },
        "beat_scheduler": "infra.tasks:VarDirScheduler",
        "beat_schedule_filename": str(settings.var_dir / "celerybeat-schedule"),
    }


class VarDirScheduler(PersistentScheduler):
    """Beat's own scheduler, whose state file lives under ``var/``; a fresh machine has no
    ``var/`` yet, and beat would die opening the file."""

    def setup_schedule(self) -> None:
        Path(self.schedule_filename).parent.mkdir(parents=True, exist_ok=True)
        super().setup_schedule()


app = Celery("portal", include=list(TASK_MODULES))
app.conf.update(celery_config(get_settings()))


class TaskEffect(TenantOwned):
    """The record that a task's effect under an idempotency key has happened."""

    __tablename__ = "task_effects"
    __table_args__ = (UniqueConstraint("tenant_id", "key"),)

    key: Mapped[str] = mapped_column(String(200))
    task: Mapped[str] = mapped_column(String(200))
    completed_at: Mapped[datetime]


def record_effect(session: Session, *, key: str, task: str) -> bool:
    """Record the effect under ``key`` in the caller's transaction; False if it already was.

    The caller performs its effect only when this answers True, in the same transaction. A
    concurrent run with the same key waits on the unique index until the first commits, then
    finds the key taken; if the first rolls back, the second goes ahead.
    """
    now = utcnow()
    inserted = session.execute(
        dialect_insert(session, TaskEffect)
        .values(
            id=new_id(),
            tenant_id=current_tenant_id(),
            key=key,
            task=task,
            completed_at=now,
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=["tenant_id", "key"])
        .returning(TaskEffect.id)
    ).scalar_one_or_none()
    return inserted is not None


_process_database: tuple[int, Database] | None = None
_embedded_settings: Settings | None = None


def worker_settings() -> Settings:
    """The settings tasks run with: the environment's, or those of the embedding process."""
    return _embedded_settings or get_settings()


def worker_database() -> Database:
    """This process's database. A forked pool child makes its own instead of sharing the
    parent's connections."""
    global _process_database
    pid = os.getpid()
    if _process_database is None or _process_database[0] != pid:
        _process_database = (pid, Database.from_settings(worker_settings()))
    return _process_database[1]


def _run_tasks_with(settings: Settings | None) -> None:
    global _process_database, _embedded_settings
    if _process_database is not None:
        _process_database[1].sync_engine.dispose()
    _embedded_settings = settings
    _process_database = None


# The tenant registry, named as a table because infra sits below the package that maps it.
_tenant_registry = table("tenants", column("id", Uuid()))


def registered_tenant_ids(session: Session) -> list[uuid.UUID]:
    """Every tenant, for a job that works tenant by tenant: the registry is the one table that
    is not tenant-owned, so the application role may list it without a tenant in scope."""
    return list(
        session.execute(select(_tenant_registry.c.id).order_by(_tenant_registry.c.id)).scalars()
    )


def send_to_every_tenant(task: Task) -> int:
    """Send a tenant task once per tenant, each to run inside its own tenant's scope, as
    row-level security requires of the application role. Returns how many were sent."""
    with worker_database().sync_session() as session:
        tenant_ids = registered_tenant_ids(session)
    for tenant_id in tenant_ids:
        task.apply_async(kwargs={"tenant_id": str(tenant_id)})
    return len(tenant_ids)


class TenantTaskArgumentError(ValueError):
    """A tenant task was sent or received without ``tenant_id=<UUID string>``."""


def tenant_id_argument(kwargs: Mapping[str, Any]) -> uuid.UUID:
    value = kwargs.get("tenant_id")
    if not isinstance(value, str):
        raise TenantTaskArgumentError(
            f"a tenant task needs the keyword argument tenant_id=<UUID string>, got {value!r}"
        )
    try:
        return uuid.UUID(value)
    except ValueError as exc:
        raise TenantTaskArgumentError(f"tenant_id is not a UUID: {value!r}") from exc


class TenantTask(Task):
    """A task that runs for one tenant: its body runs inside ``tenant_scope`` with a sync
    session of the worker's database, committed when the body returns.

    Callers pass ``tenant_id=str(tenant.id)``; the body is called as
    ``body(session, *args, **kwargs)`` without it (``current_tenant_id()`` has it). The argument
    is checked when the task is sent and again when it runs, because a message can be forged or
    sent by name.
    """

    # The body's first parameter is the session this class opens, which no caller passes;
    # apply_async checks the other arguments against the body itself.
    typing = False

    def apply_async(
        self,
        args: tuple[Any, ...] | None = None,
        kwargs: dict[str, Any] | None = None,
        *rest: Any,
        **options: Any,
    ) -> Any:
        tenant_id_argument(kwargs or {})
        body_kwargs = {name: value for name, value in (kwargs or {}).items() if name != "tenant_id"}
        try:
            inspect.signature(self.run).bind(None, *(args or ()), **body_kwargs)
        except TypeError as exc:
            raise TypeError(f"{self.name}: {exc}") from None
        return super().apply_async(args, kwargs, *rest, **options)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        tenant_id = tenant_id_argument(kwargs)
        body_kwargs = {name: value for name, value in kwargs.items() if name != "tenant_id"}
        with tenant_scope(tenant_id), worker_database().sync_session() as session:
            result = self.run(session, *args, **body_kwargs)
            session.commit()
        return result


def tenant_task(name: str, **options: Any) -> Callable[[Callable[..., Any]], TenantTask]:
    """Declare a :class:`TenantTask`. The name is explicit so that moving the function does not
    strand messages already queued under the old name."""
    return app.task(name=name, base=TenantTask, **options)  # type: ignore[no-any-return]


class EmbeddedWorker:
    """A worker (solo pool) and beat, each on a thread of this process, on the in-memory broker.

    In-memory messages live only as long as the process; the outbox keeps what must not be lost
    in the database and hands it out again after a restart.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # The relay runs every few seconds; at INFO it would bury the server's own log lines.
        logging.getLogger("celery").setLevel(logging.WARNING)
        self.worker = app.WorkController(
            hostname=anon_nodename(),
            pool="solo",
            concurrency=1,
            without_heartbeat=True,
            without_mingle=True,
            without_gossip=True,
        )
        self.beat = Service(app, max_interval=1, scheduler_cls="celery.beat:Scheduler")
        self._threads = [
            threading.Thread(target=self.worker.start, name="celery-worker", daemon=True),
            threading.Thread(target=self.beat.start, name="celery-beat", daemon=True),
        ]

    def start(self) -> EmbeddedWorker:
        _run_tasks_with(self.settings)
        for thread in self._threads:
            thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self.beat.stop(wait=False)
        self.worker.stop()
        for thread in self._threads:
            thread.join(timeout)
        _run_tasks_with(None)
        # Starting the pool marked the whole process as one where waiting on a task's result
        # would block its worker; with the worker gone that is no longer true, and left set it
        # refuses every later ``result.get()`` in this process (Celery's own test worker resets
        # it the same way).
        _set_task_join_will_block(False)


def start_embedded_worker(settings: Settings) -> EmbeddedWorker | None:
    """Start the in-process worker when no broker is configured; None when one is."""
    if settings.celery_broker_url:
        return None
    return EmbeddedWorker(settings).start()
