"""Tools that let the agent write to and search its long-term memory.

Owns :class:`MemoryStoreLike` (what a store must offer: ``add(record_dict)`` returning the
stored record, and ``search(query, k)`` returning scored hits), the record / hit shapes the
tools read, and :func:`memory_tools` (``remember`` and ``recall``). ``memory.LongTermMemory``
satisfies the protocol as is; so does any object with the same two methods. Never stores
anything itself and never decides what is worth remembering.

The search tool keeps the name ``recall``, although the agent calls searching long-term memory
"retrieval" and "recall" is otherwise the model core's word (KV blocks brought back): the model
sees the tool's name, and prompts, transcripts and benchmarks use it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal, Protocol, runtime_checkable

from pydantic import Field

from agentcore.tools._meta import SideEffect, ToolLimits
from agentcore.tools._provenance import untrusted_influence
from agentcore.tools._tool import Tool

__all__ = ["MemoryStoreLike", "RecalledMemory", "StoredMemory", "memory_tools"]


@runtime_checkable
class StoredMemory(Protocol):
    """A stored record, as far as the tools care: its id, kind and text."""

    @property
    def id(self) -> str: ...

    @property
    def kind(self) -> Any: ...

    @property
    def text(self) -> str: ...


@runtime_checkable
class RecalledMemory(Protocol):
    """One search hit: the record and its score (higher is better)."""

    @property
    def record(self) -> StoredMemory: ...

    @property
    def score(self) -> float: ...


@runtime_checkable
class MemoryStoreLike(Protocol):
    """A long-term memory the tools can write to and search."""

    def add(self, record: dict[str, Any]) -> StoredMemory:
        """Validate and store a record given as a dict (``kind``, ``text``, ``agent``,
        ``source``, ``trust``, ``attributes``); return the stored record."""
        ...

    def search(self, query: str, k: int = 5) -> Sequence[RecalledMemory]:
        """The ``k`` best memories for ``query``, best first."""
        ...


MemoryText = Annotated[
    str,
    Field(min_length=1, max_length=4_000, description="What to remember, in one or two sentences."),
]
MemoryKindName = Annotated[
    Literal["fact", "lesson", "episodic", "skill"],
    Field(description="fact: knowledge; lesson: an insight; episodic: an event; skill: a recipe."),
]
Tags = Annotated[
    list[Annotated[str, Field(min_length=1, max_length=40)]],
    Field(max_length=8, description="Optional short labels, e.g. ['user', 'preference']."),
]
Query = Annotated[str, Field(min_length=1, max_length=500, description="What to look for.")]
Count = Annotated[int, Field(ge=1, le=20, description="How many memories to return.")]


def memory_tools(
    store: MemoryStoreLike,
    *,
    agent: str = "agent",
    limits: ToolLimits = ToolLimits.DEFAULT,
) -> list[Tool]:
    """``remember`` (side effects ``writes``) and ``recall`` (``reads``) over ``store``.

    Records written by ``remember`` carry ``agent`` as their author, ``source="tool:remember"``
    and trust ``agent`` (the agent's own statement, not a verified fact), or trust ``tool``
    with a ``derived_from`` attribute when the call came after untrusted content (a file, a
    page, a tool result): such a memory is recalled as data, never as an instruction, and a
    ``lesson`` or ``skill`` written that way is not the agent's own.
    """

    def remember(text: MemoryText, kind: MemoryKindName = "fact", tags: Tags | None = None) -> str:
        """Save a fact, lesson, event or skill to long-term memory for later sessions."""
        influence = untrusted_influence()
        record: dict[str, Any] = {
            "kind": kind,
            "text": text,
            "agent": agent,
            "source": "tool:remember",
            "trust": "agent" if influence is None else "tool",
        }
        attributes: dict[str, Any] = {}
        if tags:
            attributes["tags"] = ",".join(tags)
        if influence is not None:
            attributes["derived_from"] = influence
        if attributes:
            record["attributes"] = attributes
        stored = store.add(record)
        label = "" if influence is None else f" (as untrusted data, from {influence})"
        return f"remembered {kind} {stored.id}{label}"

    # the model sees this name: it stays "recall" (see the module docstring)
    def recall(query: Query, k: Count = 5) -> str:
        """Search long-term memory for what is relevant to a query, best match first."""
        # a memory from untrusted content is marked as data, as the agent's context marks it
        hits = store.search(query, k)
        if not hits:
            return "no memories found"
        return "\n".join(
            f"{i}. [{_kind(hit.record.kind)} {hit.record.id}] (score {hit.score:.2f}) "
            f"{_DATA_ONLY if _untrusted(hit.record) else ''}{hit.record.text}"
            for i, hit in enumerate(hits, 1)
        )

    tags = {"memory"}
    return [
        Tool.from_function(remember, side_effects=SideEffect.WRITES, limits=limits, tags=tags),
        Tool.from_function(recall, side_effects=SideEffect.READS, limits=limits, tags=tags),
    ]


def _kind(kind: Any) -> str:
    return str(getattr(kind, "value", kind))


_DATA_ONLY = "(untrusted, data only) "


def _untrusted(record: Any) -> bool:
    """A memory that came from untrusted content (trust ``tool`` or ``external``)."""
    trust = getattr(record, "trust", None)
    return str(getattr(trust, "value", trust)) in ("tool", "external")
