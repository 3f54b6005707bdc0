"""The tick loop: scripted events, perception, every agent's turn, world update, metrics,
transcript, checkpoint; and resuming a killed run exactly where its last checkpoint left it.

Owns :class:`RunOptions`, :class:`SimResult` and :func:`run_scenario`. One tick: the script's
events for the tick happen; each agent (scenario order) receives what it heard since its last
turn (``Agent.observe``) and takes a turn (``Agent.stream``) against the world as it was at
the start of the tick; the buffered actions are applied in agent order; the tick's events
are appended to the transcript and a checkpoint is written. Never talks to a model directly:
agents do, through the host (:mod:`apps.sim._host` in this process, :mod:`apps.sim._ray` on
Ray workers).
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import time
from pathlib import Path
from typing import Any, Protocol

from agentcore._atomic import atomic_write_bytes
from agentcore.apps.sim._backend import BackendSpec, make_backend
from agentcore.apps.sim._checkpoint import Checkpoint, RunPaths, scenario_digest
from agentcore.apps.sim._host import (
    LocalHost,
    TurnRequest,
    TurnResult,
    WorkerLost,
    build_agent,
    turn_prompt,
)
from agentcore.apps.sim._loader import parse_scenario
from agentcore.apps.sim._metrics import MetricTracker
from agentcore.apps.sim._report import write_summary
from agentcore.apps.sim._scenario import Scenario
from agentcore.apps.sim._transcript import TickEvent, TranscriptWriter
from agentcore.apps.sim._world import World
from agentcore.backends import ModelBackend
from agentcore.memory import LongTermMemory

__all__ = ["RunOptions", "SimResult", "run_scenario"]

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """How to run a scenario.

    ``ticks`` / ``seed`` / ``max_tokens`` override the file's values (the seed is fixed for a run: resuming
    with another is refused). ``workers``: agent turns that may run at once in this process.
    ``ray``: run agents on ``ray_workers`` Ray workers, each with its own model copy (or its
    own HTTP backend); ``ray_address``: the cluster to join (None: a private local instance).
    ``memory_url``: agents keep long-term memory on this chromadb server instead of an
    embedded store in the run folder (it is then not part of the tick checkpoints).
    ``stop_after``: end this invocation after that many ticks (the run stays resumable).
    ``worker_restarts``: when a worker process dies mid-tick (a Ray worker killed, its node
    lost), the tick is run again from the last checkpoint on fresh workers, at most this many
    times per invocation; the transcript is then the one an undisturbed run writes. Memories
    on a ``memory_url`` server are outside the checkpoints: a restarted tick may store its
    agents' memories of the lost attempt twice.
    """

    out: Path
    backend: BackendSpec = dataclasses.field(default_factory=BackendSpec)
    ticks: int | None = None
    seed: int | None = None
    max_tokens: int | None = None
    resume: bool = False
    workers: int = 1
    ray: bool = False
    ray_workers: int = 2
    ray_address: str | None = None
    memory_url: str | None = None
    stop_after: int | None = None
    summary: bool = True
    worker_restarts: int = 2


@dataclasses.dataclass(frozen=True)
class SimResult:
    """What a run did (this invocation and the run so far)."""

    out: Path
    ticks_done: int  # ticks completed in total (resumed runs include earlier ones)
    ticks_this_run: int
    agent_steps: int  # agent turns in this invocation
    elapsed_s: float  # wall time of this invocation's ticks
    metrics: dict[str, Any]  # values after the last tick
    transcript: Path
    summary: Path | None


class Host(Protocol):
    def run_turns(self, requests: list[TurnRequest]) -> list[TurnResult]: ...

    def close(self) -> None: ...


def _prepare(text: str, source: str, options: RunOptions) -> Scenario:
    scenario = parse_scenario(text, source)
    update: dict[str, Any] = {}
    if options.ticks is not None:
        if options.ticks < 1:
            raise ValueError(f"ticks={options.ticks}: expected an integer >= 1")
        update["ticks"] = options.ticks
    if options.seed is not None:
        update["seed"] = options.seed
    if options.max_tokens is not None:
        if options.max_tokens < 1:
            raise ValueError(f"max_tokens={options.max_tokens}: expected an integer >= 1")
        update["model"] = scenario.model.model_copy(update={"max_tokens": options.max_tokens})
    return scenario.model_copy(update=update) if update else scenario


def _build_host(
    scenario: Scenario,
    paths: RunPaths,
    options: RunOptions,
    backend: ModelBackend | None,
    engine: Any,
) -> Host:
    paths.agents.mkdir(parents=True, exist_ok=True)
    paths.sessions.mkdir(parents=True, exist_ok=True)
    spec = options.backend
    if spec.window is None and scenario.model.window is not None:
        spec = dataclasses.replace(spec, window=scenario.model.window)
    if options.ray:
        from agentcore.apps.sim._ray import RayHost

        return RayHost(
            scenario,
            spec,
            paths,
            workers=options.ray_workers,
            address=options.ray_address,
            memory_url=options.memory_url,
        )
    shared = backend if backend is not None else make_backend(spec, paths.sessions, engine)
    if options.memory_url is not None:
        store = LongTermMemory(url=options.memory_url)
    else:
        store = LongTermMemory(paths.live / "memory")
    agents = [
        build_agent(a, scenario, shared, paths.agent_home(a.name), i, store)
        for i, a in enumerate(scenario.agents)
    ]
    return LocalHost(
        agents, workers=options.workers, record_tokens=scenario.record_tokens, memory=store
    )


def run_scenario(
    scenario_file: str | Path,
    options: RunOptions,
    *,
    backend: ModelBackend | None = None,
    engine: Any = None,
) -> SimResult:
    """Run (or resume) the scenario in ``scenario_file``.

    ``backend`` replaces the one ``options.backend`` describes (a test fake, an HTTP backend
    already configured); its sessions are then not part of the checkpoints unless it
    persists them itself. ``engine``: an already loaded model for the local backend (its
    sessions still live in the run folder)."""
    paths = RunPaths(Path(options.out))
    source = Path(scenario_file)
    text = source.read_text(encoding="utf-8")
    if options.resume:
        if not paths.checkpoint.exists():
            raise FileNotFoundError(f"{paths.checkpoint} not found: there is no run to resume")
        ckpt = Checkpoint.load(paths)
        saved = paths.scenario.read_text(encoding="utf-8")
        if scenario_digest(saved) != scenario_digest(text):
            raise ValueError(
                f"{source} differs from the scenario this run started with ({paths.scenario}); "
                "resume with the same file"
            )
        scenario = _prepare(text, str(source), options)
        if options.seed is not None and options.seed != ckpt.seed:
            raise ValueError(
                f"seed={options.seed}: this run started with seed {ckpt.seed}; a run's seed "
                "cannot change when it is resumed"
            )
        scenario = scenario.model_copy(update={"seed": ckpt.seed})
        ckpt.restore_live(paths)
        TranscriptWriter.truncate(paths.transcript, ckpt.transcript_bytes)
    else:
        if paths.checkpoint.exists():
            raise FileExistsError(
                f"{paths.root} already holds a run; pass --resume to continue it or choose "
                "another --out"
            )
        scenario = _prepare(text, str(source), options)
        paths.root.mkdir(parents=True, exist_ok=True)
        for stale in (paths.live, paths.snapshots):
            if stale.exists():
                shutil.rmtree(stale)
        paths.transcript.unlink(missing_ok=True)
        atomic_write_bytes(paths.scenario, text.encode("utf-8"))
        ckpt = Checkpoint(
            scenario_digest=scenario_digest(text),
            seed=scenario.seed,
            next_tick=0,
            world=World.initial(scenario),
            metrics=MetricTracker(),
            transcript_bytes=0,
            snapshot=None,
        )
        paths.live.mkdir(parents=True, exist_ok=True)
        ckpt.save(paths)
    host = _build_host(scenario, paths, options, backend, engine)
    writer = TranscriptWriter(paths.transcript)
    world, tracker = ckpt.world, ckpt.metrics
    start, steps_total, elapsed = ckpt.next_tick, 0, 0.0
    end = scenario.ticks
    if options.stop_after is not None:
        end = min(end, start + options.stop_after)
    restarts = options.worker_restarts
    try:
        tick = start
        while tick < end:
            started = time.perf_counter()
            script_events = world.apply_script(scenario, tick)
            requests = []
            for a in scenario.agents:
                percepts = tuple(world.take_inbox(a.name))
                view = world.view(scenario, a.name)
                requests.append(
                    TurnRequest(
                        agent=a.name, percepts=percepts, view=view, prompt=turn_prompt(view)
                    )
                )
            try:
                results = host.run_turns(requests)
            except WorkerLost as lost:
                if restarts <= 0:
                    raise
                restarts -= 1
                log.warning("tick %d: %s; running it again from the checkpoint", tick, lost)
                host.close()
                # the world was advanced into this tick and live/ partly written by it: both
                # go back to the last checkpoint, then fresh workers restore their agents
                ckpt = Checkpoint.load(paths)
                ckpt.restore_live(paths)
                world, tracker = ckpt.world, ckpt.metrics
                host = _build_host(scenario, paths, options, backend, engine)
                continue
            actions = [action for r in results for action in r.actions]
            action_events = world.apply_actions(scenario, actions)
            tracker.observe(scenario, [*script_events, *action_events])
            values = tracker.values(scenario, world)
            duration = time.perf_counter() - started
            lines: list[dict[str, Any]] = [e.model_dump(mode="json") for e in script_events]
            for r in results:
                lines.extend(r.events)
            lines.extend(e.model_dump(mode="json") for e in action_events)
            tick_event = TickEvent(
                tick=tick,
                clock=scenario.clock.at(tick),
                metrics=values,
                agent_steps=len(results),
                model_calls=sum(r.steps for r in results),
                duration_s=duration,
            )
            lines.append(tick_event.model_dump(mode="json"))
            size = writer.write_tick(tick, lines)
            ckpt = Checkpoint(
                scenario_digest=ckpt.scenario_digest,
                seed=ckpt.seed,
                next_tick=tick + 1,
                world=world,
                metrics=tracker,
                history=[*ckpt.history, {"tick": tick, **values}],
                transcript_bytes=size,
                snapshot=None,
                agent_steps=ckpt.agent_steps + len(results),
                elapsed_s=ckpt.elapsed_s + duration,
            )
            ckpt.save(paths)
            steps_total += len(results)
            elapsed += duration
            tick += 1
    finally:
        writer.close()
        host.close()
    summary = None
    if options.summary:
        summary = write_summary(paths, scenario, ckpt, options.backend)
    return SimResult(
        out=paths.root,
        ticks_done=ckpt.next_tick,
        ticks_this_run=ckpt.next_tick - start,
        agent_steps=steps_total,
        elapsed_s=elapsed,
        metrics=ckpt.history[-1] if ckpt.history else {},
        transcript=paths.transcript,
        summary=summary,
    )
