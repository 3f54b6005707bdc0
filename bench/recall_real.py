"""Long memory on real text: facts hidden in a novel, asked in other words, long after they left
the window.

Each case is a passage of a book with one to four facts ("needles") written into its paragraphs
at depths that put them outside the attention window by the time the questions come, and the
questions about them, each worded differently from its fact (see ``_recall_cases.py``). The
document is a user turn of a chat ("Here is a passage ..."), a short scripted assistant turn
acknowledges it, and each question is a new user turn asked on its own fork of the session, so
every question sees the same history. The reply (greedy, up to 40 tokens per question the turn
asks) is right when it contains the accepted value (every value, for the questions that ask for
several).

Families (RULER-like): ``single`` (three facts of different kinds, each asked alone),
``multikey`` (four facts of one kind about four people: same-kind distractors), ``multivalue``
(three values of one key, all asked for), ``multiquestion`` (three facts asked in one turn)
and ``chat`` (facts told in passing across a multi-turn chat of book passages, asked many
turns later; the turns go in as chat messages on one session, the way an assistant runs).

Arms, side by side on the same needles and questions: ``inside`` (the same facts in a
~1.5K-token passage, all inside the window: what the model can do at all), ``recall`` (the
long document through sinks + window + exact recall of evicted blocks) and, with
``--arms ...,always,block,plain,window``, ``always`` (every question recalls, however little
it points back at evicted text, ``evidence_to_recall=None``: before 2026-12-03 for the default
model), ``topk`` (every question that recalls takes ``top_k`` blocks, ``evidence_margin=None``:
before 2026-12-06 for the default model, since then it takes the blocks within the margin of
its best),
``block`` (recall subtracting what the text before the
question attended to per block rather than per key: the selection before 2026-12-03), ``plain``
(recall ranking blocks by the question's evidence alone, without that subtraction),
``turns`` and ``attention`` (a new input's selection taking blocks in turns from the
attention evidence and the input's rare words, ``RecallConfig.lexical_turns=True``, or from the
attention evidence alone, whatever the model's default), ``agnostic`` (keys scored by their
raw dot product with the queries, without rotary positions: ReAttention's position-agnostic
top-k, ``RecallConfig.position_agnostic``), ``exact`` (every full selection scores every stored
block with the queries: the selection before 2026-12-05, when a large store began scoring only
the blocks sharing the most rare words with the latest input, ``RecallConfig.shortlist``),
``unweighed`` (recalled text read as any other key in every head, ``read_bias=0``: before
2026-12-06, when the default model's retrieval heads began reading it weighed up; ``--read-bias``
and ``--read-heads`` set the weight and the heads of every recall arm), ``every`` (a question
reads what it recalled in every layer, ``read_from=0``, every model's default: beside
``--read-from N``, which makes the other recall arms read it from layer N up, the layers
below kept from the question's probe),
``window`` (sinks + window alone, recall off), ``near`` (the long document with its facts
moved into the part the window still holds, recall off: the model's reading with a full window
of other text around the facts, where ``inside`` has ~1.5K tokens; not for the chat family,
whose ``inside`` already tells its facts within the window), ``near_recall`` (the same with
recall on: what the recall gate's mistakes cost a question about text still in view) and
``server`` (the same
conversations through ``python -m agentcore.server`` with its defaults: each question a
stateless chat request with the whole conversation, as an OpenAI client sends it) and ``agent`` (the chat family only,
through an ``Agent`` with its defaults: each user turn a run with the agent's own reply, then
each question a run). The headline number is the ratio recall / inside per length.

Splits: ``dev`` (Emma, wordings 0-6) for tuning, ``test`` (The Man Who Was Thursday, wordings
7-13) only reported. Writes ``docs/benchmarks/recall_real.md`` and ``.json`` (``--out`` for
another folder), after every case, so a run cut short keeps what it measured; ``--first N``
starts at the family's document N, so a later run adds documents to an earlier one's sample
(document i of a family is the same in every run); ``--pool RUN ...`` reports such runs (their
folders or JSON files) as one sample without loading a model, refusing runs of another model or
split and a document counted twice. Every report compares recall and inside question by
question, with a 90% interval of their ratio from resampling whole documents: on a few dozen
questions one answer moves a rate by several points, and the interval says how far.
``--window`` sets the sessions' sinks + window, and the documents are laid out for it (every
needle evicted by the time the questions come); ``--layout-window N`` lays them out for N
tokens instead (at least the sessions' window), so runs with different windows read the same
documents and compare question by question (the ``near`` arms then place their facts within
the last N - 512 tokens, which a smaller window may no longer hold: a ``near_recall`` row's
``answer_evicted`` says).

Usage: ``agentcore bench recall_real [--model M] [--split test] [--lengths 8192,32768]
[--cases 4] [--first 0] [--families single,multikey,...]``; ``agentcore bench recall_real --pool
RUN RUN ... [--out DIR]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import random
import re
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import torch
from _common import machine, markdown_table, rss_mib, shared_data, write_report
from _recall_cases import (
    BOOKS,
    FAMILIES,
    Case,
    Needle,
    Question,
    haystack,
    make_case,
    paragraphs,
    place_needles,
    score,
)

from agentcore.core.cache import StreamingConfig
from agentcore.core.engine import Engine
from agentcore.core.recall import RecallConfig
from agentcore.core.sampling import SamplingParams
from agentcore.core.session import Session, SessionConfig

INTRO = (
    "Here is a long passage from a book. Read it carefully; afterwards I will ask you about "
    "details in it.\n\n"
)
ACK = "I have read the passage. Ask me anything about it."
ASK = " Answer briefly."
ANSWER_TOKENS = 40  # per question a turn asks: three questions at once get 120
INSIDE_TOKENS = 1536
CHAT_TURN_TOKENS = 900  # book text per user turn of the chat family
CHAT_REPLIES = (
    "Thank you, that is a lovely passage.",
    "I see. Please go on.",
    "Interesting; I am following the story.",
    "Noted. What happens next?",
)


def depths_outside(n_tokens: int, window: int, k: int, rng: random.Random) -> list[float]:
    """``k`` needle depths spread over the part of the document that leaves the window (with a
    margin of 256 tokens for the questions and the template), jittered within their stratum."""
    usable = max(0.0, (n_tokens - window - 256) / n_tokens)
    lo, hi = 0.03, max(0.04, usable - 0.02)
    step = (hi - lo) / k
    return [lo + step * (i + rng.uniform(0.15, 0.85)) for i in range(k)]


def needle_count(family: str) -> int:
    return {"single": 3, "multikey": 4, "multivalue": 3, "multiquestion": 3}[family]


def reply_tokens(q: Question) -> int:
    """The reply's budget: ``ANSWER_TOKENS`` per question the turn asks (a budget of 40 for
    three questions cut the third answer off in both arms before 2026-12-06)."""
    return ANSWER_TOKENS * q.asks


def ask(base: Session, q: Question) -> tuple[str, dict[str, Any]]:
    """The reply to ``q`` as a new user turn on a fork of ``base``, and where the selection put
    its answers (:func:`answer_trace`)."""
    run = base.fork()
    try:
        run.append_messages([{"role": "user", "content": q.text + ASK}])
        out = run.generate(SamplingParams(max_tokens=reply_tokens(q)))
        return out.text, answer_trace(run, q.answers)
    finally:
        run.close()


def answer_trace(run: Session, answers: Sequence[str]) -> dict[str, Any]:
    """Whether the question's answer had left the window, and if so its block's rank among the
    candidates of the question's selection (0 = best; None: not among them; the best over
    the accepted values, and each value's in ``answer_ranks``) and whether the
    question recalled at all (the evidence gate): a wrong reply with the block recalled is the
    model's miss, not the selection's. Empty without recall."""
    store = run.extensions.get("recall")
    if store is None:
        return {}
    codec = run.engine.codec
    cands = store.candidates

    def rank(held: set[int]) -> int | None:
        ranks = [cands.index(b) for b in held if b in cands]
        return min(ranks) if ranks else None

    holding = [
        {b for text in (" " + a, a) for b in store.blocks_holding(codec.encode(text))}
        for a in answers
    ]
    per_answer = [rank(held) for held in holding]
    found = [r for r in per_answer if r is not None]
    return {
        "answer_evicted": any(holding),
        "answer_rank": min(found) if found else None,
        # one per accepted value (a question with several values needs each one recalled)
        "answer_ranks": per_answer,
        "recalled": store.points_back(),
        "evidence": store.evidence,
        # the question selection's best 16 blocks by attention and each one's evidence (per
        # probe layer), best first: how far the answer's block stood above the rest
        "ranked_evidence": [[b, round(e, 3)] for b, e in store.ranked_evidence[:16]],
        "answer_blocks": sorted(set().union(*holding)),
    }


def read_and_ask(
    engine: Engine, config: SessionConfig, messages: list[dict[str, str]], case: Case
) -> tuple[list[dict[str, Any]], float]:
    """Read ``messages`` into a new session, then ask each question of ``case`` on its own
    fork; returns the scored rows and the seconds the reading took."""
    s = engine.new_session(config)
    t0 = time.perf_counter()
    s.append_messages(messages, add_generation_prompt=False)
    read_s = time.perf_counter() - t0
    rows = []
    for q in case.questions:
        reply, trace = ask(s, q)
        rows.append(
            {
                "question": q.text,
                "answers": q.answers,
                "reply": reply,
                "score": score(reply, q.answers, q.distractors),
                "tokens": s.n_tokens,
                **trace,
            }
        )
    s.close()
    return rows, read_s


def run_document(
    engine: Engine, config: SessionConfig, doc: str, case: Case
) -> tuple[list[dict[str, Any]], float]:
    """Read ``doc`` as a user turn, then ask each question of ``case`` on its own fork."""
    return read_and_ask(engine, config, document_messages(doc), case)


def document_messages(doc: str) -> list[dict[str, str]]:
    """The conversation a document is read in: the document as a user turn, then a short reply."""
    return [{"role": "user", "content": INTRO + doc}, {"role": "assistant", "content": ACK}]


def ask_server(
    client: Any, messages: list[dict[str, str]], case: Case, tokens: int
) -> tuple[list[dict[str, Any]], float]:
    """Each question of ``case`` as a stateless chat request to a running ``agentcore serve``
    (the whole conversation, then the question, as an OpenAI client sends it; greedy), with the
    server's own defaults (recall on). Returns the rows and the seconds of the first request."""
    rows = []
    first_s = 0.0
    for q in case.questions:
        t0 = time.perf_counter()
        reply = client.chat(
            [*messages, {"role": "user", "content": q.text + ASK}],
            max_tokens=reply_tokens(q),
            temperature=0.0,
        )
        first_s = first_s or time.perf_counter() - t0
        text = reply["choices"][0]["message"].get("content") or ""
        rows.append(
            {
                "question": q.text,
                "answers": q.answers,
                "reply": text,
                "score": score(text, q.answers, q.distractors),
                "tokens": tokens,
            }
        )
    return rows, first_s


