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

Usage: ``agentcore bench attend_rows [--window 9] [--budget 512] [--rounds 15]``. Writes
``docs/benchmarks/attend_rows.md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

import torch
from _common import machine, markdown_table, publish

from agentcore.core import native
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


def time_rows(ops: Any, f: dict[str, Any], q: torch.Tensor, k: torch.Tensor, layers: int,
              rounds: int) -> tuple[float, float]:  # fmt: skip
    """(best, median) ms of one step's attention over every layer."""

    def step() -> None:
        for layer in range(layers):
            ops.decode_attend_rows(
                q, k, k, k, f["raws"], f["att_ks"], f["att_vs"], f["masks"], f["slots"], layer, []
            )

    step()
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        step()
        times.append(1000 * (time.perf_counter() - t0))
    return min(times), statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--model", default="default")
    ap.add_argument("--window", type=int, default=9, help="keys in the window (a short session)")
    ap.add_argument("--budget", type=int, default=None, help="recall slots (default: the card's)")
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--levels", default="1,16")
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
    del engine  # only its shapes were needed
    rows_out = []
    raw: dict[str, Any] = {"machine": machine(), "levels": {}}
    for level in (int(x) for x in args.levels.split(",")):
        q = torch.randn(level, kv * g, 1, d).to(dtype)
        k = torch.randn(level, kv, 1, d).to(dtype)
        got = {}
        for arm, b in (("plain", 0), ("recall frame", budget)):
            f = frames(level, layers, kv, d, n_sink, b, args.window, dtype)
            got[arm] = time_rows(ops, f, q, k, layers, args.rounds)
        raw["levels"][level] = got
        for arm, (best, med) in got.items():
            rows_out.append([level, arm, best, med, med / got["plain"][1]])
    table = markdown_table(
        ["rows", "caches", "best ms (all layers)", "median ms", "median vs plain"], rows_out
    )
    md = f"""# The rows' attention of a decode step: recall's cache frame against plain

{raw["machine"]}; {args.model}: {layers} layers, {kv} KV heads of {g} query heads, head size
{d}, {dtype}. Keys per row: `recall frame` {n_sink} sinks + {budget} masked recall slots +
{args.window} window keys ({n_sink + budget + args.window} slots, {n_sink + args.window} keys);
`plain` the same {n_sink + args.window} keys without recall slots. One pass = one
`decode_attend_rows` call per layer, {args.rounds} passes.

{table}

Command: `agentcore bench attend_rows --window {args.window} --budget {budget} --rounds
{args.rounds} --levels {args.levels}`.
"""
    return publish("attend_rows", md, raw, args.out)


if __name__ == "__main__":
    raise SystemExit(main())
