"""Reading scenario files: YAML with line positions, validated into a :class:`Scenario`.

Owns :func:`load_scenario` / :func:`parse_scenario` and :class:`ScenarioError`. The YAML is
composed into nodes first so every mapping key and value keeps its line and column; a
pydantic error's ``loc`` is then mapped back to the deepest node that exists, so a message
reads ``town.yaml:14:12: agents[2].location: unknown location 'moon' ...``. Never runs a
scenario and never executes anything from the file (safe YAML only).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from agentcore.apps.sim._scenario import Scenario, ScenarioReferenceError

__all__ = ["Problem", "ScenarioError", "load_scenario", "parse_scenario"]

Loc = tuple[str | int, ...]


@dataclasses.dataclass(frozen=True)
class Problem:
    """One thing wrong with a scenario, at a place in the file."""

    line: int  # 1-based
    column: int  # 1-based
    field: str  # dotted path: agents[2].location
    message: str

    def render(self, source: str) -> str:
        return f"{source}:{self.line}:{self.column}: {self.field or '<top>'}: {self.message}"


class ScenarioError(ValueError):
    """The scenario file is not valid; ``problems`` say where and why."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join("  " + p.render(source) for p in problems)
        super().__init__(f"invalid scenario {source} ({len(problems)} problem(s)):\n{lines}")


def _field(loc: Loc) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _construct(
    node: yaml.Node, loc: Loc, marks: dict[Loc, yaml.Mark], loader: yaml.SafeLoader
) -> Any:
    """Plain Python data from a YAML node; records where each path starts."""
    marks[loc] = node.start_mark
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _construct(key_node, (*loc, "\0key"), {}, loader)
            if not isinstance(key, str | int | float | bool):
                raise ScenarioError(
                    "<yaml>",
                    [_problem(key_node.start_mark, _field(loc), "mapping keys must be scalars")],
                )
            value = _construct(value_node, (*loc, str(key)), marks, loader)
            marks[(*loc, str(key), "\0key")] = key_node.start_mark
            out[key] = value
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_construct(item, (*loc, i), marks, loader) for i, item in enumerate(node.value)]
    return loader.construct_object(node, deep=True)


def _problem(mark: yaml.Mark | None, field: str, message: str) -> Problem:
    line = mark.line + 1 if mark is not None else 1
    column = mark.column + 1 if mark is not None else 1
    return Problem(line, column, field, message)


def _mark_for(loc: Loc, marks: dict[Loc, yaml.Mark], missing: bool) -> yaml.Mark | None:
    if missing and loc[:-1] in marks:
        return marks[loc[:-1]]  # a missing field: point at the mapping that lacks it
    for end in range(len(loc), -1, -1):
        if loc[:end] in marks:
            return marks[loc[:end]]
    return None


def _clean_loc(loc: tuple[Any, ...]) -> Loc:
    """Drop pydantic's union/function tags (e.g. 'function-after[...]') from a location."""
    return tuple(p for p in loc if isinstance(p, int) or not str(p).startswith(("function-",)))


def _describe(error: Any) -> tuple[Loc, str]:
    loc = _clean_loc(tuple(error["loc"]))
    ctx = error.get("ctx") or {}
    cause = ctx.get("error")
    if isinstance(cause, ScenarioReferenceError):
        return cause.loc, cause.message
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "missing":
        return loc, "required field is missing"
    if error["type"] == "extra_forbidden":
        return loc, f"unknown field (got {error.get('input')!r})"
    if "input" in error and not isinstance(error["input"], dict | list):
        message = f"{message} (got {error['input']!r})"
    return loc, message


def parse_scenario(text: str, source: str = "<scenario>") -> Scenario:
    """Validate scenario YAML text; raise :class:`ScenarioError` naming lines and fields."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        raise ScenarioError(
            source, [_problem(exc.problem_mark, "", f"YAML syntax: {exc.problem}")]
        ) from None
    if root is None:
        raise ScenarioError(source, [Problem(1, 1, "", "the file is empty")])
    marks: dict[Loc, yaml.Mark] = {}
    try:
        data = _construct(root, (), marks, yaml.SafeLoader(""))
    except ScenarioError as exc:
        raise ScenarioError(source, exc.problems) from None
    if not isinstance(data, dict):
        raise ScenarioError(
            source, [_problem(root.start_mark, "", "expected a mapping of scenario fields")]
        )
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            loc, message = _describe(error)
            missing = error["type"] == "missing"
            mark = marks.get((*loc, "\0key")) if error["type"] == "extra_forbidden" else None
            mark = mark or _mark_for(loc, marks, missing)
            problems.append(_problem(mark, _field(loc), message))
        problems.sort(key=lambda p: (p.line, p.column))
        raise ScenarioError(source, problems) from None


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a ``.yaml`` / ``.yml`` scenario file."""
    p = Path(path)
    if p.suffix not in (".yaml", ".yml"):
        raise ScenarioError(str(p), [Problem(1, 1, "", "expected a .yaml or .yml file")])
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError(str(p), [Problem(1, 1, "", "no such file")]) from None
    return parse_scenario(text, str(p))