def chat_messages(
    paras: Sequence[str],
    case: Case,
    n_tokens: int,
    count: Callable[[str], int],
    rng: random.Random,
) -> list[dict[str, str]]:
    """The chat family's conversation: the facts are told in passing in user turns of a
    multi-turn chat of about ``n_tokens`` (book passages as the turns' main content, a short
    reply after each)."""
    hay = haystack(paras, n_tokens - 200, count, rng)
    turns: list[list[str]] = [[]]
    size = 0
    for p in hay:  # group paragraphs into turns of ~CHAT_TURN_TOKENS
        turns[-1].append(p)
        size += count(p)
        if size >= CHAT_TURN_TOKENS:
            turns.append([])
            size = 0
    turns = [t for t in turns if t]
    for needle in case.needles:
        at = min(len(turns) - 1, int(needle.depth * len(turns)))
        turns[at].append("By the way, something I want you to remember: " + needle.text)
    messages: list[dict[str, str]] = []
    for i, t in enumerate(turns):
        messages.append({"role": "user", "content": "Here is the next part:\n\n" + "\n\n".join(t)})
        messages.append({"role": "assistant", "content": CHAT_REPLIES[i % len(CHAT_REPLIES)]})
    return messages


def run_chat(
    engine: Engine,
    config: SessionConfig,
    paras: Sequence[str],
    case: Case,
    n_tokens: int,
    count: Callable[[str], int],
    rng: random.Random,
) -> tuple[list[dict[str, Any]], float]:
    """The chat family: :func:`chat_messages`, then each fact asked in a final turn (the turns
    go in as chat messages, as LocalBackend appends them to a named session)."""
    messages = chat_messages(paras, case, n_tokens, count, rng)
    return read_and_ask(engine, config, messages, case)


