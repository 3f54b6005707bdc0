"""Batched decode attention (agentcore.core.cache.DecodeGroup) and the int8 layer's dense path
for batches (agentcore.core.quant.Int8Weight ``dense_rows``), on the tiny model."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
import torch

from agentcore import testing
from agentcore.core import native
from agentcore.core.batch import decode_batch
from agentcore.core.cache import DecodeGroup, DecodeRows, StreamingConfig
from agentcore.core.engine import Engine
from agentcore.core.infini import InfiniConfig
from agentcore.core.llama import CoreModel
from agentcore.core.quant import TILE_ROWS, Int8Weight, linear
from agentcore.core.recall import RecallConfig
from agentcore.core.session import Session, SessionConfig
from tests.core.test_native import kernel
from tests.core.test_native_bf16 import bf16_kernel

SMALL = StreamingConfig(n_sink=4, window=28, chunk_size=8)


def _prompt(engine: Engine, seed: int, n: int) -> list[int]:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(5, engine.codec.vocab_size, (n,), generator=g).tolist()


def _pairs(engine: Engine, configs: list[SessionConfig], lengths: list[int]) -> Any:
    alone: list[Session] = []
    batched: list[Session] = []
    for i, (config, n) in enumerate(zip(configs, lengths, strict=True)):
        for group in (alone, batched):
            s = engine.new_session(config)
            s.append_tokens(_prompt(engine, i, n))
            group.append(s)
    return alone, batched


def step_both(
    engine: Engine,
    alone: list[Session],
    batched: list[Session],
    steps: int,
    compare: Callable[[torch.Tensor, torch.Tensor, int], None],
) -> None:
    """``steps`` decode steps of the same tokens: ``alone`` one session at a time, ``batched``
    in one :func:`decode_batch` per step; ``compare(batched logits, alone logits, step)``."""
    for step in range(steps):
        tokens = [(7 * step + 3 * j) % 50 + 5 for j in range(len(alone))]
        want = []
        for s, tok in zip(alone, tokens, strict=True):
            s.append_tokens([tok])
            assert s.next_logits is not None
            want.append(s.next_logits)
        got = decode_batch(engine.core, tokens, [s.cache for s in batched])
        compare(got, torch.stack(want), step)
        for s, tok, row in zip(batched, tokens, got, strict=True):
            s.fed([tok], row)


def assert_same_states(
    alone: list[Session], batched: list[Session], same: Callable[[torch.Tensor, torch.Tensor], None]
) -> None:
    """Each batched session's cache holds what its twin's holds after stepping alone."""
    for a, b in zip(alone, batched, strict=True):
        sa, sb = a.cache.state_dict(), b.cache.state_dict()
        assert sa.keys() == sb.keys()
        for key, value in sa.items():
            if isinstance(value, torch.Tensor):
                same(sb[key], value)
            else:
                assert sb[key] == value


def _close(atol: float) -> Callable[..., None]:
    return lambda got, want, *_: torch.testing.assert_close(got, want, atol=atol, rtol=atol)


def _equal(got: torch.Tensor, want: torch.Tensor, *where: object) -> None:
    assert torch.equal(got, want), where


def _spy_commits(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    commits: list[int] = []
    real = DecodeGroup.commit

    def counted(self: DecodeGroup) -> None:
        commits.append(len(self.caches))
        real(self)

    monkeypatch.setattr(DecodeGroup, "commit", counted)
    return commits


ROWS_RECALL = RecallConfig(block_size=4, top_k=2, candidates=4, refresh=4, host_blocks=64)
# recalled text weighed up in two heads (the kernel adds the bias per query head)
WEIGHED = replace(ROWS_RECALL, read_bias=2.0, read_heads=((1, 2), (0, 1)))


def _every_kind() -> list[SessionConfig]:
    """The first rows of a batch of every kind of session."""
    return [
        SessionConfig(streaming=SMALL),
        SessionConfig(streaming=SMALL),  # far past the window: the ring has wrapped
        SessionConfig(streaming=StreamingConfig(n_sink=2, window=14, chunk_size=4)),
        SessionConfig(streaming=SMALL, infini=InfiniConfig()),  # compressive memory, per row
        SessionConfig(streaming=SMALL, recall=ROWS_RECALL),  # recalls, refreshes on the way
    ]


def _spy_rows(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The rows each decode step's :meth:`DecodeRows.plan` took (0: none)."""
    planned: list[int] = []
    real = DecodeRows.plan.__func__  # type: ignore[attr-defined]

    def counted(cls: type[DecodeRows], caches: Any) -> DecodeRows | None:
        rows = real(cls, caches)
        planned.append(0 if rows is None else len(rows.caches))
        return rows

    monkeypatch.setattr(DecodeRows, "plan", classmethod(counted))
    return planned


