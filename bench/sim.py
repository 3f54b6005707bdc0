"""Simulation throughput and memory: agent-steps per second with 5, 25 and 100 agents.

Each row is a fresh process running a generated town scenario (N agents over 5 places,
world tools speak/move/wait, short turns) through ``apps.sim.run_scenario``:

- ``scripted``: the rule-based stand-in model (no weights) -- what the framework itself costs
  per agent step (agent loop, safety filter, world, transcript, per-tick checkpoint);
- ``local``: the real default model, one shared engine, one session per agent;
- ``ray-scripted`` / ``ray-local``: the same scenario on 2 local Ray workers (when ray is
  installed), each worker with its own backend (and model copy).

An agent step is one agent's turn in one tick. Memory per agent is the process's peak RSS
growth over the RSS with the model loaded, divided by N (goal: 100 agents in 8 GiB).

Usage: ``agentcore bench sim [--quick]`` or ``.venv/bin/python bench/sim.py``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import DOCS, machine, markdown_table, rss_mib, write_report

PLACES = ("cafe", "park", "market", "library", "home")


def scenario_yaml(n: int, ticks: int, max_tokens: int, window: int) -> str:
    """A town of ``n`` agents; agent 0 is told about a party at tick 0."""
    lines = [
        f"name: bench-town-{n}",
        "seed: 1",
        f"ticks: {ticks}",
        f"model: {{max_tokens: {max_tokens}, window: {window}}}",
        f"world: {{locations: [{', '.join(PLACES)}]}}",
        "agents:",
    ]
    for i in range(n):
        lines.append(
            f"  - {{name: a{i:03d}, persona: 'You live in a small town.', "
            f"location: {PLACES[i % len(PLACES)]}, tools: [speak, move, wait]}}"
        )
    lines += [
        "events:",
        "  - {tick: 0, kind: message, to: [a000], text: 'Party at the cafe tonight, tell everyone.'}",
        "metrics:",
        "  - {name: knows_party, kind: heard, pattern: party}",
    ]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------- one measurement


def child(
    arm: str, n: int, ticks: int, max_tokens: int, window: int, threads: int | None
) -> dict[str, Any]:
    """Runs in a fresh process: set up, run, report numbers as a dict."""
    import torch

    from agentcore.apps.sim import BackendSpec, RunOptions, run_scenario

    if threads is not None:
        torch.set_num_threads(threads)
    ray = arm.startswith("ray-")
    kind = "scripted" if arm.endswith("scripted") else "local"
    engine = None
    started = time.perf_counter()
    if kind == "local" and not ray:
        from agentcore.core.engine import Engine

        engine = Engine.load(threads=threads)
    load_s = time.perf_counter() - started
    rss0 = rss_mib()
    with tempfile.TemporaryDirectory(prefix="bench-sim-") as tmp:
        path = Path(tmp) / "town.yaml"
        path.write_text(scenario_yaml(n, ticks, max_tokens, window))
        options = RunOptions(
            out=Path(tmp) / "run",
            backend=BackendSpec(kind=kind, threads=1 if ray else threads),
            ray=ray,
            ray_workers=2,
            summary=False,
        )
        t0 = time.perf_counter()
        result = run_scenario(path, options, engine=engine)
        total = time.perf_counter() - t0
        ticks_s = []
        with open(result.transcript, encoding="utf-8") as fh:
            for line in fh:
                event = json.loads(line)["event"]
                if event["type"] == "tick":
                    ticks_s.append(event["duration_s"])
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB
    steps = result.agent_steps
    return {
        "arm": arm,
        "agents": n,
        "ticks": ticks,
        "max_tokens": max_tokens,
        "window": window,
        "agent_steps": steps,
        "tick_s": ticks_s,
        "run_s": result.elapsed_s,
        "setup_s": total - result.elapsed_s,
        "load_s": load_s,
        "steps_per_s": steps / result.elapsed_s if result.elapsed_s else 0.0,
        "steps_per_s_later_ticks": (
            n * (len(ticks_s) - 1) / sum(ticks_s[1:]) if len(ticks_s) > 1 else None
        ),
        "rss_model_mib": rss0,
        "rss_peak_mib": peak,
        "mib_per_agent": None if ray else (peak - rss0) / n,
        "knows_party": result.metrics.get("knows_party"),
    }


def measure(
    arm: str, n: int, ticks: int, max_tokens: int, window: int, threads: int | None
) -> dict[str, Any]:
    cmd = [
        sys.executable,
        __file__,
        "--child",
        arm,
        str(n),
        str(ticks),
        str(max_tokens),
        str(window),
    ]
    if threads is not None:
        cmd += ["--threads", str(threads)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{arm} n={n} failed:\n{proc.stderr[-3000:]}")
    row: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    row["process_s"] = time.perf_counter() - t0
    return row


# ---------------------------------------------------------------------- report


def _plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for arm, window in dict.fromkeys((r["arm"], r["window"]) for r in rows):
        group = [r for r in rows if (r["arm"], r["window"]) == (arm, window)]
        label = f"{arm}, window {window}"
        pts = [(r["agents"], r["steps_per_s"]) for r in group]
        axes[0].plot(*zip(*pts, strict=True), marker="o", label=label)
        mem = [
            (r["agents"], r["rss_peak_mib"] / 1024) for r in group if r["mib_per_agent"] is not None
        ]
        if mem:
            axes[1].plot(*zip(*mem, strict=True), marker="o", label=label)
    axes[0].set(
        xscale="log", yscale="log", xlabel="agents", ylabel="agent-steps / s", title="throughput"
    )
    axes[1].axhline(8, color="grey", linestyle="--", label="8 GiB goal")
    axes[1].set(xlabel="agents", ylabel="peak RSS (GiB)", title="memory (one process)")
    for ax in axes:
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def report(
    rows: list[dict[str, Any]], args: argparse.Namespace, took_s: float, notes: list[str]
) -> str:
    info = machine()
    table = markdown_table(
        [
            "arm",
            "agents",
            "window",
            "ticks",
            "agent-steps",
            "steps/s",
            "steps/s after tick 0",
            "s per step",
            "setup s",
            "peak RSS MiB",
            "MiB per agent",
        ],
        [
            [
                r["arm"],
                r["agents"],
                r["window"],
                r["ticks"],
                r["agent_steps"],
                r["steps_per_s"],
                r["steps_per_s_later_ticks"] if r["steps_per_s_later_ticks"] is not None else "-",
                1 / r["steps_per_s"] if r["steps_per_s"] else float("nan"),
                r["setup_s"],
                r["rss_peak_mib"] if r["mib_per_agent"] is not None else "-",
                r["mib_per_agent"] if r["mib_per_agent"] is not None else "-",
            ]
            for r in rows
        ],
    )
    local = [r for r in rows if r["arm"] == "local" and r["mib_per_agent"] is not None]
    fits = []
    for window in sorted({r["window"] for r in local}, reverse=True):
        biggest = max((r for r in local if r["window"] == window), key=lambda r: r["agents"])
        per, base = biggest["mib_per_agent"], biggest["rss_model_mib"]
        need = (base + 100 * per) / 1024
        fits.append(
            f"- window {window}: {biggest['agents']} agents peaked at "
            f"{biggest['rss_peak_mib'] / 1024:.2f} GiB ({per:.0f} MiB per agent over the "
            f"{base:.0f} MiB process with the model loaded); 100 agents: about {need:.1f} GiB "
            f"({'within' if need <= 8 else 'over'} the 8 GiB goal)."
        )
    fit = "Memory:\n" + "\n".join(fits) if fits else ""
    return f"""# Simulation throughput (`bench/sim.py`)

