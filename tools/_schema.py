"""JSON Schema transforms for tool parameters: exported form, decoding form, plain words.

Owns pure functions over JSON Schema documents: :func:`export_schema` (what users and
OpenAI-style clients see: pydantic's auto-generated ``title`` noise removed, the rest kept),
:func:`decoding_schema` (what the grammar is built from: the same schema, but objects that do
not say otherwise accept no extra keys, so a small model cannot invent arguments; lengths are
never narrowed) and :func:`describe_schema` (a schema in words, for error messages). Never
validates values: that is :mod:`tools._arguments`.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

__all__ = [
    "decoding_schema",
    "describe_schema",
    "export_schema",
    "resolve_ref",
    "walk_schemas",
]

_SCHEMA_VALUED = (
    "items",
    "additionalItems",
    "additionalProperties",
    "unevaluatedItems",
    "unevaluatedProperties",
    "contains",
    "propertyNames",
    "not",
    "if",
    "then",
    "else",
)
_LIST_VALUED = ("anyOf", "allOf", "oneOf", "prefixItems")
_MAP_VALUED = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")


def walk_schemas(schema: Any, visit: Callable[[dict[str, Any]], None]) -> None:
    """Call ``visit`` on ``schema`` and on every subschema it contains (in place, depth first).

    Property *names* are never mistaken for keywords: a property called ``title`` survives.
    """
    if not isinstance(schema, dict):
        return
    visit(schema)
    for key in _SCHEMA_VALUED:
        value = schema.get(key)
        if isinstance(value, dict):
            walk_schemas(value, visit)
        elif isinstance(value, list) and key == "items":  # draft-4 tuple form
            for item in value:
                walk_schemas(item, visit)
    for key in _LIST_VALUED:
        value = schema.get(key)
        if isinstance(value, list):
            for item in value:
                walk_schemas(item, visit)
    for key in _MAP_VALUED:
        value = schema.get(key)
        if isinstance(value, dict):
            for item in value.values():
                walk_schemas(item, visit)


def export_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``schema`` without ``title`` keywords (pydantic adds one to every field).

    The root keeps ``type: object`` and gets ``properties: {}`` when it has none, which is what
    OpenAI-style clients and MCP require of a tool's parameters.
    """
    out = copy.deepcopy(schema)

    def drop_title(node: dict[str, Any]) -> None:
        node.pop("title", None)

    walk_schemas(out, drop_title)
    if out.get("type") == "object" and "properties" not in out:
        out["properties"] = {}
    return out


def decoding_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``schema`` to build a decoding grammar from.

    Objects with declared ``properties`` and no ``additionalProperties`` get
    ``additionalProperties: false``, so every value the grammar allows still validates against
    the original. Strings and arrays keep exactly the bounds the schema declares: a grammar
    that capped an unbounded string would cut a valid value short and still look like a
    finished call. What bounds a model that loses its way inside a value is the generation's
    ``max_tokens``; a call cut off there does not parse and is an incomplete call.
    """
    out = copy.deepcopy(schema)

    def close_objects(node: dict[str, Any]) -> None:
        declared = "properties" in node
        open_keys = ("additionalProperties", "patternProperties", "unevaluatedProperties")
        if declared and not any(k in node for k in open_keys):
            node["additionalProperties"] = False

    walk_schemas(out, close_objects)
    return out


def resolve_ref(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    """Follow local ``$ref`` pointers (``#/$defs/Name``) until a concrete schema is reached."""
    seen: set[str] = set()
    while isinstance(schema.get("$ref"), str):
        ref: str = schema["$ref"]
        if ref in seen or not ref.startswith("#/"):
            break
        seen.add(ref)
        node: Any = root
        for part in ref[2:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(node, dict) or part not in node:
                return schema
            node = node[part]
        if not isinstance(node, dict):
            return schema
        schema = {**node, **{k: v for k, v in schema.items() if k != "$ref"}}
    return schema


_TYPE_WORDS = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "array": "a list",
    "object": "an object",
    "null": "null",
}


def _range(schema: dict[str, Any], low: str, high: str, unit: str) -> list[str]:
    lo, hi = schema.get(low), schema.get(high)
    if isinstance(lo, int) and isinstance(hi, int):
        return [f"of {lo} to {hi} {unit}"]
    if isinstance(lo, int):
        return [f"of at least {lo} {unit}"]
    if isinstance(hi, int):
        return [f"of at most {hi} {unit}"]
    return []


def _bounds(schema: dict[str, Any]) -> list[str]:
    words = []
    for key, text in (
        ("minimum", ">= {}"),
        ("exclusiveMinimum", "> {}"),
        ("maximum", "<= {}"),
        ("exclusiveMaximum", "< {}"),
        ("multipleOf", "a multiple of {}"),
    ):
        if key in schema and not isinstance(schema[key], bool):
            words.append(text.format(schema[key]))
    words += _range(schema, "minLength", "maxLength", "characters")
    words += _range(schema, "minItems", "maxItems", "items")
    if "pattern" in schema:
        words.append(f"matching the pattern {schema['pattern']!r}")
    if "format" in schema:
        words.append(f"in {schema['format']} format")
    return words


def describe_schema(schema: dict[str, Any], root: dict[str, Any] | None = None) -> str:
    """A short plain-words reading of ``schema``: ``"an integer >= 1, <= 14"``."""
    root = root if root is not None else schema
    schema = resolve_ref(schema, root)
    if "const" in schema:
        return f"exactly {json.dumps(schema['const'])}"
    if "enum" in schema:
        return "one of " + ", ".join(json.dumps(v) for v in schema["enum"])
    for key in ("anyOf", "oneOf"):
        if isinstance(schema.get(key), list):
            parts = [describe_schema(s, root) for s in schema[key] if isinstance(s, dict)]
            return " or ".join(dict.fromkeys(parts))
    if isinstance(schema.get("allOf"), list) and len(schema["allOf"]) == 1:
        return describe_schema(schema["allOf"][0], root)
    kind = schema.get("type")
    if isinstance(kind, list):
        base = " or ".join(_TYPE_WORDS.get(str(k), str(k)) for k in kind)
    elif isinstance(kind, str):
        base = _TYPE_WORDS.get(kind, kind)
    else:
        base = "a value"
    if kind == "array" and isinstance(schema.get("items"), dict):
        base = f"a list of ({describe_schema(schema['items'], root)})"
    if kind == "object" and isinstance(schema.get("properties"), dict):
        required = set(schema.get("required", []))
        keys = [k + ("" if k in required else "?") for k in schema["properties"]]
        base = "an object with keys " + ", ".join(keys) if keys else "an empty object"
    bounds = _bounds(schema)
    return base + (" " + ", ".join(bounds) if bounds else "")