def run_agent_chat(
    model: str, messages: Sequence[dict[str, str]], case: Case, count: Callable[[str], int]
) -> tuple[list[dict[str, Any]], float]:
    """The chat family through an :class:`~agentcore.Agent` with its defaults (its session
    recalls what left the window, its long-term memory is on): each user turn of ``messages``
    (:func:`chat_messages`) is a run (the agent writes its own replies), then each question
    is a run; the answer is the run's final answer. Returns the rows and the chat's seconds."""
    import tempfile

    from agentcore import Agent

    with tempfile.TemporaryDirectory(prefix="recall-real-agent-") as home:
        agent = Agent(model, name="recall", home=Path(home), approve=lambda _request: "once")
        try:
            t0 = time.perf_counter()
            for m in messages:
                if m["role"] == "user":
                    agent.run(m["content"])
            read_s = time.perf_counter() - t0
            rows = []
            for q in case.questions:
                reply = agent.run(q.text + ASK).answer
                rows.append(
                    {
                        "question": q.text,
                        "answers": q.answers,
                        "reply": reply,
                        "score": score(reply, q.answers, q.distractors),
                        "tokens": sum(count(m["content"]) for m in messages),
                    }
                )
        finally:
            agent.close()
    return rows, read_s


class Documents(NamedTuple):
    """A case and the documents it is read in."""

    case: Case
    long: str  # the needles outside the window
    short: str  # the ~1.5K reference: every needle inside the window
    near: str  # the long document's text with the needles inside the window


