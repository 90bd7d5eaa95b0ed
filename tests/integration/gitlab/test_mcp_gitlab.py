"""An agent drives GitLab CI (the API v4 stand-in) through the MCP face over real HTTP.

The service runs on a loopback port, its outbound calls through the shared,
egress-checked client the composition root builds; the client is the official MCP
SDK's, over Streamable HTTP.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import anyio
import httpx
import pytest
from mcp import Client

from devmesh.mcp.errors import error_payload
from tests.standins.gitlab.fixture import GitLabStandin
from tests.support.live import LiveService, mcp_client

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

TOKEN = "glpat-mcp-tests-only"
INVALID = "upstream_invalid_argument"
DEADLINE_S = 30.0
FAILING: dict[str, Any] = {
    "stages": ["build", "test"],
    "jobs": [
        {"name": "compile", "stage": "build", "script": ["$ make", "compiled ok"]},
        {
            "name": "unit",
            "stage": "test",
            "fails": True,
            "script": ["$ pytest", "E   AssertionError: expected 2, got 3"],
        },
    ],
}


async def tenant_with_gitlab(live: LiveService, gitlab: GitLabStandin) -> str:
    """A new tenant with a GitLab tool named 'gitlab' on the stand-in, with a token."""
    _, key = await live.services.tenants.create_tenant(f"t-{uuid.uuid4().hex[:8]}")
    async with httpx.AsyncClient(base_url=live.base_url) as http:
        created = await http.post(
            "/api/v1/tools",
            headers={"Authorization": f"Bearer {key}"},
            json={"name": "gitlab", "provider": "gitlab", "base_url": gitlab.base_url},
        )
        assert created.status_code == 201, created.text
        stored = await http.put(
            "/api/v1/tools/gitlab/credentials",
            headers={"Authorization": f"Bearer {key}"},
            json={"credentials": {"type": "private_token", "token": TOKEN}},
        )
        assert stored.status_code == 204, stored.text
    return key


def structured(result: Any) -> dict[str, Any]:
    assert result.is_error is False, result.content
    payload: dict[str, Any] = result.structured_content
    return payload


async def final(client: Client, build_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + DEADLINE_S
    while True:
        build = structured(
            await client.call_tool("gitlab_get_build_status", {"build_id": build_id})
        )
        if build["status"] in {"succeeded", "failed", "cancelled"}:
            return build
        assert time.monotonic() < deadline, f"{build_id} stuck at {build['status']}"
        await anyio.sleep(0.2)


async def test_an_agent_triggers_watches_reads_logs_and_lists_failures(
    live: LiveService, gitlab_standin: GitLabStandin
) -> None:
    await gitlab_standin.seed(path="group/app", token=TOKEN, script=FAILING)
    key = await tenant_with_gitlab(live, gitlab_standin)
    async with mcp_client(live.mcp_url, key) as client:
        triggered = structured(
            await client.call_tool(
                "gitlab_trigger_build",
                {"project": "group/app", "branch": "main", "parameters": {"SUITE": "unit"}},
            )
        )
        build = await final(client, triggered["id"])
        assert build["status"] == "failed"
        assert build["metadata"]["failed_stage"] == "test"
        assert build["metadata"]["failure_reason"] == "script_failure"
        page = structured(
            await client.call_tool("gitlab_get_build_logs", {"build_id": build["id"], "lines": 5})
        )
        assert len(page["lines"]) <= 5
        assert any("AssertionError" in line["text"] for line in page["lines"])
        failed = structured(
            await client.call_tool("gitlab.list_failed_builds", {"project": "group/app"})
        )
        assert [b["id"] for b in failed["builds"]] == [build["id"]]


@pytest.mark.parametrize(
    ("tool", "arguments", "code"),
    [
        ("gitlab_trigger_build", {"project": "group/app", "commit": "abc"}, INVALID),
        ("gitlab_trigger_build", {"project": "group/nope", "branch": "main"}, "upstream_not_found"),
        ("gitlab_trigger_build", {"project": "group/app", "branch": "no-such"}, INVALID),
        ("gitlab_get_build_status", {"build_id": "1234"}, INVALID),
        ("gitlab_get_build_status", {"build_id": "group/app#999999"}, "upstream_not_found"),
        ("gitlab_list_builds", {}, INVALID),
        ("gitlab_get_build_logs", {"build_id": "group/app#1", "lines": 0}, "invalid_input"),
    ],
)  # fmt: skip
async def test_bad_input_is_a_clear_error_result(
    live: LiveService,
    gitlab_standin: GitLabStandin,
    tool: str,
    arguments: dict[str, Any],
    code: str,
) -> None:
    await gitlab_standin.seed(path="group/app", token=TOKEN)
    key = await tenant_with_gitlab(live, gitlab_standin)
    async with mcp_client(live.mcp_url, key) as client:
        result = await client.call_tool(tool, arguments)
    assert result.is_error is True
    assert error_payload(result)["error"] == code
    assert error_payload(result)["message"]
    shown = json.dumps(result.model_dump(mode="json"))
    assert "Traceback" not in shown
    assert TOKEN not in shown


async def test_a_gitlab_tool_registers_with_a_token_alone_at_gitlab_com(
    live: LiveService,
) -> None:
    _, key = await live.services.tenants.create_tenant(f"t-{uuid.uuid4().hex[:8]}")
    async with httpx.AsyncClient(base_url=live.base_url) as http:
        created = await http.post(
            "/api/v1/tools",
            headers={"Authorization": f"Bearer {key}"},
            json={"name": "gitlab", "provider": "gitlab"},
        )
        assert created.status_code == 201, created.text
        stored = await http.put(
            "/api/v1/tools/gitlab/credentials",
            headers={"Authorization": f"Bearer {key}"},
            json={"credentials": {"type": "private_token", "token": TOKEN}},
        )
    assert created.json()["base_url"] == "https://gitlab.com"
    assert stored.status_code == 204, stored.text
