"""Decode and prefill speed next to llama.cpp: same GGUF file, same prompt tokens, same threads.

For every registered model that is installed (``--models``), two engines run side by side:
agentcore's core (``Engine.load(alias)``, a plain streaming session: sinks + the model card's
window, no recall) and llama.cpp (``llama-cpp-python``, ``Llama(model_path=<the same GGUF>)``,
a context as long as the prompt plus the decoded tokens). For each context length the same
token ids (a book from ``../shared/data``, cut to length) are read by both (prefill tokens/s),
then each decodes ``--steps`` tokens greedily, one forward per token, taking the argmax of the
last logits (decode tokens/s at that context). Each side runs in a child process of its own
(torch's and llama.cpp's OpenMP threads would otherwise spin on each other's cores). Sides
alternate inside each round and the figure is the median of ``--rounds`` rounds, so drifting
machine load hits both alike.

What differs by design: llama.cpp runs the GGUF's quantized tensors as they are and keeps the
whole context; agentcore dequantizes them once at load (bf16 / int8 kernels, see
``docs/benchmarks/dtype.md``) and keeps a fixed window, so past the window its step cost stops
growing. A sanity row checks that both run the same model: the greedy tokens both decode after
the short prompt (they may part after a few tokens: the weights are not bit-identical).

llama.cpp is a benchmark-only dependency, never a runtime one: ``make llamacpp`` builds the
pinned ``llama-cpp-python`` from source into ``.venv``. ``--ours-only`` runs without it.

Usage: ``agentcore bench speed [--models default,qwen2.5-coder-0.5b] [--contexts 18,1024,4096,8192]``.
Writes ``docs/benchmarks/speed.md`` and ``speed.json``.

``--profile-step`` profiles our decode step instead (no llama.cpp): ``--steps`` greedy steps
after the shortest context under ``torch.profiler``, the time split into the weight matmuls,
the attention kernel, the RMS norms, every other tensor op, and what no op accounts for
(Python and dispatch); writes ``speed-profile.md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from _common import (
    DOCS,
    book_tokens,
    machine,
    markdown_table,
    publish,
    rss_mib,
    weight_bytes_per_token,
)

from agentcore import _compute as compute
from agentcore.core.engine import Engine
from agentcore.core.models import MODELS, find_card, gguf_path, model_status

INSTALL = "make llamacpp"


class Ours:
    """agentcore's core on one model: a fresh plain session per measurement."""

    name = "agentcore"

    def __init__(self, alias: str, threads: int, weights: str = "auto") -> None:
        self.engine = Engine.load(alias, threads=threads, weights=weights)
        self.window = self.engine.session_config().streaming.window

    def run(self, ids: list[int], steps: int) -> tuple[float, float, list[int]]:
        session = self.engine.new_session()
        t0 = time.perf_counter()
        session.append_tokens(ids)
        prefill = len(ids) / (time.perf_counter() - t0)
        out: list[int] = []
        assert session.next_logits is not None
        tok = int(torch.argmax(session.next_logits))
        t0 = time.perf_counter()
        for _ in range(steps):
            out.append(tok)
            session.append_tokens([tok])
            tok = int(torch.argmax(session.next_logits))
        decode = steps / (time.perf_counter() - t0)
        session.close()
        return prefill, decode, out


class LlamaCpp:
    """llama.cpp on the same GGUF file: one context, cleared before each measurement."""

    name = "llama.cpp"

    def __init__(self, path: Path, threads: int, n_ctx: int) -> None:
        from llama_cpp import Llama

        self.llm = Llama(
            model_path=str(path),
            n_ctx=n_ctx,
            n_batch=512,
            n_threads=threads,
            n_threads_batch=threads,
            logits_all=False,
            verbose=False,
        )
        self.n_vocab = self.llm.n_vocab()

    def _last_logits(self) -> np.ndarray:
        # a view of llama.cpp's own buffer (no copy): the last evaluated token's logits
        ptr = self.llm._ctx.get_logits()
        return np.ctypeslib.as_array(ptr, shape=(self.n_vocab,))

    def run(self, ids: list[int], steps: int) -> tuple[float, float, list[int]]:
        self.llm.reset()
        self.llm._ctx.kv_cache_clear()  # a fresh context for every measurement
        t0 = time.perf_counter()
        self.llm.eval(ids)
        prefill = len(ids) / (time.perf_counter() - t0)
        out: list[int] = []
        tok = int(np.argmax(self._last_logits()))
        t0 = time.perf_counter()
        for _ in range(steps):
            out.append(tok)
            self.llm.eval([tok])
            tok = int(np.argmax(self._last_logits()))
        decode = steps / (time.perf_counter() - t0)
        return prefill, decode, out

    def close(self) -> None:
        self.llm.close()


