"""Next-token selection: greedy, temperature, top-k, top-p, repetition/presence/frequency
penalties, token masks.

Owns the seeded random generator whose state is part of a saved session (a sampler given no
seed draws one from the operating system, so two unseeded sessions never sample alike);
the parameters it applies are :class:`~agentcore.core.params.SamplingParams` (re-exported). Never runs the model and never sees text: it maps logits to a
token id.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch

from agentcore.core.params import SamplingParams

__all__ = ["RecordingSampler", "Sampler", "SamplingParams", "recording", "top_logprobs"]


class Sampler:
    """Picks the next token from logits; holds the random generator (saved with the session).

    ``seed``: any 64-bit integer, negative ones included; ``None``: a fresh random seed.
    """

    def __init__(self, seed: int | None = None) -> None:
        self.generator = torch.Generator(device="cpu")
        self.reseed(seed if seed is not None else secrets.randbits(63))

    def reseed(self, seed: int) -> None:
        self.generator.manual_seed(seed)

    def get_state(self) -> torch.Tensor:
        return self.generator.get_state()

    def set_state(self, state: torch.Tensor) -> None:
        self.generator.set_state(state)

    def pick(
        self,
        logits: torch.Tensor,
        params: SamplingParams,
        recent: Sequence[int] = (),
        allowed: torch.Tensor | None = None,
        reply: Sequence[int] = (),
    ) -> int:
        """``logits: [V]`` -> token id. ``allowed: [V] bool`` restricts the choice (grammar);
        ``recent``: the tokens the repetition penalty sees; ``reply``: the tokens this reply
        generated so far (presence and frequency penalties)."""
        # the caller's logits are never written: x is copied before the first change in place
        x = logits.detach().to("cpu", torch.float32)
        if allowed is not None:
            mask = allowed.to("cpu")
            if mask.shape[0] < x.shape[0]:
                mask = torch.nn.functional.pad(mask, (0, x.shape[0] - mask.shape[0]), value=False)
            x = x.masked_fill(~mask[: x.shape[0]], float("-inf"))  # a new tensor
        elif (params.repetition_penalty != 1.0 and recent) or (
            (params.presence_penalty or params.frequency_penalty) and reply
        ):
            x = x.clone()
        if params.repetition_penalty != 1.0 and recent:
            window = list(recent)[-params.repetition_window :] if params.repetition_window else []
            if window:
                # on the NumPy view of x (its memory): ~5x faster than as torch ops, per token
                values = x.numpy()
                ids = np.fromiter(set(window), dtype=np.int64)
                ids = ids[ids < values.shape[0]]
                vals = values[ids]
                pen = params.repetition_penalty
                values[ids] = np.where(vals > 0, vals / pen, vals * pen)
        if (params.presence_penalty or params.frequency_penalty) and reply:
            x = _penalize_reply(x, reply, params.presence_penalty, params.frequency_penalty)
        if params.temperature == 0.0:
            # the first largest, as torch.argmax (NaN counts as largest in both): NumPy's is
            # ~10x faster over a 49K vocabulary on this CPU (4 against 43 us), once per token
            return int(x.numpy().argmax())
        x = (x - x.max()) / params.temperature  # shift first: tiny temperatures cannot overflow
        if params.top_k:
            k = min(params.top_k, x.shape[0])
            kth = torch.topk(x, k).values[-1]
            x = x.masked_fill(x < kth, float("-inf"))
        if params.top_p < 1.0:
            kept_x, kept = _nucleus(x, params.top_p)
            return int(kept[_draw(torch.softmax(kept_x, dim=-1), self.generator)])
        return _draw(torch.softmax(x, dim=-1), self.generator)


# top-p first looks for the nucleus among this many most likely tokens (then 8x as many, ...)
_NUCLEUS_FIRST = 64


def _nucleus(x: torch.Tensor, top_p: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The smallest set of most likely tokens whose probabilities reach ``top_p``: their
    logits and ids, most likely first (``x: [V]``). Looked for among the best 64, then 512, ...
    tokens (a partial top-k) and sorting all ``V`` only when those fall short: a full sort of
    a 49K vocabulary took ~3.9 ms a token on a 2-core CPU, half a decode step."""
    probs = torch.softmax(x, dim=-1)
    k = min(_NUCLEUS_FIRST, x.shape[0])
    while True:
        ids = torch.topk(x, k).indices  # most likely first
        top = probs[ids]
        cum = torch.cumsum(top, dim=-1)
        if k == x.shape[0] or float(cum[-1]) >= top_p:
            break
        k = min(8 * k, x.shape[0])
    keep = int((cum - top <= top_p).sum())  # each token whose predecessors fall short of top_p
    return x[ids[:keep]], ids[:keep]


