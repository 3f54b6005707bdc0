"""Next-token selection: greedy, temperature, top-k, top-p, repetition penalty, token masks.

Owns the sampling parameters and the seeded random generator whose state is part of a
saved session (a sampler given no seed draws one from the operating system, so two unseeded
sessions never sample alike). Never runs the model and never sees text: it maps logits to a
token id.
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Sequence
from typing import Literal

import torch

__all__ = ["Sampler", "SamplingParams"]

_SCOPES = ("context", "reply")


@dataclasses.dataclass(frozen=True)
class SamplingParams:
    """How to pick tokens and when to stop. ``temperature == 0`` means greedy.

    ``repetition_penalty`` divides the positive logits (multiplies the negative ones) of tokens
    seen recently: with ``repetition_scope="context"`` the last ``repetition_window`` tokens of
    the stream, prompt included (as transformers does); with ``"reply"`` only the tokens this
    reply generated, so that the prompt's words (a name, a number to repeat back) stay free
    while the reply cannot loop on its own phrases.
    """

    max_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0
    repetition_penalty: float = 1.0
    repetition_window: int = 256
    repetition_scope: Literal["context", "reply"] = "context"
    stop: tuple[str, ...] = ()
    stop_token_ids: tuple[int, ...] | None = None  # None: the tokenizer's end-of-turn tokens
    seed: int | None = None

    def __post_init__(self) -> None:
        checks = [
            ("max_tokens", self.max_tokens >= 0, "an integer >= 0"),
            ("temperature", self.temperature >= 0, "a number >= 0"),
            ("top_p", 0 < self.top_p <= 1, "a number in (0, 1]"),
            ("top_k", self.top_k >= 0, "an integer >= 0 (0 = off)"),
            ("repetition_penalty", self.repetition_penalty > 0, "a number > 0 (1 = off)"),
            ("repetition_window", self.repetition_window >= 0, "an integer >= 0"),
            ("repetition_scope", self.repetition_scope in _SCOPES, "'context' or 'reply'"),
        ]
        for name, ok, expected in checks:
            if not ok:
                raise ValueError(f"{name}={getattr(self, name)!r} is invalid: expected {expected}")
        if isinstance(self.stop, str):
            object.__setattr__(self, "stop", (self.stop,))

    @classmethod
    def greedy(cls, max_tokens: int = 256, **kw: object) -> SamplingParams:
        return cls(max_tokens=max_tokens, temperature=0.0, **kw)  # type: ignore[arg-type]

    @classmethod
    def creative(cls, max_tokens: int = 256, **kw: object) -> SamplingParams:
        defaults: dict[str, object] = {"temperature": 0.7, "top_p": 0.9, "repetition_penalty": 1.1}
        defaults.update(kw)
        return cls(max_tokens=max_tokens, **defaults)  # type: ignore[arg-type]


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
    ) -> int:
        """``logits: [V]`` -> token id. ``allowed: [V] bool`` restricts the choice (grammar)."""
        x = logits.detach().to("cpu", torch.float32).clone()
        if allowed is not None:
            mask = allowed.to("cpu")
            if mask.shape[0] < x.shape[0]:
                mask = torch.nn.functional.pad(mask, (0, x.shape[0] - mask.shape[0]), value=False)
            x = x.masked_fill(~mask[: x.shape[0]], float("-inf"))
        if params.repetition_penalty != 1.0 and recent:
            window = list(recent)[-params.repetition_window :] if params.repetition_window else []
            if window:
                ids = torch.tensor(sorted(set(window)), dtype=torch.long)
                ids = ids[ids < x.shape[0]]
                vals = x[ids]
                pen = params.repetition_penalty
                x[ids] = torch.where(vals > 0, vals / pen, vals * pen)
        if params.temperature == 0.0:
            return int(torch.argmax(x))
        x = (x - x.max()) / params.temperature  # shift first: tiny temperatures cannot overflow
        if params.top_k:
            k = min(params.top_k, x.shape[0])
            kth = torch.topk(x, k).values[-1]
            x = x.masked_fill(x < kth, float("-inf"))
        if params.top_p < 1.0:
            sorted_x, order = torch.sort(x, descending=True)
            probs = torch.softmax(sorted_x, dim=-1)
            cum = torch.cumsum(probs, dim=-1)
            drop = cum - probs > params.top_p  # keep the smallest prefix reaching top_p
            sorted_x = sorted_x.masked_fill(drop, float("-inf"))
            x = torch.full_like(x, float("-inf")).scatter(0, order, sorted_x)
        probs = torch.softmax(x, dim=-1)
        return int(torch.multinomial(probs, 1, generator=self.generator))