class Remote:
    """One side in a child process of its own, driven over a pipe: torch and llama.cpp each
    bring an OpenMP runtime whose threads spin after work, so in one process each side's
    threads steal the cores the other is measured on."""

    def __init__(
        self, side: str, alias: str, threads: int, n_ctx: int, weights: str = "auto"
    ) -> None:
        self.name = {"ours": arm_name(weights), "llama": LlamaCpp.name}[side]
        cmd = [sys.executable, __file__, "--child", side, alias, str(threads), str(n_ctx), weights]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.info: dict[str, Any] = self._reply()

    def _reply(self) -> Any:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the {self.name} process ended (exit code {self.proc.wait()})")
        return json.loads(line)

    def run(self, ids: list[int], steps: int) -> tuple[float, float, list[int]]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"ids": ids, "steps": steps}) + "\n")
        self.proc.stdin.flush()
        prefill, decode, out = self._reply()
        return prefill, decode, out

    def close(self) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        last: dict[str, Any] = self._reply()  # the child's RSS as it ends
        self.proc.wait(timeout=60)
        return last


def arm_name(weights: str) -> str:
    """``agentcore`` for the auto weights, ``agentcore int8`` for weights asked for by name."""
    return Ours.name if weights == "auto" else f"{Ours.name} {weights}"


def agree_key(arm: str) -> str:
    """The row key of an agentcore arm's agreement with llama.cpp (``agree`` for auto's)."""
    return "agree" if arm == Ours.name else f"agree {arm}"


def child(side: str, alias: str, threads: int, n_ctx: int, weights: str) -> int:
    engine: Ours | LlamaCpp
    if side == "ours":
        engine = Ours(alias, threads, weights)
        details = engine.engine.info()
        info = {"window": engine.window, "dtype": details.dtype, "weights": details.weights}
    else:
        card = find_card(alias)
        assert card is not None
        engine = LlamaCpp(gguf_path(card), threads, n_ctx)
        info = {}
    print(json.dumps(info), flush=True)
    for line in sys.stdin:
        job = json.loads(line)
        print(json.dumps(engine.run(job["ids"], job["steps"])), flush=True)
    print(json.dumps({"rss_mib": rss_mib()}), flush=True)
    return 0


