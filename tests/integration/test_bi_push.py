"""The daily push of the HQ figures to the group's BI webhook, on PostgreSQL as the application
role, against an HTTP receiver on loopback: the previous day's figures per plant, work type and
contractor arrive signed with the tenant's secret; a failing receiver is retried through the
outbox with the same body; a second run for the same day queues nothing; without a URL nothing
is queued or sent; a day is pushed only once it has ended at every plant.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
import pytest
import pytest_asyncio
from sqlalchemy import select, update

from infra.db import Database
from infra.i18n import locale_scope
from infra.outbox import OutboxMessage, OutboxStatus, deliver_outbox_message
from infra.settings import get_settings
from infra.tasks import app, periodic_jobs
from infra.tenancy import tenant_scope
from onboarding.catalogue import WorkType
from permits.models import Permit
from permits.states import PermitState
from scoring import services
from scoring.bi import BI_TOPIC
from scoring.formula import Policy
from scoring.schemas import PolicyIn
from scoring.tables import TABLES, Params
from scoring.tasks import bi_push
from tenants.models import Plant
from tests.conftest import PostgresDatabase, settings_for
from tests.factories import SeededTenant, TenantFactory
from tests.permit_factories import LEADER, PermitWorld

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.postgres]

SHANGHAI = ZoneInfo("Asia/Shanghai")
SECRET = "bi-secret-0123456789abcdef0123456789"
SIGNATURE_TOLERANCE_SECONDS = 300
DAY = datetime.now(SHANGHAI).date() - timedelta(days=10)


def local(day: date, hour: float) -> datetime:
    return datetime.combine(day, clock(0), SHANGHAI).astimezone(UTC) + timedelta(hours=hour)


# --- an HTTP receiver on loopback ------------------------------------------------------------


@dataclasses.dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


class Receiver:
    def __init__(self, port: int) -> None:
        self.port = port
        self.requests: list[Received] = []
        self.answers: dict[str, int] = {}

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def at(self, path: str) -> list[Received]:
        return [request for request in self.requests if request.path == path]


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    state = Receiver(server.server_address[1])

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            headers = {name.lower(): value for name, value in self.headers.items()}
            state.requests.append(Received(self.path, headers, body))
            self.send_response(state.answers.get(self.path, 200))
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server.RequestHandlerClass = Handler
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def signature_holds(secret: str, header: str, body: bytes) -> bool:
    """What a receiver does, from the documented scheme (``t=<unix>,v1=HMAC(secret, t.body)``)
    rather than from the sender's code."""
    fields = dict(part.split("=", 1) for part in header.split(","))
    timestamp = int(fields["t"])
    if abs(time.time() - timestamp) > SIGNATURE_TOLERANCE_SECONDS:
        return False
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return hmac.compare_digest(expected.hexdigest(), fields["v1"])


# --- the tenant -------------------------------------------------------------------------------


@dataclasses.dataclass
class Stage:
    world: PermitWorld
    database: Database
    factory: TenantFactory

    @property
    def tenant_id(self) -> uuid.UUID:
        return self.world.tenant.id


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stage(
    postgres: PostgresDatabase, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stage]:
    settings = settings_for(
        postgres.app_url,
        tmp_path_factory.mktemp("bi") / "var",
        migration_database_url=postgres.owner_url,
    )
    database = Database.from_settings(settings)
    factory = TenantFactory()
    try:
        world = await PermitWorld.create(database, settings, factory, induct=False)
        async with world.session() as session:
            for number, (plant, work_type, state, hour) in enumerate(
                [
                    ("P1", WorkType.HOT_WORK, PermitState.CLOSED, 9),
                    ("P1", WorkType.HEIGHT, PermitState.ACTIVE, 14),
                    ("P2", WorkType.HEIGHT, PermitState.SUBMITTED, 23.5),
                ]
            ):
                start = local(DAY, hour)
                permit = Permit(
                    plant_id=world.tenant.plants[plant],
                    zone_id=world.zones["Z1"],
                    contractor_id=world.company.contractor_id,
                    work_type=work_type.value,
                    number=f"BI-{number}",
                    state=state.value,
                    location="一号装置区",
                    work_content="检修",
                    planned_start=start,
                    planned_end=start + timedelta(hours=2),
                    work_leader_id=world.worker(LEADER),
                    guardian_user_id=world.guardian.user_id,
                    applicant_id=world.contractor_admin.user_id,
                    submitted_at=start - timedelta(hours=3),
                )
                if state != PermitState.SUBMITTED:
                    permit.approved_at = start - timedelta(hours=1)
                    permit.started_at = start
                if state == PermitState.CLOSED:
                    permit.completed_at = permit.closed_at = start + timedelta(hours=2)
                session.add(permit)
        yield Stage(world, database, factory)
    finally:
        await database.dispose()


