"""An assistant that turns a request in words into GitLab calls: the original Developer
Mesh guide's ``DevOpsAssistant``, with the two helpers it leaves out written plainly.

    export DEVMESH_API_KEY=dmk_…
    python examples/devops_assistant.py "deploy group/app to staging"
    python examples/devops_assistant.py "show failed builds for group/app"

"deploy P to E" triggers project ``P-deploy`` on branch ``E``; "failed builds for P"
lists P's recent failures with where and why each failed. The tenant needs a tool
named ``gitlab``; ``DEVMESH_URL`` as in gitlab_integration.py.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys

from devops_mcp import MCPClient


class DevOpsAssistant:
    """AI assistant with GitLab integration"""

    def __init__(self, mcp: MCPClient):
        self.mcp = mcp

    def extract_project(self, user_message: str) -> str:
        found = re.search(r"\b(?:deploy|for|of|in)\s+([\w.\-/]+)", user_message, re.IGNORECASE)
        if found is None:
            raise ValueError(f"which project? {user_message!r} names none")
        return found.group(1)

    def extract_environment(self, user_message: str) -> str:
        found = re.search(r"\bto\s+([\w.\-/]+)", user_message, re.IGNORECASE)
        return found.group(1) if found else "staging"

    async def handle_build_request(self, user_message: str) -> str:
        """Process natural language build requests"""

        # Parse intent
        if "deploy" in user_message.lower():
            # Extract project and environment
            project = self.extract_project(user_message)
            env = self.extract_environment(user_message)

            # Trigger deployment pipeline
            result = await self.mcp.execute_tool(
                "gitlab.trigger_build",
                {
                    "project": f"{project}-deploy",
                    "branch": env,
                    "parameters": {"ENVIRONMENT": env, "VERSION": "latest"},
                },
            )

            return f"Deployment started for {project} to {env}. Monitor at: {result['url']}"

        elif "failed builds" in user_message.lower():
            # List recent failures
            failures = await self.mcp.execute_tool(
                "gitlab.list_failed_builds",
                {"project": self.extract_project(user_message), "limit": 5},
            )

            response = "Recent failed builds:\n"
            for build in failures["builds"]:
                response += f"\n- {build['id']}: {build['failure_reason']}"
                response += f"\n  Failed at: {build['failed_stage']}"

            return response

        return "I can deploy a project or list its failed builds."


async def main() -> None:
    async with MCPClient(
        base_url=os.environ.get("DEVMESH_URL", "http://localhost:8081/api/v1")
    ) as mcp:
        print(await DevOpsAssistant(mcp).handle_build_request(" ".join(sys.argv[1:])))


if __name__ == "__main__":
    asyncio.run(main())
