"""Regular expressions that cannot take exponential time.

Owns :func:`regex_risk`: a static look at a pattern (parsed by the standard library's own
parser) that names the shapes known to make a backtracking engine run for ages: a repetition
inside a repetition (``(a+)+``), alternatives inside a repetition (``(a|ab)*``),
backreferences, and, when asked, more unbounded repetitions than a caller accepts (``.*.*.*x``
is polynomial of high degree on a long line). Search tools refuse such a query from the model;
a policy refuses such a secret pattern. Never runs the pattern.
"""

from __future__ import annotations

import re
from re import _constants as _c  # type: ignore[attr-defined]  # re.compile's parser (3.11+)
from re import _parser as _p  # type: ignore[attr-defined]
from typing import Any

__all__ = ["regex_risk"]

_REPEATS = {_c.MAX_REPEAT, _c.MIN_REPEAT, getattr(_c, "POSSESSIVE_REPEAT", _c.MAX_REPEAT)}
_MANY = 16  # a bounded repeat above this counts as unbounded


def _unbounded(items: Any) -> bool:
    for op, arg in items:
        if op in _REPEATS and (arg[1] is _c.MAXREPEAT or arg[1] > _MANY or _unbounded(arg[2])):
            return True
        if op is _c.SUBPATTERN and _unbounded(arg[-1]):
            return True
        if op is _c.BRANCH and any(_unbounded(b) for b in arg[1]):
            return True
    return False


def _first_literals(branches: Any) -> list[int] | None:
    """The first character of each alternative when every one starts with a literal."""
    firsts = []
    for branch in branches:
        items = list(branch)
        if not items or items[0][0] is not _c.LITERAL:
            return None
        firsts.append(items[0][1])
    return firsts


def _walk(
    items: Any, inside_repeat: bool, counts: list[int], in_unbounded: bool = False
) -> str | None:
    for op, arg in items:
        if op in _REPEATS:
            _low, high, sub = arg
            unbounded = high is _c.MAXREPEAT or high > _MANY
            if unbounded:
                if inside_repeat:
                    return "nests a repetition inside a repetition"
                counts[0] += 1
            found = _walk(sub, inside_repeat or high > 1, counts, in_unbounded or unbounded)
            if found:
                return found
        elif op is _c.BRANCH:
            if inside_repeat and len(arg[1]) > 1:
                firsts = _first_literals(arg[1])
                overlapping = firsts is None or len(set(firsts)) < len(firsts)
                if any(_unbounded(b) for b in arg[1]) or (in_unbounded and overlapping):
                    return "repeats a group of alternatives that can overlap"
            for branch in arg[1]:
                found = _walk(branch, inside_repeat, counts, in_unbounded)
                if found:
                    return found
        elif op is _c.SUBPATTERN:
            found = _walk(arg[-1], inside_repeat, counts, in_unbounded)
            if found:
                return found
        elif op in (_c.ASSERT, _c.ASSERT_NOT):
            found = _walk(arg[1], inside_repeat, counts, in_unbounded)
            if found:
                return found
        elif op in (_c.GROUPREF, _c.GROUPREF_EXISTS):
            return "uses a backreference"
    return None


def regex_risk(pattern: str, *, max_unbounded: int | None = None) -> str | None:
    """Why ``pattern`` could run for a very long time, or None when it is safe to run.
    ``max_unbounded``: also refuse more than this many unbounded repetitions."""
    try:
        parsed = _p.parse(pattern, 0)
    except (re.error, RecursionError) as exc:
        return f"is not a valid regular expression ({exc})"
    counts = [0]
    try:
        found = _walk(list(parsed), False, counts)
    except RecursionError:
        return "is nested too deeply"
    if found is None and max_unbounded is not None and counts[0] > max_unbounded:
        found = f"has {counts[0]} unbounded repetitions (at most {max_unbounded})"
    return found