def build(
    family: str,
    split: str,
    length: int,
    index: int,
    window: int,
    count: Callable[[str], int],
    paras: Sequence[str],
) -> Documents:
    """Document ``index`` of ``family``: its case, its long document (needles outside the
    window), its ~1.5K reference, and the long document's text with the needles moved into
    the part the window still holds when the questions come (spread over its last ``window -
    512`` tokens, 384 tokens clear of the end: the same text, facts and length, nothing to
    recall)."""
    count = functools.cache(count)  # the long haystack is measured once, not three times
    rng = random.Random(f"{split}/{family}/{length}/{index}")
    k = needle_count("single" if family == "chat" else family)
    depths = depths_outside(length, window, k, rng)
    case = make_case("single" if family == "chat" else family, split, rng, depths)
    case.family = family
    hay = haystack(paras, length - 120, count, rng)
    short_needles = [
        Needle(n.text, 0.1 + 0.8 * i / max(1, k - 1)) for i, n in enumerate(case.needles)
    ]
    short_doc = place_needles(
        haystack(paras, INSIDE_TOKENS - 120, count, rng), short_needles, count
    )
    lo, hi = 1 - (window - 512) / length, 1 - 384 / length
    near = [Needle(n.text, lo + (hi - lo) * (i + 0.5) / k) for i, n in enumerate(case.needles)]
    return Documents(
        case, place_needles(hay, case.needles, count), short_doc, place_needles(hay, near, count)
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--model", default=None, help="model alias or path (default: the default model)"
    )
    ap.add_argument("--split", choices=("dev", "test"), default="test")
    ap.add_argument("--lengths", default="8192,32768", help="document lengths in tokens")
    ap.add_argument("--families", default=",".join(FAMILIES))
    ap.add_argument("--cases", type=int, default=2, help="documents per family and length")
    ap.add_argument(
        "--first",
        type=int,
        default=0,
        help="index of the first document (a later run adds documents to an earlier one's)",
    )
    ap.add_argument(
        "--arms",
        default="inside,recall",
        help="inside,recall[,always,topk,block,plain,turns,attention,agnostic,stream,nearest,exact,"
        "unweighed,every,window,near,near_recall,server,agent]",
    )
    ap.add_argument(
        "--window", type=int, default=None, help="sinks + window (default: the model's)"
    )
    ap.add_argument(
        "--layout-window",
        type=int,
        default=None,
        help="lay the documents out for this sinks + window (default: --window's), so that runs "
        "with different windows read the same documents",
    )
    ap.add_argument(
        "--sinks",
        type=int,
        default=None,
        help="tokens of the stream's opening kept in view, part of --window "
        "(default: StreamingConfig's)",
    )
    ap.add_argument(
        "--top-k", type=int, default=None, help="recalled blocks (default: RecallConfig)"
    )
    ap.add_argument(
        "--margin",
        type=float,
        default=None,
        help="RecallConfig.evidence_margin (default: the model card's)",
    )
    ap.add_argument(
        "--probes", default=None, help="probe layers as depth fractions, e.g. 0.5,0.6,0.7"
    )
    ap.add_argument(
        "--read-bias",
        type=float,
        default=None,
        help="RecallConfig.read_bias of the recall arms (default: the model's)",
    )
    ap.add_argument(
        "--read-from",
        type=int,
        default=None,
        help="RecallConfig.read_from of the recall arms: the first layer where a question reads "
        "what it recalled (default: the model's; the 'every' arm: 0)",
    )
    ap.add_argument(
        "--read-heads",
        default=None,
        help="RecallConfig.read_heads of the recall arms as layer.head pairs, e.g. 17.3,18.6; "
        "'all': every head (default: the model's)",
    )
    ap.add_argument(
        "--distance",
        default=None,
        help="positions between the newest token and the recalled span's end, or 'window' "
        "(right before the window; default: RecallConfig's)",
    )
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out", default=None, help="output folder (default docs/benchmarks)")
    ap.add_argument(
        "--pool",
        nargs="+",
        default=None,
        metavar="RUN",
        help="report earlier runs (their folders or recall_real.json files) as one sample: "
        "no model runs, the other options but --out do not apply",
    )
    args = ap.parse_args(argv)
    if args.pool:
        try:
            runs = load_runs([Path(p) for p in args.pool])
        except ValueError as err:
            ap.error(str(err))
        md, raw = pooled_report(runs)
        write_report("recall_real", md, raw, Path(args.out) if args.out else None)
        print(md)
        return 0
    if args.first < 0 or args.cases < 1:
        ap.error(f"--first must be >= 0 and --cases >= 1, got {args.first} and {args.cases}")
    if args.layout_window is not None and args.layout_window < 1:
        ap.error(f"--layout-window must be a number of tokens >= 1, got {args.layout_window}")
    if args.layout_window is not None and args.window and args.layout_window < args.window:
        ap.error(_layout_error(args.layout_window, args.window))
    if args.threads:
        torch.set_num_threads(args.threads)
    engine = Engine.load(args.model)
    streaming = engine.default_streaming()
    if args.window or args.sinks is not None:
        streaming = StreamingConfig.for_budget(args.window or streaming.budget, args.sinks)
    window = streaming.budget
    if args.layout_window is not None and args.layout_window < window:
        ap.error(_layout_error(args.layout_window, window))
    rc: dict[str, Any] = {"host_blocks": 1 << 20}
    if args.top_k:
        rc["top_k"] = args.top_k
        rc["candidates"] = max(32, args.top_k)
    if args.margin is not None:
        rc["evidence_margin"] = args.margin
    if args.distance:
        rc["distance"] = None if args.distance == "window" else int(args.distance)
    if args.probes:
        rc["probe_fractions"] = tuple(float(x) for x in args.probes.split(","))
    if args.read_bias is not None:
        rc["read_bias"] = args.read_bias
    if args.read_from is not None:
        rc["read_from"] = args.read_from
    if args.read_heads is not None:
        try:
            rc["read_heads"] = read_heads(args.read_heads)
        except ValueError as err:
            ap.error(str(err))
    recall_cfg = engine.recall_config(**rc)

    def session(**changes: Any) -> SessionConfig:
        """Sinks + window with the recall config changed by ``changes`` (None: recall off)."""
        recall = None if changes.pop("off", False) else dataclasses.replace(recall_cfg, **changes)
        return SessionConfig(streaming=streaming, keep_token_ids=False, recall=recall)

    configs = {
        "recall": session(),
        "block": session(contrast_unit="block"),
        "always": session(evidence_to_recall=None),
        "topk": session(evidence_margin=None),
        "plain": session(contrast=False),
        "exact": session(shortlist=None),
        "turns": session(lexical_turns=True),
        "attention": session(lexical_turns=False),
        "agnostic": session(position_agnostic=True),
        "stream": session(best_nearest=False),
        "nearest": session(best_nearest=True),
        "window": session(off=True),
        "inside": session(off=True),
        "near": session(off=True),
        "near_recall": session(),
        "unweighed": session(read_bias=0.0),
        "every": session(read_from=0),
    }
    arms = args.arms.split(",")
    codec = engine.codec
    paras = paragraphs((shared_data() / BOOKS[args.split]).read_text(encoding="utf-8"))
    count = lambda text: len(codec.encode(text))  # noqa: E731
    lengths = [int(x) for x in args.lengths.split(",")]
    families = args.families.split(",")
    rows: list[dict[str, Any]] = []
    t_start = time.perf_counter()
    out = Path(args.out) if args.out else None
    server = _Served(args.model, args.threads or 1) if "server" in arms else None

    def save() -> str:
        md, raw = report(
            rows,
            lengths,
            families,
            arms,
            args,
            engine,
            streaming,
            recall_cfg,
            time.perf_counter() - t_start,
        )
        write_report("recall_real", md, raw, out)
        return md

    for length in lengths:
        for family in families:
            for i in range(args.first, args.first + args.cases):
                case, long_doc, short_doc, near_doc = build(
                    family, args.split, length, i, args.layout_window or window, count, paras
                )
                for arm in arms:
                    t0 = time.perf_counter()
                    if arm == "agent":
                        if family != "chat":
                            continue  # an agent reads a document only as a chat's turns
                        rng = random.Random(f"{args.split}/chat/{length}/{i}/recall")
                        messages = chat_messages(paras, case, length, count, rng)
                        got, read_s = run_agent_chat(args.model or "default", messages, case, count)
                    elif arm == "server" and server is not None:
                        rng = random.Random(f"{args.split}/chat/{length}/{i}/recall")
                        messages = (
                            chat_messages(paras, case, length, count, rng)
                            if family == "chat"
                            else document_messages(long_doc)
                        )
                        tokens = sum(count(m["content"]) for m in messages)
                        got, read_s = ask_server(server.client, messages, case, tokens)
                    elif arm.startswith("near") and family == "chat":
                        continue  # a chat's facts inside the window: the inside arm
                    elif family == "chat":
                        n = INSIDE_TOKENS * 2 if arm == "inside" else length
                        got, read_s = run_chat(
                            engine,
                            configs[arm],
                            paras,
                            case,
                            n,
                            count,
                            random.Random(f"{args.split}/chat/{length}/{i}/{arm}"),
                        )
                    else:
                        doc = short_doc if arm == "inside" else long_doc
                        doc = near_doc if arm.startswith("near") else doc
                        got, read_s = run_document(engine, configs[arm], doc, case)
                    for r in got:
                        r.update(arm=arm, family=family, length=length, case=i, read_s=read_s)
                    rows.extend(got)
                    acc = sum(r["score"] for r in got) / len(got)
                    print(
                        f"  {length:6} {family:13} case {i} {arm:7} {acc:4.0%} "
                        f"({got[0]['tokens']} tok, {time.perf_counter() - t0:.0f}s, "
                        f"RSS {rss_mib():.0f} MiB)  {got[0]['reply'][:60]!r}",
                        flush=True,
                    )
                save()
    if server is not None:
        server.stop()
    print(save())
    return 0


