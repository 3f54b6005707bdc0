"""The rows' attention of a batched decode step, with and without recall's cache frame.

A session with exact recall keeps room for its recalled keys in its cache frame: ``n_sink``
sinks, then ``budget`` slots for recalled blocks, then the window; until a refresh fills them
the recall slots are masked. A short session (nothing evicted yet) then has ~600 key slots of
which ~70 hold keys. This bench times ``decode_attend_rows`` (the native kernel a batched step
runs per layer, :class:`~agentcore.core.cache.DecodeRows`) over every layer of the default
model's shape, 1 and 16 rows, on caches laid out as such a session's (``recall``: sinks, empty
recall slots masked, a short window) against a plain session's (sinks and the same window,
no mask). Random keys and values in the engine's cache dtype; the kernel's time does not depend
on their values. Best and median of ``--rounds`` passes of all layers.

Each case runs on both attention kernels of the native module where the CPU has AVX512F (the
AVX2 one and the AVX512F one, ``use_avx512_attention``), alternating per pass on the same
caches, so the two columns share the machine's drift; ``--windows`` takes several window
lengths (a short session's, a full window's). ``--steps-tokens`` also times whole decode steps
of the real model (1 and 16 sessions with the card's recall, each having read that many tokens
of a book), the kernels again alternating on the same sessions.

Usage: ``agentcore bench attend_rows [--windows 9,300,2048] [--budget 512] [--rounds 15]
[--steps-tokens 400,4000]``. Writes ``docs/benchmarks/attend_rows.md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

import torch
from _common import book_tokens, machine, markdown_table, publish

from agentcore import _compute as compute
from agentcore.core import native
from agentcore.core.batch import decode_batch
from agentcore.core.engine import Engine


def frames(
    rows: int, layers: int, kv: int, d: int, n_sink: int, budget: int, window: int, dtype: Any
) -> dict[str, Any]:
    """One layer-stack of caches per row, laid out as a session's: sinks, ``budget`` masked
    recall slots (none for a plain session), then ``window`` keys, the newest written now."""
    n = n_sink + budget + window
    gen = torch.Generator().manual_seed(rows * 1000 + budget)
    mask = torch.zeros(1, n)
    mask[:, n_sink : n_sink + budget] = float("-inf")
    return {
        "raws": [torch.zeros(layers, 1, kv, window + 1, d, dtype=dtype) for _ in range(rows)],
        "att_ks": [torch.randn(layers, 1, kv, n, d, generator=gen).to(dtype) for _ in range(rows)],
        "att_vs": [torch.randn(layers, 1, kv, n, d, generator=gen).to(dtype) for _ in range(rows)],
        "masks": [mask.clone() if budget else torch.empty(0) for _ in range(rows)],
        # raw slot, attention slot (the newest key), keys, and the recalled keys' span (empty)
        "slots": torch.tensor([[window - 1, n - 1, n, n_sink, n_sink]] * rows),
    }


def kernels(ops: Any) -> list[str]:
    """The attention kernels this CPU runs: AVX2, and AVX512F where it has it."""
    return ["avx2", "avx512"] if ops.attention_avx512_supported() else ["avx2"]


def alternate(ops: Any, step: Any, rounds: int) -> dict[str, list[float]]:
    """ms of ``step()`` on each kernel, the kernels taking turns pass by pass; the setting the
    process had is restored."""
    names = kernels(ops)
    before = ops.use_avx512_attention(True)
    times: dict[str, list[float]] = {name: [] for name in names}
    try:
        for name in names:  # warm-up
            ops.use_avx512_attention(name == "avx512")
            step()
        for _ in range(rounds):
            for name in names:
                ops.use_avx512_attention(name == "avx512")
                t0 = time.perf_counter()
                step()
                times[name].append(1000 * (time.perf_counter() - t0))
    finally:
        ops.use_avx512_attention(before)
    return times


def time_rows(ops: Any, f: dict[str, Any], q: torch.Tensor, k: torch.Tensor, layers: int,
              rounds: int) -> dict[str, list[float]]:  # fmt: skip
    """Per kernel, ms of one step's attention over every layer, ``rounds`` passes."""

    def step() -> None:
        for layer in range(layers):
            ops.decode_attend_rows(
                q, k, k, k, f["raws"], f["att_ks"], f["att_vs"], f["masks"], f["slots"], layer, []
            )

    return alternate(ops, step, rounds)


