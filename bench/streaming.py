"""Streaming benchmark: flat decode cost, bounded memory and streaming perplexity.

Runs side by side, in one process, on one model (``--model``, default SmolLM2):

* decode ms/token and RSS after contexts of 1K, 8K, 64K (and 1M with ``--long``) tokens for
  this engine (sinks + window), the same with exact recall of evicted blocks (also at 128K,
  with the store's host bytes per token) and transformers' plain ``DynamicCache`` (up to the
  model's 8192-token limit);
* decode tokens/s at 1K context: this engine's session vs transformers' default ``generate``;
* streaming perplexity over ``austen-emma.txt``: dense attention (first 8K), a sliding window
  without sinks, and sinks + window.

Writes ``docs/benchmarks/streaming.md``, ``streaming.json`` and ``streaming.png``.
Usage: ``agentcore bench streaming [--tokens 65536] [--long] [--quick]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import sys
import time
from pathlib import Path
from typing import Any

import torch
from _common import (
    book_tokens,
    interleaved_decode_ms,
    machine,
    markdown_table,
    median_ms,
    ppl,
    rss_mib,
    write_report,
)

from agentcore.core.cache import StreamingConfig
from agentcore.core.engine import Engine
from agentcore.core.loader import hf_cache_kwargs, load_model
from agentcore.core.recall import RecallConfig
from agentcore.core.session import Session, SessionConfig

DECODE_STEPS = 24
PERIOD = (
    RecallConfig().refresh + 1
)  # steps of one recall cycle: a re-selection and the steps after it
PERIOD_RUNS = 16  # cycles measured per context (each context and arm takes turns step by step)


ROUNDS = 5  # tokens/s rounds: ours and transformers take turns (the machine's speed drifts)


def decode_ms(session: Session, steps: int = DECODE_STEPS) -> float:
    """Median ms per greedy decode step, run on a fork (the session itself does not move)."""
    twin = session.fork()
    times = []
    assert twin.next_logits is not None
    tok = int(torch.argmax(twin.next_logits))
    for _ in range(steps):
        t0 = time.perf_counter()
        twin.append_tokens([tok])
        assert twin.next_logits is not None
        tok = int(torch.argmax(twin.next_logits))
        times.append(time.perf_counter() - t0)
    return median_ms(times[2:])


def hf_decode_ms(hf: Any, ids: list[int], steps: int = DECODE_STEPS) -> tuple[float, float]:
    """transformers with DynamicCache: prefill ``ids``, then median ms per decode step, RSS."""
    from transformers import DynamicCache

    cache = DynamicCache()
    x = torch.tensor([ids])
    with torch.inference_mode():
        for s in range(0, len(ids), 2048):  # chunked prefill (same cache) to bound activations
            out = hf(x[:, s : s + 2048], **hf_cache_kwargs(hf, cache))
        tok = out.logits[:, -1:].argmax(-1)
        times = []
        for _ in range(steps):
            t0 = time.perf_counter()
            out = hf(tok, **hf_cache_kwargs(hf, cache))
            tok = out.logits[:, -1:].argmax(-1)
            times.append(time.perf_counter() - t0)
    rss = rss_mib()
    del cache, out
    gc.collect()
    return median_ms(times[2:]), rss


def generate_tok_s(hf: Any, ids: list[int], n: int = 64) -> float:
    """Decode tokens/s of transformers' default ``generate`` (timed between streamed tokens)."""
    from transformers.generation.streamers import BaseStreamer

    class Clock(BaseStreamer):  # type: ignore[misc]
        def __init__(self) -> None:
            self.times: list[float] = []

        def put(self, value: Any) -> None:
            self.times.append(time.perf_counter())

        def end(self) -> None:
            pass

    x = torch.tensor([ids])
    clock = Clock()
    with torch.inference_mode():
        hf.generate(x, max_new_tokens=4, min_new_tokens=4, do_sample=False)  # warm up
        hf.generate(x, max_new_tokens=n + 1, min_new_tokens=n + 1, do_sample=False, streamer=clock)
    # times[0]: the prompt; times[1]: first new token (after prefill); then one per decode step
    return (len(clock.times) - 2) / (clock.times[-1] - clock.times[1])