def read_heads(spec: str) -> tuple[tuple[int, int], ...]:
    """``--read-heads``: ``"17.3,18.6"`` -> ``((17, 3), (18, 6))``; ``"all"`` -> ``()``."""
    if spec == "all":
        return ()
    pairs = []
    for part in spec.split(","):
        layer, dot, head = part.strip().partition(".")
        if not (dot and layer.isdigit() and head.isdigit()):
            raise ValueError(
                f"--read-heads takes layer.head pairs such as 17.3,18.6 or 'all', got {part!r}"
            )
        pairs.append((int(layer), int(head)))
    return tuple(pairs)


def _layout_error(layout: int, window: int) -> str:
    return (
        f"--layout-window must be at least the sessions' sinks + window ({window}), got {layout}: "
        "needles laid out for a smaller window could still be in view"
    )


class _Served:
    """``python -m agentcore.server`` (bench/serve.py's Server: a free port, the same model and
    threads, its own defaults otherwise, recall on) and a client for it."""

    def __init__(self, model: str | None, threads: int) -> None:
        import tempfile

        from serve import Server

        from agentcore.client import Client, ClientConfig

        self._dir = tempfile.TemporaryDirectory(prefix="recall-real-serve-")
        self.server = Server(Path(self._dir.name), model, threads)
        self.client = Client(self.server.url, config=ClientConfig(read=3600.0))

    def stop(self) -> None:
        self.client.close()
        self.server.stop()
        self._dir.cleanup()


