"""An agent drives a real Buildbot through Developer Mesh's MCP face over real HTTP.

Trigger to succeeded, a failing build's logs and search, and cancelling are the
contract suite's (``tests/contract/test_faces.py``); here is what is Buildbot's own.

The service runs on a loopback port; the client is the official MCP SDK's, over
Streamable HTTP; the CI is a real Buildbot master and worker.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import anyio
import httpx
import pytest

from devmesh.mcp.errors import error_payload
from tests.support.buildbot import BuildbotServer
from tests.support.live import LiveService, mcp_client, structured, tenant_with_tool

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

POLL_DEADLINE = 90.0


async def tenant_with_ci(live: LiveService, buildbot: BuildbotServer) -> str:
    """A new tenant's key, with a Buildbot tool named 'ci' registered by base_url alone."""
    tool = {"name": "ci", "provider": "buildbot", "base_url": buildbot.base_url}
    key, _ = await tenant_with_tool(live, tool)
    return key


async def test_tools_list_shows_only_the_callers_tools_in_a_stable_order(
    live: LiveService, buildbot: BuildbotServer
) -> None:
    first = await tenant_with_ci(live, buildbot)
    _, second = await live.services.tenants.create_tenant(f"t-{uuid.uuid4().hex[:8]}")
    async with mcp_client(live.mcp_url_all, first) as client:
        names = [tool.name for tool in (await client.list_tools()).tools]
    async with mcp_client(live.mcp_url_all, second) as client:
        bare = [tool.name for tool in (await client.list_tools()).tools]
    # A tenant without tools sees only the tenant-wide ones (knowledge), listed first.
    assert bare == [
        "search_contexts",
        "get_context",
        "store_context",
        "analyze_failure",
        "record_resolution",
    ]
    own = names[len(bare) :]
    assert names[: len(bare)] == bare and own == sorted(own)
    assert {"ci_trigger_build", "ci_get_build_logs", "ci_search_build_logs"} <= set(names)


async def test_tools_carry_schemas_and_annotations(
    live: LiveService, buildbot: BuildbotServer
) -> None:
    key = await tenant_with_ci(live, buildbot)
    async with mcp_client(live.mcp_url_all, key) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    trigger, logs, cancel = (
        tools["ci_trigger_build"],
        tools["ci_get_build_logs"],
        tools["ci_cancel_build"],
    )
    assert trigger.input_schema["required"] == ["project"]
    assert trigger.output_schema is not None and "status" in trigger.output_schema["properties"]
    assert logs.annotations is not None and logs.annotations.read_only_hint is True
    assert cancel.annotations is not None and cancel.annotations.destructive_hint is True


async def test_tools_list_shows_the_pipeline_and_artifact_tools_with_schemas(
    live: LiveService, buildbot: BuildbotServer
) -> None:
    key = await tenant_with_ci(live, buildbot)
    async with mcp_client(live.mcp_url_all, key) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    new = {
        "ci_list_pipelines",
        "ci_trigger_pipeline",
        "ci_get_pipeline",
        "ci_get_artifacts",
        "ci_download_artifact",
    }
    assert new <= set(tools)
    trigger, get, download = (
        tools["ci_trigger_pipeline"],
        tools["ci_get_pipeline"],
        tools["ci_download_artifact"],
    )
    assert trigger.input_schema["required"] == ["pipeline"]
    assert get.input_schema["required"] == ["run_id"]
    assert get.output_schema is not None and "builds" in get.output_schema["properties"]
    limits = download.input_schema["properties"]["max_bytes"]
    assert (limits["default"], limits["maximum"]) == (64 * 1024, 1024 * 1024)
    assert download.output_schema is not None
    assert {"encoding", "truncated", "next_offset"} <= set(download.output_schema["properties"])
    for name in new - {"ci_trigger_pipeline"}:
        annotations = tools[name].annotations
        assert annotations is not None and annotations.read_only_hint is True, name
    assert trigger.annotations is not None and trigger.annotations.read_only_hint is False


async def test_an_agent_runs_a_pipeline_and_pages_through_an_artifact(
    live: LiveService, buildbot: BuildbotServer
) -> None:
    key = await tenant_with_ci(live, buildbot)
    async with mcp_client(live.mcp_url_all, key) as client:
        pipelines = structured(await client.call_tool("ci_list_pipelines", {}))["pipelines"]
        run = structured(await client.call_tool("ci_trigger_pipeline", {"pipeline": "release"}))
        deadline = time.monotonic() + POLL_DEADLINE
        while run["status"] not in {"succeeded", "failed", "cancelled"}:
            assert time.monotonic() < deadline, f"run {run['id']} stuck at {run['status']}"
            await anyio.sleep(0.2)
            run = structured(await client.call_tool("ci_get_pipeline", {"run_id": run["id"]}))
        [package] = [build for build in run["builds"] if build["project"] == "package"]
        listed = structured(await client.call_tool("ci_get_artifacts", {"build_id": package["id"]}))
        [log] = [artifact for artifact in listed["artifacts"] if artifact["kind"] == "log"]
        first = structured(
            await client.call_tool(
                "ci_download_artifact",
                {"build_id": package["id"], "artifact_id": log["id"], "max_bytes": 2000},
            )
        )
        second = structured(
            await client.call_tool(
                "ci_download_artifact",
                {
                    "build_id": package["id"],
                    "artifact_id": log["id"],
                    "offset": first["next_offset"],
                    "max_bytes": 2000,
                },
            )
        )
        missing = await client.call_tool(
            "ci.download_artifact", {"build_id": package["id"], "artifact_id": "log-999999"}
        )
        unknown = await client.call_tool("ci_trigger_pipeline", {"pipeline": "nope"})
    assert "release" in [pipeline["id"] for pipeline in pipelines]
    assert run["status"] == "succeeded"
    assert first["truncated"] is True and first["encoding"] == "utf-8"
    assert second["offset"] == first["next_offset"]
    assert "package line" in second["content"]
    assert missing.is_error is True
    assert error_payload(missing)["error"] == "upstream_not_found"
    assert "get_artifacts" in error_payload(missing)["message"]
    assert unknown.is_error is True
    assert "release" in error_payload(unknown)["message"]


