"""``agentcore sim SCENARIO``: run or resume a scenario from the command line.

Owns :func:`main` (argument parsing, the one-line report and exit codes: 0 done, 2 invalid
scenario or arguments, 1 run failure). Never holds simulation logic: see
:mod:`apps.sim._runner`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from agentcore import _tracing as tracing
from agentcore.apps.sim._backend import BackendSpec
from agentcore.apps.sim._loader import ScenarioError
from agentcore.apps.sim._runner import RunOptions, run_scenario

__all__ = ["main"]

EXAMPLES = Path(__file__).resolve().parent.parent / "scenarios"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="agentcore sim",
        description="Run a scripted multi-agent simulation (YAML scenario file).",
        epilog=f"Example scenarios: {EXAMPLES} (town.yaml, market.yaml, debate.yaml); a bare "
        "name like 'town' picks one of them.",
    )
    p.add_argument("scenario", help="scenario .yaml file, or the name of an example")
    p.add_argument("--ticks", type=int, default=None, help="override the scenario's tick count")
    p.add_argument("--out", type=Path, default=None, help="run folder (default: runs/<name>)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument(
        "--model",
        default=None,
        help="local model name or path (default model when omitted); 'scripted' runs a "
        "rule-based stand-in without weights (dry runs)",
    )
    p.add_argument("--base-url", default=None, help="use an OpenAI-compatible server instead")
    tracing.add_trace_argument(p)
    p.add_argument("--seed", type=int, default=None, help="override the scenario's seed")
    p.add_argument("--max-tokens", type=int, default=None, help="override tokens per reply")
    p.add_argument("--workers", type=int, default=1, help="agent turns run at once (threads)")
    p.add_argument(
        "--ray",
        nargs="?",
        const="local",
        default=None,
        metavar="ADDRESS",
        help="run agents on Ray workers: alone, on a private local Ray instance; with an "
        "ADDRESS ('auto', HOST:PORT, ray://HOST:10001), on that cluster (the run folder must "
        "then be on a file system every node shares; see docs/scaling.md)",
    )
    p.add_argument("--ray-workers", type=int, default=2, help="Ray workers (with --ray)")
    p.add_argument(
        "--memory-url",
        default=None,
        metavar="URL",
        help="keep the agents' long-term memory on this chromadb server (http://host:port, "
        "started with `chroma run`) instead of an embedded store in the run folder",
    )
    p.add_argument("--window", type=int, default=None, help="tokens of window per agent session")
    p.add_argument("--threads", type=int, default=None, help="torch threads (local model)")
    p.add_argument(
        "--recall",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="agents' sessions recall context that left their window (local model; on by default)",
    )
    return p


def resolve_scenario(name: str) -> Path:
    path = Path(name)
    if path.exists() or path.suffix in (".yaml", ".yml"):
        return path
    example = EXAMPLES / f"{name}.yaml"
    return example if example.exists() else path


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    tracing.configure_from(args)  # --trace
    scenario = resolve_scenario(args.scenario)
    spec = BackendSpec.parse(args.model, args.base_url, args.window)
    if args.threads is not None:
        spec = BackendSpec(**{**spec.__dict__, "threads": args.threads})
    if not args.recall:
        spec = BackendSpec(**{**spec.__dict__, "recall": False})
    out = args.out or Path("runs") / scenario.stem
    options = RunOptions(
        out=out,
        backend=spec,
        ticks=args.ticks,
        seed=args.seed,
        max_tokens=args.max_tokens,
        resume=args.resume,
        workers=args.workers,
        ray=args.ray is not None,
        ray_workers=args.ray_workers,
        ray_address=None if args.ray in (None, "local") else args.ray,
        memory_url=args.memory_url,
    )
    try:
        result = run_scenario(scenario, options)
    except ScenarioError as exc:
        print(exc, file=sys.stderr)
        return 2
    except (FileExistsError, FileNotFoundError, ValueError) as exc:
        print(f"agentcore sim: {exc}", file=sys.stderr)
        return 2
    rate = result.agent_steps / result.elapsed_s if result.elapsed_s else 0.0
    metrics = ", ".join(f"{k}={v}" for k, v in result.metrics.items() if k != "tick")
    print(
        f"{scenario.stem}: {result.ticks_done} ticks done ({result.ticks_this_run} now), "
        f"{result.agent_steps} agent turns in {result.elapsed_s:.1f} s ({rate:.3g}/s); {metrics}"
    )
    print(f"transcript: {result.transcript}")
    if result.summary is not None:
        print(f"summary: {result.summary}")
    return 0
