"""Text completion on a session: append a prompt (optionally scoring it), then continue it.

Owns what ``POST /v1/completions`` does to a :class:`~agentcore.core.session.Session`: the
prompt (text or token ids) is streamed through the session in chunks (any length; a client
that resends the session's whole text appends only the new suffix), scored token by token when
``echo`` and ``logprobs`` ask for it (the log-probability of each prompt token under the model
and its ``logprobs`` best alternatives), and continued with :meth:`Session.generate`, whose
picks are recorded for the generated tokens' log-probabilities. Never renders chat templates,
never takes locks or saves sessions (the service does) and knows nothing about HTTP.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import torch

from agentcore.core.sampling import SamplingParams, recording, top_logprobs
from agentcore.core.session import Session

__all__ = ["TextCompletion", "TokenLogprob", "complete_text"]


@dataclasses.dataclass(frozen=True)
class TokenLogprob:
    """One token of the prompt or the completion, with its log-probability under the model."""

    token: str
    logprob: float | None  # None: the first token of a stream has nothing before it
    top: dict[str, float] | None  # the best alternatives at that position (None: not asked)


@dataclasses.dataclass(frozen=True)
class TextCompletion:
    """What one completion request did to its session."""

    prompt_text: str  # the text appended for this request (what ``echo`` returns)
    text: str  # the generated continuation
    finish_reason: str  # stop | length | cancelled
    prompt_tokens: int
    completion_tokens: int
    session_tokens: int
    logprobs: tuple[TokenLogprob, ...] | None


def _prompt_ids(session: Session, prompt: str | Sequence[int]) -> list[int]:
    codec = session.engine.codec
    if isinstance(prompt, str):
        text = _resent_suffix(session, prompt)
        head = codec.begin_stream() if session.n_tokens == 0 else []
        return head + codec.encode(text)
    vocab = session.engine.core.dims.vocab
    ids = [int(t) for t in prompt]
    for i, t in enumerate(ids):
        if not 0 <= t < vocab:
            raise ValueError(
                f"prompt[{i}]={t} is not a token id of this model (expected 0..{vocab - 1})"
            )
    return ids


def _append_scored(
    session: Session, ids: list[int], top: int
) -> list[tuple[float | None, list[tuple[int, float]] | None]]:
    """Append one chunk of ids and score it: per token (log-probability, best alternatives)."""
    engine = session.engine
    t = torch.tensor([ids], dtype=torch.long)
    with engine.lock:
        logits = engine.core.forward(t, session.cache, logits="all")[0]  # [T, V]
    logp = torch.log_softmax(logits.float(), dim=-1).cpu()  # [T, V]
    out: list[tuple[float | None, list[tuple[int, float]] | None]] = []
    prev = session.next_logits
    prev_logp = torch.log_softmax(prev.float(), dim=-1) if prev is not None else None
    for i, tok in enumerate(ids):
        dist = logp[i - 1] if i > 0 else prev_logp
        if dist is None:
            out.append((None, None))
        else:
            out.append((float(dist[tok]), top_logprobs(dist, top) if top else None))
    session.fed(ids, logits[-1])  # the same bookkeeping as Session.append_tokens
    return out


def _resent_suffix(session: Session, prompt: str) -> str:
    """What of ``prompt`` the session does not hold yet: a client that resends the session's
    whole text (recognised by its length and the tail the session keeps) appends only the
    rest; any other prompt is new. Costs the tail's length, not the history's."""
    n, tail = session.transcript.chars, session.rendered
    if n and len(prompt) >= n and prompt[n - len(tail) : n] == tail:
        return prompt[n:]
    return prompt


def complete_text(
    session: Session,
    prompt: str | Sequence[int],
    params: SamplingParams,
    *,
    echo: bool = False,
    logprobs: int | None = None,
    on_text: Callable[[str], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> TextCompletion:
    """Append ``prompt`` to ``session`` and generate up to ``params.max_tokens`` tokens.

    ``logprobs=None`` returns no log-probabilities; ``logprobs=k`` returns each generated
    token's (and with ``echo`` each prompt token's) log-probability and its ``k`` best
    alternatives. ``on_text`` receives the echoed prompt first (when ``echo``), then the
    generated text piece by piece.
    """
    codec = session.engine.codec
    ids = _prompt_ids(session, prompt)
    if not ids and session.next_logits is None:
        raise ValueError("prompt is empty and the session holds nothing to continue")
    size = session.config.streaming.chunk_size
    scored: list[tuple[float | None, list[tuple[int, float]] | None]] = []
    appended: list[int] = []
    cancelled = False
    for s in range(0, len(ids), size):
        if should_stop is not None and should_stop():
            cancelled = True
            break
        chunk = ids[s : s + size]
        if echo and logprobs is not None:
            scored.extend(_append_scored(session, chunk, logprobs))
        else:
            session.append_tokens(chunk)
        appended.extend(chunk)
    prompt_text = codec.decode(appended)
    session.add_rendered(prompt_text)
    if echo and on_text is not None and prompt_text:
        on_text(prompt_text)
    text = ""
    finish = "cancelled" if cancelled else "length"
    generated: tuple[int, ...] = ()
    records: list[tuple[float, list[tuple[int, float]]]] = []
    if not cancelled and params.max_tokens > 0:
        with recording(session, logprobs) as records:
            result = session.generate(
                params,
                on_token=(lambda ev: on_text(ev.text)) if on_text is not None else None,
                should_stop=should_stop,
            )
        text, finish, generated = result.text, result.finish_reason, result.token_ids

    def entry(tok: int, lp: float | None, top: list[tuple[int, float]] | None) -> TokenLogprob:
        alternatives: dict[str, float] | None = None
        if top is not None and logprobs:
            alternatives = {}
            for tid, v in top:
                alternatives.setdefault(codec.decode([tid]), v)
        return TokenLogprob(codec.decode([tok]), lp, alternatives)

    lps: tuple[TokenLogprob, ...] | None = None
    if logprobs is not None:
        items = [entry(t, lp, top) for t, (lp, top) in zip(appended, scored, strict=False)]
        items += [entry(t, lp, top) for t, (lp, top) in zip(generated, records, strict=True)]
        lps = tuple(items)
    return TextCompletion(
        prompt_text=prompt_text,
        text=text,
        finish_reason=finish,
        prompt_tokens=len(appended),
        completion_tokens=len(generated),
        session_tokens=session.n_tokens,
        logprobs=lps,
    )
