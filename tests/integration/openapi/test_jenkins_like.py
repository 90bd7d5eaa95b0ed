"""A Jenkins-like Swagger 2.0 description (Jenkins publishes none; this one is written
from its remote access API pages) against the Jenkins stand-in: HTTP Basic from the
description's securityDefinitions, a path parameter, a query parameter, and the
Location of the queued build followed to the build with that parameter."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

from devmesh.app import Services
from devmesh.domain.errors import UpstreamNotFound
from devmesh.domain.models import Credentials, Tenant
from devmesh.tools.models import ToolCreate
from tests.standins.jenkins.fixture import JenkinsStandin, run_jenkins

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

USER, TOKEN = "agent", "11aa22bb33cc44dd55ee66ff77aa88bb99"
NAME = {"name": "name", "in": "path", "required": True, "type": "string"}
JSON = {"description": "the object", "schema": {"type": "object"}}
JENKINS: dict[str, Any] = {
    "swagger": "2.0",
    "info": {"title": "Jenkins remote access API (the part used here)", "version": "2"},
    "securityDefinitions": {"jenkins_auth": {"type": "basic"}},
    "security": [{"jenkins_auth": []}],
    "paths": {
        "/job/{name}/api/json": {
            "get": {"operationId": "getJob", "parameters": [NAME], "responses": {"200": JSON}}
        },
        "/job/{name}/buildWithParameters": {
            "post": {
                "operationId": "buildJob",
                "parameters": [NAME, {"name": "TARGET", "in": "query", "type": "string"}],
                "responses": {"201": {"description": "queued; Location is the queue item"}},
            }
        },
        "/queue/item/{id}/api/json": {
            "get": {
                "operationId": "getQueueItem",
                "parameters": [{"name": "id", "in": "path", "required": True, "type": "integer"}],
                "responses": {"200": JSON},
            }
        },
        "/job/{name}/{number}/api/json": {
            "get": {
                "operationId": "getBuild",
                "parameters": [
                    NAME,
                    {"name": "number", "in": "path", "required": True, "type": "integer"},
                ],
                "responses": {"200": JSON},
            }
        },
    },
}


@pytest.fixture(scope="module")
async def jenkins() -> AsyncIterator[JenkinsStandin]:
    async with run_jenkins() as standin:
        await standin.reset(users={USER: TOKEN}, crumbs=False, quiet_period_s=0.1)
        await standin.add_job("app", steps=["echo built"], parameters={"TARGET": "linux"})
        yield standin


async def registered(services: Services, jenkins: JenkinsStandin) -> Tenant:
    tenant, _ = await services.tenants.create_tenant(f"t-{uuid.uuid4().hex[:8]}")
    tool = await services.tools.register_tool(
        tenant,
        ToolCreate(
            name="jenkins",
            provider="openapi",
            base_url=jenkins.base_url,  # type: ignore[arg-type]
            spec=JENKINS,
            config={"operations": ["buildJob"]},
        ),
    )
    await services.tools.set_credentials(
        tenant, tool.id, Credentials(type="basic", username=USER, password=TOKEN)
    )
    return tenant


async def test_a_build_is_queued_with_its_parameter_and_found_by_its_location(
    services: Services, jenkins: JenkinsStandin
) -> None:
    tenant = await registered(services, jenkins)
    run = services.tools.execute
    queued = await run(tenant, "jenkins", "build_job", {"name": "app", "TARGET": "mac"})
    assert queued["status"] == 201 and "/queue/item/" in queued["location"]
    item_id = int(queued["location"].rstrip("/").rsplit("/", 1)[1])
    number = build = None
    with anyio.fail_after(20):  # bounded in time and in count
        for _ in range(200):
            item = await run(tenant, "jenkins", "get_queue_item", {"id": item_id})
            number = (item["body"].get("executable") or {}).get("number")
            if number is not None:
                break
            await anyio.sleep(0.1)
        for _ in range(200):
            try:
                got = await run(tenant, "jenkins", "get_build", {"name": "app", "number": number})
            except UpstreamNotFound:  # started, not yet listed
                await anyio.sleep(0.1)
                continue
            build = got["body"]
            break
    assert build is not None, "the queued build started"
    parameters = [
        parameter
        for action in build["actions"]
        if action.get("_class") == "hudson.model.ParametersAction"
        for parameter in action["parameters"]
    ]
    assert [(p["name"], p["value"]) for p in parameters] == [("TARGET", "mac")]
