"""Whether a request needs a tool, and which: the call-or-answer decision and tool retrieval.

Owns :class:`ToolSelector`. Under ``tool_choice="auto"`` a small model left to itself rarely
calls a tool (SmolLM2-135M called one for 1 request in 40), and with many tools offered it
picks among them poorly. The selector decides outside the model, from the request and the tool
definitions alone, in a few milliseconds:

1. **retrieval**: each tool is embedded once (name, description, parameter names and docs;
   cached per tool set) with the offline sentence embedder; the request (the last user message,
   less any context before :data:`REQUEST_MARKER`) is embedded and the tools ranked by cosine similarity. With more than
   :attr:`DecisionConfig.many` tools only the best :attr:`DecisionConfig.top_k` are offered.
2. **grounding**: a tool whose required numeric parameters outnumber the numbers the
   conversation states cannot be called right (a triangle-area tool for a circle question
   gets one number where it needs two), so it is passed over; so is a tool that never says it
   removes anything for a request that asks to take something away ("Delete the event ..."
   is not for ``create_event``, "Cancel my order" not for ``get_orders``): the embedder sees
   the same topic, not the opposite action.
3. **the decision**: a call when the best remaining tool's score clears a threshold
   calibrated on the dev split of ``bench/tool_calls.py``; the score is the similarity minus a
   share of the request's similarity to generic requests that need no tool (questions about
   a topic, advice, writing, small talk), so "what is the difference between weather and
   climate" does not call the weather tool. A tool already called since the last user message
   counts only if the request asks for more than it did.
4. **how many calls**: a request whose clauses each ask for a tool ("Play X. Then play Y.")
   may get one call per such clause in one answer, among each clause's best tool.

Under ``tool_choice="required"`` the same ranking picks the tools (without the threshold: a call
is forced), so a tool whose result just came back is not offered again while another is.

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

__all__ = ["REQUEST_MARKER", "Decision", "DecisionConfig", "ToolSelector", "tool_document"]

Embed = Callable[[Sequence[str]], npt.NDArray[np.float32]]
"""Texts -> L2-normalised rows (``[N, D]``)."""

REQUEST_MARKER = "\n\nRequest: "
"""Where a user message's request starts when context comes before it (the Agent puts its
retrieved lessons, facts and tool record there): the decision reads only what follows."""

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
    # in a request one clause of which asks for a tool at ``threshold``, another clause asks
    # for its best tool at this score ("Track package LX452390815CN. Then is it cold in Quito
    # at the moment?": 0.15 for get_weather)
    companion_threshold: float = 0.12
    chat_weight: float = 0.25  # share of the no-tool similarity subtracted from a tool's
    name_bonus: float = 0.1  # the request names the tool's subject ("email", "timer")
    shape_bonus: float = 0.2  # it states a value a parameter takes (a file, an expression)
    recent_penalty: float = 0.1  # a tool called earlier in the conversation is asked again less
    many: int = 8  # more tools than this: offer only the best top_k
    top_k: int = 3
    offer: int = 1  # tools the forced call may choose among (the best ones)
    max_calls: int = 4  # calls one answer may hold (one per action clause of the request)
    # a forced call (tool_choice="required") also offers the tools within this of the best: the
    # model chooses among near ties ("How many miles is that?" after get_distance: 0.05 apart)
    forced_margin: float = 0.08
    grounding: bool = True  # pass over tools whose numeric parameters the request cannot fill


@dataclasses.dataclass(frozen=True)
class Decision:
    """The selector's verdict for one request.

    ``call``: decode a call (among ``offered``) rather than text. ``ranked``: the candidate
    tools, best first, with their scores (what the prompt shows when tools are many).
    ``calls``: how many calls one answer may hold (more than one when the request asks for
    several things, each in its own clause; ``offered`` then holds each clause's tool).
    ``steps``: for such a request, each call's tool and the clause that asks for it, in the
    request's order (the answer is decoded as exactly these calls, each call's arguments
    steered by its own clause); empty otherwise.
    """

    call: bool
    offered: tuple[str, ...]
    ranked: tuple[tuple[str, float], ...]
    score: float
    reason: str
    calls: int = 1  # the most calls the answer may hold: one per action clause
    steps: tuple[tuple[str, str], ...] = ()  # (tool, clause) per call of a several-call answer

    @property
    def shown(self) -> tuple[str, ...]:
        """The tools the prompt lists: the ranked candidates."""
        return tuple(name for name, _ in self.ranked)


def _spoken(name: str) -> str:
    """A tool's name in words, lower case: "getWeather_now" -> "get weather now"."""
    return re.sub(r"[_\-.]+", " ", re.sub(r"([a-z])([A-Z])", r"\1 \2", name)).lower()


