"""How a tool checks its arguments: against a pydantic model or against a raw JSON Schema.

Owns :class:`ArgumentSpec` (the seam: a schema to export and a ``validate`` that returns the
value the tool function receives) with its two implementations, and the translation of
pydantic / jsonschema failures into :class:`~tools._errors.ArgumentProblem` lists that name the
field, the value and the expectation. Never runs a tool.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import jsonschema
import jsonschema.exceptions
import jsonschema.validators
from pydantic import BaseModel, ValidationError

from agentcore.tools._errors import (
    MISSING,
    ArgumentProblem,
    ToolArgumentError,
    ToolDefinitionError,
    short_repr,
)
from agentcore.tools._formats import FORMAT_CHECKER
from agentcore.tools._schema import describe_schema, export_schema, inline_root_ref, resolve_ref

__all__ = [
    "ArgumentSpec",
    "JsonSchemaArguments",
    "PydanticArguments",
    "coerce_arguments",
]


@runtime_checkable
class ArgumentSpec(Protocol):
    """What a tool knows about its arguments."""

    @property
    def schema(self) -> dict[str, Any]:
        """The JSON Schema of the arguments object, as exported to clients."""
        ...

    def validate(self, tool: str, arguments: Mapping[str, Any]) -> Any:
        """Check ``arguments``; return what the tool function receives, or raise
        :class:`~tools._errors.ToolArgumentError`."""
        ...


def coerce_arguments(tool: str, arguments: Mapping[str, Any] | str | None) -> dict[str, Any]:
    """Accept arguments as a mapping, as JSON text (OpenAI wire form) or as ``None`` (no args)."""
    if arguments is None:
        return {}
    if isinstance(arguments, str):
        text = arguments.strip() or "{}"
        try:
            arguments = json.loads(text)
        except json.JSONDecodeError as exc:
            problem = ArgumentProblem(
                "", arguments, f"a JSON object (the text is not valid JSON: {exc.msg} at {exc.pos})"
            )
            raise ToolArgumentError(tool, [problem]) from None
    if not isinstance(arguments, Mapping):
        raise ToolArgumentError(tool, [ArgumentProblem("", arguments, "a JSON object")])
    return dict(arguments)


def _join_path(parts: Sequence[str | int]) -> str:
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out


class _Located:
    """Where an error location lands in the schema: the field path and its subschema."""

    def __init__(self) -> None:
        self.parts: list[str | int] = []
        self.schema: dict[str, Any] | None = None
        self.parent: dict[str, Any] | None = None


def _locate(loc: Sequence[str | int], root: dict[str, Any]) -> _Located:
    """Walk a pydantic error location through the schema, skipping union branch tags."""
    found = _Located()
    node: dict[str, Any] | None = root
    for item in loc:
        if node is None:
            found.parts.append(item)
            continue
        node = resolve_ref(node, root)
        if isinstance(item, int):
            items = node.get("items")
            found.parts.append(item)
            found.parent, node = node, items if isinstance(items, dict) else None
            continue
        props = node.get("properties", {})
        if item in props:
            found.parts.append(item)
            found.parent, node = node, props[item]
            continue
        branches = [resolve_ref(b, root) for b in node.get("anyOf", node.get("oneOf", []))]
        holder = next((b for b in branches if item in b.get("properties", {})), None)
        if holder is not None:
            found.parts.append(item)
            found.parent, node = holder, holder["properties"][item]
            continue
        if branches or item in ("function-after", "function-before", "function-wrap"):
            continue  # a union branch tag such as 'int' or 'Address': not part of the path
        extra = node.get("additionalProperties")
        found.parts.append(item)
        found.parent, node = node, extra if isinstance(extra, dict) else None
    found.schema = node
    return found


def _allowed_keys(parent: dict[str, Any] | None) -> str:
    keys = list((parent or {}).get("properties", {}))
    return ", ".join(keys) if keys else "(none)"


_CUSTOM_ERROR_TYPES = {"value_error", "assertion_error"}


def _in_schema_order(
    problems: dict[str, ArgumentProblem], schema: dict[str, Any]
) -> list[ArgumentProblem]:
    """Problems sorted like the schema's top-level properties (unknown keys last)."""
    order = {name: i for i, name in enumerate(schema.get("properties", {}))}

    def key(item: tuple[str, ArgumentProblem]) -> tuple[int, str]:
        head = re.split(r"[.\[]", item[0], maxsplit=1)[0]
        return (order.get(head, len(order)), item[0])

    return [problem for _, problem in sorted(problems.items(), key=key)]


