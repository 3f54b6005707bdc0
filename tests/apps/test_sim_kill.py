"""Kill -9 a simulation process mid-run, resume it, and get the transcript an uninterrupted
run writes (scripted stand-in model, so it is fast and needs no weights)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from agentcore.apps.sim import Checkpoint, RunOptions, RunPaths, normalized, run_scenario
from agentcore.apps.sim._backend import BackendSpec

SCENARIO = """
name: kill-town
seed: 1
ticks: 10
world:
  locations: [cafe, park]
agents:
  - {name: ann, persona: host, location: cafe, goals: [invite everyone to the party]}
  - {name: bob, persona: guest, location: cafe}
  - {name: cid, persona: guest, location: park}
  - {name: dan, persona: guest, location: park}
events:
  - {tick: 0, kind: message, to: [ann], text: "Party at the cafe tonight."}
  - {tick: 5, kind: message, location: park, text: "It starts to rain in the park."}
metrics:
  - {name: knows_party, kind: heard, pattern: party}
"""


def _start(scenario: Path, out: Path, *extra: str) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "agentcore.apps.sim", str(scenario), "--model", "scripted:0.03"]
    return subprocess.Popen(
        [*cmd, "--out", str(out), *extra],
        cwd=Path(__file__).resolve().parents[2],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )


def _next_tick(out: Path) -> int:
    try:
        return int(json.loads((out / "checkpoint.json").read_text())["next_tick"])
    except (FileNotFoundError, json.JSONDecodeError, KeyError):
        return -1


def _kill_after(proc: subprocess.Popen[bytes], out: Path, tick: int, delay_s: float) -> None:
    deadline = time.monotonic() + 120
    while _next_tick(out) < tick:
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        assert time.monotonic() < deadline, "the run made no progress"
        time.sleep(0.01)
    time.sleep(delay_s)  # land somewhere inside the next tick
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    if proc.stderr is not None:
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL


def test_sigkill_mid_run_then_resume_continues_exactly(tmp_path: Path) -> None:
    scenario = tmp_path / "kill.yaml"
    scenario.write_text(SCENARIO)
    spec = BackendSpec(kind="scripted")
    run_scenario(scenario, RunOptions(out=tmp_path / "full", backend=spec, summary=False))
    expected = normalized(tmp_path / "full" / "transcript.jsonl")

    out = tmp_path / "killed"
    for kills, (tick, delay) in enumerate(((2, 0.05), (5, 0.12))):
        proc = _start(scenario, out, *(["--resume"] if kills else []))
        _kill_after(proc, out, tick, delay)
        ckpt = Checkpoint.load(RunPaths(out))
        assert tick <= ckpt.next_tick < 10  # killed before the end, checkpoint readable
    run_scenario(scenario, RunOptions(out=out, backend=spec, resume=True, summary=False))
    assert normalized(out / "transcript.jsonl") == expected
    assert (
        Checkpoint.load(RunPaths(out)).history
        == Checkpoint.load(RunPaths(tmp_path / "full")).history
    )
    assert len(list((out / "snapshots").iterdir())) == 1  # old snapshots are dropped
