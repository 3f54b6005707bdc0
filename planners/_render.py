"""Text and Mermaid renderings of a task graph.

Owns ``render_text`` (an indented tree with status marks: subtasks sit under the task they
refine or replace, siblings in dependency order) and ``render_mermaid`` (a ``flowchart`` with
one class per status, refined tasks drawn as subgraphs). Never modifies the graph.
"""

from __future__ import annotations

from agentcore.planners._task import Task, TaskStatus
from agentcore.planners._view import GraphView

__all__ = ["render_mermaid", "render_text"]

_MARK = {
    TaskStatus.PENDING: "[ ]",
    TaskStatus.READY: "[>]",
    TaskStatus.RUNNING: "[~]",
    TaskStatus.DONE: "[x]",
    TaskStatus.FAILED: "[!]",
    TaskStatus.SKIPPED: "[-]",
}

_MERMAID_STYLE = {
    TaskStatus.PENDING: "fill:#eeeeee,stroke:#9e9e9e",
    TaskStatus.READY: "fill:#e3f2fd,stroke:#1e88e5",
    TaskStatus.RUNNING: "fill:#fff8e1,stroke:#f9a825",
    TaskStatus.DONE: "fill:#e8f5e9,stroke:#2e7d32",
    TaskStatus.FAILED: "fill:#ffebee,stroke:#c62828",
    TaskStatus.SKIPPED: "fill:#fafafa,stroke:#bdbdbd,stroke-dasharray:4",
}


def _short(text: str, limit: int = 60) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


class _Tree:
    """Parent -> children layout shared by both renderings, children in dependency order."""

    def __init__(self, graph: GraphView) -> None:
        self.live = {t.id: t for t in graph.tasks()}
        self.archived = {t.id: t for t in graph.archived()}
        known = self.live.keys() | self.archived.keys()
        self.children: dict[str | None, list[str]] = {}
        for tid, task in (*self.archived.items(), *self.live.items()):
            parent = task.parent if task.parent in known else None
            self.children.setdefault(parent, []).append(tid)
        rank = {tid: i for i, tid in enumerate(graph.topological_order())}
        self.rank: dict[str, float] = {}
        for tid in known:
            self._rank_of(tid, rank)
        for kids in self.children.values():
            kids.sort(key=lambda t: self.rank[t])

    def _rank_of(self, tid: str, rank: dict[str, int]) -> float:
        if tid not in self.rank:
            if tid in rank:
                self.rank[tid] = rank[tid]
            else:  # an archived task sits where its first descendant runs
                self.rank[tid] = float("inf")
                kids = self.children.get(tid, [])
                self.rank[tid] = min((self._rank_of(k, rank) for k in kids), default=float("inf"))
        return self.rank[tid]

    def task(self, tid: str) -> Task:
        return self.live.get(tid) or self.archived[tid]


def _line(task: Task, deps: list[str], archived: bool) -> str:
    if archived:
        head = f"[{'replanned' if task.status is TaskStatus.FAILED else 'refined'}]"
    else:
        head = _MARK[task.status]
    parts = [f"{head} {task.id}: {_short(task.goal)}"]
    if task.assignee is not None:
        parts.append(f"@{task.assignee}")
    if task.untrusted_source is not None:
        parts.append(f"(untrusted: from {_short(task.untrusted_source, 40)})")
    if deps:
        parts.append(f"(after {', '.join(deps)})")
    if not archived and task.status is TaskStatus.RUNNING:
        parts.append(f"attempt {task.attempts}")
    if task.status is TaskStatus.DONE and task.result is not None:
        parts.append(f"=> {_short(repr(task.result), 40)}")
    if task.status in (TaskStatus.FAILED, TaskStatus.SKIPPED) and task.error:
        parts.append(f"!! {_short(task.error, 60)}")
    return "  ".join(parts)


def render_text(graph: GraphView) -> str:
    """An indented tree: ``[x]`` done, ``[~]`` running, ``[>]`` ready, ``[ ]`` pending,
    ``[!]`` failed, ``[-]`` skipped; ``[refined]``/``[replanned]`` for replaced tasks."""
    tree = _Tree(graph)
    counts = graph.counts()
    done = counts[TaskStatus.DONE]
    lines = [f"Goal: {graph.goal or '(none)'}  [{done}/{len(graph)} done]"]

    def walk(parent: str | None, indent: str) -> None:
        kids = tree.children.get(parent, [])
        for i, tid in enumerate(kids):
            last = i == len(kids) - 1
            archived = tid not in tree.live
            deps = [] if archived else graph.dependencies(tid)
            branch = "└─ " if last else "├─ "
            lines.append(indent + branch + _line(tree.task(tid), deps, archived))
            walk(tid, indent + ("   " if last else "│  "))

    walk(None, "")
    return "\n".join(lines)


def _label(text: str) -> str:
    escaped = text.replace("&", "#amp;").replace('"', "#quot;")
    return escaped.replace("<", "#lt;").replace(">", "#gt;")


def render_mermaid(graph: GraphView) -> str:
    """A Mermaid ``flowchart TD``: node per task (class = status), edge per dependency."""
    tree = _Tree(graph)
    names = {tid: f"n{i}" for i, tid in enumerate([*tree.live, *tree.archived])}
    lines = ["flowchart TD"]

    def walk(parent: str | None, indent: str) -> None:
        for tid in tree.children.get(parent, []):
            task = tree.task(tid)
            label = _label(f"{task.id}: {_short(task.goal, 48)}")
            if tid in tree.live:
                lines.append(f'{indent}{names[tid]}["{label}"]:::{task.status.value}')
                walk(tid, indent)
            else:
                lines.append(f'{indent}subgraph {names[tid]} ["{label}"]')
                walk(tid, indent + "  ")
                lines.append(f"{indent}end")

    walk(None, "  ")
    for a, b in graph.edges():
        lines.append(f"  {names[a]} --> {names[b]}")
    for status, style in _MERMAID_STYLE.items():
        lines.append(f"  classDef {status.value} {style}")
    return "\n".join(lines)
