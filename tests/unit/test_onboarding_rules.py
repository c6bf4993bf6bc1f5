"""Admission's rules without a database: qualification order, reminder thresholds, field
encryption with key versions, and reading rosters."""

from __future__ import annotations

import dataclasses
import io
import uuid
import zipfile
from datetime import date, timedelta

import pytest

from infra.errors import InvalidInput
from infra.field_encryption import FieldCipher, FieldDecryptionError, parse_keyring
from infra.i18n import locale_scope
from onboarding.catalogue import QUALIFYING_CERTIFICATES, CertificateKind, WorkType
from onboarding.expiry import reminder_due
from onboarding.qualification import (
    Reason,
    contractor_verdict,
    worker_verdict,
)
from onboarding.roster import RosterRefused, read_roster
from tests.onboarding_factories import make_id_number, roster_xlsx

TODAY = date(2026, 11, 28)
KEY_A = "a" * 40
KEY_B = "b" * 40


@dataclasses.dataclass
class Cert:
    kind: str
    state: str = "verified"
    issued_on: date = TODAY - timedelta(days=100)
    expires_on: date = TODAY + timedelta(days=100)
    id: uuid.UUID = dataclasses.field(default_factory=uuid.uuid4)


def _verdict(certificates: list[Cert], *, worker: str = "verified", last: int = 5) -> Reason | None:
    return worker_verdict(
        worker,
        certificates,
        WorkType.HOT_WORK,
        first_day=TODAY + timedelta(days=1),
        last_day=TODAY + timedelta(days=last),
        today=TODAY,
    ).reason


def test_company_reasons_come_first() -> None:
    offered = ["hot_work"]
    assert contractor_verdict("approved", offered, WorkType.HOT_WORK).qualified
    assert contractor_verdict("submitted", offered, WorkType.HOT_WORK).reason is (
        Reason.CONTRACTOR_NOT_APPROVED
    )
    assert contractor_verdict("suspended", offered, WorkType.HOT_WORK).reason is (
        Reason.CONTRACTOR_SUSPENDED
    )
    assert contractor_verdict("blacklisted", offered, WorkType.HOT_WORK).reason is (
        Reason.CONTRACTOR_BLACKLISTED
    )
    assert contractor_verdict("approved", offered, WorkType.LIFTING).reason is (
        Reason.WORK_TYPE_NOT_OFFERED
    )


def test_worker_reasons_in_order() -> None:
    welding = CertificateKind.WELDING_CUTTING.value
    assert _verdict([Cert(welding)]) is None
    assert _verdict([Cert(welding)], worker="pending") is Reason.WORKER_NOT_VERIFIED
    assert _verdict([]) is Reason.CERTIFICATE_MISSING
    assert _verdict([Cert(CertificateKind.CRANE_OPERATOR.value)]) is Reason.CERTIFICATE_MISSING
    assert _verdict([Cert(welding, state="pending")]) is Reason.CERTIFICATE_NOT_VERIFIED
    assert _verdict([Cert(welding, state="expired")]) is Reason.CERTIFICATE_EXPIRED
    assert _verdict([Cert(welding, expires_on=TODAY)]) is Reason.CERTIFICATE_EXPIRED
    assert _verdict([Cert(welding, issued_on=TODAY + timedelta(days=3))]) is (
        Reason.CERTIFICATE_NOT_YET_VALID
    )
    assert _verdict([Cert(welding, expires_on=TODAY + timedelta(days=5))]) is (
        Reason.CERTIFICATE_EXPIRES_BEFORE_END
    )
    assert _verdict([Cert(welding, expires_on=TODAY + timedelta(days=6))]) is None


def test_one_good_certificate_is_enough_and_the_best_failure_explains() -> None:
    welding = CertificateKind.WELDING_CUTTING.value
    short = Cert(welding, expires_on=TODAY + timedelta(days=2))
    pending = Cert(welding, state="pending")
    assert _verdict([pending, short]) is Reason.CERTIFICATE_EXPIRES_BEFORE_END
    assert _verdict([pending, short, Cert(welding)]) is None


def test_work_without_a_special_certificate_needs_a_verified_worker_only() -> None:
    assert QUALIFYING_CERTIFICATES[WorkType.BLIND_PLATE] == frozenset()
    verdict = worker_verdict(
        "verified",
        [],
        WorkType.BLIND_PLATE,
        first_day=TODAY,
        last_day=TODAY,
        today=TODAY,
    )
    assert verdict.qualified and verdict.message() is None


def test_reasons_read_in_the_current_language() -> None:
    verdict = worker_verdict(
        "verified",
        [Cert(CertificateKind.WELDING_CUTTING.value, expires_on=TODAY)],
        WorkType.HOT_WORK,
        first_day=TODAY,
        last_day=TODAY,
        today=TODAY,
    )
    with locale_scope("en"):
        assert verdict.message() == f"The certificate expired on {TODAY.isoformat()}."
    with locale_scope("zh_CN"):
        assert verdict.message() == f"证书已于 {TODAY.isoformat()} 过期。"


@pytest.mark.parametrize(
    ("days_left", "threshold"),
    [(45, None), (31, None), (30, 30), (8, 30), (7, 7), (2, 7), (1, 1), (0, None), (-3, None)],
)
def test_reminder_thresholds(days_left: int, threshold: int | None) -> None:
    assert reminder_due(days_left) == threshold


