"""Text and Mermaid renderings, and graph diffs."""

from __future__ import annotations

import re

from agentcore.planners import Assignee, Task, TaskGraph


def graph() -> TaskGraph:
    g = TaskGraph('report on "bees"')
    g.add_task(Task(id="1", goal="find facts", assignee=Assignee(kind="tool", name="search")))
    g.add_task(Task(id="2", goal="write <draft>"), ["1"])
    g.add_task(Task(id="3", goal="publish"), ["2"])
    g.start("1")
    g.complete("1", "facts")
    g.start("2")
    g.fail("2", "writer crashed")
    return g


def test_text_tree_shows_status_deps_and_errors() -> None:
    text = graph().render_text()
    lines = text.splitlines()
    assert lines[0] == 'Goal: report on "bees"  [1/3 done]'
    assert lines[1].startswith("├─ [x] 1: find facts  @tool:search")
    assert "=> 'facts'" in lines[1]
    assert lines[2].startswith("├─ [!] 2: write <draft>  (after 1)")
    assert "!! writer crashed" in lines[2]
    assert lines[3].startswith("└─ [-] 3: publish  (after 2)")


def test_text_tree_nests_replacements() -> None:
    g = graph()
    sub = TaskGraph()
    sub.add_task(Task(id="a", goal="outline"))
    sub.add_task(Task(id="b", goal="write from outline"), ["a"])
    g.replace_task("2", sub)
    lines = g.render_text().splitlines()
    i = next(i for i, line in enumerate(lines) if "[replanned] 2: write <draft>" in line)
    assert lines[i + 1].startswith("│  ├─ [>] 2.a: outline  (after 1)")
    assert lines[i + 2].startswith("│  └─ [ ] 2.b: write from outline  (after 2.a)")
    assert lines[-1].startswith("└─ [ ] 3: publish  (after 2.b)")


def test_mermaid_nodes_edges_classes_and_escaping() -> None:
    g = graph()
    sub = TaskGraph()
    sub.add_task(Task(id="a", goal="outline"))
    g.replace_task("2", sub)
    text = g.render_mermaid()
    lines = text.splitlines()
    assert lines[0] == "flowchart TD"
    nodes = dict(re.findall(r'^\s+(n\d+)\["([^"]*)"\]', text, flags=re.M))
    assert "1: find facts" in nodes.values()
    assert any(
        line.strip().startswith("subgraph") and "write #lt;draft#gt;" in line for line in lines
    )
    by_label = {label: name for name, label in nodes.items()}
    assert f"  {by_label['1: find facts']} --> {by_label['2.a: outline']}" in lines
    assert f"  {by_label['2.a: outline']} --> {by_label['3: publish']}" in lines
    assert any(line.startswith("  classDef failed ") for line in lines)
    assert ":::done" in text and ":::ready" in text
    assert text.count("subgraph") == text.count("\n  end")


def test_diff_lists_changes() -> None:
    a = graph()
    b = a.copy()
    sub = TaskGraph()
    sub.add_task(Task(id="a", goal="outline"))
    b.replace_task("2", sub)
    d = a.diff(b)
    assert d.added == ["2.a"] and d.removed == ["2"]
    assert d.changed["3"]["status"] == ("skipped", "pending")
    assert ("2.a", "3") in d.added_edges and ("1", "2") in d.removed_edges
    summary = d.summary()
    assert "+ task 2.a" in summary and "- edge 1 -> 2" in summary
    assert a.diff(a.copy()).is_empty and a.diff(a.copy()).summary() == "no changes"


def test_diff_goal_change() -> None:
    a = graph()
    b = a.copy()
    b.goal = "other"
    assert b.diff(a).goal == ("other", a.goal)