def _draw(probs: torch.Tensor, generator: torch.Generator) -> int:
    """An index drawn from ``probs: [V]`` (summing to ~1) with one uniform number: the first
    whose cumulative sum (float64) exceeds it. ``torch.multinomial`` draws an exponential
    number per entry instead: ~1.2 ms for a 49K vocabulary on a 2-core CPU, against ~0.1."""
    cum = torch.cumsum(probs, dim=0, dtype=torch.float64)
    total = float(cum[-1])
    if not total > 0.0 or total == float("inf"):  # NaN too: every logit masked, or not finite
        raise ValueError(f"no token can be drawn: the probabilities sum to {total}")
    u = torch.rand((), generator=generator, dtype=torch.float64) * total
    return min(int(torch.searchsorted(cum, u, right=True)), probs.shape[0] - 1)


def _penalize_reply(
    x: torch.Tensor, reply: Sequence[int], presence: float, frequency: float
) -> torch.Tensor:
    """OpenAI's penalties: ``x[j] -= presence * (c[j] > 0) + frequency * c[j]``, where ``c[j]``
    counts token ``j`` in ``reply`` (``x: [V]``; masked ``-inf`` entries stay ``-inf``)."""
    ids, counts = torch.unique(torch.tensor(list(reply), dtype=torch.long), return_counts=True)
    inside = ids < x.shape[0]
    ids, counts = ids[inside], counts[inside].to(x.dtype)
    x[ids] = x[ids] - (presence + frequency * counts)
    return x


def top_logprobs(logp: torch.Tensor, k: int) -> list[tuple[int, float]]:
    """``logp: [V]`` -> the ``k`` most likely (token id, log-probability) pairs."""
    if k <= 0:
        return []
    values, ids = torch.topk(logp, min(k, logp.shape[-1]))
    return [(int(i), float(v)) for i, v in zip(ids.tolist(), values.tolist(), strict=True)]


class RecordingSampler(Sampler):
    """Delegates every pick to another sampler and notes the model's log-probabilities.

    ``records``: per pick, the picked token's log-probability under the model's logits (before
    penalties, masks and temperature) and the ``top`` most likely alternatives. The random
    state is the inner sampler's, so recording never changes what is sampled.
    """

    def __init__(self, inner: Sampler, top: int) -> None:
        self.generator = inner.generator
        self.inner = inner
        self.top = top
        self.records: list[tuple[float, list[tuple[int, float]]]] = []

    def pick(
        self,
        logits: torch.Tensor,
        params: SamplingParams,
        recent: Sequence[int] = (),
        allowed: torch.Tensor | None = None,
        reply: Sequence[int] = (),
    ) -> int:
        token = self.inner.pick(logits, params, recent, allowed, reply)
        logp = torch.log_softmax(logits.detach().float().cpu(), dim=-1)  # [V]
        self.records.append((float(logp[token]), top_logprobs(logp, self.top)))
        return token


@contextlib.contextmanager
def recording(owner: Any, top: int | None) -> Iterator[list[tuple[float, list[tuple[int, float]]]]]:
    """While open, ``owner.sampler`` (a session's) also notes each picked token's
    log-probability and its ``top`` best alternatives into the yielded list; ``top=None``
    notes nothing. The session's own sampler is back in place when the block ends."""
    if top is None:
        yield []
        return
    inner = owner.sampler
    recorder = RecordingSampler(inner, top)
    owner.sampler = recorder
    try:
        yield recorder.records
    finally:
        owner.sampler = inner