def _agree(a: list[int], b: list[int]) -> int:
    """How many leading tokens two greedy continuations share."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def bench_model(alias: str, args: argparse.Namespace, log: Any) -> dict[str, Any]:
    card = find_card(alias)
    assert card is not None
    codec = Engine.load(alias).codec  # only to cut the prompts: the same ids go to both sides
    prompts = {n: book_tokens(codec, n) for n in args.contexts}
    del codec
    gc.collect()
    n_ctx = max(args.contexts) + args.steps + 8
    sides = [Remote("ours", alias, args.threads, n_ctx, w) for w in args.weights]
    if not args.ours_only:
        sides.append(Remote("llama", alias, args.threads, n_ctx))
    for side in sides:  # untimed: first-call set-up (kernels, buffers, thread pools)
        side.run(prompts[min(prompts)][:16], 2)
    rows = []
    for n, ids in prompts.items():
        got: dict[str, list[tuple[float, float]]] = {s.name: [] for s in sides}
        tokens: dict[str, list[int]] = {}
        for r in range(args.rounds):
            order = sides if r % 2 == 0 else sides[::-1]
            for side in order:
                time.sleep(0.2)  # let the other side's threads go idle
                prefill, decode, out = side.run(ids, args.steps)
                got[side.name].append((prefill, decode))
                tokens[side.name] = out
                log(
                    f"{alias} ctx {n} round {r}: {side.name} prefill {prefill:.0f} tok/s, "
                    f"decode {decode:.1f} tok/s"
                )
        row: dict[str, Any] = {"context": n}
        for side in sides:
            row[f"{side.name}_prefill"] = statistics.median(p for p, _ in got[side.name])
            row[f"{side.name}_decode"] = statistics.median(d for _, d in got[side.name])
        if not args.ours_only:
            for side in sides[:-1]:
                row[agree_key(side.name)] = _agree(tokens[side.name], tokens[LlamaCpp.name])
        rows.append(row)
    rss = {side.name: side.close()["rss_mib"] for side in sides}
    return {
        "alias": alias,
        "gguf": str(gguf_path(card)),
        "window": sides[0].info["window"],
        "dtype": sides[0].info["dtype"],
        "weights": sides[0].info["weights"],
        # every agentcore arm (--weights): its row keys' prefix, dtype and weights
        "arms": [
            {"name": side.name, "dtype": side.info["dtype"], "weights": side.info["weights"]}
            for side in sides
            if side.name != LlamaCpp.name
        ],
        "rows": rows,
        "rss_mib": rss,
    }


# agentcore's native decode ops (float32 int8 layers): a layer's norms and projections
NATIVE_PART = "native layer ops (norm, Q/K/V, rotation; output, MLP)"
# top-level ops whose whole time (their children's included) makes one part of a decode step
STEP_PARTS = {
    "weight matmuls": (
        "aten::_weight_int8pack_mm",
        "aten::_weight_int4pack_mm",
        "aten::_weight_int4pack_mm_for_cpu",
        "aten::linear",
        "agentcore::int8_linear",  # the native kernel (a record_function while profiling)
        "agentcore::int8_linear_bf16",  # its bf16 kernel on the int8 tiles (AVX512-BF16)
    ),
    NATIVE_PART: ("agentcore::decode_qkv", "agentcore::decode_mlp"),
    "attention kernel": ("aten::scaled_dot_product_attention", "agentcore::decode_attention"),
    "RMS norms": ("aten::rms_norm",),
}
WEIGHT_PARTS = ("weight matmuls", NATIVE_PART)  # the parts that read the weights


def profile_model(alias: str, args: argparse.Namespace) -> dict[str, Any]:
    """:func:`profile_step` of ``alias`` after the shortest context, with :func:`kernel_rows`."""
    engine = Engine.load(alias, threads=args.threads, weights=args.weights[0])
    out = profile_step(engine, book_tokens(engine.codec, min(args.contexts)), args.steps)
    out["alias"] = alias
    # on the compute thread, with the engine's threads, as a decode step runs (another
    # thread's PyTorch ops run on one: agentcore._compute)
    out["kernels"] = compute.run(kernel_rows, engine, args.steps)
    out["kernels_batch"] = compute.run(kernel_rows, engine, args.steps, batch=BATCH_ROWS)
    return out


def profile_step(engine: Engine, context: list[int], n: int) -> dict[str, Any]:
    """Our decode step split by :data:`STEP_PARTS`: ``n`` greedy steps after ``context`` in a
    plain session, timed plain and then under ``torch.profiler``."""
    from torch.profiler import ProfilerActivity, profile

    session = engine.new_session()
    session.append_tokens(context)

    def decode(n: int) -> float:
        t0 = time.perf_counter()
        for _ in range(n):
            assert session.next_logits is not None
            session.append_tokens([int(torch.argmax(session.next_logits))])
        return time.perf_counter() - t0

    def profiled(n: int) -> tuple[float, Any]:
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            wall = decode(n)
        return wall, prof

    # on the compute thread, where the model's ops run (a profiler sees its own thread's ops)
    compute.run(decode, 4)  # untimed: first-call set-up
    plain = compute.run(decode, n)
    wall, prof = compute.run(profiled, n)
    events = prof.key_averages()
    # ops called from Python (no op above them): their whole time, children included
    called = [e for e in prof.events() if e.cpu_parent is None]
    ops_ms = sum(e.cpu_time_total for e in called) / 1e3
    parts: dict[str, dict[str, float]] = {}
    rest = called
    for part, names in STEP_PARTS.items():
        chosen = [e for e in rest if e.name in names]
        rest = [e for e in rest if e.name not in names]
        parts[part] = {
            "ms": sum(e.cpu_time_total for e in chosen) / 1e3 / n,
            "calls": len(chosen) / n,
        }
    parts["other tensor ops"] = {
        "ms": sum(e.cpu_time_total for e in rest) / 1e3 / n,
        "calls": len(rest) / n,
    }
    parts["Python and dispatch (no op)"] = {"ms": (wall * 1e3 - ops_ms) / n, "calls": 0}
    top = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[:12]
    weight_bytes = weight_bytes_per_token(engine)
    session.close()
    return {
        "dtype": str(engine.core.dtype).removeprefix("torch."),
        "weights": engine.core.weights,
        "context": len(context),
        "step_ms": plain * 1e3 / n,
        "profiled_step_ms": wall * 1e3 / n,
        "parts": parts,
        "weight_mib_per_step": weight_bytes / 2**20,
        "weight_gb_s": weight_bytes
        / 1e9
        / max(1e-9, sum(parts[p]["ms"] for p in WEIGHT_PARTS) / 1e3),
        "top_ops": [
            {"op": e.key, "self_ms": e.self_cpu_time_total / 1e3 / n, "calls": e.count / n}
            for e in top
        ],
    }


BATCH_ROWS = 16  # the kernel table's second pass: a decode step of 16 sessions batched


def kernel_rows(engine: Engine, rounds: int, batch: int = 1) -> list[dict[str, Any]]:
    """``batch`` rows (1: a session's decode step) through every int8 weight of ``engine`` (its
    real shapes and values, in model order, far more bytes than the caches hold), per kernel:
    PyTorch's int8 kernel, the bf16 copy batches used before the tiles, float32 dense weights,
    and fbgemm's dynamic int8 linear (activations quantized per call, so not the same numbers),
    and where they run agentcore's bf16 kernel on the int8 tiles (what a bf16 decode step runs
    on AVX512-BF16), its native int8 kernel (float32 activations, as a decode step runs with
    float32 int8 weights) and oneDNN-packed float32 weights (what auto holds on a CPU without
    bf16). Best of ``rounds`` passes."""
    from agentcore.core import native
    from agentcore.core.quant import (
        Int8Weight,
        PackedWeight,
        _dense_linear,
        _pack_bf16,
        int8_tiles,
        packed_float_available,
    )

    core = engine.core
    weights = [
        v
        for module in [*core.layers, core]
        for name in (*core._PROJECTIONS, "lm_head")
        if isinstance(v := vars(module).get(name), Int8Weight)
    ]
    if not weights:
        return []
    # PyTorch's int8 kernel and the bf16 copy run bf16 activations (as a bf16 engine does)
    xs = {w.shape[1]: torch.randn(batch, w.shape[1]).bfloat16() for w in weights}
    plain = [w.q for w in weights]  # [n_out, n_in] (a weight held as tiles unpacks on each read)
    # one scale per row for PyTorch's kernels and fbgemm (weights held per group: their speed
    # on the same bytes, not the same numbers)
    row_scales = [w.scale.reshape(w.shape[0], -1)[:, 0].contiguous() for w in weights]
    scales = [s.bfloat16() for s in row_scales]

    def best(run: Any) -> float:
        run()
        times = []
        for _ in range(rounds):
            t0 = time.perf_counter()
            run()
            times.append(time.perf_counter() - t0)
        return min(times)

    int8_bytes = sum(w.nbytes() for w in weights)
    rows: list[dict[str, Any]] = [
        {
            "kernel": "int8 (`_weight_int8pack_mm`, as a decode step runs)",
            "bytes": int8_bytes,
            "s": best(
                lambda: [
                    torch._weight_int8pack_mm(xs[w.shape[1]], q, s)
                    for w, q, s in zip(weights, plain, scales, strict=True)
                ]
            ),
        }
    ]
    tiles_kernel = native.int8_linear_bf16()
    if tiles_kernel is not None and any(w.tiled for w in weights):
        # a weight that is no whole number of tiles runs on PyTorch's kernel, as in a step
        calls = [
            functools.partial(tiles_kernel, xs[w.shape[1]], int8_tiles(q), s)
            if w.tiled
            else functools.partial(torch._weight_int8pack_mm, xs[w.shape[1]], q, s)
            for w, q, s in zip(weights, plain, scales, strict=True)
        ]
        rows.append(
            {
                "kernel": "agentcore bf16 on int8 tiles (AVX512-BF16; what a bf16 step runs)",
                "bytes": int8_bytes,
                "s": best(lambda: [call() for call in calls]),
            }
        )
    packed = [_pack_bf16(q.to(torch.bfloat16)) for q in plain]
    n_weights = sum(q.numel() for q in plain)
    rows.append(
        {
            "kernel": "bf16 copy, oneDNN-packed (batches of 4+ rows before the tiles)",
            "bytes": 2 * n_weights,
            "s": best(
                lambda: [
                    _dense_linear(xs[w.shape[1]], p) for w, p in zip(weights, packed, strict=True)
                ]
            ),
        }
    )
    dense = [w.dequantize(torch.float32) for w in weights]
    xf = {k: x.float() for k, x in xs.items()}
    rows.append(
        {
            "kernel": "float32 dense (`F.linear`)",
            "bytes": 4 * n_weights,
            "s": best(lambda: [F.linear(xf[d.shape[1]], d) for d in dense]),
        }
    )
    kernel = native.int8_linear()
    if kernel is not None:
        fscales = [w.scale.float() for w in weights]
        rows.append(
            {
                "kernel": "agentcore native int8 (float32 activations; `agentcore/core/native`)",
                "bytes": int8_bytes,
                "s": best(
                    lambda: [
                        kernel(xf[w.shape[1]], q, s)
                        for w, q, s in zip(weights, plain, fscales, strict=True)
                    ]
                ),
            }
        )
    if packed_float_available():
        packed_f32 = [PackedWeight(d) for d in dense]
        rows.append(
            {
                "kernel": "float32 oneDNN-packed (`PackedWeight`)",
                "bytes": 4 * n_weights,
                "s": best(lambda: [p(xf[p.shape[1]]) for p in packed_f32]),
            }
        )
    if "fbgemm" in torch.backends.quantized.supported_engines:
        packs = []
        with warnings.catch_warnings():  # PyTorch deprecates quantized tensors (kept to compare)
            warnings.simplefilter("ignore", UserWarning)
            for w, q, s in zip(weights, plain, row_scales, strict=True):
                zeros = torch.zeros(w.shape[0], dtype=torch.long)
                qt = torch._make_per_channel_quantized_tensor(q, s.double(), zeros, 0)
                packs.append(torch.ops.quantized.linear_prepack(qt, None))
        rows.append(
            {
                "kernel": "fbgemm dynamic int8 (activations quantized too)",
                "bytes": int8_bytes,
                "s": best(
                    lambda: [
                        torch.ops.quantized.linear_dynamic(xf[w.shape[1]], p, True)
                        for w, p in zip(weights, packs, strict=True)
                    ]
                ),
            }
        )
    base = rows[0]["s"]
    for r in rows:
        r["ms"] = r["s"] * 1e3
        r["gb_s"] = r["bytes"] / 1e9 / r["s"]
        r["vs_int8"] = base / r["s"]
    return rows


def profile_main(args: argparse.Namespace, argv: list[str]) -> int:
    t0 = time.perf_counter()
    models = [profile_model(a, args) for a in args.models.split(",")]
    raw = {
        "machine": machine(),
        "cpu": cpu_summary(),
        "threads": args.threads,
        "steps": args.steps,
        "flags": "".join(f" {a}" for a in argv),
        "took_s": time.perf_counter() - t0,
        "models": models,
    }
    return publish("speed-profile", profile_report(raw), raw, args.out)


def _command_and_machine(raw: dict[str, Any]) -> str:
    """A report's opening: the command, its minutes, the CPU, cores and torch."""
    return (
        f"Command: `agentcore bench speed{raw['flags']}`; {raw['took_s'] / 60:.1f} min. Machine: "
        f"{raw['cpu']}, {raw['machine']['cores']} cores, torch {raw['machine']['torch']}"
    )


