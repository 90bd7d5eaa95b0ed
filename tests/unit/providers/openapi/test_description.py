"""An OpenAPI description checked and turned into operations: where a bad one is bad,
how operations are named, chosen and described, cycles cut, Swagger 2.0 read."""

from __future__ import annotations

import json
from typing import Any

import jsonschema_rs
import pytest

from devmesh.domain.errors import InvalidInput
from devmesh.providers.openapi import OpenApiConfig, operations_of
from devmesh.providers.openapi.document import check


def described(paths: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"openapi": "3.0.3", "info": {"title": "t", "version": "1"}, "paths": paths, **extra}


def named(document: dict[str, Any], **config: Any) -> dict[str, Any]:
    return {op.name: op for op in operations_of(document, OpenApiConfig(**config))}


def test_a_bad_parameter_is_refused_naming_its_place() -> None:
    bad = described({"/builds/{id}": {"get": {"parameters": [{"name": "id"}], "responses": {}}}})
    with pytest.raises(InvalidInput) as caught:
        check(bad, field="spec")
    assert caught.value.message.startswith("spec: paths./builds/{id}.get.parameters[0]: ")
    assert caught.value.field == "spec"


def test_a_reference_that_does_not_resolve_is_refused_naming_its_place() -> None:
    bad = described(
        {"/a": {"get": {"responses": {"200": {"$ref": "#/components/responses/Nope"}}}}}
    )
    with pytest.raises(InvalidInput) as caught:
        check(bad, field="spec")
    assert "paths./a.get.responses.200: $ref '#/components/responses/Nope' does not resolve" in (
        caught.value.message
    )


def test_a_reference_outside_the_description_is_refused() -> None:
    bad = described({"/a": {"get": {"responses": {"200": {"$ref": "other.yaml#/x"}}}}})
    with pytest.raises(InvalidInput, match="points outside the description"):
        check(bad, field="spec")


def test_something_that_is_not_openapi_is_refused() -> None:
    with pytest.raises(InvalidInput, match=r"not an OpenAPI 3\.0/3\.1 or Swagger 2\.0"):
        check({"asyncapi": "2.0"}, field="spec")


def test_names_come_from_operation_ids_sanitised_and_unique() -> None:
    document = described(
        {
            "/a": {"get": {"operationId": "actions/list-workflow-runs", "responses": {}}},
            "/b": {"get": {"operationId": "getBuild", "responses": {}}},
            "/c": {"get": {"operationId": "get-build", "responses": {}}},
            "/d/{x}": {"get": {"responses": {}}},
        }
    )
    assert list(named(document)) == [
        "actions_list_workflow_runs",
        "get_build",
        "get_build_2",
        "get_d_x",
    ]


def test_by_default_only_get_operations_and_those_listed_are_offered() -> None:
    document = described(
        {
            "/runs": {
                "get": {"operationId": "listRuns", "responses": {}},
                "post": {"operationId": "startRun", "responses": {}},
                "delete": {"operationId": "dropRuns", "responses": {}},
            }
        }
    )
    assert list(named(document)) == ["list_runs"]
    assert list(named(document, operations=["start*"])) == ["list_runs", "start_run"]


def test_tags_narrow_the_methods_offered_and_the_first_tag_is_the_toolset() -> None:
    document = described(
        {
            "/a": {"get": {"operationId": "a", "tags": ["Actions", "ci"], "responses": {}}},
            "/b": {"get": {"operationId": "b", "tags": ["Repos"], "responses": {}}},
        }
    )
    found = named(document, tags=["actions"])
    assert list(found) == ["a"]
    assert found["a"].toolset == "actions"


def test_hints_follow_the_http_method() -> None:
    document = described(
        {"/r": {m: {"operationId": m, "responses": {}} for m in ("get", "post", "put", "delete")}}
    )
    ops = named(document, methods=["get", "post", "put", "delete"])
    hints = {n: (o.read_only, o.destructive, o.idempotent) for n, o in ops.items()}
    assert hints == {
        "get": (True, False, True),
        "post": (False, False, False),
        "put": (False, False, True),
        "delete": (False, True, True),
    }


def test_a_recursive_schema_is_cut_and_nullable_becomes_json_schema() -> None:
    document = described(
        {
            "/nodes": {
                "post": {
                    "operationId": "addNode",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/Node"}}
                        },
                    },
                    "responses": {},
                }
            }
        },
        components={
            "schemas": {
                "Node": {
                    "type": "object",
                    "properties": {
                        "label": {"type": "string", "nullable": True},
                        "children": {
                            "type": "array",
                            "items": {"$ref": "#/components/schemas/Node"},
                        },
                    },
                }
            }
        },
    )
    schema = dict(named(document, methods=["post"])["add_node"].input_schema)
    body = schema["properties"]["body"]
    assert body["properties"]["label"]["type"] == ["string", "null"]
    assert "recursive" in body["properties"]["children"]["items"]["description"]
    assert schema["required"] == ["body"]
    json.dumps(schema)  # finite
    assert jsonschema_rs.validator_for(schema).is_valid({"body": {"label": None, "children": []}})


def test_swagger_2_body_and_form_parameters_become_the_body() -> None:
    document = {
        "swagger": "2.0",
        "info": {"title": "t", "version": "1"},
        "paths": {
            "/jobs/{name}/build": {
                "post": {
                    "operationId": "buildJob",
                    "consumes": ["application/x-www-form-urlencoded"],
                    "parameters": [
                        {"name": "name", "in": "path", "required": True, "type": "string"},
                        {"name": "delay", "in": "formData", "type": "integer", "required": True},
                    ],
                    "responses": {"201": {"description": "queued"}},
                }
            }
        },
    }
    check(document, field="spec")
    schema = dict(named(document, methods=["post"])["build_job"].input_schema)
    assert schema["properties"]["name"] == {"type": "string"}
    assert schema["properties"]["body"]["properties"] == {"delay": {"type": "integer"}}
    assert schema["required"] == ["body", "name"]


def test_a_description_with_no_security_scheme_sends_a_token_as_bearer() -> None:
    document = described({"/a": {"get": {"operationId": "a", "responses": {}}}})
    assert named(document)["a"].name == "a"  # no scheme is not an error
    with pytest.raises(InvalidInput) as caught:
        named(document, security_scheme="nope")
    assert caught.value.field == "config.security_scheme"
