"""What an approved permit's content hash covers, and that it does not depend on how a time was
written (GB 30871 §4.18: an approved permit is checked against its frozen content)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from permits.models import Permit, PermitCrewMember
from permits.services import content_hash

PLANT = ZoneInfo("Asia/Shanghai")


def _permit(start: datetime) -> Permit:
    return Permit(
        id=uuid.UUID(int=1),
        number="NB01-DH-20261201-0001",
        version=1,
        plant_id=uuid.UUID(int=2),
        zone_id=uuid.UUID(int=3),
        contractor_id=uuid.UUID(int=4),
        work_type="hot_work",
        level="level2",
        location="常减压装置区 E-101 换热器",
        work_content="更换法兰垫片后补焊",
        planned_start=start,
        planned_end=start + timedelta(hours=6),
        work_leader_id=uuid.UUID(int=5),
        guardian_worker_id=None,
        guardian_user_id=uuid.UUID(int=6),
        related_numbers=[],
        hazards=["可燃气体泄漏"],
        emergency_measures=["立即停止作业，撤离至集合点"],
        checklist=[{"code": "ppe", "applies": True}],
        details={"method": "electric_welding"},
    )


def _crew() -> list[PermitCrewMember]:
    return [PermitCrewMember(worker_id=uuid.UUID(int=5), duty="焊工")]


def test_4_18_the_hash_is_the_same_whatever_offset_the_time_was_written_in() -> None:
    local = datetime(2026, 12, 1, 9, 0, tzinfo=PLANT)
    assert content_hash(_permit(local), _crew()) == content_hash(
        _permit(local.astimezone(UTC)), _crew()
    )


def test_4_18_any_change_of_content_changes_the_hash() -> None:
    start = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)
    frozen = content_hash(_permit(start), _crew())
    moved = _permit(start + timedelta(minutes=1))
    assert content_hash(moved, _crew()) != frozen
    widened = _permit(start)
    widened.work_content += "，并更换阀门"
    assert content_hash(widened, _crew()) != frozen
    assert (
        content_hash(_permit(start), [*_crew(), PermitCrewMember(worker_id=uuid.UUID(int=7))])
        != frozen
    )
