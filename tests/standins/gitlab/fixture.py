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

import asyncio
import contextlib
import os
import re
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

__all__ = ["GitLabStandin", "gitlab_standin", "gitlab_standin_process", "run_gitlab"]

_REPO = Path(__file__).resolve().parents[3]
_START_TIMEOUT_S = 20.0
_STOP_TIMEOUT_S = 5.0


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
    with tempfile.TemporaryDirectory(prefix="devmesh-gitlab-") as scratch:
        log = Path(scratch) / "gitlab.log"
        with log.open("wb") as log_file:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "tests.standins.gitlab", "--port", "0",
                cwd=_REPO, stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, stderr=log_file,
            )  # fmt: skip
        try:
            base_url = await _started(process, log)
            async with httpx.AsyncClient(base_url=base_url, trust_env=False, timeout=10) as control:
                await _answering(control, process, log)
                yield GitLabStandin(base_url=base_url, pid=process.pid, control=control)
        finally:
            await _stop(process)


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


async def _started(process: asyncio.subprocess.Process, log: Path) -> str:
    assert process.stdout is not None
    try:
        async with asyncio.timeout(_START_TIMEOUT_S):
            line = (await process.stdout.readline()).decode()
    except TimeoutError:
        raise RuntimeError(f"GitLab stand-in printed no port:\n{_tail(log)}") from None
    match = re.fullmatch(r"listening on (http://\S+)\s*", line)
    if match is None:
        raise RuntimeError(f"GitLab stand-in did not start ({line!r}):\n{_tail(log)}")
    return match.group(1)


async def _answering(
    control: httpx.AsyncClient, process: asyncio.subprocess.Process, log: Path
) -> None:
    deadline = time.monotonic() + _START_TIMEOUT_S
    while True:
        if process.returncode is not None:
            raise RuntimeError(f"GitLab stand-in exited with {process.returncode}:\n{_tail(log)}")
        with contextlib.suppress(httpx.TransportError):
            if (await control.get("/_standin/health")).status_code == 200:
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"GitLab stand-in did not answer:\n{_tail(log)}")
        await asyncio.sleep(0.05)


async def _stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGTERM)
        try:
            async with asyncio.timeout(_STOP_TIMEOUT_S):
                await process.wait()
            return
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGKILL)
    async with asyncio.timeout(_STOP_TIMEOUT_S):
        await process.wait()


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