Command: `.venv/bin/python bench/sim.py{" --quick" if args.quick else ""}` under `nice -n 15`;
took {took_s / 60:.1f} min. Machine: {info["cores"]} cores, torch {info["torch"]},
CUDA: {info["cuda"]}; {info["date"]}. Other jobs shared the 2 cores while it ran, so the real-model
rows are pessimistic and noisy.

Each row is a fresh process running a generated town (N agents over 5 places; world tools
speak / move / wait; one agent is told about a party at tick 0) with `apps.sim.run_scenario`.
An **agent step** is one agent's turn in one tick (perceive, one model step, act); every tick
also writes the transcript and an atomic checkpoint (snapshot of all agent homes and model
sessions). `scripted` is the rule-based stand-in model, so its rows show what the framework
costs per step; `local` is the real default model (SmolLM2-135M, greedy,
max_tokens={args.max_tokens}; window = tokens kept per agent session); `ray-*` run the same file on 2 local Ray
workers. Tick 0 includes each agent's first prefill (system prompt + tool descriptions, ~600
tokens), later ticks append only what is new.

{table}

![throughput and memory](sim.png)

{fit}

Notes:
{chr(10).join(f"- {n}" for n in notes)}
"""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="5 and 25 agents, one tick on the model")
    ap.add_argument("--max-tokens", type=int, default=4, help="tokens per model reply")
    ap.add_argument("--window", type=int, default=1020, help="session window (tokens)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument(
        "--small-window",
        type=int,
        default=None,
        help="also run 100 agents on the model with this smaller session window (~9 min)",
    )
    ap.add_argument("--no-ray", action="store_true", help="skip the Ray rows")
    ap.add_argument(
        "--only",
        nargs="+",
        metavar="ARM:N:WINDOW",
        help="re-measure these rows only and merge them into the existing sim.json",
    )
    ap.add_argument("--out", type=Path, default=DOCS)
    ap.add_argument("--render", action="store_true", help="rewrite sim.md/png from sim.json only")
    ap.add_argument("--note", action="append", default=[], help="add a note to the report")
    ap.add_argument(
        "--child",
        nargs=5,
        metavar=("ARM", "N", "TICKS", "MAX_TOKENS", "WINDOW"),
        help=argparse.SUPPRESS,
    )
    args = ap.parse_args(argv)
    if args.child:
        arm, n, ticks, max_tokens, window = args.child
        print(
            json.dumps(child(arm, int(n), int(ticks), int(max_tokens), int(window), args.threads))
        )
        return 0

    from agentcore.apps.sim._ray import ray_available

    sizes = (5, 25) if args.quick else (5, 25, 100)
    w = args.window
    plan: list[tuple[str, int, int, int]] = [("scripted", n, 3, w) for n in sizes]
    plan += [("local", n, 2 if n == 5 else 1, w) for n in sizes]
    if args.small_window is not None and not args.quick:
        plan += [("local", 100, 1, args.small_window)]  # memory with a smaller window
    notes = [
        "LocalBackend serialises requests per session and runs one forward at a time on the "
        "shared engine: on CPU there is no cross-session batching, so agent turns run one after "
        "another (more runner workers would only overlap the non-model work).",
        "LocalBackend saves each session file after every request (the whole preallocated "
        "cache, ~35 MB at a 1020-token window); the runner hard-links those files into the "
        "per-tick snapshot instead of copying them.",
    ]
    if args.small_window is not None:
        notes.append(
            f"The window-{args.small_window} row comes from `--small-window "
            f"{args.small_window}` (off by default to keep the full run near 20 minutes)."
        )
    if ray_available() and not args.no_ray:
        plan += [("ray-scripted", n, 3, w) for n in sizes]
        plan += [("ray-local", 5, 2, w)]
        notes.append(
            "Ray rows: 2 local workers (1 CPU and 1 torch thread each), each with its own "
            "backend and its own copy of the model; the world stays in the driver. Setup "
            "includes starting Ray and loading the model in each worker."
        )
    else:
        notes.append("Ray rows skipped: ray is not installed (pip install 'agentcore[ray]').")
    t0 = time.perf_counter()
    rows = []
    notes += args.note
    if args.render:
        saved = json.loads((args.out / "sim.json").read_text())
        _plot(saved["rows"], args.out / "sim.png")
        md = report(saved["rows"], args, float(saved["took_s"]), notes)
        write_report("sim", md, saved, args.out)
        print(md)
        return 0
    full_plan = list(plan)
    kept: list[dict[str, Any]] = []
    if args.only:
        wanted = {tuple(x.split(":")) for x in args.only}
        plan = [p for p in plan if (p[0], str(p[1]), str(p[3])) in wanted]
        old = json.loads((args.out / "sim.json").read_text())["rows"]
        done = {(p[0], p[1], p[3]) for p in plan}
        kept = [r for r in old if (r["arm"], r["agents"], r["window"]) not in done]
    for arm, n, ticks, window in plan:
        row = measure(arm, n, ticks, args.max_tokens, window, args.threads)
        rows.append(row)
        per = row["mib_per_agent"]
        print(
            f"{arm:13s} n={n:4d} ticks={ticks} steps={row['agent_steps']:4d} "
            f"{row['steps_per_s']:8.3g} steps/s  setup {row['setup_s']:.1f}s  "
            + (f"{per:.1f} MiB/agent" if per is not None else ""),
            flush=True,
        )
    took = time.perf_counter() - t0
    if kept:
        order = {(p[0], p[1], p[3]): i for i, p in enumerate(full_plan)}
        rows = sorted(
            [*kept, *rows], key=lambda r: order.get((r["arm"], r["agents"], r["window"]), 99)
        )
        took += float(json.loads((args.out / "sim.json").read_text())["took_s"])
    args.out.mkdir(parents=True, exist_ok=True)
    _plot(rows, args.out / "sim.png")
    md = report(rows, args, took, notes)
    path = write_report("sim", md, {"machine": machine(), "took_s": took, "rows": rows}, args.out)
    print(md)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