def tool_document(entry: Mapping[str, Any]) -> str:
    """The text a tool is retrieved by: its name in words, description, parameter docs."""
    fn = entry.get("function", entry)
    parts = [f"{_spoken(str(fn.get('name', '')))}: {fn.get('description') or ''}".strip()]
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


def _all_name_words(name: str) -> set[str]:
    """Every word of a tool's name, its verb too ("read", "write" of read_file, write_file):
    the request's own verb tells read_file from write_file where their topics tie."""
    return _words(_spoken(name))


def _name_words(name: str) -> set[str]:
    """The words of a tool's name that say what it is about (not its generic verb)."""
    return _all_name_words(name) - _GENERIC


# word stems of taking away: deleting, cancelling, returning, ...
_UNDO = re.compile(
    r"\b(?:delet|remov|cancel|eras|clear|undo|unsubscrib|refund|return|revok|uninstall|withdr[ae]w"
    r"|discard|unbook|unregist)\w*",
    re.IGNORECASE,
)
# how a request leads up to its verb: "Please", "Can you", "I'd like you to", ...
_LEAD = re.compile(
    r"^\W*(?:(?:please|kindly|ok|okay|now|hey|hi)\W+)*"
    r"(?:(?:can|could|would|will)\s+you\s+(?:please\s+)?|i(?:'d|\s+would)\s+like\s+(?:you\s+)?to\s+"
    r"|i\s+(?:want|need)\s+(?:you\s+)?to\s+|help\s+me\s+)?(\w+)",
    re.IGNORECASE,
)


def _asks_to_undo(text: str) -> bool:
    """Whether a request's verb takes something away ("Delete ...", "Can you cancel ...")."""
    m = _LEAD.match(text)
    return bool(m and _UNDO.fullmatch(m.group(1)))


def _undoes(entry: Mapping[str, Any]) -> bool:
    """Whether a tool says it takes something away (its name or description)."""
    fn = entry.get("function", entry)
    return bool(_UNDO.search(f"{_spoken(str(fn.get('name', '')))} {fn.get('description') or ''}"))


# verbs of tool names that change something (a file, a message sent, a booking)
_CHANGING = frozenset(
    {
        *("write", "send", "create", "add", "set", "delete", "remove", "update", "book"),
        *("order", "save", "post", "make", "put", "cancel", "move", "rename", "edit", "append"),
    }
)
_POLITE = re.compile(
    r"^\W*(?:(?:then|also|and|plus)\W+)?(?:please\W+)?(?:can|could|would|will)\s+you\b",
    re.IGNORECASE,
)
_QUESTION_PENALTY = 0.2
# a clause that only greets or thanks ("Thanks!", "Hi there.", "OK,"): the request opens after it
_SMALL_TALK = re.compile(
    r"^\W*(?:thanks|thank you|thx|hi|hello|hey|ok|okay|great|cool|nice|perfect|good)"
    r"(?:\s+(?:so much|a lot|there|again|all|everyone))?\W*$",
    re.IGNORECASE,
)


def _asks_a_question(text: str) -> bool:
    """Whether a request opens with a question that asks to be told something ("what does
    notes.txt say?"), not with a polite request to act ("Can you send ...?") or an order
    ("Text Ann: ... And 12 in in cm?")."""
    parts = [c for c, _ in _clauses(text) if not _SMALL_TALK.match(c)]
    first = parts[0] if parts else ""
    return first.rstrip().endswith("?") and not _POLITE.match(first)


