"""The string ``format`` values a raw-schema tool checks, and an example of each for messages.

Owns :data:`FORMAT_CHECKER` for :class:`~tools.JsonSchemaArguments`: ``date``, ``email``,
``uuid``, ``ipv4`` and ``ipv6`` use jsonschema's own checkers (they need no extra package);
``date-time``, ``time`` and ``uri`` are checked here, because jsonschema's need packages that
are not installed and silently pass everything without them. Date-times and times are read
leniently, as pydantic reads them (seconds and the UTC offset may be left out), so a value a
pydantic server accepts is not refused; ``"yesterday"`` or ``"10am"`` are. Any other format is
an annotation, as JSON Schema says by default. Never used for pydantic tools: pydantic checks
its own types.
"""

from __future__ import annotations

import datetime
import re

import jsonschema

__all__ = ["FORMAT_CHECKER", "FORMAT_EXAMPLES"]

FORMAT_EXAMPLES = {
    "date-time": "2024-01-31T10:00:00Z",
    "date": "2024-01-31",
    "time": "10:00:00",
    "email": "ann@example.com",
    "uuid": "123e4567-e89b-12d3-a456-426614174000",
    "uri": "https://example.com/a",
    "ipv4": "192.168.0.1",
    "ipv6": "2001:db8::1",
}
"""A valid value of each checked format, quoted in error messages."""

FORMAT_CHECKER = jsonschema.FormatChecker(formats=("date", "email", "uuid", "ipv4", "ipv6"))

_TIME = r"(\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?(?:[Zz]|[+-](\d{2}):(\d{2}))?"
_TIME_RE = re.compile(_TIME)
_DATE_TIME_RE = re.compile(r"(\d{4})-(\d{2})-(\d{2})[Tt ]" + _TIME)
_URI_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:[^\s<>\"{}|\\^`]+")


def _clock(
    hour: str, minute: str, second: str | None, off_h: str | None, off_m: str | None
) -> bool:
    return (
        int(hour) <= 23
        and int(minute) <= 59
        and int(second or 0) <= 60  # a leap second
        and int(off_h or 0) <= 23
        and int(off_m or 0) <= 59
    )


@FORMAT_CHECKER.checks("date-time")
def _is_date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    match = _DATE_TIME_RE.fullmatch(value)
    if match is None:
        return False
    year, month, day, *clock = match.groups()
    try:
        datetime.date(int(year), int(month), int(day))
    except ValueError:
        return False
    return _clock(*clock)


@FORMAT_CHECKER.checks("time")
def _is_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    match = _TIME_RE.fullmatch(value)
    return match is not None and _clock(*match.groups())


@FORMAT_CHECKER.checks("uri")
def _is_uri(value: object) -> bool:
    """An absolute URI: a scheme, a colon, then no spaces or characters RFC 3986 forbids."""
    return not isinstance(value, str) or _URI_RE.fullmatch(value) is not None
