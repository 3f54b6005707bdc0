"""Scale-out costs: Ray vs in-process simulation, chromadb server vs embedded memory.

Two parts, each on the real engines the product scales out to:

- **simulation**: agent-steps/s of the same generated town (``bench/sim.py``'s scenario and
  child process) in this process (``scripted``, ``local``) and on 2 Ray workers of a private
  local Ray instance (``ray-scripted``, ``ray-local``), at 5 and 25 agents, with the scripted
  stand-in model and with the real default model (``--no-real`` skips the real rows);
- **memory**: ``LongTermMemory.search(query, k=5)`` p50/p95 on the embedded store (journal on,
  as shipped) and through a ``chroma run`` server on 127.0.0.1 (``url=``), at 10K and 100K
  memories, plus a filtered search (agent, kind, time), fill rate, disk and server RSS.
  Both stores get the same records and vectors. The vectors come from the offline hash
  embedding (embedding 100K texts with all-MiniLM-L6-v2 takes most of an hour on 2 cores), so
  the times are the store's alone: a real query adds its embedding (~12 ms p50 here, see
  ``docs/benchmarks/memory.md``) to either arm.

Usage: ``agentcore bench scale [--quick]`` or ``.venv/bin/python bench/scale.py``.
Writes ``docs/benchmarks/scale.md`` and ``scale.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psutil
from _common import DOCS, machine, markdown_table, write_report

from agentcore.memory import HashEmbeddingFunction, LongTermMemory, MemoryKind, MemoryRecord

T0 = datetime(2025, 1, 1, tzinfo=UTC)
PEOPLE = ["ann", "bob", "cid", "dora", "eli", "fay", "gus", "hal", "ida", "jon", "kim", "lea"]
PLACES = ["cafe", "park", "office", "library", "market", "station", "gym", "garden"]
TOPICS = ["the budget", "a holiday", "the garden", "football", "the new printer", "lunch",
          "the roadmap", "a birthday", "the weather", "the move", "a concert", "the dog"]  # fmt: skip


# ---------------------------------------------------------------------- simulation


def bench_sim(real: bool, log: Any) -> list[dict[str, Any]]:
    import sim  # bench/sim.py: the town scenario and its measuring child process

    plan = [(arm, n, 3) for n in (5, 25) for arm in ("scripted", "ray-scripted")]
    if real:
        plan += [(arm, n, 2) for n in (5, 25) for arm in ("local", "ray-local")]
    rows = []
    for arm, n, ticks in plan:
        row = sim.measure(arm, n, ticks, 4, 1020, None)
        rows.append(row)
        log(
            f"{arm:13s} n={n:3d} {row['steps_per_s']:8.3g} steps/s "
            f"(after tick 0: {row['steps_per_s_later_ticks']}); setup {row['setup_s']:.1f} s"
        )
    return rows


# ---------------------------------------------------------------------- memory


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_chroma(path: Path, log_file: Path) -> tuple[subprocess.Popen[bytes], str]:
    binary = Path(sys.executable).parent / "chroma"
    port = _free_port()
    with open(log_file, "ab") as out:
        proc = subprocess.Popen(
            [str(binary), "run", "--path", str(path), "--host", "127.0.0.1", "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=dict(os.environ, ANONYMIZED_TELEMETRY="False"),
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/api/v2/heartbeat", timeout=1.0).status_code == 200:
                return proc, url
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"chroma run did not start: {log_file.read_text()[-2000:]}")


def records_and_vectors(
    start: int, n: int, embedder: HashEmbeddingFunction
) -> tuple[list[MemoryRecord], np.ndarray]:
    rng = random.Random(start)
    kinds = [MemoryKind.EPISODIC] * 7 + [MemoryKind.FACT] * 2 + [MemoryKind.LESSON]
    records = [
        MemoryRecord(
            kind=kinds[i % len(kinds)],
            text=f"{rng.choice(PEOPLE)} met {rng.choice(PEOPLE)} at the {rng.choice(PLACES)} "
            f"about {rng.choice(TOPICS)} on day {i}",
            agent=f"agent{i % 8}",
            time=T0 + timedelta(minutes=i),
            importance=(i * 7919 % 100) / 100,
        )
        for i in range(start, start + n)
    ]
    vectors = np.stack([embedder.embed(r.text) for r in records])  # [n, 384]
    return records, vectors


def queries(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [
        f"when did {rng.choice(PEOPLE)} talk about {rng.choice(TOPICS)} at the "
        f"{rng.choice(PLACES)}?"
        for _ in range(n)
    ]


def timed_ms(memory: LongTermMemory, qs: list[str], **kw: Any) -> tuple[float, float]:
    now = T0 + timedelta(days=400)
    for q in qs[:5]:  # warm up
        memory.search(q, k=5, now=now, **kw)
    samples = []
    for q in qs[5:]:
        t = time.perf_counter()
        memory.search(q, k=5, now=now, **kw)
        samples.append(time.perf_counter() - t)
    ms = np.array(samples) * 1000
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 95))


def _du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def bench_memory(sizes: list[int], n_queries: int, workdir: Path, log: Any) -> list[dict[str, Any]]:
    embedder = HashEmbeddingFunction()
    server, url = start_chroma(workdir / "server", workdir / "chroma.log")
    rows: list[dict[str, Any]] = []
    try:
        stores = {
            "embedded": LongTermMemory(workdir / "embedded", embedder=embedder),
            "server": LongTermMemory(url=url, embedder=embedder),
        }
        fill_s = dict.fromkeys(stores, 0.0)
        pool = ThreadPoolExecutor(max_workers=len(stores))
        stored = 0
        qs = queries(n_queries + 5, seed=3)
        for size in sizes:
            while stored < size:
                n = min(2000, size - stored)
                records, vectors = records_and_vectors(stored, n, embedder)

                def fill(
                    name: str, r: list[MemoryRecord] = records, v: np.ndarray = vectors
                ) -> None:
                    t = time.perf_counter()
                    stores[name].add_many(r, embeddings=v)
                    fill_s[name] += time.perf_counter() - t

                # both stores fill at once (the 2 cores shared): the fill rates are lower bounds
                list(pool.map(fill, stores))
                stored += n
            for name, memory in stores.items():
                assert memory.count() == size
                p50, p95 = timed_ms(memory, qs)
                f50, f95 = timed_ms(
                    memory,
                    qs[:55],
                    agent="agent3",
                    kinds=["episodic"],
                    since=T0 + timedelta(days=1),
                )
                disk = _du(workdir / ("server" if name == "server" else "embedded"))
                rss = psutil.Process(server.pid).memory_info().rss if name == "server" else None
                row = {
                    "store": name,
                    "memories": size,
                    "search_p50_ms": p50,
                    "search_p95_ms": p95,
                    "filtered_p50_ms": f50,
                    "filtered_p95_ms": f95,
                    "fill_per_s": stored / fill_s[name],
                    "disk_mib": disk / 2**20,
                    "bytes_per_memory": disk / size,
                    "server_rss_mib": rss / 2**20 if rss is not None else None,
                }
                rows.append(row)
                log(
                    f"{name:8s} {size:7d}: search p50 {p50:.1f} ms p95 {p95:.1f} ms; filtered "
                    f"p50 {f50:.1f} p95 {f95:.1f}; fill {row['fill_per_s']:.0f}/s; "
                    f"disk {row['disk_mib']:.0f} MiB"
                )
        pool.shutdown()
        for memory in stores.values():
            memory.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    return rows


# ---------------------------------------------------------------------- report


def _previous(out: Path) -> dict[str, Any]:
    """The last run's rows (for a part this run skips), each part with the date it ran."""
    path = out / "scale.json"
    if not path.exists():
        return {"sim": [], "sim_date": None, "memory": [], "memory_date": None}
    old = json.loads(path.read_text())
    date = old["machine"]["date"]
    return {
        "sim": old.get("sim", []),
        "sim_date": old.get("sim_date", date),
        "memory": old.get("memory", []),
        "memory_date": old.get("memory_date", date),
    }