def profile_report(raw: dict[str, Any]) -> str:
    parts = [
        "# Where a decode step goes (`bench/speed.py --profile-step`)",
        "",
        f"{_command_and_machine(raw)}; "
        f"{raw['machine']['date']}. Threads: {raw['threads']}; {raw['steps']} greedy decode "
        "steps timed plain, then the same number under `torch.profiler` (which slows them). "
        "Parts: the weight matmuls, agentcore's native layer ops (a layer's norms, projections, "
        "rotation and MLP in two calls, where they run), the attention kernel and the RMS norms "
        "with everything they call; every other tensor op; and the time no op accounts for "
        "(Python, dispatch, the profiler's own cost).",
    ]
    for m in raw["models"]:
        step = m["profiled_step_ms"]
        rows = [
            [name, p["ms"], f"{100 * p['ms'] / step:.0f}%", p["calls"] or "-"]
            for name, p in m["parts"].items()
        ]
        parts += [
            "",
            f"## {m['alias']} ({m['dtype']}, {m['weights']} weights, after {m['context']} tokens)",
            "",
            f"Step: {m['step_ms']:.1f} ms plain, {step:.1f} ms profiled. The weight matmuls "
            "(and the native layer ops, which hold them) "
            f"read {m['weight_mib_per_step']:.0f} MiB per step: "
            f"{m['weight_gb_s']:.1f} GB/s while they run.",
            "",
            markdown_table(["part", "ms per step", "share", "calls per step"], rows),
            "",
            "One row through every int8 weight of the model (real shapes and values), per "
            "kernel, on the engine's compute thread and threads; GB/s counts the bytes of the "
            "weights that kernel reads:",
            "",
            _kernel_table(m["kernels"]),
            "",
            f"The same with {BATCH_ROWS} rows (a decode step of {BATCH_ROWS} sessions batched):",
            "",
            _kernel_table(m.get("kernels_batch", [])),
            "",
            markdown_table(
                ["op (most self time)", "self ms per step", "calls per step"],
                [[t["op"], t["self_ms"], t["calls"]] for t in m["top_ops"]],
            ),
        ]
    return "\n".join(parts)


