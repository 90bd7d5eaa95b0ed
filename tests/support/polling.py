"""Waiting, bounded, until a build or pipeline run settles: through an adapter or over MCP."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import anyio
from mcp import Client

from devmesh.adapters.protocols import CIAdapter, PipelineAdapter
from devmesh.domain.models import Build, BuildStatus, PipelineRun
from tests.support.live import structured

__all__ = ["DEADLINE_S", "FINAL", "is_running", "mcp_status", "settled", "settled_run"]

DEADLINE_S = 90.0
FINAL = {"succeeded", "failed", "cancelled"}


def is_running(build: Build) -> bool:
    return build.status is BuildStatus.RUNNING


async def settled(
    adapter: CIAdapter,
    build_id: str,
    done: Callable[[Build], bool] | None = None,
    *,
    seen: list[BuildStatus] | None = None,
) -> Build:
    """Poll until ``done`` (by default: finished), noting each status in ``seen``."""
    done = done or (lambda build: build.status.finished)
    deadline = time.monotonic() + DEADLINE_S
    while True:
        build = await adapter.get_build(build_id)
        if seen is not None and (not seen or seen[-1] is not build.status):
            seen.append(build.status)
        if done(build):
            return build
        assert time.monotonic() < deadline, f"{build_id} stuck at {build.status}: {build}"
        await anyio.sleep(0.1)


async def settled_run(adapter: PipelineAdapter, run_id: str) -> PipelineRun:
    deadline = time.monotonic() + DEADLINE_S
    while True:
        run = await adapter.get_pipeline_run(run_id)
        if run.status.finished:
            return run
        assert time.monotonic() < deadline, f"run {run_id} stuck at {run.status}: {run}"
        await anyio.sleep(0.2)


async def mcp_status(
    client: Client, tool: str, build_id: str, wanted: set[str] | None = None
) -> dict[str, Any]:
    """Poll ``{tool}_get_build_status`` until the status is one of ``wanted`` (final)."""
    wanted = wanted or FINAL
    deadline = time.monotonic() + DEADLINE_S
    while True:
        build = structured(
            await client.call_tool(f"{tool}_get_build_status", {"build_id": build_id})
        )
        if build["status"] in wanted:
            return build
        assert time.monotonic() < deadline, f"build {build_id} stuck at {build['status']}"
        await anyio.sleep(0.2)
