"""portable_input and portable_output: schemas Claude, OpenAI and Gemini all accept."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from devmesh.mcp.dialects import check, check_output
from devmesh.mcp.schemas import portable_input, portable_output


class Colour(BaseModel):
    name: Literal["red", "green"] = Field(description="Which colour.")


class Node(BaseModel):
    label: str
    children: list[Node] = []


class Everything(BaseModel):
    """A model that uses every construct pydantic makes that a dialect refuses."""

    colour: Colour | None = Field(default=None, description="An optional nested model.")
    tags: list[str] | None = None
    count: int | str = Field(description="A union that is not just null.")
    homepage: str = Field(json_schema_extra={"format": "uri"}, description="Where.")
    tree: Node | None = None
    extra: dict[str, Any] = {}


def test_an_input_schema_from_every_awkward_construct_breaks_no_dialect_rule() -> None:
    schema = portable_input(Everything.model_json_schema())
    assert check("everything", schema) == []


def test_references_are_inlined_and_their_definitions_dropped() -> None:
    schema = portable_input(Everything.model_json_schema())
    colour = schema["properties"]["colour"]
    assert "$defs" not in schema
    assert colour["type"] == "object"
    assert colour["properties"]["name"]["enum"] == ["red", "green"]


def test_an_optional_field_is_its_plain_type_and_not_required() -> None:
    schema = portable_input(Everything.model_json_schema())
    tags = schema["properties"]["tags"]
    assert tags == {"type": "array", "items": {"type": "string"}}
    assert "tags" not in schema.get("required", [])


def test_descriptions_are_kept_and_an_unsupported_format_moves_into_the_description() -> None:
    schema = portable_input(Everything.model_json_schema())
    assert schema["properties"]["colour"]["description"] == "An optional nested model."
    assert schema["properties"]["homepage"]["description"] == "Where. (uri)"
    assert "format" not in schema["properties"]["homepage"]


def test_a_recursive_model_ends_in_a_plain_object() -> None:
    schema = portable_input(Everything.model_json_schema())
    assert check("everything", schema) == []
    assert "tree" in schema["properties"]


def test_a_schema_that_is_not_an_object_is_wrapped_in_one() -> None:
    schema = portable_input({"anyOf": [{"type": "string"}, {"type": "integer"}]})
    assert schema["type"] == "object"
    assert schema["required"] == ["value"]
    assert check("wrapped", schema) == []


def test_an_output_schema_keeps_nulls_but_loses_references() -> None:
    schema = portable_output(Everything.model_json_schema())
    assert check_output("everything", schema) == []
    tags = schema["properties"]["tags"]
    assert tags["anyOf"] == [{"type": "array", "items": {"type": "string"}}, {"type": "null"}]
    assert "title" not in tags
    assert schema["properties"]["colour"]["anyOf"][0]["type"] == "object"


def test_a_violation_names_the_tool_the_path_and_the_dialect() -> None:
    found = check("ci.list_builds", Everything.model_json_schema())
    seen = {(v.tool, v.dialect, v.path) for v in found}
    assert ("ci.list_builds", "claude", "name") in seen
    assert ("ci.list_builds", "openai", "name") in seen
    assert ("ci.list_builds", "gemini", "$.$defs") in seen
    assert ("ci.list_builds", "gemini", "$.properties.colour.anyOf[0].$ref") in seen
    assert all(str(v).startswith("ci.list_builds: ") for v in found)


def test_a_top_level_union_is_a_violation_for_claude_and_openai() -> None:
    union = {"type": "object", "properties": {}, "anyOf": [{"required": ["a"]}]}
    dialects = {v.dialect for v in check("t", union) if v.path == "$.anyOf"}
    assert {"claude", "openai"} <= dialects


def test_titles_are_left_out_as_they_only_repeat_the_names() -> None:
    for schema in (
        portable_input(Everything.model_json_schema()),
        portable_output(Everything.model_json_schema()),
    ):
        assert [node for node in _schema_nodes(schema) if "title" in node] == []


def _schema_nodes(node: object) -> list[dict[str, object]]:
    """Every schema inside ``node`` (a ``properties`` map is names, not a schema)."""
    if isinstance(node, list):
        return [found for item in node for found in _schema_nodes(item)]
    if not isinstance(node, dict):
        return []
    found = [node]
    for key, value in node.items():
        children = value.values() if key == "properties" and isinstance(value, dict) else [value]
        found += [inner for child in children for inner in _schema_nodes(child)]
    return found
