"""The current date and time, for an agent that otherwise has no idea what day it is.

Owns :func:`clock_tool` (the ``current_time`` tool: ISO 8601 time, weekday, in a named IANA
time zone). The clock is injectable so tests and simulations control time. Never sleeps,
schedules or changes anything.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Callable
from typing import Annotated

from pydantic import Field

from agentcore.tools._errors import ArgumentProblem, ToolArgumentError
from agentcore.tools._meta import SideEffect, ToolLimits
from agentcore.tools._tool import Tool

__all__ = ["clock_tool"]

TimeZoneName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+){0,2}$",
        description="IANA time zone such as UTC, Europe/Paris or America/New_York.",
    ),
]


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def clock_tool(
    now: Callable[[], dt.datetime] = _utc_now, *, limits: ToolLimits = ToolLimits.FAST
) -> Tool:
    """The ``current_time`` tool (side effects ``none``). ``now`` must return an aware
    datetime; it is converted to the requested zone."""

    def current_time(timezone: TimeZoneName = "UTC") -> str:
        """Get the current date and time (ISO 8601) and the weekday in a time zone."""
        try:
            zone = zoneinfo.ZoneInfo(timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            problem = ArgumentProblem(
                "timezone", timezone, "an IANA time zone name such as 'UTC' or 'Europe/Paris'"
            )
            raise ToolArgumentError("current_time", [problem]) from None
        moment = now()
        if moment.tzinfo is None:
            raise ValueError("the clock returned a naive datetime; it must carry a time zone")
        local = moment.astimezone(zone)
        return f"{local.isoformat(timespec='seconds')} ({local.strftime('%A')}, {timezone})"

    return Tool.from_function(current_time, side_effects=SideEffect.NONE, limits=limits)
