"""The recall store's words: the BM25 shortlist a full selection over a large store scores."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from agentcore.core.cache import StreamingConfig
from agentcore.core.engine import Engine
from agentcore.core.lexicon import BlockLexicon, term_map
from agentcore.core.llama import CoreModel
from agentcore.core.recall import EvictedStore, RecallConfig
from agentcore.core.sampling import SamplingParams
from agentcore.core.session import SessionConfig


def _lexicon(tmp_path: Path, n_blocks: int, seed: int = 0) -> BlockLexicon:
    """Blocks of 16 ids drawn from a pool of 300 (ids 0-9 in every block, like "the")."""
    rng = np.random.default_rng(seed)
    lex = BlockLexicon(tmp_path / "tokens.i32", 16)
    for _ in range(n_blocks):
        ids = rng.integers(10, 300, 16)
        ids[:4] = rng.integers(0, 10, 4)
        lex.add(ids)
    return lex


def test_the_block_sharing_rare_words_comes_first(tmp_path: Path) -> None:
    needle = np.array([0, 1, 5000, 5001, 5002, 2, 3, 4, 5, 6, 7, 8, 9, 5003, 11, 12], np.int32)
    lex = _lexicon(tmp_path, 77)
    lex.add(needle)
    for b in _lexicon(tmp_path, 100, seed=1)._ids.reshape(-1, 16)[:100]:
        lex.add(b)
    # the question shares two rare ids with the needle and many common ones with everything
    query = np.array([0, 1, 2, 3, 4, 5, 6, 7, 5001, 8, 9, 5003], np.int32)
    top = lex.shortlist(query, lex.n_blocks, 10)
    assert top[0] == 77
    assert len(top) <= 10
    # terms in every block carry nothing: a query of them alone lists no block
    assert lex.shortlist(np.arange(10, dtype=np.int32), lex.n_blocks, 10) == []
    # only the first n blocks are candidates
    assert 77 not in lex.shortlist(query, 50, 10)


def test_blocks_holding_a_run_of_ids(tmp_path: Path) -> None:
    """Where a fact went: the blocks whose ids hold a run in order, a run across a boundary
    counted for the block it starts in; none for ids out of order or past ``n_blocks``."""
    lex = BlockLexicon(tmp_path / "tokens.i32", 4)
    for b in ([1, 2, 3, 4], [5, 7000, 7001, 6], [8, 9, 7000, 7001], [7002, 10, 11, 12]):
        lex.add(np.array(b, np.int32))
    assert lex.blocks_holding([7000, 7001], lex.n_blocks) == [1, 2]
    assert lex.blocks_holding([7000, 7001, 7002], lex.n_blocks) == [2]  # across 2 -> 3
    assert lex.blocks_holding([7001, 7000], lex.n_blocks) == []
    assert lex.blocks_holding([7000, 7001], 2) == [1]
    assert lex.blocks_holding([], lex.n_blocks) == []


def test_folded_terms_match_across_case_and_space(tmp_path: Path) -> None:
    terms = np.arange(100, dtype=np.int32)
    terms[60] = terms[40]  # say id 60 is " Paris" and id 40 "paris"
    lex = BlockLexicon(tmp_path / "tokens.i32", 4)
    lex.set_terms(terms)
    for b in range(50):
        lex.add(np.array([1, 2, 3, 10 + (b % 20)], np.int32))
    lex.add(np.array([1, 2, 40, 3], np.int32))
    assert lex.shortlist(np.array([60], np.int32), lex.n_blocks, 3) == [50]
    lex.set_terms(None)  # ids as terms again: 60 is a word nothing holds
    assert lex.shortlist(np.array([60], np.int32), lex.n_blocks, 3) == []


def test_the_words_survive_persist_and_load(tmp_path: Path) -> None:
    lex = _lexicon(tmp_path, 120)
    query = lex._ids[33 * 16 : 34 * 16]
    before = lex.shortlist(query, 120, 8)
    assert before[0] == 33
    lex.persist()
    again = BlockLexicon(tmp_path / "other.i32", 16)
    again.load(tmp_path / "tokens.i32", 100)  # a session saved when the store held 100 blocks
    assert again.complete and again.n_blocks == 100
    assert again.shortlist(query, 100, 8) == _lexicon(tmp_path, 100).shortlist(query, 100, 8)
    # a store saved before anything was evicted has no file, and needs none
    empty = BlockLexicon(tmp_path / "never.i32", 16)
    empty.load(tmp_path / "never.i32", 0)
    assert empty.complete and empty.n_blocks == 0
    # a store saved before the words were kept: no file, the shortlist is off
    old = BlockLexicon(tmp_path / "none.i32", 16)
    old.load(tmp_path / "none.i32", 5)
    assert not old.complete
    with pytest.raises(ValueError, match="16 token ids"):
        lex.add(np.zeros(3, np.int32))


def _needle_stream(n: int, at: int, *, seed: int) -> torch.Tensor:
    """``[1, n]`` random ids below 200 with a needle of the rare ids 200-207 at ``at``, and a
    question near the end that repeats the needle's words."""
    ids = torch.randint(0, 200, (1, n), generator=torch.Generator().manual_seed(seed))
    ids[0, at : at + 8] = torch.arange(200, 208)
    ids[0, -40:-32] = torch.arange(200, 208)
    return ids


