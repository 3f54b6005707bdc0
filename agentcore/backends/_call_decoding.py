"""Steering an answer with tool calls while it is decoded, beyond what its grammar says.

Owns :class:`DistinctCalls` (several calls, never the same twice), :class:`ArgumentBias`
(argument values copied from the conversation, optional arguments only when asked for),
configured by :class:`CallSteering`, and :class:`StepBias` (an answer of one call per clause of
the request, each call's arguments steered by its own clause).

:class:`DistinctCalls` is a decoding constraint that wraps the action grammar's
:class:`~agentcore.core.constraint.GrammarConstraint` when an answer may hold several calls:
once a call repeats one made earlier in the same answer (same name, same arguments), the answer
ends with it (only EOS is allowed as soon as the grammar accepts), and :func:`distinct` drops the
repeat when the answer is read. Small models repeat a call they just wrote (Qwen2.5-0.5B wrote
the same call until ``max_tokens`` when the grammar allowed more than one); the grammar bounds
the number of calls, this ends the answer at the first repeat.

:class:`ArgumentBias` wraps a session's sampler: inside a call's argument values it adds a bonus
to the logits of the tokens that continue a span the conversation states (SmolLM2-135M wrote
"MADRADAS" for "Madrid"), among the tokens the grammar allows; a value of a shape the schema
tells (an email address, a phone number, a date) copies a span of that shape whole, a listed
value the conversation states or names ("inches" for "in") is preferred, a number value copies
the stated number its unit word names, a value is kept off the schema's own text (the tool's or
the key's name), and an optional argument the request does not ask for is not opened.

Never builds grammars (that is :mod:`agentcore.tools._grammar`) and never samples itself.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
import threading
import weakref
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import torch

from agentcore.core.constraint import GrammarConstraint, llguidance_tokenizer

__all__ = [
    "ArgumentBias",
    "CallSteering",
    "DistinctCalls",
    "StepBias",
    "argument_spot",
    "call_key",
    "complete_calls",
    "copying",
    "distinct",
    "token_pieces",
]

_CALL_START = '{"name"'


def call_key(name: str, arguments: Any) -> str:
    """What makes two calls the same call: the name and the arguments (key order aside)."""
    return json.dumps([name, arguments], sort_keys=True, ensure_ascii=False)


def complete_calls(text: str) -> list[str]:
    """The :func:`call_key` of each complete call object (``{"name": ..., "arguments": ...}``,
    or ``"parameters"``) in an answer's text, in order; an unfinished one is left out."""
    keys: list[str] = []
    decoder = json.JSONDecoder()
    at = text.find(_CALL_START)
    while at >= 0:
        try:
            payload, end = decoder.raw_decode(text, at)
        except json.JSONDecodeError:
            return keys  # the call being written
        if isinstance(payload, dict) and isinstance(payload.get("name"), str):
            args = payload.get("arguments", payload.get("parameters", {}))
            keys.append(call_key(payload["name"], args))
        at = text.find(_CALL_START, end)  # past this call: its arguments may hold "name"
    return keys


def distinct(calls: Sequence[Any]) -> list[Any]:
    """``calls`` (with ``.name`` and ``.arguments``) without the ones that repeat an earlier
    call of the list."""
    seen: set[str] = set()
    out = []
    for call in calls:
        key = call_key(call.name, dict(call.arguments))
        if key not in seen:
            seen.add(key)
            out.append(call)
    return out


class DistinctCalls:
    """A :class:`GrammarConstraint` for an answer of several calls that ends the answer at the
    first call repeating an earlier one (see the module docstring). Not thread-safe; one per
    answer, like the constraint it wraps."""

    def __init__(self, inner: GrammarConstraint) -> None:
        self.inner = inner
        self._repeated = False
        self._checked = 0  # tokens consumed when the calls were last read

    def _ends_here(self) -> bool:
        if not self._repeated and len(self.inner.tokens) != self._checked:
            self._checked = len(self.inner.tokens)
            keys = complete_calls(self.inner.text())
            self._repeated = len(keys) != len(set(keys))
        return self._repeated and self.inner.is_accepting()

    def allowed_tokens(self) -> torch.Tensor:
        mask = self.inner.allowed_tokens()  # [vocab] bool
        if not self._ends_here():
            return mask
        only_end = torch.zeros_like(mask)
        for eos in self.inner.eos_token_ids:
            if eos < mask.shape[0]:
                only_end[eos] = mask[eos]
        return only_end

    def advance(self, token_id: int) -> None:
        self.inner.advance(token_id)

    def is_finished(self) -> bool:
        return self.inner.is_finished()


# ---------------------------------------------------------------- copying stated values

_WORD_START = re.compile(r"(?:(?<=^)|(?<=[\s'\"(“‘]))[^\s'\"(“‘]")
_NUMBER_SPAN = re.compile(r"(?<![\d.])-?\d+(?:\.\d+)?")
_LONGEST = 32  # characters of a span looked ahead per step


