"""Contract, for providers that offer them: pipelines through the adapter protocol, and
artifacts read in bounded pages through the MCP tools."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from devmesh.adapters.artifacts import MAX_BYTES
from devmesh.domain.errors import UpstreamNotFound
from devmesh.domain.models import BuildStatus, PipelineRequest
from devmesh.mcp.errors import error_payload
from tests.contract.agent import finished
from tests.contract.conftest import ToolAt
from tests.contract.target import ProviderTarget
from tests.support.live import LiveService, mcp_client, structured
from tests.support.polling import settled_run

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

PAGE_BYTES = 64
MAX_PAGES = 200


@pytest.mark.offers("pipelines")
async def test_a_pipeline_runs_to_succeeded_and_its_builds_are_ordinary_builds(
    adapter: Any, target: ProviderTarget
) -> None:
    assert target.pipeline is not None
    offered = [pipeline.id for pipeline in await adapter.list_pipelines()]
    run = await adapter.trigger_pipeline(target.pipeline)
    done = await settled_run(adapter, run.id)
    assert target.pipeline.pipeline in offered
    assert done.id == run.id
    assert done.status is BuildStatus.SUCCEEDED
    assert done.builds
    for build in done.builds:
        assert (await adapter.get_build(build.id)).status is BuildStatus.SUCCEEDED


@pytest.mark.offers("pipelines")
async def test_an_unknown_pipeline_is_not_found(adapter: Any, target: ProviderTarget) -> None:
    with pytest.raises(UpstreamNotFound):
        await adapter.trigger_pipeline(PipelineRequest(pipeline=target.unknown_pipeline))
    for run_id in target.unknown_build_ids:
        with pytest.raises(UpstreamNotFound):
            await adapter.get_pipeline_run(run_id)


def _bytes(page: dict[str, Any]) -> bytes:
    if page["encoding"] == "base64":
        return base64.b64decode(page["content"])
    content: str = page["content"]
    return content.encode()


@pytest.mark.offers("artifacts")
async def test_an_artifact_downloads_in_bounded_pages_that_join_up_to_the_whole(
    live: LiveService, target: ProviderTarget, tenant_at: ToolAt
) -> None:
    key = await tenant_at()
    async with mcp_client(live.mcp_url, key) as client:
        done = await finished(client, target, "succeeds")
        listed = structured(await client.call_tool("ci_get_artifacts", {"build_id": done["id"]}))
        artifact = next(a for a in listed["artifacts"] if a["downloadable"])
        where = {"build_id": done["id"], "artifact_id": artifact["id"]}
        whole = structured(
            await client.call_tool("ci_download_artifact", {**where, "max_bytes": MAX_BYTES})
        )
        pages = [
            structured(
                await client.call_tool("ci_download_artifact", {**where, "max_bytes": PAGE_BYTES})
            )
        ]
        while pages[-1]["truncated"]:
            assert len(pages) < MAX_PAGES, "the artifact never ended"
            offset = pages[-1]["next_offset"]
            pages.append(
                structured(
                    await client.call_tool(
                        "ci_download_artifact",
                        {**where, "offset": offset, "max_bytes": PAGE_BYTES},
                    )
                )
            )
        too_big = await client.call_tool(
            "ci_download_artifact", {**where, "max_bytes": MAX_BYTES + 1}
        )
        missing = await client.call_tool(
            "ci_download_artifact", {**where, "artifact_id": target.unknown_artifact_id}
        )
    assert done["status"] == "succeeded"
    assert whole["truncated"] is False
    assert all(page["length"] <= PAGE_BYTES for page in pages)
    assert [page["offset"] for page in pages[1:]] == [page["next_offset"] for page in pages[:-1]]
    assert b"".join(_bytes(page) for page in pages) == _bytes(whole)
    assert too_big.is_error is True and error_payload(too_big)["error"] == "invalid_input"
    assert missing.is_error is True and error_payload(missing)["error"] == "upstream_not_found"
