"""Simulation runner on the scripted stand-in model: reproducibility, world rules, metrics,
checkpoints, resume after a crash between transcript and checkpoint, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentcore.apps.sim import (
    BackendSpec,
    Checkpoint,
    RunOptions,
    RunPaths,
    ScriptedPolicy,
    World,
    main,
    normalized,
    parse_scenario,
    read_transcript,
    run_scenario,
)
from agentcore.apps.sim._world import Action
from agentcore.backends import FakeBackend, Reply

SCRIPTED = BackendSpec(kind="scripted")

TOWN = """
name: mini-town
seed: 5
ticks: 4
world:
  locations: [cafe, park]
agents:
  - name: ann
    persona: You host a party.
    goals: ["Tell everyone about the party."]
    location: cafe
    tools: [speak, move, wait]
  - name: bob
    persona: You like coffee.
    location: cafe
    tools: [speak, move, wait]
  - name: cid
    persona: You walk in the park.
    location: park
    tools: [speak, move, wait]
events:
  - {tick: 0, kind: message, to: [ann], text: "Your party is at the cafe at 17:00."}
metrics:
  - {name: knows_party, kind: heard, pattern: party}
  - {name: at_cafe, kind: at, location: cafe}
  - {name: speeches, kind: said}
"""


def _write(tmp_path: Path, text: str = TOWN, name: str = "scenario.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _run(scenario: Path, out: Path, **kw: object) -> None:
    options = RunOptions(out=out, backend=SCRIPTED, summary=False, **kw)  # type: ignore[arg-type]
    run_scenario(scenario, options)


def test_scripted_run_is_reproducible_event_for_event(tmp_path: Path) -> None:
    scenario = _write(tmp_path)
    _run(scenario, tmp_path / "a")
    _run(scenario, tmp_path / "b", workers=3)  # concurrency must not change the transcript
    a = normalized(tmp_path / "a" / "transcript.jsonl")
    b = normalized(tmp_path / "b" / "transcript.jsonl")
    assert a == b
    kinds = {line["event"]["type"] for line in a}
    assert {"observation", "tool_call", "tool_result", "final", "world", "tick"} <= kinds
    ticks = [line["event"] for line in a if line["event"]["type"] == "tick"]
    assert [t["tick"] for t in ticks] == [0, 1, 2, 3]
    # every agent takes one turn per tick, in scenario order
    finals = [line["event"]["agent"] for line in a if line["event"]["type"] == "final"]
    assert finals == ["ann", "bob", "cid"] * 4
    # the transcript reads back into typed events
    assert len(read_transcript(tmp_path / "a" / "transcript.jsonl")) == len(a)


def test_seed_override_is_kept_for_the_whole_run(tmp_path: Path) -> None:
    scenario = _write(tmp_path)
    _run(scenario, tmp_path / "a", stop_after=1)
    _run(scenario, tmp_path / "b", seed=6, stop_after=1)
    _run(scenario, tmp_path / "b", resume=True)  # no --seed: the run's own seed is kept
    seed_a = json.loads((tmp_path / "a" / "checkpoint.json").read_text())["seed"]
    seed_b = json.loads((tmp_path / "b" / "checkpoint.json").read_text())["seed"]
    assert (seed_a, seed_b) == (5, 6)


def test_news_spreads_by_speech_and_metrics_track_it(tmp_path: Path) -> None:
    scenario = _write(tmp_path)
    result = run_scenario(scenario, RunOptions(out=tmp_path / "r", backend=SCRIPTED))
    ckpt = Checkpoint.load(RunPaths(tmp_path / "r"))
    knows = [h["knows_party"] for h in ckpt.history]
    assert knows == sorted(knows)  # who knows only grows
    assert knows[0] == 2  # ann was told by the script and passed it on to bob at the cafe
    assert ckpt.metrics.who_heard("knows_party")[0] == "ann"
    world_events = [
        line.event
        for line in read_transcript(tmp_path / "r" / "transcript.jsonl")
        if line.event.type == "world"
    ]
    heard_party = {
        n for e in world_events if "party" in e.text.lower() for n in (e.actor, *e.heard_by) if n
    }
    assert knows[-1] == len(heard_party)
    summary = (tmp_path / "r" / "summary.md").read_text()
    assert "knows_party" in summary and "metrics.png" in summary
    assert (tmp_path / "r" / "metrics.png").stat().st_size > 1000
    assert result.ticks_done == 4 and result.agent_steps == 12


def test_agents_are_real_agents_sharing_one_backend(tmp_path: Path) -> None:
    scenario = _write(tmp_path)
    backend = FakeBackend(default=ScriptedPolicy())
    run_scenario(scenario, RunOptions(out=tmp_path / "r", summary=False), backend=backend)
    sessions = {r.session for r in backend.requests}
    assert sessions == {"sim-ann", "sim-bob", "sim-cid"}  # one session per agent
    for name in ("ann", "bob", "cid"):
        state = json.loads((tmp_path / "r" / "live" / "agents" / name / "agent.json").read_text())
        assert state["runs"] == 4 and state["session_id"] == f"sim-{name}"
    # what an agent heard reaches its model as an observation before its next turn
    said = [
        line.event
        for line in read_transcript(tmp_path / "r" / "transcript.jsonl")
        if line.event.type == "world" and line.event.kind == "said" and line.event.heard_by
    ]
    assert said, "the scripted agents never spoke to anyone"
    speech = said[0]
    listener = speech.heard_by[0]
    prompts = [
        str(m.get("content"))
        for r in backend.requests
        if r.session == f"sim-{listener}"
        for m in r.messages
        if m.get("role") == "user"
    ]
    assert any(f"{speech.actor} says: {speech.text}" in p for p in prompts[speech.tick + 1 :])


def test_crash_between_transcript_and_checkpoint_resumes_exactly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scenario = _write(tmp_path)
    _run(scenario, tmp_path / "full")
    real_save = Checkpoint.save

    def crash_on_tick_3(self: Checkpoint, paths: RunPaths) -> None:
        if self.next_tick == 3:
            raise KeyboardInterrupt("killed after the transcript was written")
        real_save(self, paths)

    monkeypatch.setattr(Checkpoint, "save", crash_on_tick_3)
    with pytest.raises(KeyboardInterrupt):
        _run(scenario, tmp_path / "cut")
    monkeypatch.setattr(Checkpoint, "save", real_save)
    cut = tmp_path / "cut"
    assert Checkpoint.load(RunPaths(cut)).next_tick == 2
    assert len(normalized(cut / "transcript.jsonl")) > 0
    _run(scenario, cut, resume=True)
    assert normalized(cut / "transcript.jsonl") == normalized(
        tmp_path / "full" / "transcript.jsonl"
    )


def test_stop_and_resume_in_steps_equals_one_run(tmp_path: Path) -> None:
    scenario = _write(tmp_path)
    _run(scenario, tmp_path / "full")
    _run(scenario, tmp_path / "steps", stop_after=1)
    _run(scenario, tmp_path / "steps", resume=True, stop_after=2)
    _run(scenario, tmp_path / "steps", resume=True)
    assert normalized(tmp_path / "steps" / "transcript.jsonl") == normalized(
        tmp_path / "full" / "transcript.jsonl"
    )


def test_resume_refuses_a_changed_scenario_or_seed(tmp_path: Path) -> None:
    scenario = _write(tmp_path)
    _run(scenario, tmp_path / "r", stop_after=1)
    with pytest.raises(FileExistsError, match="--resume"):
        _run(scenario, tmp_path / "r")
    with pytest.raises(ValueError, match="seed"):
        _run(scenario, tmp_path / "r", resume=True, seed=99)
    other = _write(tmp_path, TOWN.replace("seed: 5", "seed: 8"), "other.yaml")
    with pytest.raises(ValueError, match="differs"):
        _run(other, tmp_path / "r", resume=True)
    with pytest.raises(FileNotFoundError, match="no run to resume"):
        _run(scenario, tmp_path / "none", resume=True)


def test_tools_change_the_world_only_after_the_tick(tmp_path: Path) -> None:
    text = """