@dataclasses.dataclass(frozen=True)
class CallSteering:
    """How calls are steered while decoded (see :class:`ArgumentBias`).

    ``copy_bonus``: added to the logit of each token that continues, inside an argument value,
    a span the conversation states (its user messages and tool results), or ends the value
    where such a span ends at a word boundary; ``0`` turns it off. ``copy_from_start``: the
    bonus applies from a value's first token (it then also chooses which span to copy), else
    only once the model has started a value that is a prefix of a span. ``optional_support``: an
    optional argument is written only when the request names it (a word of its name, one of its
    enum values).

    The defaults, on the dev split of ``bench/tool_calls.py`` (simple, multiple, multi_turn,
    12 cases each, ``auto``): a bonus of 8 once a value is started fixes SmolLM2-135M's
    misspelt copies ("MADRADAS" for "Madrid", an email address from a tool result) for +2 cases
    (all 58 -> 64%) and changes no Qwen2.5-Coder-0.5B score (83%); from a value's first token
    (4) it also picks the span, and Qwen wrote "US" / "Canadian" for "USD" / "CAD" (-1 case);
    ``optional_support`` changed no case on either model then (on since issue #22, below).

    A value the schema lists gets no bonus (``enum``, ``const``: the model picks one), one it
    shapes (``pattern``, ``format``) is copied only in the span's own case, and a code (a key
    or description that says code, ISO, ticker, symbol, or an all-capitals example) only from
    a code the conversation writes, case kept: SmolLM2-135M asked "Convert that price to euros." wrote "Euros" for
    "EUR" (the bonus carried "E" on into the word). SmolLM2, ``auto``: test multi_turn 50 ->
    67% (the 4 euro cases), dev split unchanged in every category (all 53%).

    Issue #22 ("Agents that act"): SmolLM2-135M's wrong calls were mostly the right tool with a
    wrong value the bonus above never reaches, as it only helps a value the model has started
    right. ``shaped_spans``: a string parameter whose schema tells a shape (``pattern``,
    ``format``, a key named email / phone / url, a description that is "... email address" or
    "phone number", a template it writes: "YYYY-MM-DD", "HH:MM") and whose shape the
    conversation holds (1 to 4 spans) is copied whole from those spans, from its first token,
    with ``shape_bonus`` (SmolLM2 had cut "ops@acme.io" to "acme.com", invented "1234567890"
    for "+44 7700 900123", written "2025-03-21 15:45:00" for a date; at a bonus of 8 it still
    went from "op" on to "opensea.com"). ``stated_choices``: a listed value (``enum``) the
    conversation states as a word gets that bonus too ("celsius" for "in fahrenheit", "on" for
    "lights off"). ``echo_penalty``: a string value loses this on the tokens that take it into
    the schema's own text (the tool's name or description, the key's name or description) once
    it holds 3 characters the conversation does not state ("add_todo" for a task). ``keep_case``:
    a span begun in lower case may go on in lower case ("jonas" went on "_berg", not " Berg").
    With them a parse fix: an arguments object whose first key is ``name`` hid its call, so no
    value of such a tool was steered at all.

    Dev split (35 simple / 41 multiple / 13 multi_turn, ``auto``), SmolLM2: 57 / 61 / 46 ->
    69 / 76 / 69% (+15 cases, none lost); Qwen2.5-Coder-0.5B: 89 / 83 / 62 -> 91 / 88 / 69%
    (+4: a phone number, an email address from a tool result, two optional labels no longer
    invented; none lost). ``optional_support`` now changes cases (SmolLM2 +1, Qwen +2, none
    lost), so it is on. Tried: ``keep_case`` also in upper case ("MAD" went on "RID", then
    "OZONA" for "Oslo": -1 multiple); ``shape_bonus`` 8 (-1 simple, the "opensea.com" case).
    Without ``echo_penalty`` (0) SmolLM2 loses 1 multi_turn case (an SMS text that ran on to the
    token limit) and writes "add_todo" again, so it stays.
    Test split, reported once (41 simple / 65 multiple / 24 multi_turn / 44 irrelevance):
    SmolLM2 51 / 55 / 67 / 84 -> 56 / 71 / 79 / 84% (+15 cases, none lost); Qwen 83 / 80 / 67 /
    84 -> 85 / 85 / 83 / 84% (+11, 3 lost: with ``optional_support`` the optional artist of
    "Play Yesterday by The Beatles" is not opened, its key's name not being in the request, and
    Qwen put "by The Beatles" into the title). Irrelevance cannot move: all of this acts inside
    a call's arguments, after the call is chosen.

    Issue #22, round 2. ``stated_numbers``: a number value copies, from its first token and
    whole, a stated number whose unit word names the key (the word or sign after it, or the
    word before it, against the words of the key's name and description: "58 kg" for
    ``weight_kg``, "5%" for a rate "in percent", "10 years"; a word of the name counts over one
    of the description), else one no other number key names and no other key of the call has
    taken, from the latest message that states one (SmolLM2 wrote ``{"weight_kg": 1.62,
    "height_m": 1.62}``, a rate of 0.05 for "5%", a bill of 15 for "a 15% tip on that
    amount"). ``named_choices``: a listed value (``enum``, or a list a description writes in
    parentheses for a word of the key's name: "between units (km, mi, m, ft, in, cm)") that a
    word of the conversation names by itself, its start or an abbreviation ("inches" -> "in",
    "kilometres" -> "km", "feet" -> "ft"), gets ``shape_bonus``; for a from/to pair of keys the
    request's order picks which ("to" / "in" / "how many" before the word: to; a number or
    "from" before it: from). SmolLM2 had written the description's whole list as the unit.
    Dev, ``auto``, SmolLM2: 69 / 76 / 69 -> 69 / 78 / 85%
    (+3, none lost); Qwen: 91 / 88 / 69 -> 91 / 88 / 85% (+2, the tip bill; none lost). Numbers alone
    changed no dev case (the tip bill went from 15 to 250, the earlier user number, until the
    latest message was preferred); the units +1 multiple (SmolLM2). Test split (41 / 65 / 24 /
    44): SmolLM2 56 / 71 / 79 / 84 -> 66 / 72 / 88 / 84%
    (+7, none lost); Qwen 85 / 85 / 83 / 84 -> 85 / 85 / 92 / 84% (+2, none lost).
    """

    copy_bonus: float = 8.0
    copy_from_start: bool = False  # the bonus also picks which span a value starts with
    optional_support: bool = True  # optional keys only when the request asks for them
    shaped_spans: bool = True  # a value of a known shape copies a span of that shape whole
    stated_choices: bool = True  # a listed value the conversation states gets the bonus
    echo_penalty: float = 8.0  # off a value's start that echoes the schema's own text
    keep_case: bool = True  # a span started in lower case may go on in lower case
    shape_bonus: float = 16.0  # the copy bonus toward a span of the value's shape or list
    stated_numbers: bool = True  # a number value copies a stated number its unit word names
    named_choices: bool = True  # a listed value a request's word names ("inches" for "in")


class _Pieces:
    """The text of every token of one tokenizer (from llguidance's byte table; tokens that
    are not whole UTF-8 text alone, and special tokens, are left out)."""

    def __init__(self, ll_tokenizer: Any) -> None:
        self.by_text: dict[str, list[int]] = {}
        self.text: list[str | None] = []
        for i in range(ll_tokenizer.vocab_size):
            raw = ll_tokenizer.decode_bytes([i])
            try:
                piece = raw.decode("utf-8") if raw and raw[0] != 0xFF else None
            except UnicodeDecodeError:
                piece = None
            self.text.append(piece)
            if piece:
                self.by_text.setdefault(piece, []).append(i)
        self.closing = [i for i, p in enumerate(self.text) if p and p[0] == '"']
        self.after_number = [i for i, p in enumerate(self.text) if p and p[0] in ",}]"]
        self.comma = [i for i, p in enumerate(self.text) if p and p.lstrip().startswith(",")]
        self.quote_comma = [i for i, p in enumerate(self.text) if p and p.startswith('",')]
        # the tokens that close the arguments object: after a string value ('"}'), else '}'
        self.quote_close = [i for i, p in enumerate(self.text) if p and p.startswith('"}')]
        self.close = [i for i, p in enumerate(self.text) if p and p.lstrip().startswith("}")]
        self.by_lower: dict[str, list[int]] = {}
        for i, p in enumerate(self.text):
            if p:
                self.by_lower.setdefault(p.lower(), []).append(i)


