"""Steering an answer with tool calls while it is decoded, beyond what its grammar says.

Owns :class:`DistinctCalls`, a decoding constraint that wraps the action grammar's
:class:`~agentcore.core.constraint.GrammarConstraint` when an answer may hold several calls:
once a call repeats one made earlier in the same answer (same name, same arguments), the answer
ends with it (only EOS is allowed as soon as the grammar accepts), and :func:`distinct` drops the
repeat when the answer is read. Small models repeat a call they just wrote (Qwen2.5-0.5B wrote
the same call until ``max_tokens`` when the grammar allowed more than one); the grammar bounds
the number of calls, this ends the answer at the first repeat.

Never builds grammars (that is :mod:`agentcore.tools._grammar`) and never samples itself.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import torch

from agentcore.core.constraint import GrammarConstraint

__all__ = ["DistinctCalls", "call_key", "complete_calls", "distinct"]

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
