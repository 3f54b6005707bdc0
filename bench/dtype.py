"""Which dtype and weight format to run on this machine: speed and perplexity, side by side.

Loads the model once per arm (``float32``, ``bfloat16``, ``bfloat16+int8``: bf16 with int8
projection weights, ``float32+packed``: float32 weights in oneDNN's blocked layout,
``bfloat16+int4`` / ``float32+int4``: int4 projection weights in groups of 32 with bf16 or
float32 activations), streams the same book tokens through a session of each
and measures prefill tokens/s, weight bytes and perplexity; then decode steps after that
context, in rounds that alternate between the arms (all engines stay loaded), so a machine
shared with other jobs slows every arm alike and the ratios hold. The loader's CPU defaults
(``choose_dtype``, ``choose_weights``) follow this table. Writes ``docs/benchmarks/dtype.md``
+ JSON (``dtype-<model>`` for a model other than the default). Usage:
``agentcore bench dtype [--model M] [--arms float32,bfloat16,...] [--tokens 4096]``.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch
from _common import (
    book_tokens,
    machine,
    markdown_table,
    median_ms,
    weight_bytes_per_token,
    write_report,
)

from agentcore.core.engine import Engine

ARMS = "float32,bfloat16,bfloat16+int8,bfloat16+int4,float32+int4"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", default=None, help="model alias or path (default: the default)")
    ap.add_argument("--arms", default=ARMS)
    ap.add_argument("--tokens", type=int, default=4096)
    ap.add_argument("--rounds", type=int, default=6, help="decode rounds per arm, alternating")
    ap.add_argument("--steps", type=int, default=8, help="decode steps per round")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (default: all cores)"
    )
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    n = 1024 if args.quick else args.tokens
    arms = args.arms.split(",")
    loaded: dict[str, Any] = {}
    raw: dict[str, dict[str, float]] = {}
    load_before = os.getloadavg()[0]
    for name in arms:
        dtype, _, weights = name.partition("+")
        engine = Engine.load(args.model, dtype=dtype, weights=weights or "float")
        ids = torch.tensor([book_tokens(engine.codec, n)])
        session = engine.new_session()
        logps = engine.core.score(ids, session.cache)
        ppl = math.exp(-float(logps[1:].mean()))
        assert engine.core.last_logits is not None
        session.next_logits = engine.core.last_logits
        loaded[name] = (engine, session)
        raw[name] = {
            "weight_mib": engine.core.weight_bytes() / 2**20,
            "read_mib_per_token": weight_bytes_per_token(engine) / 2**20,
            "ppl": ppl,
            "ppl_vs_first": ppl / raw[arms[0]]["ppl"] if raw else 1.0,
        }
        print(f"{name}: ppl {ppl:.3f}", flush=True)
    times: dict[str, list[float]] = {name: [] for name in arms}
    chunks: dict[str, list[float]] = {name: [] for name in arms}
    for r in range(args.rounds):
        order = arms if r % 2 == 0 else arms[::-1]
        for name in order:
            engine, session = loaded[name]
            # prefill: one chunk of 512 book tokens into a fresh cache
            chunk = torch.tensor([book_tokens(engine.codec, 512)])
            t0 = time.perf_counter()
            engine.core.forward(chunk, engine.core.new_cache(session.cache.config))
            chunks[name].append(time.perf_counter() - t0)
            tok = int(torch.argmax(session.next_logits))
            session.append_tokens([tok])  # warm the caches of this arm after the others ran
            for _ in range(args.steps):
                t1 = time.perf_counter()
                session.append_tokens([tok])
                assert session.next_logits is not None
                tok = int(torch.argmax(session.next_logits))
                times[name].append(time.perf_counter() - t1)
    load_after = os.getloadavg()[0]
    first = arms[0]
    rows = []
    for name in arms:
        dec = median_ms(times[name])
        raw[name]["decode_ms"] = dec
        raw[name]["decode_vs_first"] = median_ms(times[first]) / dec
        raw[name]["prefill_tok_s"] = 512 / (median_ms(chunks[name]) / 1000)
        raw[name]["prefill_vs_first"] = median_ms(chunks[first]) / median_ms(chunks[name])
        m = raw[name]
        rows.append(
            [
                name,
                m["weight_mib"],
                m["read_mib_per_token"],
                m["prefill_tok_s"],
                m["prefill_vs_first"],
                dec,
                1000 / dec,
                m["decode_vs_first"],
                f"{m['ppl']:.3f}",
                f"{m['ppl_vs_first']:.4f}",
            ]
        )
    table = markdown_table(
        [
            "arm",
            "weight MiB",
            "MiB read / token",
            "prefill tok/s",
            "prefill vs first",
            "decode ms/tok",
            "decode tok/s",
            "decode vs first",
            f"ppl ({n} tokens)",
            "ppl vs first",
        ],
        rows,
    )
    model = args.model or "default"
    isa = torch.backends.cpu.get_cpu_capability()
    forced = bool(os.environ.get("ATEN_CPU_CAPABILITY"))
    info = machine() | {
        "cpu_kernels": isa,  # ATEN_CPU_CAPABILITY=avx2 runs the AVX2 kernels on a newer CPU
        "load_avg_1min": [round(load_before, 2), round(load_after, 2)],
    }
    md = f"""# dtype and weight format on this machine ({model} model)