def _store_reading(core: CoreModel, config: RecallConfig, ids: torch.Tensor) -> EvictedStore:
    d = core.dims
    store = EvictedStore(config, n_layers=d.n_layers, n_kv_heads=d.n_kv_heads, head_dim=d.head_dim)
    cache = core.new_cache(StreamingConfig(n_sink=4, window=256, chunk_size=256), recall=store)
    for s in range(0, ids.shape[1], 256):
        core.forward(ids[:, s : s + 256], cache, logits="none")
    return store


def test_a_large_store_scores_only_the_shortlist(
    tiny_hf: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stream of 16K tokens with a needle of rare ids at 10%: asked with the needle's words,
    a full selection scores ``shortlist`` blocks, the needle's among them (which of them the
    random tiny model's attention then prefers says nothing); the ids each block holds are the
    ids the stream read there."""
    core = CoreModel(tiny_hf)
    at = 1600
    ids = _needle_stream(16384, at, seed=3)
    cfg = RecallConfig(block_size=64, top_k=4, candidates=8, shortlist=16, host_blocks=32)
    store = _store_reading(core, cfg, ids)
    blocks = store.n_blocks
    assert blocks > 200
    for b in (0, blocks // 2, blocks - 1):
        start = store.block_start[b]
        assert np.array_equal(store.lexicon._ids[b * 64 : (b + 1) * 64], ids[0, start : start + 64])
    needle = next(i for i, s in enumerate(store.block_start) if s <= at < s + 64)
    scored: list[list[int] | None] = []
    evidence = store._evidence

    def spy(blocks: list[int] | None, n: int, q: int | None) -> Any:
        scored.append(blocks)
        return evidence(blocks, n, q)

    monkeypatch.setattr(store, "_evidence", spy)
    store.set_geometry(core.rotary, 0)
    chosen = store.plan(full=True)
    assert len(scored) == 1 and scored[0] is not None and len(scored[0]) == 16
    assert needle in scored[0]  # the block sharing the question's rare words was scored
    assert set(store._candidates) <= set(scored[0])
    assert len(chosen) == 4 and set(chosen) <= {b + d for b in scored[0] for d in (0, 1)}
    store.close()


def test_the_questions_words_and_its_attention_take_turns(tiny_hf: Any) -> None:
    """Queries that attend to a look-alike block, a question whose rare words name another:
    attention alone recalls the look-alike and not the named block; ``lexical_turns`` recalls
    both (attention's best first, then the words' best), keeps the named block through the
    re-rankings of the reply, and a save/restore plans alike."""
    core = CoreModel(tiny_hf)
    at = 1000
    ids = _needle_stream(4096, at, seed=5)
    cfg = RecallConfig(block_size=64, top_k=4, candidates=8, shortlist=None, host_blocks=64)
    store = _store_reading(core, cfg, ids)
    needle = next(i for i, s in enumerate(store.block_start) if s <= at < s + 64)
    store.set_geometry(core.rotary, 0)
    store._recent.clear()
    d = core.dims
    for p in store.probes:  # queries of another part of the text
        k = store.layers[p].get(needle + 20)[0].float()[:, :6]
        store.observe(p, k.repeat_interleave(d.n_heads // d.n_kv_heads, dim=0)[None])
    alone = store.plan(full=True)
    decoy = store.candidates[0]  # the block attention prefers
    assert needle not in alone and decoy in alone, alone
    store.config = dataclasses.replace(cfg, lexical_turns=True)
    both = store.plan(full=True)
    # one turn each, every block with its successor: the two rankings' best
    assert both == sorted([decoy, decoy + 1, needle, needle + 1]), both
    assert store.candidates[:2] == [decoy, needle]
    assert needle in store.plan(full=False)  # the reply's re-rankings keep the named block
    twin = EvictedStore(
        store.config, n_layers=d.n_layers, n_kv_heads=d.n_kv_heads, head_dim=d.head_dim
    )
    twin.load_state_dict(store.state_dict())
    twin.set_geometry(core.rotary, 0)
    assert twin.plan(full=False) == store.plan(full=False)
    twin.close()
    store.close()


def test_the_shortlist_survives_a_save_and_a_fork(tiny_engine: Engine, tmp_path: Path) -> None:
    """A session with recall saved, restored and forked: the three stores hold the same words
    and shortlist alike, and go on adding blocks with the ids read."""
    recall = RecallConfig(block_size=16, top_k=2, candidates=4, refresh=4, shortlist=8)
    cfg = SessionConfig(
        streaming=StreamingConfig(n_sink=4, window=60, chunk_size=30), recall=recall
    )
    text = " ".join(f"word{i % 97} thing{i % 13}" for i in range(700))
    with tiny_engine.new_session(cfg) as s:
        s.append_text(text)
        store: EvictedStore = s.extensions["recall"]
        assert store.n_blocks > 8 and store.lexicon.complete
        s.save(tmp_path / "s.pt")
        query = store._lexical_query()
        assert query.size == recall.lexical_query or query.size == store._live_end
        want = store.lexicon.shortlist(query, store.n_blocks, 8)
        with tiny_engine.restore_session(tmp_path / "s.pt") as back, s.fork() as twin:
            for other in (back.extensions["recall"], twin.extensions["recall"]):
                assert other.lexicon.complete
                assert other.n_blocks == store.n_blocks
                assert np.array_equal(other._lexical_query(), query)
                assert other.lexicon.shortlist(query, store.n_blocks, 8) == want
            for session in (s, back, twin):
                session.append_text(" more words to read " * 40)
            a, b = store.lexicon, back.extensions["recall"].lexicon
            assert a.n_blocks == b.n_blocks > 0
            assert np.array_equal(a._ids[: a.n_blocks * 16], b._ids[: b.n_blocks * 16])


@pytest.mark.slow
def test_term_map_folds_case_and_the_space_marker(real_engine: Engine) -> None:
    codec = real_engine.codec
    terms = term_map(codec)
    assert terms is not None and terms.shape[0] == codec.vocab_size
    ids = {w: codec.encode(w) for w in (" Water", "Water", " water", "water")}
    assert all(len(v) == 1 for v in ids.values()), ids  # four distinct single-token ids
    assert len({v[0] for v in ids.values()}) == 4
    assert len({int(terms[v[0]]) for v in ids.values()}) == 1  # one term
    assert terms[codec.encode(" house")[0]] != terms[ids["water"][0]]
    assert term_map(codec) is terms  # built once per codec


@pytest.mark.slow
def test_a_fact_deep_in_a_long_novel_comes_back_through_the_shortlist(
    real_engine: Engine, novel_chat: Any
) -> None:
    """Real text, real model, a store well past the shortlist's size: a fact told at ~15% of
    ~12K tokens of a novel (~150 evicted blocks; the selection scores 64 of them), asked in
    other words. The question's selection scores the fact's block and recalls it, and at least
    two of three replies carry the value."""
    codec = real_engine.codec
    fact = "Mr. Perry's nephew Tobias had rented the old mill at Kingsbrook for 38 guineas a year."
    history = novel_chat(codec, "austen-emma.txt", 200_000, fact, 12000, lambda i, n: n > 1800)
    questions = [
        "How much did Tobias pay each year for the mill at Kingsbrook?",
        "What was the yearly rent, in guineas, of the old mill at Kingsbrook?",
        "For how many guineas a year was the Kingsbrook mill rented? Answer briefly.",
    ]
    cfg = SessionConfig(
        streaming=real_engine.default_streaming(), recall=real_engine.recall_config()
    )
    assert cfg.recall is not None and cfg.recall.shortlist is not None
    replies = []
    with real_engine.new_session(cfg) as read:
        read.append_messages(history, add_generation_prompt=False)
        store: EvictedStore = read.extensions["recall"]
        assert store.n_blocks > 2 * cfg.recall.shortlist
        needle = codec.encode(" Kingsbrook")[0]
        held = [
            b for b in range(store.n_blocks) if needle in store.lexicon._ids[b * 64 : (b + 1) * 64]
        ]
        assert held, "the fact left the window"
        for question in questions:
            with read.fork() as s:
                s.append_messages([{"role": "user", "content": question}])
                twin: EvictedStore = s.extensions["recall"]
                assert set(held) & set(twin._candidates), (held, twin._candidates)
                replies.append(s.generate(SamplingParams(max_tokens=30)).text)
    assert sum("38" in r for r in replies) >= 2, replies
