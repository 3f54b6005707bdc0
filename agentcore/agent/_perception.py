"""Perception: every input becomes a typed observation with a source, a trust level and a
salience.

Owns :class:`Observation` and :class:`Perception`. Trust is capped by the source: content from
a tool, the web or the environment is untrusted whatever the caller claims, and another
agent's message is at most ``agent``; salience (0..1) grows with trust, explicit requests to
remember, errors and questions. :func:`neutralize` breaks up chat-template control tokens in
any text that reaches the model. Never acts on content and never changes permissions:
instructions inside an untrusted observation stay data.
"""

from __future__ import annotations

import dataclasses
import re
import time

from agentcore.memory import TrustLevel

__all__ = [
    "UNTRUSTED",
    "Observation",
    "Perception",
    "as_trust",
    "is_untrusted",
    "neutralize",
    "trust_ceiling",
]

UNTRUSTED: frozenset[TrustLevel] = frozenset(
    {TrustLevel.TOOL, TrustLevel.WEB, TrustLevel.ENVIRONMENT, TrustLevel.EXTERNAL}
)
_BASE_SALIENCE: dict[TrustLevel, float] = {
    TrustLevel.SYSTEM: 0.8,
    TrustLevel.USER: 0.7,
    TrustLevel.AGENT: 0.5,
    TrustLevel.TOOL: 0.4,
    TrustLevel.WEB: 0.3,
    TrustLevel.ENVIRONMENT: 0.3,
    TrustLevel.EXTERNAL: 0.3,
}
_REMEMBER = re.compile(
    r"\b(remember|don't forget|do not forget|note that|important|always|never|my name is"
    r"|i am|i'm|i live|my favou?rite)\b",
    re.IGNORECASE,
)
# chat-template control tokens of the families the project runs (ChatML, Llama 2/3, Gemma,
# Mistral, Phi, Hermes tool tags): in text that reaches the model they are data, never markup
_CONTROL = re.compile(
    r"<\|[A-Za-z0-9_:.-]{1,40}\|>|</?s>|\[/?INST\]|<</?SYS>>|</?(?:tool_call|tool_response|tools)>"
    r"|<(?:start|end)_of_turn>",
    re.IGNORECASE,
)


def neutralize(text: str) -> str:
    """``text`` with every chat-template control token broken up (``<|im_start|>`` becomes
    ``<\u200b|im_start|\u200b>``): readable, but no longer a token the tokenizer or a
    template parser treats as structure."""
    if "<" not in text and "[" not in text:
        return text
    return _CONTROL.sub(
        lambda m: m.group(0)[0] + "\u200b" + m.group(0)[1:-1] + "\u200b" + m.group(0)[-1], text
    )


_ERROR = re.compile(r"^\s*error\b|\bfailed\b|\bexception\b|\btraceback\b", re.IGNORECASE)


def trust_ceiling(source: str) -> TrustLevel:
    """The most a source can be trusted: ``user``, ``system``, ``agent:<name>`` (agent),
    ``tool:<name>`` and ``policy`` (tool), ``web...`` (web); anything else is the
    environment."""
    head = source.split(":", 1)[0].strip().lower()
    if head == "system":
        return TrustLevel.SYSTEM
    if head == "user":
        return TrustLevel.USER
    if head == "agent":
        return TrustLevel.AGENT
    if head in ("tool", "policy"):
        # a policy message (a denial) quotes the model's own call: tool names, paths and
        # values the model chose, possibly copied from injected text. It is data.
        return TrustLevel.TOOL
    if head in ("web", "http", "https"):
        return TrustLevel.WEB
    return TrustLevel.ENVIRONMENT


def as_trust(trust: TrustLevel | str) -> TrustLevel:
    """``trust`` as a :class:`TrustLevel` (the value's name is accepted: ``"tool"``)."""
    try:
        return TrustLevel(trust)
    except ValueError:
        allowed = ", ".join(t.value for t in TrustLevel)
        raise ValueError(f"trust={trust!r}: expected one of {allowed}") from None


def is_untrusted(trust: TrustLevel | str) -> bool:
    """Content at this trust level is data only (a tool's output, the web, the environment,
    anything else from outside), never a source of instructions."""
    return as_trust(trust) in UNTRUSTED


@dataclasses.dataclass(frozen=True)
class Observation:
    """One perceived input. ``untrusted``: data only, never a source of instructions."""

    content: str
    source: str
    trust: TrustLevel
    salience: float
    time: float = dataclasses.field(default_factory=time.time)

    @property
    def untrusted(self) -> bool:
        return self.trust in UNTRUSTED


class Perception:
    """Turns raw inputs into :class:`Observation` values (``max_chars`` caps their size)."""

    def __init__(self, max_chars: int = 2_000) -> None:
        self.max_chars = max_chars

    def perceive(
        self, content: str, *, source: str, trust: TrustLevel | str | None = None
    ) -> Observation:
        ceiling = trust_ceiling(source)
        claimed = as_trust(trust) if trust else ceiling
        level = claimed if claimed.rank <= ceiling.rank else ceiling  # capped
        text = content if len(content) <= self.max_chars else content[: self.max_chars] + " [...]"
        return Observation(text, source, level, self.salience(text, level))

    @staticmethod
    def salience(content: str, trust: TrustLevel) -> float:
        score = _BASE_SALIENCE[trust]
        if trust not in UNTRUSTED and _REMEMBER.search(content):
            score += 0.25  # an untrusted text cannot make itself memorable by asking
        if _ERROR.search(content):
            score += 0.2
        if content.rstrip().endswith("?"):
            score += 0.05
        return round(min(1.0, max(0.0, score)), 3)
