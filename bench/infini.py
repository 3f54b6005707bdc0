"""Infini-attention benchmark: streaming perplexity with the compressive memory on, and its cost.

Arms stream the same book tokens through sessions that differ only in their memory: sinks +
window (no memory), Infini with the linear rule and with the delta rule, each with the gates it
is given (``--adapter-linear`` / ``--adapter-delta``, else the shipped adapter, else the untrained
initial gates beta = -4); ``--adapter-delta`` may be repeated, one arm each (``none``: the
untrained gates).

* Perplexity over the whole stream and over the tokens after the first eviction (only there can
  the memory change anything), and their ratio to the no-memory arm. The issue's bound: at most
  2% worse.
* Decode cost: forks of every arm at the end of the stream take single greedy steps in turn (the
  machine's speed drifts within seconds), median ms per step per arm; the memory's overhead is
  the difference to the no-memory arm, in ms and %. Each step reads and mixes the memory in every
  layer and folds the one evicted token into it.

Writes ``docs/benchmarks/infini.md`` and ``infini.json``.
Usage: ``agentcore bench infini [--tokens 16384] [--book austen-emma.txt] [--adapter-delta F]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import torch
from _common import (
    book_tokens,
    interleaved_decode_ms,
    machine,
    markdown_table,
    memory_view,
    ppl,
    write_report,
)

from agentcore.core.cache import StreamingConfig
from agentcore.core.engine import Engine
from agentcore.core.infini import InfiniConfig
from agentcore.core.session import Session, SessionConfig
from agentcore.train import default_adapter_path


@dataclasses.dataclass
class Arm:
    name: str
    config: SessionConfig
    engine: Engine
    gates: str  # where the gates come from


def make_arms(engine: Engine, window: int, adapters: dict[str, list[Path]]) -> list[Arm]:
    streaming = StreamingConfig.for_budget(window)
    plain = SessionConfig(streaming=streaming, keep_token_ids=False)
    arms = [Arm("sinks+window (no memory)", plain, engine, "-")]
    for update in ("linear", "delta"):
        cfg = dataclasses.replace(plain, infini=InfiniConfig(update=update))  # type: ignore[arg-type]
        given = adapters[update]
        if not given:
            shipped = default_adapter_path(engine.name, update)
            given = [shipped] if shipped.is_file() else []
        if not given:
            given = [Path("none")]
        for path in given:
            if path == Path("none"):
                arms.append(Arm(f"infini-{update}", cfg, memory_view(engine, None), "untrained"))
                continue
            arms.append(
                Arm(f"infini-{update} ({path.stem})", cfg, memory_view(engine, path), str(path))
            )
    return arms


def stream_logps(arm: Arm, ids: list[int], chunk: int = 8192) -> tuple[torch.Tensor, Session]:
    """Log-probability of every token of ``ids`` streamed through a fresh session of ``arm``."""
    s = arm.engine.new_session(arm.config)
    parts = []
    for lo in range(0, len(ids), chunk):
        with arm.engine.lock:
            parts.append(
                arm.engine.core.score(
                    torch.tensor([ids[lo : lo + chunk]]), s.cache, first_logits=s.next_logits
                )
            )
        last = arm.engine.core.last_logits
        s.next_logits = last.float().cpu() if last is not None else None
        s.n_tokens = lo + len(ids[lo : lo + chunk])
    return torch.cat(parts), s


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--tokens", type=int, default=16384, help="stream length (default 16K)")
    ap.add_argument("--book", default="austen-emma.txt", help="file in the shared data folder")
    ap.add_argument("--window", type=int, default=2048, help="sinks + window budget")
    ap.add_argument("--steps", type=int, default=96, help="decode steps per arm")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: all)")
    ap.add_argument(
        "--out", type=Path, default=None, help="output folder (default docs/benchmarks)"
    )
    for update in ("linear", "delta"):
        ap.add_argument(
            f"--adapter-{update}",
            type=Path,
            action="append",
            default=[],
            help=f"gates for an infini-{update} arm (repeatable; 'none': the untrained gates; "
            "default: the shipped adapter, else the untrained gates)",
        )
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.tokens <= args.window:
        raise SystemExit(
            f"--tokens ({args.tokens}) must exceed --window ({args.window}): nothing would be evicted"
        )
    t_start = time.perf_counter()
    engine = Engine.load()
    ids = book_tokens(engine.codec, args.tokens, args.book)
    arms = make_arms(
        engine, args.window, {"linear": args.adapter_linear, "delta": args.adapter_delta}
    )
    logps: dict[str, torch.Tensor] = {}
    sessions: list[Session] = []
    for arm in arms:
        t0 = time.perf_counter()
        lp, s = stream_logps(arm, ids)
        logps[arm.name] = lp
        sessions.append(s)
        print(f"  {arm.name}: ppl {ppl(lp):.3f} ({time.perf_counter() - t0:.0f}s)", flush=True)
    by_arm = interleaved_decode_ms(dict(enumerate(sessions)), args.steps)
    ms = [by_arm[i] for i in range(len(arms))]
    base_name = arms[0].name
    evicted_from = args.window  # tokens scored after the first eviction
    rows, raw_rows = [], []
    for arm, step_ms in zip(arms, ms, strict=True):
        whole = ppl(logps[arm.name])
        after = ppl(logps[arm.name][evicted_from:])
        ratio = whole / ppl(logps[base_name])
        ratio_after = after / ppl(logps[base_name][evicted_from:])
        extra = step_ms - ms[0]
        rows.append(
            [
                arm.name,
                f"{whole:.3f}",
                f"{ratio:.4f}",
                f"{after:.3f}",
                f"{ratio_after:.4f}",
                f"{step_ms:.1f}",
                "-" if arm.name == base_name else f"{extra:+.2f} ({extra / ms[0]:+.1%})",
            ]
        )
        raw_rows.append(
            {
                "arm": arm.name,
                "gates": arm.gates,
                "ppl": whole,
                "ppl_ratio": ratio,
                "ppl_after_eviction": after,
                "ppl_after_eviction_ratio": ratio_after,
                "decode_ms": step_ms,
                "overhead_ms": extra,
            }
        )
    headers = [
        "arm",
        "ppl",
        "vs no memory",
        f"ppl after {evicted_from}",
        "vs no memory",
        "decode ms/token",
        "memory overhead ms/token",
    ]
    table = markdown_table(headers, rows)
    gates = "\n".join(f"- {a.name}: {a.gates}" for a in arms[1:])
    elapsed = time.perf_counter() - t_start
    md = f"""# Infini-attention: perplexity with the memory on, and its cost

Model {engine.name} ({engine.info().device}/{engine.info().dtype}); sinks + window = {args.window}
tokens; {args.tokens} tokens of `{args.book}` streamed through each arm in 8K-token calls
(chunks of 512 inside). "ppl after {evicted_from}": only the tokens that came after the first
eviction, where the memory holds something. Decode: forks at the end of the stream take {args.steps}
greedy steps in turn, median ms per step; each memory step reads and mixes the memory in all
layers and folds the evicted token in. Machine: {machine()}. Took {elapsed / 60:.1f} min.
Command: `agentcore bench infini {" ".join(argv if argv is not None else sys.argv[1:])}`.

{table}

Gates:
{gates}
"""
    raw = {
        "machine": machine(),
        "args": {k: str(v) for k, v in vars(args).items()},
        "rows": raw_rows,
        "elapsed_s": elapsed,
    }
    write_report("infini", md, raw, args.out)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
