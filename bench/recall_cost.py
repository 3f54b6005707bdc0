"""What one full recall selection costs as the evicted-context store grows.

A short turn with recall on pays, on top of the same turn without recall, one full selection
at its question (``EvictedStore.plan(full=True)`` with the contrast: the evicted keys of each
probe layer scored against the latest queries and against the queries before the new input).
Scoring every key is linear in the store; a store larger than ``RecallConfig.shortlist``
blocks scores only the blocks sharing the most rare words with the latest input
(``agentcore.core.lexicon``). This bench measures both on the real store code at the default
model's geometry (SmolLM2-135M: 3 KV heads, 9 query heads, head size 64, three probe layers,
64 latest queries), with random keys (the cost does not depend on what the keys hold) and
random token ids drawn from a Zipf law over a 49,152-id vocabulary (word frequencies in text
follow one; the shortlist's cost depends on how many blocks hold the question's words). The
store has 4 layers instead of 30, three of them probes: selection reads only the probe
layers' keys; the other layers' block files are written but never read here.

Arms, interleaved per round, median of ``--rounds``:

* ``shortlist``: what a full selection does now (float32 or bfloat16 scoring as below, of
  the ``shortlist`` blocks);
* ``bfloat16``: every key scored (``shortlist=None``), multiplied as stored (bfloat16), what
  selection did on every CPU before 2026-12-04 and still does where the CPU has bf16 dot
  products;
* ``float32``: every key scored, each slice widened to float32 before the matmul, what
  selection does on CPUs without bf16 dot products (an AVX2 CPU emulates a bfloat16 matmul).

``--bf16-max`` skips the bfloat16 arm above that many tokens (it is the slow one).

Usage: ``agentcore bench recall_cost [--lengths 20000,100000,1000000] [--rounds 2]
[--threads 1]``. Writes ``docs/benchmarks/recall_cost.md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _common import DOCS, machine, markdown_table, publish

from agentcore.core import recall
from agentcore.core.loader import cpu_has_bf16
from agentcore.core.recall import EvictedStore, RecallConfig

N_LAYERS, N_KV, N_Q, DIM = 4, 3, 9, 64
CHUNK = 8192
VOCAB = 49_152
# arm -> (score dtype, every key scored); "shortlist" scores as this CPU does
ARMS = {
    "shortlist": (recall._score_dtype(), False),
    "bfloat16": (torch.bfloat16, True),
    "float32": (torch.float32, True),
}


def words(m: int, rng: np.random.Generator) -> torch.Tensor:
    """``m`` token ids with text's skew: a Zipf law over the vocabulary."""
    return torch.from_numpy((rng.zipf(1.1, m) - 1) % VOCAB)


def grow(store: EvictedStore, upto: int, start: int, gen: torch.Generator) -> int:
    """Evict random keys and values (and the ids read there) into ``store`` until it holds
    ``upto`` tokens."""
    rng = np.random.default_rng(start)
    n = start
    while n < upto:
        m = min(CHUNK, upto - n)
        kv = torch.randn((2, N_LAYERS, 1, N_KV, m, DIM), generator=gen).to(torch.float16)
        positions = torch.arange(n, n + m)
        store.note_tokens(positions, words(m, rng))
        store.on_evict_layers(kv[0], kv[1], positions)
        n += m
    return n


def ask(store: EvictedStore, gen: torch.Generator, at: int) -> None:
    """The text before the question, then a 16-token question (its words read at ``at``), as
    the probe layers see them."""
    for p in store.probes:
        store.observe(p, torch.randn((1, N_Q, 64, DIM), generator=gen))
    store.note_tokens(torch.arange(at, at + 16), words(16, np.random.default_rng(at)))
    store.mark_input(at)
    for p in store.probes:
        store.observe(p, torch.randn((1, N_Q, 16, DIM), generator=gen))


def time_selection(store: EvictedStore, arm: str, config: RecallConfig) -> float:
    dtype, every_key = ARMS[arm]
    recall._score_dtype = lambda: dtype  # type: ignore[assignment]
    store.config = dataclasses.replace(config, shortlist=None) if every_key else config
    store._baseline_memo.clear()  # a new question's selection computes its baseline too
    t0 = time.perf_counter()
    store.plan(full=True)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--lengths", default="20000,100000,1000000", help="evicted tokens")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--bf16-max", type=int, default=100_000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    shipped = recall._score_dtype
    lengths = sorted(int(x) for x in args.lengths.split(","))
    gen = torch.Generator().manual_seed(0)
    raw: dict[str, Any] = {"machine": machine(), "native_bf16": cpu_has_bf16(), "lengths": {}}
    rows: list[list[Any]] = []
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        config = RecallConfig()
        store = EvictedStore(
            config, n_layers=N_LAYERS, n_kv_heads=N_KV, head_dim=DIM, directory=tmp
        )
        held = 0
        for n in lengths:
            held = grow(store, n, held, gen)
            ask(store, gen, held)
            arms = [a for a in ARMS if a != "bfloat16" or n <= args.bf16_max]
            samples: dict[str, list[float]] = {a: [] for a in arms}
            for _ in range(args.rounds):
                for arm in arms:
                    samples[arm].append(time_selection(store, arm, config))
            ms = {a: 1000 * statistics.median(v) for a, v in samples.items()}
            raw["lengths"][n] = {"ms": ms, "samples_s": samples}
            print(n, ms, flush=True)
            ratio = ms["bfloat16"] / ms["float32"] if "bfloat16" in ms else None
            rows.append(
                [
                    f"{n:,}",
                    ms["shortlist"],
                    ms.get("bfloat16", "-"),
                    ms["float32"],
                    ratio if ratio is not None else "-",
                    1000 * ms["float32"] / n,
                    ms["float32"] / ms["shortlist"],
                ]
            )
        store.close()
    recall._score_dtype = shipped  # type: ignore[assignment]
    raw["wall_s"] = time.perf_counter() - t_start
    table = markdown_table(
        [
            "evicted tokens",
            f"shortlist ({config.shortlist} blocks) ms / selection",
            "every key, bfloat16 ms",
            "every key, float32 ms",
            "bfloat16 / float32",
            "float32 ms per 1K tokens",
            "every key (float32) / shortlist",
        ],
        rows,
    )
    used = "bfloat16" if cpu_has_bf16() else "float32"
    md = f"""# Recall selection cost against the store's size

{(__doc__ or "").split(chr(10) + chr(10))[1]}

Machine: {raw["machine"]}; native bf16 dot products: {raw["native_bf16"]} (selection here
uses **{used}**). Median of {args.rounds} rounds, arms interleaved.

{table}

Command: `agentcore bench recall_cost --lengths {args.lengths} --rounds {args.rounds}
--bf16-max {args.bf16_max} --threads {args.threads}`; {raw["wall_s"]:.0f} s.
"""
    return publish("recall_cost", md, raw, args.out or DOCS)


if __name__ == "__main__":
    raise SystemExit(main())