def _ran(part: str, raw: dict[str, Any]) -> str:
    date = raw[f"{part}_date"]
    if date == raw["machine"]["date"]:
        return ""
    return f"\n\nThese rows are carried from an earlier run of this benchmark ({date}); this run skipped the part.\n"


def report(raw: dict[str, Any], args: argparse.Namespace) -> str:
    info = raw["machine"]
    sim_rows = raw["sim"]
    base = {(r["arm"], r["agents"]): r for r in sim_rows if not r["arm"].startswith("ray-")}

    def vs_local(r: dict[str, Any], key: str) -> str:
        ref = base.get((r["arm"].removeprefix("ray-"), r["agents"]))
        if not r["arm"].startswith("ray-") or ref is None or not ref[key] or not r[key]:
            return "-"
        return f"{r[key] / ref[key]:.2f}"

    sim_table = markdown_table(
        [
            "arm",
            "agents",
            "ticks",
            "agent-steps",
            "steps/s",
            "Ray / in-process",
            "steps/s after tick 0",
            "Ray / in-process after tick 0",
            "setup s",
        ],
        [
            [
                r["arm"],
                r["agents"],
                r["ticks"],
                r["agent_steps"],
                r["steps_per_s"],
                vs_local(r, "steps_per_s"),
                r["steps_per_s_later_ticks"] if r["steps_per_s_later_ticks"] else "-",
                vs_local(r, "steps_per_s_later_ticks"),
                r["setup_s"],
            ]
            for r in sim_rows
        ],
    )
    mem_table = markdown_table(
        [
            "store",
            "memories",
            "search p50 ms",
            "search p95 ms",
            "filtered p50 ms",
            "filtered p95 ms",
            "fill memories/s",
            "disk MiB",
            "bytes per memory",
            "server RSS MiB",
        ],
        [
            [
                r["store"],
                f"{r['memories']:,}",
                r["search_p50_ms"],
                r["search_p95_ms"],
                r["filtered_p50_ms"],
                r["filtered_p95_ms"],
                r["fill_per_s"],
                r["disk_mib"],
                r["bytes_per_memory"],
                r["server_rss_mib"] if r["server_rss_mib"] is not None else "-",
            ]
            for r in raw["memory"]
        ],
    )
    return f"""# Scale-out: Ray simulations and a chromadb server (`bench/scale.py`)

Command: `.venv/bin/python bench/scale.py{raw["flags"]}` under `nice`;
took {raw["took_s"] / 60:.1f} min. Machine: {info["cores"]} cores, torch {info["torch"]},
CUDA: {info["cuda"]}; {info["date"]}. Other jobs shared the 2 cores while it ran, so every
number is noisy (a tenth either way between runs is common).

## Simulation: in-process vs 2 Ray workers

The generated town of `bench/sim.py` (N agents over 5 places, speak / move / wait), one fresh
process per row. `scripted`: the rule-based stand-in model (what the framework costs per
agent step); `local`: the real default model (SmolLM2-135M, 4 tokens per reply, window 1020),
one shared engine in the process; `ray-*`: the same file on 2 workers of a private local
Ray instance (1 CPU each; `local` loads one model per worker, 1 torch thread each). Setup
includes starting Ray and the workers (and loading their models). An agent step is one
agent's turn in one tick; tick 0 includes every agent's first prefill.{_ran("sim", raw)}

{sim_table}

## Memory search: embedded vs a `chroma run` server on 127.0.0.1

Both stores hold the same records (70% episodic, 20% facts, 10% lessons; 8 agents) with the
same vectors from the offline hash embedding (not the MiniLM model: see above; a real query
adds its embedding, ~12 ms p50, to both arms). `search` = `search(query, k=5)` over all
kinds with the default weights ({args.queries} queries after 5 warm-ups); `filtered` adds
agent, kind and time filters (50 queries). Through the server each search is 5 HTTP requests
(4 collection queries + 1 document fetch), each on a new loopback connection (agentcore keeps
no idle connections open: chromadb's client cannot close its pool). The embedded store writes
its journal too (as shipped); the server owns its durability. `disk` is the whole store folder.
Both stores were filled at the same time (2,000 records per `add_many`, two threads sharing the
2 cores), so the fill rates are lower bounds for either alone.{_ran("memory", raw)}

{mem_table}
"""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="10K memories only, scripted model only")
    ap.add_argument("--no-real", action="store_true", help="skip the real-model rows")
    ap.add_argument("--no-sim", action="store_true", help="memory part only")
    ap.add_argument(
        "--no-memory",
        action="store_true",
        help="simulation part only; the report keeps the memory rows of the previous run "
        "(scale.json in --out), marked with that run's date",
    )
    ap.add_argument("--queries", type=int, default=200, help="timed searches per row")
    ap.add_argument("--out", type=Path, default=DOCS)
    ap.add_argument(
        "--report-only", action="store_true", help="write the report again from scale.json"
    )
    args = ap.parse_args(argv)
    if args.report_only:
        raw = json.loads((args.out / "scale.json").read_text())
        raw.setdefault("flags", "")
        for part in ("sim", "memory"):
            raw.setdefault(f"{part}_date", raw["machine"]["date"])
        path = write_report("scale", report(raw, args), raw, args.out)
        print(f"wrote {path}")
        return 0

    def log(msg: str) -> None:
        print(msg, flush=True)

    t0 = time.perf_counter()
    previous = _previous(args.out)
    if args.no_sim:
        sim_rows, sim_date = previous["sim"], previous["sim_date"]
    else:
        sim_rows, sim_date = bench_sim(not (args.quick or args.no_real), log), None
    if args.no_memory:
        mem_rows, mem_date = previous["memory"], previous["memory_date"]
    else:
        workdir = Path(tempfile.mkdtemp(prefix="bench-scale-"))
        try:
            sizes = [10_000] if args.quick else [10_000, 100_000]
            mem_rows, mem_date = bench_memory(sizes, args.queries, workdir, log), None
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
    info = machine()
    raw = {
        "machine": info,
        "took_s": time.perf_counter() - t0,
        "flags": "".join(f" {a}" for a in (argv if argv is not None else sys.argv[1:])),
        "sim": sim_rows,
        "sim_date": sim_date or info["date"],
        "memory": mem_rows,
        "memory_date": mem_date or info["date"],
    }
    md = report(raw, args)
    path = write_report("scale", md, raw, args.out)
    print(md)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