def problems_from_pydantic(exc: ValidationError, schema: dict[str, Any]) -> list[ArgumentProblem]:
    """One :class:`ArgumentProblem` per wrong field (union branches merged)."""
    merged: dict[str, ArgumentProblem] = {}
    for err in exc.errors(include_url=False):
        where = _locate(err["loc"], schema)
        path = _join_path(where.parts)
        kind = err["type"]
        if kind == "missing":
            value: Any = MISSING
            words = describe_schema(where.schema, schema) if where.schema else "a value"
            expected = f"{words} (required)"
        elif kind == "extra_forbidden":
            value = err["input"]
            name = where.parts[-1] if where.parts else "?"
            expected = f"no argument named {name!r}; allowed: {_allowed_keys(where.parent)}"
        else:
            value = err["input"]
            message = str(err["msg"])
            if where.schema is None:
                expected = message.removeprefix("Input should be ")
            else:
                expected = describe_schema(where.schema, schema)
                if kind in _CUSTOM_ERROR_TYPES:
                    expected += f" ({message.removeprefix('Value error, ')})"
        if path in merged:
            continue  # several union branches failed on the same field: the schema says it all
        merged[path] = ArgumentProblem(path, value, expected)
    return _in_schema_order(merged, schema)


_SHAPE_VALIDATORS = {"type", "enum", "const"}


def _into_matching_branch(
    err: jsonschema.exceptions.ValidationError,
) -> list[jsonschema.exceptions.ValidationError]:
    """For an ``anyOf``/``oneOf`` failure where exactly one branch has the value's shape
    (e.g. an object given to ``Address | None``), report that branch's errors instead."""
    if err.validator not in ("anyOf", "oneOf") or not err.context:
        return [err]
    depth = len(err.absolute_path)
    branches: dict[Any, list[jsonschema.exceptions.ValidationError]] = {}
    for sub in err.context:
        branches.setdefault(sub.relative_schema_path[0], []).append(sub)
    matching = [
        subs
        for subs in branches.values()
        if not any(e.validator in _SHAPE_VALIDATORS and len(e.absolute_path) == depth for e in subs)
    ]
    if len(matching) != 1:
        return [err]
    return [leaf for sub in matching[0] for leaf in _into_matching_branch(sub)]


# Rules that describe_schema reads out in words; when any other rule fails (``contains``,
# ``propertyNames``, ``if``/``then`` schemas, ...), jsonschema's own message says which.
_DESCRIBED_RULES = {
    "type",
    "enum",
    "const",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "uniqueItems",
    "pattern",
    "format",
    "not",
    "anyOf",
    "oneOf",
}


def _missing(
    err: jsonschema.exceptions.ValidationError, key: str, why: str, schema: dict[str, Any]
) -> ArgumentProblem:
    """A required key that is absent, described by its schema wherever it is declared (the
    failing subschema, or the object's own properties for an ``if``/``then`` rule)."""
    sub = err.schema if isinstance(err.schema, dict) else {}
    prop = sub.get("properties", {}).get(key)
    if not isinstance(prop, dict):
        prop = _locate([*err.absolute_path, key], schema).schema
    words = describe_schema(prop, schema) if isinstance(prop, dict) else "a value"
    return ArgumentProblem(_join_path([*err.absolute_path, key]), MISSING, f"{words} ({why})")


def _dependent_keys(err: jsonschema.exceptions.ValidationError) -> list[tuple[str, str]]:
    """``(missing key, the key that needs it)`` for a ``dependentRequired`` failure."""
    out = []
    for key, needs in err.validator_value.items():
        if key in err.instance and isinstance(needs, list):
            out += [(need, key) for need in needs if need not in err.instance]
    return out


