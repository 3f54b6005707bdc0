"""Which attention heads of a model copy facts from its context: its retrieval heads.

A few heads of a language model do the copying when it answers from context (Wu et al. 2024,
"Retrieval Head Mechanistically Explains Long-Context Factuality"): while the model writes a
value that a passage stated, their strongest attention lands on that value's tokens in the
passage. These are the heads ``RecallConfig.read_heads`` weighs recalled text up in
(``ModelCard.recall_read_heads``): a small model reads a recalled fact against 2K tokens of
window text, and the heads that would copy it are the ones to steer.

The cases are ``recall_real``'s (``bench/_recall_cases.py``): its ~1.5K-token reference
documents (every fact in view) of the four document families on the dev split, each question
asked as a chat turn and its accepted values teacher-forced as the reply. For each reply token
that also occurs in a fact the question asks about, a head scores a copy when its largest
attention weight from the position that predicts the token falls on the same token inside that
fact. A head's copy score is its copies over all such tokens; the heads with a score of at
least ``--threshold`` are the suggested ``recall_read_heads``. The model runs through Hugging
Face ``transformers`` with eager attention (the weights of ``agentcore``'s model resolution,
unquantized), so any Llama-family model works.

Usage: ``agentcore bench retrieval_heads [--model M] [--documents 6] [--threshold 0.5]
[--threads 2] [--out DIR]``. Writes ``docs/benchmarks/retrieval_heads.md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from _common import machine, markdown_table, publish, shared_data
from _recall_cases import BOOKS, FAMILIES, paragraphs
from recall_real import ASK, build, document_messages

from agentcore.core.loader import load_model


def copy_hits(
    top_keys: torch.Tensor, targets: Sequence[int], in_fact: Sequence[bool], pieces: Sequence[str]
) -> torch.Tensor:
    """Per head, how many of ``targets`` (positions of reply tokens) it copied: ``top_keys:
    [heads, len(targets)]`` is the key position of each head's largest attention weight from the
    position before each target; a copy is a key inside a fact (``in_fact``) holding the
    target's token (``pieces``: each position's token text, as compared)."""
    hits = torch.zeros(top_keys.shape[0])
    for i, target in enumerate(targets):
        for h in range(top_keys.shape[0]):
            key = int(top_keys[h, i])
            if in_fact[key] and pieces[key] == pieces[target]:
                hits[h] += 1
    return hits


def fact_spans(prompt: str, facts: Sequence[str], answers: Sequence[str]) -> list[tuple[int, int]]:
    """Character spans in ``prompt`` of the facts that state one of ``answers``."""
    spans = []
    for fact in facts:
        start = prompt.find(fact)
        if start >= 0 and any(a in fact for a in answers):
            spans.append((start, start + len(fact)))
    return spans


class Profiler:
    """Copy scores of every head of a Hugging Face causal LM, accumulated over questions."""

    def __init__(self, model: Any, tokenizer: Any) -> None:
        self.model = model
        self.tok = tokenizer
        cfg = model.config
        self.hits = torch.zeros(cfg.num_hidden_layers, cfg.num_attention_heads)
        self.events = 0
        self._rows: torch.Tensor = torch.empty(0, dtype=torch.long)
        self._top: dict[int, torch.Tensor] = {}
        for i, layer in enumerate(model.model.layers):
            layer.self_attn.register_forward_hook(self._hook(i))

    def _hook(self, layer: int) -> Any:
        def keep(module: Any, args: Any, output: Any) -> None:
            weights = output[1]  # [1, heads, T, T]: eager attention returns them
            self._top[layer] = weights[0, :, self._rows, :].argmax(-1)

        return keep

    def question(
        self, messages: list[dict[str, str]], answers: Sequence[str], facts: Sequence[str]
    ) -> int:
        """Score the heads on one question: ``messages`` end with its user turn; the reply is
        the accepted values, teacher-forced. Returns the reply tokens that counted."""
        prompt = self.tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        enc = self.tok(
            prompt + ", ".join(answers), return_offsets_mapping=True, add_special_tokens=False
        )
        ids, offsets = enc["input_ids"], enc["offset_mapping"]
        spans = fact_spans(prompt, facts, answers)
        in_fact = [any(a <= s < b for a, b in spans) for s, _ in offsets]
        pieces = [self.tok.decode([t]).strip().lower() for t in ids]
        in_facts = {pieces[j] for j, f in enumerate(in_fact) if f and pieces[j]}
        first = next(j for j, (s, _) in enumerate(offsets) if s >= len(prompt))
        targets = [j for j in range(first, len(ids)) if pieces[j] and pieces[j] in in_facts]
        if not targets:
            return 0
        self._rows = torch.tensor([j - 1 for j in targets])
        with torch.no_grad():
            self.model(torch.tensor([ids]))
        for layer, top in self._top.items():
            self.hits[layer] += copy_hits(top, targets, in_fact, pieces)
        self.events += len(targets)
        return len(targets)

    def scores(self) -> torch.Tensor:
        return self.hits / max(self.events, 1)


def ranked(scores: torch.Tensor) -> list[tuple[float, int, int]]:
    """(score, layer, head), best first."""
    layers, heads = scores.shape
    return sorted(
        ((float(scores[i, h]), i, h) for i in range(layers) for h in range(heads)), reverse=True
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--model", default=None, help="model alias or path (default: the default model)"
    )
    ap.add_argument("--documents", type=int, default=6, help="reference documents per family")
    ap.add_argument("--threshold", type=float, default=0.5, help="copy score of a suggested head")
    ap.add_argument("--show", type=int, default=20, help="heads in the table")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--out", default=None, help="folder for the report (default docs/benchmarks)")
    args = ap.parse_args(argv)
    if args.documents < 1 or not 0 < args.threshold <= 1:
        ap.error(
            f"--documents must be >= 1 and --threshold in (0, 1], got {args.documents} and {args.threshold}"
        )
    if args.threads:
        torch.set_num_threads(args.threads)
    loaded = load_model(args.model, dtype="float32")
    model, tok = loaded.hf_model, loaded.tokenizer
    model.set_attn_implementation("eager")  # the attention weights, which sdpa does not return
    name = Path(loaded.source.location).name
    profiler = Profiler(model, tok)
    paras = paragraphs((shared_data() / BOOKS["dev"]).read_text(encoding="utf-8"))
    count = lambda text: len(tok.encode(text, add_special_tokens=False))  # noqa: E731
    t0 = time.perf_counter()
    questions = 0
    for family in FAMILIES:
        for index in range(args.documents):
            docs = build(family, "dev", 8192, index, 2048, count, paras)
            facts = [n.text for n in docs.case.needles]
            for q in docs.case.questions:
                messages = [
                    *document_messages(docs.short),
                    {"role": "user", "content": q.text + ASK},
                ]
                profiler.question(messages, q.answers, facts)
                questions += 1
            print(
                f"{family} document {index}: {profiler.events} reply tokens",
                file=sys.stderr,
                flush=True,
            )
    scores = profiler.scores()
    best = ranked(scores)
    chosen = [(layer, head) for s, layer, head in best if s >= args.threshold]
    n_layers, n_heads = scores.shape
    rows = [
        [i + 1, layer, head, f"{s:.3f}"] for i, (s, layer, head) in enumerate(best[: args.show])
    ]
    md = "\n".join(
        [
            "# Retrieval heads",
            "",
            f"Command: `agentcore bench retrieval_heads {' '.join(argv if argv is not None else sys.argv[1:])}`; "
            f"{(time.perf_counter() - t0) / 60:.1f} min.",
            f"Machine: {machine()}. Model: `{name}` ({n_layers} layers of {n_heads} query heads).",
            "",
            f"{questions} questions over {args.documents} dev reference documents per family; "
            f"{profiler.events} reply tokens that also occur in an asked fact. A head's copy score: the "
            "share of those tokens for which its largest attention weight, from the position that "
            "predicts the token, falls on the same token inside the fact (`bench/retrieval_heads.py`).",
            "",
            markdown_table(["rank", "layer", "query head", "copy score"], rows),
            "",
            f"Heads with a copy score >= {args.threshold}: {len(chosen)} of {n_layers * n_heads}. "
            f"As `ModelCard.recall_read_heads`: `{tuple(chosen)!r}`.",
        ]
    )
    raw = {
        "machine": machine(),
        "model": name,
        "args": vars(args),
        "questions": questions,
        "reply_tokens": profiler.events,
        "scores": scores.tolist(),
        "suggested": chosen,
    }
    return publish("retrieval_heads", md, raw, Path(args.out) if args.out else None)


if __name__ == "__main__":
    raise SystemExit(main())
