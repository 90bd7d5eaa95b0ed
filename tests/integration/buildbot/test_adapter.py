"""The Buildbot adapter against a real Buildbot master and worker on loopback: what is
Buildbot's own. What every provider does (trigger to succeeded, cancel, retry, lists,
not-found ids, auth failure, an unreachable server) is the contract suite's
(``tests/contract``), which runs against a real master too.

The master (``tests/support/buildbot/master.cfg``) has builders ``runtests`` (force
scheduler ``force``, properties ``fail`` and ``sleep``) and ``lint`` (``force-lint``), and
``package``, which only the pipeline ``release`` starts (with ``runtests``); its one worker
runs one build per builder at a time, so a second ``runtests`` build waits in the queue.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from devmesh.adapters.operations import BuildRef
from devmesh.adapters.registry import Connection, ProviderRegistry
from devmesh.domain.errors import (
    UpstreamAuthFailed,
    UpstreamInvalidArgument,
    UpstreamNotFound,
)
from devmesh.domain.models import Build, BuildRequest, BuildStatus, Credentials
from devmesh.providers.buildbot import BuildbotAdapter, BuildbotConfig, provider
from tests.support.buildbot import BuildbotServer, run_buildbot
from tests.support.http import service_like_client
from tests.support.polling import is_running, settled

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

LOGIN = ("admin", "pw-for-tests-only")


@pytest.fixture(scope="module")
def guarded_buildbot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BuildbotServer]:
    """A master whose control endpoints need a login as LOGIN."""
    with run_buildbot(tmp_path_factory.mktemp("buildbot-auth"), auth=LOGIN) as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with service_like_client() as client:
        yield client


def make_adapter(
    http: httpx.AsyncClient, base_url: str, credentials: Credentials | None = None
) -> BuildbotAdapter:
    adapter = provider.create_adapter(
        Connection(base_url=base_url, config=BuildbotConfig(), credentials=credentials, http=http)
    )
    assert isinstance(adapter, BuildbotAdapter)
    return adapter


@pytest.fixture
def adapter(http: httpx.AsyncClient, buildbot: BuildbotServer) -> BuildbotAdapter:
    return make_adapter(http, buildbot.base_url)


def test_the_entry_point_registers_this_provider() -> None:
    assert ProviderRegistry.from_entry_points().get("buildbot") is provider


async def test_a_trigger_with_only_base_url_returns_a_build_get_build_status_accepts_at_once(
    adapter: BuildbotAdapter,
) -> None:
    build = await adapter.trigger_build(BuildRequest(project="runtests", parameters={"sleep": "2"}))
    get_build_status = provider.operation("get_build_status")
    assert get_build_status is not None
    seen = await get_build_status.run(adapter, BuildRef(build_id=build.id))
    assert build.id.startswith("br-")
    assert build.status in {BuildStatus.QUEUED, BuildStatus.RUNNING}
    assert isinstance(seen, Build)
    assert seen.project == "runtests"
    assert seen.status in {BuildStatus.QUEUED, BuildStatus.RUNNING}
    await settled(adapter, build.id)


async def test_a_finished_build_has_its_number_url_and_state_text(
    adapter: BuildbotAdapter,
) -> None:
    # Reaching succeeded at all is the contract suite's (tests/contract).
    build = await adapter.trigger_build(BuildRequest(project="runtests", reason="trivial"))
    done = await settled(adapter, build.id)
    assert done.id.isdigit()
    assert done.number is not None
    assert done.url is not None and done.url.endswith(f"/builds/{done.number}")
    assert done.status_text == "build successful"


async def test_trigger_finds_the_force_scheduler_that_serves_the_builder(
    adapter: BuildbotAdapter,
) -> None:
    build = await adapter.trigger_build(BuildRequest(project="lint"))
    done = await settled(adapter, build.id)
    assert (done.project, done.status) == ("lint", BuildStatus.SUCCEEDED)


async def test_a_failing_build_is_failed_and_its_error_line_is_on_stderr(
    adapter: BuildbotAdapter,
) -> None:
    build = await adapter.trigger_build(BuildRequest(project="runtests", parameters={"fail": True}))
    done = await settled(adapter, build.id)
    lines = await adapter.read_log_lines(build.id, failed_only=False)
    assert done.status is BuildStatus.FAILED
    assert [line.number for line in lines] == list(range(1, len(lines) + 1))
    errors = [line for line in lines if line.text == "failing on purpose"]
    assert [(line.stream, line.step) for line in errors] == [("stderr", "test")]
    assert any(line.stream == "stdout" and line.text == "test_login FAILED" for line in lines)


async def test_failed_only_keeps_only_the_failing_step(adapter: BuildbotAdapter) -> None:
    build = await adapter.trigger_build(BuildRequest(project="runtests", parameters={"fail": True}))
    await settled(adapter, build.id)
    every = await adapter.read_log_lines(build.id, failed_only=False)
    failed = await adapter.read_log_lines(build.id, failed_only=True)
    assert {line.step for line in every} == {"prepare", "test"}
    assert {line.step for line in failed} == {"test"}
    # Numbers are places in the whole log, so they agree between the two views.
    assert failed == [line for line in every if line.step == "test"]


async def test_cancelling_a_request_queued_behind_a_running_build_leaves_it_cancelled(
    adapter: BuildbotAdapter,
) -> None:
    first = await adapter.trigger_build(
        BuildRequest(project="runtests", parameters={"sleep": "60"})
    )
    await settled(adapter, first.id, is_running)
    second = await adapter.trigger_build(BuildRequest(project="runtests"))
    queued = await adapter.get_build(second.id)
    cancelled = await adapter.cancel_build(second.id)
    await adapter.cancel_build(first.id)
    assert queued.status is BuildStatus.QUEUED
    assert cancelled.status is BuildStatus.CANCELLED
    assert cancelled.id == second.id  # it never became a build
    assert (await adapter.read_log_lines(second.id, failed_only=False)) == []


async def test_a_retry_is_a_queued_request_that_names_the_build_it_rebuilds(
    adapter: BuildbotAdapter,
) -> None:
    original = await settled(
        adapter, (await adapter.trigger_build(BuildRequest(project="lint"))).id
    )
    retried = await adapter.retry_build(original.id)
    await settled(adapter, retried.id)
    assert retried.id.startswith("br-")
    assert retried.status is BuildStatus.QUEUED
    assert retried.metadata["rebuild_of"] == original.id


async def test_retrying_a_running_build_is_refused(adapter: BuildbotAdapter) -> None:
    build = await adapter.trigger_build(
        BuildRequest(project="runtests", parameters={"sleep": "60"})
    )
    await settled(adapter, build.id, is_running)
    try:
        with pytest.raises(UpstreamInvalidArgument, match="still running"):
            await adapter.retry_build(build.id)
    finally:
        await adapter.cancel_build(build.id)


async def test_an_unknown_project_is_not_found_and_names_the_builders(
    adapter: BuildbotAdapter,
) -> None:
    with pytest.raises(UpstreamNotFound) as caught:
        await adapter.trigger_build(BuildRequest(project="no-such-builder"))
    assert "lint, package, runtests" in caught.value.message
    assert caught.value.details["builders"] == ["lint", "package", "runtests"]


async def test_an_unknown_parameter_is_refused_naming_the_accepted_ones(
    adapter: BuildbotAdapter,
) -> None:
    with pytest.raises(UpstreamInvalidArgument) as caught:
        await adapter.trigger_build(BuildRequest(project="runtests", parameters={"fial": True}))
    assert "'fial'" in caught.value.message
    assert {"fail", "sleep"} <= set(caught.value.details["accepted"])


async def test_a_branch_the_scheduler_keeps_fixed_is_refused(adapter: BuildbotAdapter) -> None:
    with pytest.raises(UpstreamInvalidArgument, match="takes no branch"):
        await adapter.trigger_build(BuildRequest(project="runtests", branch="feature/x"))


async def test_a_value_buildbot_rejects_is_an_invalid_argument(adapter: BuildbotAdapter) -> None:
    with pytest.raises(UpstreamInvalidArgument, match="does not match pattern"):
        await adapter.trigger_build(BuildRequest(project="runtests", parameters={"sleep": "x"}))


async def test_a_master_that_requires_login_refuses_wrong_credentials(
    http: httpx.AsyncClient, guarded_buildbot: BuildbotServer
) -> None:
    wrong = "not-the-password"
    adapter = make_adapter(
        http, guarded_buildbot.base_url, Credentials(type="basic", username="admin", password=wrong)
    )
    with pytest.raises(UpstreamAuthFailed) as caught:
        await adapter.ping()
    assert wrong not in caught.value.message
    assert "username and password" in caught.value.message


async def test_a_master_that_requires_login_refuses_a_trigger_without_credentials(
    http: httpx.AsyncClient, guarded_buildbot: BuildbotServer
) -> None:
    adapter = make_adapter(http, guarded_buildbot.base_url)
    with pytest.raises(UpstreamAuthFailed, match="store basic credentials"):
        await adapter.trigger_build(BuildRequest(project="lint"))


async def test_base_url_may_be_the_api_address(
    http: httpx.AsyncClient, buildbot: BuildbotServer
) -> None:
    adapter = make_adapter(http, buildbot.api_url + "/")
    build = await adapter.trigger_build(BuildRequest(project="lint"))
    done = await settled(adapter, build.id)
    assert done.url is not None and done.url.startswith(f"{buildbot.base_url}/#/")


def test_the_config_rejects_unknown_keys() -> None:
    with pytest.raises(ValueError, match="extra"):
        BuildbotConfig.model_validate({"schedular": "force"})
