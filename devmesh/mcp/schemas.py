"""Tool schemas every MCP client's model API accepts: one step every tool passes through.

Pydantic writes good JSON Schema (draft 2020-12), but the function-calling
dialects behind MCP clients take subsets of it, and a client that meets a schema
its model API refuses drops the tool, or the whole server:

* Claude (API, Desktop, Code): the top level must be ``type: object``, without
  ``oneOf``/``anyOf``/``allOf``.
* OpenAI (API, Codex): the same, and arrays need ``items``.
* Gemini (API, Gemini CLI): an OpenAPI 3.0 subset: no ``$ref``/``$defs``, one
  ``type`` per node and no ``null``, ``anyOf`` never beside ``type``, enums are
  strings, a short list of formats, no ``additionalProperties``.

``portable_input`` rewrites an input schema into the intersection, keeping its
meaning for the model (descriptions, defaults, bounds, enums); the server still
validates arguments with the operation's own Pydantic model, so what the rewrite
loosens (unknown properties, an explicit ``null`` for an optional field) is
checked there, with an error naming the field. ``portable_output`` does the
structural part only: no client passes an output schema to a model, but clients
validate ``structuredContent`` against it (the Python SDK, the Inspector), so
nullable values stay nullable, as ``anyOf: [X, {type: null}]`` below the top.

Both drop ``title``: Pydantic titles every property with its name in words ("Build
Id" for ``build_id``) and every nested model with its class name, which tells a model
nothing the key does not, and costs about a fifth of a tool list's tokens.

``devmesh.mcp.dialects`` holds the rule sets this is checked against.
"""

from __future__ import annotations

import copy
from typing import Any

__all__ = ["portable_input", "portable_output"]

Schema = dict[str, Any]

# Keywords the Gemini Schema object has (see devmesh.mcp.dialects); the others are
# dropped from input schemas. Descriptions and defaults are among those kept.
_INPUT_KEYWORDS = frozenset(
    {
        "type",
        "format",
        "description",
        "enum",
        "maxItems",
        "minItems",
        "properties",
        "required",
        "minProperties",
        "maxProperties",
        "minLength",
        "maxLength",
        "pattern",
        "anyOf",
        "default",
        "items",
        "minimum",
        "maximum",
    }
)
_INPUT_FORMATS = {"string": {"enum", "date-time"}, "number": {"float", "double"}}
_INPUT_FORMATS["integer"] = {"int32", "int64"}
# Keywords about a value rather than its shape: they stay beside a nullable's anyOf.
_ANNOTATIONS = frozenset({"description", "default", "examples", "deprecated"})


def portable_input(schema: Schema) -> Schema:
    """An input schema in the subset that Claude, OpenAI and Gemini all accept."""
    inlined = _inline(schema, schema.get("$defs", {}), expanding=frozenset())
    return _top_level(_input_node(inlined))


def portable_output(schema: Schema) -> Schema:
    """An output schema without references or a top-level union; nulls kept."""
    inlined = _inline(schema, schema.get("$defs", {}), expanding=frozenset())
    return _top_level(_output_node(inlined))


def _inline(node: Any, defs: dict[str, Any], *, expanding: frozenset[str]) -> Any:
    """Replace every local ``#/$defs/X`` reference by a copy of X."""
    if isinstance(node, list):
        return [_inline(item, defs, expanding=expanding) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: value for key, value in node.items() if key != "$defs"}
    ref = node.pop("$ref", None)
    if isinstance(ref, str):
        name = ref.removeprefix("#/$defs/")
        if name in expanding or name == ref or name not in defs:
            # A model that contains itself, or a reference we cannot follow: an
            # object of any shape is the most a portable schema can say.
            target: dict[str, Any] = {"type": "object"}
        else:
            target = _inline(copy.deepcopy(defs[name]), defs, expanding=expanding | {name})
        # Siblings of $ref (a description, a default) describe this use: they win.
        node = {**target, **node}
    return {key: _inline(value, defs, expanding=expanding) for key, value in node.items()}