name: trade
ticks: 2
world: {locations: [shop]}
agents:
  - {name: sue, persona: seller, tools: [offer, accept, wait], inventory: {lamp: 1, coins: 0}}
  - {name: max, persona: buyer, tools: [bid, accept, wait], inventory: {coins: 20}}
metrics:
  - {name: deals, kind: deals}
  - {name: price, kind: state, key: last_price}
  - {name: sue_coins, kind: inventory, agent: sue, item: coins}
"""
    scenario = _write(tmp_path, text)
    script = [
        Reply.call("offer", to="max", item="lamp", price=12),  # tick 0: sue
        Reply.call("wait"),  # tick 0: max (the offer is not visible yet)
        Reply.call("wait"),  # tick 1: sue
        Reply.call("accept", offer_id="o1"),  # tick 1: max
    ]
    backend = FakeBackend(script, default="ok")
    run_scenario(scenario, RunOptions(out=tmp_path / "r", summary=False), backend=backend)
    history = Checkpoint.load(RunPaths(tmp_path / "r")).history
    assert history[0] == {"tick": 0, "deals": 0, "price": None, "sue_coins": 0}
    assert history[1] == {"tick": 1, "deals": 1, "price": 12, "sue_coins": 12}
    world = Checkpoint.load(RunPaths(tmp_path / "r")).world
    assert world.inventories == {"sue": {"lamp": 0, "coins": 12}, "max": {"coins": 8, "lamp": 1}}
    max_prompt_tick1 = [
        str(m["content"])
        for r in backend.requests
        if r.session == "sim-max"
        for m in r.messages
        if m.get("role") == "user"
    ][-1]
    assert "Offers to you: o1 (sue sells 1 lamp for 12)" in max_prompt_tick1


def test_a_tool_refuses_what_the_view_does_not_allow(tmp_path: Path) -> None:
    text = """
