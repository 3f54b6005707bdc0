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
from collections.abc import Callable, Iterator
from typing import Any

from agentcore.tools._formats import FORMAT_EXAMPLES

__all__ = [
    "decoding_schema",
    "describe_schema",
    "export_schema",
    "inline_root_ref",
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
_OPEN_KEYS = ("additionalProperties", "patternProperties", "unevaluatedProperties")


def _subschemas(schema: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(keyword, subschema)`` for every subschema directly inside ``schema``."""
    for key in _SCHEMA_VALUED:
        value = schema.get(key)
        if isinstance(value, dict):
            yield key, value
        elif isinstance(value, list) and key == "items":  # draft-4 tuple form
            yield from ((key, item) for item in value if isinstance(item, dict))
    for key in _LIST_VALUED:
        value = schema.get(key)
        if isinstance(value, list):
            yield from ((key, item) for item in value if isinstance(item, dict))
    for key in _MAP_VALUED:
        value = schema.get(key)
        if isinstance(value, dict):
            yield from ((key, item) for item in value.values() if isinstance(item, dict))


def walk_schemas(schema: Any, visit: Callable[[dict[str, Any]], None]) -> None:
    """Call ``visit`` on ``schema`` and on every subschema it contains (in place, depth first).

    Property *names* are never mistaken for keywords: a property called ``title`` survives.
    """
    if not isinstance(schema, dict):
        return
    visit(schema)
    for _key, sub in _subschemas(schema):
        walk_schemas(sub, visit)


def export_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``schema`` without ``title`` keywords (pydantic adds one to every field).

    The root keeps ``type: object`` and gets ``properties: {}`` when it has none, which is what
    OpenAI-style clients and MCP require of a tool's parameters; it then also says
    ``additionalProperties: true`` (what a root without properties means in JSON Schema), so
    that it stays free-form and is not read as a tool that takes no arguments.
    """
    out = copy.deepcopy(schema)

    def drop_title(node: dict[str, Any]) -> None:
        node.pop("title", None)

    walk_schemas(out, drop_title)
    if out.get("type") == "object" and "properties" not in out:
        out["properties"] = {}
        if not any(k in out for k in _OPEN_KEYS):
            out["additionalProperties"] = True
    return out


_COMPOSITION = ("allOf", "anyOf", "oneOf")
# Subschemas that hold for the same instance as their parent (keys of one are keys of all),
# and subschemas whose closing would widen what the parent accepts (never closed).
_CONJUNCTIVE = ("allOf", "then", "else", "dependentSchemas")
_NEGATED = ("not", "if")


def _pointer(ref: str, root: dict[str, Any]) -> dict[str, Any] | None:
    """The subschema a local ``$ref`` (``#``, ``#/$defs/Name``) points at, or ``None``."""
    if ref == "#":
        return root
    if not ref.startswith("#/"):
        return None
    node: Any = root
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node if isinstance(node, dict) else None


def _named_keys(
    schema: dict[str, Any], root: dict[str, Any], skip: str = "", seen: frozenset[str] = frozenset()
) -> set[str]:
    """Every key an object valid under ``schema`` may need at this level: declared, required
    or dependent keys of the schema, of its composition branches and of what it refers to."""
    keys: set[str] = set()
    if isinstance(schema.get("properties"), dict):
        keys.update(schema["properties"])
    if isinstance(schema.get("required"), list):
        keys.update(k for k in schema["required"] if isinstance(k, str))
    dependent = schema.get("dependentRequired")
    if isinstance(dependent, dict):
        for key, needs in dependent.items():
            keys.add(key)
            if isinstance(needs, list):
                keys.update(k for k in needs if isinstance(k, str))
    if isinstance(schema.get("dependentSchemas"), dict):
        keys.update(schema["dependentSchemas"])
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref not in seen:
        target = _pointer(ref, root)
        if target is not None:
            keys |= _named_keys(target, root, seen=seen | {ref})
    for keyword, sub in _subschemas(schema):
        if keyword != skip and (keyword in _COMPOSITION or keyword in _CONJUNCTIVE):
            keys |= _named_keys(sub, root, seen=seen)
    return keys


def _object_contexts(root: dict[str, Any]) -> dict[int, set[str]]:
    """For every subschema (by ``id``): the keys that other schemas applying to the same
    instance may need (an ``allOf`` sibling's required key, the parent's properties, ...).

    Closing a composition branch to its own properties would make such keys impossible; it
    is closed to its own keys plus these instead. A ``$ref`` target collects the contexts of
    every place that refers to it.
    """
    contexts: dict[int, set[str]] = {}

    def visit(node: dict[str, Any], context: set[str]) -> None:
        known = contexts.get(id(node))
        if known is not None and context <= known:
            return  # seen with at least these keys (also ends recursive $refs)
        context = context | (known or set())
        contexts[id(node)] = context
        together = context | _named_keys(node, root)  # what the same instance may carry
        ref = node.get("$ref")
        target = _pointer(ref, root) if isinstance(ref, str) else None
        if target is not None:
            visit(target, together)
        for keyword, sub in _subschemas(node):
            if keyword in _NEGATED:
                continue
            if keyword in _CONJUNCTIVE:
                visit(sub, together)
            elif keyword in ("anyOf", "oneOf"):  # not the keys of the other branches
                visit(sub, context | _named_keys(node, root, skip=keyword))
            else:  # a property, an item, a definition: a value of its own
                visit(sub, set())

    visit(root, set())
    return contexts


def decoding_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``schema`` to build a decoding grammar from.

    Objects with declared ``properties`` and no ``additionalProperties`` accept no other keys
    (``additionalProperties: false``), so a small model cannot invent arguments. Keys that the
    object's composition branches, its ``required`` list or the schemas it is combined with
    (``allOf`` siblings, the parent of an ``anyOf`` branch) need stay allowed, declared with
    the empty schema: closing only narrows what the original accepts, and a composition that
    the JSON Schema can satisfy stays satisfiable.

    Strings and arrays keep exactly the bounds the schema declares: a grammar that capped an
    unbounded string would cut a valid value short and still look like a finished call. What
    bounds a model that loses its way inside a value is the generation's ``max_tokens``; a
    call cut off there does not parse and is an incomplete call.
    """
    out = copy.deepcopy(schema)
    contexts = _object_contexts(out)

    def close(node: dict[str, Any]) -> None:
        props = node.get("properties")
        if isinstance(props, dict) and not any(k in node for k in _OPEN_KEYS):
            for key in sorted(_named_keys(node, out) | contexts.get(id(node), set())):
                props.setdefault(key, {})
            node["additionalProperties"] = False
        for keyword, sub in _subschemas(node):
            if keyword not in _NEGATED:
                close(sub)

    close(out)
    return out


def resolve_ref(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    """Follow local ``$ref`` pointers (``#/$defs/Name``) until a concrete schema is reached."""
    seen: set[str] = set()
    while isinstance(schema.get("$ref"), str):
        ref: str = schema["$ref"]
        node = _pointer(ref, root) if ref not in seen else None
        if node is None:
            break
        seen.add(ref)
        schema = {**node, **{k: v for k, v in schema.items() if k != "$ref"}}
    return schema


def inline_root_ref(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with a root ``$ref`` (and no ``type`` beside it) replaced by what it points
    at, ``$defs`` kept.

    Pydantic writes a self-referential model (``friends: list["Person"]``) as
    ``{"$ref": "#/$defs/Person", "$defs": {...}}``, but a tool's parameters must be an object
    schema at the root. Inner references keep pointing into the kept ``$defs``.
    """
    if "type" in schema or not isinstance(schema.get("$ref"), str):
        return schema
    return resolve_ref(schema, schema)


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


_DRAFT4_EXCLUSIVE = {"minimum": "exclusiveMinimum", "maximum": "exclusiveMaximum"}


def _count(n: Any, unit: str) -> str:
    return f"{n} {unit}" + ("" if n == 1 else "s")


def _bounds(schema: dict[str, Any], root: dict[str, Any], depth: int) -> list[str]:
    words = []
    for key, text in (
        ("minimum", ">= {}"),
        ("exclusiveMinimum", "> {}"),
        ("maximum", "<= {}"),
        ("exclusiveMaximum", "< {}"),
        ("multipleOf", "a multiple of {}"),
    ):
        if key in schema and not isinstance(schema[key], bool):
            if schema.get(_DRAFT4_EXCLUSIVE.get(key, "")) is True:
                text = text.replace("=", "")
            words.append(text.format(schema[key]))
    words += _range(schema, "minLength", "maxLength", "characters")
    words += _range(schema, "minItems", "maxItems", "items")
    if isinstance(schema.get("minProperties"), int):
        words.append(f"with at least {_count(schema['minProperties'], 'key')}")
    if isinstance(schema.get("maxProperties"), int):
        words.append(f"with at most {_count(schema['maxProperties'], 'key')}")
    if schema.get("uniqueItems") is True:
        words.append("with no repeated items")
    if "pattern" in schema:
        words.append(f"matching the pattern {schema['pattern']!r}")
    if "format" in schema:
        example = FORMAT_EXAMPLES.get(schema["format"])
        hint = f" (e.g. {json.dumps(example)})" if example else ""
        words.append(f"in {schema['format']} format{hint}")
    if isinstance(schema.get("not"), dict):
        words.append(f"but not {_describe(schema['not'], root, depth + 1)}")
    return words


_MAX_DEPTH = 6  # nesting read out in words; deeper (or recursive) schemas are "a value"


def describe_schema(schema: dict[str, Any], root: dict[str, Any] | None = None) -> str:
    """A short plain-words reading of ``schema``: ``"an integer >= 1, <= 14"``."""
    return _describe(schema, root if root is not None else schema, 0)


def _describe(schema: dict[str, Any], root: dict[str, Any], depth: int) -> str:
    if depth > _MAX_DEPTH:
        return "a value"
    schema = resolve_ref(schema, root)
    if "const" in schema:
        return f"exactly {json.dumps(schema['const'])}"
    if "enum" in schema:
        return "one of " + ", ".join(json.dumps(v) for v in schema["enum"])
    for key in ("anyOf", "oneOf"):
        if isinstance(schema.get(key), list):
            parts = [_describe(s, root, depth + 1) for s in schema[key] if isinstance(s, dict)]
            return " or ".join(dict.fromkeys(parts))
    if isinstance(schema.get("allOf"), list) and len(schema["allOf"]) == 1:
        return _describe(schema["allOf"][0], root, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        base = " or ".join(_TYPE_WORDS.get(str(k), str(k)) for k in kind)
    elif isinstance(kind, str):
        base = _TYPE_WORDS.get(kind, kind)
    else:
        base = "a value"
    required = [k for k in schema.get("required", []) if isinstance(k, str)]
    if kind == "array" and isinstance(schema.get("items"), dict):
        base = f"a list of ({_describe(schema['items'], root, depth + 1)})"
    if kind == "object" and isinstance(schema.get("properties"), dict):
        keys = [k + ("" if k in required else "?") for k in schema["properties"]]
        base = "an object with keys " + ", ".join(keys) if keys else "an empty object"
    elif kind in (None, "object") and required:  # e.g. an anyOf branch that names keys
        base = "an object with " + ("key " if len(required) == 1 else "keys ") + ", ".join(required)
    bounds = _bounds(schema, root, depth)
    return base + (" " + ", ".join(bounds) if bounds else "")