_PIECES: weakref.WeakKeyDictionary[Any, _Pieces] = weakref.WeakKeyDictionary()
_PIECES_LOCK = threading.Lock()


def token_pieces(tokenizer: Any, eos_token_ids: Sequence[int]) -> _Pieces:
    """Every token's text for a Hugging Face tokenizer (built once per tokenizer, ~0.1 s)."""
    with _PIECES_LOCK:
        found = _PIECES.get(tokenizer)
        if found is None:
            found = _PIECES[tokenizer] = _Pieces(llguidance_tokenizer(tokenizer, eos_token_ids))
        return found


@dataclasses.dataclass(frozen=True)
class _Spot:
    """Where the answer's text stands inside a call's arguments: ``kind`` is ``"string"``
    (inside a string value), ``"key"`` (inside a key), ``"number"`` (inside a number),
    ``"value"`` (after a key's colon,
    before its value), ``"after"`` (a value of the arguments object is complete: a comma or
    the closing brace comes next) or ``""`` (elsewhere); ``partial`` is the value (or the text
    after the colon) so far; ``tool`` the call's name; ``keys`` the argument keys written so far
    (the one whose value is being written included); ``top``: the value is one of the arguments
    object's own, not nested deeper."""

    kind: str
    partial: str = ""
    tool: str = ""
    keys: tuple[str, ...] = ()
    top: bool = False


_NAME = re.compile(r'\{"name":\s*"((?:[^"\\]|\\.)*)"')


def argument_spot(text: str, arguments_key: str = "arguments") -> _Spot:
    """Read ``text`` (an answer being decoded) for where its last call's arguments stand.

    A call starts at the last ``{"name"`` that opens one: an arguments object whose first key is
    ``name`` (``{"name": "Jonas``) opens no call, the call around it does."""
    at = text.rfind(_CALL_START)
    while at >= 0:
        spot = _spot_from(text, at, arguments_key)
        if spot.kind:
            return spot
        at = text.rfind(_CALL_START, 0, at)
    return _Spot("")


def _spot_from(text: str, at: int, arguments_key: str) -> _Spot:
    """Where the arguments of a call starting at ``at`` stand at the end of ``text``."""
    stack: list[list[Any]] = []  # per container: [kind, key, expecting a key, keys]
    in_string = escape = False
    start = 0  # where the current string or number began
    number = False
    for i in range(at, len(text)):
        c = text[i]
        if in_string:
            if escape:
                escape = False
            elif c == "\\":
                escape = True
            elif c == '"':
                in_string = False
                if stack and stack[-1][0] == "{" and stack[-1][2]:
                    stack[-1][1] = text[start:i]
                    stack[-1][3].append(text[start:i])
            continue
        if number:
            if c in "0123456789.eE+-":
                continue
            number = False
        if c == '"':
            in_string, start = True, i + 1
        elif c in "{[":
            stack.append([c, None, c == "{", []])
        elif c in "}]":
            if stack:
                stack.pop()
            if not stack:
                return _Spot("")  # the call is complete
        elif c == ":" and stack:
            stack[-1][2] = False
        elif c == "," and stack and stack[-1][0] == "{":
            stack[-1][2] = True
        elif c in "-0123456789" and stack and not stack[-1][2]:
            number, start = True, i
    if len(stack) < 2 or stack[0][1] != arguments_key:
        return _Spot("")
    top = stack[-1]
    name = _NAME.match(text, at)
    where = _Spot("", "", name.group(1) if name else "", tuple(stack[1][3]), len(stack) == 2)
    if in_string:
        if top[0] == "{" and top[2]:
            return dataclasses.replace(where, kind="key", partial=text[start:])
        return dataclasses.replace(where, kind="string", partial=text[start:])
    if number:
        return dataclasses.replace(where, kind="number", partial=text[start:])
    if top[0] == "{" and not top[2]:
        colon = text.rfind(":")
        after_colon = text[colon + 1 :] if colon >= 0 else ""
        kind = "after" if after_colon.strip() else "value"
        return dataclasses.replace(where, kind=kind, partial=after_colon)
    return where


def _word_starts(source: str) -> list[int]:
    return [m.start() for m in _WORD_START.finditer(source)]


