"""A small description served by a test server on loopback: registered from its URL,
every parameter style reaches the server as the description says, answers come back
bounded, and a bad description or a refused address is a 422 naming the field."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from mcp import Client
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from devmesh.app import Services, open_services
from devmesh.config import Settings
from devmesh.domain.errors import DevMeshError, InvalidInput
from devmesh.domain.models import Credentials, Tenant
from devmesh.mcp.server import Context, build_server
from devmesh.tools.models import ToolCreate, ToolUpdate
from tests.support.http import bearer
from tests.support.standin import listening_socket

pytestmark = pytest.mark.anyio

ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
TAGS = {"name": "tag", "in": "query", "schema": {"type": "array", "items": {"type": "string"}}}
BUILD = {"$ref": "#/components/schemas/Build"}
FORM = {"type": "object", "properties": {"branch": {"type": "string"}}}
SPEC: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {"title": "echo", "version": "1"},
    "security": [{"key": []}],
    "components": {
        "securitySchemes": {"key": {"type": "apiKey", "in": "header", "name": "X-Api-Key"}},
        "schemas": {
            "Build": {
                "type": "object",
                "required": ["branch"],
                "properties": {"branch": {"type": "string"}, "count": {"type": "integer"}},
            }
        },
    },
    "paths": {
        "/builds/{id}": {
            "parameters": [ID],
            "get": {
                "operationId": "getBuild",
                "summary": "One build.",
                "parameters": [
                    TAGS,
                    {
                        "name": "ids", "in": "query", "explode": False,
                        "schema": {"type": "array", "items": {"type": "integer"}},
                    },
                    {
                        "name": "filter", "in": "query", "style": "deepObject",
                        "schema": {"type": "object", "additionalProperties": {"type": "string"}},
                    },
                    {"name": "X-Trace", "in": "header", "schema": {"type": "string"}},
                ],
                "responses": {"200": {"description": "ok"}},
            },
        },
        "/builds": {
            "post": {
                "operationId": "startBuild",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": BUILD}},
                },
                "responses": {"201": {"description": "started"}},
            },
            "put": {
                "operationId": "formBuild",
                "requestBody": {
                    "content": {
                        "application/x-www-form-urlencoded": {"schema": FORM}
                    }
                },
                "responses": {"200": {"description": "ok"}},
            },
        },
        "/log": {"get": {"operationId": "getLog", "responses": {"200": {"description": "text"}}}},
    },
}  # fmt: skip


async def _echo(request: Request) -> Response:
    return JSONResponse(
        {
            "method": request.method,
            "path": request.scope["raw_path"].decode(),
            "query": list(request.query_params.multi_items()),
            "trace": request.headers.get("x-trace"),
            "key": request.headers.get("x-api-key"),
            "type": request.headers.get("content-type"),
            "body": (await request.body()).decode(),
        }
    )


async def _spec(request: Request) -> Response:
    return JSONResponse(SPEC)


async def _missing(request: Request) -> Response:
    # An upstream that echoes the request URL, API key and all, in its error.
    return JSONResponse({"message": f"nothing at {request.url}"}, status_code=404)


async def _log(request: Request) -> Response:
    return PlainTextResponse("line\n" * 50_000)


ECHO = Starlette(
    routes=[
        Route("/spec.json", _spec),
        Route("/bad.json", lambda r: JSONResponse({**SPEC, "paths": {"/x": {"get": {}}}})),
        Route("/builds/{id:path}", _echo),
        Route("/builds", _echo, methods=["POST", "PUT"]),
        Route("/log", _log),
        Route("/missing", _missing),
    ]
)  # fmt: skip


@pytest.fixture(scope="module")
async def echo() -> AsyncIterator[str]:
    """The echo server in this process, on a loopback port the kernel picks."""
    sock = listening_socket()
    server = uvicorn.Server(uvicorn.Config(ECHO, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=10)


async def registered(services: Services, echo: str, **config: Any) -> Tenant:
    tenant, _ = await services.tenants.create_tenant(f"t-{uuid.uuid4().hex[:8]}")
    tool = await services.tools.register_tool(
        tenant,
        ToolCreate(
            name="echo",
            provider="openapi",
            base_url=echo,  # type: ignore[arg-type]
            config={"spec_url": f"{echo}/spec.json", **config},
        ),
    )
    await services.tools.set_credentials(
        tenant, tool.id, Credentials(type="api_key", api_key="k-123")
    )
    return tenant


async def test_path_query_arrays_deep_objects_and_headers_reach_the_server(
    services: Services, echo: str
) -> None:
    tenant = await registered(services, echo)
    result = await services.tools.execute(
        tenant,
        "echo",
        "get_build",
        {
            "id": "a/b c",
            "tag": ["x", "y"],
            "ids": [1, 2],
            "filter": {"state": "ok"},
            "X-Trace": "t1",
        },
    )
    seen = result["body"]
    assert result["status"] == 200
    assert seen["path"] == "/builds/a%2Fb%20c"  # one segment, as a path parameter is
    assert seen["query"] == [["tag", "x"], ["tag", "y"], ["ids", "1,2"], ["filter[state]", "ok"]]
    assert (seen["trace"], seen["key"]) == ("t1", "k-123")


async def test_a_json_body_and_a_form_body_are_sent_as_the_description_says(
    services: Services, echo: str
) -> None:
    tenant = await registered(services, echo, operations=["startBuild", "formBuild"])
    posted = await services.tools.execute(
        tenant, "echo", "start_build", {"body": {"branch": "main", "count": 2}}
    )
    put = await services.tools.execute(tenant, "echo", "form_build", {"body": {"branch": "dev"}})
    assert posted["body"]["type"] == "application/json"
    assert json.loads(posted["body"]["body"]) == {"branch": "main", "count": 2}
    assert (put["body"]["type"], put["body"]["body"]) == (
        "application/x-www-form-urlencoded",
        "branch=dev",
    )


async def test_arguments_are_checked_against_the_schema_naming_the_field(
    services: Services, echo: str
) -> None:
    tenant = await registered(services, echo, operations=["startBuild"])
    with pytest.raises(InvalidInput) as caught:
        await services.tools.execute(tenant, "echo", "start_build", {"body": {"count": "two"}})
    assert caught.value.field in ("body", "body.count")


async def test_a_long_text_answer_is_cut_with_a_hint(services: Services, echo: str) -> None:
    tenant = await registered(services, echo, max_response_bytes=2048)
    result = await services.tools.execute(tenant, "echo", "get_log", {})
    assert result["truncated"] is True
    assert len(result["body"]) == 2048 and result["body"].startswith("line\n")
    assert "cut" in result["hint"]


async def test_the_operations_are_listed_with_their_schemas_and_hints(
    services: Services, echo: str
) -> None:
    tenant = await registered(services, echo)
    listed = {op.name: op for op in await services.tools.operations(tenant, "echo")}
    assert set(listed) == {"get_build", "get_log"}
    assert listed["get_build"].read_only
    assert listed["get_build"].input_schema["required"] == ["id"]
    catalog = await services.tools.catalog(tenant)
    assert {entry.qualified_name for entry in catalog} == {"echo.get_build", "echo.get_log"}


async def test_a_bad_description_at_the_url_is_refused_naming_its_place(
    services: Services, echo: str
) -> None:
    tenant, _ = await services.tenants.create_tenant(f"t-{uuid.uuid4().hex[:8]}")
    with pytest.raises(InvalidInput) as caught:
        await services.tools.register_tool(
            tenant,
            ToolCreate(
                name="bad",
                provider="openapi",
                base_url=echo,  # type: ignore[arg-type]
                config={"spec_url": f"{echo}/bad.json"},
            ),
        )
    assert caught.value.message.startswith("config.spec_url: paths./x.get: ")
    assert caught.value.field == "config.spec_url"


async def test_a_description_given_in_the_request_is_stored_with_the_tool(
    services: Services, echo: str
) -> None:
    tenant, _ = await services.tenants.create_tenant(f"t-{uuid.uuid4().hex[:8]}")
    await services.tools.register_tool(
        tenant,
        ToolCreate(name="inline", provider="openapi", base_url=echo, spec=SPEC),  # type: ignore[arg-type]
    )
    result = await services.tools.execute(tenant, "inline", "get_build", {"id": "7"})
    assert result["body"]["path"] == "/builds/7"


async def test_a_description_url_on_loopback_is_refused_unless_the_operator_allows_it(
    tmp_path: Path, echo: str
) -> None:
    settings = Settings.model_validate(
        {
            "data_dir": tmp_path / "data",
            "database_url": f"sqlite+aiosqlite:///{tmp_path}/d.db",
            "egress": {"allow_loopback": False},
        }
    )
    async with open_services(settings) as services:
        tenant, _ = await services.tenants.create_tenant("ssrf")
        with pytest.raises(InvalidInput) as caught:
            await services.tools.register_tool(
                tenant,
                ToolCreate(
                    name="inner",
                    provider="openapi",
                    base_url="https://api.example.com",  # type: ignore[arg-type]
                    config={"spec_url": f"{echo}/spec.json"},
                ),
            )
    assert caught.value.field == "config.spec_url"
    assert "loopback" in caught.value.message


async def test_mcp_lists_and_calls_the_instances_operations_by_their_exposed_names(
    services: Services, echo: str
) -> None:
    tenant = await registered(services, echo)

    async def caller(_ctx: Context) -> tuple[Tenant, str | None]:
        return tenant, None

    async with Client(build_server(services.tools, caller)) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        called = await client.call_tool("echo_get_build", {"id": "9", "tag": ["a"]})
    assert {"echo_get_build", "echo_get_log"} <= set(tools)
    assert tools["echo_get_build"].annotations is not None
    assert tools["echo_get_build"].annotations.read_only_hint is True
    assert not called.is_error
    assert called.structured_content is not None
    assert called.structured_content["body"]["query"] == [["tag", "a"]]


async def test_over_rest_a_bad_description_is_a_422_saying_where(
    client: httpx.AsyncClient, services: Services, echo: str
) -> None:
    _, key = await services.tenants.create_tenant(f"t-{uuid.uuid4().hex[:8]}")
    bad = {**SPEC, "paths": {"/builds/{id}": {"get": {"parameters": [{"name": "id"}]}}}}
    answer = await client.post(
        "/api/v1/tools",
        json={"name": "bad", "provider": "openapi", "base_url": echo, "spec": bad},
        headers=bearer(key),
    )
    assert answer.status_code == 422
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert "spec: paths./builds/{id}.get" in answer.json()["detail"]


async def test_over_rest_an_operation_of_the_description_is_called_by_name(
    client: httpx.AsyncClient, services: Services, echo: str
) -> None:
    _, key = await services.tenants.create_tenant(f"t-{uuid.uuid4().hex[:8]}")
    created = await client.post(
        "/api/v1/tools",
        json={"name": "echo", "provider": "openapi", "base_url": echo, "spec": SPEC},
        headers=bearer(key),
    )
    assert created.status_code == 201, created.text
    called = await client.post(
        "/api/v1/tools/echo/operations/get_build", json={"id": "5"}, headers=bearer(key)
    )
    assert called.status_code == 200, called.text
    assert called.json()["body"]["path"] == "/builds/5"


async def test_a_config_change_reselects_the_operations_from_the_stored_description(
    services: Services, echo: str
) -> None:
    tenant = await registered(services, echo)
    changed = {"spec_url": f"{echo}/spec.json", "operations": ["startBuild"]}
    await services.tools.update_tool(tenant, "echo", ToolUpdate(config=changed))
    listed = {op.name for op in await services.tools.operations(tenant, "echo")}
    assert listed == {"get_build", "get_log", "start_build"}


async def test_a_config_that_selects_nothing_is_refused_and_changes_nothing(
    services: Services, echo: str
) -> None:
    tenant = await registered(services, echo)
    nothing = {"spec_url": f"{echo}/spec.json", "tags": ["nope"]}
    with pytest.raises(InvalidInput) as caught:
        await services.tools.update_tool(tenant, "echo", ToolUpdate(config=nothing))
    assert caught.value.field == "config"
    assert len(await services.tools.operations(tenant, "echo")) == 2


async def test_a_new_description_replaces_the_stored_one(services: Services, echo: str) -> None:
    tenant = await registered(services, echo)
    smaller = {**SPEC, "paths": {"/log": SPEC["paths"]["/log"]}}
    await services.tools.update_tool(tenant, "echo", ToolUpdate(spec=smaller))
    assert [op.name for op in await services.tools.operations(tenant, "echo")] == ["get_log"]


async def test_a_provider_with_fixed_operations_takes_no_description(
    services: Services, echo: str
) -> None:
    tenant, _ = await services.tenants.create_tenant(f"t-{uuid.uuid4().hex[:8]}")
    with pytest.raises(InvalidInput) as caught:
        await services.tools.register_tool(
            tenant,
            ToolCreate(name="ci", provider="buildbot", base_url=echo, spec=SPEC),  # type: ignore[arg-type]
        )
    assert caught.value.field == "spec"


QUERY_KEY = {
    **SPEC,
    "components": {
        **SPEC["components"],
        "securitySchemes": {"key": {"type": "apiKey", "in": "query", "name": "api_key"}},
    },
    "paths": {
        **SPEC["paths"],
        "/missing": {
            "get": {"operationId": "getMissing", "responses": {"200": {"description": "-"}}}
        },
    },
}


async def test_a_query_api_key_is_sent_and_kept_out_of_error_messages(
    services: Services, echo: str
) -> None:
    tenant, _ = await services.tenants.create_tenant(f"t-{uuid.uuid4().hex[:8]}")
    tool = await services.tools.register_tool(
        tenant,
        ToolCreate(name="q", provider="openapi", base_url=echo, spec=QUERY_KEY),  # type: ignore[arg-type]
    )
    await services.tools.set_credentials(
        tenant, tool.id, Credentials(type="api_key", api_key="k-secret-123")
    )
    seen = (await services.tools.execute(tenant, "q", "get_build", {"id": "1"}))["body"]
    assert ["api_key", "k-secret-123"] in seen["query"]
    with pytest.raises(DevMeshError) as caught:
        await services.tools.execute(tenant, "q", "get_missing", {})
    assert "k-secret-123" not in str(caught.value)
    assert "k-secret-123" not in json.dumps(caught.value.details, default=str)


async def test_a_callers_own_token_is_sent_by_the_descriptions_scheme(
    services: Services, echo: str
) -> None:
    tenant, _ = await services.tenants.create_tenant(f"t-{uuid.uuid4().hex[:8]}")
    await services.tools.register_tool(
        tenant,
        ToolCreate(name="mine", provider="openapi", base_url=echo, spec=SPEC),  # type: ignore[arg-type]
    )
    result = await services.tools.execute(
        tenant, "mine", "get_build", {"id": "1"}, upstream_token="callers-own"
    )
    assert result["body"]["key"] == "callers-own"
