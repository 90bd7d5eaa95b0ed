"""The fault-injecting upstream: each fault as a client sees it, both modes.

Faults are observed with a plain httpx client (what any caller sees on the wire);
canned answers are read by the real Buildbot adapter, and proxy mode is checked
against a real Buildbot master, login cookie included.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from http.cookiejar import CookieJar, DefaultCookiePolicy
from pathlib import Path

import httpx
import pytest

from devmesh.adapters.registry import Connection
from devmesh.domain.errors import (
    UpstreamNotFound,
    UpstreamRateLimited,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from devmesh.domain.models import BuildRequest, BuildStatus, Credentials
from devmesh.providers.buildbot import BuildbotAdapter, BuildbotConfig
from tests.support.buildbot import BuildbotServer, run_buildbot
from tests.upstream import Upstream, run_upstream

pytestmark = pytest.mark.anyio

BUILD_1 = "/api/v2/builds/1"
LOGIN = ("admin", "pw-for-upstream-tests")


@pytest.fixture
async def http(upstream: Upstream) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=upstream.base_url, trust_env=False, timeout=10) as client:
        yield client


def make_adapter(http: httpx.AsyncClient, base_url: str, **config: float) -> BuildbotAdapter:
    connection = Connection(
        base_url=base_url,
        config=BuildbotConfig.model_validate(config),
        credentials=None,
        http=http,
    )
    return BuildbotAdapter(connection)


# --- faults ------------------------------------------------------------------------


async def test_a_status_fault_answers_its_code_and_retry_after(
    upstream: Upstream, http: httpx.AsyncClient
) -> None:
    await upstream.inject("status", status=503, retry_after=7, body="busy, come back later")

    answer = await http.get(BUILD_1)

    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "7"
    assert answer.text == "busy, come back later"


async def test_a_fault_with_a_count_ends_and_service_resumes(
    upstream: Upstream, http: httpx.AsyncClient
) -> None:
    await upstream.inject("status", status=429, retry_after="1", count=2)

    codes = [(await http.get(BUILD_1)).status_code for _ in range(3)]

    assert codes == [429, 429, 200]
    stats = await upstream.stats()
    assert (stats.total, stats.faulted, stats.paths[BUILD_1]) == (3, 2, 3)


async def test_a_fault_applies_only_to_paths_and_methods_it_names(
    upstream: Upstream, http: httpx.AsyncClient
) -> None:
    await upstream.inject("status", status=500, path=r"^/api/v2/builds/\d+$", method="GET")

    assert (await http.get(BUILD_1)).status_code == 500
    assert (await http.get("/api/v2/builders")).status_code == 200
    assert (await http.get("/api/v2/builds")).status_code == 200


async def test_a_fault_can_apply_only_to_requests_whose_header_matches(
    upstream: Upstream, http: httpx.AsyncClient
) -> None:
    # AWS's JSON protocols name the operation in X-Amz-Target, not in the path.
    await upstream.inject("status", status=503, header="X-Amz-Target", matches=r"\.BatchGetBuilds$")
    named = {"X-Amz-Target": "CodeBuild_20161006.BatchGetBuilds"}
    other = {"X-Amz-Target": "CodeBuild_20161006.StartBuild"}

    assert (await http.get(BUILD_1, headers=named)).status_code == 503
    assert (await http.get(BUILD_1, headers=other)).status_code == 200
    assert (await http.get(BUILD_1)).status_code == 200


async def test_clearing_faults_restores_service(
    upstream: Upstream, http: httpx.AsyncClient
) -> None:
    await upstream.inject("status", status=502)
    assert (await http.get(BUILD_1)).status_code == 502

    await upstream.clear()

    assert (await http.get(BUILD_1)).status_code == 200


async def test_a_hang_outlasts_a_client_timeout(
    upstream: Upstream, http: httpx.AsyncClient
) -> None:
    await upstream.inject("hang", seconds=5, count=1)

    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        await http.get(BUILD_1, timeout=0.3)

    assert time.monotonic() - started < 2
    assert (await http.get(BUILD_1, timeout=2)).status_code == 200


async def test_a_short_hang_then_answers_normally(
    upstream: Upstream, http: httpx.AsyncClient
) -> None:
    await upstream.inject("hang", seconds=0.3, count=1)

    started = time.monotonic()
    answer = await http.get(BUILD_1)

    assert answer.status_code == 200
    assert time.monotonic() - started >= 0.3


async def test_a_drop_closes_the_connection_without_an_answer(
    upstream: Upstream, http: httpx.AsyncClient
) -> None:
    await upstream.inject("drop", count=1)

    with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
        await http.get(BUILD_1)

    assert (await http.get(BUILD_1)).status_code == 200


async def test_a_malformed_fault_is_refused_with_the_reason(http: httpx.AsyncClient) -> None:
    answer = await http.post("/__faults", json={"kind": "hang"})

    assert answer.status_code == 422
    assert "needs seconds" in answer.text


async def test_control_requests_are_neither_counted_nor_faulted(
    upstream: Upstream, http: httpx.AsyncClient
) -> None:
    await upstream.inject("status", status=500)
    await http.get(BUILD_1)

    stats = await upstream.stats()
    await upstream.reset_stats()

    assert stats.total == 1
    assert (await upstream.stats()).total == 0


# --- canned mode through the real adapter ---------------------------------------------


async def test_canned_builds_read_as_buildbot_builds(
    upstream: Upstream, http: httpx.AsyncClient
) -> None:
    adapter = make_adapter(http, upstream.base_url)

    ok = await adapter.get_build("1")
    failed = await adapter.get_build("3")

    assert (ok.id, ok.project, ok.number, ok.status) == ("1", "runtests", 1, BuildStatus.SUCCEEDED)
    assert ok.duration == 1.0
    assert ok.metadata["results"] == "success"
    assert (failed.project, failed.status) == ("runtests", BuildStatus.FAILED)
    # A failed build's steps are asked for its failed_stage; the canned upstream has
    # none to give, and the build still reads, its stage unknown.
    assert (failed.failure_reason, failed.failed_stage) == ("failure", None)
    stats = await upstream.stats()
    assert set(stats.paths) == {
        "/api/v2/builds/1",
        "/api/v2/builds/3",
        "/api/v2/builds/3/steps",
        "/api/v2/builders",
    }


async def test_canned_lists_filter_like_buildbot(
    upstream: Upstream, http: httpx.AsyncClient
) -> None:
    adapter = make_adapter(http, upstream.base_url)

    newest = await adapter.list_builds(project=None, status=None, limit=2)
    lint = await adapter.list_builds(project="lint", status=None, limit=10)
    failed = await adapter.list_builds(project=None, status=BuildStatus.FAILED, limit=10)

    assert [b.id for b in newest] == ["4", "3"]
    assert [b.id for b in lint] == ["2"]
    assert [b.id for b in failed] == ["3"]


async def test_a_missing_canned_build_is_not_found(
    upstream: Upstream, http: httpx.AsyncClient
) -> None:
    with pytest.raises(UpstreamNotFound):
        await make_adapter(http, upstream.base_url).get_build("99")


async def test_faults_reach_the_adapter_as_its_typed_errors(
    upstream: Upstream, http: httpx.AsyncClient
) -> None:
    adapter = make_adapter(http, upstream.base_url, request_timeout=0.3)
    await adapter.get_build("1")  # builders are cached from here on

    await upstream.inject("status", status=429, retry_after="3", count=1)
    with pytest.raises(UpstreamRateLimited):
        await adapter.get_build("1")
    await upstream.inject("status", status=503, count=1)
    with pytest.raises(UpstreamUnavailable):
        await adapter.get_build("1")
    await upstream.inject("hang", seconds=3, count=1)
    with pytest.raises(UpstreamTimeout):
        await adapter.get_build("1")
    await upstream.inject("drop", count=1)
    with pytest.raises(UpstreamUnavailable):
        await adapter.get_build("1")

    assert (await adapter.get_build("1")).status is BuildStatus.SUCCEEDED


async def test_the_openapi_document_describes_the_build_read(http: httpx.AsyncClient) -> None:
    spec = (await http.get("/openapi.json")).json()

    operation = spec["paths"]["/api/v2/builds/{buildid}"]["get"]
    assert spec["openapi"].startswith("3.0")
    assert operation["operationId"] == "get_build"
    assert spec["servers"] == [{"url": str(http.base_url).rstrip("/")}]


# --- proxy mode in front of a real Buildbot -------------------------------------------


@pytest.fixture(scope="module")
def buildbot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BuildbotServer]:
    """A master whose control endpoints need a login, so cookies must pass the proxy."""
    with run_buildbot(Path(tmp_path_factory.mktemp("buildbot-upstream")), auth=LOGIN) as server:
        yield server


@pytest.fixture
async def proxy(buildbot: BuildbotServer) -> AsyncIterator[Upstream]:
    async with run_upstream(target=buildbot.base_url) as server:
        yield server


@pytest.mark.integration
async def test_the_proxy_answers_as_the_real_master(
    buildbot: BuildbotServer, proxy: Upstream
) -> None:
    async with httpx.AsyncClient(trust_env=False, timeout=10) as http:
        direct = await http.get(f"{buildbot.api_url}/builders", params={"field": "name"})
        proxied = await http.get(f"{proxy.base_url}/api/v2/builders", params={"field": "name"})
        missing = await http.get(f"{proxy.base_url}/api/v2/builds/424242")

    assert proxied.status_code == 200
    assert proxied.json() == direct.json()
    assert missing.status_code == 404
    assert (await proxy.stats()).paths == {"/api/v2/builders": 1, "/api/v2/builds/424242": 1}


@pytest.mark.integration
async def test_the_proxy_carries_the_login_cookie_and_the_body(proxy: Upstream) -> None:
    force = {
        "jsonrpc": "2.0",
        "method": "force",
        "params": {"builderNames": ["lint"], "reason": "through the test upstream"},
        "id": 1,
    }
    # No cookie jar: the session cookie is carried by hand, so it is seen to pass.
    async with httpx.AsyncClient(
        base_url=proxy.base_url,
        trust_env=False,
        timeout=10,
        cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
    ) as http:
        anonymous = await http.post("/api/v2/forceschedulers/force-lint", json=force)
        login = await http.get("/auth/login", auth=httpx.BasicAuth(*LOGIN))
        session = login.cookies.get("TWISTED_SESSION")
        assert session, f"no session cookie in {login.headers}"
        forced = await http.post(
            "/api/v2/forceschedulers/force-lint",
            json=force,
            headers={"Cookie": f"TWISTED_SESSION={session}"},
        )

    assert anonymous.status_code == 403
    assert forced.status_code == 200
    assert forced.json()["result"][1]  # {builderid: buildrequestid}
    if "location" in login.headers:
        assert login.headers["location"].startswith(proxy.base_url)


@pytest.mark.integration
async def test_the_adapter_works_and_meets_faults_through_the_proxy(
    buildbot: BuildbotServer, proxy: Upstream
) -> None:
    async with httpx.AsyncClient(
        trust_env=False, cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))
    ) as http:
        adapter = BuildbotAdapter(
            Connection(
                base_url=proxy.base_url,
                config=BuildbotConfig(),
                credentials=Credentials(type="basic", username=LOGIN[0], password=LOGIN[1]),
                http=http,
            )
        )
        queued = await adapter.trigger_build(BuildRequest(project="lint"))
        await proxy.inject("status", status=503, retry_after="1", count=1, path="^/api/v2/build")
        with pytest.raises(UpstreamUnavailable):
            await adapter.get_build(queued.id)
        build = await adapter.get_build(queued.id)

    assert queued.id.startswith("br-")
    assert build.project == "lint"
    assert (await proxy.stats()).faulted == 1