name: walk
ticks: 1
world: {locations: [a, b]}
agents:
  - {name: eve, persona: walker, tools: [move, give], location: a, inventory: {coins: 1}}
  - {name: fay, persona: sitter, tools: [wait], location: b}
"""
    scenario = _write(tmp_path, text)
    backend = FakeBackend([Reply.call("move", location="moon"), Reply.call("wait")], default="ok")
    run_scenario(scenario, RunOptions(out=tmp_path / "r", summary=False), backend=backend)
    results = [
        line.event
        for line in read_transcript(tmp_path / "r" / "transcript.jsonl")
        if line.event.type == "tool_result"
    ]
    assert not results[0].ok and "no place 'moon'" in results[0].output
    assert Checkpoint.load(RunPaths(tmp_path / "r")).world.where["eve"] == "a"


def test_world_applies_actions_in_agent_order() -> None:
    scenario = parse_scenario(
        """
name: order
ticks: 1
world: {locations: [x]}
agents:
  - {name: a1, persona: p, inventory: {coins: 5}, tools: [give, accept]}
  - {name: a2, persona: p, tools: [give]}
"""
    )
    world = World.initial(scenario)
    events = world.apply_actions(
        scenario,
        [
            Action(agent="a1", tool="give", arguments={"to": "a2", "item": "coins", "qty": 5}),
            Action(agent="a2", tool="give", arguments={"to": "a1", "item": "coins", "qty": 5}),
            Action(agent="a1", tool="accept", arguments={"offer_id": "o9"}),
        ],
    )
    assert [e.ok for e in events] == [True, True, False]
    assert world.inventories == {"a1": {"coins": 5}, "a2": {"coins": 0}}
    assert world.inbox["a1"][-1].content.startswith("Your accept failed")


def test_cli_runs_resumes_and_reports_bad_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario = _write(tmp_path)
    out = tmp_path / "run"
    args = [str(scenario), "--model", "scripted", "--out", str(out), "--ticks", "2"]
    assert main(args) == 0
    assert "2 ticks done" in capsys.readouterr().out
    assert main([*args[:-1], "3", "--resume"]) == 0
    assert "3 ticks done (1 now)" in capsys.readouterr().out
    text = TOWN.replace("location: park", "location: moon")
    bad = _write(tmp_path, text, "bad.yaml")
    line = text.splitlines().index("    location: moon") + 1
    assert main([str(bad), "--model", "scripted", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert f"bad.yaml:{line}:15: agents[2].location: unknown location 'moon'" in err
