"""Start the GitHub stand-in as a process on loopback, and drive its control API.

``run_github()`` starts ``python -m tests.standins.github --port 0``, waits (bounded)
until it answers, and stops it by its PID on exit; on the way out it fails if the
stand-in saw a request or gave an answer GitHub's OpenAPI description does not allow.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from tests.standins.github.spec import subset
from tests.support.standin import run_standin

__all__ = ["GitHubStandin", "run_github"]


@dataclass(frozen=True)
class GitHubStandin:
    """A running stand-in: ``base_url`` is the API's root, like https://api.github.com."""

    base_url: str
    pid: int
    control: httpx.AsyncClient

    async def _call(self, method: str, what: str, body: Any = None) -> Any:
        answer = await self.control.request(method, f"/_standin/{what}", json=body)
        answer.raise_for_status()
        return answer.json()

    async def reset(self) -> None:
        await self._call("POST", "reset")

    async def add_token(self, token: str) -> None:
        await self._call("POST", "tokens", {"token": token})

    async def add_app(self, *, installation_id: int, app_id: str, public_key: str) -> None:
        body = {"installation_id": installation_id, "app_id": app_id, "public_key": public_key}
        await self._call("POST", "apps", body)

    async def add_repo(self, full_name: str, workflows: dict[str, list[dict[str, Any]]]) -> None:
        await self._call("POST", "repos", {"full_name": full_name, "workflows": workflows})

    async def legacy_dispatch(self, on: bool = True) -> None:
        """Answer dispatches with a bare 204, as GitHub Enterprise Server before 3.18 does."""
        await self._call("PUT", "legacy_dispatch", {"on": on})

    async def violations(self) -> list[str]:
        found: list[str] = await self._call("GET", "violations")
        return found

    async def requests(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = await self._call("GET", "requests")
        return found


@asynccontextmanager
async def run_github() -> AsyncIterator[GitHubStandin]:
    """Start the stand-in on a free loopback port; fail on any violation; stop it."""
    subset()  # fetch and cut the description here, not inside the child's start-up wait
    async with run_standin(
        "tests.standins.github", health="/_standin/health", what="GitHub stand-in"
    ) as running:
        standin = GitHubStandin(base_url=running.base_url, pid=running.pid, control=running.control)
        yield standin
        found = await standin.violations()
        assert not found, "the GitHub stand-in saw what GitHub would not:\n" + "\n".join(found)
