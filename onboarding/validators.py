"""Checksums of the two national identifiers admission depends on.

* 统一社会信用代码 (unified social credit code, GB 32100-2015): 18 characters from a 31-character
  alphabet (the digits and the capitals without I, O, S, V, Z); the 18th is a check character
  over the first 17 with weights 3^i mod 31.
* 公民身份号码 (citizen ID number, GB 11643-1999): a 6-digit region code, the date of birth as
  YYYYMMDD, a 3-digit sequence and a check character by ISO 7064 MOD 11-2 (``X`` stands for 10).

Both checks catch every single-character error, which is what they are for: a typo or a made-up
number fails here, before anything is stored. Input is normalised first (NFKC, so full-width
digits typed with a Chinese input method count; surrounding spaces dropped; upper case).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import date

from infra.errors import InvalidInput
from infra.i18n import N_

USCC_LENGTH = 18
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = tuple(pow(3, i, 31) for i in range(USCC_LENGTH - 1))
_USCC_VALUES = {char: value for value, char in enumerate(USCC_ALPHABET)}

ID_LENGTH = 18
ID_WEIGHTS = tuple(pow(2, ID_LENGTH - 1 - i, 11) for i in range(ID_LENGTH - 1))
ID_CHECK_CHARS = "10X98765432"
EARLIEST_BIRTH_DATE = date(1900, 1, 1)


def normalise(value: str) -> str:
    return unicodedata.normalize("NFKC", value).strip().upper()


def uscc_check_char(body: str) -> str:
    """The check character for the first 17 characters (all from the alphabet)."""
    total = sum(
        _USCC_VALUES[char] * weight for char, weight in zip(body, USCC_WEIGHTS, strict=True)
    )
    return USCC_ALPHABET[(31 - total % 31) % 31]


def validate_uscc(value: str, field_name: str = "uscc") -> str:
    """The normalised code, or :class:`InvalidInput` naming the rule it breaks."""
    code = normalise(value)
    if len(code) != USCC_LENGTH:
        raise InvalidInput(
            field_name,
            "length",
            N_("A unified social credit code has %(length)s characters."),
            length=USCC_LENGTH,
        )
    if any(char not in _USCC_VALUES for char in code):
        raise InvalidInput(
            field_name,
            "charset",
            N_("Use only digits and the capital letters A–Y without I, O, S, V and Z."),
        )
    if uscc_check_char(code[:-1]) != code[-1]:
        raise InvalidInput(
            field_name,
            "checksum",
            N_("The check character does not match: the code has a typo."),
        )
    return code


def id_check_char(body: str) -> str:
    """The check character for the first 17 digits."""
    total = sum(int(char) * weight for char, weight in zip(body, ID_WEIGHTS, strict=True))
    return ID_CHECK_CHARS[total % 11]


@dataclass(frozen=True)
class IdNumber:
    value: str
    birth_date: date

    @property
    def masked(self) -> str:
        return mask_id_number(self.value)


def mask_id_number(value: str) -> str:
    """Region and last four shown, the date of birth and sequence hidden: enough for a person
    to recognise their own number, not enough to use it."""
    return value[:6] + "*" * (len(value) - 10) + value[-4:]


def validate_id_number(value: str, *, today: date, field_name: str = "id_number") -> IdNumber:
    """The normalised number with its date of birth, or :class:`InvalidInput` naming the rule."""
    number = normalise(value)
    if len(number) != ID_LENGTH:
        raise InvalidInput(
            field_name,
            "length",
            N_("A citizen ID number has %(length)s characters."),
            length=ID_LENGTH,
        )
    body, check = number[:-1], number[-1]
    if not (body.isascii() and body.isdigit()) or check not in "0123456789X":
        raise InvalidInput(
            field_name,
            "format",
            N_("Use 17 digits followed by a digit or X."),
        )
    if number[0] == "0":
        raise InvalidInput(field_name, "region", N_("The region code cannot start with 0."))
    try:
        birth = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        birth = None
    if birth is None or not EARLIEST_BIRTH_DATE <= birth <= today:
        raise InvalidInput(
            field_name,
            "birth_date",
            N_("The date of birth in the number is not a real date between 1900 and today."),
        )
    if id_check_char(body) != check:
        raise InvalidInput(
            field_name,
            "checksum",
            N_("The check digit does not match: the number has a typo."),
        )
    return IdNumber(number, birth)
