"""Trigger a GitLab build, follow it to the end, and on failure show its logs and
similar past failures: the original Developer Mesh guide's example, run as written.

    export DEVMESH_API_KEY=dmk_…                       # the tenant's key
    export DEVMESH_URL=http://localhost:8081/api/v1    # the default
    python examples/gitlab_integration.py group/app main

The tenant needs a tool named ``gitlab`` (any CI provider works: a Buildbot master
registered as ``gitlab`` answers the same operations). Optional: a third argument,
the build parameters as JSON (default ``{"CLEAN_BUILD": "true", "RUN_TESTS": "true"}``);
``POLL_SECONDS`` (default 30) and ``MAX_WAIT_SECONDS`` (default 3600) for the wait.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from typing import Any

from devops_mcp import MCPClient

POLL_SECONDS = float(os.environ.get("POLL_SECONDS", "30"))
MAX_WAIT_SECONDS = float(os.environ.get("MAX_WAIT_SECONDS", "3600"))
PARAMETERS = {"CLEAN_BUILD": "true", "RUN_TESTS": "true"}


class GitLabIntegration:
    def __init__(self, mcp_client: MCPClient, parameters: dict[str, Any] | None = None):
        self.mcp = mcp_client
        self.parameters = PARAMETERS if parameters is None else parameters

    async def trigger_and_monitor_build(self, project: str, branch: str) -> dict[str, Any]:
        """Trigger a build and monitor its progress"""

        # Trigger build via MCP tool
        result = await self.mcp.execute_tool(
            "gitlab.trigger_build",
            {"project": project, "branch": branch, "parameters": self.parameters},
        )

        build_id = result["build_id"]
        print(f"Build triggered: {build_id}")
        print(f"URL: {result['url']}")

        # Monitor build status (the guide loops forever; this one gives up in time)
        give_up = time.monotonic() + MAX_WAIT_SECONDS
        while True:
            status = await self.mcp.execute_tool("gitlab.get_build_status", {"build_id": build_id})

            print(f"Status: {status['status']}")

            if status["status"] in ["succeeded", "failed", "cancelled"]:
                break
            if time.monotonic() > give_up:
                raise TimeoutError(f"{build_id} still {status['status']} after {MAX_WAIT_SECONDS}s")

            await asyncio.sleep(POLL_SECONDS)

        # Get logs if failed
        if status["status"] == "failed":
            logs = await self.mcp.execute_tool(
                "gitlab.get_build_logs", {"build_id": build_id, "lines": 500}
            )

            print("\nBuild failed. Last 500 lines of logs:")
            print(logs["content"])

            # Search for similar failures (error_pattern is null until failure analysis ran)
            similar = await self.mcp.search_contexts(
                {
                    "query": f"gitlab build failed {logs['error_pattern'] or ''}".strip(),
                    "type": "gitlab_build",
                    "limit": 5,
                }
            )

            if similar:
                print("\nSimilar failures found:")
                for s in similar:
                    print(f"- {s['build_id']}: {s['resolution']}")

        return status


# Usage
async def main() -> None:
    project, branch = sys.argv[1], sys.argv[2]
    parameters = json.loads(sys.argv[3]) if len(sys.argv) > 3 else None
    mcp = MCPClient(base_url=os.environ.get("DEVMESH_URL", "http://localhost:8081/api/v1"))
    gitlab = GitLabIntegration(mcp, parameters)

    # Trigger build for the branch
    result = await gitlab.trigger_and_monitor_build(project=project, branch=branch)

    print(f"\nBuild completed with status: {result['status']}")
    print(f"Duration: {result['duration']}")


if __name__ == "__main__":
    asyncio.run(main())