def report(
    rows: list[dict[str, Any]],
    lengths: list[int],
    families: list[str],
    arms: list[str],
    args: Any,
    engine: Engine,
    streaming: StreamingConfig,
    recall_cfg: RecallConfig,
    elapsed: float,
) -> tuple[str, dict[str, Any]]:
    window = streaming.budget
    first = f" (from document {args.first})" if args.first else ""
    md = f"""# Long memory on real text

Model {engine.name}; sinks + window {window} tokens ({streaming.n_sink} sinks); recall {recall_cfg}.
Split **{args.split}** ({BOOKS[args.split]}); {args.cases} document(s) per family and length{first};
greedy replies of up to {ANSWER_TOKENS} tokens per question asked, right when they contain the accepted value(s)
(partial credit for questions with several values). "inside": the same facts and questions in
a ~{INSIDE_TOKENS}-token passage (chat family: a ~{2 * INSIDE_TOKENS}-token chat), all inside the
window. Cells: mean score (questions). Machine: {machine()}. Took {elapsed / 60:.1f} min.

{score_table(rows, lengths, families, arms)}
{paired_lines(rows, lengths)}{found_lines(rows, arms, recall_cfg.top_k)}"""
    raw = {
        "machine": machine(),
        "model": engine.name,
        "args": vars(args),
        "window": window,
        "sinks": streaming.n_sink,
        "recall": str(recall_cfg),
        "rows": rows,
        "elapsed_s": elapsed,
    }
    return md, raw


