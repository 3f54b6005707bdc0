"""Passkey retrieval benchmark: can the model recall a number hidden far back in the stream?

The standard template (task line, repeated filler, "The pass key is N. Remember it. N is the
pass key.", more filler, "What is the pass key? The pass key is"), lengths counted in model
tokens, needle depths 0%..100% in 10% steps, several trials per cell, exact match of the number.
Each cell is tagged inside/outside the window (the needle's last token older than the window at
question time). Arms run side by side on the same documents: sinks + window only, exact recall of
evicted blocks, and any other memory that exists.

The documents of one (length, trial) share everything but the needle position, so the stream is
processed once up to each needle position and forked there (``Session.fork``): the cost is about
6.5 documents per 11 depths, and every forked run is identical to a run from scratch.

Writes ``docs/benchmarks/passkey.md``, ``passkey.json`` and ``passkey.png`` (heat maps).
The report is rewritten after every document, so a run cut short keeps what it measured, and
``--resume`` continues it (documents already in ``passkey.json`` are skipped).
Usage: ``agentcore bench passkey [--model qwen2.5-coder-0.5b] [--lengths 4096,8192,16384,32768]
[--trials 5] [--long]``.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from _common import DOCS, machine, markdown_table, memory_view, rss_mib, write_report

from agentcore.core.cache import StreamingConfig
from agentcore.core.engine import Engine
from agentcore.core.infini import InfiniConfig
from agentcore.core.sampling import SamplingParams
from agentcore.core.session import Session, SessionConfig
from agentcore.train import default_adapter_path

TASK = (
    "There is an important info hidden inside a lot of irrelevant text. Find it and memorize it. "
    "I will quiz you about the important information there.\n"
)
FILLER = (
    "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again. "
)
NEEDLE = "The pass key is {key}. Remember it. {key} is the pass key. "
QUESTION = "What is the pass key? The pass key is"
DEPTHS = [i / 10 for i in range(11)]


def arm_configs(engine: Engine, window: int) -> dict[str, SessionConfig]:
    streaming = StreamingConfig.for_budget(window)
    arms = {
        "sinks+window": SessionConfig(streaming=streaming, keep_token_ids=False),
        "recall": SessionConfig(
            streaming=streaming,
            keep_token_ids=False,
            recall=engine.recall_config(host_blocks=1 << 20),
        ),
    }
    for update in ("linear", "delta"):
        arms[f"infini-{update}"] = SessionConfig(
            streaming=streaming,
            keep_token_ids=False,
            infini=InfiniConfig(update=update),  # type: ignore[arg-type]
        )
    return arms


def arm_engines(
    engine: Engine, arms: dict[str, SessionConfig], adapters: dict[str, Path | None]
) -> dict[str, Engine]:
    """One engine view per arm: Infini arms get the gates trained for their update rule.

    The views share the model weights; only the gates differ. An arm without an adapter runs
    with the untrained initial gates (beta = -4, about 2% memory) and says so in its name.
    """
    return {
        arm: memory_view(engine, adapters.get(arm.removeprefix("infini-")))
        if arm.startswith("infini-")
        else engine
        for arm in arms
    }


def build(
    engine: Engine, length: int, key: int
) -> tuple[list[int], list[int], list[int], list[int], list[int]]:
    """Token pieces: prefix (task), filler (to fill ``length``), needle, question, filler unit."""
    codec = engine.codec
    prefix = codec.begin_stream() + codec.encode(TASK)
    needle = codec.encode(NEEDLE.format(key=key))
    question = codec.encode(QUESTION)
    unit = codec.encode(FILLER)
    n_fill = length - len(prefix) - len(needle) - len(question)
    filler = (unit * (n_fill // len(unit) + 1))[:n_fill]
    return prefix, filler, needle, question, unit


ANSWER_TOKENS = 16  # room for a short preamble (" the pass key.") and a key of one digit per token


def answer(session: Session, question: list[int]) -> str:
    session.append_tokens(question)
    out = session.generate(SamplingParams(max_tokens=ANSWER_TOKENS, stop_token_ids=()))
    return out.text


def run_document(
    engine: Engine, config: SessionConfig, length: int, key: int, window: int
) -> list[dict[str, Any]]:
    prefix, filler, needle, question, unit = build(engine, length, key)
    u = len(unit)
    base = engine.new_session(config)
    base.append_tokens(prefix)
    done = 0
    rows = []
    for depth in DEPTHS:
        at = round(depth * len(filler) / u) * u  # needle at a filler sentence boundary
        at = min(at, len(filler))
        if at > done:
            base.append_tokens(filler[done:at])
            done = at
        run = base.fork()
        run.append_tokens(needle)
        if at < len(filler):
            run.append_tokens(filler[at:])
        needle_end = len(prefix) + at + len(needle)
        total = needle_end + len(filler) - at + len(question)
        outside = needle_end <= total - window
        text = answer(run, question)
        found = re.findall(r"\d+", text)
        rows.append(
            {
                "length": length,
                "depth": depth,
                "key": key,
                "outside": outside,
                "answer": text,
                "correct": bool(found) and found[0] == str(key),
                "tokens": run.n_tokens,
            }
        )
        del run
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--lengths", default="4096,8192,16384,32768")
    ap.add_argument("--trials", type=int, default=5)
    ap.add_argument("--long", action="store_true", help="add 131072-token documents")
    ap.add_argument("--arms", default=None, help="comma-separated arm names (default: all)")
    ap.add_argument(
        "--arm-max",
        default="",
        help="longest document per arm, e.g. infini-linear=8192,infini-delta=8192 (default: all)",
    )
    ap.add_argument(
        "--model", default="default", help="model alias (see `agentcore models`) or GGUF path"
    )
    ap.add_argument(
        "--window",
        type=int,
        default=None,
        help="sinks + window budget (default: the model's, 2048 for SmolLM2, 4096 for the 0.5B)",
    )
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--quick", action="store_true", help="one 4K document, 1 trial")
    ap.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (default: all cores)"
    )
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument(
        "--resume",
        action="store_true",
        help="keep the documents already in the output folder's passkey.json and run the rest",
    )
    for update in ("linear", "delta"):
        ap.add_argument(
            f"--adapter-{update}",
            type=Path,
            default=None,
            help=f"gates for the infini-{update} arm (default: the shipped adapter, if any)",
        )
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    lengths = [int(x) for x in args.lengths.split(",")]
    if args.long:
        lengths.append(131072)
    trials = args.trials
    if args.quick:
        lengths, trials = [4096], 1
    engine = Engine.load(args.model)
    if args.window is None:
        args.window = engine.default_streaming().budget
    arms = arm_configs(engine, args.window)
    if args.arms:
        arms = {k: v for k, v in arms.items() if k in args.arms.split(",")}
    adapters: dict[str, Path | None] = {}
    for update in ("linear", "delta"):
        given = getattr(args, f"adapter_{update}")
        shipped = default_adapter_path(engine.name, update)
        adapters[update] = given or (shipped if shipped.is_file() else None)
        print(f"infini-{update}: gates from {adapters[update] or 'initial beta=-4 (untrained)'}")
    arm_max: dict[str, int] = {}
    for item in filter(None, args.arm_max.split(",")):
        name, _, value = item.partition("=")
        if name not in arms or not value.isdigit():
            raise SystemExit(
                f"--arm-max: expected ARM=TOKENS with ARM in {sorted(arms)}, got {item!r}"
            )
        arm_max[name] = int(value)
    engines = arm_engines(engine, arms, adapters)
    args.adapters = {k: str(v) if v else None for k, v in adapters.items()}
    rng = random.Random(args.seed)
    keys = {(n, t): rng.randint(10000, 99999) for n in lengths for t in range(trials)}
    results: dict[str, list[dict[str, Any]]] = {arm: [] for arm in arms}
    args.answer_tokens = ANSWER_TOKENS  # recorded: a resumed run must score answers alike
    earlier = 0.0
    if args.resume:
        earlier = resume(results, (args.out or DOCS) / "passkey.json", args)
    plan = [
        (n, t, arm)
        for n in lengths
        for t in range(trials)
        for arm in arms
        if n <= arm_max.get(arm, n)
    ]
    t0 = time.perf_counter()

    def save() -> str:
        """Write passkey.md, .json and .png for the documents measured so far."""
        measured = {(r["length"], r["trial"], arm) for arm, rs in results.items() for r in rs}
        progress = (sum(item in measured for item in plan), len(plan))
        elapsed = earlier + time.perf_counter() - t0
        md, raw = report(results, lengths, trials, args, elapsed, engine, progress)
        path = write_report("passkey", md, raw, args.out)
        heatmaps(results, lengths, path.parent / "passkey.png")
        return md

    for i, (n, t, arm) in enumerate(plan):
        if any(r["length"] == n and r["trial"] == t for r in results[arm]):
            continue  # done by the run this one resumes
        start = time.perf_counter()
        rows = run_document(engines[arm], arms[arm], n, keys[(n, t)], args.window)
        for r in rows:
            r["trial"] = t
        results[arm].extend(rows)
        acc = sum(r["correct"] for r in rows) / len(rows)
        print(
            f"  [{i + 1}/{len(plan)}] {arm:14} len {n:6} trial {t}: {acc:.0%} correct "
            f"({time.perf_counter() - start:.0f}s, RSS {rss_mib():.0f} MiB)",
            flush=True,
        )
        save()  # after every document: a run cut short keeps what it measured
    print(save())
    return 0


def resume(results: dict[str, list[dict[str, Any]]], path: Path, args: Any) -> float:
    """Load the documents an earlier run with the same seed and window already measured."""
    if not path.is_file():
        raise SystemExit(f"--resume: no earlier report at {path}")
    raw = json.loads(path.read_text())
    before = raw.get("args", {})
    for name in ("seed", "window", "answer_tokens"):
        if before.get(name) != getattr(args, name):
            raise SystemExit(
                f"--resume: {path} was made with {name}={before.get(name)!r}, "
                f"this run has {name}={getattr(args, name)!r}"
            )
    kept = 0
    for arm, rows in raw.get("results", {}).items():
        if arm in results:
            usable = [r for r in rows if "trial" in r]
            results[arm].extend(usable)
            kept += len(usable)
    print(f"--resume: {kept} answers from {path}")
    return float(raw.get("elapsed_s", 0.0))


def accuracy(
    rows: list[dict[str, Any]], keep: Callable[[dict[str, Any]], bool]
) -> tuple[float, int]:
    sel = [r for r in rows if keep(r)]
    return (sum(r["correct"] for r in sel) / len(sel) if sel else float("nan")), len(sel)


def report(
    results: dict[str, list[dict[str, Any]]],
    lengths: list[int],
    trials: int,
    args: Any,
    elapsed: float,
    engine: Engine,
    progress: tuple[int, int],
) -> tuple[str, dict[str, Any]]:
    headers = (
        ["arm"]
        + [f"{n // 1024}K outside" for n in lengths]
        + [f"{n // 1024}K inside" for n in lengths]
    )
    rows = []
    for arm, rs in results.items():
        row: list[Any] = [arm]
        for inside in (False, True):
            for n in lengths:
                acc, cnt = accuracy(
                    rs, lambda r, n=n, inside=inside: r["length"] == n and r["outside"] != inside
                )
                row.append(f"{acc:.0%} ({cnt})" if cnt else "-")
        rows.append(row)
    table = markdown_table(headers, rows)
    gates = "; ".join(
        f"{u}: {getattr(args, 'adapters', {}).get(u) or 'untrained (beta=-4)'}"
        for u in ("linear", "delta")
        if f"infini-{u}" in results
    )
    gates_line = f"Gates of the Infini arms: {gates}.\n\n" if gates else ""
    done, planned = progress
    status = (
        f"Documents measured: {done} of {planned} planned (arm x length x trial)."
        if done == planned
        else f"**Partial run**: {done} of {planned} planned documents (arm x length x trial) "
        "measured so far; cells count what was measured."
    )
    md = f"""# Passkey retrieval