class ArgumentBias:
    """A sampler that steers a call's argument values toward what the conversation states,
    then picks with the sampler it wraps (tokens the grammar forbids stay forbidden: the inner
    sampler masks them).

    - Copying (:attr:`CallSteering.copy_bonus`): inside a value, a bonus to the logit of every
      token that continues a span of ``sources`` the value so far is a prefix of (a string from
      a word start, a number whole), and of the tokens that end the value where such a span
      ends. SmolLM2-135M wrote "MADRADAS" for "Madrid" without it.
    - Shapes and lists (:attr:`CallSteering.shaped_spans`, :attr:`~CallSteering.stated_choices`):
      a value whose shape the schema tells (:func:`_shape`) or whose listed values the
      conversation states gets :attr:`~CallSteering.shape_bonus` from its first token toward
      those spans (:func:`_anchored_spans`), and ends only where one ends.
    - Numbers (:attr:`CallSteering.stated_numbers`): a number value gets
      :attr:`~CallSteering.shape_bonus` from its first token toward the stated numbers its unit
      word names, or that no other key names or has taken (:meth:`numbers_here`).
    - Echoes (:attr:`CallSteering.echo_penalty`): tokens that take a string value on into the
      schema's own text the conversation does not state lose that much (:meth:`echoing`).
    - Optional keys (:attr:`CallSteering.optional_support`): once the keys left to write are
      all optional and none has support in the request (``words``: a word of its name or one
      of its enum values), the arguments close: the tokens that would open another key are
      pushed out.
    """

    def __init__(
        self,
        inner: Any,
        sources: Sequence[str],
        pieces: _Pieces,
        steering: CallSteering,
        *,
        arguments_key: str = "arguments",
        schemas: Mapping[str, Mapping[str, Any]] | None = None,
        words: Sequence[str] = (),
        descriptions: Mapping[str, str] | None = None,
    ) -> None:
        self.inner = inner
        self.steering = steering
        self.arguments_key = arguments_key
        self.pieces = pieces
        # string values are written JSON-escaped: compare with the escaped sources
        self.strings = [json.dumps(s, ensure_ascii=False)[1:-1] for s in sources if s]
        self.numbers = sorted({m.group() for s in sources for m in _NUMBER_SPAN.finditer(s)})
        self.starts = [(s, _word_starts(s)) for s in self.strings]
        self.lowered = [(s.lower(), starts) for s, starts in self.starts]
        self.unasked = {  # tool -> its optional keys the request gives no support
            name: _unasked(schema, {_stem(w) for w in words}, " ".join(words))
            for name, schema in (schemas or {}).items()
        }
        self.constrained = {  # tool -> its keys whose values the schema constrains
            name: _constrained_keys(schema) for name, schema in (schemas or {}).items()
        }
        self.anchored = {  # tool -> key -> the spans its shape or its listed values pick out
            name: _anchored_spans(
                schema, self.strings, steering, (descriptions or {}).get(name, "")
            )
            for name, schema in (schemas or {}).items()
        }
        self.counted = {  # tool -> number key -> the stated numbers its words name
            name: _numbers_named(schema, sources)
            for name, schema in (schemas or {}).items()
            if steering.stated_numbers
        }
        self.echoes = {  # tool -> key -> the schema's own texts a value should not echo
            name: _schema_echoes(name, schema, (descriptions or {}).get(name, ""))
            for name, schema in (schemas or {}).items()
        }
        self.written = ""  # the answer so far: the text of each token picked, appended

    def favoured(self, text: str, spot: _Spot | None = None) -> set[int]:
        """The tokens that copy a stated value at the end of ``text``."""
        spot = spot or argument_spot(text, self.arguments_key)
        ahead: list[str] = []  # texts that would copy a span from here
        ends = False  # the value may end here
        closing = self.pieces.closing
        from_start = self.steering.copy_from_start
        key = spot.keys[-1] if spot.keys else ""
        rule = self.constrained.get(spot.tool, {}).get(key)
        anchored = self.anchored_here(spot)
        counted = self.numbers_here(spot)
        if counted and spot.kind == "value":  # a number opens on one of its stated numbers
            space = " "[len(spot.partial) :]
            ahead = [space + n for n in counted]
        elif counted and spot.kind == "number":  # and is copied whole
            ahead = [n[len(spot.partial) :] for n in counted]
            ends = spot.partial in counted
            closing = self.pieces.after_number
        elif anchored and spot.kind == "value":  # the value opens on one of its spans
            space = " "[len(spot.partial) :]
            ahead = [f'{space}"{s[:_LONGEST]}' for s in anchored]
        elif anchored and spot.kind == "string":  # copied whole: a span of its shape ends it
            ahead = [s[len(spot.partial) :][:_LONGEST] for s in anchored]
            ends = spot.partial in anchored
        elif rule == _LISTED and spot.kind in ("string", "value"):
            return set()  # the schema lists the values (enum, const): the model picks one
        elif spot.kind == "string" and (spot.partial or from_start):
            code = rule == _CODE  # only a code the conversation writes
            exact = rule is not None  # a span in its own case, never folded into a word
            value = spot.partial if exact else spot.partial.lower()
            for source, starts in self.starts:
                low = source if exact else source.lower()
                for at in starts:
                    if code and not _CODE_WORD.match(source, at):
                        continue
                    if low.startswith(value, at):
                        # a span never runs past a quote of its source (escaped: \")
                        rest = source[at + len(value) : at + len(value) + _LONGEST]
                        rest = rest.split("\\", 1)[0]
                        ahead.append(rest)
                        if self.steering.keep_case and not exact:
                            ahead.append(_in_case_of(spot.partial, rest))
                        ends |= bool(value) and (not rest or not rest[0].isalnum())
        elif spot.kind == "number":
            for n in self.numbers:
                if n.startswith(spot.partial):
                    ahead.append(n[len(spot.partial) :])
                    ends |= n == spot.partial
            closing = self.pieces.after_number
        elif spot.kind == "value" and from_start:
            space = " "[len(spot.partial) :]
            ahead = [space + n for n in self.numbers]
            ahead += [
                f'{space}"' + s[at : at + _LONGEST].split("\\", 1)[0]
                for s, starts in self.starts
                for at in starts
            ]
        else:
            return set()
        out: set[int] = set(closing) if ends else set()
        by_text = self.pieces.by_text
        for rest in set(ahead):
            for k in range(1, len(rest) + 1):
                out.update(by_text.get(rest[:k], ()))
        return out

    def anchored_here(self, spot: _Spot) -> list[str]:
        """The spans of its shape or list (:func:`_anchored_spans`) the value at ``spot`` is
        still a prefix of (all of them before it starts; ``[]`` elsewhere)."""
        if spot.kind not in ("value", "string") or not spot.keys:
            return []
        spans = self.anchored.get(spot.tool, {}).get(spot.keys[-1], [])
        if spot.kind == "value":
            return spans
        return [s for s in spans if s.startswith(spot.partial)]

    def numbers_here(self, spot: _Spot) -> list[str]:
        """The stated numbers a number value at ``spot`` is to be one of, that it is still a
        prefix of (``[]`` elsewhere, or where the conversation does not tell which).

        The numbers whose unit word names the key (:func:`_numbers_named`: "58 kg" for
        ``weight_kg``, "5%" for a rate "in percent"), else the stated numbers no other number
        key of the tool names and no other key of this call has taken, those of the latest
        message that states one ("a 15% tip on that amount" after a tool result of 271.3),
        when at most :data:`_MOST_ANCHORED` are left. SmolLM2-135M wrote the same stated
        number into two keys ("weight_kg": 1.62, "height_m": 1.62), invented a rate of 0.05
        for "5%" and a bill of 15 for that tip."""
        if spot.kind not in ("value", "number") or not spot.keys or not spot.top:
            return []
        named = self.counted.get(spot.tool)
        key = spot.keys[-1]
        if not named or key not in named:
            return []
        mine = named[key][0]
        if not mine:
            taken = _written_numbers(self.written, self.arguments_key, key)
            others = {n for k, (said, _) in named.items() if k != key for n in said}
            for said in named[key][1]:  # the latest message that states one left
                mine = [n for n in said if n not in others and n not in taken]
                if mine:
                    break
            if len(mine) > _MOST_ANCHORED:
                return []
        if spot.kind == "value":
            return mine
        return [n for n in mine if n.startswith(spot.partial)]

    def echoing(self, spot: _Spot) -> list[int]:
        """The tokens that would take a string value on into the schema's own text (the tool's
        name, the key's name, its description: "add_todo" for a task the request states) where
        the conversation states no such text; ``[]`` elsewhere. SmolLM2-135M wrote the tool's
        or the key's name as the value when the request words it in its own way."""
        if spot.kind != "string" or not spot.keys:
            return []
        if self.anchored_here(spot):
            return []  # the value copies a span of its shape
        value = spot.partial.lower()
        out: list[int] = []
        for text in self.echoes.get(spot.tool, {}).get(spot.keys[-1], ()):
            if not text.startswith(value):
                continue
            rest = text[len(value) : len(value) + _LONGEST]
            # the shortest continuation that leaves what the conversation states, and longer
            k = max(1, _ECHO_FROM - len(value))
            while k <= len(rest) and self.stated(value + rest[:k]):
                k += 1
            for n in range(k, len(rest) + 1):
                out += self.pieces.by_lower.get(rest[:n], ())
        return out

    def stated(self, prefix: str) -> bool:
        """Whether a span of the conversation (from a word start, case folded) starts with
        ``prefix`` (lower case)."""
        return any(low.startswith(prefix, at) for low, starts in self.lowered for at in starts)

    def unasked_keys(self, spot: _Spot) -> list[int]:
        """The tokens that would open an optional key the request does not ask for: the comma
        after a value when every key left is such a key, and inside a key the tokens that
        lead only to such keys (``[]`` elsewhere)."""
        if not spot.top or spot.kind not in ("string", "number", "after", "key"):
            return []
        keys = self.unasked.get(spot.tool)
        if keys is None:
            return []
        remaining = [k for k in keys[1] if k not in spot.keys]
        asked = [k for k in remaining if k in keys[0]]
        if spot.kind == "key":  # steer the key's own text away from the unasked ones
            if not asked:
                return []
            lead = [k[len(spot.partial) :] + '"' for k in asked if k.startswith(spot.partial)]
            out: list[int] = []
            for k in remaining:
                if k in keys[0] or not k.startswith(spot.partial):
                    continue
                rest = k[len(spot.partial) :] + '"'
                for n in range(1, len(rest) + 1):
                    if not any(other.startswith(rest[:n]) for other in lead):
                        out += self.pieces.by_text.get(rest[:n], ())
            return out
        if not remaining or asked:
            return []  # nothing left, or a required or asked-for key is still to come
        return self.pieces.quote_comma if spot.kind == "string" else self.pieces.comma

    def closes(self, spot: _Spot) -> list[int]:
        """The tokens that close the arguments object at ``spot`` (a value ended, no other key
        to come): ``"}``... inside a string, ``}``... after a value; ``[]`` inside a key."""
        if spot.kind == "string":
            return self.pieces.quote_close
        return self.pieces.close if spot.kind in ("number", "after") else []

    def pick(
        self,
        logits: torch.Tensor,
        params: Any,
        recent: Sequence[int] = (),
        allowed: torch.Tensor | None = None,
        reply: Sequence[int] = (),
    ) -> int:
        spot = argument_spot(self.written, self.arguments_key)
        if spot.kind:
            logits = logits.clone()  # logits: [V]
            bonus = self.steering.copy_bonus
            if self.anchored_here(spot) or self.numbers_here(spot):
                bonus = self.steering.shape_bonus
            favoured = self.favoured("", spot) if bonus else set()
            if favoured:
                logits[torch.tensor(sorted(i for i in favoured if i < logits.shape[0]))] += bonus
            if self.steering.optional_support:
                pushed = [i for i in self.unasked_keys(spot) if i < logits.shape[0]]
                if pushed:
                    _close_instead(logits, pushed, self.closes(spot), allowed)
                    logits[torch.tensor(pushed)] -= _PUSHED_OUT
            if self.steering.echo_penalty:
                echoed = sorted({i for i in self.echoing(spot) if i < logits.shape[0]})
                if echoed:
                    logits[torch.tensor(echoed)] -= self.steering.echo_penalty
        token = int(self.inner.pick(logits, params, recent, allowed, reply))
        self.written += self.pieces.text[token] or ""
        return token

    def __getattr__(self, name: str) -> Any:  # reseed, get_state, ...: the wrapped sampler's
        return getattr(self.inner, name)


