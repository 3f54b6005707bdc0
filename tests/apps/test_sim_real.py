"""The example scenarios on the real default model (slow): each runs a couple of ticks with
short replies, and a real-model run stopped and resumed equals an uninterrupted one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agentcore.apps.sim import (
    Checkpoint,
    RunOptions,
    RunPaths,
    load_scenario,
    normalized,
    run_scenario,
)
from agentcore.apps.sim import read_transcript as read

EXAMPLES = Path(__file__).resolve().parents[2] / "apps" / "scenarios"
pytestmark = pytest.mark.slow


@pytest.mark.parametrize("name", ["town", "market", "debate"])
def test_example_runs_on_the_default_model(name: str, real_engine: Any, tmp_path: Path) -> None:
    scenario = load_scenario(EXAMPLES / f"{name}.yaml")
    out = tmp_path / name
    result = run_scenario(
        EXAMPLES / f"{name}.yaml", RunOptions(out=out, ticks=2, max_tokens=6), engine=real_engine
    )
    assert result.ticks_done == 2 and result.agent_steps == 2 * len(scenario.agents)
    lines = read(out / "transcript.jsonl")
    finals = [(line.tick, line.event.agent) for line in lines if line.event.type == "final"]
    names = [a.name for a in scenario.agents]
    assert finals == [(t, n) for t in (0, 1) for n in names]  # one turn each, in order
    acted = {line.event.actor for line in lines if line.event.type == "world" and line.event.actor}
    assert acted  # the model's turns changed the world (speech, moves, offers...)
    history = Checkpoint.load(RunPaths(out)).history
    assert [h["tick"] for h in history] == [0, 1]
    assert all(set(h) == {"tick", *(m.name for m in scenario.metrics)} for h in history)
    sessions = sorted(p.name for p in (out / "live" / "sessions").glob("*.session"))
    assert sessions == sorted(f"sim-{n}.session" for n in names)  # one session per agent
    assert (out / "summary.md").exists() and (out / "metrics.png").exists()


def test_real_model_run_is_deterministic_and_resumes_exactly(
    real_engine: Any, tmp_path: Path
) -> None:
    scenario = EXAMPLES / "market.yaml"
    full = RunOptions(out=tmp_path / "full", ticks=2, max_tokens=6, summary=False)
    run_scenario(scenario, full, engine=real_engine)
    cut = RunOptions(out=tmp_path / "cut", ticks=2, max_tokens=6, summary=False, stop_after=1)
    run_scenario(scenario, cut, engine=real_engine)
    resumed = RunOptions(out=tmp_path / "cut", ticks=2, max_tokens=6, summary=False, resume=True)
    run_scenario(scenario, resumed, engine=real_engine)
    assert normalized(tmp_path / "cut" / "transcript.jsonl") == normalized(
        tmp_path / "full" / "transcript.jsonl"
    )