def load_runs(paths: Sequence[Path]) -> list[tuple[Path, dict[str, Any]]]:
    """The saved runs at ``paths`` (a run's folder or its ``recall_real.json``), checked to be
    one sample: the same model and split, and no document's question asked twice in one arm (a
    document counted twice would pass for a larger sample). ValueError names what is wrong."""
    runs: list[tuple[Path, dict[str, Any]]] = []
    seen: dict[tuple[Any, ...], Path] = {}
    for path in paths:
        file = path / "recall_real.json" if path.is_dir() else path
        try:
            raw = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as err:
            raise ValueError(f"{file}: not a saved recall_real run ({err})") from err
        if not isinstance(raw, dict) or not isinstance(raw.get("rows"), list):
            raise ValueError(f"{file}: not a saved recall_real run (no 'rows' list)")
        for field in ("model", "split") if runs else ():
            ours, theirs = _run_field(raw, field), _run_field(runs[0][1], field)
            if ours != theirs:
                raise ValueError(
                    f"{file}: {field} {ours!r} differs from {runs[0][0]}'s {theirs!r}; "
                    "a pooled sample is one model on one split"
                )
        for i, r in enumerate(raw["rows"]):
            missing = [k for k in _ROW_KEYS if not isinstance(r, dict) or k not in r]
            if missing:
                raise ValueError(f"{file}: row {i} lacks {', '.join(missing)}")
            key = (r["arm"], r["length"], r["family"], r["case"], r["question"])
            if key in seen:
                raise ValueError(
                    f"{file} and {seen[key]} both hold {r['family']} document {r['case']} at "
                    f"{r['length']} tokens, arm {r['arm']} (a document counted twice)"
                )
            seen[key] = file
        runs.append((file, raw))
    return runs


_ROW_KEYS = ("arm", "length", "family", "case", "question", "score")


def _run_field(raw: dict[str, Any], field: str) -> str:
    """A saved run's model alias (``default`` for the default model) or split."""
    args = raw.get("args") or {}
    if field == "model":
        return str(args.get("model") or "default")
    return str(args.get(field, "test"))


def pooled_report(runs: list[tuple[Path, dict[str, Any]]]) -> tuple[str, dict[str, Any]]:
    """The report of several runs' rows as one sample, each run listed with its settings."""
    rows = [r for _, raw in runs for r in raw["rows"]]
    lengths = sorted({r["length"] for r in rows})
    present = {r["family"] for r in rows}
    families = [f for f in (*FAMILIES, "chat") if f in present]
    arms = list(dict.fromkeys(r["arm"] for r in rows))
    listed = []
    for file, raw in runs:
        a = raw.get("args") or {}
        cases = sorted({r["case"] for r in raw["rows"]})
        if not cases:
            span = "no rows"
        elif len(cases) == 1:
            span = f"document {cases[0]}"
        elif cases == list(range(cases[0], cases[-1] + 1)):
            span = f"documents {cases[0]}-{cases[-1]}"
        else:
            span = "documents " + ", ".join(map(str, cases))
        listed.append(
            f"- `{file}`: {span}, {len(raw['rows'])} rows, lengths {a.get('lengths', '?')}, "
            f"arms {a.get('arms', '?')}, {raw.get('elapsed_s', 0) / 60:.1f} min; window "
            f"{raw.get('window', '?')} ({raw.get('sinks', 4)} sinks), recall {raw.get('recall', '?')}"
        )
    split = _run_field(runs[0][1], "split")
    top_k = min(
        (
            int(m.group(1))
            for _, raw in runs
            if (m := re.search(r"top_k=(\d+)", str(raw.get("recall"))))
        ),
        default=8,
    )
    md = f"""# Long memory on real text: {len(runs)} runs as one sample

Model {_run_field(runs[0][1], "model")}; split **{split}** ({BOOKS.get(split, "?")}). Each run's rows
are its own (read as it ran); only the counting is pooled. Cells: mean score (questions).

{score_table(rows, lengths, families, arms)}
{paired_lines(rows, lengths)}{found_lines(rows, arms, top_k)}
Runs:

{chr(10).join(listed)}
"""
    raw_out = {
        "args": {"model": _run_field(runs[0][1], "model"), "split": split},
        "pooled": [str(f) for f, _ in runs],
        "rows": rows,
    }
    return md, raw_out


