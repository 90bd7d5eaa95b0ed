"""Registering GitHub's whole OpenAPI description as an openapi tool: time and memory.

GitHub's description (``@octokit/openapi`` 23.0.2, 13 MB, ~1,200 operations) is
installed by ``scripts/ensure-octokit``, as the tests do. One run opens the service's
components in this process (embedded SQLite in a temporary directory), then measures

* ``register``: ``ToolService.register_tool`` with the description in the request and
  every method offered: checking it (shape and references), selecting operations,
  storing it;
* ``list``: the first listing of its operations on a cold cache (the stored
  description read, parsed, every operation's schemas built), then a warm one;

and the process's resident memory before, after registering and after listing
(``/proc/self/statm``; the peak is ``ru_maxrss``). The last line is machine-readable:

    openapi_register operations=… register_s=… list_cold_s=… list_warm_s=…
    rss_delta_mb=… peak_rss_mb=…  (one line)

Run: ``uv run python bench/openapi_register.py``.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from devmesh.app import open_services
from devmesh.config import Settings
from devmesh.tools.models import ToolCreate

_REPO = Path(__file__).resolve().parents[1]
_FULL = "node_modules/@octokit/openapi/generated/api.github.com.json"


def _description() -> Path:
    root = os.environ.get("DEVMESH_TEST_CACHE") or str(
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "devmesh-test"
    )
    where = Path(root) / "octokit" / _FULL
    if not where.is_file():
        subprocess.run(["bash", str(_REPO / "scripts" / "ensure-octokit")], check=True, timeout=300)
    return where


def _rss_mb() -> float:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


async def run() -> int:
    document: dict[str, Any] = json.loads(_description().read_text())
    with tempfile.TemporaryDirectory(prefix="devmesh-openapi-bench-") as tmp:
        settings = Settings.model_validate(
            {"data_dir": f"{tmp}/data", "database_url": f"sqlite+aiosqlite:///{tmp}/d.db"}
        )
        async with open_services(settings) as services:
            tenant, _ = await services.tenants.create_tenant("bench")
            before = _rss_mb()
            started = time.perf_counter()
            await services.tools.register_tool(
                tenant,
                ToolCreate(
                    name="gh",
                    provider="openapi",
                    base_url="https://api.github.com",  # type: ignore[arg-type]
                    spec=document,
                    config={"methods": ["get", "put", "post", "patch", "delete"]},
                ),
            )
            register_s = time.perf_counter() - started
            registered = _rss_mb()
            started = time.perf_counter()
            listed = await services.tools.operations(tenant, "gh")
            list_cold_s = time.perf_counter() - started
            started = time.perf_counter()
            await services.tools.operations(tenant, "gh")
            list_warm_s = time.perf_counter() - started
            after = _rss_mb()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"operations        {len(listed)}")
    print(f"register          {register_s:.2f} s   (rss +{registered - before:.0f} MB)")
    print(f"first listing     {list_cold_s:.2f} s   (rss +{after - registered:.0f} MB)")
    print(f"warm listing      {list_warm_s * 1000:.1f} ms")
    print(f"rss               {before:.0f} MB -> {after:.0f} MB; peak {peak:.0f} MB")
    print(
        f"openapi_register operations={len(listed)} register_s={register_s:.2f} "
        f"list_cold_s={list_cold_s:.2f} list_warm_s={list_warm_s:.4f} "
        f"rss_delta_mb={after - before:.0f} peak_rss_mb={peak:.0f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(run()))
