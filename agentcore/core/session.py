"""A model session: an append-only token stream on the engine, with a bounded cache.

Owns one conversation's state: the token stream, the streaming cache (and any memory
attached to it), the logits of the next token, the sampler and the chat transcript. A turn
appends only its new tokens; nothing is ever re-read from the start, and nothing on a turn's
path walks the history: the chat template renders only what a turn adds
(:class:`~agentcore.core.transcript.Transcript`), replies are detokenized incrementally, and
only a bounded tail of messages and token ids stays in memory (the rest is in the saved
history, :meth:`Session.history`). The state saves to disk (the fixed-size attention state plus
what was appended since the last save) and restores exactly (:mod:`agentcore.core.state`).

Never decides what to say: agents and servers call :meth:`Session.chat`,
:meth:`Session.append` and :meth:`Session.generate`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import uuid
from array import array
from collections import deque
from collections.abc import Callable, Generator, Iterator, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol

import torch

from agentcore.core.cache import StreamingCache, StreamingConfig
from agentcore.core.codec import Codec, Message
from agentcore.core.infini import InfiniConfig, InfiniMemory, MemoryGates
from agentcore.core.lexicon import term_map
from agentcore.core.llama import CoreModel
from agentcore.core.params import DIGIT_RUN
from agentcore.core.recall import EvictedStore, RecallConfig
from agentcore.core.sampling import Sampler, SamplingParams
from agentcore.core.transcript import Transcript

__all__ = [
    "GenerationResult",
    "Session",
    "SessionConfig",
    "SessionHost",
    "TokenConstraint",
    "TokenEvent",
]

log = logging.getLogger(__name__)


class TokenConstraint(Protocol):
    """A grammar that restricts which tokens may come next (see agentcore.core.constraint)."""

    def allowed_tokens(self) -> torch.Tensor: ...

    def advance(self, token_id: int) -> None: ...

    def is_finished(self) -> bool: ...


class SessionHost(Protocol):
    """What a session needs of the engine it runs on; :class:`~agentcore.core.engine.Engine`
    is the implementation. The engine also owns the on-disk format (:mod:`agentcore.core.state`
    sits above this module), so :meth:`Session.save`, :meth:`Session.load` and
    :meth:`Session.history` go through it."""

    @property
    def core(self) -> CoreModel: ...

    @property
    def codec(self) -> Codec: ...

    @property
    def lock(self) -> AbstractContextManager[Any]:
        """Held around every forward pass (sessions on many threads share one model)."""
        ...

    def decode(self, cache: StreamingCache, token: int) -> torch.Tensor:
        """One decode step: ``token`` into ``cache``, the next-token logits ``[V]`` (steps of
        sessions on other threads may share the forward)."""
        ...

    def generating(self) -> AbstractContextManager[None]:
        """Held while a session generates, so its steps are batched with other sessions'."""
        ...

    def memory_gates(self) -> MemoryGates: ...

    def default_streaming(self) -> StreamingConfig: ...

    def fingerprint(self) -> str:
        """Names the model's shapes: a saved session restores only on the same."""
        ...

    def save_session(self, session: Session, path: Path) -> Path: ...

    def restore_session(self, path: str | os.PathLike[str]) -> Session: ...

    def session_history(self, session: Session, kind: str) -> Iterator[Any]: ...


@dataclasses.dataclass(frozen=True)
class SessionConfig:
    """How a session's context is kept."""

    streaming: StreamingConfig = dataclasses.field(default_factory=StreamingConfig)
    keep_token_ids: bool = True  # keep the stream's ids (4 bytes/token) in the saved history
    tail_messages: int = 256  # messages kept in memory (all of them are in the saved history)
    tail_tokens: int = 1 << 16  # token ids kept in memory (``Session.tokens``)
    recall: RecallConfig | None = None  # exact recall of evicted blocks (None: off)
    infini: InfiniConfig | None = None  # compressive memory (None: off); gates from the engine


@dataclasses.dataclass(frozen=True)
class TokenEvent:
    """One generated token and the text it completed (may be empty mid-character)."""

    token_id: int
    text: str
    index: int


