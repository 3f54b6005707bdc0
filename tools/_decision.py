"""Whether a request needs a tool, and which: the call-or-answer decision and tool retrieval.

Owns :class:`ToolSelector`. Under ``tool_choice="auto"`` a small model left to itself rarely
calls a tool (SmolLM2-135M called one for 1 request in 40), and with many tools offered it
picks among them poorly. The selector decides outside the model, from the request and the tool
definitions alone, in a few milliseconds:

1. **retrieval**: each tool is embedded once (name, description, parameter names and docs;
   cached per tool set) with the offline sentence embedder; the request (the last user message)
   is embedded and the tools ranked by cosine similarity. With more than
   :attr:`DecisionConfig.many` tools only the best :attr:`DecisionConfig.top_k` are offered.
2. **grounding**: a tool whose required numeric parameters outnumber the numbers the
   conversation states cannot be called right (a triangle-area tool for a circle question
   gets one number where it needs two), so it is passed over.
3. **the decision**: a call when the best remaining tool's score clears a threshold
   calibrated on the dev split of ``bench/tool_calls.py``; the score is the similarity minus a
   share of the request's similarity to generic requests that need no tool (questions about
   a topic, advice, writing, small talk), so "what is the difference between weather and
   climate" does not call the weather tool. A tool already called since the last user message
   counts only if the request asks for more than it did.

The backend then decodes a call among the offered tools (the grammar admits only those) or a
text answer. Never decodes, never runs a model other than the embedder, never decides whether
a call is *allowed* (that is the safety filter's).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["Decision", "DecisionConfig", "ToolSelector", "tool_document"]

Embed = Callable[[Sequence[str]], npt.NDArray[np.float32]]
"""Texts -> L2-normalised rows (``[N, D]``)."""

_CACHED_TOOLSETS = 64  # tool sets whose stacked embeddings a selector keeps
_CACHED_TOOLS = 4096  # single tools whose embeddings a selector keeps

# Requests that need no tool, in the shapes chat requests take. The request's similarity to
# the nearest of these is subtracted (weighted) from its similarity to a tool: a question
# *about* a tool's topic is closer to these than a request to act is.
NO_TOOL_EXAMPLES: tuple[str, ...] = (
    "What is the difference between these two things?",
    "Explain how this works.",
    "Why does this happen?",
    "Who was the first person to do it?",
    "Tell me about the history of it.",
    "Give me some tips and advice.",
    "How do I do this myself, step by step?",
    "Write a short poem about it.",
    "Write a note for me.",
    "Tell me a joke.",
    "Hello, how are you?",
    "Thank you, that was helpful!",
    "What is the definition of this concept?",
    "Can you recommend something good?",
    "Summarise this story.",
    "What do you think about it?",
)


@dataclasses.dataclass(frozen=True)
class DecisionConfig:
    """How the selector decides; the defaults are calibrated on ``bench/tool_calls.py``'s dev
    split (both models; see ``docs/tools.md``)."""

    threshold: float = 0.21  # a call when the best tool's score is at least this
    chat_weight: float = 0.25  # share of the no-tool similarity subtracted from a tool's
    name_bonus: float = 0.1  # the request names the tool's subject ("email", "timer")
    recent_penalty: float = 0.1  # a tool called earlier in the conversation is asked again less
    many: int = 8  # more tools than this: offer only the best top_k
    top_k: int = 3
    offer: int = 1  # tools the forced call may choose among (the best ones)
    # a forced call (tool_choice="required") also offers the tools within this of the best: the
    # model chooses among near ties ("How many miles is that?" after get_distance: 0.05 apart)
    forced_margin: float = 0.08
    grounding: bool = True  # pass over tools whose numeric parameters the request cannot fill


@dataclasses.dataclass(frozen=True)
class Decision:
    """The selector's verdict for one request.

    ``call``: decode a call (among ``offered``) rather than text. ``ranked``: the candidate
    tools, best first, with their scores (what the prompt shows when tools are many).
    """

    call: bool
    offered: tuple[str, ...]
    ranked: tuple[tuple[str, float], ...]
    score: float
    reason: str

    @property
    def shown(self) -> tuple[str, ...]:
        """The tools the prompt lists: the ranked candidates."""
        return tuple(name for name, _ in self.ranked)


def tool_document(entry: Mapping[str, Any]) -> str:
    """The text a tool is retrieved by: its name in words, description, parameter docs."""
    fn = entry.get("function", entry)
    name = str(fn.get("name", ""))
    words = re.sub(r"[_\-.]+", " ", re.sub(r"([a-z])([A-Z])", r"\1 \2", name)).lower()
    parts = [f"{words}: {fn.get('description') or ''}".strip()]
    props = (fn.get("parameters") or {}).get("properties") or {}
    docs = []
    for key, schema in props.items():
        desc = schema.get("description", "") if isinstance(schema, Mapping) else ""
        docs.append(f"{key.replace('_', ' ')} ({desc})" if desc else key.replace("_", " "))
    if docs:
        parts.append("Parameters: " + ", ".join(docs))
    return ". ".join(parts)


def _key(docs: Sequence[str]) -> str:
    text = json.dumps(list(docs), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


_NUMBER = re.compile(r"(?<![\w.])[-+]?\d+(?:[.,]\d+)?")


def _numbers(text: str) -> set[str]:
    return {m.replace(",", ".") for m in _NUMBER.findall(text)}


def _numeric_required(entry: Mapping[str, Any]) -> int:
    fn = entry.get("function", entry)
    params = fn.get("parameters") or {}
    props = params.get("properties") or {}
    required = params.get("required") or []
    return sum(
        1
        for key in required
        if isinstance(props.get(key), Mapping)
        and props[key].get("type") in ("number", "integer")
        and "enum" not in props[key]
    )


# verbs too common in tool names to say what a tool is about
_GENERIC = frozenset(
    {
        *("get", "set", "send", "create", "add", "make", "convert", "calculate", "compute"),
        *("book", "find", "search", "list", "update", "delete", "remove", "check", "show"),
        *("fetch", "run", "do", "query", "lookup", "look", "read", "write", "new", "info"),
    }
)
_WORD = re.compile(r"[a-z0-9]+")


def _stem(word: str) -> str:
    return word[:-1] if len(word) > 3 and word.endswith("s") else word


def _words(text: str) -> set[str]:
    return {_stem(w) for w in _WORD.findall(text.lower()) if len(w) >= 3}


def _name_words(name: str) -> set[str]:
    split = re.sub(r"([a-z])([A-Z])", r"\1 \2", name).lower()
    return {w for w in _words(split.replace("_", " ")) if w not in _GENERIC}


def _head(query: str) -> str:
    """The request's first clause (up to the first comma, colon or sentence end), where
    requests state what to do; "" when that is the whole request."""
    m = re.search(r"[,:;.?!]\s", query)
    head = query[: m.start()].strip() if m else ""
    return head if len(head.split()) >= 2 else ""


def _called(messages: Sequence[Mapping[str, Any]]) -> set[str]:
    return {
        str(c.get("function", {}).get("name"))
        for m in messages
        if m.get("role") == "assistant"
        for c in m.get("tool_calls") or ()
    }


def _text(message: Mapping[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, Mapping))
    return content if isinstance(content, str) else ""


class ToolSelector:
    """Ranks tools for a request and decides call-or-answer (see the module docstring).

    ``embed``: texts -> L2-normalised rows (the offline MiniLM in the local backend, a hash
    embedder in tests). Tool embeddings are cached per tool set (the tool documents' hash), so
    a registry is embedded once however many requests use it. Thread-safe.
    """

    def __init__(self, embed: Embed, config: DecisionConfig | None = None) -> None:
        self.embed = embed
        self.config = config or DecisionConfig()
        self._cache: OrderedDict[str, npt.NDArray[np.float32]] = OrderedDict()
        self._lock = threading.Lock()
        self._docs: OrderedDict[str, npt.NDArray[np.float32]] = OrderedDict()
        self._chat: npt.NDArray[np.float32] | None = None

    # ------------------------------------------------------------------ retrieval
    def tool_vectors(self, entries: Sequence[Mapping[str, Any]]) -> npt.NDArray[np.float32]:
        """The tools' embeddings (``[N, D]``); each tool is embedded once (its document is
        the cache key), so a registry costs nothing after its first request."""
        docs = [tool_document(e) for e in entries]
        key = _key(docs)
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return hit
            missing = [d for d in dict.fromkeys(docs) if d not in self._docs]
        rows = np.asarray(self.embed(missing), dtype=np.float32) if missing else ()
        fresh = dict(zip(missing, rows, strict=True))
        with self._lock:
            known = {d: fresh[d] if d in fresh else self._docs[d] for d in dict.fromkeys(docs)}
            vectors = np.stack([known[d] for d in docs])  # [N, D]
            self._docs.update(fresh)
            while len(self._docs) > _CACHED_TOOLS:
                self._docs.popitem(last=False)
            self._cache[key] = vectors
            while len(self._cache) > _CACHED_TOOLSETS:
                self._cache.popitem(last=False)
        return vectors

    def _chat_vectors(self) -> npt.NDArray[np.float32]:
        if self._chat is None:
            self._chat = np.asarray(self.embed(list(NO_TOOL_EXAMPLES)), dtype=np.float32)
        return self._chat

    def rank(self, query: str, entries: Sequence[Mapping[str, Any]]) -> list[tuple[int, float]]:
        """(index into ``entries``, similarity) for every tool, most similar first."""
        if not entries:
            return []
        q = np.asarray(self.embed([query]), dtype=np.float32)[0]  # [D]
        sims = self.tool_vectors(entries) @ q  # [N]
        order = np.argsort(-sims, kind="stable")
        return [(int(i), float(sims[i])) for i in order]

    # ------------------------------------------------------------------ decision
    def decide(
        self, messages: Sequence[Mapping[str, Any]], entries: Sequence[Mapping[str, Any]]
    ) -> Decision:
        """Call or answer for the conversation ``messages`` with the tools ``entries``
        (OpenAI ``tools`` entries), and which tools to offer."""
        cfg = self.config
        names = [str(e.get("function", e).get("name")) for e in entries]
        last_user = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=-1)
        query = _text(messages[last_user]) if last_user >= 0 else ""
        if not entries or not query.strip():
            return Decision(False, (), (), 0.0, "no tools" if not entries else "no request")
        since = messages[last_user + 1 :]
        called = _called(since)
        earlier = _called(messages[:last_user])
        stated = {  # what the conversation states: the user's words and tools' results
            n for m in messages if m.get("role") in ("user", "tool") for n in _numbers(_text(m))
        }
        head = _head(query)
        qs = np.asarray(self.embed([query, head] if head else [query]), dtype=np.float32)
        sims = np.max(self.tool_vectors(entries) @ qs.T, axis=1)  # [N]: best of request, head
        chat = float(np.max(self._chat_vectors() @ qs[0]))
        words = _words(query)
        ranked: list[tuple[str, float]] = []
        passed: list[str] = []
        for i in np.argsort(-sims, kind="stable"):
            name = names[int(i)]
            score = float(sims[i]) - cfg.chat_weight * chat
            if _name_words(name) & words:
                score += cfg.name_bonus
            if cfg.grounding and _numeric_required(entries[int(i)]) > len(stated):
                passed.append(name)
                score -= 1.0
            if name in called:  # done already: another call must be a different tool
                score -= 1.0
            elif name in earlier:
                score -= cfg.recent_penalty
            ranked.append((name, score))
        ranked.sort(key=lambda r: -r[1])
        shown = ranked[: cfg.top_k] if len(entries) > cfg.many else ranked
        best_name, best = ranked[0]
        call = best >= cfg.threshold
        offered = tuple(n for n, _ in shown[: max(1, cfg.offer)]) if call else ()
        if call:
            reason = f"{best_name} scores {best:.2f} >= {cfg.threshold:.2f}"
        elif passed and best_name in passed:
            reason = f"{best_name} needs more numbers than the request states"
        else:
            reason = f"best tool {best_name} scores {best:.2f} < {cfg.threshold:.2f}"
        return Decision(call, offered, tuple(shown), best, reason)

    def narrow(
        self,
        messages: Sequence[Mapping[str, Any]],
        entries: Sequence[Mapping[str, Any]],
        tool_choice: Any,
    ) -> tuple[list[Mapping[str, Any]], Any, Decision | None]:
        """What a backend offers for one request: ``(tools, tool_choice, decision)``.

        ``"auto"``: the decision; a call becomes ``"required"`` over the offered tools, an
        answer ``"none"`` (text, no tools shown). ``"required"``: the same ranking, without
        the threshold (a call is forced): the best :attr:`DecisionConfig.offer` tools and those
        within :attr:`DecisionConfig.forced_margin` of the best (with more than
        :attr:`DecisionConfig.many` tools, the best :attr:`DecisionConfig.top_k` too). So a
        tool whose result came back since the request is not offered again while another
        is (after ``find_user`` and its result, ``get_orders``: left to choose among all the
        tools, both models repeated ``find_user`` with the same arguments). Anything else (a
        named tool, ``"none"``) passes through unchanged.
        """
        if tool_choice == "auto":
            decision = self.decide(messages, entries)
            if not decision.call:
                return list(entries), "none", decision
            keep = set(decision.offered)
            return [e for e in entries if _name(e) in keep], "required", decision
        if tool_choice == "required" and entries:
            decision = self.decide(messages, entries)
            if not decision.ranked:  # no request to rank by: every tool stays
                return list(entries), tool_choice, decision
            best = decision.ranked[0][1]
            keep = {name for name, _ in decision.ranked[: max(1, self.config.offer)]}
            keep |= {n for n, score in decision.ranked if score > best - self.config.forced_margin}
            if len(entries) > self.config.many:
                keep |= set(decision.shown)
            return [e for e in entries if _name(e) in keep], tool_choice, decision
        return list(entries), tool_choice, None


def _name(entry: Mapping[str, Any]) -> str:
    return str(entry.get("function", entry).get("name"))
