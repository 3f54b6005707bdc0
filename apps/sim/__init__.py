"""Scripted multi-agent simulations: many real agents, one shared model, one shared world.

A YAML scenario (:func:`load_scenario`, validated; errors name the line and field) declares
agents (persona, goals, world tools, policy), the world (locations, channels, who hears whom,
shared state), scripted events at ticks, the tick count, a seed and metrics.
:func:`run_scenario` runs it tick by tick: every agent is an :class:`agentcore.Agent` with its
own model session on one shared backend; it perceives what it heard (``Agent.observe``), takes
a turn (``Agent.stream``) and acts through world tools; the world applies the actions in a
fixed order, so a run is reproducible for a seed on one model and device. Every tick is
checkpointed (a killed run resumes exactly), written to ``transcript.jsonl`` and summarised
with metrics and a plot in ``summary.md``. ``--ray [ADDRESS]`` runs the agents on Ray workers
(a private local instance, or the cluster at ADDRESS; docs/scaling.md).

Never implements an agent (that is :mod:`agentcore.agent`) and never calls a model directly.
"""

from agentcore.apps.sim._backend import BackendSpec, ScriptedPolicy, make_backend
from agentcore.apps.sim._checkpoint import Checkpoint, RunPaths
from agentcore.apps.sim._cli import main
from agentcore.apps.sim._host import (
    LocalHost,
    SimAgent,
    TurnRequest,
    TurnResult,
    WorkerLost,
    build_agent,
    turn_prompt,
)
from agentcore.apps.sim._loader import Problem, ScenarioError, load_scenario, parse_scenario
from agentcore.apps.sim._metrics import MetricTracker
from agentcore.apps.sim._runner import RunOptions, SimResult, run_scenario
from agentcore.apps.sim._scenario import (
    WORLD_TOOLS,
    AgentSpec,
    ClockSpec,
    EventSpec,
    MetricSpec,
    ModelSpec,
    PolicySpec,
    Scenario,
    WorldSpec,
)
from agentcore.apps.sim._transcript import (
    SimEventAdapter,
    TickEvent,
    TranscriptLine,
    normalized,
    read_transcript,
)
from agentcore.apps.sim._world import Action, Offer, Percept, World, WorldEvent, WorldView

__all__ = [
    "WORLD_TOOLS",
    "Action",
    "AgentSpec",
    "BackendSpec",
    "Checkpoint",
    "ClockSpec",
    "EventSpec",
    "LocalHost",
    "MetricSpec",
    "MetricTracker",
    "ModelSpec",
    "Offer",
    "Percept",
    "PolicySpec",
    "Problem",
    "RunOptions",
    "RunPaths",
    "Scenario",
    "ScenarioError",
    "ScriptedPolicy",
    "SimAgent",
    "SimEventAdapter",
    "SimResult",
    "TickEvent",
    "TranscriptLine",
    "TurnRequest",
    "TurnResult",
    "WorkerLost",
    "World",
    "WorldEvent",
    "WorldSpec",
    "WorldView",
    "build_agent",
    "load_scenario",
    "main",
    "make_backend",
    "normalized",
    "parse_scenario",
    "read_transcript",
    "run_scenario",
    "turn_prompt",
]