def _kernel_table(kernels: list[dict[str, Any]]) -> str:
    return markdown_table(
        ["kernel", "ms per pass", "MiB read", "GB/s", "speed vs int8 kernel"],
        [[k["kernel"], k["ms"], k["bytes"] / 2**20, k["gb_s"], k["vs_int8"]] for k in kernels],
    )


def cpu_summary() -> str:
    """The CPU's model name and the vector extensions that decide both engines' kernels."""
    name, flags = "unknown CPU", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and name == "unknown CPU":
                name = value.strip()
            elif key.strip() == "flags" and not flags:
                flags = set(value.split())
    except OSError:
        pass
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16")
    return f"{name} ({' '.join(f for f in wanted if f in flags) or 'no AVX2'})"


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}" if a and b else "-"


def report(raw: dict[str, Any]) -> str:
    parts = [
        "# Speed next to llama.cpp (`bench/speed.py`)",
        "",
        f"{_command_and_machine(raw)}, llama-cpp-python "
        f"{raw['llama_cpp'] or 'not installed'}; {raw['machine']['date']}. {raw['threads']} "
        f"threads for both; {raw['steps']} greedy decode steps; median of {raw['rounds']} "
        "rounds, sides alternating. Same GGUF file and same prompt token ids for both.",
        "",
        "llama.cpp runs the file's quantized tensors and keeps the whole context; agentcore "
        "dequantizes at load and keeps sinks + a window (the model card's), so beyond the "
        "window its per-token cost stops growing. `agree`: greedy tokens both decoded alike "
        f"before the first difference (of {raw['steps']}).",
    ]
    for m in raw["models"]:
        arms = m.get("arms") or [{"name": Ours.name, "dtype": m["dtype"], "weights": m["weights"]}]
        for arm in arms:
            parts += _arm_table(m, arm)
    return "\n".join(parts) + "\n"