class StepBias:
    """The sampler of an answer that holds one call per clause of the request ("Set a timer
    for 45 minutes. Also, set one for 3 minutes."): the k-th call's arguments are steered by
    ``parts[k]``, an :class:`ArgumentBias` whose sources are the k-th clause (and the tools'
    results), so each call copies its own clause's values. Steered by the whole request, both
    calls of SmolLM2-135M took the first clause's values, and the repeat ended the answer."""

    def __init__(self, parts: Sequence[ArgumentBias]) -> None:
        if not parts:
            raise ValueError("StepBias needs at least one ArgumentBias")
        self.parts = list(parts)
        self.written = ""  # the answer so far, shared by the parts

    @property
    def inner(self) -> Any:
        return self.parts[0].inner

    @inner.setter
    def inner(self, sampler: Any) -> None:  # copying() wraps the session's sampler
        for part in self.parts:
            part.inner = sampler

    def pick(
        self,
        logits: torch.Tensor,
        params: Any,
        recent: Sequence[int] = (),
        allowed: torch.Tensor | None = None,
        reply: Sequence[int] = (),
    ) -> int:
        done = len(complete_calls(self.written))
        part = self.parts[min(done, len(self.parts) - 1)]
        part.written = self.written
        token = part.pick(logits, params, recent, allowed, reply)
        self.written = part.written
        return token

    def __getattr__(self, name: str) -> Any:  # reseed, get_state, ...: the wrapped sampler's
        return getattr(self.parts[0].inner, name)


def _close_instead(
    logits: torch.Tensor,
    pushed: Sequence[int],
    closes: Sequence[int],
    allowed: torch.Tensor | None = None,
) -> None:
    """Raise the tokens that close the arguments (``closes``) so the best of them scores as
    the best of the ``pushed`` ones, which would open a key the request does not ask for:
    where the model ends a value to write another key, the value still ends there.
    Qwen2.5-Coder-0.5B, asked "Is the word falcon in any of my files?", scored '",' far over
    ' in' after "falcon"; with the comma pushed out and the close left at its own low score,
    it wrote the query on as "falcon in any of my files". ``allowed`` (``[V]`` bool, the
    grammar's mask): only the tokens it admits are weighed."""

    def admitted(ids: Sequence[int]) -> torch.Tensor:
        at = torch.tensor([i for i in ids if i < logits.shape[0]], dtype=torch.long)
        return at if allowed is None else at[allowed.to("cpu")[at]]

    closing, opening = admitted(closes), admitted(pushed)
    if not len(closing) or not len(opening):
        return
    lift = logits[opening].max() - logits[closing].max()
    if lift > 0:  # raised together: the model's own order among them is kept
        logits[closing] += lift


