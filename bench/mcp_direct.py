"""CPU per ``tools/call`` in the gateway process: the direct path against the SDK's.

In process, without HTTP or a client: the app is called as ASGI with one prebuilt
request (the official client's envelope, ``ci_get_build_status`` on a canned
Buildbot upstream in a subprocess), sequentially, and the process's CPU time is
divided by the calls. Rounds alternate the app's endpoint (direct path on) with
one that leaves every request to the SDK (``McpHttpEndpoint(direct=False)``), and
the REST route for the same operation, so a busy machine slows all three alike.
The figures include what every call pays (gate, request context, the tool call
itself); the differences are the paths'.

Run: ``uv run --group bench python -m bench.mcp_direct [--calls 500] [--rounds 4]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import mcp_types as types
from fastapi import FastAPI
from starlette.types import Message

from devmesh.app import Services, create_app
from devmesh.config import Settings
from devmesh.mcp.http import McpHttpEndpoint
from tests.upstream import run_upstream

TOOL = "ci_get_build_status"
VERSION = "2026-07-28"


def _mcp_request(key: str) -> tuple[dict[str, Any], bytes]:
    meta = {
        types.PROTOCOL_VERSION_META_KEY: VERSION,
        types.CLIENT_INFO_META_KEY: {"name": "mcp", "version": "0.1.0"},
        types.CLIENT_CAPABILITIES_META_KEY: {},
    }
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": TOOL, "arguments": {"build_id": "1"}, "_meta": meta},
    }
    headers = {
        "authorization": f"Bearer {key}",
        "content-type": "application/json",
        "accept": "application/json, text/event-stream",
        "mcp-protocol-version": VERSION,
        "mcp-method": "tools/call",
        "mcp-name": TOOL,
        "host": "127.0.0.1",
    }
    return _scope("/mcp", "toolsets=builds", headers), json.dumps(body).encode()


def _rest_request(key: str) -> tuple[dict[str, Any], bytes]:
    headers = {
        "authorization": f"Bearer {key}",
        "content-type": "application/json",
        "host": "127.0.0.1",
    }
    path = "/api/v1/tools/ci/operations/get_build_status"
    return _scope(path, "", headers), json.dumps({"build_id": "1"}).encode()


def _scope(path: str, query: str, headers: dict[str, str]) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(k.encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
    }


async def _call(app: FastAPI, scope: dict[str, Any], body: bytes) -> int:
    sent: list[Message] = []
    given = False

    async def receive() -> Message:
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(dict(scope, headers=list(scope["headers"])), receive, send)
    status: int = sent[0]["status"]
    return status


async def _cpu_ms_per_call(app: FastAPI, scope: dict[str, Any], body: bytes, calls: int) -> float:
    started = time.process_time()
    for _ in range(calls):
        status = await _call(app, scope, body)
        if status != 200:
            raise RuntimeError(f"a call answered {status}")
    return (time.process_time() - started) * 1000 / calls


async def run(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="devmesh-bench-direct-"))
    settings = Settings.model_validate(
        {
            "data_dir": work,
            "database_url": f"sqlite+aiosqlite:///{work / 'db.sqlite'}",
            # One key makes every call: the per-key limit would measure the limit.
            "rate_limit": {"requests_per_minute": None},
        }
    )
    async with run_upstream() as upstream:
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            services: Services = app.state.services
            _, key = await services.tenants.create_tenant("bench")
            tool = {"name": "ci", "provider": "buildbot", "base_url": upstream.base_url}
            scope = _scope(
                "/api/v1/tools",
                "",
                {"authorization": f"Bearer {key}", "content-type": "application/json"},
            )
            if (status := await _call(app, scope, json.dumps(tool).encode())) != 201:
                raise RuntimeError(f"registering the tool answered {status}")
            direct: McpHttpEndpoint = app.state.mcp
            sdk_only = McpHttpEndpoint(direct.server, host=settings.host, direct=False)
            mcp_scope, mcp_body = _mcp_request(key)
            rest_scope, rest_body = _rest_request(key)
            figures: dict[str, list[float]] = {"mcp direct": [], "mcp sdk": [], "rest": []}
            async with sdk_only.run():
                for endpoint in (direct, sdk_only):  # warm-up
                    app.state.mcp = endpoint
                    await _cpu_ms_per_call(app, mcp_scope, mcp_body, 50)
                await _cpu_ms_per_call(app, rest_scope, rest_body, 50)
                for _ in range(args.rounds):
                    for name, endpoint in (("mcp direct", direct), ("mcp sdk", sdk_only)):
                        app.state.mcp = endpoint
                        figures[name].append(
                            await _cpu_ms_per_call(app, mcp_scope, mcp_body, args.calls)
                        )
                    figures["rest"].append(
                        await _cpu_ms_per_call(app, rest_scope, rest_body, args.calls)
                    )
                app.state.mcp = direct
    print(f"{'path':<12} {'CPU ms/call (median of rounds)':>32}  rounds")
    for name, values in figures.items():
        rounds = " ".join(f"{v:.3f}" for v in values)
        print(f"{name:<12} {statistics.median(values):>32.3f}  {rounds}")
    saved = statistics.median(figures["mcp sdk"]) - statistics.median(figures["mcp direct"])
    print(f"mcp_direct cpu_saved_ms={saved:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=4)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