def _top_level(schema: Schema) -> Schema:
    """``type: object`` with ``properties``, and no union at the top."""
    if schema.get("type") != "object" or any(k in schema for k in ("anyOf", "oneOf", "allOf")):
        # Not an object: wrap it, so the tool still has a valid (if looser) schema.
        return {
            "type": "object",
            "properties": {"value": schema},
            "required": ["value"],
        }
    return {**schema, "properties": schema.get("properties", {})}


def _merge_all_of(node: Schema) -> Schema:
    parts = node.pop("allOf", None)
    if not isinstance(parts, list):
        return node
    merged: Schema = {}
    for part in parts:
        if isinstance(part, dict):
            merged.update(part)
    return {**merged, **node}


def _split_null(node: Schema) -> tuple[Schema, bool]:
    """``X | None`` written any of pydantic's ways, as ``(X, nullable)``."""
    for key in ("anyOf", "oneOf"):
        options = node.get(key)
        if not isinstance(options, list):
            continue
        rest = [o for o in options if not (isinstance(o, dict) and o.get("type") == "null")]
        if len(rest) == len(options):
            continue
        others = {k: v for k, v in node.items() if k != key}
        if len(rest) == 1 and isinstance(rest[0], dict):
            return {**rest[0], **others}, True
        return {**others, "anyOf": rest}, True
    types = node.get("type")
    if isinstance(types, list) and "null" in types:
        rest_types = [t for t in types if t != "null"]
        one = rest_types[0] if len(rest_types) == 1 else rest_types
        return {**node, "type": one}, True
    return node, False


def _input_node(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    node = _merge_all_of(dict(node))
    node, nullable = _split_null(node)
    if nullable and node.get("default", ...) is None:
        # Leaving the field out means null; a null default says nothing more.
        del node["default"]
    if "oneOf" in node:
        node["anyOf"] = node.pop("oneOf")
    if "const" in node:
        node.setdefault("enum", [node.pop("const")])
    if isinstance(node.get("type"), list):
        # Several types: one anyOf option each (Gemini takes one type per node).
        node["anyOf"] = [{"type": t} for t in node.pop("type")]
    if "anyOf" in node and "type" in node:
        shared = node.pop("type")
        node["anyOf"] = [
            {"type": shared, **option} if isinstance(option, dict) else option
            for option in node["anyOf"]
        ]
    enum = node.get("enum")
    if isinstance(enum, list) and all(isinstance(value, str) for value in enum):
        node["type"] = "string"
    fmt = node.get("format")
    if fmt is not None and fmt not in _INPUT_FORMATS.get(node.get("type", ""), set()):
        # Gemini knows few formats; the model still reads what is expected.
        del node["format"]
        described = node.get("description")
        node["description"] = f"{described} ({fmt})" if described else f"Format: {fmt}."
    out: Schema = {}
    for key, value in node.items():
        if key not in _INPUT_KEYWORDS:
            continue
        if key == "properties" and isinstance(value, dict):
            out[key] = {name: _input_node(sub) for name, sub in value.items()}
        elif key in ("items", "anyOf"):
            out[key] = (
                [_input_node(sub) for sub in value]
                if isinstance(value, list)
                else _input_node(value)
            )
        else:
            out[key] = value
    if out.get("type") == "array" and "items" not in out:
        out["items"] = {}
    return out


def _output_node(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    node = _merge_all_of(dict(node))
    node, nullable = _split_null(node)
    if nullable:
        # One type per branch: what the Inspector's portability check asks for, and
        # what a client mapping schemas onto a one-type dialect can still read.
        annotations = {k: v for k, v in node.items() if k in _ANNOTATIONS}
        value = {k: v for k, v in node.items() if k not in _ANNOTATIONS and k != "title"}
        return {**annotations, "anyOf": [_output_node(value), {"type": "null"}]}
    out: Schema = {}
    for key, value in node.items():
        if key == "title":
            continue
        if key == "properties" and isinstance(value, dict):
            out[key] = {name: _output_node(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            out[key] = _output_node(value)
        elif key in ("anyOf", "oneOf") and isinstance(value, list):
            out[key] = [_output_node(sub) for sub in value]
        else:
            out[key] = value
    return out