def _arm_table(m: dict[str, Any], arm: dict[str, Any]) -> list[str]:
    """One agentcore arm of one model next to llama.cpp: its table and the processes' RSS."""
    a = arm["name"]
    agree = agree_key(a)
    rows = [
        [
            r["context"],
            r[f"{a}_decode"],
            r.get("llama.cpp_decode", "-"),
            _ratio(r[f"{a}_decode"], r.get("llama.cpp_decode")),
            r[f"{a}_prefill"],
            r.get("llama.cpp_prefill", "-"),
            _ratio(r[f"{a}_prefill"], r.get("llama.cpp_prefill")),
            r.get(agree, "-"),
        ]
        for r in m["rows"]
    ]
    return [
        "",
        f"## {m['alias']} (agentcore: window {m['window']}, {arm['dtype']}, "
        f"{arm['weights']} weights)",
        "",
        markdown_table(
            [
                "context",
                f"{a} decode tok/s",
                "llama.cpp decode tok/s",
                "ratio",
                f"{a} prefill tok/s",
                "llama.cpp prefill tok/s",
                "ratio",
                "agree",
            ],
            rows,
        ),
        "",
        "Process RSS at the end: "
        + ", ".join(f"{k} {v:.0f} MiB" for k, v in m["rss_mib"].items())
        + ".",
    ]


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--child"]:
        side, alias, threads, n_ctx, weights = argv[1:6]
        return child(side, alias, int(threads), int(n_ctx), weights)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    installed = [c.alias for c in MODELS if model_status(c).installed]
    ap.add_argument("--models", default=",".join(installed), help="model aliases, comma-separated")
    ap.add_argument("--contexts", default="18,1024,4096,8192", help="prompt lengths in tokens")
    ap.add_argument("--steps", type=int, default=32, help="greedy decode steps per measurement")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--ours-only", action="store_true", help="without llama.cpp")
    ap.add_argument(
        "--weights",
        default="auto",
        help="agentcore's weights, comma-separated arms (e.g. auto,int8): each runs beside "
        "llama.cpp in the same rounds",
    )
    ap.add_argument("--profile-step", action="store_true", help="where our decode step's time goes")
    ap.add_argument("--out", type=Path, default=DOCS)
    args = ap.parse_args(argv)
    args.contexts = [int(x) for x in args.contexts.split(",")]
    args.weights = args.weights.split(",")
    if args.profile_step:
        return profile_main(args, argv)
    llama_version = None
    if not args.ours_only:
        try:
            import llama_cpp
        except ImportError:
            print(
                f"bench speed: llama-cpp-python is not installed ({INSTALL} builds it), "
                "or pass --ours-only",
                file=sys.stderr,
            )
            return 2
        llama_version = llama_cpp.__version__
    t0 = time.perf_counter()
    models = [bench_model(a, args, lambda m: print(m, flush=True)) for a in args.models.split(",")]
    flags = "".join(f" {a}" for a in argv)
    raw = {
        "machine": machine(),
        "cpu": cpu_summary(),
        "llama_cpp": llama_version,
        "threads": args.threads,
        "steps": args.steps,
        "rounds": args.rounds,
        "flags": flags,
        "took_s": time.perf_counter() - t0,
        "models": models,
    }
    return publish("speed", report(raw), raw, args.out)


if __name__ == "__main__":
    sys.exit(main())
