"""A scripted ``JsonGenerator`` for unit tests.

Owns ``ScriptedJsonGenerator``: replays canned replies (strings, or functions of the request)
in order and records every request, so planner tests run without a model. Unlike the real
backend it does not enforce the schema: a test can feed it malformed output on purpose.
Never loads a model.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from agentcore.planners._errors import PlanError

__all__ = ["GeneratorCall", "ScriptedJsonGenerator"]

Reply = str | Callable[[list[dict[str, str]], dict[str, Any]], str]


@dataclass(frozen=True)
class GeneratorCall:
    """One request the generator received."""

    messages: list[dict[str, str]]
    schema: dict[str, Any]
    max_tokens: int


class ScriptedJsonGenerator:
    """Answers each ``generate_json`` call with the next scripted reply."""

    def __init__(self, replies: Iterable[Reply]) -> None:
        self._replies = list(replies)
        self.calls: list[GeneratorCall] = []

    @property
    def remaining(self) -> int:
        return len(self._replies) - len(self.calls)

    def generate_json(
        self, messages: list[dict[str, str]], schema: dict[str, Any], *, max_tokens: int = 512
    ) -> str:
        index = len(self.calls)
        self.calls.append(GeneratorCall([dict(m) for m in messages], schema, max_tokens))
        if index >= len(self._replies):
            raise PlanError(
                f"ScriptedJsonGenerator has {len(self._replies)} replies and got call #{index + 1}; "
                "script one more reply"
            )
        reply = self._replies[index]
        return reply if isinstance(reply, str) else reply(messages, schema)
