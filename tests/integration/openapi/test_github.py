"""GitHub's published description (``@octokit/openapi``, ~1,200 operations) as an
openapi tool: every operation registers, named uniquely, as a tool every
function-calling dialect accepts, and its Actions operations
call the GitHub stand-in as the description says (the stand-in checks each request
and answer against the same description and fails the module on any violation)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from devmesh.app import Services
from devmesh.domain.models import Credentials, Tenant
from devmesh.mcp.dialects import check, check_output
from devmesh.mcp.schemas import portable_input, portable_output
from devmesh.providers.openapi import OpenApiConfig, operations_of
from devmesh.tools.models import ToolCreate
from tests.standins.github import GitHubStandin, run_github
from tests.standins.github.spec import full_description

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

TOKEN = "ghp_openapiTestsOnly000000000000000000000"
ALL_METHODS: list[Any] = ["get", "put", "post", "patch", "delete"]


@pytest.fixture(scope="module")
def description() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(full_description().read_text())
    return loaded


@pytest.fixture(scope="module")
async def github() -> AsyncIterator[GitHubStandin]:
    async with run_github() as standin:
        await standin.add_token(TOKEN)
        steps = [{"name": "build", "lines": ["$ make", "ok"]}]
        await standin.add_repo("octo/app", {"ci.yml": steps})
        yield standin


async def a_tenant(services: Services) -> Tenant:
    tenant, _ = await services.tenants.create_tenant(f"t-{uuid.uuid4().hex[:8]}")
    return tenant


async def test_every_operation_of_the_description_registers_with_a_unique_name(
    services: Services, description: dict[str, Any]
) -> None:
    tenant = await a_tenant(services)
    await services.tools.register_tool(
        tenant,
        ToolCreate(
            name="gh",
            provider="openapi",
            base_url="https://api.github.com",  # type: ignore[arg-type]
            spec=description,
            config={"methods": ALL_METHODS},
        ),
    )
    listed = await services.tools.operations(tenant, "gh")
    expected = sum(
        1 for item in description["paths"].values() for method in ALL_METHODS if method in item
    )
    assert len(listed) == expected > 1000
    assert len({op.name for op in listed}) == len(listed)


async def test_the_actions_operations_call_the_stand_in_as_described(
    services: Services, description: dict[str, Any], github: GitHubStandin
) -> None:
    tenant = await a_tenant(services)
    tool = await services.tools.register_tool(
        tenant,
        ToolCreate(
            name="gh",
            provider="openapi",
            base_url=github.base_url,  # type: ignore[arg-type]
            spec=description,
            config={"tags": ["actions"], "operations": ["actions/create-workflow-dispatch"]},
        ),
    )
    await services.tools.set_credentials(tenant, tool.id, Credentials(type="bearer", token=TOKEN))
    run = services.tools.execute
    repo = {"owner": "octo", "repo": "app"}
    workflows = await run(tenant, "gh", "actions_list_repo_workflows", repo)
    assert [w["path"] for w in workflows["body"]["workflows"]] == [".github/workflows/ci.yml"]
    dispatched = await run(
        tenant,
        "gh",
        "actions_create_workflow_dispatch",
        {**repo, "workflow_id": "ci.yml", "body": {"ref": "main", "return_run_details": True}},
        idempotency_key=f"k-{uuid.uuid4().hex}",
    )
    run_id = dispatched["body"]["workflow_run_id"]
    runs = await run(tenant, "gh", "actions_list_workflow_runs_for_repo", {**repo, "per_page": 5})
    assert run_id in [item["id"] for item in runs["body"]["workflow_runs"]]
    one = await run(tenant, "gh", "actions_get_workflow_run", {**repo, "run_id": run_id})
    assert one["status"] == 200 and one["body"]["id"] == run_id
    sent = [request for request in await github.requests() if "dispatches" in request["path"]]
    assert sent, "the dispatch reached the stand-in"


def test_every_operation_is_a_tool_every_function_calling_dialect_accepts(
    description: dict[str, Any],
) -> None:
    config = OpenApiConfig(methods=ALL_METHODS)
    violations = [
        str(violation)
        for op in operations_of(description, config)
        for violation in (
            check(f"gh_{op.name}"[:64], portable_input(dict(op.input_schema or {})))
            + check_output(f"gh_{op.name}"[:64], portable_output(dict(op.output_schema or {})))
        )
    ]
    assert violations == []
