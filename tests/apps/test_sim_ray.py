"""The same scenario file on local Ray workers gives the transcript the in-process runner
gives (skipped when the optional ``ray`` extra is not installed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentcore.apps.sim import BackendSpec, RunOptions, normalized, run_scenario

ray = pytest.importorskip("ray")

SCENARIO = """
name: ray-town
seed: 2
ticks: 3
world:
  locations: [cafe, park]
agents:
  - {name: ann, persona: host, location: cafe}
  - {name: bob, persona: guest, location: cafe}
  - {name: cid, persona: guest, location: park}
events:
  - {tick: 0, kind: message, to: [ann], text: "Party at the cafe tonight."}
metrics:
  - {name: knows_party, kind: heard, pattern: party}
"""


@pytest.mark.slow  # starts a local Ray cluster (~10-20 s), no model weights
def test_ray_workers_reproduce_the_local_run(tmp_path: Path) -> None:
    scenario = tmp_path / "s.yaml"
    scenario.write_text(SCENARIO)
    spec = BackendSpec(kind="scripted")
    run_scenario(scenario, RunOptions(out=tmp_path / "local", backend=spec, summary=False))
    result = run_scenario(
        scenario,
        RunOptions(out=tmp_path / "ray", backend=spec, ray=True, ray_workers=2, stop_after=2),
    )
    assert result.ticks_done == 2
    # resume on Ray too: the workers restore their agents from the checkpoint
    run_scenario(scenario, RunOptions(out=tmp_path / "ray", backend=spec, ray=True, resume=True))
    assert not ray.is_initialized()  # the runner shut down the cluster it started
    assert normalized(tmp_path / "ray" / "transcript.jsonl") == normalized(
        tmp_path / "local" / "transcript.jsonl"
    )
