"""Which dtype to run on this machine: decode/prefill speed and perplexity per dtype.

Loads the default model in each dtype, streams the same book tokens through a session and
measures prefill tokens/s, decode ms/token at 1K context and perplexity. The loader's CPU
default (``choose_dtype``) follows this table. Writes ``docs/benchmarks/dtype.md`` + JSON.
Usage: ``agentcore bench dtype [--dtypes float32,bfloat16] [--tokens 4096]``.
"""

from __future__ import annotations

import argparse
import gc
import math
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # repo packages before bench/*.py
sys.path.append(str(Path(__file__).resolve().parent))  # bench/_common.py
from _common import book_tokens, machine, markdown_table, median_ms, write_report

from agentcore.core.engine import Engine


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--dtypes", default="float32,bfloat16")
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
    for name in args.dtypes.split(","):
        engine = Engine.load(dtype=name)
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
        rows.append([name, prefill, dec, 1000 / dec, ppl])
        raw[name] = {"prefill_tok_s": prefill, "decode_ms": dec, "ppl": ppl}
        print(f"{name}: prefill {prefill:.0f} tok/s, decode {dec:.1f} ms/token, ppl {ppl:.3f}")
        del engine, session
        gc.collect()
    table = markdown_table(
        ["dtype", "prefill tok/s", "decode ms/tok", "decode tok/s", f"ppl ({n} tokens)"], rows
    )
    md = f"""# dtype choice on this machine

Default model, book tokens from austen-emma.txt, decode after {n} tokens. Machine: {machine()}.

{table}
"""
    path = write_report("dtype", md, {"machine": machine(), "results": raw}, args.out)
    print(table)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
