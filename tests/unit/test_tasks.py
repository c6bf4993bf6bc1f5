"""The parts of tasks and the outbox that need no broker: the tenant argument check, the backoff
schedule and the reliability settings every worker must run with."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import timedelta

import pytest

from infra.outbox import MAX_BACKOFF_SECONDS, backoff_delay, deliver_outbox_message
from infra.settings import get_settings
from infra.tasks import (
    EMBEDDED_BROKER,
    TenantTaskArgumentError,
    celery_config,
    tenant_id_argument,
)


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"tenant_id": None}, {"tenant_id": ""}, {"tenant_id": "tenant-1"}, {"tenant_id": 7}],
)
def test_tenant_id_must_be_a_uuid_string(kwargs: dict[str, object]) -> None:
    with pytest.raises(TenantTaskArgumentError, match="tenant_id"):
        tenant_id_argument(kwargs)


def test_a_uuid_object_is_refused_too() -> None:
    # JSON carries strings; an object would reach the worker in a shape of the serializer's.
    with pytest.raises(TenantTaskArgumentError):
        tenant_id_argument({"tenant_id": uuid.uuid4()})


def test_a_uuid_string_is_the_tenant() -> None:
    tenant_id = uuid.uuid4()
    assert tenant_id_argument({"tenant_id": str(tenant_id)}) == tenant_id


def test_a_tenant_task_is_refused_before_it_is_sent() -> None:
    with pytest.raises(TenantTaskArgumentError):
        deliver_outbox_message.delay(message_id=str(uuid.uuid4()), attempt=0)
    with pytest.raises(TypeError, match=r"outbox\.deliver: .*attempt"):
        deliver_outbox_message.delay(tenant_id=str(uuid.uuid4()), message_id="m")


def test_a_tenant_task_is_refused_when_it_runs_without_a_tenant() -> None:
    # Called as the worker would call a message sent by name; the check comes before any
    # database access, so no database is needed here.
    with pytest.raises(TenantTaskArgumentError):
        deliver_outbox_message(message_id=str(uuid.uuid4()), attempt=0)


def test_backoff_doubles_from_the_base_and_is_capped() -> None:
    assert [backoff_delay(n, 30).total_seconds() for n in range(1, 8)] == [
        30,
        60,
        120,
        240,
        480,
        960,
        1920,
    ]
    assert backoff_delay(20, 30) == timedelta(seconds=MAX_BACKOFF_SECONDS)
    with pytest.raises(ValueError, match="failure"):
        backoff_delay(0, 30)


def test_workers_acknowledge_late_and_take_one_message_at_a_time() -> None:
    config = celery_config(dataclasses.replace(get_settings(), celery_broker_url=""))
    assert config["broker_url"] == EMBEDDED_BROKER
    assert config["task_acks_late"] and config["task_reject_on_worker_lost"]
    assert config["worker_prefetch_multiplier"] == 1
    assert config["accept_content"] == ["json"] and config["task_serializer"] == "json"
    assert config["enable_utc"] and config["timezone"] == "UTC"
    assert config["beat_schedule"]["outbox-relay"]["task"] == "outbox.relay"

    redis = dataclasses.replace(
        get_settings(),
        celery_broker_url="redis://broker:6379/0",
        celery_visibility_timeout=7200,
        celery_key_prefix="portal:",
    )
    options = celery_config(redis)["broker_transport_options"]
    assert options == {"visibility_timeout": 7200, "global_keyprefix": "portal:"}
