"""The Jenkins adapter against the Jenkins stand-in, in its own process, over HTTP.

What every provider does (trigger to succeeded, cancel a running build, refused
credentials, not-found ids, faults) is the contract suite's; these are Jenkins' own:
queue items, parameters, crumbs, the console read on from an offset.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from devmesh.adapters.registry import Connection
from devmesh.domain.errors import UpstreamInvalidArgument, UpstreamNotFound
from devmesh.domain.models import BuildRequest, BuildStatus, Credentials
from devmesh.providers.jenkins import JenkinsAdapter, JenkinsConfig
from tests.standins.jenkins.fixture import JenkinsStandin, run_jenkins
from tests.support.http import service_like_client
from tests.support.polling import is_running, settled

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

USER, TOKEN = "agent", "11adaptertestsonly000000000000000"
APP: dict[str, Any] = {
    "steps": ["echo building for $TARGET", "mkdir -p dist && echo built > dist/app.txt"],
    "parameters": {"TARGET": "linux"},
    "artifacts": "dist/*",
}


@pytest.fixture(scope="module")
async def jenkins_process() -> AsyncIterator[JenkinsStandin]:
    async with run_jenkins() as standin:
        yield standin


@pytest.fixture
async def jenkins(jenkins_process: JenkinsStandin) -> JenkinsStandin:
    """The stand-in emptied, with one user; each test adds the jobs it needs."""
    await jenkins_process.reset(users={USER: TOKEN}, quiet_period_s=0.1)
    return jenkins_process


@pytest.fixture
async def adapter(jenkins: JenkinsStandin) -> AsyncIterator[JenkinsAdapter]:
    async with service_like_client() as http:
        yield JenkinsAdapter(
            Connection(
                base_url=jenkins.base_url,
                config=JenkinsConfig(),
                credentials=Credentials(type="api_token", username=USER, password=TOKEN),
                http=http,
            )
        )


async def test_a_queued_build_id_finds_its_build_after_jenkins_forgets_the_queue_item(
    jenkins: JenkinsStandin, adapter: JenkinsAdapter
) -> None:
    await jenkins.reset(users={USER: TOKEN}, quiet_period_s=0.1, left_ttl_s=0)
    await jenkins.add_job("team/app", **APP)
    queued = await adapter.trigger_build(BuildRequest(project="team/app"))

    done = await settled(adapter, queued.id)

    assert queued.id.startswith("team/app#queue-")
    assert (done.id, done.status) == ("team/app#1", BuildStatus.SUCCEEDED)


async def test_a_build_cancelled_while_queued_never_runs_and_reads_cancelled(
    jenkins: JenkinsStandin, adapter: JenkinsAdapter
) -> None:
    await jenkins.reset(users={USER: TOKEN}, quiet_period_s=30)
    await jenkins.add_job("team/app", **APP)
    queued = await adapter.trigger_build(BuildRequest(project="team/app"))

    cancelled = await adapter.cancel_build(queued.id)

    assert queued.status is BuildStatus.QUEUED
    assert "quiet period" in (queued.status_text or "")
    assert (cancelled.id, cancelled.status) == (queued.id, BuildStatus.CANCELLED)
    assert await adapter.list_builds(project="team/app", status=None, limit=5) == []


async def test_a_parameter_the_job_does_not_define_is_refused_naming_it(
    jenkins: JenkinsStandin, adapter: JenkinsAdapter
) -> None:
    await jenkins.add_job("team/app", **APP)

    with pytest.raises(UpstreamInvalidArgument) as caught:
        await adapter.trigger_build(BuildRequest(project="team/app", parameters={"TARGTE": "x"}))

    assert caught.value.details["field"] == "parameters.TARGTE"


async def test_a_retry_runs_the_job_again_with_the_parameters_the_build_ran_with(
    jenkins: JenkinsStandin, adapter: JenkinsAdapter
) -> None:
    await jenkins.add_job("team/app", **APP)
    request = BuildRequest(project="team/app", parameters={"TARGET": "arm64"})
    first = await settled(adapter, (await adapter.trigger_build(request)).id)

    again = await settled(adapter, (await adapter.retry_build(first.id)).id)
    lines = await adapter.read_log_lines(again.id, failed_only=False)

    assert again.id == "team/app#2"
    assert again.metadata["parameters"] == {"TARGET": "arm64"}
    assert any(line.text == "building for arm64" for line in lines)


async def test_a_folder_is_not_a_project_to_trigger(
    jenkins: JenkinsStandin, adapter: JenkinsAdapter
) -> None:
    await jenkins.add_job("team/app", **APP)

    with pytest.raises(UpstreamInvalidArgument) as caught:
        await adapter.trigger_build(BuildRequest(project="team"))

    assert caught.value.details["field"] == "project"


async def test_a_queue_id_of_another_job_is_not_found(
    jenkins: JenkinsStandin, adapter: JenkinsAdapter
) -> None:
    await jenkins.add_job("team/app", **APP)
    await jenkins.add_job("team/other", steps=["true"])
    queued = await adapter.trigger_build(BuildRequest(project="team/app"))
    elsewhere = queued.id.replace("team/app#", "team/other#")

    with pytest.raises(UpstreamNotFound):
        await adapter.get_build(elsewhere)


async def test_a_controller_without_crumbs_takes_posts_without_one(
    jenkins: JenkinsStandin, adapter: JenkinsAdapter
) -> None:
    await jenkins.reset(users={USER: TOKEN}, quiet_period_s=0.1, crumbs=False)
    await jenkins.add_job("team/app", **APP)

    done = await settled(
        adapter, (await adapter.trigger_build(BuildRequest(project="team/app"))).id
    )

    assert done.status is BuildStatus.SUCCEEDED


async def test_a_post_refused_for_a_stale_crumb_is_sent_again_with_a_fresh_one(
    jenkins: JenkinsStandin, adapter: JenkinsAdapter
) -> None:
    await jenkins.add_job("team/app", **APP)
    first = await adapter.trigger_build(BuildRequest(project="team/app"))
    await jenkins.rotate_crumbs()

    second = await adapter.trigger_build(BuildRequest(project="team/app"))

    assert second.metadata["queue_id"] == first.metadata["queue_id"] + 1


async def test_a_running_builds_console_reads_on_from_an_offset_until_it_is_final(
    jenkins: JenkinsStandin, adapter: JenkinsAdapter
) -> None:
    await jenkins.add_job("team/slow", steps=["echo first; sleep 1; echo second"])
    build = await adapter.trigger_build(BuildRequest(project="team/slow"))
    running = await settled(adapter, build.id, is_running)

    early = await adapter.read_artifact(running.id, "console", offset=0, limit=65536)
    done = await settled(adapter, running.id)
    rest = await adapter.read_artifact(done.id, "console", offset=len(early.data), limit=65536)

    assert early.more is True and early.size is None
    assert rest.more is False
    assert rest.size == len(early.data) + len(rest.data)
    whole = (early.data + rest.data).decode()
    assert "second\n" in whole and whole.endswith("Finished: SUCCESS\n")


async def test_a_failed_builds_failed_part_is_its_last_step(
    jenkins: JenkinsStandin, adapter: JenkinsAdapter
) -> None:
    await jenkins.add_job("team/broken", steps=["echo fine", "echo boom >&2; exit 3", "echo no"])
    build = await adapter.trigger_build(BuildRequest(project="team/broken"))
    done = await settled(adapter, build.id)

    failed = await adapter.read_log_lines(done.id, failed_only=True)

    assert done.status is BuildStatus.FAILED
    assert done.metadata["jenkins_result"] == "FAILURE"
    assert {line.step for line in failed} == {"step 2"}
    assert "boom" in [line.text for line in failed]
    assert failed[-1].text == "Finished: FAILURE"
