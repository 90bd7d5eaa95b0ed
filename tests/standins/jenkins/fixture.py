"""Start the Jenkins stand-in as a process on loopback, and set it up.

``run_jenkins()`` starts ``python -m tests.standins.jenkins --port 0``, waits (bounded)
until it answers, and stops it by its PID on exit::

    async with run_jenkins() as jenkins:
        await jenkins.reset(users={"admin": "11aa…"})
        await jenkins.add_job("team/app", steps=["make"], artifacts="dist/*")
        ... point the provider at jenkins.base_url, user admin, API token 11aa… ...
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from tests.support.standin import run_standin

__all__ = ["JenkinsStandin", "run_jenkins"]


@dataclass(frozen=True)
class JenkinsStandin:
    """A running stand-in: ``base_url`` (the controller's root) and its controls."""

    base_url: str
    pid: int
    control: httpx.AsyncClient

    async def _call(self, method: str, path: str, body: Any = None) -> Any:
        answer = await self.control.request(method, f"/_standin/{path}", json=body)
        answer.raise_for_status()
        return answer.json()

    async def reset(self, **settings: Any) -> None:
        """Forget every job, build and queue item; ``users`` ({name: API token}),
        ``crumbs`` (default on), ``quiet_period_s``, ``left_ttl_s``, ``notify_url``."""
        await self._call("POST", "reset", settings)

    async def add_job(self, path: str, *, steps: list[str], **fields: Any) -> None:
        """A freestyle job; ``parameters`` ({name: default}), ``artifacts`` (a glob)."""
        await self._call("POST", "jobs", {"path": path, "steps": steps, **fields})

    async def rotate_crumbs(self) -> None:
        """Make every crumb issued so far invalid, as a controller restart does."""
        await self._call("POST", "crumbs/rotate")

    async def deliveries(self) -> list[dict[str, Any]]:
        """The Notification plugin bodies sent so far, in order."""
        result: list[dict[str, Any]] = await self._call("GET", "deliveries")
        return result


@asynccontextmanager
async def run_jenkins() -> AsyncIterator[JenkinsStandin]:
    async with run_standin(
        "tests.standins.jenkins", health="/_standin/health", what="Jenkins stand-in"
    ) as running:
        yield JenkinsStandin(base_url=running.base_url, pid=running.pid, control=running.control)
