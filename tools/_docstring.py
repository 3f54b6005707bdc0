"""Read a function's docstring into a tool description and per-parameter descriptions.

Owns docstring parsing for the three common layouts: Google (``Args:`` with ``name: text``),
Sphinx (``:param name: text``) and NumPy (``Parameters`` underlined by dashes). Never guesses
types from docstrings: types come from annotations only.
"""

from __future__ import annotations

import dataclasses
import inspect
import re

__all__ = ["ParsedDocstring", "parse_docstring"]

_GOOGLE_ARGS = {"args", "arguments", "parameters", "params", "keyword args", "keyword arguments"}
_GOOGLE_OTHER = {
    "returns",
    "return",
    "yields",
    "raises",
    "examples",
    "example",
    "notes",
    "note",
    "see also",
    "attributes",
    "warnings",
    "warning",
    "references",
    "todo",
}
_SECTION_RE = re.compile(r"^([A-Za-z][A-Za-z ]*):\s*$")
_GOOGLE_PARAM_RE = re.compile(r"^\*{0,2}(\w+)\s*(?:\(([^)]*)\))?\s*:\s*(.*)$")
_SPHINX_PARAM_RE = re.compile(r"^:param\s+(?:[^:]*\s+)?(\w+)\s*:\s*(.*)$")
_SPHINX_ANY_RE = re.compile(r"^:\w+")
_NUMPY_UNDERLINE_RE = re.compile(r"^-{3,}\s*$")
_NUMPY_PARAM_RE = re.compile(r"^(\w+)\s*(?::\s*(.*))?$")


@dataclasses.dataclass(frozen=True)
class ParsedDocstring:
    """``description``: the text before any section; ``params``: name -> description."""

    description: str
    params: dict[str, str]


def _join(lines: list[str]) -> str:
    return " ".join(part.strip() for part in lines if part.strip())


def parse_docstring(doc: str | None) -> ParsedDocstring:
    """Split ``doc`` into its summary paragraphs and its parameter descriptions."""
    if not doc:
        return ParsedDocstring("", {})
    lines = inspect.cleandoc(doc).splitlines()
    description: list[str] = []
    params: dict[str, list[str]] = {}
    section: str | None = None
    current: str | None = None
    base_indent: int | None = None  # indent of parameter lines in a Google section
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        nxt = lines[i + 1].strip() if i + 1 < len(lines) else ""
        # NumPy section: a title line followed by a line of dashes.
        if stripped and indent == 0 and _NUMPY_UNDERLINE_RE.match(nxt):
            section = "numpy" if stripped.lower() in _GOOGLE_ARGS else "other"
            current = None
            i += 2
            continue
        header = _SECTION_RE.match(stripped) if indent == 0 else None
        if header and header.group(1).lower() in _GOOGLE_ARGS | _GOOGLE_OTHER:
            section = "google" if header.group(1).lower() in _GOOGLE_ARGS else "other"
            current, base_indent = None, None
            i += 1
            continue
        i += 1
        sphinx = _SPHINX_PARAM_RE.match(stripped)
        if sphinx:
            section, current = "sphinx", sphinx.group(1)
            params[current] = [sphinx.group(2)]
        elif _SPHINX_ANY_RE.match(stripped):
            section, current = "sphinx", None  # :returns:, :raises: end the parameter text
        elif section is None:
            description.append(line)
        elif not stripped:
            continue
        elif section == "google":
            if base_indent is None:
                base_indent = indent
            param = _GOOGLE_PARAM_RE.match(stripped)
            if param and indent <= base_indent:
                current = param.group(1)
                params[current] = [param.group(3)]
            elif current is not None:
                params[current].append(stripped)
        elif section == "numpy":
            param = _NUMPY_PARAM_RE.match(stripped)
            if param and indent == 0:
                current = param.group(1)
                params[current] = []
            elif current is not None:
                params[current].append(stripped)
        elif section == "sphinx" and current is not None:
            params[current].append(stripped)
    paragraphs = "\n".join(description).strip().split("\n\n")
    text = "\n\n".join(_join(p.splitlines()) for p in paragraphs if p.strip())
    return ParsedDocstring(text, {k: _join(v) for k, v in params.items()})