def session_tok_s(engine: Engine, ids: list[int], n: int = 64) -> float:
    from agentcore.core.sampling import SamplingParams

    s = engine.new_session()
    s.append_tokens(ids)
    s.generate(SamplingParams(max_tokens=4, stop_token_ids=()))
    t0 = time.perf_counter()
    s.generate(SamplingParams(max_tokens=n, stop_token_ids=()))
    return n / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--tokens", type=int, default=65536, help="perplexity stream length (default 64K)"
    )
    ap.add_argument("--long", action="store_true", help="also decode after a 1M-token context")
    ap.add_argument(
        "--recall-tokens",
        type=int,
        default=131072,
        help="stream length of the recall arm (decode and RSS also measured there; 0: no arm)",
    )
    ap.add_argument("--quick", action="store_true", help="small smoke run (4K stream)")
    ap.add_argument(
        "--decode-only",
        action="store_true",
        help="only decode cost and speed: sinks+window, recall up to --tokens, transformers "
        "(no no-sink or dense-perplexity arms); writes streaming-decode.md",
    )
    ap.add_argument(
        "--model", default="default", help="model alias (see `agentcore models`) or GGUF path"
    )
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: all)")
    ap.add_argument(
        "--out", type=Path, default=None, help="output folder (default docs/benchmarks)"
    )
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    n_stream = 4096 if args.quick else args.tokens
    if args.quick:
        args.recall_tokens = min(args.recall_tokens, n_stream)
    checkpoints = [c for c in (1024, 8192, 65536) if c <= n_stream]
    if args.long:
        checkpoints.append(1 << 20)
    t_start = time.perf_counter()
    engine = Engine.load(args.model)
    codec = engine.codec
    recall_marks = sorted(
        {c for c in checkpoints if c <= args.recall_tokens} | {args.recall_tokens}
    )
    if not args.recall_tokens:
        recall_marks = []
    total = max([n_stream, *checkpoints, *recall_marks])
    book = book_tokens(codec, total)
    print(
        f"model {engine.name} on {engine.info().device}/{engine.info().dtype}; stream {total} tokens"
    )

    # -- streaming arms over the book: sinks + window (also hosts the decode checkpoints), no sinks
    base = engine.default_streaming()  # the model's window: 4+2044 SmolLM2, 4+4092 the 0.5B
    no_sinks = f"window, no sinks (0+{base.budget})"
    arms: dict[str, tuple[SessionConfig, list[int], str]] = {
        f"sinks+window ({base.n_sink}+{base.window})": (
            SessionConfig(streaming=base),
            checkpoints,
            "ours",
        ),
        no_sinks: (
            SessionConfig(streaming=StreamingConfig(0, base.budget, base.chunk_size)),
            [],
            "",
        ),
    }
    if args.decode_only:
        del arms[no_sinks]
        recall_marks = [c for c in recall_marks if c <= n_stream]
    if recall_marks:
        recall = SessionConfig(streaming=base, recall=engine.recall_config(host_blocks=1 << 20))
        arms["sinks+window+recall"] = (recall, recall_marks, "recall")
    store_bytes: dict[int, float] = {}
    logps: dict[str, torch.Tensor] = {}
    decode: dict[int, dict[str, float]] = {}
    # a fork of each arm's session at each of its checkpoints: (arm key, context) -> session
    saved: dict[tuple[str, int], Session] = {}
    for arm, (session_cfg, marks, key) in arms.items():
        s = engine.new_session(dataclasses.replace(session_cfg, keep_token_ids=False))
        scores = []
        done = 0
        limit = max([n_stream, *marks])
        t0 = time.perf_counter()
        while done < limit:
            nxt = min([m for m in marks if m > done] + [limit, done + 8192])
            ids = torch.tensor([book[done:nxt]])
            with engine.lock:
                part = engine.core.score(ids, s.cache, first_logits=s.next_logits)
            s.next_logits = (
                engine.core.last_logits.float().cpu()
                if engine.core.last_logits is not None
                else None
            )
            s.n_tokens = nxt
            if done < n_stream:
                scores.append(part[: max(0, n_stream - done)])
            done = nxt
            if done in marks:
                ms = decode_ms(s)
                saved[(key, done)] = s.fork()  # shares the recall store's blocks: cheap
                decode.setdefault(done, {}).update({f"{key}_ms": ms, f"{key}_rss_mib": rss_mib()})
                store = s.extensions.get("recall")
                if store is not None:
                    store_bytes[done] = store.stats()["ram_bytes"] / done
                print(f"  {arm}: context {done}: decode {ms:.1f} ms/token, RSS {rss_mib():.0f} MiB")
        logps[arm] = torch.cat(scores)
        print(
            f"  {arm}: scored {n_stream} tokens in {time.perf_counter() - t0:.0f}s, ppl {ppl(logps[arm]):.2f}"
        )
        del s
        gc.collect()
    # every context of every arm takes turns step by step, so that a ratio between two of them
    # (64K against 1K, recall against plain) compares contexts rather than moments; all figures
    # are medians of means over whole re-selection cycles
    for (key, c), ms in interleaved_decode_ms(saved, PERIOD_RUNS * PERIOD + 2, PERIOD).items():
        decode[c][f"{key}_ms"] = ms
        print(f"  {key}: context {c}: decode {ms:.1f} ms/token (interleaved steps)")
    saved.clear()

    # -- transformers baseline: dense perplexity on the first 8K, DynamicCache decode up to 8K
    # transformers loads the model file in float32 unless told otherwise: its default
    hf = load_model(args.model, dtype="float32").hf_model
    if not args.decode_only:
        dense_n = min(8192, n_stream)
        with torch.inference_mode():
            x = torch.tensor([book[:dense_n]])
            logits = hf(x).logits[0]
            lp = torch.log_softmax(logits.float(), -1)
            dense = torch.full((dense_n,), float("nan"))
            dense[1:] = lp[:-1].gather(1, x[0, 1:, None])[:, 0]
            del logits, lp
        logps["dense (first 8K)"] = dense
    for c in checkpoints:
        if c <= 8192 - DECODE_STEPS - 2:
            ms, rss = hf_decode_ms(hf, book[:c])
        elif c <= 8192:
            ms, rss = hf_decode_ms(hf, book[: 8192 - DECODE_STEPS - 2])
        else:
            ms, rss = float("nan"), float("nan")  # beyond the model's trained length
        decode.setdefault(c, {}).update({"hf_ms": ms, "hf_rss_mib": rss})
        print(f"  transformers DynamicCache: context {c}: decode {ms:.1f} ms/token")

    # tokens/s at 1K: this engine, transformers' default generate (float32) and transformers in
    # this engine's dtype, measured round-robin so each sees the same machine
    hf_same = (
        load_model(args.model, dtype=engine.core.dtype).hf_model
        if engine.core.dtype != torch.float32
        else hf
    )
    speeds: dict[str, list[float]] = {"ours": [], "hf": [], "hf_same": []}
    for _ in range(ROUNDS):
        speeds["ours"].append(session_tok_s(engine, book[:1024]))
        speeds["hf"].append(generate_tok_s(hf, book[:1024]))
        speeds["hf_same"].append(generate_tok_s(hf_same, book[:1024]))
    tok_ours, tok_hf, tok_hf_same = (sorted(v)[ROUNDS // 2] for v in speeds.values())
    same_dtype = str(engine.core.dtype).replace("torch.", "")
    print(
        f"  decode tok/s at 1K: ours {tok_ours:.1f}, transformers generate {tok_hf:.1f} "
        f"(float32), {tok_hf_same:.1f} ({same_dtype})"
    )

    # -- tables
    first2k = {arm: ppl(lp[:2048]) for arm, lp in logps.items()}
    rows = []
    for arm, lp in logps.items():
        rows.append(
            [arm, lp.numel(), first2k[arm], ppl(lp[2048:8192]), ppl(lp), ppl(lp) / first2k[arm]]
        )
    ppl_table = markdown_table(
        ["arm", "tokens", "ppl first 2K", "ppl 2K-8K", "ppl all", "all / first 2K"], rows
    )
    base_ms = decode[checkpoints[0]]["ours_ms"]
    recall_base = decode[recall_marks[0]].get("recall_ms", float("nan")) if recall_marks else 0.0
    nan = float("nan")
    drows = []
    for c in sorted(decode):
        d = decode[c]
        drows.append(
            [
                c,
                d.get("ours_ms", nan),
                d.get("ours_ms", nan) / base_ms,
                d.get("ours_rss_mib", nan),
                d.get("recall_ms", nan),
                d.get("recall_ms", nan) / recall_base if recall_marks else nan,
                d.get("recall_rss_mib", nan),
                store_bytes.get(c, nan),
                d.get("hf_ms", nan),
                d.get("hf_rss_mib", nan),
                d.get("hf_ms", nan) / d.get("ours_ms", nan),
            ]
        )
    dec_table = markdown_table(
        [
            "context",
            "ours ms/tok",
            "ours vs 1K",
            "ours RSS MiB",
            "recall ms/tok",
            "recall vs 1K",
            "recall RSS MiB",
            "store bytes/token",
            "HF ms/tok",
            "HF RSS MiB",
            "HF / ours",
        ],
        drows,
    )
    info = engine.info()
    engine_arm = f"{info.dtype}, {info.weights} weights"
    speed_table = markdown_table(
        ["1K context decode", "tokens/s"],
        [
            [f"agentcore session ({engine_arm})", tok_ours],
            ["transformers generate (float32, its default)", tok_hf],
            [f"transformers generate ({same_dtype})", tok_hf_same],
            ["ratio to transformers' default", tok_ours / tok_hf],
            [f"ratio to transformers in {same_dtype}", tok_ours / tok_hf_same],
        ],
    )
    buckets = 4096 if n_stream >= 16384 else 512
    curve = {
        arm: [(i + buckets, ppl(lp[i : i + buckets])) for i in range(0, lp.numel(), buckets)]
        for arm, lp in logps.items()
    }
    elapsed = time.perf_counter() - t_start
    md = f"""# Streaming benchmark

Model: {engine.name}, {info.device}, {engine_arm}. Machine: {machine()}.
Command: `agentcore bench streaming {" ".join(argv or [])}`; took {elapsed / 60:.1f} min.

## Decode cost against context length

ms per greedy decode step after a context of N tokens of the book: {PERIOD_RUNS} runs of {PERIOD}
consecutive steps on forks of the sessions saved at each context, every context of both arms
taking turns step by step so that each sees the machine at the same moments (this machine's
speed drifts by a third within seconds); each figure is the median over the runs of a run's
mean step. "recall" is sinks + window plus exact recall of evicted 64-token blocks (4 recalled
per layer, re-selected every {PERIOD} steps: a run is one cycle, so the re-selection step counts);
at 1K nothing has left the window yet, so both arms do the same work there. "store
bytes/token" is the host RAM its store holds per streamed token. RSS is the whole process
(every arm runs in the same one, so later arms include what the allocator kept). "HF" is
transformers' `DynamicCache` in float32 (dense attention over the whole context; the model stops at 8192 positions, so
8K is measured at {8192 - DECODE_STEPS - 2} tokens and longer contexts are impossible).

{dec_table}

## Decode speed at 1K context

Greedy, 64 tokens after a 1,024-token prompt, median of {ROUNDS} interleaved rounds.

{speed_table}

## Streaming perplexity over austen-emma.txt

Every arm scores the same {n_stream} book tokens one after another (chunked prefill, 512 tokens per
forward, logits identical to token-by-token). Dense attention sees the whole prefix, up to 8K.

{ppl_table}

![perplexity and decode cost](streaming.png)
"""
    raw = {
        "machine": machine(),
        "decode": decode,
        "tok_s_1k": {
            "ours": tok_ours,
            "transformers_generate": tok_hf,
            f"transformers_generate_{same_dtype}": tok_hf_same,
            "samples": speeds,
        },
        "engine": engine_arm,
        "ppl": {
            arm: {"first2k": first2k[arm], "all": ppl(lp), "curve": curve[arm]}
            for arm, lp in logps.items()
        },
        "elapsed_s": elapsed,
    }
    name = "streaming-decode" if args.decode_only else "streaming"
    md = md.replace("(streaming.png)", f"({name}.png)")
    path = write_report(name, md, raw, args.out)
    _plot(curve, decode, (args.out or path.parent) / f"{name}.png")
    print(ppl_table)
    print(dec_table)
    print(speed_table)
    print(f"wrote {path}")
    return 0


def _plot(
    curve: dict[str, list[tuple[int, float]]], decode: dict[int, dict[str, float]], path: Path
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    for arm, pts in curve.items():
        a.plot([p[0] for p in pts], [p[1] for p in pts], marker=".", label=arm)
    a.set_xlabel("tokens into the stream")
    a.set_ylabel("perplexity (per bucket)")
    a.set_yscale("log")
    a.legend()
    a.set_title("streaming perplexity")
    ctx = sorted(decode)
    nan = float("nan")
    b.plot(ctx, [decode[c].get("ours_ms", nan) for c in ctx], marker="o", label="sinks+window")
    b.plot(ctx, [decode[c].get("recall_ms", nan) for c in ctx], marker="^", label="+ recall")
    b.plot(
        ctx,
        [decode[c].get("hf_ms", float("nan")) for c in ctx],
        marker="s",
        label="transformers DynamicCache",
    )
    b.set_xscale("log")
    b.set_xlabel("context tokens")
    b.set_ylabel("decode ms/token")
    b.legend()
    b.set_title("decode cost")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
