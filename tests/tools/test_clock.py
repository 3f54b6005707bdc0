"""The clock tool: injected time, IANA zones, precise errors."""

from __future__ import annotations

import datetime as dt

import pytest

from agentcore.tools import SideEffect
from agentcore.tools.builtin import clock_tool

FIXED = dt.datetime(2025, 3, 30, 0, 30, tzinfo=dt.UTC)  # the night Europe moves to summer time


def test_utc_by_default() -> None:
    clock = clock_tool(lambda: FIXED)
    assert clock.side_effects == {SideEffect.NONE}
    assert clock.run_sync({}).content == "2025-03-30T00:30:00+00:00 (Sunday, UTC)"


@pytest.mark.parametrize(
    ("zone", "expected"),
    [
        ("Europe/Paris", "2025-03-30T01:30:00+01:00 (Sunday, Europe/Paris)"),
        ("America/New_York", "2025-03-29T20:30:00-04:00 (Saturday, America/New_York)"),
        ("Asia/Kolkata", "2025-03-30T06:00:00+05:30 (Sunday, Asia/Kolkata)"),
    ],
)
def test_named_zones(zone: str, expected: str) -> None:
    assert clock_tool(lambda: FIXED).run_sync({"timezone": zone}).content == expected


def test_unknown_zone_names_the_field() -> None:
    result = clock_tool(lambda: FIXED).run_sync({"timezone": "Mars/Olympus"})
    assert result.error_kind == "arguments"
    assert "- timezone: got 'Mars/Olympus'; expected an IANA time zone name" in result.content


def test_malformed_zone_is_caught_by_the_schema() -> None:
    result = clock_tool(lambda: FIXED).run_sync({"timezone": "../../etc/passwd"})
    assert result.error_kind == "arguments"
    assert "matching the pattern" in result.content


def test_real_clock_is_aware_and_recent() -> None:
    before = dt.datetime.now(dt.UTC).replace(microsecond=0)
    text = clock_tool().run_sync({}).content
    stamp = dt.datetime.fromisoformat(text.split(" ")[0])
    assert stamp.tzinfo is not None and stamp >= before - dt.timedelta(seconds=1)


def test_naive_clock_is_an_error() -> None:
    result = clock_tool(lambda: dt.datetime(2025, 1, 1)).run_sync({})
    assert result.error_kind == "execution" and "naive datetime" in result.content
