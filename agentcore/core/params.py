"""Sampling parameters: how to pick tokens and when to stop.

Owns :class:`SamplingParams`, the one value every backend, the server and the agent pass
around. Torch-free on purpose (the HTTP backend and an agent over a remote model import it
without torch); the sampler that applies it is :mod:`agentcore.core.sampling`.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

__all__ = ["DIGIT_RUN", "REPLY_PENALTY", "SamplingParams"]

_SCOPES = ("context", "reply")
# the repetition penalty of :meth:`SamplingParams.reply`: on the reply's own tokens, digits
# exempt (docs/benchmarks/replies.md)
REPLY_PENALTY = 1.15
# with penalize_digits off, digits in a row past this many are a loop, not a number: they count
DIGIT_RUN = 6


@dataclasses.dataclass(frozen=True)
class SamplingParams:
    """How to pick tokens and when to stop. ``temperature == 0`` means greedy.

    ``repetition_penalty`` divides the positive logits (multiplies the negative ones) of tokens
    seen recently: with ``repetition_scope="context"`` the last ``repetition_window`` tokens of
    the stream, prompt included (as transformers does); with ``"reply"`` only the tokens this
    reply generated, so that the prompt's words (a name, a number to repeat back) stay free
    while the reply cannot loop on its own phrases.

    ``presence_penalty`` and ``frequency_penalty`` are OpenAI's (each in -2..2, 0 = off): the
    logit of every token this reply already generated is lowered by ``presence_penalty`` once
    and by ``frequency_penalty`` per occurrence (negative values favour repeats).

    ``penalize_digits=False`` leaves tokens that are digits out of every penalty: a number
    repeats its digits (SmolLM2 copied a tool's result 444 as "4." under a 1.15 repetition
    penalty). Digits that come ``DIGIT_RUN`` (6) or more in a row are a loop, not a number
    (SmolLM2, greedy: "1. **1011111111..."): once a reply's run of digits reaches that, its
    digits count again. The agent's replies and the server's chat default set it; the default
    keeps the penalties as OpenAI and transformers define them.
    """

    max_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0
    repetition_penalty: float = 1.0
    repetition_window: int = 256
    repetition_scope: Literal["context", "reply"] = "context"
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    penalize_digits: bool = True
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
            ("presence_penalty", -2 <= self.presence_penalty <= 2, "a number in -2..2 (0 = off)"),
            ("frequency_penalty", -2 <= self.frequency_penalty <= 2, "a number in -2..2 (0 = off)"),
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
    def reply(cls, max_tokens: int = 256, **kw: object) -> SamplingParams:
        """Greedy with a mild repetition penalty on the reply's own tokens: what the Agent and
        the server's chat endpoints decode with unless told otherwise. Greedy alone makes a
        small model loop on a phrase or a digit ("1011111111..."); with the penalty on the
        reply only, the prompt's words (a name, a fact to repeat back) stay free, and digits
        stay exempt (a number repeats its digits: "444" was copied as "4.")."""
        defaults: dict[str, object] = {
            "repetition_penalty": REPLY_PENALTY,
            "repetition_scope": "reply",
            "penalize_digits": False,
        }
        defaults.update(kw)
        return cls(max_tokens=max_tokens, **defaults)  # type: ignore[arg-type]

    @classmethod
    def creative(cls, max_tokens: int = 256, **kw: object) -> SamplingParams:
        defaults: dict[str, object] = {"temperature": 0.7, "top_p": 0.9, "repetition_penalty": 1.1}
        defaults.update(kw)
        return cls(max_tokens=max_tokens, **defaults)  # type: ignore[arg-type]