def score_table(
    rows: list[dict[str, Any]], lengths: list[int], families: list[str], arms: list[str]
) -> str:
    """Mean score (questions) per length, family (and all) and arm, with recall / inside."""

    def acc(**keys: Any) -> tuple[float, int]:
        sel = [r for r in rows if all(r[k] == v for k, v in keys.items())]
        return (sum(r["score"] for r in sel) / len(sel) if sel else float("nan")), len(sel)

    headers = ["length", "family"] + [f"{a}" for a in arms] + ["recall / inside"]
    table = []
    for length in lengths:
        for family in [*families, "all"]:
            keys: dict[str, Any] = {"length": length}
            if family != "all":
                keys["family"] = family
            cells: list[Any] = [f"{length // 1024}K", family]
            vals = {}
            for a in arms:
                v, n = acc(arm=a, **keys)
                vals[a] = v
                cells.append(f"{v:.0%} ({n})" if n else "-")
            ratio = (
                vals.get("recall", float("nan")) / vals["inside"]
                if vals.get("inside")
                else float("nan")
            )
            cells.append(f"{ratio:.2f}" if ratio == ratio else "-")
            table.append(cells)
    return markdown_table(headers, table)


def paired_lines(rows: list[dict[str, Any]], lengths: list[int], draws: int = 2000) -> str:
    """Per length, the recall and inside arms question by question: how many questions each
    answered better, and a 90% interval of recall / inside from resampling whole documents
    (questions about one document share its reading, so the document is the unit; seeded, so
    the same rows give the same interval). Empty without both arms."""
    lines = []
    for length in lengths:
        pairs: dict[tuple[str, int], list[tuple[float, float]]] = {}
        inside = {
            (r["family"], r["case"], r["question"]): r["score"]
            for r in rows
            if r["arm"] == "inside" and r["length"] == length
        }
        for r in rows:
            key = (r["family"], r["case"], r["question"])
            if r["arm"] == "recall" and r["length"] == length and key in inside:
                pairs.setdefault(key[:2], []).append((r["score"], inside[key]))
        if not pairs:
            continue
        flat = [p for doc in pairs.values() for p in doc]
        better = sum(a > b for a, b in flat)
        worse = sum(a < b for a, b in flat)
        docs = list(pairs.values())
        rng = random.Random(f"paired/{length}")
        ratios = []
        for _ in range(draws):
            drawn = [p for _ in docs for p in rng.choice(docs)]
            base = sum(b for _, b in drawn)
            if base:
                ratios.append(sum(a for a, _ in drawn) / base)
        ratios.sort()
        interval = (
            f"{ratios[int(0.05 * len(ratios))]:.2f}-{ratios[int(0.95 * len(ratios)) - 1]:.2f}"
            if ratios
            else "-"
        )
        lines.append(
            f"- {length // 1024}K: {len(flat)} questions in {len(docs)} documents; recall "
            f"answered {better} better than inside, {worse} worse, {len(flat) - better - worse} "
            f"the same; recall / inside, 90% of {draws} document resamples: {interval}."
        )
    if not lines:
        return ""
    return "\nRecall against inside, question by question:\n\n" + "\n".join(lines) + "\n"


def found_lines(rows: list[dict[str, Any]], arms: list[str], top_k: int) -> str:
    """Per recall arm: of the questions whose answer had left the window, how many had its
    block ranked first by the question's selection, how many among its best ``top_k // 2``
    (each best block comes back with its successor, so those are recalled unless the evidence
    gate closed), and how many of those recalled the model answered."""
    lines = []
    sure = max(1, top_k // 2)
    for a in arms:
        out = [r for r in rows if r["arm"] == a and r.get("answer_evicted")]
        if not out:
            continue
        first = sum(r["answer_rank"] == 0 for r in out)
        top = [r for r in out if r["answer_rank"] is not None and r["answer_rank"] < sure]
        recalled = [r for r in top if r["recalled"]]
        right = sum(r["score"] for r in recalled)
        lines.append(
            f"- {a}: of {len(out)} questions whose answer had left the window, its block ranked "
            f"first for {first}, in the best {sure} for {len(top)}; recalled (the gate open) for "
            f"{len(recalled)}, of which the model answered {right:.3g}."
        )
    if not lines:
        return ""
    return "\nSelection (`answer_rank` in the JSON):\n\n" + "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