def test_encryption_round_trip_binds_the_context_and_names_its_key() -> None:
    cipher = FieldCipher(parse_keyring(f"1:{KEY_A}"))
    token = cipher.encrypt("330102199001011234", context="tenant-a/workers.id_number")
    assert token.startswith("1:") and "330102" not in token
    assert cipher.decrypt(token, context="tenant-a/workers.id_number") == "330102199001011234"
    with pytest.raises(FieldDecryptionError):
        cipher.decrypt(token, context="tenant-b/workers.id_number")
    altered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    with pytest.raises(FieldDecryptionError):
        cipher.decrypt(altered, context="tenant-a/workers.id_number")
    assert cipher.encrypt("x", context="c") != cipher.encrypt("x", context="c"), "fresh nonces"


def test_rotation_reads_old_values_and_finds_them_by_any_digest() -> None:
    old = FieldCipher(parse_keyring(f"1:{KEY_A}"))
    rotated = FieldCipher(parse_keyring(f"2:{KEY_B},1:{KEY_A}"))
    token = old.encrypt("secret", context="c")
    assert rotated.decrypt(token, context="c") == "secret"
    assert not rotated.is_current(token)
    assert rotated.is_current(rotated.encrypt("secret", context="c"))
    assert old.digest("secret", context="c") in rotated.digests("secret", context="c")
    assert rotated.digest("secret", context="c").startswith("2:")
    assert old.digest("secret", context="c") != old.digest("secret", context="other")
    with pytest.raises(FieldDecryptionError):
        FieldCipher(parse_keyring(f"2:{KEY_B}")).decrypt(token, context="c")


@pytest.mark.parametrize("ring", ["", "nokey", f"v-1:{KEY_A}", "1:short", f"1:{KEY_A},1:{KEY_B}"])
def test_bad_keyrings_are_refused(ring: str) -> None:
    with pytest.raises(ValueError, match="PORTAL_FIELD_ENCRYPTION_KEY"):
        parse_keyring(ring)


def _problems(error: pytest.ExceptionInfo[InvalidInput]) -> list[tuple[str, str]]:
    return [(problem.field, problem.rule) for problem in error.value.problems]


def test_a_roster_is_read_with_columns_in_any_order() -> None:
    number = make_id_number(date(1985, 6, 1))
    content = roster_xlsx(
        [["13800138000", "电焊工", " 张三 ", number], [None, None, None, None]],
        header=["手机号", "工种", "姓名", "身份证号"],
    )
    roster = read_roster(content, today=TODAY)
    assert roster.problems == []
    [row] = roster.rows
    assert (row.row, row.name, row.phone, row.trade) == (2, "张三", "13800138000", "电焊工")
    assert row.id_number.value == number and row.id_number.birth_date == date(1985, 6, 1)


def test_roster_rows_with_problems_are_reported_by_row_and_column() -> None:
    good = make_id_number()
    content = roster_xlsx(
        [
            ["张三", good, "13800138000", "电焊工"],
            ["", good[:-1] + ("0" if good[-1] != "0" else "1"), "call me", ""],
            ["王五", 330102199001011234, "13800138001", "电工"],
        ]
    )
    roster = read_roster(content, today=TODAY)
    assert [row.row for row in roster.rows] == [2]
    assert [(p.row, p.column, p.rule) for p in roster.problems] == [
        (3, "姓名", "required"),
        (3, "身份证号", "checksum"),
        (3, "手机号", "phone"),
        (3, "工种", "required"),
        (4, "身份证号", "text"),
    ]


def test_roster_columns_must_be_exactly_the_four() -> None:
    content = roster_xlsx([["张三"]], header=["姓名", "身份证号", "手机号", "备注", "姓名"])
    with pytest.raises(RosterRefused) as error:
        read_roster(content, today=TODAY)
    assert _problems(error) == [
        ("columns.D", "unknown_column"),
        ("columns.E", "duplicate_column"),
        ("columns.工种", "missing_column"),
    ]


@pytest.mark.parametrize(
    ("content", "rule"),
    [
        (b"", "empty"),
        (b"%PDF-1.7\n", "xlsx"),
        (b"PK\x03\x04 not really a zip", "xlsx"),
        (b"PK\x03\x04" + b"\0" * (2 * 1024 * 1024), "max_size"),
    ],
    ids=["empty", "pdf", "broken-zip", "too-large"],
)
def test_files_that_are_not_rosters_are_refused(content: bytes, rule: str) -> None:
    with pytest.raises(InvalidInput) as error:
        read_roster(content, today=TODAY)
    assert _problems(error) == [("file", rule)]


def test_a_zip_that_would_expand_too_far_is_refused_before_parsing() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/worksheets/sheet1.xml", b"\0" * (41 * 1024 * 1024))
    with pytest.raises(InvalidInput) as error:
        read_roster(buffer.getvalue(), today=TODAY)
    assert _problems(error) == [("file", "max_size")]


def test_formulas_are_refused_wherever_they_are() -> None:
    content = roster_xlsx([["张三", make_id_number(), "13800138000", "=1+1"]])
    with pytest.raises(InvalidInput) as error:
        read_roster(content, today=TODAY)
    assert _problems(error) == [("file", "formula")]
    assert error.value.problems[0].params == {"cell": "D2"}


def test_an_empty_roster_and_a_long_one_are_refused() -> None:
    with pytest.raises(InvalidInput) as error:
        read_roster(roster_xlsx([]), today=TODAY)
    assert _problems(error) == [("file", "no_rows")]
    rows = [["张三", make_id_number(), "13800138000", "电工"]] * 1001
    with pytest.raises(InvalidInput) as error:
        read_roster(roster_xlsx(rows), today=TODAY)
    assert _problems(error) == [("file", "max_rows")]