def _action_penalty(text: str, entries: Sequence[Mapping[str, Any]]) -> npt.NDArray[np.float32]:
    """``[N]``: how far each tool is from the request's kind of action: 1 for a tool that never
    says it removes when the request asks to take something away; 0.2 for a tool whose name
    says it changes something (write, send, create, ...) when the request is a question
    ("I left a note in notes.txt, what does it say?" is for read_file, not write_file)."""
    if _asks_to_undo(text):
        return np.array([0.0 if _undoes(e) else 1.0 for e in entries], dtype=np.float32)
    if _asks_a_question(text):
        return np.array(
            [_QUESTION_PENALTY if _all_name_words(_name(e)) & _CHANGING else 0.0 for e in entries],
            dtype=np.float32,
        )
    return np.zeros(len(entries), dtype=np.float32)


# Values whose shape says which parameter they fill, each with the parameter names (or words of
# a parameter's description) that take it: a request naming a file asks a tool with a path.
_TLDS = r"com|org|net|io|dev|edu|gov|co|uk|de|fr|ai|app"
_SHAPES: tuple[tuple[str, re.Pattern[str], re.Pattern[str]], ...] = (
    (
        "file",
        re.compile(
            rf"(?<![\w@/.\-])(?:[\w\-]+/)*[\w\-]+\.(?!(?:{_TLDS})\b)[a-z][a-z0-9]{{0,4}}\b(?![.@]\w)"
        ),
        re.compile(r"path|file|filename|document", re.IGNORECASE),
    ),
    (
        "email",
        re.compile(r"[\w.+\-]+@[\w\-]+(?:\.[\w\-]+)+"),
        re.compile(r"e-?mail|recipient|\bto\b|address", re.IGNORECASE),
    ),
    (
        "url",
        re.compile(r"https?://\S+|www\.\S+"),
        re.compile(r"url|uri|link|href|website|web page", re.IGNORECASE),
    ),
    (
        "expression",
        re.compile(r"\d\s*(?:\*\*|[-+*/^%×÷])\s*[\d(]|\(\s*\d+\s*[-+*/]"),
        re.compile(r"expr|formula|equation|calculation|arithmetic", re.IGNORECASE),
    ),
)


_DATE_OR_TIME = re.compile(
    r"\b\d{4}-\d{1,2}-\d{1,2}(?:[T ]\d{1,2}:\d{2}(?::\d{2})?)?\b|\b\d{1,2}:\d{2}\b"
)


def _accepts(entry: Mapping[str, Any]) -> frozenset[str]:
    """The value shapes a tool's required string parameters take (by key, description or
    ``format``): a tool that needs a path is asked for by a request naming a file; one whose
    path is optional (``list_files``) is not."""
    fn = entry.get("function", entry)
    params = fn.get("parameters") or {}
    props = params.get("properties") or {}
    required = set(params.get("required") or ())
    out: set[str] = set()
    for key, schema in props.items():
        if key not in required or not isinstance(schema, Mapping):
            continue
        if schema.get("type", "string") != "string":
            continue
        label = f"{key.replace('_', ' ')} {schema.get('description') or ''} {schema.get('format') or ''}"
        out.update(shape for shape, _, words in _SHAPES if words.search(label))
    return frozenset(out)


def _stated_shapes(text: str, used: Sequence[str]) -> set[str]:
    """The value shapes ``text`` states, less values an earlier call took as an argument (a
    file written since the request does not ask for a second call on it)."""
    text = _DATE_OR_TIME.sub(" ", text)  # 2025-05-01 and 10:30 are not arithmetic
    return {
        shape
        for shape, pattern, _ in _SHAPES
        for m in pattern.finditer(text)
        if not any(m.group(0) in value for value in used)
    }


def _used_values(messages: Sequence[Mapping[str, Any]]) -> list[str]:
    """The string arguments of the calls in ``messages``."""
    out: list[str] = []
    for m in messages:
        for c in m.get("tool_calls") or () if m.get("role") == "assistant" else ():
            args = c.get("function", {}).get("arguments")
            if isinstance(args, str):
                try:
                    args = json.loads(args)
                except ValueError:
                    out.append(args)
                    continue
            if isinstance(args, Mapping):
                out.extend(str(v) for v in args.values())
    return out


# a clause that works on an earlier clause's outcome ("then save it", "write the result to"):
# its call waits for that result
_REFERS_BACK = re.compile(
    r"\b(?:it|them|that|this|its|the (?:result|answer|output|sum|total|value|contents?|text))\b"
    r"(?!\s+(?:is|was|be|will|would|takes?|to (?:drive|walk|get|fly)))",
    re.IGNORECASE,
)


