"""Scenario metrics: numbers computed from world events and world state after every tick.

Owns :class:`MetricTracker`, whose cumulative state (who has heard what, how often each agent
spoke) is plain data stored in the checkpoint, so a resumed run reports the same numbers.
Never changes the world.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from agentcore.apps.sim._scenario import MetricSpec, Scenario
from agentcore.apps.sim._world import World, WorldEvent, get_path, matches

__all__ = ["MetricTracker"]

_SPEECH = ("said", "told", "posted", "message")


class MetricTracker(BaseModel):
    """Cumulative metric state; ``values`` gives this tick's numbers."""

    heard: dict[str, list[str]] = Field(default_factory=dict)  # metric -> agents, first-heard order
    said: dict[str, int] = Field(default_factory=dict)  # metric -> count

    def observe(self, scenario: Scenario, events: list[WorldEvent]) -> None:
        for metric in scenario.metrics:
            if metric.kind == "heard":
                self._heard(metric, events)
            elif metric.kind == "said":
                self.said[metric.name] = self.said.get(metric.name, 0) + sum(
                    1 for e in events if self._is_speech(metric, e)
                )

    def _heard(self, metric: MetricSpec, events: list[WorldEvent]) -> None:
        assert metric.pattern is not None
        known = self.heard.setdefault(metric.name, [])
        for event in events:
            if event.kind not in _SPEECH or not event.ok or not matches(metric.pattern, event.text):
                continue
            for name in (event.actor, *event.heard_by):
                if name is not None and name not in known:
                    known.append(name)

    @staticmethod
    def _is_speech(metric: MetricSpec, event: WorldEvent) -> bool:
        if event.kind not in _SPEECH[:3] or event.actor is None:
            return False
        if metric.agent is not None and event.actor != metric.agent:
            return False
        return metric.pattern is None or matches(metric.pattern, event.text)

    def values(self, scenario: Scenario, world: World) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for m in scenario.metrics:
            if m.kind == "heard":
                out[m.name] = len(self.heard.get(m.name, []))
            elif m.kind == "said":
                out[m.name] = self.said.get(m.name, 0)
            elif m.kind == "state":
                assert m.key is not None
                value = get_path(world.state, m.key)
                out[m.name] = len(value) if isinstance(value, list | dict) else value
            elif m.kind == "at":
                out[m.name] = sum(1 for loc in world.where.values() if loc == m.location)
            elif m.kind == "inventory":
                assert m.agent is not None and m.item is not None
                out[m.name] = world.inventories[m.agent].get(m.item, 0)
            elif m.kind == "votes":
                out[m.name] = sum(
                    1 for v in world.votes.values() if m.option is None or v == m.option
                )
            else:
                out[m.name] = sum(1 for o in world.offers if o.status == "accepted")
        return out

    def who_heard(self, metric: str) -> list[str]:
        return list(self.heard.get(metric, []))
