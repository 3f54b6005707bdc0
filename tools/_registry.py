"""The set of tools an agent can see, by name.

Owns :class:`ToolRegistry`: registration (tools, typed functions, pydantic models), lookup,
permitted subsets, export (JSON Schema, OpenAI ``tools`` entries) and dispatch of a call by
name to the right tool. Never decides whether a call is allowed: the safety filter passes the
permitted names in, and the registry only narrows to them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from pydantic import BaseModel

from agentcore.tools._errors import ToolDefinitionError, ToolNotFoundError
from agentcore.tools._meta import SideEffect
from agentcore.tools._result import ToolResult
from agentcore.tools._tool import Tool

__all__ = ["ToolRegistry"]


class ToolRegistry:
    """Tools by name, in registration order.

    ``register`` accepts a :class:`Tool` or a typed function (turned into one with
    :meth:`Tool.from_function`); names are unique. ``subset(names)`` gives the registry the
    model may use this turn; the grammar, the prompt and the dispatcher all take a registry, so
    passing the subset is how "only permitted tools" is enforced end to end.
    """

    def __init__(self, tools: Iterable[Tool | Callable[..., Any]] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        for item in tools:
            self.register(item)

    # -- registration ------------------------------------------------------------------------

    def register(self, item: Tool | Callable[..., Any], *, replace: bool = False) -> Tool:
        """Add a tool (or a typed function, made into one); duplicate names raise unless
        ``replace``. Returns the registered :class:`Tool`."""
        new = item if isinstance(item, Tool) else Tool.from_function(item)
        if new.name in self._tools and not replace:
            raise ToolDefinitionError(
                f"a tool named {new.name!r} is already registered; pass replace=True or rename it"
            )
        self._tools[new.name] = new
        return new

    def register_model(
        self, model: type[BaseModel], fn: Callable[[Any], Any], **options: Any
    ) -> Tool:
        """Register :meth:`Tool.from_model(model, fn, **options) <Tool.from_model>`."""
        return self.register(Tool.from_model(model, fn, **options))

    def extend(self, items: Iterable[Tool | Callable[..., Any]]) -> None:
        for item in items:
            self.register(item)

    def remove(self, name: str) -> Tool:
        try:
            return self._tools.pop(name)
        except KeyError:
            raise ToolNotFoundError(name, self.names()) from None

    # -- lookup ------------------------------------------------------------------------------

    def get(self, name: str) -> Tool:
        try:
            return self._tools[name]
        except KeyError:
            raise ToolNotFoundError(name, self.names()) from None

    def names(self) -> list[str]:
        return list(self._tools)

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __iter__(self) -> Iterator[Tool]:
        return iter(list(self._tools.values()))

    def __len__(self) -> int:
        return len(self._tools)

    def __repr__(self) -> str:
        return f"ToolRegistry({self.names()})"

    def subset(self, names: Iterable[str] | None) -> ToolRegistry:
        """A new registry with only ``names`` (``None``: all of them), in this registry's order.

        An unknown name raises, so a typo in a permission list is caught, not ignored.
        """
        if names is None:
            return ToolRegistry(self._tools.values())
        wanted = set(names)
        for name in wanted:
            if name not in self._tools:
                raise ToolNotFoundError(name, self.names())
        return ToolRegistry(t for t in self._tools.values() if t.name in wanted)

    def filter(self, predicate: Callable[[Tool], bool]) -> ToolRegistry:
        """A new registry with the tools for which ``predicate`` is true."""
        return ToolRegistry(t for t in self._tools.values() if predicate(t))

    def without_side_effects(self, *effects: SideEffect | str) -> ToolRegistry:
        """A new registry without tools declaring any of ``effects`` (e.g. ``"writes"``)."""
        banned = {SideEffect(e) for e in effects}
        return self.filter(lambda t: not (t.side_effects & banned))

    # -- export ------------------------------------------------------------------------------

    def json_schemas(self) -> dict[str, dict[str, Any]]:
        """Tool name -> JSON Schema of its arguments."""
        return {name: t.parameters for name, t in self._tools.items()}

    def openai_tools(self) -> list[dict[str, Any]]:
        """The OpenAI chat-completions ``tools`` list for every registered tool."""
        return [t.openai_tool() for t in self._tools.values()]

    # -- dispatch ----------------------------------------------------------------------------

    def validate(self, name: str, arguments: Mapping[str, Any] | str | None) -> Any:
        """Check a call without running it; raises ToolNotFoundError / ToolArgumentError."""
        return self.get(name).validate(arguments)

    async def call(self, name: str, arguments: Mapping[str, Any] | str | None) -> ToolResult:
        """Run one call. Never raises for a bad call: an unknown tool, invalid arguments, a
        timeout or a failure inside the tool come back as a failed result the model can read."""
        if name not in self._tools:
            error = ToolNotFoundError(name, self.names())
            args = dict(arguments) if isinstance(arguments, Mapping) else {}
            return ToolResult.failure(name, args, error, max_chars=4_000)
        return await self._tools[name].run(arguments)

    def call_sync(self, name: str, arguments: Mapping[str, Any] | str | None) -> ToolResult:
        """:meth:`call` for code without an event loop."""
        if name not in self._tools:
            error = ToolNotFoundError(name, self.names())
            args = dict(arguments) if isinstance(arguments, Mapping) else {}
            return ToolResult.failure(name, args, error, max_chars=4_000)
        return self._tools[name].run_sync(arguments)
