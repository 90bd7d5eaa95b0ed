"""What Developer Mesh learns from a real Buildbot master: its failing builds reach the
service by webhook (and the watcher), and the worker remembers each one, indexes its
log, analyses the failure, finds earlier ones like it with how they were fixed, and
retries a flaky one, once."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from devmesh.domain.models import Build, Tenant
from devmesh.knowledge.analysis import EXCERPT_MAX
from tests.support.buildbot.server import BuildbotServer
from tests.support.live import LiveService, mcp_client, run_service, structured
from tests.support.pushing import PushingTool, move_tool, pushing_master, register_pushed_tool

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

DEADLINE = 90.0
FAST = {"events": {"watcher": {"interval": 0.3}, "claim_idle": 5}}


@dataclass(frozen=True)
class Ci:
    live: LiveService
    buildbot: BuildbotServer
    tenant: Tenant
    key: str
    tool_id: str
    scratch: Path

    def http(self, key: str | None = None) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.live.base_url,
            headers={"Authorization": f"Bearer {key or self.key}"},
            timeout=30,
        )


@pytest.fixture(scope="module")
async def live(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LiveService]:
    async with run_service(tmp_path_factory.mktemp("devmesh"), **FAST) as service:
        yield service


@pytest.fixture(scope="module")
async def registered(live: LiveService) -> PushingTool:
    return await register_pushed_tool(live)


@pytest.fixture(scope="module")
def buildbot(
    tmp_path_factory: pytest.TempPathFactory, live: LiveService, registered: PushingTool
) -> Iterator[BuildbotServer]:
    with pushing_master(Path(tmp_path_factory.mktemp("buildbot")), live, registered) as server:
        yield server


@pytest.fixture(scope="module")
async def ci(
    tmp_path_factory: pytest.TempPathFactory,
    live: LiveService,
    registered: PushingTool,
    buildbot: BuildbotServer,
) -> Ci:
    await move_tool(live, registered, buildbot)
    return Ci(
        live,
        buildbot,
        registered.tenant,
        registered.key,
        registered.tool_id,
        tmp_path_factory.mktemp("flags"),
    )


async def run(ci: Ci, **parameters: Any) -> str:
    """Trigger runtests through MCP; the subject (``br-<n>``) of its events."""
    async with mcp_client(ci.live.mcp_url, ci.key) as client:
        build = structured(
            await client.call_tool(
                "ci_trigger_build", {"project": "runtests", "parameters": parameters}
            )
        )
    subject: str = build["id"]
    return subject


async def final_build(ci: Ci, subject: str) -> dict[str, Any]:
    """The build as its final event carries it, once the worker has learned from it."""
    deadline = time.monotonic() + DEADLINE
    async with ci.http() as http:
        while True:
            events = (
                await http.get("/api/v1/events", params={"tool": "ci", "subject": subject})
            ).json()["events"]
            final = [
                e
                for e in events
                if e["type"] in ("build.completed", "build.failed", "build.cancelled")
            ]
            if final:
                build: dict[str, Any] = final[0]["payload"]
                stored = await http.get(
                    f"/api/v1/contexts/build-{build['id']}", params={"tool": "ci"}
                )
                if stored.status_code == 200:
                    return build
            assert time.monotonic() < deadline, f"build {subject} was not learned from"
            await anyio.sleep(0.3)


async def analysis(ci: Ci, build_id: str) -> dict[str, Any]:
    async with ci.http() as http:
        got = await http.get(f"/api/v1/contexts/failure-analysis-{build_id}", params={"tool": "ci"})
    assert got.status_code == 200, got.text
    data: dict[str, Any] = got.json()["data"]
    return data


async def test_a_failed_build_is_stored_indexed_and_analysed_with_its_failing_line(
    ci: Ci,
) -> None:
    build = await final_build(ci, await run(ci, fail=True))

    async with ci.http() as http:
        context = (
            await http.get(f"/api/v1/contexts/build-{build['id']}", params={"tool": "ci"})
        ).json()
        log = (
            await http.get(f"/api/v1/contexts/build-log-{build['id']}", params={"tool": "ci"})
        ).json()
    found = await analysis(ci, build["id"])

    assert context["type"] == "buildbot_build"
    assert context["data"]["status"] == "failed"
    assert context["data"]["project"] == "runtests"
    assert log["type"] == "build_log" and log["data"]["chunks"] >= 1
    assert found["category"] == "test", (
        found["excerpt"],
        found["signals"],
        found["failure_reason"],
        found["error_pattern"],
    )
    assert found["failed_stage"] == "test"
    assert any("AssertionError: expected 200, got 500" in line["text"] for line in found["excerpt"])
    assert len(found["excerpt"]) <= EXCERPT_MAX


async def test_search_finds_the_failing_log_lines_by_a_paraphrase_and_they_open_by_cursor(
    ci: Ci,
) -> None:
    build = await final_build(ci, await run(ci, fail=True))

    async with mcp_client(ci.live.mcp_url, ci.key) as client:
        hits = structured(
            await client.call_tool(
                "search_contexts",
                {
                    "query": "assertion: wanted status 200 but the server gave 500",
                    "type": "build_log",
                },
            )
        )["results"]
        hit = next(h for h in hits if h["build_id"] == build["id"])
        page = structured(
            await client.call_tool(
                "ci_get_build_logs",
                {
                    "build_id": build["id"],
                    "cursor": hit["lines"]["cursor"],
                    "lines": hit["lines"]["last"] - hit["lines"]["first"] + 1,
                },
            )
        )

    assert "AssertionError: expected 200, got 500" in page["content"]
    assert page["error_pattern"] == (await analysis(ci, build["id"]))["error_pattern"]


async def test_a_second_failure_of_the_same_kind_lists_the_first_with_how_it_was_fixed(
    ci: Ci,
) -> None:
    first = await final_build(ci, await run(ci, fail=True))
    fixed = await final_build(ci, await run(ci))
    second = await final_build(ci, await run(ci, fail=True))

    async with mcp_client(ci.live.mcp_url, ci.key) as client:
        report = structured(
            await client.call_tool("analyze_failure", {"tool": "ci", "build_id": second["id"]})
        )

    similar = {s["build_id"]: s for s in report["similar"]}
    assert similar[first["id"]]["match"] == "signature"
    assert similar[first["id"]]["resolution"]["fixed_by_build"] == fixed["id"]
    assert report["error_pattern"] == (await analysis(ci, first["id"]))["error_pattern"]


async def test_a_resolution_a_person_records_is_shown_on_search_hits_and_found_by_its_words(
    ci: Ci,
) -> None:
    build = await final_build(ci, await run(ci, fail=True))

    async with ci.http() as http:
        recorded = await http.put(
            f"/api/v1/tools/ci/builds/{build['id']}/resolution",
            json={"note": "rolled back the session cache change that broke login"},
        )
        hits = (
            await http.post(
                "/api/v1/contexts/search",
                json={"query": "session cache change", "limit": 10},
            )
        ).json()["results"]
        by_type = (
            await http.post(
                "/api/v1/contexts/search",
                json={"query": "test_login failed", "type": "buildbot_build", "limit": 50},
            )
        ).json()["results"]

    assert recorded.status_code == 200, recorded.text
    assert any(h["type"] == "resolution" and h["build_id"] == build["id"] for h in hits), (
        recorded.text,
        [(h["type"], h["build_id"], h["snippet"][:80]) for h in hits],
    )
    mine = next(h for h in by_type if h["build_id"] == build["id"])
    assert mine["resolution"]["note"] == "rolled back the session cache change that broke login"


async def retries(ci: Ci) -> list[dict[str, Any]]:
    async with ci.http() as http:
        listed = await http.get(
            "/api/v1/events", params={"tool": "ci", "type": "build.retried", "limit": "200"}
        )
    events: list[dict[str, Any]] = listed.json()["events"]
    return events


async def test_a_flaky_failure_is_retried_once_however_often_it_is_learned_from(
    ci: Ci,
) -> None:
    before = len(await retries(ci))
    async with ci.http() as http:
        enabled = await http.patch("/api/v1/tools/ci", json={"auto_retry": {"enabled": True}})
    assert enabled.status_code == 200, enabled.text
    try:
        flaky = await final_build(ci, await run(ci, flaky=str(ci.scratch / "flaky-1")))
        # Two more deliveries of the same failure, at once: as a redelivery racing a
        # second worker would.
        build = Build.model_validate(flaky)
        await asyncio.gather(
            ci.live.services.learning.learn(ci.tenant, "ci", build),
            ci.live.services.learning.learn(ci.tenant, "ci", build),
        )
        found = await analysis(ci, flaky["id"])
        retry = await final_build(ci, found["auto_retry"]["retry_build_id"])
    finally:
        async with ci.http() as http:
            await http.patch("/api/v1/tools/ci", json={"auto_retry": {"enabled": False}})

    assert found["retriable"] is True and found["confidence"] >= 0.8
    assert found["auto_retry"]["retried"] is True
    assert len(await retries(ci)) - before == 1
    assert retry["status"] == "succeeded"


async def test_a_cancelled_build_is_never_retried(ci: Ci) -> None:
    async with ci.http() as http:
        await http.patch(
            "/api/v1/tools/ci", json={"auto_retry": {"enabled": True, "min_confidence": 0.0}}
        )
    try:
        subject = await run(ci, sleep="30")
        async with mcp_client(ci.live.mcp_url, ci.key) as client:
            deadline = time.monotonic() + DEADLINE
            while True:
                status = structured(
                    await client.call_tool("ci_get_build_status", {"build_id": subject})
                )
                if status["status"] == "running":
                    break
                assert time.monotonic() < deadline
                await anyio.sleep(0.3)
            structured(await client.call_tool("ci_cancel_build", {"build_id": subject}))
        build = await final_build(ci, subject)
        async with ci.http() as http:
            retried = (
                await http.get("/api/v1/events", params={"tool": "ci", "type": "build.retried"})
            ).json()["events"]
            analysed = await http.get(
                f"/api/v1/contexts/failure-analysis-{build['id']}", params={"tool": "ci"}
            )
    finally:
        async with ci.http() as http:
            await http.patch("/api/v1/tools/ci", json={"auto_retry": {"enabled": False}})

    assert build["status"] == "cancelled"
    assert analysed.status_code == 404
    assert all(e["payload"].get("id") != build["id"] for e in retried)


async def test_another_tenant_sees_none_of_it(ci: Ci) -> None:
    build = await final_build(ci, await run(ci, fail=True))
    _, other = await ci.live.services.tenants.create_tenant(f"o-{uuid.uuid4().hex[:8]}")

    async with ci.http(other) as http:
        searched = await http.post(
            "/api/v1/contexts/search", json={"query": "AssertionError expected 200 got 500"}
        )
        got = await http.get(f"/api/v1/contexts/failure-analysis-{build['id']}")
        analysed = await http.post(f"/api/v1/tools/ci/builds/{build['id']}/analysis")

    assert searched.json()["results"] == []
    assert got.status_code == 404
    assert analysed.status_code == 404
    assert await ci.live.services.contexts.count(ci.tenant.id) > 0


async def test_analysing_a_build_that_did_not_fail_is_a_clear_409(ci: Ci) -> None:
    build = await final_build(ci, await run(ci))

    async with ci.http() as http:
        answer = await http.post(f"/api/v1/tools/ci/builds/{build['id']}/analysis")

    assert answer.status_code == 409
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert "succeeded" in answer.json()["detail"]


async def test_a_resolution_without_a_note_is_refused_naming_the_field(ci: Ci) -> None:
    async with ci.http() as http:
        answer = await http.put("/api/v1/tools/ci/builds/1/resolution", json={"note": ""})
    async with mcp_client(ci.live.mcp_url, ci.key) as client:
        missing = await client.call_tool("analyze_failure", {"tool": "ci"})

    assert answer.status_code == 422
    assert "note" in answer.text
    assert missing.is_error is True
    assert "build_id" in str(missing.content)
