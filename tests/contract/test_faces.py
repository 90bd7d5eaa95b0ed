"""Contract: what an agent or a script sees — the MCP tools (``ci_trigger_build`` …)
and the REST operations, over real HTTP to the service on loopback."""

from __future__ import annotations

import json
import re

import httpx
import pytest

from devmesh.adapters.logs import MAX_LINES
from devmesh.mcp.errors import error_payload
from tests.contract.agent import finished, trigger_arguments
from tests.contract.conftest import ToolAt
from tests.contract.target import ProviderTarget
from tests.support.http import bearer
from tests.support.live import LiveService, mcp_client, structured
from tests.support.polling import mcp_status

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


async def test_an_agent_triggers_a_build_and_follows_it_to_succeeded(
    live: LiveService, target: ProviderTarget, tenant_at: ToolAt
) -> None:
    key = await tenant_at()
    async with mcp_client(live.mcp_url, key) as client:
        build = structured(
            await client.call_tool("ci_trigger_build", trigger_arguments(target, "succeeds"))
        )
        seen = structured(await client.call_tool("ci_get_build_status", {"build_id": build["id"]}))
        done = await mcp_status(client, "ci", build["id"])
    assert build["status"] in {"queued", "running"}
    assert seen["project"] == target.succeeds.project
    assert done["status"] == "succeeded"


async def test_an_agent_finds_a_failing_builds_error_line_in_its_logs_and_by_search(
    live: LiveService, target: ProviderTarget, tenant_at: ToolAt
) -> None:
    key = await tenant_at()
    async with mcp_client(live.mcp_url, key) as client:
        done = await finished(client, target, "fails")
        page = structured(
            await client.call_tool("ci_get_build_logs", {"build_id": done["id"], "lines": 200})
        )
        # The dotted name is accepted too.
        found = structured(
            await client.call_tool(
                "ci.search_build_logs",
                {"build_id": done["id"], "pattern": re.escape(target.error_line)},
            )
        )
        failed = structured(
            await client.call_tool(
                "ci_list_failed_builds", {"project": target.fails.project, "limit": 5}
            )
        )
    assert done["status"] == "failed"
    assert any(target.error_line in line["text"] for line in page["lines"])
    assert found["matches"]
    assert all(target.error_line in match["line"]["text"] for match in found["matches"])
    assert done["id"] in [listed["id"] for listed in failed["builds"]]


async def test_an_agent_cancels_a_running_build(
    live: LiveService, target: ProviderTarget, tenant_at: ToolAt
) -> None:
    key = await tenant_at()
    async with mcp_client(live.mcp_url, key) as client:
        build = structured(
            await client.call_tool("ci_trigger_build", trigger_arguments(target, "runs_long"))
        )
        try:
            running = await mcp_status(client, "ci", build["id"], {"running"})
        finally:
            structured(await client.call_tool("ci_cancel_build", {"build_id": build["id"]}))
        done = await mcp_status(client, "ci", build["id"])
    assert running["status"] == "running"
    assert done["status"] == "cancelled"


async def test_logs_come_in_bounded_pages_that_read_on_by_cursor(
    live: LiveService, target: ProviderTarget, tenant_at: ToolAt
) -> None:
    key = await tenant_at()
    async with mcp_client(live.mcp_url, key) as client:
        done = await finished(client, target, "fails")
        tail = structured(
            await client.call_tool("ci_get_build_logs", {"build_id": done["id"], "lines": 2})
        )
        first = structured(
            await client.call_tool(
                "ci_get_build_logs", {"build_id": done["id"], "lines": 2, "cursor": "0"}
            )
        )
        second = structured(
            await client.call_tool(
                "ci_get_build_logs",
                {"build_id": done["id"], "lines": 2, "cursor": first["next_cursor"]},
            )
        )
        too_many = await client.call_tool(
            "ci_get_build_logs", {"build_id": done["id"], "lines": MAX_LINES + 1}
        )
    assert len(tail["lines"]) == 2 and tail["truncated"] is True
    assert [line["number"] for line in first["lines"]] == [1, 2]
    assert [line["number"] for line in second["lines"]] == [3, 4]
    assert too_many.is_error is True
    assert error_payload(too_many)["error"] == "invalid_input"


async def test_an_unknown_build_is_a_404_on_rest_and_an_error_result_on_mcp(
    live: LiveService, target: ProviderTarget, tenant_at: ToolAt
) -> None:
    key = await tenant_at()
    [build_id, *_] = target.unknown_build_ids
    async with httpx.AsyncClient(base_url=live.base_url) as http:
        response = await http.post(
            "/api/v1/tools/ci/operations/get_build_status",
            headers=bearer(key),
            json={"build_id": build_id},
        )
    async with mcp_client(live.mcp_url, key) as client:
        result = await client.call_tool("ci_get_build_status", {"build_id": build_id})
    assert response.status_code == 404, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "upstream_not_found"
    assert result.is_error is True
    assert error_payload(result)["error"] == "upstream_not_found"
    assert "Traceback" not in json.dumps(result.model_dump(mode="json"))


async def test_refused_credentials_are_an_auth_error_on_both_faces_that_names_no_secret(
    live: LiveService, target: ProviderTarget, tenant_at: ToolAt
) -> None:
    key = await tenant_at()
    bad = target.bad_credentials
    async with httpx.AsyncClient(base_url=live.base_url, headers=bearer(key)) as http:
        stored = await http.put(
            "/api/v1/tools/ci/credentials",
            json={"credentials": bad.model_dump(exclude_none=True)},
        )
        response = await http.post(
            "/api/v1/tools/ci/operations/trigger_build", json=trigger_arguments(target, "succeeds")
        )
    async with mcp_client(live.mcp_url, key) as client:
        result = await client.call_tool("ci_trigger_build", trigger_arguments(target, "succeeds"))
    secrets = [secret for secret in (bad.password, bad.token, bad.api_key) if secret]
    seen = [response.text, json.dumps(result.model_dump(mode="json"))]
    assert stored.status_code == 204, stored.text
    assert response.json()["code"] == "upstream_auth_failed", response.text
    assert result.is_error is True
    assert error_payload(result)["error"] == "upstream_auth_failed"
    assert not [text for text in seen for secret in secrets if secret in text]
