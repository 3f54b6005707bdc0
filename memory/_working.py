"""Working memory: the bounded, typed buffer an agent renders into each prompt.

Owns ``WorkingMemory`` (current goals, recent observations, scratch notes and items retrieved
from long-term memory, each with a salience in [0, 1]), its capacity rules (a full section
evicts its least salient, then oldest, item and reports it through ``on_evict``) and
``render``: the text that fits a token budget plus the items it had to drop. Token counts
come from a ``count_tokens`` callable (a cheap estimate by default; the agent passes its
real tokenizer). Never stores anything durably and never calls a model.

"Retrieved" is the word for what came back from long-term memory (``ItemKind.RETRIEVED``,
:meth:`WorkingMemory.set_retrieved`); "recall" is the model core's, for KV blocks.
``ItemKind.RECALLED`` and ``WorkingMemory.recall()`` are the deprecated old names.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from agentcore.memory._long_term import ScoredMemory
from agentcore.memory._records import MemoryRecord

__all__ = [
    "ItemKind",
    "Rendered",
    "WorkingItem",
    "WorkingMemory",
    "WorkingMemoryConfig",
    "estimate_tokens",
]


def estimate_tokens(text: str) -> int:
    """A cheap upper-leaning token estimate: max(4/3 per word, 1 per 4 characters)."""
    if not text:
        return 0
    return max(math.ceil(len(text.split()) * 4 / 3), math.ceil(len(text) / 4))


class ItemKind(StrEnum):
    """The sections of working memory, in the order they render. ``RECALLED`` (value
    ``"recalled"``) is the deprecated name of ``RETRIEVED``; the old value still reads."""

    GOAL = "goal"
    RETRIEVED = "retrieved"
    OBSERVATION = "observation"
    NOTE = "note"
    RECALLED = "retrieved"  # deprecated alias of RETRIEVED

    @classmethod
    def _missing_(cls, value: object) -> ItemKind | None:
        return cls.RETRIEVED if value == "recalled" else None


_HEADERS = {
    ItemKind.GOAL: "## Current goals",
    ItemKind.RETRIEVED: "## Retrieved from long-term memory",
    ItemKind.OBSERVATION: "## Recent observations",
    ItemKind.NOTE: "## Scratch notes",
}

_ORDER = {kind: i for i, kind in enumerate(ItemKind)}


@dataclass(frozen=True)
class WorkingItem:
    """One entry. ``seq`` orders items by arrival; ``memory_id`` links a retrieved record."""

    kind: ItemKind
    text: str
    salience: float
    seq: int
    source: str = ""
    memory_id: str | None = None
    time: datetime | None = None

    def line(self) -> str:
        if self.kind is ItemKind.OBSERVATION and self.source:
            return f"- [{self.source}] {self.text}"
        if self.kind is ItemKind.RETRIEVED and self.time is not None:
            return f"- ({self.source}, {self.time:%Y-%m-%d}) {self.text}"
        return f"- {self.text}"


@dataclass(frozen=True)
class Rendered:
    """What ``render`` produced: the prompt text, its token count, what fit and what did not."""

    text: str
    tokens: int
    included: tuple[WorkingItem, ...]
    dropped: tuple[WorkingItem, ...]


@dataclass(frozen=True)
class WorkingMemoryConfig:
    """Token budget for ``render`` and how many items each section keeps."""

    budget_tokens: int = 1024
    max_goals: int = 8
    max_recalled: int = 12
    max_observations: int = 32
    max_notes: int = 16

    def __post_init__(self) -> None:
        for name in ("budget_tokens", "max_goals", "max_recalled", "max_observations", "max_notes"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"WorkingMemoryConfig.{name}={value!r}: expected an integer >= 1")

    def capacity(self, kind: ItemKind) -> int:
        return {
            ItemKind.GOAL: self.max_goals,
            ItemKind.RETRIEVED: self.max_recalled,
            ItemKind.OBSERVATION: self.max_observations,
            ItemKind.NOTE: self.max_notes,
        }[kind]

    @classmethod
    def small(cls) -> WorkingMemoryConfig:
        """For a small model's short window (e.g. SmolLM2-135M with a 2K-token window)."""
        return cls(budget_tokens=384, max_goals=4, max_recalled=5, max_observations=12, max_notes=6)

    @classmethod
    def default(cls) -> WorkingMemoryConfig:
        return cls()

    @classmethod
    def large(cls) -> WorkingMemoryConfig:
        return cls(
            budget_tokens=4096, max_goals=16, max_recalled=32, max_observations=128, max_notes=64
        )


