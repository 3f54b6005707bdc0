"""Which dtype and weight format to run on this machine: speed and perplexity, side by side.

Loads the default model in each arm (``float32``, ``bfloat16``, ``bfloat16+int8``: bf16 with
int8 projection weights), streams the same book tokens through a session and measures prefill
tokens/s, decode ms/token after that context, weight bytes and perplexity. The loader's CPU
defaults (``choose_dtype``, ``choose_weights``) follow this table. Writes
``docs/benchmarks/dtype.md`` + JSON. Usage:
``agentcore bench dtype [--arms float32,bfloat16,bfloat16+int8] [--tokens 4096]``.
"""

from __future__ import annotations

import argparse
import gc
import math
import sys
import time
from pathlib import Path

import torch
from _common import book_tokens, machine, markdown_table, median_ms, write_report

from agentcore.core.engine import Engine


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--arms", default="float32,bfloat16,bfloat16+int8")
    ap.add_argument("--tokens", type=int, default=4096)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (default: all cores)"
    )
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    n = 1024 if args.quick else args.tokens
    rows = []
    raw = {}
    for name in args.arms.split(","):
        dtype, _, weights = name.partition("+")
        engine = Engine.load(dtype=dtype, weights=weights or "float")
        ids = torch.tensor([book_tokens(engine.codec, n)])
        session = engine.new_session()
        t0 = time.perf_counter()
        logps = engine.core.score(ids, session.cache)
        prefill = n / (time.perf_counter() - t0)
        ppl = math.exp(-float(logps[1:].mean()))
        assert engine.core.last_logits is not None
        tok = int(torch.argmax(engine.core.last_logits))
        times = []
        for _ in range(24):
            t1 = time.perf_counter()
            session.append_tokens([tok])
            assert session.next_logits is not None
            tok = int(torch.argmax(session.next_logits))
            times.append(time.perf_counter() - t1)
        dec = median_ms(times[2:])
        mib = engine.core.weight_bytes() / 2**20
        base = raw[next(iter(raw))]["ppl"] if raw else ppl
        rows.append([name, mib, prefill, dec, 1000 / dec, ppl, ppl / base])
        raw[name] = {
            "weight_mib": mib,
            "prefill_tok_s": prefill,
            "decode_ms": dec,
            "ppl": ppl,
            "ppl_vs_first": ppl / base,
        }
        print(f"{name}: prefill {prefill:.0f} tok/s, decode {dec:.1f} ms/token, ppl {ppl:.3f}")
        del engine, session
        gc.collect()
    table = markdown_table(
        [
            "arm",
            "weight MiB",
            "prefill tok/s",
            "decode ms/tok",
            "decode tok/s",
            f"ppl ({n} tokens)",
            "ppl vs first",
        ],
        rows,
    )
    md = f"""# dtype and weight format on this machine

Default model, the first {n} book tokens of austen-emma.txt streamed through a default session
(sinks + window 2048; activations and KV cache in the arm's dtype), then greedy decode steps;
the median decode step is reported. "+int8" stores every projection and the LM head as per-row
int8 weights (`agentcore/core/quant.py`); embeddings, norms and activations stay bf16.
Machine: {machine()}.
Command: `{" ".join(["agentcore bench dtype", *(argv if argv is not None else sys.argv[1:])])}`.

{table}

A decode step reads every weight once, so on a CPU it is bound by memory bandwidth: the
arm with the fewest bytes decodes fastest. The loader's defaults follow this table: on a CPU
with bf16 dot products (AVX512-BF16 here) bf16 activations with int8 weights, else float32.
"""
    path = write_report("dtype", md, {"machine": machine(), "results": raw}, args.out)
    print(table)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
