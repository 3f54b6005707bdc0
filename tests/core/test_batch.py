"""Decode steps of many sessions as one forward (agentcore.core.batch) on the tiny model."""

from __future__ import annotations

import threading
import time

import pytest
import torch

from agentcore.core.batch import DecodeBatcher, FairLock, decode_batch
from agentcore.core.cache import StreamingConfig
from agentcore.core.engine import Engine
from agentcore.core.recall import RecallConfig
from agentcore.core.sampling import SamplingParams
from agentcore.core.session import SessionConfig
from tests.core.test_batch_group import step_both

SMALL = StreamingConfig(n_sink=4, window=28, chunk_size=8)
RECALL = RecallConfig(block_size=4, top_k=2, candidates=4, refresh=4, host_blocks=64)


def _prompt(engine: Engine, seed: int, n: int) -> list[int]:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(5, engine.codec.vocab_size, (n,), generator=g).tolist()


def _configs() -> list[SessionConfig]:
    """Sessions of different kinds and lengths: plain, recall, past the window, fresh."""
    return [
        SessionConfig(streaming=SMALL),
        SessionConfig(streaming=SMALL, recall=RECALL),
        SessionConfig(streaming=StreamingConfig(n_sink=2, window=14, chunk_size=4)),
        SessionConfig(streaming=SMALL),
    ]


def test_a_batched_step_equals_each_session_stepping_alone(tiny_engine: Engine) -> None:
    lengths = [5, 70, 40, 1]  # inside the window, far past it with recall, past it, one token
    alone, batched = [], []
    for i, (config, n) in enumerate(zip(_configs(), lengths, strict=True)):
        for group in (alone, batched):
            s = tiny_engine.new_session(config)
            s.append_tokens(_prompt(tiny_engine, i, n))
            group.append(s)

    def close(got: torch.Tensor, want: torch.Tensor, step: int) -> None:
        assert got.shape == (len(batched), tiny_engine.codec.vocab_size)
        torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)

    # decode steps: evictions, recall refreshes and all
    step_both(tiny_engine, alone, batched, 12, close)
    assert [s.cache.pos for s in batched] == [s.cache.pos for s in alone]
    for a, b in zip(alone, batched, strict=True):  # the stores saw the same queries
        if a.cache.recall is not None:
            assert b.cache.recall is not None
            want, got = a.cache.recall.state_dict()["recent"], b.cache.recall.state_dict()["recent"]
            assert sorted(got) == sorted(want) == a.cache.recall.probes
            for layer, q in want.items():
                torch.testing.assert_close(got[layer], q, atol=1e-2, rtol=1e-2)


def test_decode_batch_refuses_mismatched_inputs(tiny_engine: Engine) -> None:
    s = tiny_engine.new_session(SessionConfig(streaming=SMALL))
    s.append_tokens([5, 6, 7])
    with pytest.raises(ValueError, match="2 tokens for 1 caches"):
        decode_batch(tiny_engine.core, [1, 2], [s.cache])
    with pytest.raises(ValueError, match="max_batch"):
        DecodeBatcher(tiny_engine.core, threading.Lock(), max_batch=0)


def test_sessions_generating_on_threads_are_batched_and_match_running_alone(
    tiny_engine: Engine,
) -> None:
    params = SamplingParams(max_tokens=24, temperature=0.0, stop_token_ids=())
    prompts = [_prompt(tiny_engine, 100 + j, 9 + 5 * j) for j in range(4)]

    def run(prompt: list[int]) -> tuple[int, ...]:
        s = tiny_engine.new_session(SessionConfig(streaming=SMALL))
        s.append_tokens(prompt)
        return s.generate(params).token_ids

    want = [run(p) for p in prompts]  # one at a time: batches of one
    batcher = tiny_engine.batcher
    before = (batcher.steps, batcher.batches)
    got: list[tuple[int, ...] | None] = [None] * len(prompts)
    start = threading.Barrier(len(prompts))

    def worker(j: int) -> None:
        start.wait()
        got[j] = run(prompts[j])

    threads = [threading.Thread(target=worker, args=(j,)) for j in range(len(prompts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == want
    steps, batches = batcher.steps - before[0], batcher.batches - before[1]
    assert steps == 4 * 24  # every decode step went through the batcher
    assert batches < steps  # and some of them shared a forward


def test_an_error_in_a_batch_reaches_every_session_in_it(tiny_engine: Engine) -> None:
    batcher = DecodeBatcher(tiny_engine.core, threading.Lock())
    s = tiny_engine.new_session(SessionConfig(streaming=SMALL))
    s.append_tokens([5, 6])
    with pytest.raises((IndexError, RuntimeError)):
        batcher.step(s.cache, tiny_engine.codec.vocab_size + 10)  # no such token
    assert batcher.batches == 1 and batcher.steps == 1


def test_a_leader_waits_for_the_other_generating_sessions_but_not_when_alone(
    tiny_engine: Engine,
) -> None:
    batcher = DecodeBatcher(tiny_engine.core, threading.Lock(), gather_s=10.0)
    sessions = []
    for j in range(2):
        s = tiny_engine.new_session(SessionConfig(streaming=SMALL))
        s.append_tokens(_prompt(tiny_engine, 200 + j, 6))
        sessions.append(s)
    registered = threading.Barrier(2)
    results: list[torch.Tensor | None] = [None, None]

    def worker(j: int) -> None:
        with batcher.generating():
            registered.wait()
            if j == 1:
                time.sleep(0.05)  # still sampling its token when the other one asks
            results[j] = batcher.step(sessions[j].cache, 9 + j)

    threads = [threading.Thread(target=worker, args=(j,)) for j in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert (batcher.batches, batcher.largest) == (1, 2)  # the leader waited for the other
    assert all(r is not None for r in results)

    alone = DecodeBatcher(tiny_engine.core, threading.Lock(), gather_s=10.0)
    start = time.monotonic()
    with alone.generating():
        for tok in range(5, 10):
            alone.step(sessions[0].cache, tok)
    assert time.monotonic() - start < 10.0  # none of the five steps waited for a peer
    assert alone.batches == 5


def test_the_model_lock_is_granted_in_arrival_order_and_is_reentrant() -> None:
    lock = FairLock()
    order: list[str] = []
    with lock, lock:  # reentrant
        waiting = []
        for name in ("first", "second", "third"):
            t = threading.Thread(target=lambda n=name: _take_and_note(lock, order, n))
            t.start()
            waiting.append(t)
            time.sleep(0.05)  # each queues before the next one starts
        order.append("holder")
    # the holder takes it again at once: behind the three that were waiting
    with lock:
        order.append("holder again")
    for t in waiting:
        t.join()
    assert order == ["holder", "first", "second", "third", "holder again"]
    with pytest.raises(RuntimeError, match="does not hold it"):
        lock.release()


def _take_and_note(lock: FairLock, order: list[str], name: str) -> None:
    with lock:
        order.append(name)
