"""CircleCI's published API v2 description as an openapi tool, against the CircleCI
stand-in, which checks every request and answer against the same description: the
key goes in the Circle-Token header its first security scheme names, a project slug
travels as one path segment, and a pipeline triggered is then read by its id."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from devmesh.app import Services
from devmesh.domain.models import Credentials
from devmesh.tools.models import ToolCreate
from tests.standins.circleci.fixture import CircleCIStandin, run_circleci

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

TOKEN = "CCIPAT_openapitestsonly00000000000000000000"
DESCRIPTION = Path(__file__).resolve().parents[2] / "standins" / "circleci" / "openapi-v2.json"


@pytest.fixture(scope="module")
async def circleci() -> AsyncIterator[CircleCIStandin]:
    async with run_circleci() as standin:
        await standin.reset(tokens={TOKEN: "agent"}, quiet_period_s=0.1)
        await standin.add_project(
            "gh/org/app", workflows={"build": [{"name": "unit", "steps": ["echo ok"]}]}
        )
        yield standin


async def test_a_pipeline_is_triggered_and_read_through_circlecis_own_description(
    services: Services, circleci: CircleCIStandin
) -> None:
    tenant, _ = await services.tenants.create_tenant(f"t-{uuid.uuid4().hex[:8]}")
    description: dict[str, Any] = json.loads(DESCRIPTION.read_text())
    tool = await services.tools.register_tool(
        tenant,
        ToolCreate(
            name="cci",
            provider="openapi",
            base_url=f"{circleci.base_url}/api/v2",  # type: ignore[arg-type]
            spec=description,
            config={"tags": ["Pipeline"], "operations": ["triggerPipeline"]},
        ),
    )
    await services.tools.set_credentials(
        tenant, tool.id, Credentials(type="api_key", api_key=TOKEN)
    )
    run = services.tools.execute
    started = await run(
        tenant,
        "cci",
        "trigger_pipeline",
        {"project-slug": "gh/org/app", "body": {"branch": "main"}},
    )
    assert started["status"] == 201
    pipeline = await run(
        tenant, "cci", "get_pipeline_by_id", {"pipeline-id": started["body"]["id"]}
    )
    assert pipeline["body"]["project_slug"] == "gh/org/app"
    listed = await run(tenant, "cci", "list_pipelines_for_project", {"project-slug": "gh/org/app"})
    assert started["body"]["id"] in [item["id"] for item in listed["body"]["items"]]
