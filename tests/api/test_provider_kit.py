"""What a provider declares reaches the service: its description (MCP instructions and
tool descriptions, through the SDK client), its default base_url, its passthrough
credential type, and each instance's verify_tls."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from mcp import Client

from devmesh.adapters.credentials import CredentialScheme, header_token
from devmesh.adapters.operations import CI_OPERATIONS
from devmesh.adapters.registry import Connection, Provider, ProviderRegistry
from devmesh.app import Services, create_app
from devmesh.config import Settings
from devmesh.domain.errors import InvalidInput
from devmesh.domain.models import Build, BuildRequest, BuildStatus, Credentials, LogLine, Tenant
from devmesh.mcp.server import Context, build_server
from devmesh.tools.models import ToolCreate, ToolUpdate

pytestmark = pytest.mark.anyio

FIRST_SENTENCE = "Hosted CI: a project is a repository path like group/name."
DESCRIPTION = FIRST_SENTENCE + " Build ids are pipeline numbers."
SEEN: list[Connection] = []


class HostedAdapter:
    """Remembers its connection and answers every build call with one build."""

    def __init__(self, connection: Connection) -> None:
        SEEN.append(connection)

    async def ping(self) -> None:
        return None

    async def trigger_build(self, request: BuildRequest) -> Build:
        return await self.get_build("1")

    async def get_build(self, build_id: str) -> Build:
        return Build(id=build_id, project="p", status=BuildStatus.QUEUED)

    async def list_builds(
        self, *, project: str | None, status: BuildStatus | None, limit: int
    ) -> list[Build]:
        return []

    async def cancel_build(self, build_id: str) -> Build:
        return await self.get_build(build_id)

    async def retry_build(self, build_id: str) -> Build:
        return await self.get_build(build_id)

    async def read_log_lines(self, build_id: str, *, failed_only: bool) -> list[LogLine]:
        return []


HOSTED = Provider(
    name="hosted",
    title="Hosted CI",
    description=DESCRIPTION,
    create_adapter=HostedAdapter,
    operations=CI_OPERATIONS,
    default_base_url="https://ci.example.com/api",
    credentials=CredentialScheme(
        types=(header_token("private_token", "PRIVATE-TOKEN"),), passthrough="private_token"
    ),
)


@pytest.fixture
async def kit_app(tmp_path: Path) -> AsyncIterator[FastAPI]:
    settings = Settings.model_validate(
        {"data_dir": tmp_path / "data", "database_url": f"sqlite+aiosqlite:///{tmp_path}/d.db"}
    )
    application = create_app(settings, registry=ProviderRegistry([HOSTED]))
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
def kit_services(kit_app: FastAPI) -> Services:
    built: Services = kit_app.state.services
    return built


async def a_tenant(services: Services) -> Tenant:
    tenant, _ = await services.tenants.create_tenant(f"t-{uuid.uuid4().hex[:8]}")
    return tenant


async def test_a_provider_with_a_default_base_url_is_registered_without_one(
    kit_services: Services,
) -> None:
    tenant = await a_tenant(kit_services)
    tool = await kit_services.tools.register_tool(tenant, ToolCreate(name="ci", provider="hosted"))
    assert tool.base_url == "https://ci.example.com/api"


async def test_a_provider_without_a_default_needs_a_base_url(services: Services) -> None:
    tenant = await a_tenant(services)
    with pytest.raises(InvalidInput) as caught:
        await services.tools.register_tool(tenant, ToolCreate(name="ci", provider="buildbot"))
    assert caught.value.field == "base_url"


async def test_the_provider_description_reaches_mcp_instructions_and_tool_descriptions(
    kit_services: Services,
) -> None:
    tenant = await a_tenant(kit_services)
    await kit_services.tools.register_tool(tenant, ToolCreate(name="ci", provider="hosted"))

    async def caller(_ctx: Context) -> tuple[Tenant, str | None]:
        return tenant, None

    async with Client(build_server(kit_services.tools, caller)) as client:
        instructions = client.instructions or ""
        tools = (await client.list_tools()).tools
    assert f"Hosted CI (hosted): {DESCRIPTION}" in instructions
    assert "trigger_build" in instructions
    assert tools
    # Each tool carries the first sentence; the whole is said once, in the instructions.
    assert all(FIRST_SENTENCE in (tool.description or "") for tool in tools)
    assert not any("Build ids are" in (tool.description or "") for tool in tools)


async def test_verify_tls_is_chosen_per_instance(kit_services: Services) -> None:
    tenant = await a_tenant(kit_services)
    tools = kit_services.tools
    checked = await tools.register_tool(tenant, ToolCreate(name="checked", provider="hosted"))
    unchecked = await tools.register_tool(
        tenant, ToolCreate(name="selfsigned", provider="hosted", verify_tls=False)
    )
    assert (checked.verify_tls, unchecked.verify_tls) == (True, False)
    SEEN.clear()
    await tools.execute(tenant, "checked", "get_build_status", {"build_id": "1"})
    await tools.execute(tenant, "selfsigned", "get_build_status", {"build_id": "1"})
    assert [c.policy.verify_tls for c in SEEN] == [True, False]
    assert SEEN[0].http is not SEEN[1].http

    updated = await tools.update_tool(tenant, "selfsigned", ToolUpdate(verify_tls=True))
    assert updated.tool.verify_tls is True


async def test_a_callers_own_token_is_the_providers_passthrough_type(
    kit_services: Services,
) -> None:
    tenant = await a_tenant(kit_services)
    await kit_services.tools.register_tool(tenant, ToolCreate(name="ci", provider="hosted"))
    SEEN.clear()
    await kit_services.tools.execute(
        tenant, "ci", "get_build_status", {"build_id": "1"}, upstream_token="caller-token"
    )
    credentials = SEEN[0].credentials
    assert credentials is not None
    assert (credentials.type, credentials.token) == ("private_token", "caller-token")


async def test_stored_credentials_of_a_type_the_provider_lacks_are_refused_naming_the_field(
    kit_services: Services,
) -> None:
    tenant = await a_tenant(kit_services)
    await kit_services.tools.register_tool(tenant, ToolCreate(name="ci", provider="hosted"))
    with pytest.raises(InvalidInput) as caught:
        await kit_services.tools.set_credentials(
            tenant, "ci", Credentials(type="basic", username="u", password="p")
        )
    assert caught.value.field == "credentials.type"
