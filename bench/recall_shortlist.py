"""Does the word shortlist keep the needle? Where a needle's block ranks among a large store's
blocks by the rare words it shares with the question, on the documents of ``recall_real``.

A full selection over a store of more than ``RecallConfig.shortlist`` blocks scores only the
blocks that share the most rare words with the latest ``lexical_query`` tokens
(``agentcore.core.lexicon``, BM25 over token ids folded by case and the leading-space marker).
A needle whose block is not in that shortlist cannot be recalled, however well attention would
have scored it. This bench needs only the tokenizer: it renders each conversation of
``bench/recall_real.py`` (the document as a user turn and a short reply, or the chat family's
turns, then the question as a new user turn) with the model's chat template, splits what would
have left the window into 64-token blocks as the store does (after the sinks, the
conversation's opening: ``StreamingConfig.for_budget(--window)``), and
ranks the blocks for the question turn's tokens (its last ``lexical_query``), as the
question's selection does.

A needle counts as kept when a block holding any of its tokens is in the top ``--k`` (each
question's own needles only; the multi-value and multi-question families ask about several,
each counted). Reported per family and length: needles kept at 16, 32 and 64 (the default
shortlist), and the median rank.

Usage: ``agentcore bench recall_shortlist [--model M] [--split test] [--lengths
8192,32768,131072] [--cases 4]``. Writes ``docs/benchmarks/recall_shortlist.md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import DOCS, machine, markdown_table, publish, shared_data
from _recall_cases import BOOKS, FAMILIES, paragraphs
from recall_real import ASK, build, chat_messages, document_messages

from agentcore.core.cache import StreamingConfig
from agentcore.core.codec import HFCodec
from agentcore.core.lexicon import BlockLexicon, term_map
from agentcore.core.loader import load_tokenizer, resolve_model, source_directory
from agentcore.core.recall import RecallConfig

TOPS = (16, 32, 64)


def needle_ranks(
    codec: HFCodec,
    messages: list[dict[str, str]],
    question: str,
    needles: list[str],
    streaming: StreamingConfig,
    config: RecallConfig,
    terms: np.ndarray | None,
    tmp: Path,
) -> tuple[list[int], int]:
    """Each needle's best block's rank (0: first; len(blocks): not listed) and the block count."""
    convo = [*messages, {"role": "user", "content": question + ASK}]
    text = codec.render_chat(convo, add_generation_prompt=True)
    before = len(codec.encode(codec.render_chat(messages, add_generation_prompt=False)))
    enc = codec.hf(text, add_special_tokens=False, return_offsets_mapping=True)
    ids = np.asarray(enc["input_ids"], dtype=np.int32)
    offsets = enc["offset_mapping"]
    bs = config.block_size
    n_sink = streaming.n_sink
    n_blocks = max(0, (len(ids) - streaming.budget) // bs)
    lex = BlockLexicon(tmp / "tokens.i32", bs)
    lex.set_terms(terms)
    for b in range(n_blocks):
        lex.add(ids[n_sink + b * bs : n_sink + (b + 1) * bs])
    asked = ids[max(before, len(ids) - config.lexical_query) :]  # the new input's last tokens
    ranked = lex.shortlist(asked, n_blocks, n_blocks)
    order = {b: r for r, b in enumerate(ranked)}
    ranks = []
    for needle in needles:
        start = text.find(needle)
        end = start + len(needle)
        toks = [i for i, (a, z) in enumerate(offsets) if a < end and z > start]
        blocks = {(t - n_sink) // bs for t in toks if t >= n_sink}
        blocks = {b for b in blocks if 0 <= b < n_blocks}
        ranks.append(min((order.get(b, n_blocks) for b in blocks), default=-1))
    return ranks, n_blocks


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--model", default=None, help="model alias (its tokenizer and window)")
    ap.add_argument("--split", choices=("dev", "test"), default="test")
    ap.add_argument("--lengths", default="8192,32768,131072")
    ap.add_argument("--families", default=",".join((*FAMILIES, "chat")))
    ap.add_argument("--cases", type=int, default=4)
    ap.add_argument("--window", type=int, default=2048, help="sinks + window of the model")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    import tempfile

    source = resolve_model(args.model)
    codec = HFCodec(load_tokenizer(source_directory(source)))
    terms = term_map(codec)
    config = RecallConfig()
    streaming = StreamingConfig.for_budget(args.window)
    paras = paragraphs((shared_data() / BOOKS[args.split]).read_text(encoding="utf-8"))
    count = lambda t: len(codec.encode(t))  # noqa: E731
    rows: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for length in (int(x) for x in args.lengths.split(",")):
            for family in args.families.split(","):
                for i in range(args.cases):
                    case, long_doc, *_ = build(
                        family, args.split, length, i, args.window, count, paras
                    )
                    if family == "chat":
                        rng = random.Random(f"{args.split}/chat/{length}/{i}/recall")
                        messages = chat_messages(paras, case, length, count, rng)
                    else:
                        messages = document_messages(long_doc)
                    for qi, q in enumerate(case.questions):
                        # a question asks about its own needle, or all of them (several values,
                        # several questions at once)
                        asked = (
                            [case.needles[qi].text]
                            if len(case.questions) == len(case.needles)
                            else [n.text for n in case.needles]
                        )
                        ranks, n_blocks = needle_ranks(
                            codec, messages, q.text, asked, streaming, config, terms, Path(tmp)
                        )
                        for r in ranks:
                            rows.append(
                                dict(
                                    length=length,
                                    family=family,
                                    case=i,
                                    question=q.text,
                                    rank=r,
                                    blocks=n_blocks,
                                )
                            )
                    print(length, family, i, [r["rank"] for r in rows[-len(ranks) :]], flush=True)
    table_rows = []
    for length in sorted({r["length"] for r in rows}):
        for family in [*args.families.split(","), "all"]:
            sel = [
                r
                for r in rows
                if r["length"] == length
                and (family == "all" or r["family"] == family)
                and r["rank"] >= 0
            ]
            if not sel:
                continue
            ranks = [r["rank"] for r in sel]
            table_rows.append(
                [
                    f"{length // 1024}K",
                    family,
                    round(statistics.mean(r["blocks"] for r in sel)),
                    *(f"{sum(x < k for x in ranks)} / {len(ranks)}" for k in TOPS),
                    statistics.median(ranks),
                ]
            )
    table = markdown_table(
        ["length", "family", "blocks", *(f"kept in top {k}" for k in TOPS), "median rank"],
        table_rows,
    )
    raw = {
        "machine": machine(),
        "model": source.location,
        "args": vars(args) | {"out": None},
        "rows": rows,
        "wall_s": time.perf_counter() - t0,
    }
    md = f"""# Does the word shortlist keep the needle?

{(__doc__ or "").split(chr(10) + chr(10))[1]}

Tokenizer of `{args.model or "the default model"}`; split **{args.split}**
({BOOKS[args.split]}); {args.cases} document(s) per family and length; window
{args.window} ({streaming.n_sink} sinks); `RecallConfig()`: blocks of {config.block_size}, query of the last
{config.lexical_query} tokens, shortlist {config.shortlist}.

{table}

Command: `agentcore bench recall_shortlist --split {args.split} --lengths {args.lengths}
--cases {args.cases} --window {args.window}{" --model " + args.model if args.model else ""}`; {raw["wall_s"]:.0f} s.
"""
    return publish("recall_shortlist", md, raw, args.out or DOCS)


if __name__ == "__main__":
    raise SystemExit(main())
