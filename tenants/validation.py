"""msgspec's validation messages turned into problems that name the field and the rule, for
request bodies and for items checked one by one (a batch whose bad items are reported while the
good ones are kept)."""

from __future__ import annotations

import re

from infra.errors import FieldProblem
from infra.i18n import N_
from tenants.schemas import EMAIL_PATTERN, PHONE_PATTERN, PLANT_CODE_PATTERN, SLUG_PATTERN

_PATTERN_RULES = {
    EMAIL_PATTERN: ("email", N_("Must be a valid e-mail address.")),
    SLUG_PATTERN: ("slug", N_("Use lowercase letters, digits and hyphens (at most 40).")),
    PLANT_CODE_PATTERN: ("code", N_("Use letters, digits, '-' or '_' (at most 32).")),
    PHONE_PATTERN: ("phone", N_("Must be a phone number.")),
}

# msgspec quotes the pattern with repr() in its messages.
_RULES_BY_QUOTED_PATTERN = {repr(pattern)[1:-1]: rule for pattern, rule in _PATTERN_RULES.items()}

# msgspec's validation messages, mapped to a rule code and a message for people.
_MSGSPEC_RULES: list[tuple[re.Pattern[str], str, str]] = [
    (
        re.compile(r"Object contains unknown field `(?P<field>[^`]+)`"),
        "unknown_field",
        N_("This field is not allowed here."),
    ),
    (
        re.compile(r"Object missing required field `(?P<field>[^`]+)`"),
        "required",
        N_("This field is required."),
    ),
    (
        re.compile(r"Expected `str` of length <= (?P<limit>\d+)"),
        "max_length",
        N_("At most %(limit)s characters."),
    ),
    (
        re.compile(r"Expected `str` of length >= (?P<limit>\d+)"),
        "min_length",
        N_("At least %(limit)s characters."),
    ),
    (
        re.compile(r"Expected `array` of length <= (?P<limit>\d+)"),
        "max_items",
        N_("At most %(limit)s items."),
    ),
    (
        re.compile(r"Expected `(?:int|float|number)` >= (?P<limit>[-\d.]+)"),
        "minimum",
        N_("Must be at least %(limit)s."),
    ),
    (
        re.compile(r"Expected `(?:int|float|number)` > (?P<limit>[-\d.]+)"),
        "exclusive_minimum",
        N_("Must be more than %(limit)s."),
    ),
    (
        re.compile(r"Expected `(?:int|float|number)` < (?P<limit>[-\d.]+)"),
        "exclusive_maximum",
        N_("Must be less than %(limit)s."),
    ),
    (
        re.compile(r"Expected `(?:int|float|number)` <= (?P<limit>[-\d.]+)"),
        "maximum",
        N_("Must be at most %(limit)s."),
    ),
    (
        re.compile(r"Expected `str` matching regex '(?P<pattern>.*)'"),
        "pattern",
        N_("The format is not valid."),
    ),
    (re.compile(r"Invalid enum value"), "enum", N_("Not one of the allowed values.")),
    (re.compile(r"Number out of range"), "range", N_("The value is not valid.")),
    (re.compile(r"Invalid UUID"), "uuid", N_("Must be a UUID.")),
    (re.compile(r"Invalid RFC3339"), "datetime", N_("Must be an RFC 3339 date-time.")),
    (
        re.compile(r"Expected `datetime` with a timezone"),
        "timezone",
        N_("Give the time with its UTC offset."),
    ),
    (
        re.compile(r"Expected `(?P<expected>[^`]+)`, got `(?P<got>[^`]+)`"),
        "type",
        N_("Must be of type %(expected)s."),
    ),
    (
        re.compile(r"JSON is malformed|Input data was truncated|malformed", re.IGNORECASE),
        "json",
        N_("The request body is not valid JSON."),
    ),
]


def problem_from_msgspec(message: str, field_name: str = "") -> FieldProblem:
    """The problem a msgspec ``ValidationError`` message describes; ``field_name`` is the field
    to blame when the message names none."""
    path_match = re.search(r" - at `\$(?P<path>[^`]*)`", message)
    # Litestar decodes JSON untyped before converting it, so for errors found while decoding
    # msgspec can only write `$[...]`; that names no field and must not be shown as one.
    if path_match and "[...]" not in path_match.group("path"):
        field_name = path_match.group("path").lstrip(".")
    for pattern, rule, text in _MSGSPEC_RULES:
        match = pattern.search(message)
        if match is None:
            continue
        params = {k: v for k, v in match.groupdict().items() if v is not None}
        if "field" in params:
            named = params.pop("field")
            field_name = f"{field_name}.{named}" if field_name else named
        if rule == "pattern":
            rule, text = _RULES_BY_QUOTED_PATTERN.get(params.pop("pattern", ""), (rule, text))
        return FieldProblem(field_name or "body", rule, text, params)
    return FieldProblem(field_name or "body", "invalid", N_("The value is not valid."))