Model {engine.name} ({engine.info().device}/{engine.info().dtype}); sinks + window = {args.window} tokens;
{trials} trial(s) x 11 depths per length; greedy answer of up to {ANSWER_TOKENS} tokens, its first
number must equal the 5-digit key.
Longest document per arm where limited: {args.arm_max or "none"}.
Cells: accuracy (number of documents). "outside": the needle had left the window when the
question came. Machine: {machine()}. Took {elapsed / 60:.1f} min.
{status}

{table}

{gates_line}![passkey heat maps](passkey.png)
"""
    raw = {
        "machine": machine(),
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "results": results,
        "elapsed_s": elapsed,
    }
    return md, raw


def heatmaps(results: dict[str, list[dict[str, Any]]], lengths: list[int], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(4.5 * len(results), 3.6), squeeze=False)
    for ax, (arm, rs) in zip(axes[0], results.items(), strict=True):
        grid = torch.full((len(DEPTHS), len(lengths)), float("nan"))
        for j, n in enumerate(lengths):
            for i, d in enumerate(DEPTHS):
                acc, cnt = accuracy(
                    rs, lambda r, n=n, d=d: r["length"] == n and abs(r["depth"] - d) < 1e-9
                )
                if cnt:
                    grid[i, j] = acc
        im = ax.imshow(grid.numpy(), vmin=0, vmax=1, cmap="RdYlGn", aspect="auto")
        ax.set_xticks(range(len(lengths)), [f"{n // 1024}K" for n in lengths])
        ax.set_yticks(range(len(DEPTHS)), [f"{int(d * 100)}%" for d in DEPTHS])
        ax.set_xlabel("document length (tokens)")
        ax.set_ylabel("needle depth")
        ax.set_title(arm)
    fig.colorbar(im, ax=axes[0].tolist(), shrink=0.8)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