async def configure(
    database: Database, tenant_id: uuid.UUID, url: str | None, secret: str = SECRET
) -> None:
    """Set the BI webhook through the policy service, as ``PUT /api/v1/scoring-policy`` does."""
    data = msgspec.convert(
        {**dataclasses.asdict(Policy()), "bi_webhook_url": url, "bi_webhook_secret": secret},
        PolicyIn,
    )
    async with database.session() as session:
        with tenant_scope(tenant_id):
            await services.save_policy(session, data, actor_id=uuid.uuid4())
        await session.commit()


def run_push(database: Database, tenant_id: uuid.UUID, now: datetime) -> str | None:
    """One pass of the hourly job for the tenant, as the worker runs it."""
    with tenant_scope(tenant_id), database.sync_session() as session:
        queued = bi_push.run(session, now=now.isoformat())
        session.commit()
    return queued


def messages(database: Database, tenant_id: uuid.UUID) -> list[OutboxMessage]:
    with tenant_scope(tenant_id), database.sync_session() as session:
        query = select(OutboxMessage).where(OutboxMessage.topic == BI_TOPIC)
        return list(session.execute(query.order_by(OutboxMessage.created_at)).scalars())


def message(database: Database, tenant_id: uuid.UUID, key: str) -> OutboxMessage:
    return next(m for m in messages(database, tenant_id) if m.key == key)


def deliver(database: Database, tenant_id: uuid.UUID, key: str) -> OutboxMessage:
    queued = message(database, tenant_id, key)
    with tenant_scope(tenant_id), database.sync_session() as session:
        deliver_outbox_message.run(session, message_id=str(queued.id), attempt=queued.attempts)
        session.commit()
    return message(database, tenant_id, key)


def table_rows(database: Database, tenant_id: uuid.UUID, table: str, day: date) -> Any:
    """The table's rows for the day, as JSON carries them."""
    with tenant_scope(tenant_id), database.sync_session() as session, locale_scope("zh_CN"):
        rows = TABLES[table].rows(session, Params(day, day + timedelta(days=1)))
    return json.loads(json.dumps(rows, default=str))


# --- the push ---------------------------------------------------------------------------------


async def test_the_previous_day_arrives_signed_once(stage: Stage, receiver: Receiver) -> None:
    database, tenant_id = stage.database, stage.tenant_id
    path = f"/bi/{uuid.uuid4().hex}"
    await configure(database, tenant_id, receiver.url(path))
    after_midnight = local(DAY + timedelta(days=1), 0.5)

    key = run_push(database, tenant_id, after_midnight)
    assert key == f"bi-daily:{DAY.isoformat()}"
    assert run_push(database, tenant_id, after_midnight + timedelta(hours=1)) is None
    assert [m.key for m in messages(database, tenant_id)] == [key], "one message per day"

    delivered = deliver(database, tenant_id, key)
    assert delivered.status == OutboxStatus.DELIVERED
    [request] = receiver.at(path)
    assert signature_holds(SECRET, request.headers["x-portal-signature"], request.body)
    assert not signature_holds(
        "another-secret", request.headers["x-portal-signature"], request.body
    )
    assert request.headers["x-portal-delivery"] == key
    body = json.loads(request.body)
    assert (body["day"], body["tenant_id"], body["id"]) == (DAY.isoformat(), str(tenant_id), key)
    for section in ("plants", "work_types", "contractors"):
        assert body[section] == table_rows(database, tenant_id, section, DAY), section
    by_plant = {row["plant_id"]: row for row in body["plants"]}
    assert by_plant[str(stage.world.tenant.plants["P1"])]["permits"] == 2
    # 23:30 in Shanghai is still that day there, though the next in no other sense.
    assert by_plant[str(stage.world.tenant.plants["P2"])]["permits"] == 1
    assert sorted(row["work_type"] for row in body["work_types"]) == ["height", "hot_work"]
    [company] = body["contractors"]
    assert company["contractor_id"] == str(stage.world.company.contractor_id)

    # Later passes the same day, and a re-run of the same day, send nothing new.
    assert run_push(database, tenant_id, after_midnight + timedelta(hours=20)) is None
    assert len(receiver.at(path)) == 1
    assert message(database, tenant_id, key).status == OutboxStatus.DELIVERED