_PUSHED_OUT = 1e4  # subtracted from a logit: never picked while the grammar allows another


_LISTED = "listed"  # enum or const: the schema lists the values
_SHAPED = "shaped"  # pattern or format: copied only in the span's own case
_CODE = "code"  # a short code (ISO currency, ticker): copied only from a code, case kept
_CODE_HINT = re.compile(r"\b(?:code|iso|ticker|symbol|abbreviation)s?\b", re.IGNORECASE)
_CODE_EXAMPLE = re.compile(r"\b(?:e\.g\.|eg|like|such as)\s+[A-Z]{2,5}\b")
_CODE_WORD = re.compile(r"[A-Z0-9]{2,}(?![\w])")  # a code as the conversation writes one


def _constrained_keys(schema: Mapping[str, Any]) -> dict[str, str]:
    """The keys of one tool's parameters whose values are not the request's words folded in
    case: ones the schema lists (``enum``, ``const``: :data:`_LISTED`) or shapes (``pattern``,
    ``format``: :data:`_SHAPED`) and short codes (:data:`_CODE`: a name or description that
    says code, ISO, ticker, symbol, or gives an all-capitals example: "ISO currency code, e.g.
    EUR"). SmolLM2-135M asked "in euros" wrote "Euros" for the code "EUR" once the copy bonus
    carried the value on into the request's word."""
    out: dict[str, str] = {}
    for key, sub in (schema.get("properties") or {}).items():
        if not isinstance(sub, Mapping):
            continue
        items = sub.get("items")
        shape = items if sub.get("type") == "array" and isinstance(items, Mapping) else sub
        if "enum" in shape or "const" in shape:
            out[key] = _LISTED
            continue
        said = f"{key.replace('_', ' ')} {sub.get('description') or ''}"
        if _CODE_HINT.search(said) or _CODE_EXAMPLE.search(str(sub.get("description") or "")):
            out[key] = _CODE
        elif "pattern" in shape or "format" in shape:
            out[key] = _SHAPED
    return out


_ECHO_FROM = 3  # characters of schema text a value holds before the echo penalty applies
_MOST_ANCHORED = 4  # a shape that picks out more spans than this does not tell which one

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_PHONE = re.compile(r"(?<![\w+])\+?\(?\d[\d ().-]{4,}\d(?!\w)")
_URL = re.compile(r"https?://[^\s'\"<>\\]*[^\s'\"<>\\.,;:!?)]")
_FORMATS = {
    "email": _EMAIL,
    "idn-email": _EMAIL,
    "uri": _URL,
    "url": _URL,
    "date": re.compile(r"(?<!\d)\d{4}-\d{2}-\d{2}(?!\d)"),
    "time": re.compile(r"(?<!\d)\d{1,2}:\d{2}(?::\d{2})?(?!\d)"),
}
_SHAPE_WORDS = [  # a word of a key's name -> the shape of its values
    (frozenset({"email", "mail"}), _EMAIL),
    (frozenset({"phone", "telephone", "mobile", "cellphone", "tel", "fax"}), _PHONE),
    (frozenset({"url", "uri", "link", "website", "webpage"}), _URL),
]
_SHAPE_SAID = [  # how a description's head (to its first comma) ends for a value of that shape
    (re.compile(r"\be-?mail\s+address$", re.IGNORECASE), _EMAIL),
    (re.compile(r"\b(?:tele)?phone\s+number$", re.IGNORECASE), _PHONE),
    (re.compile(r"\b(?:url|uri|web\s+address)$", re.IGNORECASE), _URL),
]
_TEMPLATE = re.compile(r"(?<!\w)[YMDHSymdhs]{2,4}(?:[-/:.][YMDHSymdhs]{2,4})+(?!\w)")


def _template_shape(template: str) -> re.Pattern[str] | None:
    """The values a written template describes ("YYYY-MM-DD", "HH:MM"): each run of one letter
    a run of digits (a year as long as its run, the others one or two digits), or None when
    ``template`` is no such template."""
    parts = re.split(r"([-/:.])", template)
    out = []
    for part in parts[::2]:
        if len(set(part.upper())) != 1:
            return None
        out.append(f"\\d{{{len(part)}}}" if part[0] in "Yy" else f"\\d{{1,{len(part)}}}")
    seps = [re.escape(sep) for sep in parts[1::2]]
    body = out[0] + "".join(sep + digits for sep, digits in zip(seps, out[1:], strict=True))
    return re.compile(rf"(?<!\d){body}(?!\d)")


def _shape(key: str, sub: Mapping[str, Any]) -> re.Pattern[str] | None:
    """The shape of a string parameter's values, when its schema tells one: its ``pattern``, its
    ``format``, a word of its name (email, phone, url), what its description is ("recipient
    email address", "phone number"), a template its description writes ("a date,
    YYYY-MM-DD"); else None."""
    pattern = sub.get("pattern")
    if isinstance(pattern, str):
        with contextlib.suppress(re.error):
            return re.compile(rf"(?<!\w)(?:{pattern.removeprefix('^').removesuffix('$')})(?!\w)")
    shaped = _FORMATS.get(str(sub.get("format") or ""))
    if shaped is not None:
        return shaped
    words = set(_words(key))
    for names, shape in _SHAPE_WORDS:
        if words & names:
            return shape
    description = str(sub.get("description") or "")
    head = re.split(r"[,;:(]", description, maxsplit=1)[0].strip().rstrip(".")
    for ends, shape in _SHAPE_SAID:  # "recipient email address", not "body of the email"
        if ends.search(head):
            return shape
    template = _TEMPLATE.search(description)
    return _template_shape(template.group()) if template else None


def _anchored_spans(
    schema: Mapping[str, Any],
    sources: Sequence[str],
    steering: CallSteering,
    description: str = "",
) -> dict[str, list[str]]:
    """Per key of one tool's string parameters, the spans of ``sources`` (JSON-escaped) its
    value is to be one of: the listed values (``enum``, or a list the descriptions write:
    :func:`_described_list`) the conversation states (:func:`_stated_choices`), or the spans
    of the value's shape (:func:`_shape`); keys with none (or too many to tell) are left
    out."""
    out: dict[str, list[str]] = {}
    lowered = [s.lower() for s in sources]
    props = schema.get("properties") or {}
    for key, sub in props.items():
        if not isinstance(sub, Mapping):
            continue
        kind = sub.get("type", "string")
        if kind != "string" and not (isinstance(kind, list) and "string" in kind):
            continue
        spans: list[str] = []
        listed = [v for v in sub.get("enum") or () if isinstance(v, str) and v.strip()]
        if listed and steering.stated_choices:
            for value in listed:
                said = json.dumps(value, ensure_ascii=False)[1:-1]
                word = re.compile(rf"(?<!\w){re.escape(said.lower())}(?!\w)")
                if any(word.search(low) for low in lowered):
                    spans.append(said)
        elif not listed and steering.shaped_spans:
            shape = _shape(key, sub)
            if shape is not None:
                found = (m.group() for s in sources for m in shape.finditer(s))
                spans = list(dict.fromkeys(f for f in found if f.strip()))
        if steering.named_choices and not spans:
            listed = (listed if steering.stated_choices else []) or _described_list(
                key, sub, description
            )
            if listed:
                spans = _stated_choices(listed, sources, _direction(key, sub))
        if 0 < len(spans) <= _MOST_ANCHORED:
            out[key] = spans
    return out