def problems_from_jsonschema(
    errors: Sequence[jsonschema.exceptions.ValidationError], schema: dict[str, Any]
) -> list[ArgumentProblem]:
    """Translate jsonschema errors: ``required``, ``dependentRequired`` and
    ``additionalProperties`` point at the missing / unexpected key, not at the object holding
    it; a rule the plain-words description cannot express is quoted from jsonschema."""
    problems: dict[str, ArgumentProblem] = {}
    for err in (leaf for top in errors for leaf in _into_matching_branch(top)):
        base = list(err.absolute_path)
        sub = err.schema if isinstance(err.schema, dict) else {}
        found: list[ArgumentProblem] = []
        if err.validator == "required" and isinstance(err.instance, dict):
            keys = [k for k in err.validator_value if k not in err.instance]
            found = [_missing(err, key, "required", schema) for key in keys]
        elif err.validator in ("dependentRequired", "dependencies") and isinstance(
            err.instance, dict
        ):
            pairs = _dependent_keys(err)
            found = [_missing(err, k, f"required when {by!r} is given", schema) for k, by in pairs]
        elif err.validator == "additionalProperties" and isinstance(err.instance, dict):
            declared = set(sub.get("properties", {}))
            for key, value in err.instance.items():
                if key not in declared:
                    path = _join_path([*base, key])
                    expected = f"no argument named {key!r}; allowed: {_allowed_keys(sub)}"
                    found.append(ArgumentProblem(path, value, expected))
        if found:
            for problem in found:
                problems.setdefault(problem.field, problem)
            continue
        path = _join_path(base)
        words = describe_schema(sub, schema) if sub else "a value"
        if words == "a value" or err.validator not in _DESCRIBED_RULES:
            words = err.message if words == "a value" else f"{words} ({err.message})"
        problems.setdefault(path, ArgumentProblem(path, err.instance, words))
    return _in_schema_order(problems, schema)


class PydanticArguments:
    """Arguments checked by a pydantic model; the tool receives the validated model."""

    def __init__(self, model: type[BaseModel]) -> None:
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            raise ToolDefinitionError(f"expected a pydantic BaseModel subclass, got {model!r}")
        self.model = model
        raw = inline_root_ref(model.model_json_schema())
        if raw.get("type") != "object":
            raise ToolDefinitionError(
                f"{model.__name__}: a tool's arguments must be a JSON object schema, got {raw!r}"
            )
        self._schema = export_schema(raw)

    @property
    def schema(self) -> dict[str, Any]:
        return self._schema

    def validate(self, tool: str, arguments: Mapping[str, Any]) -> BaseModel:
        try:
            return self.model.model_validate(dict(arguments))
        except ValidationError as exc:
            raise ToolArgumentError(tool, problems_from_pydantic(exc, self._schema)) from None


_TOO_DEEP = (
    "a tool's input schema nests too deeply to be checked (Python's recursion limit was "
    "reached); flatten it"
)


class JsonSchemaArguments:
    """Arguments checked by a raw JSON Schema (tools imported over MCP, tools a client declares);
    the tool receives the arguments dict unchanged. String formats are checked too (see
    :mod:`tools._formats`)."""

    def __init__(self, schema: Mapping[str, Any]) -> None:
        raw = inline_root_ref(dict(schema))
        if raw.get("type") != "object":
            raise ToolDefinitionError(
                f"a tool's input schema must have type 'object' at the root, got {short_repr(raw)}"
            )
        validator_cls = jsonschema.validators.validator_for(
            raw, default=jsonschema.Draft202012Validator
        )
        try:
            validator_cls.check_schema(raw)
            self._schema = export_schema(raw)
        except jsonschema.exceptions.SchemaError as exc:
            raise ToolDefinitionError(
                f"invalid JSON Schema for tool arguments: {exc.message}"
            ) from None
        except RecursionError:
            raise ToolDefinitionError(_TOO_DEEP) from None
        self._validator = validator_cls(raw, format_checker=FORMAT_CHECKER)

    @property
    def schema(self) -> dict[str, Any]:
        return self._schema

    def validate(self, tool: str, arguments: Mapping[str, Any]) -> dict[str, Any]:
        value = dict(arguments)
        try:
            errors = sorted(
                self._validator.iter_errors(value), key=lambda e: [str(p) for p in e.absolute_path]
            )
            problems = problems_from_jsonschema(errors, self._schema) if errors else []
        except RecursionError:
            expected = "arguments nested less deeply (checking them ran out of recursion depth)"
            problems = [ArgumentProblem("", value, expected)]
        if problems:
            raise ToolArgumentError(tool, problems)
        return value