def _check_salience(salience: float) -> float:
    if not isinstance(salience, int | float) or not 0.0 <= float(salience) <= 1.0:
        raise ValueError(f"salience={salience!r}: expected a number between 0 and 1")
    return float(salience)


def _check_text(text: str) -> str:
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"text={text!r}: expected non-empty text")
    return " ".join(text.split())  # one item, one line


class WorkingMemory:
    """Goals, retrieved memories, observations and notes, rendered within a token budget.

    ``budget_tokens`` overrides the config's budget; ``count_tokens`` measures text (pass
    the model's tokenizer); ``on_evict`` hears about every item a full section pushes out
    (the learning layer can write those to long-term memory).
    """

    def __init__(
        self,
        config: WorkingMemoryConfig | None = None,
        *,
        budget_tokens: int | None = None,
        count_tokens: Callable[[str], int] = estimate_tokens,
        on_evict: Callable[[WorkingItem], None] | None = None,
    ) -> None:
        config = config or WorkingMemoryConfig.default()
        if budget_tokens is not None:
            config = replace(config, budget_tokens=budget_tokens)
        self.config = config
        self.count_tokens = count_tokens
        self.on_evict = on_evict
        self._items: dict[ItemKind, list[WorkingItem]] = {kind: [] for kind in ItemKind}
        self._seq = 0

    # -- adding --------------------------------------------------------------------------

    def _push(self, item: WorkingItem) -> WorkingItem:
        section = self._items[item.kind]
        section.append(item)
        while len(section) > self.config.capacity(item.kind):
            victim = min(section, key=lambda it: (it.salience, it.seq))
            section.remove(victim)
            if self.on_evict is not None:
                self.on_evict(victim)
        return item

    def _next(self) -> int:
        self._seq += 1
        return self._seq

    def add_goal(self, text: str, salience: float = 1.0) -> WorkingItem:
        """A current goal; goals render first and are the last to be dropped."""
        item = WorkingItem(
            ItemKind.GOAL, _check_text(text), _check_salience(salience), self._next()
        )
        return self._push(item)

    def observe(self, text: str, salience: float = 0.5, source: str = "") -> WorkingItem:
        """Something the agent perceived; ``source`` is shown (e.g. user, tool:search)."""
        item = WorkingItem(
            ItemKind.OBSERVATION,
            _check_text(text),
            _check_salience(salience),
            self._next(),
            source=source,
        )
        return self._push(item)

    def note(self, text: str, salience: float = 0.5) -> WorkingItem:
        """A scratch note the agent keeps for itself."""
        item = WorkingItem(
            ItemKind.NOTE, _check_text(text), _check_salience(salience), self._next()
        )
        return self._push(item)

    def set_retrieved(self, hits: Iterable[ScoredMemory | MemoryRecord]) -> list[WorkingItem]:
        """Replace the retrieved section with these long-term hits (best first); returns the
        items the section kept.

        Salience is the hit's rank position mapped to (0, 1]: the best hit gets 1.
        Replaced retrieved items are not reported to ``on_evict`` (they live on in long-term
        memory).
        """
        records = [h.record if isinstance(h, ScoredMemory) else h for h in hits]
        self._items[ItemKind.RETRIEVED] = []
        added = []
        n = len(records)
        for rank, record in enumerate(records):
            salience = 1.0 - rank / max(n, 1)
            added.append(
                self._push(
                    WorkingItem(
                        ItemKind.RETRIEVED,
                        _check_text(record.text),
                        salience,
                        self._next(),
                        source=record.kind.value,
                        memory_id=record.id,
                        time=record.time,
                    )
                )
            )
        return [item for item in added if item in self._items[ItemKind.RETRIEVED]]

    def recall(self, hits: Iterable[ScoredMemory | MemoryRecord]) -> list[WorkingItem]:
        """Deprecated: the old name of :meth:`set_retrieved`."""
        warnings.warn(
            "WorkingMemory.recall() is deprecated; use set_retrieved()",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.set_retrieved(hits)

    # -- removing ------------------------------------------------------------------------

    def complete_goal(self, goal: WorkingItem | str) -> bool:
        """Remove a goal (by item or by its text); returns whether it was there."""
        goals = self._items[ItemKind.GOAL]
        for item in goals:
            if item == goal or (isinstance(goal, str) and item.text == _check_text(goal)):
                goals.remove(item)
                return True
        return False

    def remove(self, item: WorkingItem) -> bool:
        section = self._items[item.kind]
        if item in section:
            section.remove(item)
            return True
        return False

    def clear(self, kind: ItemKind | str | None = None) -> None:
        kinds = list(ItemKind) if kind is None else [ItemKind(kind)]
        for k in kinds:
            self._items[k] = []

    def items(self, kind: ItemKind | str | None = None) -> tuple[WorkingItem, ...]:
        """Items in render order (section order, then arrival)."""
        kinds = list(ItemKind) if kind is None else [ItemKind(kind)]
        return tuple(item for k in kinds for item in self._items[k])

    def __len__(self) -> int:
        return sum(len(section) for section in self._items.values())

    # -- rendering -----------------------------------------------------------------------

    def render(self, budget_tokens: int | None = None) -> Rendered:
        """Render the sections that fit ``budget_tokens`` (the config's budget by default).

        Items are chosen greedily by priority: goals first, then everything else by salience,
        newest first among equals. An item that does not fit is dropped and smaller ones
        after it may still fit. Chosen items render in section order, oldest first, so the
        prompt reads chronologically. The rendered text never exceeds the budget as measured
        by ``count_tokens``.
        """
        budget = self.config.budget_tokens if budget_tokens is None else budget_tokens
        if budget < 0:
            raise ValueError(f"budget_tokens={budget!r}: expected an integer >= 0")
        ranked = sorted(
            self.items(),
            key=lambda it: (it.kind is not ItemKind.GOAL, -it.salience, -it.seq),
        )
        chosen: list[WorkingItem] = []
        dropped: list[WorkingItem] = []
        used = 0
        opened: set[ItemKind] = set()
        for item in ranked:
            cost = self.count_tokens(item.line() + "\n")
            if item.kind not in opened:
                cost += self.count_tokens(_HEADERS[item.kind] + "\n")
            if used + cost <= budget:
                chosen.append(item)
                opened.add(item.kind)
                used += cost
            else:
                dropped.append(item)
        # The sum of parts can differ from the whole under a real tokenizer: trim to fit.
        text = self._compose(chosen)
        tokens = self.count_tokens(text)
        while tokens > budget and chosen:
            dropped.append(chosen.pop())
            text = self._compose(chosen)
            tokens = self.count_tokens(text)
        dropped.sort(key=lambda it: it.seq)
        chosen.sort(key=lambda it: (_ORDER[it.kind], it.seq))
        return Rendered(text=text, tokens=tokens, included=tuple(chosen), dropped=tuple(dropped))

    @staticmethod
    def _compose(chosen: list[WorkingItem]) -> str:
        blocks = []
        for kind in ItemKind:
            lines = [it.line() for it in sorted(chosen, key=lambda it: it.seq) if it.kind is kind]
            if lines:
                blocks.append("\n".join([_HEADERS[kind], *lines]))
        return "\n\n".join(blocks)
