"""What a tool declares about itself: its side effects and its run limits.

Owns :class:`SideEffect` (the vocabulary the safety filter reads to decide whether a call may
run) and :class:`ToolLimits` (per-tool timeout and result size, with named presets). Never
decides anything itself: a tool that declares ``writes`` is not blocked here, only labelled.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable
from typing import ClassVar

__all__ = ["SideEffect", "ToolLimits", "normalize_side_effects"]


class SideEffect(enum.StrEnum):
    """What running a tool may do to the world outside the agent.

    A tool carries a non-empty set of these. ``NONE`` stands alone (a pure function such as
    arithmetic or the clock); the others combine (an HTTP GET is ``{READS, NETWORK}``).
    """

    NONE = "none"
    READS = "reads"
    WRITES = "writes"
    NETWORK = "network"
    EXECUTES = "executes"


def normalize_side_effects(
    effects: SideEffect | str | Iterable[SideEffect | str] | None,
) -> frozenset[SideEffect]:
    """Turn what a caller wrote into the canonical non-empty set.

    ``None`` and the empty set mean ``{NONE}``; ``NONE`` mixed with a real effect is a
    contradiction and raises ``ValueError`` naming both.
    """
    if effects is None:
        return frozenset({SideEffect.NONE})
    items: Iterable[SideEffect | str] = (
        [effects] if isinstance(effects, SideEffect | str) else list(effects)
    )
    result: set[SideEffect] = set()
    for item in items:
        try:
            result.add(SideEffect(item))
        except ValueError:
            allowed = ", ".join(repr(e.value) for e in SideEffect)
            raise ValueError(f"side_effects: got {item!r}; expected one of {allowed}") from None
    if not result:
        return frozenset({SideEffect.NONE})
    if SideEffect.NONE in result and len(result) > 1:
        others = sorted(e.value for e in result if e is not SideEffect.NONE)
        raise ValueError(
            f"side_effects: got 'none' together with {others}; 'none' must stand alone"
        )
    return frozenset(result)


@dataclasses.dataclass(frozen=True)
class ToolLimits:
    """How long one call may run and how much of its result goes back to the model.

    ``timeout_s``: wall-clock limit of one call (a sync tool that overruns keeps its worker
    thread until it returns, but the caller gets a timeout result at once).
    ``max_result_chars``: the rendered result is cut to this many characters, with a marker
    saying how much was dropped, so one tool cannot flood a small model's context.
    """

    timeout_s: float = 30.0
    max_result_chars: int = 8_000

    FAST: ClassVar[ToolLimits]
    DEFAULT: ClassVar[ToolLimits]
    SLOW: ClassVar[ToolLimits]

    def __post_init__(self) -> None:
        if not self.timeout_s > 0:
            raise ValueError(f"timeout_s: got {self.timeout_s!r}; expected a number > 0")
        if self.max_result_chars < 64:
            raise ValueError(
                f"max_result_chars: got {self.max_result_chars!r}; expected an integer >= 64"
            )


ToolLimits.FAST = ToolLimits(timeout_s=5.0, max_result_chars=4_000)
ToolLimits.DEFAULT = ToolLimits()
ToolLimits.SLOW = ToolLimits(timeout_s=120.0, max_result_chars=16_000)
