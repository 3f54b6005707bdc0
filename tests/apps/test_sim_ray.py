"""Simulations on a real Ray instance: the same scenario file gives, event for event, the
transcript the in-process runner gives, a run whose driver is killed -9 resumes on Ray
exactly where its last checkpoint left it, and a run that loses a worker process re-runs the
tick on fresh workers and ends as if undisturbed.

One Ray instance serves the module: started here on the loopback interface only (2 CPUs, no
dashboard, no usage reporting), joined by the runner in this process and by ``agentcore sim
--ray ADDRESS`` in a child process, and shut down at the end. The scripted stand-in model
keeps it free of weights; the module takes about a minute on two cores, most of it Ray
starting worker processes. Ray is part of the development setup, so this never skips.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from agentcore.apps.sim import BackendSpec, RunOptions, normalized, run_scenario

# Ray replaces 127.0.0.1 by the machine's address unless multi-node mode is off; it reads this
# when it is imported, and every Ray process of the module inherits it: all listen on loopback.
RAY_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}
os.environ.update(RAY_ENV)

import ray  # noqa: E402

# slow: Ray worker processes take about a minute to start here (no model weights involved)
pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

SCENARIO = """
name: ray-town
seed: 2
ticks: 8
world:
  locations: [cafe, park]
agents:
  - {name: ann, persona: host, location: cafe, goals: [invite everyone to the party]}
  - {name: bob, persona: guest, location: cafe}
  - {name: cid, persona: guest, location: park}
  - {name: dan, persona: guest, location: park}
events:
  - {tick: 0, kind: message, to: [ann], text: "Party at the cafe tonight."}
  - {tick: 4, kind: message, location: park, text: "It starts to rain in the park."}
metrics:
  - {name: knows_party, kind: heard, pattern: party}
"""
SCRIPTED = BackendSpec(kind="scripted")


@pytest.fixture(scope="module")
def ray_address() -> Iterator[str]:
    """A Ray instance of 2 CPUs on 127.0.0.1 for this module; yields its GCS address."""
    assert not ray.is_initialized()
    context = ray.init(
        num_cpus=2,
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        log_to_driver=False,
        configure_logging=False,
    )
    try:
        address = str(context.address_info["gcs_address"])
        assert address.startswith("127.0.0.1:")
        yield address
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ray-scenario") / "town.yaml"
    path.write_text(SCENARIO)
    return path


@pytest.fixture(scope="module")
def local_transcript(scenario: Path) -> list[dict[str, object]]:
    """What the in-process runner writes for the scenario (the reference)."""
    out = scenario.parent / "local"
    run_scenario(scenario, RunOptions(out=out, backend=SCRIPTED, summary=False))
    return normalized(out / "transcript.jsonl")


def test_ray_run_matches_the_local_run_event_for_event(
    ray_address: str, scenario: Path, local_transcript: list[dict[str, object]], tmp_path: Path
) -> None:
    out = tmp_path / "ray"
    options = RunOptions(
        out=out, backend=SCRIPTED, ray=True, ray_workers=2, ray_address=ray_address, summary=False
    )
    first = run_scenario(scenario, dataclasses.replace(options, stop_after=3))
    assert (first.ticks_done, first.agent_steps) == (3, 12)
    # stopping and resuming on Ray: the new workers restore their agents from the checkpoint
    rest = run_scenario(scenario, dataclasses.replace(options, resume=True))
    assert (rest.ticks_done, rest.ticks_this_run) == (8, 5)
    assert ray.is_initialized()  # a cluster the runner joined is left running
    got = normalized(out / "transcript.jsonl")
    assert len(got) == len(local_transcript) > 8 * 4
    assert got == local_transcript


def _next_tick(out: Path) -> int:
    try:
        return int(json.loads((out / "checkpoint.json").read_text())["next_tick"])
    except (FileNotFoundError, json.JSONDecodeError, KeyError):
        return -1


def test_driver_killed_mid_run_resumes_on_ray_exactly(
    ray_address: str, scenario: Path, local_transcript: list[dict[str, object]], tmp_path: Path
) -> None:
    out = tmp_path / "killed"
    log = tmp_path / "driver.log"
    with open(log, "wb") as err:
        driver = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "agentcore.apps.sim",
                str(scenario),
                "--model",
                "scripted:0.05",
                "--out",
                str(out),
                "--ray",
                ray_address,
            ],
            stdout=subprocess.DEVNULL,
            stderr=err,
            env={**os.environ, **RAY_ENV, "PYTHONHASHSEED": "0"},
        )
        try:
            deadline = time.monotonic() + 180
            while _next_tick(out) < 3:
                assert driver.poll() is None, log.read_text()
                assert time.monotonic() < deadline, f"no progress:\n{log.read_text()}"
                time.sleep(0.02)
            time.sleep(0.07)  # land inside the next tick
        finally:
            driver.send_signal(signal.SIGKILL)
            driver.wait(timeout=30)
    assert driver.returncode == -signal.SIGKILL
    assert 3 <= _next_tick(out) < 8  # killed before the end, checkpoint readable

    # Ray reclaims the dead driver's workers; a new driver resumes on the same cluster
    result = run_scenario(
        scenario,
        RunOptions(
            out=out, backend=SCRIPTED, ray=True, ray_address=ray_address, resume=True, summary=False
        ),
    )
    assert result.ticks_done == 8
    assert normalized(out / "transcript.jsonl") == local_transcript


def _ray_workers() -> list[psutil.Process]:
    """This machine's processes running a simulation worker actor (Ray names them by class)."""
    found = []
    for p in psutil.process_iter(["cmdline"]):
        cmd = " ".join(p.info["cmdline"] or [])
        if cmd.startswith("ray::_Worker"):
            found.append(p)
    return found


def test_a_worker_killed_mid_run_costs_a_tick_not_the_run(
    ray_address: str,
    scenario: Path,
    local_transcript: list[dict[str, object]],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A Ray worker process killed -9 while the run goes on: the tick it was in runs again
    from the last checkpoint on fresh workers, and the run ends with the transcript an
    undisturbed run writes."""
    out = tmp_path / "worker-killed"
    options = RunOptions(
        out=out,
        backend=BackendSpec(kind="scripted", delay_s=0.05),
        ray=True,
        ray_address=ray_address,
        summary=False,
    )
    done: list[object] = []
    runner = threading.Thread(
        target=lambda: done.append(_capture(lambda: run_scenario(scenario, options)))
    )
    with caplog.at_level(logging.WARNING, logger="agentcore.apps.sim._runner"):
        runner.start()
        deadline = time.monotonic() + 180
        while _next_tick(out) < 3:
            assert runner.is_alive(), done
            assert time.monotonic() < deadline, "no progress"
            time.sleep(0.02)
        time.sleep(0.07)  # land inside the next tick
        victims = _ray_workers()
        assert victims, "no Ray worker process found"
        victims[0].send_signal(signal.SIGKILL)
        runner.join(timeout=240)
    assert not runner.is_alive()
    (result,) = done
    assert not isinstance(result, BaseException), result
    assert result.ticks_done == 8  # type: ignore[attr-defined]
    assert any("was lost" in r.getMessage() for r in caplog.records), caplog.text
    assert normalized(out / "transcript.jsonl") == local_transcript


def _capture(fn: Callable[[], object]) -> object:
    try:
        return fn()
    except BaseException as e:  # handed to the test thread, which asserts on it
        return e
