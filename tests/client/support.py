"""A tenant with a tool named ``gitlab`` on a real CI, for the client's tests and examples."""

from __future__ import annotations

import uuid

import httpx

from tests.standins.gitlab.fixture import GitLabStandin
from tests.support.buildbot import BuildbotServer
from tests.support.live import LiveService

__all__ = ["TOKEN", "api_url", "buildbot_named_gitlab", "gitlab_tenant"]

TOKEN = "glpat-client-tests-only"


def api_url(live: LiveService) -> str:
    return f"{live.base_url}/api/v1"


async def _tenant_with(live: LiveService, tool: dict[str, object], token: str | None) -> str:
    _, key = await live.services.tenants.create_tenant(f"t-{uuid.uuid4().hex[:8]}")
    auth = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=api_url(live), headers=auth) as http:
        created = await http.post("/tools", json=tool)
        assert created.status_code == 201, created.text
        if token is not None:
            stored = await http.put(
                f"/tools/{tool['name']}/credentials",
                json={"credentials": {"type": "private_token", "token": token}},
            )
            assert stored.status_code == 204, stored.text
    return key


async def gitlab_tenant(
    live: LiveService, gitlab: GitLabStandin, *, token: str | None = TOKEN
) -> str:
    """A new tenant's API key; its tool ``gitlab`` is the GitLab stand-in (with ``token``
    stored, unless None)."""
    tool = {"name": "gitlab", "provider": "gitlab", "base_url": gitlab.base_url}
    return await _tenant_with(live, tool, token)


async def buildbot_named_gitlab(live: LiveService, buildbot: BuildbotServer) -> str:
    """A new tenant's API key; its tool ``gitlab`` is a real Buildbot master."""
    tool = {"name": "gitlab", "provider": "buildbot", "base_url": buildbot.base_url}
    return await _tenant_with(live, tool, None)