Perplexity: the first {n} book tokens of austen-emma.txt streamed through a default
session (sinks + window; activations and KV cache in the arm's dtype). Speed, in
{args.rounds} rounds that alternate between the arms: a prefill chunk of 512 tokens into a
fresh cache, then {args.steps} greedy decode steps after the {n}-token context; the medians
are reported. "+int8" stores every projection and the LM head as per-row int8 weights
(with float32 activations, agentcore's native kernel, `agentcore/core/native/`, for calls of
up to 8 rows, and a float32 copy of the weight, counted in "weight MiB", for longer ones);
"+int4" every projection as int4 with a bf16 scale and zero per group of 32 inputs and the
LM head as per-row int8 (`agentcore/core/quant.py`); "+packed" holds them as float32 in
oneDNN's blocked layout (not quantized; a tied LM head gets a packed copy beside the embedding
table); embeddings, norms and activations stay in the arm's dtype. "MiB read / token": the
weight bytes one decode step reads (all but the embedding table, which is read whole when it is
also the LM head).
Machine: {info}; load average (1 min) {load_before:.1f} before, {load_after:.1f} after.
CPU kernels: {isa}{" (forced by ATEN_CPU_CAPABILITY; this CPU may have more)" if forced else ""}.
Command: `{" ".join(["agentcore bench dtype", *(argv if argv is not None else sys.argv[1:])])}`.

{table}

A decode step reads every weight once, so on a CPU it is bound by memory bandwidth: the arm
with the fewest bytes decodes fastest, as long as its kernel keeps up. On a machine shared
with other jobs the absolute numbers move; the "vs first" ratios come from interleaved rounds.
Prefill runs chunks of 512 tokens through dense matmuls on dequantized weights, so the
quantized arms pay a dequantization per chunk there (float32 + int8: on the float32 copy).

What `--weights auto` picks (`agentcore/core/loader.py`, `choose_weights`): int8 on a CPU
running bf16, and on a float32 CPU where agentcore's native int8 kernel runs (x86 with AVX2
and a C++ compiler); packed float32 weights on other CPUs (plain float32 where oneDNN cannot
run them), float weights on GPUs. int4 (`--weights int4`)
reads the fewest bytes and keeps perplexity within 1% of float32 where the model's projections
already sit on a 4-bit grid of groups of 32 (a GGUF with Q4_0/Q4_1 projections, such as
SmolLM2's: int4 holds them as they were); its kernel computes in bf16, so it changes the real
models' greedy replies, and auto will pick it only once the real-model tests have been checked
on it. The LM head of an int4 model is int8 (int4 there cost SmolLM2 6% perplexity: its head is
Q8_0 in the file).
"""
    name = "dtype" if args.model in (None, "default") else f"dtype-{args.model}"
    if forced:
        name += f"-{isa.lower()}"
    path = write_report(name, md, {"machine": info, "results": raw}, args.out)
    print(table)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
