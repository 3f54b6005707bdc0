"""The scenario schema: agents, world, scripted events, ticks, seed and metrics of a simulation.

Owns the pydantic models a scenario file is validated against and the cross-field checks
(every agent's location exists, event targets name real agents, tool names are world tools).
Field errors carry their location; :mod:`apps.sim._loader` maps them back to file lines.
Never reads files and never runs anything.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "WORLD_TOOLS",
    "AgentSpec",
    "ClockSpec",
    "EventSpec",
    "MetricSpec",
    "ModelSpec",
    "PolicySpec",
    "Scenario",
    "WorldSpec",
]

WORLD_TOOLS: tuple[str, ...] = (
    "speak",
    "tell",
    "post",
    "move",
    "give",
    "offer",
    "bid",
    "accept",
    "vote",
    "wait",
)
"""The world tools an agent may be given (see :mod:`apps.sim._tools`)."""

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,31}$")
Name = Annotated[str, Field(pattern=_NAME.pattern, description="letters, digits, _ or -")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PolicySpec(_Strict):
    """Limits on one agent's turn (mapped onto the agent's config and safety policy)."""

    max_steps: int = Field(
        default=1,
        ge=1,
        le=16,
        description="model steps per turn (1: one action or one spoken reply per tick)",
    )
    max_tool_calls: int = Field(default=1, ge=0, le=16, description="world actions per turn")
    deny_tools: tuple[str, ...] = ()


class AgentSpec(_Strict):
    """One simulated agent."""

    name: Name
    persona: str = Field(min_length=1)
    goals: tuple[str, ...] = ()
    tools: tuple[str, ...] = ("speak", "move", "wait")
    policy: PolicySpec = PolicySpec()
    location: str | None = None
    inventory: dict[str, int] = Field(default_factory=dict)
    plan: tuple[str, ...] = Field(
        default=(), description="daily plan, one entry per tick ('08:00 open the cafe')"
    )
    channels: tuple[str, ...] = ()
    speaks_final_answer: bool = Field(
        default=True, description="a turn that ends in plain text says that text aloud"
    )

    @field_validator("tools")
    @classmethod
    def _known_tools(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            if name not in WORLD_TOOLS:
                raise ValueError(f"unknown tool {name!r}; expected one of {list(WORLD_TOOLS)}")
        if len(set(value)) != len(value):
            raise ValueError(f"tools listed twice in {list(value)}")
        return value

    @field_validator("inventory")
    @classmethod
    def _non_negative(cls, value: dict[str, int]) -> dict[str, int]:
        for item, qty in value.items():
            if qty < 0:
                raise ValueError(f"inventory[{item!r}] = {qty}; expected a count >= 0")
        return value


class WorldSpec(_Strict):
    """The shared world: places, channels, who hears whom, and free-form shared state."""

    locations: tuple[Name, ...] = ("town",)
    hearing: Literal["location", "all"] = Field(
        default="location", description="speak reaches agents at the same location, or everyone"
    )
    channels: dict[Name, tuple[str, ...]] = Field(
        default_factory=dict, description="channel -> member agents (post reaches members)"
    )
    state: dict[str, Any] = Field(default_factory=dict)
    vote_options: tuple[str, ...] = ()

    @field_validator("locations")
    @classmethod
    def _unique(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("expected at least one location")
        if len(set(value)) != len(value):
            raise ValueError(f"locations listed twice in {list(value)}")
        return value


class EventSpec(_Strict):
    """Something the script makes happen at the start of a tick."""

    tick: int = Field(ge=0)
    kind: Literal["message", "set", "move", "give", "goal"]
    text: str = ""
    to: tuple[str, ...] | None = Field(
        default=None, description="agents who receive it (None: everyone, or a location)"
    )
    location: str | None = None
    key: str | None = None
    value: Any = None
    item: str | None = None
    qty: int = 1

    @model_validator(mode="after")
    def _fields_for_kind(self) -> EventSpec:
        need: dict[str, tuple[str, ...]] = {
            "message": ("text",),
            "set": ("key",),
            "move": ("to", "location"),
            "give": ("to", "item"),
            "goal": ("to", "text"),
        }
        for name in need[self.kind]:
            if getattr(self, name) in (None, ""):
                raise ValueError(f"a {self.kind!r} event needs {name!r}")
        return self


class MetricSpec(_Strict):
    """A number recorded after every tick.

    ``heard``: agents that heard (or said) something matching ``pattern``;
    ``said``: speech acts matching ``pattern`` (optionally by ``agent``);
    ``state``: the world state value at ``key`` (dotted path);
    ``at``: agents at ``location``; ``inventory``: ``agent``'s count of ``item``;
    ``votes``: votes cast for ``option`` (or all votes); ``deals``: accepted offers.
    """

    name: Name
    kind: Literal["heard", "said", "state", "at", "inventory", "votes", "deals"]
    pattern: str | None = None
    key: str | None = None
    location: str | None = None
    agent: str | None = None
    item: str | None = None
    option: str | None = None

    @field_validator("pattern")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a regular expression: {exc}") from None
        return value

    @model_validator(mode="after")
    def _fields_for_kind(self) -> MetricSpec:
        need: dict[str, tuple[str, ...]] = {
            "heard": ("pattern",),
            "said": (),
            "state": ("key",),
            "at": ("location",),
            "inventory": ("agent", "item"),
            "votes": (),
            "deals": (),
        }
        for name in need[self.kind]:
            if getattr(self, name) is None:
                raise ValueError(f"a {self.kind!r} metric needs {name!r}")
        return self


class ClockSpec(_Strict):
    """Simulated wall clock shown to agents: tick t is ``start + t * minutes_per_tick``."""

    start: str = Field(default="08:00", pattern=r"^\d{2}:\d{2}$")
    minutes_per_tick: int = Field(default=60, ge=1)

    def at(self, tick: int) -> str:
        h, m = (int(x) for x in self.start.split(":"))
        total = h * 60 + m + tick * self.minutes_per_tick
        day, minute = divmod(total, 24 * 60)
        text = f"{minute // 60:02d}:{minute % 60:02d}"
        return text if day == 0 else f"day {day + 1} {text}"


class ModelSpec(_Strict):
    """How every agent samples from the shared model (greedy unless temperature > 0)."""

    max_tokens: int = Field(default=32, ge=1, le=2048)
    temperature: float = Field(default=0.0, ge=0.0)
    repetition_penalty: float = Field(default=1.2, gt=0.0, description="1.0: off")
    window: int | None = Field(
        default=None, ge=64, description="sliding window per agent session (tokens); bounds RAM"
    )


class Scenario(_Strict):
    """A whole simulation."""

    name: Name
    description: str = ""
    seed: int = 0
    ticks: int = Field(ge=1, le=100_000)
    clock: ClockSpec = ClockSpec()
    model: ModelSpec = ModelSpec()
    world: WorldSpec = WorldSpec()
    agents: tuple[AgentSpec, ...] = Field(min_length=1)
    events: tuple[EventSpec, ...] = ()
    metrics: tuple[MetricSpec, ...] = ()
    record_tokens: bool = Field(default=False, description="write token events to the transcript")

    @model_validator(mode="after")
    def _references(self) -> Scenario:
        names = [a.name for a in self.agents]
        seen: set[str] = set()
        for i, name in enumerate(names):
            if name in seen:
                raise _located(("agents", i, "name"), f"agent name {name!r} is used twice")
            seen.add(name)
        places = set(self.world.locations)
        for i, agent in enumerate(self.agents):
            if agent.location is not None and agent.location not in places:
                raise _located(
                    ("agents", i, "location"),
                    f"unknown location {agent.location!r}; expected one of {sorted(places)}",
                )
            for channel in agent.channels:
                if channel not in self.world.channels:
                    raise _located(
                        ("agents", i, "channels"),
                        f"unknown channel {channel!r}; expected one of {sorted(self.world.channels)}",
                    )
            for denied in agent.policy.deny_tools:
                if denied not in WORLD_TOOLS:
                    raise _located(
                        ("agents", i, "policy", "deny_tools"),
                        f"unknown tool {denied!r}; expected one of {list(WORLD_TOOLS)}",
                    )
        for channel, members in self.world.channels.items():
            for member in members:
                if member not in seen:
                    raise _located(
                        ("world", "channels", channel),
                        f"unknown agent {member!r}; expected one of {names}",
                    )
        for i, event in enumerate(self.events):
            for target in event.to or ():
                if target not in seen:
                    raise _located(
                        ("events", i, "to"), f"unknown agent {target!r}; expected one of {names}"
                    )
            if event.location is not None and event.location not in places:
                raise _located(
                    ("events", i, "location"),
                    f"unknown location {event.location!r}; expected one of {sorted(places)}",
                )
            if event.tick >= self.ticks:
                raise _located(
                    ("events", i, "tick"),
                    f"tick {event.tick} is never reached; the scenario runs ticks 0..{self.ticks - 1}",
                )
        for i, metric in enumerate(self.metrics):
            if metric.agent is not None and metric.agent not in seen:
                raise _located(
                    ("metrics", i, "agent"),
                    f"unknown agent {metric.agent!r}; expected one of {names}",
                )
            if metric.location is not None and metric.location not in places:
                raise _located(
                    ("metrics", i, "location"),
                    f"unknown location {metric.location!r}; expected one of {sorted(places)}",
                )
        metric_names = [m.name for m in self.metrics]
        if len(set(metric_names)) != len(metric_names):
            raise _located(("metrics",), f"metric names must be unique, got {metric_names}")
        return self

    def agent(self, name: str) -> AgentSpec:
        for spec in self.agents:
            if spec.name == name:
                return spec
        raise KeyError(f"no agent {name!r} in scenario {self.name!r}")


class ScenarioReferenceError(ValueError):
    """A cross-reference check failed at ``loc`` (a path into the scenario document)."""

    def __init__(self, loc: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.loc = loc
        self.message = message


def _located(loc: tuple[str | int, ...], message: str) -> ScenarioReferenceError:
    return ScenarioReferenceError(loc, message)