_LIST = re.compile(r"(\w+)\s*\(([^()]*,[^()]*)\)")  # "units (km, mi, m)"
_FROM = {"from", "source", "origin", "src"}
_TO = {"to", "target", "into", "destination", "dest", "dst"}
_TO_BEFORE = {"to", "into", "in", "as", "many", "much"}  # "in miles", "how many miles"


def _described_list(key: str, sub: Mapping[str, Any], description: str) -> list[str]:
    """The values a description lists for a key in parentheses: its own ("unit (km, mi,
    m)"), or the tool's where the word before the list is a word of the key's name
    ("Convert a length between units (km, mi, m, ft, in, cm)" for ``from_unit``); each item
    one short word, three at least; else ``[]``."""
    name = _key_stems(key)
    found = [(True, m) for m in _LIST.finditer(str(sub.get("description") or ""))]
    found += [(False, m) for m in _LIST.finditer(description)]
    for own, m in found:
        items = [i.strip() for i in m.group(2).split(",")]
        if len(items) < 3 or not all(re.fullmatch(r"\w{1,12}", i) for i in items):
            continue
        if own or _stem(m.group(1)) in name:
            return items
    return []


def _direction(key: str, sub: Mapping[str, Any]) -> str:
    """ "from" or "to" for a key of a from/to pair (its name says so, else the last such word
    of its description: "unit to convert from"), else ""."""
    for text in (key, str(sub.get("description") or "")):
        for word in reversed(_words(text)):
            if word in _FROM:
                return "from"
            if word in _TO:
                return "to"
    return ""


def _stated_choices(listed: Sequence[str], sources: Sequence[str], direction: str) -> list[str]:
    """The listed values the conversation names, in order: a word that is the value
    (case folded) or begins with it ("inches" for "in", "miles" for "mi": the longest such),
    or abbreviates to it from its first letter ("kilometres" for "km", "feet" for "ft").
    With a ``direction``, the values the request marks that way come first: "to" after "to",
    "into", "in", "how many"; "from" after a number or "from"; a value marked the other way is
    left out."""
    marked: list[tuple[str, str]] = []  # (value, "from" / "to" / "")
    for source in sources:
        before = ""
        for m in re.finditer(r"[^\W\d_]+|\d+(?:\.\d+)?", source):
            word, low = m.group(), m.group().lower()
            value = None
            if low not in _UNSAID and source[m.start() - 1 : m.start()] not in ("'", "’"):
                value = _listed_named(listed, low)  # not the "m" of "I'm"
            if value is not None:
                if before.isdigit() or before == "from" or _NUMBER_SAID.fullmatch(before):
                    marked.append((value, "from"))
                elif before in _TO_BEFORE:
                    marked.append((value, "to"))
                else:
                    marked.append((value, ""))
            before = low if not word[0].isdigit() else word
    values = list(dict.fromkeys(v for v, _ in marked))
    if not direction:
        return values
    other = "to" if direction == "from" else "from"
    mine = [v for v, d in marked if d == direction]
    if mine:
        return list(dict.fromkeys(mine))
    off = {v for v, d in marked if d == other}
    return [v for v in values if v not in off]


def _listed_named(listed: Sequence[str], word: str) -> str | None:
    """The listed value ``word`` (lower case) names (see :func:`_stated_choices`), or None."""
    exact = [v for v in listed if v.lower() == word]
    if exact:
        return exact[0]
    if len(word) < 2:
        return None
    begun = [v for v in listed if word.startswith(v.lower())]
    if begun:
        return max(begun, key=len)
    for value in listed:
        short = value.lower()
        if 2 <= len(short) <= 3 and len(word) > len(short) + 1 and _abbreviates(short, word):
            return value
    return None


_NUMBER_SAID = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?![\w.]?\d)")
_BEFORE = re.compile(r"([a-z]+|[$€£])\W*$")  # the word a number follows
_AFTER = re.compile(r"\s*(%|[a-z]+)")  # the unit word (or sign) right after a number
_SIGNS = {"%": "percent", "$": "dollar", "€": "euro", "£": "pound"}
_PASSED = {"of", "is", "are", "was", "be"}  # "a base of 6": the word before these names it
_UNNAMING = {  # words of a key's name or description that name no quantity
    *_PASSED,
    *(
        [
            "a",
            "an",
            "the",
            "in",
            "to",
            "for",
            "from",
            "and",
            "or",
            "at",
            "on",
            "by",
            "with",
            "per",
            "its",
            "this",
            "that",
            "number",
            "value",
        ]
    ),
}
_UNSAID = {  # words next to a number in a request that name no quantity
    *_UNNAMING,
    *(
        [
            "i",
            "me",
            "my",
            "it",
            "as",
            "up",
            "so",
            "if",
            "do",
            "we",
            "you",
            "your",
            "our",
            "than",
            "about",
            "what",
            "how",
            "many",
            "much",
        ]
    ),
}


def _names(said: str, word: str) -> int:
    """How well a unit word the conversation writes next to a number (``said``) names the
    key's ``word``: 3 the same word ("years"), 2 one the start of the other from 4 letters on
    ("weigh" / "weight", "percent" / "percentage"), 1 an abbreviation of 2-3 letters ("kg" /
    "kilograms", "min" / "minutes"), else 0."""
    said, word = _stem(said), _stem(word)
    if said == word:
        return 3
    if min(len(said), len(word)) >= 4 and (word.startswith(said) or said.startswith(word)):
        return 2
    if 2 <= len(said) <= 3 and len(word) > len(said) + 2:
        return int(_abbreviates(said, word))
    return 0


