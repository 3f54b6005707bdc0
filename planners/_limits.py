"""Size and depth limits shared by every planner.

Owns ``PlannerLimits`` (a frozen dataclass with named presets). Never plans anything itself.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PlannerLimits"]


@dataclass(frozen=True)
class PlannerLimits:
    """How big and how deep a plan may grow.

    ``min_steps``/``max_steps``: tasks one model decomposition must/may produce (the plan
    schema's ``minItems``/``maxItems``; a one-step "plan" that restates the goal is no plan).
    ``max_depth``: refinement levels below the top-level plan; each replan of a failed task
    also nests one level, so this also bounds repeated replanning of the same task.
    ``max_tasks``: live tasks a graph may hold after a refinement.
    ``max_goal_chars``: longest step goal a model may write (the schema's ``maxLength``).
    ``max_attempts``: generations per decomposition; each retry tells the model what was wrong.
    ``max_tokens``: generation budget per attempt.
    """

    min_steps: int = 2
    max_steps: int = 6
    max_depth: int = 2
    max_tasks: int = 48
    max_goal_chars: int = 100
    max_attempts: int = 2
    max_tokens: int = 600

    def __post_init__(self) -> None:
        for name in (
            "min_steps",
            "max_steps",
            "max_tasks",
            "max_goal_chars",
            "max_attempts",
            "max_tokens",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"PlannerLimits.{name} is {value!r}, expected an integer >= 1")
        if not isinstance(self.max_depth, int) or self.max_depth < 0:
            raise ValueError(
                f"PlannerLimits.max_depth is {self.max_depth!r}, expected an integer >= 0"
            )
        if self.min_steps > self.max_steps:
            raise ValueError(
                f"PlannerLimits.min_steps is {self.min_steps}, expected <= max_steps ({self.max_steps})"
            )
        if self.max_tasks < self.max_steps:
            raise ValueError(
                f"PlannerLimits.max_tasks is {self.max_tasks}, expected >= max_steps ({self.max_steps})"
            )

    @classmethod
    def tiny_model(cls) -> PlannerLimits:
        """For a ~100M-parameter model: few short steps, one refinement level."""
        return cls(max_steps=5, max_depth=1, max_tasks=20, max_goal_chars=80, max_tokens=400)

    @classmethod
    def standard(cls) -> PlannerLimits:
        """The default: up to 6 steps per decomposition, two refinement levels."""
        return cls()

    @classmethod
    def large(cls) -> PlannerLimits:
        """For capable models and scripted scenarios: wide and deep plans."""
        return cls(max_steps=16, max_depth=4, max_tasks=256, max_goal_chars=200, max_tokens=2000)
