"""Start the GitLab stand-in as a process on loopback, and drive its control API.

``run_gitlab()`` starts ``python -m tests.standins.gitlab --port 0``, reads the port it
prints, waits (bounded) until it answers, and stops it by its PID on exit. The
``gitlab_standin`` fixture (registered in ``tests/conftest.py``) shares one process per
session and resets it before each test::

    async def test_x(gitlab_standin: GitLabStandin) -> None:
        project = await gitlab_standin.seed(path="group/app", token="glpat-x")
        await gitlab_standin.manual_clock()
        ... create a pipeline through the API with PRIVATE-TOKEN: glpat-x ...
        await gitlab_standin.advance(1.0)
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.support.standin import run_standin

__all__ = ["GitLabStandin", "gitlab_standin", "gitlab_standin_process", "run_gitlab"]


@dataclass(frozen=True)
class GitLabStandin:
    """A running stand-in: ``base_url`` (GitLab's root; the API is ``/api/v4``) and controls."""

    base_url: str
    pid: int
    control: httpx.AsyncClient

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/api/v4"

    async def _call(self, method: str, path: str, body: Any = None) -> Any:
        answer = await self.control.request(method, f"/_standin/{path}", json=body)
        answer.raise_for_status()
        return answer.json() if answer.content else None

    async def reset(self) -> None:
        await self._call("POST", "reset")

    async def add_user(self, username: str, name: str | None = None) -> dict[str, Any]:
        result: dict[str, Any] = await self._call(
            "POST", "users", {"username": username, "name": name}
        )
        return result

    async def add_token(
        self,
        token: str,
        *,
        username: str,
        kind: str = "personal",
        scopes: list[str] | None = None,
        projects: list[int] | None = None,
    ) -> None:
        body = {"token": token, "username": username, "kind": kind, "projects": projects}
        await self._call("POST", "tokens", body | {"scopes": scopes or ["api"]})

    async def add_project(self, path: str, **fields: Any) -> dict[str, Any]:
        result: dict[str, Any] = await self._call("POST", "projects", {"path": path, **fields})
        return result

    async def set_script(self, project_id: int, script: dict[str, Any]) -> None:
        await self._call("PUT", f"projects/{project_id}/script", script)

    async def seed(
        self, *, path: str = "group/app", token: str = "glpat-standin", **fields: Any
    ) -> dict[str, Any]:
        """A user ``root``, a token for it that sees every project, and one project."""
        await self.add_user("root", "Administrator")
        await self.add_token(token, username="root")
        return await self.add_project(path, **fields)

    async def add_schedule(self, **fields: Any) -> int:
        result: dict[str, Any] = await self._call("POST", "schedules", fields)
        return int(result["id"])

    async def inject(self, status: int, **fields: Any) -> None:
        """The next ``count`` (default 1) matching API requests answer ``status``."""
        await self._call("POST", "faults", {"status": status, **fields})

    async def clear_faults(self) -> None:
        await self._call("DELETE", "faults")

    async def rate_limit(self, limit: int, **fields: Any) -> None:
        await self._call("PUT", "rate_limit", {"limit": limit, **fields})

    async def manual_clock(self, manual: bool = True) -> None:
        """Stop (or restart) time: pipelines then move only on ``advance``."""
        await self._call("POST", "clock", {"manual": manual})

    async def advance(self, seconds: float) -> None:
        await self._call("POST", "clock/advance", {"seconds": seconds})

    async def requests(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self._call("GET", "requests")
        return result


@asynccontextmanager
async def run_gitlab() -> AsyncIterator[GitLabStandin]:
    """Start the stand-in on a free loopback port; stop it by PID on exit."""
    async with run_standin(
        "tests.standins.gitlab", health="/_standin/health", what="GitLab stand-in"
    ) as running:
        yield GitLabStandin(base_url=running.base_url, pid=running.pid, control=running.control)


@pytest.fixture(scope="session")
async def gitlab_standin_process() -> AsyncIterator[GitLabStandin]:
    """One stand-in process for the session (starting one takes ~0.5 s)."""
    async with run_gitlab() as standin:
        yield standin


@pytest.fixture
async def gitlab_standin(gitlab_standin_process: GitLabStandin) -> GitLabStandin:
    """The session's stand-in, emptied: no users, projects, faults; the wall clock."""
    await gitlab_standin_process.reset()
    return gitlab_standin_process
