"""Start the CircleCI stand-in as a process on loopback, and set it up.

``run_circleci()`` starts ``python -m tests.standins.circleci --port 0``, waits
(bounded) until it answers, and stops it by its PID on exit; on the way out it fails
loudly if any request or answer broke CircleCI's OpenAPI description::

    async with run_circleci() as circleci:
        await circleci.reset(tokens={"CCIPAT_…": "octocat"})
        await circleci.add_project("gh/org/app", workflows={"build": [{"name": "test",
                                   "steps": ["make test"]}]})
        ... point the provider at circleci.base_url with Circle-Token CCIPAT_… ...
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from tests.support.standin import run_standin

__all__ = ["CircleCIStandin", "SpecViolation", "run_circleci"]


class SpecViolation(AssertionError):
    """The stand-in sent or got something CircleCI's OpenAPI description does not allow."""


@dataclass(frozen=True)
class CircleCIStandin:
    """A running stand-in: ``base_url`` (what ``https://circleci.com`` is) and its controls."""

    base_url: str
    pid: int
    control: httpx.AsyncClient

    async def _call(self, method: str, path: str, body: Any = None) -> Any:
        answer = await self.control.request(method, f"/_standin/{path}", json=body)
        answer.raise_for_status()
        return answer.json()

    async def reset(self, **settings: Any) -> None:
        """Forget every project and pipeline; ``tokens`` ({token: login}),
        ``quiet_period_s``, ``webhook_url``, ``signing_secret``."""
        await self._call("POST", "reset", settings)

    async def add_project(
        self, slug: str, *, workflows: dict[str, list[dict[str, Any]]], **fields: Any
    ) -> None:
        """A project whose config has ``workflows`` ({name: [{name, steps, artifacts}]});
        ``parameters`` ({name: default}) are the pipeline parameters it declares."""
        await self._call("POST", "projects", {"slug": slug, "workflows": workflows, **fields})

    async def deliveries(self) -> list[dict[str, Any]]:
        """The webhook bodies sent so far, in order."""
        result: list[dict[str, Any]] = await self._call("GET", "deliveries")
        return result

    async def violations(self) -> list[str]:
        result: list[str] = await self._call("GET", "violations")
        return result


@asynccontextmanager
async def run_circleci() -> AsyncIterator[CircleCIStandin]:
    async with run_standin(
        "tests.standins.circleci", health="/_standin/health", what="CircleCI stand-in"
    ) as running:
        standin = CircleCIStandin(
            base_url=running.base_url, pid=running.pid, control=running.control
        )
        yield standin
        found = await standin.violations()
        if found:
            raise SpecViolation(
                f"{len(found)} exchange(s) broke CircleCI's OpenAPI description:\n"
                + "\n".join(found[:10])
            )
