"""The shared world of a simulation: where agents are, what they own, what they hear.

Owns :class:`World` (serialisable state: locations, inventories, free-form state, offers,
votes, inboxes of pending perceptions), :class:`Action` (what a world tool asked for),
:class:`WorldEvent` (what happened, for transcripts and metrics), :class:`Percept` (what one
agent will perceive) and :class:`WorldView` (the read-only slice an agent's tools check
against). A tick is simultaneous: agents act on the view taken at the start of the tick and
their actions are applied afterwards in the scenario's agent order, so the outcome does not
depend on which agent's model finished first. Never calls a model and never writes files.
"""

from __future__ import annotations

import copy
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from agentcore.apps.sim._scenario import EventSpec, Scenario

__all__ = ["Action", "Offer", "Percept", "World", "WorldEvent", "WorldView"]


class Action(BaseModel):
    """A world tool call, buffered until the end of the tick."""

    model_config = ConfigDict(frozen=True)

    agent: str
    tool: str
    arguments: dict[str, Any]


class Percept(BaseModel):
    """Something one agent will perceive before its next turn."""

    model_config = ConfigDict(frozen=True)

    content: str
    source: str  # "agent:<name>" or "environment"
    trust: Literal["agent", "environment"]


class WorldEvent(BaseModel):
    """Something that happened in the world (scripted, or an agent's applied action)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: Literal["world"] = "world"
    tick: int
    kind: str  # message, set, moved, said, told, posted, gave, offered, accepted, voted, ...
    actor: str | None = None  # the agent, or None for the script
    text: str
    ok: bool = True
    heard_by: tuple[str, ...] = ()
    data: dict[str, Any] = Field(default_factory=dict)


class Offer(BaseModel):
    """A proposed trade: ``seller`` gives ``item`` to ``buyer`` for ``price`` coins."""

    id: str
    proposer: str
    to: str
    side: Literal["sell", "buy"]  # what the proposer does
    item: str
    price: int
    tick: int
    status: Literal["open", "accepted", "failed"] = "open"

    @property
    def seller(self) -> str:
        return self.proposer if self.side == "sell" else self.to

    @property
    def buyer(self) -> str:
        return self.to if self.side == "sell" else self.proposer


class WorldView(BaseModel):
    """What one agent can see at the start of a tick (tools validate against it)."""

    model_config = ConfigDict(frozen=True)

    tick: int
    clock: str
    agent: str
    location: str
    here: tuple[str, ...]
    hears_all: bool  # speech reaches everyone, wherever they are
    agents: tuple[str, ...]
    locations: tuple[str, ...]
    inventory: dict[str, int]
    offers_to_me: tuple[Offer, ...]
    channels: tuple[str, ...]
    vote_options: tuple[str, ...]
    goals: tuple[str, ...]
    plan_now: str | None


COIN = "coins"


class World(BaseModel):
    """The whole mutable world state; ``model_dump`` is what a checkpoint stores."""

    tick: int = 0
    where: dict[str, str]
    inventories: dict[str, dict[str, int]]
    state: dict[str, Any]
    offers: list[Offer] = Field(default_factory=list)
    votes: dict[str, str] = Field(default_factory=dict)
    extra_goals: dict[str, list[str]] = Field(default_factory=dict)
    inbox: dict[str, list[Percept]] = Field(default_factory=dict)
    next_offer: int = 1

    @classmethod
    def initial(cls, scenario: Scenario) -> World:
        first = scenario.world.locations[0]
        return cls(
            where={a.name: a.location or first for a in scenario.agents},
            inventories={a.name: dict(a.inventory) for a in scenario.agents},
            state=copy.deepcopy(scenario.world.state),
            inbox={a.name: [] for a in scenario.agents},
        )

    # ------------------------------------------------------------------ views
    def view(self, scenario: Scenario, agent: str) -> WorldView:
        spec = scenario.agent(agent)
        loc = self.where[agent]
        plan_now = spec.plan[self.tick] if self.tick < len(spec.plan) else None
        return WorldView(
            tick=self.tick,
            clock=scenario.clock.at(self.tick),
            agent=agent,
            location=loc,
            hears_all=scenario.world.hearing == "all",
            here=tuple(
                a.name for a in scenario.agents if a.name != agent and self.where[a.name] == loc
            ),
            agents=tuple(a.name for a in scenario.agents),
            locations=scenario.world.locations,
            inventory=dict(self.inventories[agent]),
            offers_to_me=tuple(o for o in self.offers if o.to == agent and o.status == "open"),
            channels=spec.channels,
            vote_options=scenario.world.vote_options,
            goals=(*spec.goals, *self.extra_goals.get(agent, [])),
            plan_now=plan_now,
        )

    def take_inbox(self, agent: str) -> list[Percept]:
        out = self.inbox.get(agent, [])
        self.inbox[agent] = []
        return out

    # ------------------------------------------------------------------ hearing
    def _listeners(
        self, scenario: Scenario, speaker: str | None, location: str | None
    ) -> list[str]:
        names = [a.name for a in scenario.agents if a.name != speaker]
        if location is None or scenario.world.hearing == "all":
            return names
        return [n for n in names if self.where[n] == location]

    def _deliver(self, to: list[str], content: str, source: str) -> tuple[str, ...]:
        trust: Literal["agent", "environment"] = (
            "agent" if source.startswith("agent:") else "environment"
        )
        for name in to:
            self.inbox.setdefault(name, []).append(
                Percept(content=content, source=source, trust=trust)
            )
        return tuple(to)

    # ------------------------------------------------------------------ script
    def apply_script(self, scenario: Scenario, tick: int) -> list[WorldEvent]:
        """Run the scripted events of ``tick`` (in file order)."""
        self.tick = tick
        out = []
        for event in scenario.events:
            if event.tick == tick:
                out.append(self._scripted(scenario, event))
        return out

    def _scripted(self, scenario: Scenario, event: EventSpec) -> WorldEvent:
        tick = self.tick
        if event.kind == "message":
            if event.to is not None:
                targets = list(event.to)
            else:
                targets = self._listeners(scenario, None, event.location)
            heard = self._deliver(targets, event.text, "environment")
            return WorldEvent(tick=tick, kind="message", text=event.text, heard_by=heard)
        if event.kind == "set":
            assert event.key is not None
            _set_path(self.state, event.key, copy.deepcopy(event.value))
            return WorldEvent(
                tick=tick,
                kind="set",
                text=f"{event.key} = {event.value!r}",
                data={"key": event.key, "value": event.value},
            )
        if event.kind == "move":
            assert event.to is not None and event.location is not None
            for name in event.to:
                self.where[name] = event.location
            return WorldEvent(
                tick=tick,
                kind="moved",
                text=f"{', '.join(event.to)} moved to {event.location}",
                data={"agents": list(event.to), "location": event.location},
            )
        if event.kind == "give":
            assert event.to is not None and event.item is not None
            for name in event.to:
                inv = self.inventories[name]
                inv[event.item] = inv.get(event.item, 0) + event.qty
            return WorldEvent(
                tick=tick,
                kind="gave",
                text=f"{', '.join(event.to)} received {event.qty} {event.item}",
                data={"agents": list(event.to), "item": event.item, "qty": event.qty},
            )
        assert event.to is not None
        for name in event.to:
            self.extra_goals.setdefault(name, []).append(event.text)
        heard = self._deliver(list(event.to), f"New goal: {event.text}", "environment")
        return WorldEvent(tick=tick, kind="goal", text=event.text, heard_by=heard)

    # ------------------------------------------------------------------ actions
    def apply_actions(self, scenario: Scenario, actions: list[Action]) -> list[WorldEvent]:
        """Apply buffered actions in the given (scenario agent) order."""
        return [self._act(scenario, a) for a in actions]

    def _fail(self, action: Action, why: str) -> WorldEvent:
        self._deliver([action.agent], f"Your {action.tool} failed: {why}", "environment")
        return WorldEvent(
            tick=self.tick,
            kind=action.tool,
            actor=action.agent,
            text=f"{action.agent}'s {action.tool} failed: {why}",
            ok=False,
            data=dict(action.arguments),
        )

    def _act(self, scenario: Scenario, action: Action) -> WorldEvent:
        me, args, tick = action.agent, action.arguments, self.tick
        if action.tool == "speak":
            msg = str(args["message"])
            heard = self._deliver(
                self._listeners(scenario, me, self.where[me]), f"{me} says: {msg}", f"agent:{me}"
            )
            return WorldEvent(
                tick=tick, kind="said", actor=me, text=msg, heard_by=heard, data={"message": msg}
            )
        if action.tool == "tell":
            to, msg = str(args["to"]), str(args["message"])
            heard = self._deliver([to], f"{me} tells you: {msg}", f"agent:{me}")
            return WorldEvent(
                tick=tick,
                kind="told",
                actor=me,
                text=msg,
                heard_by=heard,
                data={"to": to, "message": msg},
            )
        if action.tool == "post":
            channel, msg = str(args["channel"]), str(args["message"])
            members = [m for m in scenario.world.channels.get(channel, ()) if m != me]
            heard = self._deliver(members, f"[{channel}] {me}: {msg}", f"agent:{me}")
            return WorldEvent(
                tick=tick,
                kind="posted",
                actor=me,
                text=msg,
                heard_by=heard,
                data={"channel": channel, "message": msg},
            )
        if action.tool == "move":
            to = str(args["location"])
            before = self.where[me]
            self.where[me] = to
            return WorldEvent(
                tick=tick,
                kind="moved",
                actor=me,
                text=f"{me} moved from {before} to {to}",
                data={"from": before, "location": to},
            )
        if action.tool == "give":
            to, item, qty = str(args["to"]), str(args["item"]), int(args["qty"])
            mine = self.inventories[me]
            if mine.get(item, 0) < qty:
                return self._fail(action, f"you have {mine.get(item, 0)} {item}, not {qty}")
            mine[item] -= qty
            theirs = self.inventories[to]
            theirs[item] = theirs.get(item, 0) + qty
            heard = self._deliver([to], f"{me} gave you {qty} {item}", f"agent:{me}")
            return WorldEvent(
                tick=tick,
                kind="gave",
                actor=me,
                text=f"{me} gave {qty} {item} to {to}",
                heard_by=heard,
                data={"to": to, "item": item, "qty": qty},
            )
        if action.tool in ("offer", "bid"):
            side: Literal["sell", "buy"] = "sell" if action.tool == "offer" else "buy"
            offer = Offer(
                id=f"o{self.next_offer}",
                proposer=me,
                to=str(args["to"]),
                side=side,
                item=str(args["item"]),
                price=int(args["price"]),
                tick=tick,
            )
            self.next_offer += 1
            self.offers.append(offer)
            verb = "sell you" if side == "sell" else "buy from you"
            heard = self._deliver(
                [offer.to],
                f"{me} offers to {verb} 1 {offer.item} for {offer.price} coins "
                f"(offer id {offer.id}; use accept to take it)",
                f"agent:{me}",
            )
            return WorldEvent(
                tick=tick,
                kind="offered",
                actor=me,
                text=f"{me} offers to {side} 1 {offer.item} to {offer.to} for {offer.price}",
                heard_by=heard,
                data=offer.model_dump(),
            )
        if action.tool == "accept":
            return self._accept(action)
        if action.tool == "vote":
            choice = str(args["option"])
            self.votes[me] = choice
            return WorldEvent(
                tick=tick,
                kind="voted",
                actor=me,
                text=f"{me} votes {choice}",
                data={"option": choice},
            )
        return WorldEvent(tick=tick, kind="waited", actor=me, text=f"{me} waits")

    def _accept(self, action: Action) -> WorldEvent:
        me = action.agent
        wanted = str(action.arguments["offer_id"])
        offer = next((o for o in self.offers if o.id == wanted), None)
        if offer is None or offer.to != me or offer.status != "open":
            return self._fail(action, f"there is no open offer {wanted!r} to you")
        seller, buyer = self.inventories[offer.seller], self.inventories[offer.buyer]
        if seller.get(offer.item, 0) < 1:
            offer.status = "failed"
            return self._fail(action, f"{offer.seller} has no {offer.item} left")
        if buyer.get(COIN, 0) < offer.price:
            offer.status = "failed"
            return self._fail(action, f"{offer.buyer} has {buyer.get(COIN, 0)} coins")
        seller[offer.item] -= 1
        buyer[offer.item] = buyer.get(offer.item, 0) + 1
        buyer[COIN] -= offer.price
        seller[COIN] = seller.get(COIN, 0) + offer.price
        offer.status = "accepted"
        deals = self.state.setdefault("deals", [])
        deals.append(
            {"offer": offer.id, "item": offer.item, "price": offer.price, "tick": self.tick}
        )
        self.state["last_price"] = offer.price
        heard = self._deliver(
            [offer.proposer],
            f"{me} accepted your offer {offer.id}: 1 {offer.item} for {offer.price} coins",
            f"agent:{me}",
        )
        return WorldEvent(
            tick=self.tick,
            kind="accepted",
            actor=me,
            text=f"{offer.seller} sold 1 {offer.item} to {offer.buyer} for {offer.price}",
            heard_by=heard,
            data={"offer": offer.id, "price": offer.price, "item": offer.item},
        )


def _set_path(state: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = state
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[parts[-1]] = value


def get_path(state: dict[str, Any], dotted: str) -> Any:
    """``state['a']['b']`` for ``'a.b'``; None when a part is missing."""
    node: Any = state
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def matches(pattern: str, text: str) -> bool:
    return re.search(pattern, text, re.IGNORECASE) is not None
