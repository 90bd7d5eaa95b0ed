"""What each model API's function calling accepts of a tool, as small rule sets.

MCP clients hand a server's tools to their model's API; a tool the API refuses
is dropped, or fails every request. Each dialect below lists the documented
constraints on a tool's name and input schema, with the source in a comment.
``check`` returns every violation, naming the tool, the path in the schema and
the dialect, so a test (or an operator) sees at once what to fix.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["DIALECTS", "Violation", "check", "check_output"]

Schema = Mapping[str, Any]


@dataclass(frozen=True)
class Violation:
    tool: str
    dialect: str
    path: str
    rule: str

    def __str__(self) -> str:
        return f"{self.tool}: {self.dialect}: {self.path}: {self.rule}"


Rule = Callable[[str, Schema], Iterator[tuple[str, str]]]


def _nodes(schema: Any, path: str = "$") -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Every sub-schema with its path, e.g. ``$.properties.status.anyOf[0]``."""
    if not isinstance(schema, Mapping):
        return
    yield path, schema
    for key in ("properties", "$defs", "definitions"):
        children = schema.get(key)
        if isinstance(children, Mapping):
            for name, child in children.items():
                yield from _nodes(child, f"{path}.{key}.{name}")
    for key in ("items", "additionalProperties", "not"):
        if isinstance(schema.get(key), Mapping):
            yield from _nodes(schema[key], f"{path}.{key}")
    for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
        options = schema.get(key)
        if isinstance(options, list):
            for index, option in enumerate(options):
                yield from _nodes(option, f"{path}.{key}[{index}]")


# --- shared rules ---------------------------------------------------------------

_STRICT_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


def _name_strict(name: str, schema: Schema) -> Iterator[tuple[str, str]]:
    if not _STRICT_NAME.match(name):
        yield "name", f"name must match {_STRICT_NAME.pattern}"


def _object_top_level(name: str, schema: Schema) -> Iterator[tuple[str, str]]:
    if schema.get("type") != "object":
        yield "$.type", "the top level must be type: object"
    if not isinstance(schema.get("properties"), Mapping):
        yield "$.properties", "the top level must have properties (may be empty)"


def _no_top_level_combinators(name: str, schema: Schema) -> Iterator[tuple[str, str]]:
    for key in ("oneOf", "anyOf", "allOf", "enum", "not"):
        if key in schema:
            yield f"$.{key}", f"no {key} at the top level"


def _arrays_have_items(name: str, schema: Schema) -> Iterator[tuple[str, str]]:
    for path, node in _nodes(schema):
        if node.get("type") == "array" and "items" not in node:
            yield path, "an array needs items"


# --- Claude ---------------------------------------------------------------------
# Claude's tool use docs (docs.anthropic.com, "Define tools"): name matches
# ^[a-zA-Z0-9_-]{1,64}$; input_schema is a JSON Schema object, and oneOf, allOf or
# anyOf at its top level are not supported. Claude Desktop refuses the whole tool
# list on one bad name; Claude Code drops every tool of a server when one input
# schema's top level is not an object.
CLAUDE: tuple[Rule, ...] = (_name_strict, _object_top_level, _no_top_level_combinators)

# --- OpenAI ---------------------------------------------------------------------
# OpenAI's function calling guide and API reference (platform.openai.com, "Function
# calling"; chat.completions tools[].function): name "must be a-z, A-Z, 0-9, or
# contain underscores and dashes, with a maximum length of 64"; parameters must be
# type "object" and not oneOf/anyOf/allOf/enum/not at the top level (the API's
# invalid_function_parameters error); arrays must declare items. Codex and Copilot
# CLI send MCP tools through this API.
OPENAI: tuple[Rule, ...] = (
    _name_strict,
    _object_top_level,
    _no_top_level_combinators,
    _arrays_have_items,
)

# --- Gemini ---------------------------------------------------------------------
# Gemini API reference (ai.google.dev, FunctionDeclaration and Schema): name "must
# start with a letter or an underscore. Must be a-z, A-Z, 0-9, or contain
# underscores, colons, dots, and dashes, with a maximum length of 64"; parameters
# are a Schema object, "a select subset of an OpenAPI 3.0 schema object": the
# keywords below, one type per node (no "null"), enum for strings, formats per type.
# Gemini CLI skips tools with nodes without a type (google-gemini/gemini-cli#5694)
# and the API refuses $ref/$defs ("reference to undefined schema",
# google-gemini/gemini-cli#13326) and type beside anyOf.
_GEMINI_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_.:-]{0,63}$")
_GEMINI_KEYWORDS = frozenset(
    {
        "type",
        "format",
        "title",
        "description",
        "nullable",
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
        "example",
        "anyOf",
        "propertyOrdering",
        "default",
        "items",
        "minimum",
        "maximum",
    }
)
_GEMINI_TYPES = frozenset({"string", "number", "integer", "boolean", "array", "object"})
_GEMINI_FORMATS = {
    "string": {"enum", "date-time"},
    "number": {"float", "double"},
    "integer": {"int32", "int64"},
}


def _gemini_name(name: str, schema: Schema) -> Iterator[tuple[str, str]]:
    if not _GEMINI_NAME.match(name):
        yield "name", f"name must match {_GEMINI_NAME.pattern}"


def _gemini_nodes(name: str, schema: Schema) -> Iterator[tuple[str, str]]:
    for path, node in _nodes(schema):
        for key in node:
            if key not in _GEMINI_KEYWORDS:
                yield f"{path}.{key}", f"{key} is not a keyword of Gemini's Schema"
        kind = node.get("type")
        if "anyOf" in node:
            if kind is not None:
                yield f"{path}.type", "type beside anyOf"
        elif kind is None:
            yield f"{path}.type", "every schema needs a type"
        elif kind not in _GEMINI_TYPES:
            yield f"{path}.type", f"type must be one of {sorted(_GEMINI_TYPES)}, not {kind!r}"
        enum = node.get("enum")
        if enum is not None and (kind != "string" or not all(isinstance(v, str) for v in enum)):
            yield f"{path}.enum", "enums must be strings, with type: string"
        fmt = node.get("format")
        if fmt is not None and fmt not in _GEMINI_FORMATS.get(str(kind), set()):
            yield f"{path}.format", f"format {fmt!r} is not supported for type {kind!r}"
        if kind == "array" and "items" not in node:
            yield path, "an array needs items"


GEMINI: tuple[Rule, ...] = (_gemini_name, _object_top_level, _gemini_nodes)

DIALECTS: Mapping[str, tuple[Rule, ...]] = {"claude": CLAUDE, "openai": OPENAI, "gemini": GEMINI}


def check(name: str, input_schema: Schema) -> list[Violation]:
    """Every way a tool's name and input schema break a dialect's rules."""
    return [
        Violation(tool=name, dialect=dialect, path=path, rule=rule_text)
        for dialect, rules in DIALECTS.items()
        for rule in rules
        for path, rule_text in rule(name, input_schema)
    ]


def check_output(name: str, output_schema: Schema) -> list[Violation]:
    """Output schemas reach no model API, but clients validate results against them:
    the structural rules hold (an object at the top, no union there, no $ref)."""
    found = [
        Violation(tool=name, dialect="mcp-output", path=path, rule=text)
        for rule in (_object_top_level, _no_top_level_combinators)
        for path, text in rule(name, output_schema)
    ]
    found += [
        Violation(tool=name, dialect="mcp-output", path=f"{path}.{key}", rule=f"no {key}")
        for path, node in _nodes(output_schema)
        for key in ("$ref", "$defs")
        if key in node
    ]
    return found
