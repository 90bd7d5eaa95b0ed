"""Hardening item 11: a tool's name can never make another tool unreachable by its id.

REST routes take ``{tool}`` as a name or an id. Against the running service: names
shaped like ids are refused, and an id-shaped reference is looked up as an id only,
so even a row named like another's id (made before the rule) cannot shadow it.
"""

from __future__ import annotations

import uuid

import httpx
import pytest

from devmesh.store.rows import ToolRow, utcnow
from tests.support.live import LiveService

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

CI = {"provider": "buildbot", "base_url": "http://ci.internal:8010"}


async def tenant(live: LiveService) -> tuple[str, dict[str, str]]:
    created, key = await live.services.tenants.create_tenant(f"t-{uuid.uuid4().hex[:8]}")
    return created.id, {"Authorization": f"Bearer {key}"}


async def test_a_tool_named_like_another_tools_id_is_refused_naming_the_field(
    live: LiveService,
) -> None:
    _, auth = await tenant(live)
    async with httpx.AsyncClient(base_url=live.base_url, headers=auth) as http:
        ci = (await http.post("/api/v1/tools", json={"name": "ci", **CI})).json()
        clash = await http.post("/api/v1/tools", json={"name": ci["id"], **CI})
        shown = await http.get(f"/api/v1/tools/{ci['id']}")
    assert clash.status_code == 422, clash.text
    assert clash.headers["content-type"] == "application/problem+json"
    assert "name" in clash.text
    assert shown.json()["name"] == "ci"


async def test_an_id_shaped_reference_finds_the_tool_with_that_id_not_a_name(
    live: LiveService,
) -> None:
    tenant_id, auth = await tenant(live)
    async with httpx.AsyncClient(base_url=live.base_url, headers=auth) as http:
        ci = (await http.post("/api/v1/tools", json={"name": "ci", **CI})).json()
        # A row from before names were checked, named exactly like ci's id.
        async with live.services.db.session() as session:
            now = utcnow()
            session.add(
                ToolRow(
                    id=str(uuid.uuid4()),
                    tenant_id=tenant_id,
                    name=ci["id"],
                    provider="buildbot",
                    base_url="http://old.internal:8010",
                    config={},
                    credential_mode="either",
                    resilience={},
                    created_at=now,
                    updated_at=now,
                )
            )
        by_id = await http.get(f"/api/v1/tools/{ci['id']}")
        by_capital_id = await http.get(f"/api/v1/tools/{ci['id'].upper()}")
        operations = await http.get(f"/api/v1/tools/{ci['id']}/operations")
    assert by_id.status_code == 200
    assert by_id.json()["id"] == ci["id"]
    assert by_id.json()["name"] == "ci"
    assert by_capital_id.json()["id"] == ci["id"]
    assert operations.status_code == 200


async def test_an_id_shaped_reference_that_is_no_tools_id_is_404(live: LiveService) -> None:
    _, auth = await tenant(live)
    async with httpx.AsyncClient(base_url=live.base_url, headers=auth) as http:
        missing = await http.get(f"/api/v1/tools/{uuid.uuid4()}")
    assert missing.status_code == 404
    assert missing.json()["code"] == "unknown_tool"


async def test_a_tool_name_must_start_with_a_letter(live: LiveService) -> None:
    _, auth = await tenant(live)
    async with httpx.AsyncClient(base_url=live.base_url, headers=auth) as http:
        refused = await http.post("/api/v1/tools", json={"name": "9ci", **CI})
    assert refused.status_code == 422
    assert "name" in refused.text
