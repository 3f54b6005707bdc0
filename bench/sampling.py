"""What picking a token costs: the sampler as shipped against the one before, per token and per
streamed reply.

Two measurements on a real model's logits (``--model``, SmolLM2's 49,152-token vocabulary by
default), each with two arms interleaved round by round so drifting machine load hits both
alike: ``as shipped`` (:class:`agentcore.core.sampling.Sampler`: one uniform number against
the cumulative sum, top-p's nucleus looked for in a partial top-k first) and ``before``
(``torch.multinomial`` for the draw and a sort of the whole vocabulary for top-p: the sampler
up to session 21, kept here as the reference).

1. ``Sampler.pick`` alone, in microseconds per token, for greedy, temperature 0.7, top-p 0.9
   (``SamplingParams.creative``'s), top-k 40 and top-p 0.5: the median over the logits of
   ``--positions`` positions of a book read by the model (real distributions, so the nucleus
   holds as many tokens as it does in use), ``--rounds`` rounds.
2. A streamed reply through a session (``Session.stream``, what the server and the agents
   run): tokens/s of ``--tokens`` tokens with temperature 0.7 and top-p 0.9, the end-of-turn
   token ignored, the session's sampler patched to the ``before`` pick in that arm.

Writes ``docs/benchmarks/sampling.md`` + JSON. Usage: ``agentcore bench sampling [--model
ALIAS] [--positions 32] [--rounds 5] [--tokens 128] [--threads 2]``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from _common import DOCS, book_tokens, machine, markdown_table, publish

from agentcore.core.engine import Engine
from agentcore.core.sampling import Sampler, SamplingParams

PARAMS = {
    "greedy": SamplingParams(temperature=0.0),
    "temperature 0.7": SamplingParams(temperature=0.7),
    "top-p 0.9 (creative)": SamplingParams(temperature=0.7, top_p=0.9),
    "top-k 40": SamplingParams(temperature=0.7, top_k=40),
    "top-p 0.5": SamplingParams(temperature=1.0, top_p=0.5),
}

Pick = Callable[[Sampler, torch.Tensor, SamplingParams], int]


def pick_before(sampler: Sampler, logits: torch.Tensor, params: SamplingParams) -> int:
    """The sampler's draw up to session 21 (no penalties or masks: the bench uses none): a
    sort of the whole vocabulary for top-p, ``torch.multinomial`` for the draw."""
    x = logits.detach().to("cpu", torch.float32).clone()
    if params.temperature == 0.0:
        return int(torch.argmax(x))
    x = (x - x.max()) / params.temperature
    if params.top_k:
        kth = torch.topk(x, min(params.top_k, x.shape[0])).values[-1]
        x = x.masked_fill(x < kth, float("-inf"))
    if params.top_p < 1.0:
        sorted_x, order = torch.sort(x, descending=True)
        probs = torch.softmax(sorted_x, dim=-1)
        cum = torch.cumsum(probs, dim=-1)
        sorted_x = sorted_x.masked_fill(cum - probs > params.top_p, float("-inf"))
        x = torch.full_like(x, float("-inf")).scatter(0, order, sorted_x)
    probs = torch.softmax(x, dim=-1)
    return int(torch.multinomial(probs, 1, generator=sampler.generator))


def pick_shipped(sampler: Sampler, logits: torch.Tensor, params: SamplingParams) -> int:
    return Sampler.pick(sampler, logits, params)


ARMS: dict[str, Pick] = {"as shipped": pick_shipped, "before": pick_before}


def book_logits(engine: Engine, positions: int) -> list[torch.Tensor]:
    """The model's next-token logits after each of ``positions`` book tokens (after a
    256-token lead-in, one decode step each)."""
    session = engine.new_session(engine.session_config())
    ids = book_tokens(engine.codec, 256 + positions)
    session.append_tokens(ids[:256])
    out = []
    for tok in ids[256:]:
        assert session.next_logits is not None
        out.append(session.next_logits.clone())
        session.append_tokens([tok])
    return out


def pick_us(logits: Sequence[torch.Tensor], rounds: int) -> dict[str, dict[str, float]]:
    """Median microseconds per pick, per parameter set and arm."""
    sampler = Sampler(seed=0)
    samples: dict[str, dict[str, list[float]]] = {p: {a: [] for a in ARMS} for p in PARAMS}
    for _ in range(rounds):
        for name, params in PARAMS.items():
            for arm, pick in ARMS.items():
                pick(sampler, logits[0], params)  # warm
                t0 = time.perf_counter()
                for x in logits:
                    pick(sampler, x, params)
                samples[name][arm].append((time.perf_counter() - t0) / len(logits) * 1e6)
    return {p: {a: statistics.median(v) for a, v in arms.items()} for p, arms in samples.items()}


def stream_tok_s(engine: Engine, tokens: int, rounds: int) -> dict[str, float]:
    """Median tokens/s of a streamed reply (temperature 0.7, top-p 0.9) per arm."""
    prompt = book_tokens(engine.codec, 200)
    params = SamplingParams(max_tokens=tokens, temperature=0.7, top_p=0.9, stop_token_ids=[])
    samples: dict[str, list[float]] = {a: [] for a in ARMS}
    for _ in range(rounds):
        for arm, pick in ARMS.items():
            session = engine.new_session(engine.session_config())
            session.append_tokens(prompt)
            sampler = session.sampler
            session.sampler.pick = (  # type: ignore[method-assign]
                lambda logits, p, *rest, _s=sampler, _pick=pick: _pick(_s, logits, p)
            )
            t0 = time.perf_counter()
            n = sum(1 for _ in session.stream(params))
            samples[arm].append(n / (time.perf_counter() - t0))
    return {a: statistics.median(v) for a, v in samples.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--model", default="default", help="model alias")
    ap.add_argument("--positions", type=int, default=32, help="book positions whose logits")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--tokens", type=int, default=128, help="tokens per streamed reply")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=DOCS)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    t_start = time.perf_counter()
    engine = Engine.load(args.model)
    info = engine.info()
    logits = book_logits(engine, args.positions)
    picks = pick_us(logits, args.rounds)
    for name, arms in picks.items():
        print(f"{name:22s} {arms}", flush=True)
    stream = stream_tok_s(engine, args.tokens, args.rounds)
    print(f"stream {stream}", flush=True)
    rows: list[list[Any]] = [
        [name, arms["before"], arms["as shipped"], arms["before"] / arms["as shipped"]]
        for name, arms in picks.items()
    ]
    pick_table = markdown_table(
        ["parameters", "before: us per pick", "as shipped: us per pick", "before / as shipped"],
        rows,
    )
    stream_table = markdown_table(
        ["arm", "tokens/s, streamed reply (temperature 0.7, top-p 0.9)", "vs before"],
        [[arm, v, v / stream["before"]] for arm, v in stream.items()],
    )
    vocab = int(logits[0].shape[-1])
    raw: dict[str, Any] = {
        "model": info.name,
        "vocab": vocab,
        "machine": machine(),
        "args": vars(args) | {"out": str(args.out)},
        "pick_us": picks,
        "stream_tok_s": stream,
        "wall_s": time.perf_counter() - t_start,
    }
    md = f"""# What picking a token costs

Model {info.name} ({info.device}/{info.dtype}, {info.weights} weights; a vocabulary of
{vocab:,} tokens); {machine()}. `as shipped`: one uniform number against the float64
cumulative sum of the probabilities, top-p's nucleus looked for among the 64, then 512, ...
most likely tokens before sorting all; `before`: `torch.multinomial` (an exponential number
drawn per token of the vocabulary) and a sort of the whole vocabulary for top-p. Arms and
parameter sets interleaved, median of {args.rounds} rounds.

## One pick (`Sampler.pick`), over the logits of {args.positions} positions of a book

{pick_table}

## A streamed reply through a session ({args.tokens} tokens, the model's decode step included)

{stream_table}

Whole run: {raw["wall_s"]:.0f} s. Command: `agentcore bench sampling --model {args.model}
--positions {args.positions} --rounds {args.rounds} --tokens {args.tokens} --threads {args.threads}`.
"""
    return publish("sampling", md, raw, args.out)


if __name__ == "__main__":
    raise SystemExit(main())