def time_steps(ops: Any, engine: Engine, n_tokens: int, level: int, rounds: int) -> Any:
    """Per kernel, ms of one decode step of ``level`` default sessions of ``engine`` (``main``
    gives them the card's recall) that have each read ``n_tokens`` tokens of a book (session
    i from token 40 i on)."""
    text = book_tokens(engine.codec, n_tokens + 40 * level)
    sessions = []
    for i in range(level):
        s = engine.new_session(engine.session_config())
        s.append_tokens(text[40 * i : 40 * i + n_tokens])
        sessions.append(s)
    caches = [s.cache for s in sessions]
    tokens = [100 + i for i in range(level)]

    def step() -> None:
        for _ in range(4):
            decode_batch(engine.core, tokens, caches)

    times = alternate(ops, step, rounds)
    return {name: [t / 4 for t in ts] for name, ts in times.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--model", default="default")
    ap.add_argument(
        "--windows", default="9", help="keys in the window, comma-separated (9: a short session)"
    )
    ap.add_argument("--budget", type=int, default=None, help="recall slots (default: the card's)")
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--levels", default="1,16")
    ap.add_argument(
        "--steps-tokens",
        default="",
        help="also time whole decode steps of sessions holding these many tokens (comma-separated)",
    )
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    ops = native.decode_ops()
    if ops is None:
        ap.error("the native decode ops do not run on this machine (x86 with AVX2 needed)")
    engine = Engine.load(args.model)
    dims = engine.core.dims
    recall = engine.recall_config()
    budget = args.budget if args.budget is not None else recall.top_k * recall.block_size
    n_sink = engine.default_streaming().n_sink
    kv, d, layers = dims.n_kv_heads, dims.head_dim, dims.n_layers
    g = dims.n_heads // kv
    dtype = engine.core.dtype
    levels = [int(x) for x in args.levels.split(",")]
    windows = [int(x) for x in args.windows.split(",")]
    names = kernels(ops)
    raw: dict[str, Any] = {"machine": machine(), "kernels": names, "levels": {}, "steps": {}}
    step_rows = []
    if engine.default_recall is None:
        engine.default_recall = recall  # the sessions `agentcore serve` opens
    for tokens in (int(x) for x in args.steps_tokens.split(",") if x.strip()):
        for level in levels:
            times = time_steps(ops, engine, tokens, level, max(3, args.rounds // 3))
            raw["steps"][f"{level}x{tokens}"] = times
            for name in names:
                med = statistics.median(times[name])
                step_rows.append(
                    [level, tokens, name, med, level * 1000 / med,
                     statistics.median(times["avx2"]) / med]
                )  # fmt: skip
    rows_out = []
    for level in levels:
        q = torch.randn(level, kv * g, 1, d).to(dtype)
        k = torch.randn(level, kv, 1, d).to(dtype)
        for window in windows:
            got = {}
            for arm, b in (("plain", 0), ("recall frame", budget)):
                f = frames(level, layers, kv, d, n_sink, b, window, dtype)
                # on the compute thread, where decode steps run their kernels: a team of this
                # thread's beside its team would make libgomp sleep between parallel regions
                got[arm] = compute.run(time_rows, ops, f, q, k, layers, args.rounds)
                del f
            raw["levels"][f"{level}x{window}"] = got
            for arm, times in got.items():
                for name in names:
                    med = statistics.median(times[name])
                    rows_out.append(
                        [level, window, arm, name, min(times[name]), med,
                         med / statistics.median(got["plain"][name]),
                         statistics.median(times["avx2"]) / med]
                    )  # fmt: skip
    table = markdown_table(
        ["rows", "window keys", "caches", "kernel", "best ms (all layers)", "median ms",
         "median vs plain", "AVX2 / this"],
        rows_out,
    )  # fmt: skip
    steps_md = ""
    if step_rows:
        steps_table = markdown_table(
            ["sessions", "tokens each", "kernel", "ms per step (median)", "tokens/s",
             "AVX2 / this"],
            step_rows,
        )  # fmt: skip
        steps_md = f"""
## Whole decode steps of the real model

{steps_table}

Sessions with the model card's recall (`agentcore serve`'s default), each having read a slice
of a book; one step feeds each session one token (`decode_batch`, 4 steps a pass), the kernels
taking turns pass by pass on the same sessions. A session that read more than its window holds
a full window, and recall's slots may hold recalled blocks.
"""
    md = f"""# The rows' attention of a decode step: kernels, recall's cache frame against plain

{raw["machine"]}; {args.model}: {layers} layers, {kv} KV heads of {g} query heads, head size
{d}, {dtype}. Keys per row: `recall frame` {n_sink} sinks + {budget} masked recall slots +
the window's keys; `plain` the same keys without recall slots. One pass = one
`decode_attend_rows` call per layer, {args.rounds} passes per kernel, the kernels
({", ".join(names)}) taking turns pass by pass on the same caches.

{table}
{steps_md}
Command: `agentcore bench attend_rows --model {args.model} --windows {args.windows} --budget
{budget} --rounds {args.rounds} --levels {args.levels}{
        f" --steps-tokens {args.steps_tokens}" if args.steps_tokens else ""
    }`.
"""
    return publish("attend_rows", md, raw, args.out)


if __name__ == "__main__":
    raise SystemExit(main())
