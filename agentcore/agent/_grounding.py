"""Grounded arguments: string arguments decoded from values the context actually contains.

Owns :func:`ground_tool`, which narrows a tool's OpenAI entry for one turn: a path argument
may only be a file name the step mentions, an arithmetic argument only an expression the step
contains, and a free-text argument (content, text) only an earlier step's result or a quoted
string of the step, each as a JSON Schema ``enum``, when such candidates exist (an argument
with no candidate stays free; a path argument also offers its own default, e.g. ``"."``).
A small model that cannot copy a value reliably still chooses
among the right ones; the grammar makes anything else unwritable. The narrowing only ever
removes options, so a grounded call is valid under the tool's real schema. Never chooses a
value itself when there are several and never calls a tool.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable
from typing import Any

__all__ = ["candidates", "ground_tool"]

_FILE = re.compile(r"(?<![\w/.-])((?:[\w-]+/)*[\w-]+\.[A-Za-z0-9]{1,6})(?![\w/])")
_EXPR = re.compile(r"[-(]*\d[\d.]*(?:\s*(?:\*\*|[-+*/%^])\s*[(]*\s*\d[\d.]*\s*[)]*)+")
_QUOTED = re.compile(r"\"([^\"]{1,200})\"|'([^']{1,200})'")
_PATHS = ("path", "file", "filename", "file_path", "dst", "src")
_TEXTS = ("content", "text", "message", "note", "value")


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(i.strip() for i in items if i and i.strip()))


def candidates(argument: str, step: str, results: list[str]) -> list[str]:
    """Values the context offers for ``argument`` (may be empty)."""
    name = argument.lower()
    if name in _PATHS:
        return _unique(_FILE.findall(step))
    if name == "expression":
        found = [m.group(0) for m in _EXPR.finditer(step)]
        return _unique(_balance(e) for e in found)
    if name in _TEXTS:
        quoted = [a or b for a, b in _QUOTED.findall(step)]
        short = [r for r in results if 0 < len(r.strip()) <= 200]
        return _unique([*quoted, *short[-3:][::-1]])
    return []


def _balance(expr: str) -> str:
    expr = expr.strip()
    while expr.count("(") > expr.count(")"):
        if expr.startswith("("):
            expr = expr[1:]
        else:
            expr += ")"
    while expr.count(")") > expr.count("("):
        expr = expr[:-1] if expr.endswith(")") else expr
        if expr.count(")") > expr.count("(") and not expr.endswith(")"):
            break
    return expr


def ground_tool(entry: dict[str, Any], step: str, results: list[str]) -> dict[str, Any]:
    """``entry`` with ``enum`` candidates on the string arguments that have some (``entry``
    itself, uncopied, when none has)."""
    props = entry.get("function", {}).get("parameters", {}).get("properties", {})
    narrowed: dict[str, list[str]] = {}
    for arg, schema in props.items():
        if not isinstance(schema, dict) or schema.get("type") != "string" or "enum" in schema:
            continue
        found = candidates(arg, step, results)
        default = schema.get("default")
        if found and isinstance(default, str) and arg.lower() in _PATHS:
            found.append(default)  # e.g. "." for a folder argument, next to mentioned files
        elif not found and isinstance(default, str) and arg.lower() in _PATHS:
            found = [default]  # nothing mentioned: the tool's own default, not a guess
        limit = schema.get("maxLength")
        found = [f for f in found if limit is None or len(f) <= int(limit)]
        pattern = schema.get("pattern")
        if found and isinstance(pattern, str):
            try:
                found = [f for f in found if re.search(pattern, f)]
            except re.error:
                found = []
        if found:
            narrowed[arg] = found
    if not narrowed:
        return entry
    out = copy.deepcopy(entry)
    out_props = out["function"]["parameters"]["properties"]
    for arg, found in narrowed.items():
        out_props[arg].pop("pattern", None)  # every candidate matches it
        out_props[arg]["enum"] = found
    return out
