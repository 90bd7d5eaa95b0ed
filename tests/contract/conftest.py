"""Runs every contract scenario once per provider target (``targets.py``).

``@pytest.mark.offers("pipelines")`` (or ``"artifacts"``) on a scenario generates it
only for the targets that offer the feature.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest

from devmesh.adapters.registry import Connection, ProviderRegistry
from devmesh.domain.models import Credentials
from tests.contract.target import ProviderTarget, Server
from tests.contract.targets import TARGETS
from tests.support.http import service_like_client
from tests.support.live import LiveService, tenant_with_tool

AdapterAt = Callable[[str, Credentials | None], Any]
_FEATURES: dict[str, Callable[[ProviderTarget], bool]] = {
    "pipelines": lambda target: target.pipeline is not None,
    "artifacts": lambda target: target.unknown_artifact_id is not None,
}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "target" not in metafunc.fixturenames:
        return
    wanted = [mark.args[0] for mark in metafunc.definition.iter_markers("offers")]
    chosen = [t for t in TARGETS if all(_FEATURES[feature](t) for feature in wanted)]
    # Package scope: one server per provider for the whole suite.
    metafunc.parametrize("target", chosen, ids=[t.provider for t in chosen], scope="package")


@pytest.fixture(scope="package")
async def server(
    target: ProviderTarget, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Server]:
    async with target.serve(tmp_path_factory.mktemp(f"contract-{target.provider}")) as running:
        yield running


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with service_like_client() as client:
        yield client


@pytest.fixture
def adapter_at(target: ProviderTarget, http: httpx.AsyncClient) -> AdapterAt:
    """Builds the provider's adapter for any address and credentials, as the service does."""
    provider = ProviderRegistry.from_entry_points().get(target.provider)
    assert provider is not None, f"no provider {target.provider!r} registered"
    config = provider.config_model.model_validate(dict(target.config))

    def build(base_url: str, credentials: Credentials | None) -> Any:
        connection = Connection(
            base_url=base_url,
            config=config,
            credentials=credentials,
            http=http,
            policy=provider.http,  # redirects and cookies as the provider declares
        )
        return provider.create_adapter(connection)

    return build


@pytest.fixture
def adapter(adapter_at: AdapterAt, server: Server) -> Any:
    """The provider's adapter for its test server, with working credentials."""
    return adapter_at(server.base_url, server.credentials)


ToolAt = Callable[..., Awaitable[str]]


@pytest.fixture
def tenant_at(live: LiveService, target: ProviderTarget, server: Server) -> ToolAt:
    """A new tenant whose tool 'ci' reaches ``base_url`` (default: the test server),
    with the server's credentials stored; returns its API key."""

    async def register(base_url: str | None = None, **resilience: Any) -> str:
        body = target.tool("ci", base_url or server.base_url, resilience=resilience)
        key, _ = await tenant_with_tool(live, body)
        if server.credentials is not None:
            async with httpx.AsyncClient(base_url=live.base_url) as rest:
                stored = await rest.put(
                    "/api/v1/tools/ci/credentials",
                    headers={"Authorization": f"Bearer {key}"},
                    json={"credentials": server.credentials.model_dump(exclude_none=True)},
                )
            assert stored.status_code == 204, stored.text
        return key

    return register