# a clause's joining word ("Also, text ...": the text to send is not "Also, text")
_OPENING_JOIN = re.compile(r"^\W*(?:and\s+)?(?:also|and|then|plus)\b[\s,]*", re.IGNORECASE)


def _refers_back(clause: str) -> bool:
    """Whether a clause (after the first) acts on what an earlier one produces. A question
    does not, also after its joining word ("And what time is it in Cairo now?")."""
    return bool(_REFERS_BACK.search(clause)) and not re.match(
        r"\W*(?:how|what|when|where|who|which|is|are|does|do)\b",
        _OPENING_JOIN.sub("", clause),
        re.IGNORECASE,
    )


def _verb(text: str) -> str:
    """A clause's leading verb, lower case ("" when it opens otherwise): "write" for "and write
    the result to r.txt", "read" for "Can you read notes.txt"."""
    m = _LEAD.match(re.sub(r"^\W*(?:and|then|also|plus)\b\s*(?:then\b\s*)?", "", text, flags=re.I))
    return _stem(m.group(1).lower()) if m else ""


def _head(query: str) -> str:
    """The request's first clause (up to the first comma, colon or sentence end), where
    requests state what to do; "" when that is the whole request."""
    m = re.search(r"[,:;.?!]\s", query)
    head = query[: m.start()].strip() if m else ""
    return head if len(head.split()) >= 2 else ""


# where a request asks for a further thing: a sentence end (outside quotes: the period of
# 'It is at noon.' is followed by the quote), or a joining word that opens a clause
_SENTENCE_END = re.compile(r"(?<=[.?!])\s+(?=[A-Z0-9'\"])")
_JOIN = re.compile(
    r"(?:\s+|[,;]\s*)(?=(?:Also|And|Then|Plus)\b)|[,;]\s*(?=(?:and )?(?:then|also)\b)"
    # "... and then ...", "... and write its content to ...": a second step
    r"|\s+(?=and\s+(?:then\b|\w+\s+(?:it|them|its|the (?:result|answer|output|contents?))\b))"
)


def _states_value(clause: str, tool: str) -> bool:
    """Whether a clause states a value a call of ``tool`` could take: a number, a quoted text,
    an address, or a capitalised word inside it that is not the tool's own subject ("BMI")."""
    if re.search(r"\d|@|(?<!\w)(['\"]).+?\1(?!\w)", clause):
        return True
    subject = _name_words(tool)
    return any(_stem(w.lower()) not in subject for w in re.findall(r"(?<=\s)[A-Z]\w*", clause))


def _clauses(query: str) -> list[tuple[str, bool]]:
    """The request's clauses in order, each with whether a joining word opens it ("Also,",
    "Then", ", and then")."""
    out: list[tuple[str, bool]] = []
    for i, sentence in enumerate(_SENTENCE_END.split(query.strip())):
        for j, part in enumerate(_JOIN.split(sentence)):
            if part.strip():
                out.append((part.strip(), j > 0 or bool(i and _JOIN.match(" " + part))))
    return out


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


