"""Buildbot: a CI server that runs anywhere, driven through its REST API."""

from __future__ import annotations

from devmesh.adapters.operations import CI_OPERATIONS
from devmesh.adapters.registry import Connection, Provider
from devmesh.providers.buildbot.adapter import BuildbotAdapter
from devmesh.providers.buildbot.models import BuildbotConfig

__all__ = ["provider"]


def _create(connection: Connection) -> BuildbotAdapter:
    return BuildbotAdapter(connection)


provider = Provider(
    name="buildbot",
    title="Buildbot",
    description="Trigger, watch, cancel and retry Buildbot builds and read their logs. "
    "A project is a builder name.",
    create_adapter=_create,
    operations=CI_OPERATIONS,
    config_model=BuildbotConfig,
    docs_url="https://docs.buildbot.net/latest/developer/rest.html",
)