async def test_another_tenant_can_neither_see_nor_call_the_tool(
    live: LiveService, buildbot: BuildbotServer
) -> None:
    owner = await tenant_with_ci(live, buildbot)
    _, stranger = await live.services.tenants.create_tenant(f"t-{uuid.uuid4().hex[:8]}")
    async with httpx.AsyncClient(base_url=live.base_url) as http:
        tool_id = (
            await http.get("/api/v1/tools/ci", headers={"Authorization": f"Bearer {owner}"})
        ).json()["id"]
        for ref in ("ci", tool_id):
            for method, path in [
                ("GET", f"/api/v1/tools/{ref}"),
                ("GET", f"/api/v1/tools/{ref}/operations"),
                ("POST", f"/api/v1/tools/{ref}/operations/list_builds"),
                ("DELETE", f"/api/v1/tools/{ref}"),
            ]:
                response = await http.request(
                    method, path, headers={"Authorization": f"Bearer {stranger}"}, json={}
                )
                assert response.status_code == 404, (method, path, response.text)
                assert response.headers["content-type"] == "application/problem+json"
    async with mcp_client(live.mcp_url_all, stranger) as client:
        result = await client.call_tool("ci.list_builds", {})
    assert result.is_error is True
    assert error_payload(result)["error"] == "unknown_tool"


@pytest.mark.parametrize(
    ("tool", "arguments", "status", "code"),
    [
        ("nope.list_builds", {}, 404, "unknown_tool"),
        ("ci.no_such_operation", {}, 404, "unknown_tool"),
        ("ci.list_builds", {"limit": "many"}, 422, "invalid_input"),
        ("ci.get_build_status", {}, 422, "invalid_input"),
        ("ci.trigger_build", {"project": "runtests", "surprise": 1}, 422, "invalid_input"),
        ("ci.trigger_build", {"project": "no-such-builder"}, 404, "upstream_not_found"),
    ],
)
async def test_bad_input_is_a_clear_4xx_on_rest_and_an_error_result_on_mcp(
    live: LiveService,
    buildbot: BuildbotServer,
    tool: str,
    arguments: dict[str, Any],
    status: int,
    code: str,
) -> None:
    key = await tenant_with_ci(live, buildbot)
    instance, operation = tool.split(".")
    async with httpx.AsyncClient(base_url=live.base_url) as http:
        response = await http.post(
            f"/api/v1/tools/{instance}/operations/{operation}",
            headers={"Authorization": f"Bearer {key}"},
            json=arguments,
        )
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == code
    async with mcp_client(live.mcp_url_all, key) as client:
        result = await client.call_tool(tool, arguments)
    assert result.is_error is True
    assert error_payload(result)["error"] == code
    assert error_payload(result)["message"]
    assert "Traceback" not in json.dumps(result.model_dump(mode="json"))


async def test_mcp_without_a_key_is_401(live: LiveService) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.post(
            live.mcp_url, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
        )
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"


async def test_clients_that_still_initialize_are_served(
    live: LiveService, buildbot: BuildbotServer
) -> None:
    key = await tenant_with_ci(live, buildbot)
    async with mcp_client(live.mcp_url_all, key, mode="legacy") as client:
        names = [tool.name for tool in (await client.list_tools()).tools]
        builds = structured(await client.call_tool("ci_list_builds", {"limit": 5}))
    assert "ci_list_builds" in names
    assert isinstance(builds["builds"], list)


async def test_a_canary_credential_never_appears_in_responses_logs_or_metrics(
    live: LiveService,
    buildbot: BuildbotServer,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    canary = f"canary-{uuid.uuid4().hex}"
    key = await tenant_with_ci(live, buildbot)
    captured: list[str] = []
    async with httpx.AsyncClient(base_url=live.base_url) as http:
        auth = {"Authorization": f"Bearer {key}"}
        stored = await http.put(
            "/api/v1/tools/ci/credentials",
            headers=auth,
            json={"credentials": {"type": "bearer", "token": canary}},
        )
        assert stored.status_code == 204
        for path in ("/api/v1/tools", "/api/v1/tools/ci", "/api/v1/tools/ci/operations"):
            captured.append((await http.get(path, headers=auth)).text)
        bad = await http.put(
            "/api/v1/tools/ci/credentials",
            headers=auth,
            json={"credentials": {"type": "basic", "password": canary}},
        )
        captured.append(bad.text)
        captured.append(
            (
                await http.post(
                    "/api/v1/tools/ci/operations/get_build_status",
                    headers={**auth, "X-Upstream-Token": canary},
                    json={"build_id": "999999"},
                )
            ).text
        )
    async with mcp_client(live.mcp_url_all, key, upstream_token=canary) as client:
        for name, arguments in [
            ("ci.list_builds", {"limit": 3}),
            ("ci.get_build_status", {"build_id": "999999"}),
        ]:
            result = await client.call_tool(name, arguments)
            captured.append(json.dumps(result.model_dump(mode="json")))
    async with httpx.AsyncClient(base_url=live.base_url) as http:
        captured.append((await http.get("/metrics")).text)
    out, err = capfd.readouterr()
    captured += [out, err, caplog.text]
    captured += [record.getMessage() for record in caplog.records]
    leaks = [text for text in captured if canary in text]
    assert bad.status_code == 422
    assert not leaks, leaks[:1]