def _request(message: Mapping[str, Any]) -> str:
    """A user message's request: after the last :data:`REQUEST_MARKER`, if it has one (a
    lesson, a fact or the tool record before it must not pick the tool: "Tool record:
    calculate 3/3 ok" would draw every request toward the calculator)."""
    text = _text(message)
    at = text.rfind(REQUEST_MARKER)
    return text[at + len(REQUEST_MARKER) :] if at >= 0 else text


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
        self,
        messages: Sequence[Mapping[str, Any]],
        entries: Sequence[Mapping[str, Any]],
        *,
        forced: bool = False,
    ) -> Decision:
        """Call or answer for the conversation ``messages`` with the tools ``entries``
        (OpenAI ``tools`` entries), and which tools to offer. ``forced``: a call whatever the
        score (``tool_choice="required"``); only which tools, and how many calls, is decided.

        A request whose clauses each ask for a tool ("Play X. Then play Y.", "What time is it
        in Cairo? And define 'serendipity'.") gets one call per such clause (at most
        :attr:`DecisionConfig.max_calls`), among each clause's best tool. A clause after the
        first counts when a joining word opens it (also, and, then) or it states a value of
        its own, so "... in French? Please translate it." stays one call. Once one clause asks
        for a tool at :attr:`DecisionConfig.threshold`, the others ask at
        :attr:`~DecisionConfig.companion_threshold`, and the request calls even where its
        whole text scores under the threshold."""
        cfg = self.config
        names = [str(e.get("function", e).get("name")) for e in entries]
        last_user = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=-1)
        query = _request(messages[last_user]) if last_user >= 0 else ""
        if not entries or not query.strip():
            return Decision(False, (), (), 0.0, "no tools" if not entries else "no request")
        since = messages[last_user + 1 :]
        called = _called(since)
        earlier = _called(messages[:last_user])
        stated = {  # what the conversation states: the user's words and tools' results
            n for m in messages if m.get("role") in ("user", "tool") for n in _numbers(_text(m))
        }
        used = _used_values(since)
        accepts = [_accepts(e) for e in entries]
        head = _head(query)
        clauses = _clauses(query) if cfg.max_calls > 1 else []
        clauses = clauses if len(clauses) > 1 else []
        texts = [query, *([head] if head else []), *(c for c, _ in clauses)]
        qs = np.asarray(self.embed(texts), dtype=np.float32)  # [T, D]
        tool_sims = self.tool_vectors(entries) @ qs.T  # [N, T]
        chats = np.max(self._chat_vectors() @ qs.T, axis=0)  # [T]
        n_query = 2 if head else 1
        sims = np.max(tool_sims[:, :n_query], axis=1)  # [N]: best of request, head
        penalty = np.zeros(len(entries), dtype=np.float32)  # [N]: the conversation's
        passed: list[str] = []
        for i, name in enumerate(names):
            if cfg.grounding and _numeric_required(entries[i]) > len(stated):
                passed.append(name)
                penalty[i] += 1.0
            if name in called:  # done already: another call must be a different tool
                penalty[i] += 1.0
            elif name in earlier:
                penalty[i] += cfg.recent_penalty

        def clause_scores(k: int, text: str) -> npt.NDArray[np.float32]:
            """Clause ``k``'s scores before this request's calls count (``[N]``)."""
            col = n_query + k
            own = self._scores(tool_sims[:, col], float(chats[col]), text, names, accepts, used)
            return own - _action_penalty(text, entries)

        wrong_action = _action_penalty(query, entries)  # [N]
        scores = self._scores(sims, float(chats[0]), query, names, accepts, used)
        fresh = scores - wrong_action  # before this request's calls count
        scores = fresh - penalty
        # every clause of the request has had its call: for a request of one clause, when the
        # tool it asks for most has been called since ("Read notes.txt" after read_file: the
        # answer, not write_file next)
        # (as the request scored before any call: a value a call took no longer counts then,
        # and "What's on my list in todo.md?" after read_file would move on to remember)
        served = False
        if called and not clauses:
            asked = self._scores(sims, float(chats[0]), query, names, accepts, []) - wrong_action
            served = names[int(np.argmax(asked))] in called
        if called and clauses:  # the next step is the first clause not served yet
            pending = None
            for k, (text, _) in enumerate(clauses):
                own = clause_scores(k, text)
                j = int(np.argmax(own))
                if own[j] >= cfg.threshold and names[j] not in called:
                    pending = own - penalty
                    break
            served = pending is None
            if pending is not None:
                scores = pending
            clauses = []  # from here the steps come one answer at a time
        ranked = [(names[int(i)], float(scores[i])) for i in np.argsort(-scores, kind="stable")]
        shown = ranked[: cfg.top_k] if len(entries) > cfg.many else ranked
        best_name, best = ranked[0]
        # each clause's best tool, its score, and whether the clause may ask for a call (the
        # first one, or one a joining word opens, or one that states a value of its own)
        per_clause: list[tuple[int, float, bool]] = []
        for k, (text, joined) in enumerate(clauses):
            if k > 0 and _refers_back(text):
                break  # it acts on a result: its call waits for that result
            scored = clause_scores(k, text) - penalty
            j = int(np.argmax(scored))
            may = k == 0 or joined or _states_value(text, names[j])
            per_clause.append((j, float(scored[j]), may))
        # a clause that asks for a tool makes the request one for tools: the others ask at
        # companion_threshold, and the request calls even where its whole text scores under
        # the threshold ("When is Dune showing in Leeds today? Also, 300 ft in m?")
        anchored = any(may and score >= cfg.threshold for _, score, may in per_clause)
        bar = cfg.companion_threshold if anchored else cfg.threshold
        call = forced or ((best >= cfg.threshold or anchored) and not served)
        offered = tuple(n for n, _ in shown[: max(1, cfg.offer)]) if call else ()
        if forced:  # and the near ties: the model chooses among them
            near = (n for n, tied in shown if tied > best - cfg.forced_margin)
            offered = tuple(dict.fromkeys([*offered, *near]))
        n_calls = 1
        steps: tuple[tuple[str, str], ...] = ()
        if call and clauses:  # one call per clause that asks for a tool
            per: list[str] = []
            asking: list[str] = []  # the clause of each call of ``per``
            valued: dict[str, bool] = {}  # tool -> each clause asking for it states a value
            waits = len(per_clause) < len(clauses)  # a later clause acts on a result
            for k, (j, score, may) in enumerate(per_clause):
                text, joined = clauses[k]
                value = _states_value(text, names[j])
                asks = score >= bar and may
                # the same tool again is a second call when a joining word opens the clause or
                # each clause states its values ("What's my BMI? I weigh 58 kg ..." is one)
                again = names[j] in valued
                if asks and (not again or joined or (valued[names[j]] and value)):
                    per.append(names[j])
                    asking.append(_OPENING_JOIN.sub("", text))
                if asks:
                    valued[names[j]] = valued.get(names[j], True) and value
            if len(per) > 1:
                n_calls = min(len(per), cfg.max_calls)
                offered = tuple(dict.fromkeys(per[:n_calls]))
                steps = tuple(zip(per[:n_calls], asking[:n_calls], strict=True))
            elif per and (waits or best < cfg.threshold) and not forced:
                offered = (per[0],)  # the asking clause's tool, not the best overall
        if call and not forced and best < cfg.threshold:
            reason = f"a clause asks for {offered[0]} (the whole request scores {best:.2f})"
        elif call:
            reason = f"{best_name} scores {best:.2f}" + (
                " (a call is required)" if forced else f" >= {cfg.threshold:.2f}"
            )
            if n_calls > 1:
                reason += f"; {n_calls} clauses ask for {', '.join(offered)}"
        elif served:
            reason = "every tool the request asks for has been called since it"
        elif passed and best_name in passed:
            reason = f"{best_name} needs more numbers than the request states"
        elif wrong_action[names.index(best_name)] >= 1.0:
            reason = f"{best_name} does not remove what the request asks to take away"
        else:
            reason = f"best tool {best_name} scores {best:.2f} < {cfg.threshold:.2f}"
        return Decision(call, offered, tuple(shown), best, reason, n_calls, steps)

    def _scores(
        self,
        sims: npt.NDArray[np.float32],
        chat: float,
        text: str,
        names: Sequence[str],
        accepts: Sequence[frozenset[str]],
        used: Sequence[str],
    ) -> npt.NDArray[np.float32]:
        """Each tool's score for one text (``sims: [N]`` its similarity to each tool): less a
        share of its similarity to requests that need no tool, plus the name bonus, plus the
        shape bonus when the text states a value (a file, an address, a URL, an arithmetic
        expression) that one of the tool's parameters takes (``accepts``) and no call since
        the request took (``used``)."""
        cfg = self.config
        words = _words(text)
        verb = _verb(text)
        stated = _stated_shapes(text, used)
        bonus = np.array(
            [
                (cfg.name_bonus if _name_words(n) & words or verb in _all_name_words(n) else 0.0)
                + (cfg.shape_bonus if stated & a else 0.0)
                for n, a in zip(names, accepts, strict=True)
            ],
            dtype=np.float32,
        )
        return (sims - cfg.chat_weight * chat + bonus).astype(np.float32)  # [N]

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
            decision = self.decide(messages, entries, forced=True)
            if not decision.ranked:  # no request to rank by: every tool stays
                return list(entries), tool_choice, decision
            keep = set(decision.offered)
            if len(entries) > self.config.many:
                keep |= set(decision.shown)
            return [e for e in entries if _name(e) in keep], tool_choice, decision
        return list(entries), tool_choice, None


def _name(entry: Mapping[str, Any]) -> str:
    return str(entry.get("function", entry).get("name"))
