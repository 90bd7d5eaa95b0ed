"""OpenAPI schemas as plain JSON Schema: references inlined, cycles cut, 3.0 and
Swagger 2.0 dialects turned into what JSON Schema validators and agents read.

A reference met again inside its own expansion (a tree of comments) becomes an open
schema that says so; past ``max_depth`` nesting, schemas are left open too, so no
description can make an operation's schema explode. Only what validation or an agent
needs is kept: examples, XML hints and discriminators are dropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from devmesh.providers.openapi.document import Version, pointer

__all__ = ["Resolver"]

_DROPPED = frozenset(
    {"example", "examples", "xml", "externalDocs", "discriminator", "x-github", "x-nullable"}
)
_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")
_SCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
_SCHEMA_ONES = (
    "items",
    "additionalProperties",
    "not",
    "if",
    "then",
    "else",
    "contains",
    "propertyNames",
    "unevaluatedProperties",
    "unevaluatedItems",
)


class Resolver:
    def __init__(self, document: Mapping[str, Any], version: Version) -> None:
        self._document = document
        self._version = version

    def deref(self, node: Any) -> Any:
        """``node`` with a top-level ``$ref`` followed (parameters, bodies, responses)."""
        seen: set[str] = set()
        while isinstance(node, Mapping) and isinstance(ref := node.get("$ref"), str):
            if ref in seen:
                return {}
            seen.add(ref)
            node = pointer(self._document, ref) or {}
        return node

    def schema(self, node: Any, *, max_depth: int = 32) -> dict[str, Any]:
        return self._schema(node, (), max_depth)

    def _schema(self, node: Any, refs: tuple[str, ...], depth: int) -> dict[str, Any]:
        if not isinstance(node, Mapping):
            return {}
        ref = node.get("$ref")
        if isinstance(ref, str):
            name = ref.rsplit("/", 1)[-1]
            if ref in refs:
                return {"description": f"A {name} (recursive; not expanded again)."}
            if depth <= 0:
                return {"description": f"A {name}."}
            return self._schema(pointer(self._document, ref), (*refs, ref), depth - 1)
        if depth <= 0:
            return {}
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key in _DROPPED or key == "nullable":
                continue
            if key in _SCHEMA_ONES and isinstance(value, Mapping):
                out[key] = self._schema(value, refs, depth - 1)
            elif key in _SCHEMA_LISTS and isinstance(value, list):
                out[key] = [self._schema(item, refs, depth - 1) for item in value]
            elif key in _SCHEMA_MAPS and isinstance(value, Mapping):
                out[key] = {name: self._schema(sub, refs, depth - 1) for name, sub in value.items()}
            else:
                out[key] = value
        if self._version != "3.1":
            self._older_dialect(node, out)
        # Descriptions often leave the type to be guessed; function-calling dialects
        # (Gemini's) want it said.
        for key in ("allOf", "anyOf", "oneOf"):
            if isinstance(out.get(key), list) and all(_constraint(item) for item in out[key]):
                # "one of these fields is required": the API says so if it matters, and
                # function-calling dialects take no typeless branches.
                del out[key]
        if "type" not in out:
            if "properties" in out:
                out["type"] = "object"
            elif "items" in out:
                out["type"] = "array"
        return out

    def _older_dialect(self, node: Mapping[str, Any], out: dict[str, Any]) -> None:
        nullable = node.get("nullable") is True or node.get("x-nullable") is True
        if nullable:
            kind = out.get("type")
            if isinstance(kind, str):
                out["type"] = [kind, "null"]
            elif kind is None and any(k in out for k in ("allOf", "anyOf", "oneOf")):
                out.update({"anyOf": [dict(out), {"type": "null"}]})
                for key in ("allOf", "oneOf"):
                    out.pop(key, None)
        # Draft 4 booleans: exclusiveMinimum: true qualifies minimum.
        for bound, limit in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
            if out.get(bound) is True and limit in out:
                out[bound] = out.pop(limit)
            elif isinstance(out.get(bound), bool):
                out.pop(bound)
        if out.get("type") == "file":  # Swagger 2.0 uploads
            out["type"] = "string"
            out["format"] = "binary"


def _constraint(node: Any) -> bool:
    """A branch that only constrains (``{"required": [...]}``), describing no value."""
    return isinstance(node, Mapping) and set(node) <= {"required", "description", "title"}
