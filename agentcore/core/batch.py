"""Decode steps of many sessions as one forward pass.

Owns :func:`decode_batch`, one decode step for several streaming caches at once,
:class:`DecodeBatcher`, which gathers the decode steps that sessions on different threads ask
for while the model is busy and runs them together, and :class:`FairLock`, the model's forward
lock, granted in arrival order so that a long prompt read chunk by chunk lets a waiting session
in after every chunk. A decode step on a CPU is bound by reading
the weights (and by per-step overhead), not by arithmetic, so B sessions stepping together cost
little more than one: the projections and the MLP run once on ``[B, 1, hidden]`` (from 4 rows on
a bf16 copy of int8 weights, which reuses each weight read over the rows), and the attention
reads each session's own cache (its own positions, window, recall store and compressive
memory). With agentcore's native module (x86 with AVX2: float32 or bf16 caches) every layer's
attention of all rows is one call over each row's own cache
(:class:`~agentcore.core.cache.DecodeRows`); on the native decode ops (float32) each row gets
exactly what it gets alone. Elsewhere (a GPU, a CPU without the module) one call over the rows'
keys copied side by side while the windows are short
(:class:`~agentcore.core.cache.DecodeGroup`), else session by session, as it would alone.

Batching is group commit: a thread that asks for a step queues it and waits for the model; the
thread that gets the model takes every step queued by then (up to ``max_batch``) and runs them
as one batch. Sessions that are generating say so (:meth:`DecodeBatcher.generating`), and the
thread that leads a batch waits a few milliseconds at most (``gather_s``) for the steps of the
other generating sessions, which are sampling their next token meanwhile; without that wait two
sessions would take turns at batch size 1. A session alone never waits.
Never samples, never holds per-session state, never reorders a session's own steps (a session
asks for its next step only after its previous one returned).
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import torch

from agentcore._compute import on_compute
from agentcore.core.cache import StreamingCache
from agentcore.core.llama import CoreModel

__all__ = ["DecodeBatcher", "FairLock", "decode_batch"]


class FairLock:
    """A reentrant lock granted in the order threads asked for it.

    ``threading.RLock`` lets the thread that just released it take it again at once, so a
    session reading a long prompt chunk by chunk kept the model for every chunk while a short
    request waited for the whole prompt; here the waiting thread is next.
    """

    def __init__(self) -> None:
        self._changed = threading.Condition(threading.Lock())
        self._owner: int | None = None
        self._depth = 0
        self._waiting: deque[object] = deque()

    def acquire(self) -> bool:
        me = threading.get_ident()
        with self._changed:
            if self._owner == me:
                self._depth += 1
                return True
            ticket = object()
            self._waiting.append(ticket)
            while self._owner is not None or self._waiting[0] is not ticket:
                self._changed.wait()
            self._waiting.popleft()
            self._owner, self._depth = me, 1
            return True

    def release(self) -> None:
        with self._changed:
            if self._owner != threading.get_ident():
                raise RuntimeError("FairLock released by a thread that does not hold it")
            self._depth -= 1
            if self._depth == 0:
                self._owner = None
                self._changed.notify_all()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


@on_compute
@torch.inference_mode()
def decode_batch(
    core: CoreModel, tokens: Sequence[int], caches: Sequence[StreamingCache]
) -> torch.Tensor:
    """One decode step of ``len(caches)`` sessions: ``tokens[j]`` goes into ``caches[j]``.

    Returns the next-token logits ``[B, V]`` (float32, on the model's device). Each cache must
    hold one session (batch 1). Row ``j`` equals ``core.forward`` of ``tokens[j]`` on
    ``caches[j]`` alone: bit for bit on the native decode ops (float32 activations, int8
    weights; :class:`~agentcore.core.cache.DecodeRows`), elsewhere up to float rounding: a
    matrix product with more rows, the bf16 path of int8 weights, without the native module
    attention over keys padded to the longest row (greedy decoding on SmolLM2 agrees on 97-99%
    of tokens; docs/benchmarks/concurrency.md).
    """
    if len(tokens) != len(caches) or not caches:
        raise ValueError(f"decode_batch: {len(tokens)} tokens for {len(caches)} caches")
    ids = torch.tensor(list(tokens), dtype=torch.long)[:, None]  # [B,1]
    return core.forward_hidden(ids, caches, logits="last")[:, -1]  # [B,V]


@dataclasses.dataclass(eq=False)
class _Step:
    cache: StreamingCache
    token: int
    logits: torch.Tensor | None = None
    error: BaseException | None = None
    done: bool = False


class DecodeBatcher:
    """Runs the decode steps that threads ask for concurrently as batches (group commit).

    ``lock`` is the model's forward lock (held around every forward: a batch, or a chunk of some
    session's prompt between two batches). ``max_batch`` bounds the rows of one batch (1: every
    step is its own forward); ``gather_s`` is the longest a batch's leader waits for the steps of
    the other generating sessions.
    """

    def __init__(
        self,
        core: CoreModel,
        lock: AbstractContextManager[Any],
        max_batch: int = 16,
        gather_s: float = 0.005,
    ) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        if gather_s < 0:
            raise ValueError(f"gather_s must be >= 0, got {gather_s}")
        self.core = core
        self.lock = lock
        self.max_batch = max_batch
        self.gather_s = gather_s
        self._queue: list[_Step] = []
        self._queue_changed = threading.Condition(threading.Lock())
        self._generating = 0  # sessions inside generating(): their next step is coming
        self.steps = 0  # decode steps run
        self.batches = 0  # forwards they took
        self.largest = 0  # rows of the largest batch so far

    @contextmanager
    def generating(self) -> Iterator[None]:
        """Held by a session while it generates: a batch's leader waits for its next step."""
        with self._queue_changed:
            self._generating += 1
        try:
            yield
        finally:
            with self._queue_changed:
                self._generating -= 1
                self._queue_changed.notify_all()

    def step(self, cache: StreamingCache, token: int) -> torch.Tensor:
        """Feed ``token`` into ``cache`` and return the next-token logits ``[V]`` (float32)."""
        mine = _Step(cache, int(token))
        with self._queue_changed:
            self._queue.append(mine)
            self._queue_changed.notify_all()
        with self.lock:
            if not mine.done:  # nobody took it while this thread waited: lead a batch
                self._run(self._take(mine))
        if mine.error is not None:
            raise mine.error
        assert mine.logits is not None
        return mine.logits

    def _take(self, mine: _Step) -> list[_Step]:
        """Up to ``max_batch`` queued steps, ``mine`` among them, in arrival order; first waits
        (``gather_s`` at most) until every generating session has queued its step."""
        with self._queue_changed:
            deadline = time.monotonic() + self.gather_s
            while len(self._queue) < min(self._generating, self.max_batch):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._queue_changed.wait(left)
            batch = self._queue[: self.max_batch]
            if mine not in batch:
                batch[-1] = mine
            taken = {id(s) for s in batch}
            self._queue = [s for s in self._queue if id(s) not in taken]
        return batch

    def _run(self, batch: list[_Step]) -> None:
        try:
            if len(batch) == 1:
                one = batch[0]
                ids = torch.tensor([[one.token]], dtype=torch.long)
                rows = self.core.forward(ids, one.cache, logits="last")[:, -1].float()
            else:
                rows = decode_batch(self.core, [s.token for s in batch], [s.cache for s in batch])
            for s, row in zip(batch, rows.cpu(), strict=True):
                s.logits = row
        except BaseException as error:  # every session of the batch sees why its step failed
            for s in batch:
                s.error = error
        finally:
            self.steps += len(batch)
            self.batches += 1
            self.largest = max(self.largest, len(batch))
            for s in batch:
                s.done = True
