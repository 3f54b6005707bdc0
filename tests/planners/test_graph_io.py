"""TaskGraph JSON (node-link): round trips, atomic saves, and clear errors on bad input."""

from __future__ import annotations

import json
import os
from pathlib import Path

import networkx as nx
import pytest

from agentcore.planners import (
    GRAPH_FORMAT,
    Assignee,
    CycleError,
    PlanValidationError,
    Task,
    TaskGraph,
    TaskStatus,
)


def busy_graph() -> TaskGraph:
    g = TaskGraph("ship release")
    g.add_task(Task(id="build", goal="build wheels", assignee=Assignee(kind="tool", name="shell")))
    g.add_task(Task(id="test", goal="run tests", inputs={"marker": "not slow"}), ["build"])
    g.add_task(Task(id="docs", goal="build docs"), ["build"])
    g.add_task(Task(id="upload", goal="upload", max_attempts=3), ["test", "docs"])
    g.add_task(Task(id="notes", goal="write notes"))
    g.start("build")
    g.complete("build", {"files": ["a.whl"]})
    g.start("docs")
    g.fail("docs", "sphinx crashed")
    g.notes.append("made by hand")
    return g


def test_node_link_shape() -> None:
    data = busy_graph().to_dict()
    assert data["graph"]["format"] == GRAPH_FORMAT
    assert {"directed", "multigraph", "nodes", "edges"} <= data.keys()
    assert {"source": "build", "target": "test"} in data["edges"]
    node = next(n for n in data["nodes"] if n["id"] == "build")
    assert node["status"] == "done" and node["result"] == {"files": ["a.whl"]}
    # the same data loads in plain networkx
    plain = nx.node_link_graph(data, directed=True, multigraph=False, edges="edges")
    assert plain.has_edge("docs", "upload")


def test_round_trip_keeps_everything() -> None:
    g = busy_graph()
    back = TaskGraph.from_json(g.to_json())
    assert back == g
    assert back.diff(g).is_empty
    assert back.ready_ids() == g.ready_ids()
    assert back.task("upload").status is TaskStatus.SKIPPED
    assert back.notes == ["made by hand"]
    back.start("notes")  # and it still runs
    back.complete("notes")


def test_round_trip_keeps_archive() -> None:
    g = busy_graph()
    sub = TaskGraph()
    sub.add_task(Task(id="1", goal="retry docs build"))
    g.replace_task("docs", sub)
    back = TaskGraph.from_json(g.to_json())
    assert [t.id for t in back.archived()] == ["docs"]
    assert back.task("docs.1").parent == "docs"


def test_save_and_load(tmp_path: Path) -> None:
    g = busy_graph()
    path = g.save(tmp_path / "plans" / "release.json")
    assert TaskGraph.load(path) == g
    assert [p.name for p in path.parent.iterdir()] == ["release.json"]


def test_crash_mid_save_keeps_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "g.json"
    old = busy_graph()
    old.save(path)
    new = busy_graph()
    new.start("notes")

    def crash(src: str, dst: str) -> None:
        raise OSError("power cut")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="power cut"):
        new.save(path)
    assert TaskGraph.load(path) == old
    assert [p.name for p in tmp_path.iterdir()] == ["g.json"]  # no temp file left behind


def test_wrong_format_is_named() -> None:
    data = busy_graph().to_dict()
    data["graph"]["format"] = "other/9"
    with pytest.raises(PlanValidationError, match=r"graph\.format.*'other/9'"):
        TaskGraph.from_dict(data)


def test_bad_json() -> None:
    with pytest.raises(PlanValidationError, match="does not parse"):
        TaskGraph.from_json("{nope")


def test_invalid_task_field_is_named() -> None:
    data = busy_graph().to_dict()
    data["nodes"][0]["status"] = "sleeping"
    with pytest.raises(PlanValidationError, match="status"):
        TaskGraph.from_dict(data)


def test_cycle_in_saved_graph_is_named() -> None:
    data = busy_graph().to_dict()
    data["edges"].append({"source": "upload", "target": "build"})
    with pytest.raises(CycleError, match="saved graph") as info:
        TaskGraph.from_dict(data)
    assert info.value.cycle[0] == info.value.cycle[-1]


def test_inconsistent_status_rejected() -> None:
    data = busy_graph().to_dict()
    node = next(n for n in data["nodes"] if n["id"] == "upload")
    node["status"] = "done"
    with pytest.raises(PlanValidationError, match="'upload' has status 'done'"):
        TaskGraph.from_dict(data)


def test_derived_statuses_recomputed_on_load() -> None:
    data = busy_graph().to_dict()
    node = next(n for n in data["nodes"] if n["id"] == "test")
    node["status"] = "pending"  # it is in fact ready: its only dependency is done
    back = TaskGraph.from_dict(json.loads(json.dumps(data)))
    assert back.task("test").status is TaskStatus.READY
    assert "test" in back.ready_ids()


def test_non_json_result_is_named_on_save() -> None:
    g = TaskGraph()
    g.add_task(Task(id="x", goal="x"))
    g.start("x")
    g.complete("x", object())
    with pytest.raises(PlanValidationError, match="task 'x' cannot be saved"):
        g.to_json()
