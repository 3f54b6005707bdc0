"""World tools: how a simulated agent acts (speak, tell, post, move, give, offer, bid, accept,
vote, wait), built with :func:`tools.tool` and bound to one agent.

Owns :class:`TurnContext` (the agent's view of the world for this tick and the actions it has
asked for) and :func:`world_tools`. A tool checks its arguments against the view (a known
place, a person present, enough coins), buffers an :class:`~apps.sim._world.Action` and tells
the model what will happen; the world applies buffered actions at the end of the tick.
Never mutates the world itself, so agents may take their turns concurrently.
"""

from __future__ import annotations

import threading

from agentcore.apps.sim._world import Action, WorldView
from agentcore.tools import SideEffect, Tool, ToolLimits, tool

__all__ = ["TurnContext", "world_tools"]


class TurnContext:
    """One agent's view for the current tick and the actions it has buffered."""

    def __init__(self, agent: str, max_actions: int) -> None:
        self.agent = agent
        self.max_actions = max_actions
        self.view: WorldView | None = None
        self.actions: list[Action] = []
        self._lock = threading.Lock()

    def begin(self, view: WorldView) -> None:
        with self._lock:
            self.view = view
            self.actions = []

    def current(self) -> WorldView:
        if self.view is None:
            raise RuntimeError(f"{self.agent}: a world tool ran outside a turn")
        return self.view

    def take(self) -> list[Action]:
        with self._lock:
            out, self.actions = self.actions, []
            return out

    def buffer(self, tool_name: str, **arguments: object) -> None:
        with self._lock:
            if len(self.actions) >= self.max_actions:
                raise ValueError(
                    f"you already acted {len(self.actions)} time(s) this turn (the limit is "
                    f"{self.max_actions}); end your turn with a short reply"
                )
            self.actions.append(Action(agent=self.agent, tool=tool_name, arguments=dict(arguments)))


def _check_agent(view: WorldView, name: str, *, present: bool = False) -> None:
    if name == view.agent:
        raise ValueError(f"'to' is you ({name!r}); name someone else")
    if name not in view.agents:
        others = [a for a in view.agents if a != view.agent]
        raise ValueError(f"'to': no agent {name!r}; expected one of {others}")
    if present and name not in view.here:
        raise ValueError(f"'to': {name!r} is not at {view.location}; here are {list(view.here)}")


def world_tools(ctx: TurnContext, names: tuple[str, ...]) -> list[Tool]:
    """The world tools called ``names``, bound to ``ctx``'s agent (in ``names`` order)."""
    effects = SideEffect.WRITES  # they change the simulated world (not files or the network)
    limits = ToolLimits(timeout_s=10.0, max_result_chars=600)

    @tool(side_effects=effects, limits=limits)
    def speak(message: str) -> str:
        """Say something aloud; everyone who can hear you receives it next turn.

        Args:
            message: what you say.
        """
        view = ctx.current()
        if not message.strip():
            raise ValueError("'message' is empty; say something")
        ctx.buffer("speak", message=message)
        if view.hears_all:
            listeners = ", ".join(a for a in view.agents if a != view.agent) or "nobody"
        else:
            listeners = ", ".join(view.here) or "nobody"
        return f"You say it at {view.location}. Listening: {listeners}."

    @tool(side_effects=effects, limits=limits)
    def tell(to: str, message: str) -> str:
        """Tell one agent something privately (they receive it next turn).

        Args:
            to: the agent's name.
            message: what you tell them.
        """
        _check_agent(ctx.current(), to)
        ctx.buffer("tell", to=to, message=message)
        return f"You tell {to}: {message}"

    @tool(side_effects=effects, limits=limits)
    def post(channel: str, message: str) -> str:
        """Post a message to a channel you belong to.

        Args:
            channel: the channel name.
            message: what you post.
        """
        view = ctx.current()
        if channel not in view.channels:
            raise ValueError(
                f"'channel': {channel!r} is not yours; expected one of {list(view.channels)}"
            )
        ctx.buffer("post", channel=channel, message=message)
        return f"Posted to {channel}."

    @tool(side_effects=effects, limits=limits)
    def move(location: str) -> str:
        """Walk to another place.

        Args:
            location: where to go.
        """
        view = ctx.current()
        if location not in view.locations:
            raise ValueError(
                f"'location': no place {location!r}; expected one of {list(view.locations)}"
            )
        if location == view.location:
            raise ValueError(f"'location': you are already at {location}")
        ctx.buffer("move", location=location)
        return f"You walk to {location}."

    @tool(side_effects=effects, limits=limits)
    def give(to: str, item: str, qty: int = 1) -> str:
        """Give some of your items to someone at your place.

        Args:
            to: who receives them.
            item: what to give (one of your inventory items).
            qty: how many.
        """
        view = ctx.current()
        _check_agent(view, to, present=True)
        have = view.inventory.get(item, 0)
        if qty < 1 or have < qty:
            raise ValueError(f"'qty': you have {have} {item}; expected 1..{have}")
        ctx.buffer("give", to=to, item=item, qty=qty)
        return f"You give {qty} {item} to {to}."

    def _trade(kind: str, to: str, item: str, price: int) -> str:
        view = ctx.current()
        _check_agent(view, to)
        if price < 0:
            raise ValueError(f"'price': got {price}; expected a number of coins >= 0")
        if kind == "offer" and view.inventory.get(item, 0) < 1:
            raise ValueError(f"'item': you have no {item} to sell; you have {view.inventory}")
        if kind == "bid" and view.inventory.get("coins", 0) < price:
            raise ValueError(f"'price': you have {view.inventory.get('coins', 0)} coins")
        ctx.buffer(kind, to=to, item=item, price=price)
        return f"{to} will see your {kind}: 1 {item} for {price} coins."

    @tool(side_effects=effects, limits=limits)
    def offer(to: str, item: str, price: int) -> str:
        """Offer to sell one item to someone for a price in coins.

        Args:
            to: the buyer.
            item: what you sell.
            price: coins you ask.
        """
        return _trade("offer", to, item, price)

    @tool(side_effects=effects, limits=limits)
    def bid(to: str, item: str, price: int) -> str:
        """Offer to buy one item from someone for a price in coins.

        Args:
            to: the seller.
            item: what you want.
            price: coins you pay.
        """
        return _trade("bid", to, item, price)

    @tool(side_effects=effects, limits=limits)
    def accept(offer_id: str) -> str:
        """Accept an open offer made to you (the trade happens at once).

        Args:
            offer_id: the offer's id, like o3.
        """
        view = ctx.current()
        ids = [o.id for o in view.offers_to_me]
        if offer_id not in ids:
            raise ValueError(f"'offer_id': no open offer {offer_id!r} to you; open: {ids}")
        ctx.buffer("accept", offer_id=offer_id)
        return f"You accept {offer_id}."

    @tool(side_effects=effects, limits=limits)
    def vote(option: str) -> str:
        """Cast (or change) your vote.

        Args:
            option: your choice.
        """
        view = ctx.current()
        if view.vote_options and option not in view.vote_options:
            raise ValueError(f"'option': {option!r}; expected one of {list(view.vote_options)}")
        ctx.buffer("vote", option=option)
        return f"You vote {option}."

    @tool(side_effects=SideEffect.NONE, limits=limits)
    def wait() -> str:
        """Do nothing this turn."""
        ctx.buffer("wait")
        return "You wait."

    table = {t.name: t for t in (speak, tell, post, move, give, offer, bid, accept, vote, wait)}
    return [table[n] for n in names]
