"""Running a scenario's agents on Ray workers (optional extra: ``pip install agentcore[ray]``).

Owns :class:`RayHost`: agent ``i`` lives on worker ``i % workers`` (a Ray actor with its own
model backend and its own agents, restored from the run's ``live/`` folder), and each tick
the runner sends every worker its agents' turn requests and gets the results back in
request order. The world stays in the driver, so the same scenario file gives the same
transcript as :class:`~apps.sim._host.LocalHost`.

Where Ray runs: a Ray instance this process already joined is used as it is; otherwise
``address`` names a running cluster (``"auto"``, ``"HOST:PORT"`` or ``"ray://HOST:10001"``)
and RayHost connects to it (and only disconnects at the end); with neither, it starts a
private local instance (loopback only, no dashboard, ``workers`` CPUs) and stops it at the end.
Workers read and write the run folder (agent homes, model sessions, checkpoints), so on a
cluster of several machines it must be a shared file system mounted at the same path on
every node (docs/scaling.md). Never imported unless ``--ray`` is asked for.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from agentcore.apps.sim._backend import BackendSpec, make_backend
from agentcore.apps.sim._checkpoint import RunPaths
from agentcore.apps.sim._host import LocalHost, TurnRequest, TurnResult, WorkerLost, build_agent
from agentcore.apps.sim._scenario import Scenario
from agentcore.memory import LongTermMemory

__all__ = ["RayHost", "ray_available"]

log = logging.getLogger(__name__)

START_TIMEOUT_S = 600.0  # workers load a model each; a cluster may have to free CPUs first


def ray_available() -> bool:
    try:
        import ray  # noqa: F401
    except ImportError:
        return False
    return True


class _Worker:
    """Body of one Ray actor: some of the scenario's agents on a backend of its own."""

    def __init__(
        self,
        scenario_json: str,
        spec: BackendSpec,
        root: str,
        names: list[str],
        worker: int,
        memory_url: str | None = None,
    ) -> None:
        scenario = Scenario.model_validate_json(scenario_json)
        paths = RunPaths(Path(root))
        backend = make_backend(spec, paths.sessions)
        # a chromadb server shared by every worker, or one embedded store per process
        # (chromadb's embedded store is single-process)
        if memory_url is not None:
            store = LongTermMemory(url=memory_url)
        else:
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


def _is_loopback(address: str) -> bool:
    host = urlsplit(address if "://" in address else f"//{address}").hostname or ""
    return host in ("localhost", "127.0.0.1", "::1")


def _connect(ray: Any, address: str | None, workers: int) -> bool:
    """Join ``address`` (or start a private local instance); True when this call did."""
    if ray.is_initialized():
        return False
    common: dict[str, Any] = dict(log_to_driver=False, configure_logging=False)
    if address is None:
        ray.init(
            num_cpus=workers,
            include_dashboard=False,
            _node_ip_address="127.0.0.1",
            **common,
        )
    elif address.startswith("ray://"):
        ray.init(address=address, **common)  # Ray Client: no local node to name
    else:
        if _is_loopback(address):  # a cluster on this machine: stay on the loopback interface
            common["_node_ip_address"] = "127.0.0.1"
        ray.init(address=address, **common)
    return True


class RayHost:
    """Runs agents on ``workers`` Ray actors of one CPU each.

    ``address``: a running Ray cluster to join (None: the instance this process already
    joined, else a private local one). ``memory_url``: a chromadb server every worker's
    agents share (None: one embedded store per worker inside the run folder).
    """

    def __init__(
        self,
        scenario: Scenario,
        spec: BackendSpec,
        paths: RunPaths,
        *,
        workers: int = 2,
        address: str | None = None,
        memory_url: str | None = None,
    ) -> None:
        if address is None and "ray" not in sys.modules:
            # A private instance stays on this machine: Ray swaps 127.0.0.1 for the machine's
            # address unless multi-node mode is off (read at import), and reports usage
            # over the network unless told not to. Both stay overridable from the environment.
            os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
            os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        try:
            import ray
        except ImportError:
            raise RuntimeError(
                "--ray needs Ray: pip install 'agentcore[ray]' (or pip install ray)"
            ) from None
        if workers < 1:
            raise ValueError(f"ray workers={workers}: expected an integer >= 1")
        self._ray = ray
        self._actors: list[Any] = []
        self._started = _connect(ray, address, workers)
        try:
            self._start_workers(scenario, spec, paths, workers, memory_url)
        except BaseException:
            self.close()
            raise

    def _start_workers(
        self,
        scenario: Scenario,
        spec: BackendSpec,
        paths: RunPaths,
        workers: int,
        memory_url: str | None,
    ) -> None:
        ray = self._ray
        n = min(workers, len(scenario.agents))
        groups: list[list[str]] = [[] for _ in range(n)]
        for i, a in enumerate(scenario.agents):
            groups[i % n].append(a.name)
        self._owner = {name: w for w, names in enumerate(groups) for name in names}
        actor: Any = ray.remote(num_cpus=1)(_Worker)
        payload = scenario.model_dump_json()
        root = str(paths.root.resolve())  # workers may not share this process's cwd
        self._actors = [
            actor.remote(payload, spec, root, names, w, memory_url)
            for w, names in enumerate(groups)
        ]
        # wait for every worker to load its model and agents (so tick 0 measures turns only)
        try:
            ray.get([a.ready.remote() for a in self._actors], timeout=START_TIMEOUT_S)
        except ray.exceptions.GetTimeoutError:
            raise RuntimeError(
                f"{n} Ray workers did not start within {START_TIMEOUT_S:g} s: does the cluster "
                f"have {n} free CPUs, and agentcore (and the model) on every node?"
            ) from None

    def run_turns(self, requests: list[TurnRequest]) -> list[TurnResult]:
        per: dict[int, list[dict[str, Any]]] = {}
        for r in requests:
            per.setdefault(self._owner[r.agent], []).append(r.model_dump(mode="json"))
        refs = {w: self._actors[w].run.remote(reqs) for w, reqs in per.items()}
        done: dict[str, TurnResult] = {}
        for w, ref in refs.items():
            try:
                items = self._ray.get(ref)
            except self._ray.exceptions.RayActorError as e:  # the process died or is unreachable
                raise WorkerLost(f"Ray worker {w} was lost during the tick: {e}") from e
            for item in items:
                result = TurnResult.model_validate(item)
                done[result.agent] = result
        return [done[r.agent] for r in requests]

    def close(self) -> None:
        """Close every worker's agents (a lost worker is passed over), end the actors, and
        leave Ray as it was found."""
        ray = self._ray
        try:
            pending = {a.close.remote(): a for a in self._actors}
            for ref in pending:
                try:
                    ray.get(ref, timeout=120)
                except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError) as e:
                    log.warning("a Ray worker could not close its agents: %s", e)
        finally:
            for a in self._actors:
                ray.kill(a)
            self._actors = []
            if self._started:
                self._ray.shutdown()
                self._started = False