@dataclasses.dataclass(frozen=True)
class GenerationResult:
    """What a finished generation produced."""

    text: str
    token_ids: tuple[int, ...]
    finish_reason: str  # "stop" (end of turn / stop string / grammar complete) | "length"
    prompt_tokens: int
    stop_text: str | None = None
    logprobs: tuple[float, ...] = ()


class Session:
    """An endless token stream on a shared :class:`~agentcore.core.engine.Engine`."""

    def __init__(
        self,
        engine: SessionHost,
        config: SessionConfig | None = None,
        session_id: str | None = None,
    ) -> None:
        self.engine = engine
        self.config = config or SessionConfig(streaming=engine.default_streaming())
        self.id = session_id or uuid.uuid4().hex[:12]
        self.extensions: dict[str, Any] = {}  # attached memories by name (saved with the session)
        recall = None
        if self.config.recall is not None:
            d = engine.core.dims
            recall = EvictedStore(
                self.config.recall,
                n_layers=d.n_layers,
                n_kv_heads=d.n_kv_heads,
                head_dim=d.head_dim,
            )
            recall.lexicon.set_terms(term_map(engine.codec))
            self.extensions["recall"] = recall
        memory = None
        if self.config.infini is not None:
            d = engine.core.dims
            memory = InfiniMemory(
                self.config.infini,
                engine.memory_gates(),
                n_layers=d.n_layers,
                n_kv_heads=d.n_kv_heads,
                head_dim=d.head_dim,
                device=engine.core.device,
            )
            self.extensions["infini"] = memory
        self.cache: StreamingCache = engine.core.new_cache(
            self.config.streaming, recall=recall, memory=memory
        )
        self.sampler = Sampler()
        self.tokens: array[int] = array("l")  # the last ids of the stream (a bounded tail)
        self.tokens_journaled = 0  # ids handed to the saved history so far
        self.n_tokens = 0
        self.next_logits: torch.Tensor | None = None  # [V] float32, CPU
        self._digit_tokens: dict[int, bool] = {}  # token id -> its text is digits only
        self.transcript = Transcript(self.config.tail_messages)
        # JSON-serialisable notes of the owner, saved whole with every save: keep them small
        self.meta: dict[str, Any] = {}
        self.records: list[tuple[str, Any]] = []  # owner records for the history, not saved yet
        self.disk: Any = None  # where the state was last saved (see agentcore.core.state)
        self.transcript_chars_saved = 0  # transcript.chars at the last save

    # ------------------------------------------------------------------ transcript
    @property
    def messages(self) -> list[Message]:
        """The most recent messages (``SessionConfig.tail_messages`` of them at least; all of
        them: :meth:`history`). Appending one adds it to the next turn's render."""
        return self.transcript.messages

    @property
    def n_messages(self) -> int:
        """Messages in the whole conversation."""
        return self.transcript.n_messages

    @property
    def rendered(self) -> str:
        """The tail of the text the stream holds (the whole length: ``transcript.chars``)."""
        return self.transcript.text

    def add_rendered(self, text: str) -> None:
        """Note text the stream now holds that was fed as token ids (see append_tokens)."""
        self.transcript.add_text(text)

    def record(self, kind: str, value: Any) -> None:
        """Add a JSON-serialisable record of the owner's to the session's history (saved with
        the next save, read back with :meth:`history`); e.g. the raw requests of a backend."""
        self.records.append((kind, value))

    def history(self, kind: str = "messages") -> Any:
        """Everything of ``kind`` the session has seen, oldest first, from the saved history and
        memory: ``"messages"`` (the transcript), ``"tokens"`` (id lists) or an owner's
        records. Reads the files: for inspection, never on a turn's path."""
        return self.engine.session_history(self, kind)

    def unjournaled_tokens(self) -> list[int]:
        """Ids of the stream not yet handed to the history."""
        if not self.config.keep_token_ids:
            return []
        n = self.n_tokens - self.tokens_journaled
        return self.tokens[len(self.tokens) - n :].tolist() if n > 0 else []

    def mark_journaled(self) -> None:
        """Everything so far is in the saved history: memory keeps only the tails."""
        self.tokens_journaled = self.n_tokens
        self.records = []
        self.transcript.mark_journaled()
        cap = self.config.tail_tokens
        if len(self.tokens) > 2 * cap:
            del self.tokens[: len(self.tokens) - cap]

    # ------------------------------------------------------------------ appending
    def append_tokens(self, ids: Sequence[int]) -> None:
        """Feed new token ids into the stream (chunked; the cache evicts as needed).

        One token is a decode step (batched with other sessions' steps); more are read chunk by
        chunk, the model lock held per chunk, so other sessions decode between the chunks of a
        long prompt."""
        if not ids:
            return
        if len(ids) == 1:
            self.fed(ids, self.engine.decode(self.cache, int(ids[0])))
            return
        t = torch.tensor([list(ids)], dtype=torch.long)
        logits = self.engine.core.prefill(t, self.cache, logits="last", lock=self.engine.lock)
        self.fed(ids, logits[0, -1])

    def fed(self, ids: Sequence[int], next_logits: torch.Tensor) -> None:
        """Bookkeeping after ``ids`` went through the cache: ``next_logits: [V]`` predict the
        next token."""
        self.next_logits = next_logits.float().cpu()
        self.n_tokens += len(ids)
        if self.config.keep_token_ids:
            self.tokens.extend(int(i) for i in ids)
            cap = self.config.tail_tokens
            unjournaled = self.n_tokens - self.tokens_journaled
            if len(self.tokens) > 2 * cap and unjournaled < len(self.tokens) - cap:
                del self.tokens[: len(self.tokens) - max(cap, unjournaled)]

    def append_text(self, text: str) -> list[int]:
        """Append raw text (no template). A fresh stream gets the model's BOS if it uses one."""
        ids = (
            self.engine.codec.begin_stream() if self.n_tokens == 0 else []
        ) + self.engine.codec.encode(text)
        self.append_tokens(ids)
        self.transcript.add_text(self.engine.codec.decode(ids))
        return ids

    def append(
        self, content: str | Sequence[Message], *, add_generation_prompt: bool = False
    ) -> list[int]:
        """Append raw text, or chat messages rendered with the model's chat template."""
        if isinstance(content, str):
            return self.append_text(content)
        return self.append_messages(content, add_generation_prompt=add_generation_prompt)

    def append_messages(
        self,
        messages: Sequence[Message],
        *,
        add_generation_prompt: bool = True,
        tools: Sequence[dict[str, Any]] | None = None,
    ) -> list[int]:
        """Add messages to the transcript and feed only the tokens the template adds (the
        template runs over these messages and a few before them, not the whole history)."""
        delta = self.transcript.render(self.engine.codec, messages, add_generation_prompt, tools)
        ids = self.engine.codec.encode(delta)
        self.append_tokens(ids)
        return ids

    # ------------------------------------------------------------------ generating
    def generate(
        self,
        params: SamplingParams | None = None,
        *,
        constraint: TokenConstraint | None = None,
        on_token: Callable[[TokenEvent], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
        want_logprobs: bool = False,
        penalize: Callable[[str], bool] | None = None,
    ) -> GenerationResult:
        """Generate and append tokens until a stop condition; see :meth:`stream` for events."""
        gen = self.stream(
            params,
            constraint=constraint,
            should_stop=should_stop,
            want_logprobs=want_logprobs,
            penalize=penalize,
        )
        while True:
            try:
                event = next(gen)
            except StopIteration as done:
                result: GenerationResult = done.value
                return result
            if on_token is not None:
                on_token(event)

    def _is_digits(self, token: int) -> bool:
        """Whether a token's text is digits only (a leading space allowed); cached per token."""
        known = self._digit_tokens.get(token)
        if known is None:
            known = self._digit_tokens[token] = self.engine.codec.decode([token]).strip().isdigit()
        return known

    def stream(
        self,
        params: SamplingParams | None = None,
        *,
        constraint: TokenConstraint | None = None,
        should_stop: Callable[[], bool] | None = None,
        want_logprobs: bool = False,
        penalize: Callable[[str], bool] | None = None,
    ) -> Generator[TokenEvent, None, GenerationResult]:
        """Yield tokens as they are generated; every generated token is appended to the stream.

        A token is yielded before the decode step that feeds it (and computes the next one's
        logits) runs, so the first token needs no step at all: it comes from the prompt's
        logits. The step runs when the caller asks for the next token, or closes the generator.

        ``penalize(text so far)`` says whether the penalties (repetition, presence, frequency)
        apply to the next token (e.g. to free text but not inside a tool call's JSON, where
        repeating a quote or a digit is the point); ``None``: always.
        The generator's return value (``StopIteration.value``) is a :class:`GenerationResult`.
        """
        p = params or SamplingParams()
        if self.next_logits is None:
            raise RuntimeError("the session is empty: append a prompt before generating")
        if p.seed is not None:
            self.sampler.reseed(p.seed)
        codec = self.engine.codec
        decoder = codec.stream_decoder(skip_special=True)  # holds back unfinished characters
        stop_ids = set(p.stop_token_ids if p.stop_token_ids is not None else codec.stop_ids)
        prompt_tokens = self.n_tokens
        out: list[int] = []
        logprobs: list[float] = []
        emitted = ""
        finish = "length"
        stop_text: str | None = None
        text = ""
        # what the repetition penalty sees: the last repetition_window tokens (bounded, so a
        # long reply costs O(N)); "context": of the stream, "reply": of this reply only
        # with penalize_digits off, digits stay out of every penalty: a number repeats them
        exempt = self._is_digits if not p.penalize_digits else lambda token: False
        window = max(p.repetition_window, 0)
        recent_all: deque[int] = deque(maxlen=window)
        recent_reply: deque[int] = deque(maxlen=window)
        counted: list[int] = []  # this reply's tokens that presence/frequency count
        if p.repetition_penalty != 1.0 and p.repetition_scope == "context" and window:
            recent_all.extend(t for t in self.tokens[-window:] if not exempt(t))
        longest_stop = max((len(s) for s in p.stop), default=0)
        digits: list[int] = []  # the reply's last exempt digits, in a row
        with self.engine.generating():  # this session's steps are batched with others'
            for i in range(p.max_tokens):
                if should_stop is not None and should_stop():
                    finish = "cancelled"
                    break
                allowed = constraint.allowed_tokens() if constraint is not None else None
                logits = self.next_logits
                assert logits is not None
                recent: Sequence[int] = (
                    recent_all if p.repetition_scope == "context" else recent_reply
                )
                reply: Sequence[int] = counted
                if (recent or reply) and penalize is not None and not penalize(text):
                    recent, reply = (), ()
                tok = self.sampler.pick(logits, p, recent, allowed, reply)
                if want_logprobs:
                    logprobs.append(float(torch.log_softmax(logits, -1)[tok]))
                if constraint is not None:
                    constraint.advance(tok)
                out.append(tok)
                if not exempt(tok):
                    digits, counts = [], [tok]
                elif len(digits) + 1 >= DIGIT_RUN:  # a loop ("1. **1011111111"), not a number
                    digits, counts = [], [*digits, tok]
                else:
                    digits, counts = [*digits, tok], []
                for seen in (recent_all, recent_reply, counted):
                    seen.extend(counts)
                searched = max(
                    len(text) - longest_stop + 1, 0
                )  # a stop string ends in the new piece
                text += decoder.step(tok)
                hit = _find_stop(text, p.stop, searched)
                if hit is not None:
                    cut, stop_text = hit
                    piece = text[len(emitted) : cut] if cut > len(emitted) else ""
                    done = True
                else:
                    # hold back text that could be the start of a stop string
                    safe = len(text) - _partial_stop(text, p.stop)
                    piece = text[len(emitted) : safe] if safe > len(emitted) else ""
                    done = tok in stop_ids or (constraint is not None and constraint.is_finished())
                try:
                    if piece:  # the caller gets the token before the step that feeds it runs
                        emitted += piece
                        yield TokenEvent(tok, piece, i)
                finally:  # also when the caller closes the generator here
                    self.append_tokens([tok])  # the stream holds everything generated
                if done:
                    finish = "stop"
                    break
        final_text = emitted
        if finish != "stop" and len(text) > len(emitted):  # cut short: what was held back
            yield TokenEvent(out[-1], text[len(emitted) :], len(out) - 1)
            final_text = text
        self.transcript.add_text(codec.decode(out))
        if self.messages and self.messages[-1].get("role") != "assistant":
            self.transcript.add_message({"role": "assistant", "content": final_text})
        return GenerationResult(
            text=final_text,
            token_ids=tuple(out),
            finish_reason=finish,
            prompt_tokens=prompt_tokens,
            stop_text=stop_text,
            logprobs=tuple(logprobs),
        )

    def chat(
        self,
        user: str | Sequence[Message],
        params: SamplingParams | None = None,
        *,
        on_token: Callable[[TokenEvent], None] | None = None,
        constraint: TokenConstraint | None = None,
    ) -> GenerationResult:
        """One chat turn: append the user's message(s), generate the assistant's reply."""
        msgs: Sequence[Message] = (
            [{"role": "user", "content": user}] if isinstance(user, str) else user
        )
        self.append_messages(msgs, add_generation_prompt=True)
        return self.generate(params, on_token=on_token, constraint=constraint)

    def fork(self) -> Session:
        """An independent copy of this session (same stream so far; futures diverge)."""
        twin = Session(self.engine, dataclasses.replace(self.config, recall=None))
        twin.config = self.config
        infini = self.extensions.get("infini")
        recall = self.extensions.get("recall")
        if recall is not None:
            store = recall.fork()
            twin.extensions["recall"] = store
            twin.cache = self.engine.core.new_cache(
                self.config.streaming, recall=store, memory=twin.extensions.get("infini")
            )
        if infini is not None:
            twin.extensions["infini"].load_state_dict(infini.state_dict())
        twin.cache.load_state_dict(self.cache.state_dict())
        twin.cache.n_recalled = 0
        twin.tokens = array("l", self.tokens)
        twin.n_tokens = self.n_tokens
        twin.next_logits = None if self.next_logits is None else self.next_logits.clone()
        twin.sampler.set_state(self.sampler.get_state())
        twin.transcript.load_state(json.loads(json.dumps(self.transcript.state())))
        twin.meta = json.loads(json.dumps(self.meta))
        twin.records = list(self.records)
        twin.tokens_journaled = self.tokens_journaled
        twin.disk = self.disk.fork() if self.disk is not None else None  # shares the history
        twin.transcript_chars_saved = self.transcript_chars_saved
        return twin

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the whole session state atomically (temp file, fsync, rename)."""
        return self.engine.save_session(self, Path(path))

    @classmethod
    def load(cls, engine: SessionHost, path: str | os.PathLike[str]) -> Session:
        """The session saved at ``path`` (same as ``engine.restore_session(path)``)."""
        return engine.restore_session(path)

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        """Release what the attached memories hold outside this object (a recall store's
        private temporary folder; the files of a saved session stay). Closing twice is
        harmless; a closed session is not used again."""
        for ext in self.extensions.values():
            close = getattr(ext, "close", None)
            if callable(close):
                close()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def stats(self) -> dict[str, Any]:
        """Token count, cache occupancy and memory sizes, for inspection."""
        cfg = self.config.streaming
        info: dict[str, Any] = {
            "id": self.id,
            "tokens": self.n_tokens,
            "cached_tokens": self.cache.cached_tokens(),
            "n_sink": cfg.n_sink,
            "window": cfg.window,
            "cache_bytes": self.cache.nbytes(),
            "messages": self.n_messages,
        }
        for name, ext in self.extensions.items():
            describe = getattr(ext, "stats", None)
            if callable(describe):
                info[name] = describe()
        return info


def _find_stop(text: str, stops: Sequence[str], start: int = 0) -> tuple[int, str] | None:
    """The earliest stop string in ``text[start:]`` (where it is, which one)."""
    best: tuple[int, str] | None = None
    for s in stops:
        if not s:
            continue
        at = text.find(s, start)
        if at >= 0 and (best is None or at < best[0]):
            best = (at, s)
    return best


def _partial_stop(text: str, stops: Sequence[str]) -> int:
    """Length of the longest suffix of ``text`` that is a proper prefix of a stop string."""
    longest = 0
    for s in stops:
        for n in range(min(len(s) - 1, len(text)), 0, -1):
            if text.endswith(s[:n]):
                longest = max(longest, n)
                break
    return longest