def _numbers_named(
    schema: Mapping[str, Any], sources: Sequence[str]
) -> dict[str, tuple[list[str], list[list[str]]]]:
    """Per number key of one tool's parameters: (the stated numbers whose unit word names
    the key best of the tool's number keys, the stated numbers of each source, the latest
    source first). A number's
    unit words are the word or sign right after it ("58 kg", "5%", "10 years") and the word
    before it ("radius 4", "base of 6", "weigh 58", a tool result's ``"km": 585``); a key's
    words are those of its name and its description (a word of its name counts more: "10
    years" names ``years`` rather than a rate "yearly ... in percent")."""
    said: list[tuple[str, list[str]]] = []  # (number, its unit words)
    per_source: list[list[str]] = []  # the numbers of each source, the latest first
    for source in reversed(sources):
        per_source.append([])
        low = source.lower()
        for m in _NUMBER_SAID.finditer(low):
            words = []
            after = _AFTER.match(low, m.end())
            if after:
                words.append(_SIGNS.get(after.group(1), after.group(1)))
            before = _BEFORE.search(low, max(0, m.start() - _LONGEST), m.start())
            if before and before.group(1) in _PASSED:
                before = _BEFORE.search(low, max(0, before.start() - _LONGEST), before.start())
            if before:
                words.append(_SIGNS.get(before.group(1), before.group(1)))
            said.append((m.group(), [w for w in words if w not in _UNSAID]))
            per_source[-1].append(m.group())
    keys: dict[str, tuple[bool, set[str], set[str]]] = {}  # key -> (integer, name, description)
    for key, sub in (schema.get("properties") or {}).items():
        if isinstance(sub, Mapping) and sub.get("type") in ("number", "integer"):
            name = {w for w in _words(key) if w not in _UNNAMING}
            text = str(sub.get("description") or "").lower()
            described = {w for w in re.split(r"\W+", text) if w and w not in _UNNAMING}
            keys[key] = (sub.get("type") == "integer", name, described)
    out: dict[str, tuple[list[str], list[list[str]]]] = {
        key: ([], [[n for n in ns if not (whole and "." in n)] for ns in per_source])
        for key, (whole, _, _) in keys.items()
    }
    for number, words in said:
        score = {
            key: max(
                [2 * _names(u, w) for u in words for w in name]
                + [_names(u, w) for u in words for w in described]
                + [0]
            )
            for key, (whole, name, described) in keys.items()
            if not (whole and "." in number)
        }
        best = max(score.values(), default=0)
        for key, points in score.items():
            if best and points == best:
                out[key][0].append(number)
    return {
        k: (list(dict.fromkeys(a)), [list(dict.fromkeys(n)) for n in b])
        for k, (a, b) in out.items()
    }


_WRITTEN_NUMBER = re.compile(r'"((?:[^"\\]|\\.)*)":\s*(-?\d+(?:\.\d+)?)\s*[,}]')


def _written_numbers(text: str, arguments_key: str, but: str) -> set[str]:
    """The numbers the last call in ``text`` has written for its keys other than ``but``."""
    at = text.rfind(f'"{arguments_key}"')
    return {m.group(2) for m in _WRITTEN_NUMBER.finditer(text, max(at, 0)) if m.group(1) != but}


def _schema_echoes(
    tool: str, schema: Mapping[str, Any], description: str = ""
) -> dict[str, list[str]]:
    """Per key of one tool's parameters, the schema texts (lower case) its value should not
    echo: the tool's name and ``description``, the key's name (as written and with spaces for
    ``_``) and the key's description."""
    out: dict[str, list[str]] = {}
    described = description.strip()
    for key, sub in (schema.get("properties") or {}).items():
        texts = [tool, key, *([described] if described else [])]
        if isinstance(sub, Mapping) and isinstance(sub.get("description"), str):
            texts.append(sub["description"])
        texts += [t.replace("_", " ") for t in texts]
        out[key] = list(dict.fromkeys(t.lower() for t in texts if len(t) >= _ECHO_FROM))
    return out


def _in_case_of(value: str, rest: str) -> str:
    """``rest`` in lower case where ``value`` is written all in lower case, else as is."""
    return rest.lower() if value.islower() else rest


def _words(text: str) -> list[str]:
    """The words of a key's name or a text, lower case (``_`` splits words too)."""
    return [w for w in re.split(r"[_\W]+", text.lower()) if w]


def _key_stems(key: str) -> set[str]:
    """The stems of a key's words of 3 letters or more ("from_unit" -> {"from", "unit"})."""
    return {_stem(w) for w in _words(key) if len(w) >= 3}


def _abbreviates(short: str, word: str) -> bool:
    """Whether ``short`` abbreviates ``word``: its first letter, then letters of it in order
    ("kg" / "kilograms", "ft" / "feet")."""
    rest = iter(word)
    return short[0] == word[0] and all(c in rest for c in short)


def _stem(word: str) -> str:
    word = word.lower()
    return word[:-1] if len(word) > 3 and word.endswith("s") else word


# a key for who made a work (a song's artist, a book's author): a request that names a work
# "by" someone asks for it ("Play Dancing Queen by ABBA": left unopened, Qwen2.5-0.5B wrote the
# whole "Dancing Queen by ABBA" as the title)
_MAKERS = frozenset(
    ("artist", "author", "performer", "singer", "band", "composer", "writer", "director")
)
_MADE_BY = re.compile(r"\bby [A-Z0-9]")


def _unasked(
    schema: Mapping[str, Any], words: set[str], said: str = ""
) -> tuple[frozenset[str], tuple[str, ...]]:
    """(the keys a call must write or the request asks for, every key) of one tool's
    parameters: an optional key is asked for when the request holds a word of its name or one
    of its enum values, and a key for a work's maker (its name or description says artist,
    author, performer, ...) when the request (``said``) names someone after "by"."""
    props = schema.get("properties") or {}
    required = set(schema.get("required") or ())
    asked = set(required)
    made_by = bool(_MADE_BY.search(said))
    for key, sub in props.items():
        mine = _key_stems(key)
        if isinstance(sub, Mapping):
            for value in sub.get("enum") or ():
                mine |= {_stem(w) for w in re.split(r"\W+", str(value)) if len(w) >= 3}
            if made_by and _MAKERS.intersection(_words(f"{key} {sub.get('description') or ''}")):
                asked.add(key)
        if mine & words:
            asked.add(key)
    return frozenset(asked), tuple(props)


@contextlib.contextmanager
def copying(owner: Any, bias: ArgumentBias | None) -> Iterator[None]:
    """While open, ``owner.sampler`` (a session's) is ``bias`` wrapping it (nothing when
    ``bias`` is None); the session's own sampler is back when the block ends."""
    if bias is None:
        yield
        return
    inner = owner.sampler
    bias.inner = inner
    owner.sampler = bias
    try:
        yield
    finally:
        owner.sampler = inner
