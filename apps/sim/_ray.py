"""Running a scenario's agents on Ray workers (optional extra: ``pip install agentcore[ray]``).

Owns :class:`RayHost`: agent ``i`` lives on worker ``i % workers`` (a Ray actor with its own
model backend and its own agents, restored from the run's ``live/`` folder), and each tick
the runner sends every worker its agents' turn requests and gets the results back in
request order. The world stays in the driver, so the same scenario file gives the same
transcript as :class:`~apps.sim._host.LocalHost`. Workers share the run folder, which is
why this targets local workers (or a cluster with a shared file system). Never imported
unless ``--ray`` is asked for.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agentcore.apps.sim._backend import BackendSpec, make_backend
from agentcore.apps.sim._checkpoint import RunPaths
from agentcore.apps.sim._host import LocalHost, TurnRequest, TurnResult, build_agent
from agentcore.apps.sim._scenario import Scenario

__all__ = ["RayHost", "ray_available"]


def ray_available() -> bool:
    try:
        import ray  # noqa: F401
    except ImportError:
        return False
    return True


class _Worker:
    """Body of one Ray actor: some of the scenario's agents on a backend of its own."""

    def __init__(
        self, scenario_json: str, spec: BackendSpec, root: str, names: list[str], worker: int
    ) -> None:
        from agentcore.memory import LongTermMemory

        scenario = Scenario.model_validate_json(scenario_json)
        paths = RunPaths(Path(root))
        backend = make_backend(spec, paths.sessions)
        # one embedded store per process (chromadb's embedded store is single-process)
        store = LongTermMemory(paths.live / f"memory-w{worker}")
        index = {a.name: i for i, a in enumerate(scenario.agents)}
        agents = [
            build_agent(scenario.agent(n), scenario, backend, paths.agent_home(n), index[n], store)
            for n in names
        ]
        self.host = LocalHost(agents, workers=1, record_tokens=scenario.record_tokens, memory=store)

    def ready(self) -> int:
        return len(self.host.agents)

    def run(self, requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
        reqs = [TurnRequest.model_validate(r) for r in requests]
        return [r.model_dump(mode="json") for r in self.host.run_turns(reqs)]

    def close(self) -> None:
        self.host.close()


class RayHost:
    """Runs agents on ``workers`` local Ray actors (starts Ray on this machine if needed)."""

    def __init__(
        self, scenario: Scenario, spec: BackendSpec, paths: RunPaths, *, workers: int = 2
    ) -> None:
        try:
            import ray
        except ImportError:
            raise RuntimeError(
                "--ray needs Ray: pip install 'agentcore[ray]' (or pip install ray)"
            ) from None
        if workers < 1:
            raise ValueError(f"ray workers={workers}: expected an integer >= 1")
        self._ray = ray
        self._started = False
        if not ray.is_initialized():
            ray.init(
                num_cpus=workers,
                include_dashboard=False,
                log_to_driver=False,
                _node_ip_address="127.0.0.1",
                configure_logging=False,
            )
            self._started = True
        n = min(workers, len(scenario.agents))
        groups: list[list[str]] = [[] for _ in range(n)]
        for i, a in enumerate(scenario.agents):
            groups[i % n].append(a.name)
        self._owner = {name: w for w, names in enumerate(groups) for name in names}
        actor: Any = ray.remote(num_cpus=1)(_Worker)
        payload = scenario.model_dump_json()
        self._actors: list[Any] = [
            actor.remote(payload, spec, str(paths.root), names, w) for w, names in enumerate(groups)
        ]
        # wait for every worker to load its model and agents (so tick 0 measures turns only)
        ray.get([a.ready.remote() for a in self._actors])

    def run_turns(self, requests: list[TurnRequest]) -> list[TurnResult]:
        per: dict[int, list[dict[str, Any]]] = {}
        for r in requests:
            per.setdefault(self._owner[r.agent], []).append(r.model_dump(mode="json"))
        refs = {w: self._actors[w].run.remote(reqs) for w, reqs in per.items()}
        done: dict[str, TurnResult] = {}
        for ref in refs.values():
            for item in self._ray.get(ref):
                result = TurnResult.model_validate(item)
                done[result.agent] = result
        return [done[r.agent] for r in requests]

    def close(self) -> None:
        try:
            self._ray.get([a.close.remote() for a in self._actors])
        finally:
            for a in self._actors:
                self._ray.kill(a)
            if self._started:
                self._ray.shutdown()
