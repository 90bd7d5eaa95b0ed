from __future__ import annotations

import sys
from collections.abc import Iterator
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

import pytest

from devmesh.adapters.operations import PIPELINE_OPERATIONS
from devmesh.adapters.protocols import unsupported
from devmesh.adapters.registry import (
    Connection,
    Provider,
    ProviderLoadError,
    ProviderRegistry,
    _load,
)
from devmesh.app import open_services
from devmesh.config import Settings
from devmesh.domain.models import Pipeline, PipelineRequest, PipelineRun

pytestmark = pytest.mark.anyio


def entry_point(value: str, name: str = "broken") -> EntryPoint:
    return EntryPoint(name=name, value=value, group="devmesh.providers")


def test_an_entry_point_that_does_not_import_is_named_in_the_error() -> None:
    with pytest.raises(ProviderLoadError, match=r"devmesh.providers:broken .*failed to load"):
        _load(entry_point("no_such_module_anywhere:provider"), "devmesh.providers")


def test_an_entry_point_that_is_not_a_provider_is_refused() -> None:
    with pytest.raises(ProviderLoadError, match=r"devmesh.providers:broken .*not a .*Provider"):
        _load(entry_point("json:dumps"), "devmesh.providers")


# --- checked against the operations, at start-up ---------------------------------------

THIRD_PARTY = """
from devmesh.adapters.operations import CI_OPERATIONS
from devmesh.adapters.registry import Connection, Provider


class PingOnlyAdapter:
    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    async def ping(self) -> None:
        return None


provider = Provider(
    name="pingonly",
    title="Ping only",
    create_adapter=PingOnlyAdapter,
    operations=CI_OPERATIONS,
)
"""


@pytest.fixture
def third_party_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A separately installed package, as a new user would write it: a module and a
    dist-info whose entry point names its provider."""
    (tmp_path / "pingonly_ci.py").write_text(THIRD_PARTY)
    dist = tmp_path / "pingonly_ci-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: pingonly-ci\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[devmesh.providers]\npingonly = pingonly_ci:provider\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    sys.modules.pop("pingonly_ci", None)


@pytest.mark.usefixtures("third_party_package")
def test_a_third_party_adapter_lacking_a_method_fails_start_up_naming_what_is_missing() -> None:
    with pytest.raises(ProviderLoadError) as caught:
        ProviderRegistry.from_entry_points()
    message = str(caught.value)
    assert "devmesh.providers:pingonly" in message
    assert "operation 'trigger_build'" in message
    assert "method 'trigger_build'" in message


@pytest.mark.usefixtures("third_party_package")
async def test_the_service_does_not_start_with_such_a_provider(tmp_path: Path) -> None:
    settings = Settings.model_validate(
        {"data_dir": tmp_path / "data", "database_url": f"sqlite+aiosqlite:///{tmp_path}/d.db"}
    )
    with pytest.raises(ProviderLoadError, match="pingonly"):
        async with open_services(settings):
            pass


class _Adapter:
    def __init__(self, connection: Connection) -> None:
        pass

    async def ping(self) -> None:
        return None


class _NoPipelines(_Adapter):
    async def list_pipelines(self) -> list[Pipeline]:
        return []

    @unsupported
    async def trigger_pipeline(self, request: PipelineRequest) -> PipelineRun:
        raise NotImplementedError

    async def get_pipeline_run(self, run_id: str) -> PipelineRun:
        raise NotImplementedError


def test_an_operation_whose_method_is_marked_unsupported_is_not_offered() -> None:
    provider = Provider(
        name="partial", title="Partial", create_adapter=_NoPipelines, operations=PIPELINE_OPERATIONS
    )
    offered = ProviderRegistry([provider]).get("partial")
    assert offered is not None
    assert [op.name for op in offered.operations] == ["list_pipelines", "get_pipeline"]


def test_a_factory_without_a_declared_adapter_type_is_refused() -> None:
    def factory(connection: Connection) -> Any:
        return _Adapter(connection)

    provider = Provider(name="f", title="F", create_adapter=factory, operations=())
    with pytest.raises(ProviderLoadError, match="adapter_type"):
        ProviderRegistry([provider])
