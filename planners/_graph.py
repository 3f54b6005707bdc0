"""The task graph: typed tasks on a networkx DiGraph, with incremental scheduling state.

Owns ``TaskGraph``: structure (tasks, dependency edges, cycle rejection), the task state
machine (start, complete, fail, retry, skip), status propagation (a failed or skipped task
blocks its dependants; a retried or replaced one unblocks them), splicing a subgraph in place
of one task (used by refinement and replanning), JSON (node-link) save/load.

An edge ``a -> b`` means "b depends on a": a must be done before b can start.

Scheduling state is kept incrementally: every task carries a counter of dependencies that are
not done yet, and the ready set is an insertion-ordered dict updated on each transition, so a
scheduling step costs O(out-degree of the finished task), never a topological sort.

Never executes tasks, never calls a model, never decides retry budgets (see ``Scheduler``).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import networkx as nx
from pydantic import ValidationError
from pydantic_core import PydanticSerializationError

from agentcore._atomic import atomic_write_bytes
from agentcore.planners._diff import GraphDiff, diff_graphs
from agentcore.planners._errors import (
    CycleError,
    InvalidTransitionError,
    PlanError,
    PlanValidationError,
    UnknownTaskError,
)
from agentcore.planners._render import render_mermaid, render_text
from agentcore.planners._task import TASK_ID_PATTERN, Task, TaskStatus

__all__ = ["GRAPH_FORMAT", "TaskGraph"]

#: Written into every saved graph; loading checks it.
GRAPH_FORMAT = "agentcore.taskgraph/1"

_PENDING = TaskStatus.PENDING
_READY = TaskStatus.READY
_RUNNING = TaskStatus.RUNNING
_DONE = TaskStatus.DONE
_FAILED = TaskStatus.FAILED
_SKIPPED = TaskStatus.SKIPPED
_OPEN = (_PENDING, _READY)
_ID_RE = re.compile(TASK_ID_PATTERN)


class TaskGraph:
    """A DAG of ``Task`` values with a live ready set.

    Build it with ``add_task`` / ``add_dependency``; drive it with ``ready``, ``start``,
    ``complete``, ``fail``, ``retry`` and ``skip``. Tasks are immutable values: every transition
    stores an updated copy, so a ``Task`` you hold is a snapshot.
    """

    def __init__(self, goal: str = "") -> None:
        self.goal = goal
        #: Free-text notes about how the plan was made (repairs, replans); saved with the graph.
        self.notes: list[str] = []
        self._g: nx.DiGraph = nx.DiGraph()
        self._waiting: dict[str, int] = {}  # id -> number of dependencies not done
        self._ready: dict[str, None] = {}  # ordered set: the order tasks became ready
        self._archive: dict[str, Task] = {}  # tasks replaced by a refinement or a replan
        self._index: dict[str, int] = {}  # id -> insertion number: the tie-break everywhere
        self._next_index = 0

    # ------------------------------------------------------------------ reading

    def __len__(self) -> int:
        return len(self._waiting)

    def __contains__(self, task_id: object) -> bool:
        return task_id in self._waiting

    def __iter__(self) -> Iterator[str]:
        return iter(self._waiting)

    def __getitem__(self, task_id: str) -> Task:
        return self.task(task_id)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TaskGraph):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        counts = ", ".join(f"{s.value}={n}" for s, n in self.counts().items() if n)
        return f"TaskGraph(goal={self.goal!r}, tasks={len(self)}, {counts or 'empty'})"

    def task(self, task_id: str) -> Task:
        """The current snapshot of one task."""
        try:
            task: Task = self._g.nodes[task_id]["task"]
        except KeyError:
            raise UnknownTaskError(task_id, len(self)) from None
        return task

    def tasks(self) -> list[Task]:
        """All live tasks, in insertion order."""
        nodes = self._g.nodes
        return [nodes[t]["task"] for t in self._waiting]

    def archived(self) -> list[Task]:
        """Tasks that were replaced by a refinement or a replan (their last state)."""
        return list(self._archive.values())

    def dependencies(self, task_id: str) -> list[str]:
        """Ids of the tasks ``task_id`` waits for, in insertion order."""
        self._require(task_id)
        return sorted(self._g.predecessors(task_id), key=self._index.__getitem__)

    def dependants(self, task_id: str) -> list[str]:
        """Ids of the tasks that wait for ``task_id``, in insertion order."""
        self._require(task_id)
        return sorted(self._g.successors(task_id), key=self._index.__getitem__)

    def edges(self) -> list[tuple[str, str]]:
        """Every dependency as ``(dependency, dependant)``."""
        return list(self._g.edges)

    def ready(self) -> list[Task]:
        """Tasks whose dependencies are all done, in the order they became ready.

        They are mutually independent, so any subset may run concurrently. O(len(ready)).
        """
        nodes = self._g.nodes
        return [nodes[t]["task"] for t in self._ready]

    def ready_ids(self) -> list[str]:
        return list(self._ready)

    def counts(self) -> dict[TaskStatus, int]:
        """How many live tasks are in each status."""
        out = dict.fromkeys(TaskStatus, 0)
        for task in self.tasks():
            out[task.status] += 1
        return out

    def is_finished(self) -> bool:
        """True when no task can make progress any more (every task terminal)."""
        return all(t.status.is_terminal for t in self.tasks())

    def succeeded(self) -> bool:
        """True when the graph is non-empty and every task is done."""
        return len(self) > 0 and all(t.status is _DONE for t in self.tasks())

    def topological_order(self) -> list[str]:
        """Task ids in a dependency-respecting order (ties broken by insertion order)."""
        return list(nx.lexicographical_topological_sort(self._g, key=self._index.__getitem__))

    def to_networkx(self) -> nx.DiGraph:
        """A read-only view of the underlying DiGraph (node attribute ``task``)."""
        view: nx.DiGraph = self._g.copy(as_view=True)
        return view

    # ------------------------------------------------------------------ building

    def add_task(self, task: Task, depends_on: Iterable[str] = ()) -> Task:
        """Add a new pending task that waits for ``depends_on``; returns its stored snapshot."""
        if task.status not in _OPEN:
            raise InvalidTransitionError(task.id, "add", task.status.value, "'pending' or 'ready'")
        deps = list(dict.fromkeys(depends_on))
        if task.id in self._waiting or task.id in self._archive:
            raise PlanError(
                f"task id {task.id!r} is already used in this graph; ids must be unique"
            )
        for dep in deps:
            self._require(dep)
        self._insert(task.model_copy(update={"status": _PENDING, "blocked_by": None}))
        for dep in deps:
            self._g.add_edge(dep, task.id)
        self._waiting[task.id] = sum(1 for d in deps if self.task(d).status is not _DONE)
        self._refresh(task.id)
        return self.task(task.id)

    def add_dependency(self, task_id: str, depends_on: str) -> None:
        """Make ``task_id`` wait for ``depends_on``. Raises ``CycleError`` naming the cycle."""
        task = self._require(task_id)
        dep = self._require(depends_on)
        if self._g.has_edge(depends_on, task_id):
            return
        if task_id == depends_on:
            raise CycleError([task_id, task_id], f"task {task_id!r} cannot depend on itself")
        if nx.has_path(self._g, task_id, depends_on):
            path = nx.shortest_path(self._g, task_id, depends_on)
            raise CycleError(
                [depends_on, *path],
                f"making {task_id!r} depend on {depends_on!r} would close a cycle",
            )
        blocked_skip = task.status is _SKIPPED and task.blocked_by is not None
        if dep.status is not _DONE and task.status not in _OPEN and not blocked_skip:
            raise InvalidTransitionError(
                task_id,
                f"add an unfinished dependency {depends_on!r} to",
                task.status.value,
                "'pending' or 'ready' (only those can still wait)",
            )
        self._g.add_edge(depends_on, task_id)
        if dep.status is not _DONE:
            self._waiting[task_id] += 1
        self._propagate([task_id])

    def remove_task(self, task_id: str) -> Task:
        """Remove a task that is not running; its dependants stop waiting for it."""
        task = self._require(task_id)
        if task.status is _RUNNING:
            raise InvalidTransitionError(task_id, "remove", task.status.value, "not 'running'")
        succs = list(self._g.successors(task_id))
        self._g.remove_node(task_id)
        del self._waiting[task_id]
        del self._index[task_id]
        self._ready.pop(task_id, None)
        if task.status is not _DONE:
            for s in succs:
                self._waiting[s] -= 1
        self._propagate(succs)
        return task

    # ------------------------------------------------------------------ state machine

    def start(self, task_id: str) -> Task:
        """ready -> running; counts one attempt."""
        task = self._require(task_id)
        if task.status is not _READY:
            raise InvalidTransitionError(task_id, "start", task.status.value, "'ready'")
        del self._ready[task_id]
        return self._set(task, status=_RUNNING, attempts=task.attempts + 1)

    def complete(self, task_id: str, result: Any = None) -> list[str]:
        """running -> done with ``result``; returns the ids that became ready."""
        task = self._require(task_id)
        if task.status is not _RUNNING:
            raise InvalidTransitionError(task_id, "complete", task.status.value, "'running'")
        self._set(task, status=_DONE, result=result, error=None)
        nodes = self._g.nodes
        waiting = self._waiting
        newly: list[str] = []
        for s in self._g.successors(task_id):
            waiting[s] -= 1
            if waiting[s] == 0:
                succ: Task = nodes[s]["task"]
                if succ.status is _PENDING:
                    nodes[s]["task"] = succ.model_copy(update={"status": _READY})
                    newly.append(s)
        if len(newly) > 1:
            newly.sort(key=self._index.__getitem__)
        self._ready.update(dict.fromkeys(newly))
        return newly

    def fail(self, task_id: str, error: str) -> list[str]:
        """running -> failed (no retry left); returns the dependants now skipped as blocked."""
        task = self._require(task_id)
        if task.status is not _RUNNING:
            raise InvalidTransitionError(task_id, "fail", task.status.value, "'running'")
        self._set(task, status=_FAILED, error=error)
        return self._propagate(list(self._g.successors(task_id)))[0]

    def retry(self, task_id: str) -> Task:
        """running or failed -> ready again (the last error is kept); unblocks dependants."""
        task = self._require(task_id)
        if task.status not in (_RUNNING, _FAILED):
            raise InvalidTransitionError(
                task_id, "retry", task.status.value, "'running' or 'failed'"
            )
        self._set(task, status=_READY, blocked_by=None)
        self._ready[task_id] = None
        if task.status is _FAILED:
            self._propagate(list(self._g.successors(task_id)))
        return self.task(task_id)

    def skip(self, task_id: str, reason: str) -> list[str]:
        """pending/ready -> skipped on purpose; returns the dependants now skipped as blocked."""
        task = self._require(task_id)
        if task.status not in _OPEN:
            raise InvalidTransitionError(task_id, "skip", task.status.value, "'pending' or 'ready'")
        self._ready.pop(task_id, None)
        self._set(task, status=_SKIPPED, error=reason, blocked_by=None)
        return self._propagate(list(self._g.successors(task_id)))[0]

    # ------------------------------------------------------------------ splicing

    def replace_task(self, task_id: str, subgraph: TaskGraph, *, note: str = "") -> list[str]:
        """Put ``subgraph`` in place of one task; returns the new task ids.

        The old task's dependencies feed the subgraph's sources, the subgraph's sinks feed the
        old task's dependants. New ids are ``<task_id>.<sub id>``; new tasks start fresh
        (pending, no attempts) with ``parent=task_id`` and one level more depth. The old task
        is archived (see ``archived``). Done and running tasks cannot be replaced.
        """
        old = self._require(task_id)
        if old.status in (_RUNNING, _DONE):
            raise InvalidTransitionError(
                task_id, "replace", old.status.value, "'pending', 'ready', 'failed' or 'skipped'"
            )
        if len(subgraph) == 0:
            raise PlanError(f"cannot replace task {task_id!r} with an empty subgraph")
        preds = list(self._g.predecessors(task_id))
        succs = list(self._g.successors(task_id))
        mapping = self._fresh_ids(task_id, list(subgraph))
        self._g.remove_node(task_id)
        del self._waiting[task_id]
        del self._index[task_id]
        self._ready.pop(task_id, None)
        self._archive[task_id] = old
        base_depth = old.depth + 1
        for sub_task in subgraph.tasks():
            parent = mapping.get(sub_task.parent or "", task_id)
            fresh = sub_task.model_copy(
                update={
                    "id": mapping[sub_task.id],
                    "status": _PENDING,
                    "result": None,
                    "error": None,
                    "attempts": 0,
                    "blocked_by": None,
                    "parent": parent,
                    "depth": base_depth + sub_task.depth,
                    # a step refined out of an untrusted one is untrusted too
                    "untrusted_source": sub_task.untrusted_source or old.untrusted_source,
                }
            )
            self._insert(fresh)
        sub_g = subgraph._g
        for a, b in sub_g.edges:
            self._g.add_edge(mapping[a], mapping[b])
        for sid in subgraph:
            if sub_g.in_degree(sid) == 0:
                for p in preds:
                    self._g.add_edge(p, mapping[sid])
            if sub_g.out_degree(sid) == 0:
                for s in succs:
                    self._g.add_edge(mapping[sid], s)
        touched = [*mapping.values(), *succs]
        for t in touched:
            self._waiting[t] = self._count_waiting(t)
        self._propagate(touched)
        if note:
            self.notes.append(note)
        return list(mapping.values())

    def _fresh_ids(self, prefix: str, sub_ids: list[str]) -> dict[str, str]:
        mapping: dict[str, str] = {}
        taken = set(self._waiting) | set(self._archive)
        for sid in sub_ids:
            candidate = f"{prefix}.{sid}"
            n = 2
            while candidate in taken:
                candidate = f"{prefix}.{sid}-{n}"
                n += 1
            if not _ID_RE.match(candidate):
                raise PlanError(
                    f"subtask id {candidate!r} would not be a valid task id (pattern "
                    f"{TASK_ID_PATTERN}); refinement is nested too deep or the ids are too long"
                )
            taken.add(candidate)
            mapping[sid] = candidate
        return mapping

    # ------------------------------------------------------------------ copies, diff, render

    def copy(self) -> TaskGraph:
        """An independent copy (tasks are immutable values, so they are shared)."""
        out = TaskGraph(self.goal)
        out.notes = list(self.notes)
        out._g = self._g.copy()
        out._waiting = dict(self._waiting)
        out._ready = dict(self._ready)
        out._archive = dict(self._archive)
        out._index = dict(self._index)
        out._next_index = self._next_index
        return out

    def diff(self, other: TaskGraph) -> GraphDiff:
        """What changed from this graph to ``other`` (tasks, fields, edges)."""
        return diff_graphs(self, other)

    def render_text(self) -> str:
        """A tree of tasks with status marks (subtasks under the task they refine)."""
        return render_text(self)

    def render_mermaid(self) -> str:
        """A Mermaid ``flowchart`` of the graph, nodes styled by status."""
        return render_mermaid(self)

    # ------------------------------------------------------------------ JSON

    def to_dict(self) -> dict[str, Any]:
        """networkx node-link data; graph attributes carry goal, notes, archive and ready order."""
        h = nx.DiGraph()
        h.graph.update(
            {
                "format": GRAPH_FORMAT,
                "goal": self.goal,
                "notes": list(self.notes),
                "ready": list(self._ready),
                "archive": [t.model_dump(mode="json") for t in self._archive.values()],
            }
        )
        for task in self.tasks():
            try:
                attrs = task.model_dump(mode="json")
            except PydanticSerializationError as exc:
                raise PlanValidationError(
                    f"task {task.id!r} cannot be saved: its result or inputs are not JSON "
                    f"values ({exc}); complete tasks with JSON-compatible results"
                ) from exc
            del attrs["id"]
            h.add_node(task.id, **attrs)
        h.add_edges_from(self._g.edges)
        data: dict[str, Any] = nx.node_link_data(h, edges="edges")
        return data

    def to_json(self, *, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TaskGraph:
        """Rebuild a graph saved by ``to_dict``; checks format, fields, cycles and statuses."""
        if not isinstance(data, dict):
            raise PlanValidationError(
                f"task graph data must be a JSON object, got {type(data).__name__}"
            )
        meta = data.get("graph")
        if not isinstance(meta, dict) or meta.get("format") != GRAPH_FORMAT:
            found = meta.get("format") if isinstance(meta, dict) else None
            raise PlanValidationError(
                f"field 'graph.format' is {found!r}, expected {GRAPH_FORMAT!r} "
                "(was this written by TaskGraph.to_json?)"
            )
        for key in ("nodes", "edges"):
            if not isinstance(data.get(key), list):
                raise PlanValidationError(f"field {key!r} must be a list, got {data.get(key)!r}")
        try:
            h = nx.node_link_graph(data, directed=True, multigraph=False, edges="edges")
        except (KeyError, TypeError, nx.NetworkXError) as exc:
            raise PlanValidationError(f"malformed node-link data: {exc!r}") from exc
        graph = cls(str(meta.get("goal", "")))
        graph.notes = [str(n) for n in meta.get("notes", [])]
        try:
            for raw in meta.get("archive", []):
                archived = Task.model_validate(raw)
                graph._archive[archived.id] = archived
            for node_id, attrs in h.nodes(data=True):
                graph._insert(Task.model_validate({**attrs, "id": node_id}))
        except ValidationError as exc:
            raise PlanValidationError(f"invalid task in saved graph: {exc}") from exc
        graph._g.add_edges_from(h.edges)
        if not nx.is_directed_acyclic_graph(graph._g):  # linear; find_cycle only when needed
            ids = [str(a) for a, _ in nx.find_cycle(graph._g)]
            raise CycleError([*ids, ids[0]], "saved graph")
        graph._restore_state([str(t) for t in meta.get("ready", [])])
        return graph

    @classmethod
    def from_json(cls, text: str | bytes) -> TaskGraph:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise PlanValidationError(f"task graph JSON does not parse: {exc}") from exc
        return cls.from_dict(data)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write JSON atomically (temp file, fsync, rename): a crash never leaves half a file."""
        target = Path(path)
        atomic_write_bytes(target, self.to_json(indent=1).encode("utf-8"))
        return target

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> TaskGraph:
        return cls.from_json(Path(path).read_bytes())

    # ------------------------------------------------------------------ internals

    def _require(self, task_id: str) -> Task:
        try:
            task: Task = self._g.nodes[task_id]["task"]
        except KeyError:
            raise UnknownTaskError(task_id, len(self)) from None
        return task

    def _insert(self, task: Task) -> None:
        if task.id in self._waiting or task.id in self._archive:
            raise PlanError(
                f"task id {task.id!r} is already used in this graph; ids must be unique"
            )
        self._g.add_node(task.id, task=task)
        self._waiting[task.id] = 0
        self._index[task.id] = self._next_index
        self._next_index += 1

    def mark_untrusted(self, task_id: str, source: str) -> Task:
        """Label live task ``task_id`` as derived from untrusted ``source`` (a label already
        there is kept)."""
        task = self._require(task_id)
        if task.untrusted_source is not None:
            return task
        return self._set(task, untrusted_source=source)

    def _set(self, task: Task, **update: Any) -> Task:
        new = task.model_copy(update=update)
        self._g.nodes[task.id]["task"] = new
        return new

    def _count_waiting(self, task_id: str) -> int:
        nodes = self._g.nodes
        return sum(1 for p in self._g.predecessors(task_id) if nodes[p]["task"].status is not _DONE)

    def _blocker(self, task_id: str) -> str | None:
        """The failure that blocks ``task_id``, or None.

        Candidates: each failed or deliberately skipped dependency, and what blocks each
        blocked dependency; the smallest id wins, so the answer depends only on the graph's
        state (never on the order edges were added) and survives a save/load.
        """
        nodes = self._g.nodes
        best: str | None = None
        for p in self._g.predecessors(task_id):
            pt: Task = nodes[p]["task"]
            if pt.status is _FAILED:
                origin = p
            elif pt.status is _SKIPPED:
                origin = pt.blocked_by or p
            else:
                continue
            if best is None or origin < best:
                best = origin
        return best

    def _refresh(self, task_id: str) -> bool:
        """Recompute a waiting task's status from its dependencies.

        Only pending, ready and blocked-skipped tasks are derived; running, done, failed and
        deliberately skipped tasks keep their status. Returns True when something its
        dependants derive from changed (blocked or not, and by what).
        """
        task: Task = self._g.nodes[task_id]["task"]
        was_blocked = task.status is _SKIPPED
        if not (task.status in _OPEN or (was_blocked and task.blocked_by is not None)):
            return False
        blocker = self._blocker(task_id)
        if blocker is not None:
            self._ready.pop(task_id, None)
            if was_blocked and task.blocked_by == blocker:
                return False
            self._set(
                task,
                status=_SKIPPED,
                blocked_by=blocker,
                error=f"blocked: dependency {blocker!r} failed",
            )
            return True
        status = _READY if self._waiting[task_id] == 0 else _PENDING
        if status is _READY:
            self._ready[task_id] = None
        else:
            self._ready.pop(task_id, None)
        if status is not task.status or was_blocked:
            self._set(
                task, status=status, blocked_by=None, error=None if was_blocked else task.error
            )
        return was_blocked

    def _propagate(self, start: list[str]) -> tuple[list[str], list[str]]:
        """Refresh ``start`` and, where something changed, their dependants transitively.

        A worklist: a task is refreshed again whenever one of its dependencies changes, so the
        order tasks are visited in never matters. Returns (newly blocked ids, newly unblocked
        ids). Touches only the affected region.
        """
        nodes = self._g.nodes
        was_blocked: dict[str, bool] = {}
        queue: dict[str, None] = dict.fromkeys(start)
        while queue:
            tid = next(iter(queue))
            del queue[tid]
            if tid not in was_blocked:
                was_blocked[tid] = nodes[tid]["task"].status is _SKIPPED
            if self._refresh(tid):
                queue.update(dict.fromkeys(self._g.successors(tid)))
        blocked: list[str] = []
        unblocked: list[str] = []
        for tid, before in was_blocked.items():
            now = nodes[tid]["task"].status is _SKIPPED
            if now and not before:
                blocked.append(tid)
            elif before and not now:
                unblocked.append(tid)
        return blocked, unblocked

    def _restore_state(self, ready_order: list[str]) -> None:
        """After a bulk load: recompute counters, derived statuses and the ready order."""
        nodes = self._g.nodes
        for tid in self._waiting:
            self._waiting[tid] = self._count_waiting(tid)
            task: Task = nodes[tid]["task"]
            if task.status in (_RUNNING, _DONE, _FAILED) and self._waiting[tid]:
                raise PlanValidationError(
                    f"task {tid!r} has status {task.status.value!r} but dependencies "
                    f"{[p for p in self._g.predecessors(tid) if nodes[p]['task'].status is not _DONE]}"
                    " are not done; expected 'pending', 'ready' or 'skipped'"
                )
        for tid in ready_order:
            if tid in self._waiting and nodes[tid]["task"].status is _READY:
                self._ready[tid] = None
        for tid in self.topological_order():
            self._refresh(tid)
