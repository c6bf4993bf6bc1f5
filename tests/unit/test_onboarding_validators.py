"""The USCC (GB 32100) and citizen ID number (GB 11643) checks: every valid code passes, and any
single-character change of one is refused, as the checksums promise."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from infra.errors import InvalidInput
from onboarding.validators import (
    USCC_ALPHABET,
    id_check_char,
    mask_id_number,
    normalise,
    uscc_check_char,
    validate_id_number,
    validate_uscc,
)

TODAY = date(2026, 11, 28)
# Characters a typo or a forgery might put in: the alphabet, the letters it leaves out, lower
# case, full-width forms, punctuation, spaces and a few CJK characters.
MUTATIONS = st.sampled_from(
    sorted(set(USCC_ALPHABET + "IOSVZ" + "abcxyz" + "０１９ＡＸ" + "-_ ./" + "\t" + "中号"))
)
EXAMPLES = settings(max_examples=300, deadline=None)


@st.composite
def usccs(draw: st.DrawFn) -> str:
    body = "".join(draw(st.lists(st.sampled_from(USCC_ALPHABET), min_size=17, max_size=17)))
    return body + uscc_check_char(body)


@st.composite
def id_numbers(draw: st.DrawFn) -> str:
    region = str(draw(st.integers(100000, 999999)))
    birth = draw(st.dates(min_value=date(1900, 1, 1), max_value=TODAY))
    sequence = draw(st.integers(0, 999))
    body = f"{region}{birth:%Y%m%d}{sequence:03d}"
    return body + id_check_char(body)


def _mutated(code: str, position: int, replacement: str) -> str:
    return code[:position] + replacement + code[position + 1 :]


def _rule(error: pytest.ExceptionInfo[InvalidInput]) -> tuple[str, str]:
    [problem] = error.value.problems
    return problem.field, problem.rule


@EXAMPLES
@given(usccs())
def test_every_valid_uscc_is_accepted(code: str) -> None:
    assert validate_uscc(code) == code
    assert validate_uscc(f"  {code.lower()} ") == code


@EXAMPLES
@given(usccs(), st.integers(0, 17), MUTATIONS)
def test_any_single_character_change_of_a_uscc_is_refused(
    code: str, position: int, replacement: str
) -> None:
    changed = _mutated(code, position, replacement)
    if normalise(changed) == code:
        return  # the same code typed differently (case, full width), not a change
    with pytest.raises(InvalidInput) as error:
        validate_uscc(changed)
    assert _rule(error)[0] == "uscc"


@EXAMPLES
@given(id_numbers())
def test_every_valid_id_number_is_accepted(number: str) -> None:
    checked = validate_id_number(number, today=TODAY)
    assert checked.value == number
    assert checked.birth_date == date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    assert checked.masked == number[:6] + "********" + number[-4:]


@EXAMPLES
@given(id_numbers(), st.integers(0, 17), MUTATIONS)
def test_any_single_character_change_of_an_id_number_is_refused(
    number: str, position: int, replacement: str
) -> None:
    changed = _mutated(number, position, replacement)
    if normalise(changed) == number:
        return
    with pytest.raises(InvalidInput) as error:
        validate_id_number(changed, today=TODAY)
    assert _rule(error)[0] == "id_number"


@pytest.mark.parametrize(
    ("code", "rule"),
    [
        ("91350100M000100Y4", "length"),
        ("91350100M000100Y433", "length"),
        ("", "length"),
        ("91350100M000100I43", "charset"),
        ("91350100M000100Y42", "checksum"),
    ],
)
def test_uscc_rules(code: str, rule: str) -> None:
    with pytest.raises(InvalidInput) as error:
        validate_uscc(code)
    assert _rule(error) == ("uscc", rule)


def test_known_codes() -> None:
    assert validate_uscc("91350100M000100Y43") == "91350100M000100Y43"
    assert validate_uscc("９１３５０１００Ｍ０００１００Ｙ４３") == "91350100M000100Y43"
    assert validate_id_number("11010519491231002x", today=TODAY).value == "11010519491231002X"


@pytest.mark.parametrize(
    ("number", "rule"),
    [
        ("11010519491231002", "length"),
        ("1101051949123100222", "length"),
        ("1101051949123100AX", "format"),
        ("11010519491231002Y", "format"),
        ("01010519491231002X", "region"),
        ("110105" + "19900230" + "123" + "0", "birth_date"),
        ("110105" + "18991231" + "123" + "0", "birth_date"),
        ("110105" + "20261129" + "123" + "0", "birth_date"),
        ("110105" + "19901301" + "123" + "0", "birth_date"),
        ("11010519491231002Y"[:-1] + "1", "checksum"),
    ],
    ids=[
        "short",
        "long",
        "letter",
        "bad-check-char",
        "region-zero",
        "feb-30",
        "before-1900",
        "tomorrow",
        "month-13",
        "checksum",
    ],
)
def test_id_number_rules(number: str, rule: str) -> None:
    with pytest.raises(InvalidInput) as error:
        validate_id_number(number, today=TODAY)
    assert _rule(error) == ("id_number", rule)


def test_a_birth_today_is_real() -> None:
    body = f"330102{TODAY:%Y%m%d}001"
    assert validate_id_number(body + id_check_char(body), today=TODAY).birth_date == TODAY


def test_mask_shows_region_and_last_four_only() -> None:
    assert mask_id_number("330102199001011234") == "330102********1234"