def test_a_grouped_step_equals_each_session_stepping_alone(
    tiny_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    configs = [
        SessionConfig(streaming=SMALL),
        SessionConfig(streaming=SMALL),  # far past the window: the ring has wrapped
        SessionConfig(streaming=StreamingConfig(n_sink=2, window=14, chunk_size=4)),
        SessionConfig(streaming=SMALL, infini=InfiniConfig()),  # compressive memory, per row
        SessionConfig(streaming=SMALL),  # one token past its sinks
    ]
    alone, batched = _pairs(tiny_engine, configs, [9, 70, 40, 50, 4])
    commits = _spy_commits(monkeypatch)
    monkeypatch.setattr(tiny_engine.core, "native_rows", False)  # as without the native module
    # the short ones fill and wrap their windows on the way
    step_both(tiny_engine, alone, batched, 40, _close(1e-5))
    assert commits == [len(configs)] * 40  # every step took the grouped attention
    assert_same_states(alone, batched, _close(1e-6))  # left as stepping alone did


def test_sessions_that_cannot_join_a_group_attend_alone(tiny_engine: Engine) -> None:
    recall = RecallConfig(block_size=4, top_k=2, candidates=4, refresh=4, host_blocks=64)
    plain = tiny_engine.new_session(SessionConfig(streaming=SMALL))
    plain.append_tokens(_prompt(tiny_engine, 1, 12))
    with_recall = tiny_engine.new_session(SessionConfig(streaming=SMALL, recall=recall))
    with_recall.append_tokens(_prompt(tiny_engine, 2, 60))
    in_sinks = tiny_engine.new_session(SessionConfig(streaming=SMALL))
    in_sinks.append_tokens(_prompt(tiny_engine, 3, 2))

    @torch.inference_mode()
    def planned(*sessions: Session, max_keys: int = 256) -> DecodeGroup | None:
        for s in sessions:
            s.cache.begin(1)  # planned only, never run: the sessions are not used after
        try:
            return DecodeGroup.plan([s.cache for s in sessions], max_keys=max_keys)
        finally:
            for s in sessions:
                s.cache._step = None

    other = tiny_engine.new_session(SessionConfig(streaming=SMALL))
    other.append_tokens(_prompt(tiny_engine, 4, 20))
    assert planned(plain, other) is not None
    assert planned(plain) is None  # one session: nothing to group
    assert planned(plain, with_recall) is None
    assert planned(plain, in_sinks) is None
    assert planned(plain, other, max_keys=16) is None  # 'other' attends over 21 keys


@pytest.mark.parametrize("rows", [1, 7, 8, 16, 40, 512])  # 40, 512: a prompt's chunks
def test_int8_dense_rows_match_the_kernel(rows: int) -> None:
    gen = torch.Generator().manual_seed(5)
    w = torch.randn(96, 64, generator=gen).bfloat16()
    x = torch.randn(rows, 64, generator=gen).bfloat16()
    kernel, dense = Int8Weight(w), Int8Weight(w, dense_rows=8)
    ref = x.float() @ kernel.dequantize(torch.float32).t()
    got = linear(x, dense)
    assert got.dtype == torch.bfloat16 and got.shape == (rows, 96)
    # agentcore's kernel on the int8 tiles (AVX512-BF16) takes up to TILE_ROWS rows whatever
    # dense_rows says; PyTorch's kernel below dense_rows
    on_tiles = dense.tiled and rows <= TILE_ROWS
    if rows < 8 or on_tiles:  # the int8 kernel runs, and no bf16 copy is made
        assert torch.equal(got, linear(x, kernel)) and dense.dense_nbytes() == 0
    else:  # two bf16 roundings (the product, then the scale) instead of the kernel's one
        assert dense.dense_nbytes() == 96 * 64 * 2
        torch.testing.assert_close(got.float(), ref, atol=0.05, rtol=0.02)


def test_int8_dense_rows_need_bf16_scales_and_survive_an_adapter_merge(make_llama: Any) -> None:
    assert Int8Weight(torch.randn(16, 32), dense_rows=8).dense_rows is None  # float32 model
    core = CoreModel(make_llama(seed=3)).to(dtype=torch.bfloat16)
    core.quantize_int8(dense_rows=8)
    before = core.weight_bytes()
    core.add_to_qkv(0, torch.zeros(core.layers[0].w_qkv.shape))
    assert core.layers[0].w_qkv.dense_rows == 8
    cache = [core.new_cache(SMALL) for _ in range(8)]
    for c in cache:
        core.forward(torch.tensor([[5, 6, 7, 8, 9]]), c)
    decode_batch(core, list(range(10, 18)), cache)  # 8 rows
    if core.layers[0].w_qkv.tiled:  # AVX512-BF16: they ran on the int8 tiles, no copy made
        layer = core.layers[0]
        assert all(
            w.dense_nbytes() == 0 for w in (layer.w_qkv, layer.w_o, layer.w_gate_up, layer.w_down)
        )
        core.forward(torch.arange(5, 5 + TILE_ROWS + 1)[None], core.new_cache(StreamingConfig()))
    assert core.weight_bytes() > 2 * before  # 8 rows, or a prompt past TILE_ROWS: the bf16 copies
    assert core.weight_bytes(batch_copies=False) == before  # what one decode step reads


@pytest.mark.slow
def test_batched_greedy_agrees_with_each_session_alone_on_real_weights(real_engine: Engine) -> None:
    """The bf16 batched path (dense linears from 4 rows, grouped attention) rounds differently
    from a session alone (int8 kernel): on SmolLM2, 8 sessions, 40 teacher-forced steps, the
    greedy token must agree on >= 94% of steps and differ only where alone's top two logits are
    within 0.5 (measured with 4 sinks and 40-word texts: 311 of 320, gaps 0 to 0.25; 99.1% over
    16 x 128 steps of book text, gaps 0 to 0.375; bf16 logits step by 0.125 at their size).
    Where the model decodes on the native ops (float32, an AVX2 CPU) the rows step on them too
    (:class:`DecodeRows`), and where its int8 weights are held as tiles for agentcore's bf16
    kernel (AVX512-BF16) every row's projections are summed as alone: in both cases every
    step's logits must equal alone's bit for bit."""
    codec, core = real_engine.codec, real_engine.core
    words = [
        "river",
        "stone",
        "lantern",
        "orchard",
        "harbour",
        "meadow",
        "violin",
        "copper",
        "winter",
        "garden",
    ]
    sessions: list[tuple[Session, Session]] = []
    n_sink = real_engine.default_streaming().n_sink
    for j in range(8):
        # odd sessions start past their sinks (the conversation's opening, 64 tokens), even
        # ones inside them, and their steps cross into the window
        n_words = 80 + j if j % 2 else 24 + j
        text = f"Session {j}: " + " ".join(words[(7 * j + 3 * i) % 10] for i in range(n_words))
        ids = codec.encode(text + " Summarise this in one sentence.")
        assert (len(ids) > n_sink) == bool(j % 2) and len(ids) + 40 > n_sink, len(ids)
        pair = []
        for _ in range(2):
            s = real_engine.new_session(SessionConfig(streaming=real_engine.default_streaming()))
            s.append_tokens(ids)
            pair.append(s)
        sessions.append((pair[0], pair[1]))
    alone_logits = []  # [8][40, V]
    for alone, _ in sessions:
        rows = []
        for _ in range(40):
            assert alone.next_logits is not None
            rows.append(alone.next_logits)
            alone.append_tokens([int(alone.next_logits.argmax())])
        alone_logits.append(torch.stack(rows))
    batched = [b for _, b in sessions]
    logits = torch.stack([b.next_logits for b in batched if b.next_logits is not None])
    exact = native.decode_ops() is not None and all(layer.native_decode() for layer in core.layers)
    # on AVX512-BF16 every projection and the LM head run on agentcore's kernel over int8
    # tiles, which computes each row as alone, and the rows attend on the native kernel
    held = [vars(m)[n] for m in core.layers for n in core._PROJECTIONS] + [core.lm_head]
    exact = exact or all(isinstance(w, Int8Weight) and w.tiled for w in held)
    agree, gaps = 0, []
    for step in range(40):
        ref = torch.stack([a[step] for a in alone_logits])  # [8, V]
        if exact:
            assert torch.equal(logits, ref), step
        want = ref.argmax(-1)
        same = logits.argmax(-1) == want
        agree += int(same.sum())
        for j in torch.nonzero(~same).flatten().tolist():
            top = ref[j].topk(2).values
            gaps.append(float(top[0] - top[1]))
        logits = decode_batch(core, want.tolist(), [b.cache for b in batched])
    assert agree >= 0.94 * 8 * 40, (agree, gaps)
    assert all(g <= 0.5 for g in gaps), gaps


@pytest.fixture(scope="module")
def int8_engine() -> Engine:
    """A tiny engine whose layers decode on the native ops (float32, int8 weights with a scale
    per 32 inputs, as ``Engine.load`` holds them on an AVX2 CPU); skips without the module."""
    kernel()
    engine = testing.tiny_engine(seed=9, hidden_size=128, num_attention_heads=4, head_dim=32)
    engine.core.quantize_int8(group_size=32)
    assert all(layer.native_decode() for layer in engine.core.layers)
    return engine


def test_sessions_on_the_native_ops_step_together_bit_for_bit_as_alone(
    int8_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every kind of session steps in one batch on the native ops (recall, compressive memory,
    windows of other sizes, a ring that wraps, a stream still in its sinks) and gets exactly
    what it gets alone."""
    configs = [
        *_every_kind(),
        SessionConfig(streaming=SMALL, recall=ROWS_RECALL),  # fewer blocks than top_k: masked
        SessionConfig(streaming=SMALL),  # one token past its sinks
        SessionConfig(streaming=SMALL),  # in its sinks: its first steps store sinks
        SessionConfig(streaming=SMALL, recall=ROWS_RECALL),  # in its sinks, with recall
        SessionConfig(streaming=SMALL, recall=WEIGHED),
    ]
    alone, batched = _pairs(int8_engine, configs, [9, 70, 40, 50, 90, 37, 4, 1, 2, 80])
    planned = _spy_rows(monkeypatch)
    step_both(int8_engine, alone, batched, 40, _equal)
    assert planned == [len(configs)] * 40  # every step ran as one batch of rows
    assert_same_states(alone, batched, _equal)  # left as stepping alone did, bit for bit


@pytest.fixture(scope="module")
def bf16_engine() -> Engine:
    """A tiny engine in bf16 (as ``Engine.load`` holds a model on a CPU with bf16 dot products:
    its layers run on PyTorch, its caches are bf16); skips without the native module."""
    kernel()
    engine = testing.tiny_engine(seed=13, hidden_size=128, num_attention_heads=4, head_dim=32)
    engine.core.to(dtype=torch.bfloat16)
    assert not any(layer.native_decode() for layer in engine.core.layers)
    return engine


def test_bf16_sessions_step_together_on_the_native_attention_as_alone(
    bf16_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """bf16 caches of every kind attend as rows of one native call per layer (the layers'
    projections run on PyTorch and rotate per row), not through the keys copied side by side;
    each row's attention is the kernel the session uses alone, so the logits differ from
    alone's only by the rounding of the batch's bf16 projections."""
    configs = [
        *_every_kind(),
        SessionConfig(streaming=SMALL),  # in its sinks: its first steps store sinks
        SessionConfig(streaming=SMALL, recall=WEIGHED),
    ]
    alone, batched = _pairs(bf16_engine, configs, [9, 70, 40, 50, 90, 1, 80])
    planned = _spy_rows(monkeypatch)
    commits = _spy_commits(monkeypatch)
    # bf16 steps by 2^-8 of a value: a few steps' worth (equal here on a bf16 EPYC)
    step_both(bf16_engine, alone, batched, 40, _close(2e-2))
    assert planned == [len(configs)] * 40  # every step ran as one batch of rows
    assert commits == []  # never through the copied keys
    assert_same_states(alone, batched, _close(2e-2))


@pytest.fixture(scope="module")
def tiles_engine() -> Engine:
    """A tiny bf16 engine whose int8 weights are held as tiles for agentcore's bf16 kernel (as
    ``Engine.load`` holds a model on a CPU with AVX512-BF16); skips where the kernel does not
    run. A vocabulary of 272 makes the LM head whole tiles too."""
    bf16_kernel()
    engine = testing.tiny_engine(
        seed=13, hidden_size=128, num_attention_heads=4, head_dim=32, vocab_size=272
    )
    engine.core.to(dtype=torch.bfloat16)
    engine.core.quantize_int8(dense_rows=4)
    held = [vars(m)[n] for m in engine.core.layers for n in engine.core._PROJECTIONS]
    assert all(w.tiled for w in [*held, engine.core.lm_head])
    return engine


def test_sessions_on_int8_tiles_step_together_bit_for_bit_as_alone(
    tiles_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every kind of session (plain, past its window, recall, recall with read bias, in its
    sinks) steps in one batch on the int8 tiles exactly as alone: every row's projections are
    summed as alone, its attention is the kernel a session alone runs. Before the tiles a
    batch of 4 rows or more ran on the bf16 copy and only came close."""
    configs = [
        *_every_kind(),
        SessionConfig(streaming=SMALL),  # in its sinks: its first steps store sinks
        SessionConfig(streaming=SMALL, recall=WEIGHED),
    ]
    alone, batched = _pairs(tiles_engine, configs, [9, 70, 40, 50, 90, 1, 80])
    planned = _spy_rows(monkeypatch)
    step_both(tiles_engine, alone, batched, 40, _equal)
    assert planned == [len(configs)] * 40  # every step ran as one batch of rows
    assert_same_states(alone, batched, _equal)  # left as stepping alone did, bit for bit


def test_a_session_in_its_sinks_joins_the_native_rows(int8_engine: Engine) -> None:
    """A row whose new token is a sink stores it in the cache frame's slot of its position and
    attends over the sinks so far; the batch steps as each session alone, bit for bit."""
    plain = int8_engine.new_session(SessionConfig(streaming=SMALL))
    plain.append_tokens(_prompt(int8_engine, 1, 12))
    other = int8_engine.new_session(SessionConfig(streaming=SMALL))
    other.append_tokens(_prompt(int8_engine, 2, 40))
    in_sinks = int8_engine.new_session(SessionConfig(streaming=SMALL))
    in_sinks.append_tokens(_prompt(int8_engine, 3, 2))
    sessions = (plain, other, in_sinks)

    @torch.inference_mode()
    def planned(*sessions: Session) -> DecodeRows | None:
        for s in sessions:
            s.cache.begin(1)  # planned only, never run
        try:
            return DecodeRows.plan([s.cache for s in sessions])
        finally:
            for s in sessions:
                s.cache._step = None

    rows = planned(*sessions)
    assert rows is not None
    assert rows.slots.tolist() == [  # and no recalled keys: none weighed, from 4 to 4
        [8, 4 + 8, 4 + 9, 4, 4],  # 12 tokens: 4 sinks, ring slot 8 takes the 13th, 13 keys
        [(40 - 4) % 28, 4 + (40 - 4) % 28, 4 + 28, 4, 4],  # 40: the ring has wrapped, 32 keys
        [2, 2, 3, 4, 4],  # 2 tokens: the 3rd is sink 2, over 3 keys
    ]
    assert rows.raws[2] is in_sinks.cache.cf_k_raw
    assert planned(plain) is None  # one session: nothing to batch
    tokens = [40, 41, 42]
    want = []
    for s, tok in zip(sessions, tokens, strict=True):
        twin = int8_engine.new_session(SessionConfig(streaming=SMALL))
        twin.append_tokens(s.tokens)
        twin.append_tokens([tok])
        assert twin.next_logits is not None
        want.append(twin.next_logits)
    got = decode_batch(int8_engine.core, tokens, [s.cache for s in sessions])
    assert torch.equal(got, torch.stack(want))
