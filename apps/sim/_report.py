"""The run summary: a Markdown page with the metrics per tick, the outcome and a plot.

Owns :func:`write_summary` (``summary.md`` and ``metrics.png``, matplotlib's Agg backend, both
written atomically). Reads only the checkpoint and the scenario; never runs anything.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agentcore._atomic import atomic_path, atomic_write_bytes
from agentcore.apps.sim._backend import BackendSpec
from agentcore.apps.sim._checkpoint import Checkpoint, RunPaths
from agentcore.apps.sim._scenario import Scenario

__all__ = ["write_summary"]


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return "" if value is None else str(value)


def _num(value: Any) -> float:
    return float(value) if isinstance(value, int | float) else float("nan")


def _plot(path: Path, scenario: Scenario, history: list[dict[str, Any]]) -> bool:
    numeric = [
        m.name
        for m in scenario.metrics
        if any(
            isinstance(h.get(m.name), int | float) and not isinstance(h.get(m.name), bool)
            for h in history
        )
    ]
    if not numeric or not history:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(7, 3.5))
    ticks = [h["tick"] for h in history]
    for name in numeric:
        ys = [_num(h.get(name)) for h in history]
        ax.plot(ticks, ys, marker="o", label=name)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("tick")
    ax.set_ylabel("value")
    ax.set_title(f"{scenario.name}: metrics per tick")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize="small")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
    return True


def write_summary(
    paths: RunPaths, scenario: Scenario, ckpt: Checkpoint, backend: BackendSpec
) -> Path:
    """Write ``summary.md`` (and ``metrics.png``) for the run as checkpointed."""
    world, history = ckpt.world, ckpt.history
    lines = [f"# Simulation: {scenario.name}", ""]
    if scenario.description:
        lines += [scenario.description.strip(), ""]
    rate = ckpt.agent_steps / ckpt.elapsed_s if ckpt.elapsed_s > 0 else 0.0
    model = backend.model or ("scripted stand-in" if backend.kind == "scripted" else "default")
    lines += [
        f"- ticks run: {ckpt.next_tick} of {scenario.ticks}; seed {ckpt.seed}",
        f"- agents: {', '.join(a.name for a in scenario.agents)}",
        f"- model backend: {backend.kind} ({model})",
        f"- agent turns: {ckpt.agent_steps} in {ckpt.elapsed_s:.1f} s ({rate:.3g} per second)",
        "- transcript: `transcript.jsonl` (agent events and world events, one per line)",
        "",
    ]
    names = [m.name for m in scenario.metrics]
    if names:
        lines += ["## Metrics per tick", ""]
        lines.append("| tick | " + " | ".join(names) + " |")
        lines.append("|---" * (len(names) + 1) + "|")
        for h in history:
            lines.append(f"| {h['tick']} | " + " | ".join(_fmt(h.get(n)) for n in names) + " |")
        lines.append("")
        heard = [m for m in scenario.metrics if m.kind == "heard"]
        for m in heard:
            who = ckpt.metrics.who_heard(m.name)
            lines.append(f"- **{m.name}** (heard /{m.pattern}/): {', '.join(who) or 'nobody'}")
        if heard:
            lines.append("")
        if _plot(paths.plot, scenario, history):
            lines += ["![metrics per tick](metrics.png)", ""]
    lines += ["## World at the end", ""]
    lines.append("| agent | location | inventory | vote |")
    lines.append("|---|---|---|---|")
    for a in scenario.agents:
        inv = ", ".join(f"{k}={v}" for k, v in world.inventories[a.name].items()) or "-"
        lines.append(
            f"| {a.name} | {world.where[a.name]} | {inv} | {world.votes.get(a.name, '-')} |"
        )
    lines.append("")
    deals = [o for o in world.offers if o.status == "accepted"]
    if world.offers:
        lines.append(
            f"Offers made: {len(world.offers)}; deals: {len(deals)}"
            + (
                "; prices: "
                + ", ".join(f"{o.item} {o.price} ({o.seller}->{o.buyer})" for o in deals)
                if deals
                else ""
            )
        )
        lines.append("")
    text = "\n".join(lines)
    atomic_write_bytes(paths.summary, text.encode("utf-8"))
    return paths.summary