async def test_a_failing_receiver_is_retried_with_the_same_body(
    stage: Stage, receiver: Receiver
) -> None:
    database, tenant_id = stage.database, stage.tenant_id
    path = f"/bi/{uuid.uuid4().hex}"
    receiver.answers[path] = 503
    await configure(database, tenant_id, receiver.url(path))
    day = DAY + timedelta(days=1)
    key = run_push(database, tenant_id, local(day + timedelta(days=1), 2))
    assert key == f"bi-daily:{day.isoformat()}"

    failed = deliver(database, tenant_id, key)
    assert (failed.status, failed.attempts) == (OutboxStatus.PENDING, 1)
    assert "503" in (failed.last_error or "")
    assert failed.next_attempt_at > failed.created_at, "the retry waits for its backoff"
    assert SECRET not in (failed.last_error or "") and path not in (failed.last_error or "")

    receiver.answers[path] = 200
    assert deliver(database, tenant_id, key).status == OutboxStatus.DELIVERED
    first, second = receiver.at(path)
    assert first.body == second.body
    assert all(
        signature_holds(SECRET, r.headers["x-portal-signature"], r.body) for r in (first, second)
    )


async def test_a_refusing_receiver_fails_without_retrying(stage: Stage, receiver: Receiver) -> None:
    database, tenant_id = stage.database, stage.tenant_id
    path = f"/bi/{uuid.uuid4().hex}"
    receiver.answers[path] = 401
    await configure(database, tenant_id, receiver.url(path))
    day = DAY + timedelta(days=2)
    key = run_push(database, tenant_id, local(day + timedelta(days=1), 3))
    assert key is not None
    refused = deliver(database, tenant_id, key)
    assert (refused.status, refused.attempts) == (OutboxStatus.FAILED, 1)


async def test_without_a_url_nothing_is_queued_or_sent(stage: Stage, receiver: Receiver) -> None:
    database, tenant_id = stage.database, stage.tenant_id
    path = f"/bi/{uuid.uuid4().hex}"
    await configure(database, tenant_id, None)
    before = len(messages(database, tenant_id))
    assert run_push(database, tenant_id, local(DAY + timedelta(days=4), 1)) is None
    assert len(messages(database, tenant_id)) == before

    # A push queued while a URL was set, which the tenant removed before it went out.
    await configure(database, tenant_id, receiver.url(path))
    key = run_push(database, tenant_id, local(DAY + timedelta(days=5), 1))
    assert key is not None
    await configure(database, tenant_id, None)
    assert deliver(database, tenant_id, key).status == OutboxStatus.DELIVERED
    assert receiver.at(path) == []

    # A tenant that never configured the push.
    fresh: SeededTenant = await stage.factory.create(database, plants=("P1",), users=())
    assert run_push(database, fresh.id, local(DAY, 1)) is None
    assert messages(database, fresh.id) == []


async def test_a_day_waits_for_the_last_plants_midnight(stage: Stage, receiver: Receiver) -> None:
    database = stage.database
    tenant = await stage.factory.create(database, plants=("SH", "NY"), users=())
    with tenant_scope(tenant.id), database.sync_session() as session:
        session.execute(
            update(Plant).where(Plant.id == tenant.plants["NY"]).values(timezone="America/New_York")
        )
        session.commit()
    await configure(database, tenant.id, receiver.url(f"/bi/{uuid.uuid4().hex}"))
    # 02:00 in Shanghai is 13:00 the day before in New York: only the day before that has
    # ended at both plants.
    now = local(DAY, 2)
    assert run_push(database, tenant.id, now) == f"bi-daily:{(DAY - timedelta(days=2)).isoformat()}"
    # Once New York's midnight has passed, the day after is due.
    later = datetime.combine(DAY, clock(0, 30), ZoneInfo("America/New_York")).astimezone(UTC)
    assert (
        run_push(database, tenant.id, later) == f"bi-daily:{(DAY - timedelta(days=1)).isoformat()}"
    )


async def test_beat_looks_at_the_push_hourly_for_every_tenant() -> None:
    assert periodic_jobs(get_settings())["scoring-bi-push"] == ("scoring.bi_push_fan_out", 3600.0)
    assert "scoring.bi_push_fan_out" in app.tasks and "scoring.bi_push" in app.tasks
