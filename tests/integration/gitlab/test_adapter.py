"""The GitLab adapter against the GitLab API v4 stand-in, in its own process, over HTTP.

The stand-in (``tests/standins/gitlab``) runs each project's script in (wall-clock)
time: jobs are queued, run and finish within a second, printing their script lines.
What every provider does (cancel, a refused token, not-found ids, faults) is the
contract suite's (``tests/contract``), which runs GitLab against the stand-in too.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx
import pytest

from devmesh.adapters.registry import Connection
from devmesh.domain.errors import (
    UpstreamAuthFailed,
    UpstreamInvalidArgument,
    UpstreamNotFound,
    UpstreamRateLimited,
)
from devmesh.domain.models import Build, BuildRequest, BuildStatus, Credentials, PipelineRequest
from devmesh.providers.gitlab import GitLabAdapter, GitLabConfig, provider
from tests.standins.gitlab.fixture import GitLabStandin

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

TOKEN = "glpat-adapter-tests-only"
DEADLINE_S = 30.0
SCRIPT: dict[str, Any] = {
    "stages": ["build", "test"],
    "jobs": [
        {
            "name": "compile",
            "stage": "build",
            "script": ["$ make", "compiled ok"],
            "artifacts": {"dist/app.txt": "the app\n"},
        },
        {"name": "unit", "stage": "test", "script": ["$ pytest", "12 passed"]},
    ],
}
FAILING: dict[str, Any] = {
    "stages": ["build", "test"],
    "jobs": [
        {"name": "compile", "stage": "build", "script": ["$ make", "compiled ok"]},
        {
            "name": "unit",
            "stage": "test",
            "fails": True,
            "fail_attempts": 1,
            "script": ["$ pytest", "AssertionError: expected 2, got 3"],
        },
    ],
}


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(follow_redirects=False, trust_env=False) as client:
        yield client


def make_adapter(
    http: httpx.AsyncClient,
    base_url: str,
    credentials: Credentials | None = None,
    config: GitLabConfig | None = None,
) -> GitLabAdapter:
    connection = Connection(
        base_url=base_url,
        config=config or GitLabConfig(),
        credentials=credentials or Credentials(type="private_token", token=TOKEN),
        http=http,
    )
    adapter = provider.create_adapter(connection)
    assert isinstance(adapter, GitLabAdapter)
    return adapter


@pytest.fixture
async def gitlab(gitlab_standin: GitLabStandin) -> GitLabStandin:
    await gitlab_standin.seed(path="group/app", token=TOKEN, script=SCRIPT)
    return gitlab_standin


@pytest.fixture
def adapter(http: httpx.AsyncClient, gitlab: GitLabStandin) -> GitLabAdapter:
    return make_adapter(http, gitlab.base_url)


async def finished(adapter: GitLabAdapter, build_id: str) -> Build:
    deadline = time.monotonic() + DEADLINE_S
    while True:
        build = await adapter.get_build(build_id)
        if build.status.finished:
            return build
        assert time.monotonic() < deadline, f"{build_id} stuck at {build.status}"
        await anyio.sleep(0.1)


async def test_a_triggered_pipeline_runs_its_stages_to_success(adapter: GitLabAdapter) -> None:
    build = await adapter.trigger_build(
        BuildRequest(project="group/app", branch="main", parameters={"DEPLOY": True})
    )
    assert build.id.startswith("group/app#")
    assert build.status in (BuildStatus.QUEUED, BuildStatus.RUNNING)
    done = await finished(adapter, build.id)
    assert done.status is BuildStatus.SUCCEEDED
    assert done.branch == "main"
    assert [stage["name"] for stage in done.metadata["stages"]] == ["build", "test"]
    assert all(stage["status"] == "succeeded" for stage in done.metadata["stages"])
    assert "failed_stage" not in done.metadata


async def test_parameters_become_pipeline_variables(
    adapter: GitLabAdapter, gitlab: GitLabStandin, http: httpx.AsyncClient
) -> None:
    build = await adapter.trigger_build(
        BuildRequest(project="group/app", branch="main", parameters={"DEPLOY": True, "N": 3})
    )
    pipeline_id = build.metadata["pipeline_id"]
    answer = await http.get(
        f"{gitlab.api_url}/projects/group%2Fapp/pipelines/{pipeline_id}/variables",
        headers={"PRIVATE-TOKEN": TOKEN},
    )
    assert {v["key"]: v["value"] for v in answer.json()} == {"DEPLOY": "true", "N": "3"}


async def test_without_a_branch_the_default_branch_runs(adapter: GitLabAdapter) -> None:
    build = await adapter.trigger_build(BuildRequest(project="group/app"))
    assert build.branch == "main"


async def test_a_failed_pipeline_names_its_failed_stage_and_failure_reason(
    adapter: GitLabAdapter, gitlab: GitLabStandin
) -> None:
    await gitlab.set_script(1, FAILING)
    build = await adapter.trigger_build(BuildRequest(project="group/app", branch="main"))
    done = await finished(adapter, build.id)
    assert done.status is BuildStatus.FAILED
    assert done.metadata["failed_stage"] == "test"
    assert done.metadata["failure_reason"] == "script_failure"
    assert [job["name"] for job in done.metadata["failed_jobs"]] == ["unit"]


async def test_failed_only_logs_hold_the_failed_jobs_lines_without_terminal_codes(
    adapter: GitLabAdapter, gitlab: GitLabStandin
) -> None:
    await gitlab.set_script(1, FAILING)
    build = await adapter.trigger_build(BuildRequest(project="group/app", branch="main"))
    await finished(adapter, build.id)
    lines = await adapter.read_log_lines(build.id, failed_only=True)
    assert {line.step for line in lines} == {"test/unit"}
    assert any("AssertionError: expected 2, got 3" in line.text for line in lines)
    assert not any("\x1b" in line.text or "section_" in line.text for line in lines)
    assert [line.number for line in lines] == list(range(1, len(lines) + 1))
    every = await adapter.read_log_lines(build.id, failed_only=False)
    assert every[0].step == "build/compile"


async def test_a_long_trace_keeps_its_end(http: httpx.AsyncClient, gitlab: GitLabStandin) -> None:
    text = [f"line {n} " + "x" * 40 for n in range(4000)]
    noisy = {"name": "noisy", "stage": "build", "script": text}
    await gitlab.set_script(1, {"stages": ["build"], "jobs": [noisy]})
    adapter = make_adapter(http, gitlab.base_url, config=GitLabConfig(max_trace_bytes=65_536))
    build = await adapter.trigger_build(BuildRequest(project="group/app", branch="main"))
    await finished(adapter, build.id)
    lines = await adapter.read_log_lines(build.id, failed_only=False)
    assert lines[0].stream == "header"
    assert any(line.text.startswith("line 3999 ") for line in lines)
    assert not any(line.text.startswith("line 0 ") for line in lines)


async def test_list_failed_builds_shows_why_each_failed(
    adapter: GitLabAdapter, gitlab: GitLabStandin
) -> None:
    good = await adapter.trigger_build(BuildRequest(project="group/app", branch="main"))
    await finished(adapter, good.id)
    await gitlab.set_script(1, FAILING)
    bad = await adapter.trigger_build(BuildRequest(project="group/app", branch="main"))
    await finished(adapter, bad.id)
    failed = await adapter.list_builds(project="group/app", status=BuildStatus.FAILED, limit=10)
    assert [b.id for b in failed] == [bad.id]
    assert failed[0].metadata["failed_stage"] == "test"
    everything = await adapter.list_builds(project="group/app", status=None, limit=10)
    assert [b.id for b in everything] == [bad.id, good.id]


async def test_retrying_a_failed_pipeline_reruns_it_in_place(
    adapter: GitLabAdapter, gitlab: GitLabStandin
) -> None:
    await gitlab.set_script(1, FAILING)
    build = await adapter.trigger_build(BuildRequest(project="group/app", branch="main"))
    await finished(adapter, build.id)
    retried = await adapter.retry_build(build.id)
    assert retried.id == build.id
    assert retried.metadata["retry_of"] == build.id
    assert (await finished(adapter, build.id)).status is BuildStatus.SUCCEEDED


async def test_retrying_a_running_pipeline_is_refused(adapter: GitLabAdapter) -> None:
    build = await adapter.trigger_build(BuildRequest(project="group/app", branch="main"))
    with pytest.raises(UpstreamInvalidArgument, match="wait for it or cancel it"):
        await adapter.retry_build(build.id)


async def test_a_commit_is_refused_naming_the_field(adapter: GitLabAdapter) -> None:
    with pytest.raises(UpstreamInvalidArgument) as caught:
        await adapter.trigger_build(BuildRequest(project="group/app", commit="abc123"))
    assert caught.value.details["field"] == "commit"


@pytest.mark.parametrize("build_id", ["42", "group/app", "group/app#x", "../x#1"])
async def test_a_malformed_build_id_is_refused_naming_the_field(
    adapter: GitLabAdapter, build_id: str
) -> None:
    with pytest.raises(UpstreamInvalidArgument) as caught:
        await adapter.get_build(build_id)
    assert caught.value.details["field"] == "build_id"


async def test_a_pipelines_web_url_works_as_its_build_id(
    adapter: GitLabAdapter, gitlab: GitLabStandin
) -> None:
    build = await adapter.trigger_build(BuildRequest(project="group/app", branch="main"))
    assert build.url is not None
    assert (await adapter.get_build(build.url)).id == build.id


async def test_a_project_the_token_cannot_see_is_not_found_with_a_hint(
    adapter: GitLabAdapter,
) -> None:
    with pytest.raises(UpstreamNotFound, match="may not see"):
        await adapter.trigger_build(BuildRequest(project="group/secret", branch="main"))


async def test_ping_reads_the_version_with_the_stored_token(adapter: GitLabAdapter) -> None:
    await adapter.ping()


async def test_ping_with_a_wrong_token_is_an_auth_failure(
    http: httpx.AsyncClient, gitlab: GitLabStandin
) -> None:
    wrong = Credentials(type="private_token", token="glpat-wrong-token-value")
    with pytest.raises(UpstreamAuthFailed):
        await make_adapter(http, gitlab.base_url, credentials=wrong).ping()


async def test_a_bearer_token_and_a_job_token_are_sent_as_gitlab_documents(
    http: httpx.AsyncClient, gitlab: GitLabStandin
) -> None:
    await gitlab.add_token("oauth-token-for-tests", username="root", kind="oauth")
    await gitlab.add_token("job-token-for-tests", username="root", kind="job")
    for credentials in (
        Credentials(type="bearer", token="oauth-token-for-tests"),
        Credentials(type="job_token", token="job-token-for-tests"),
    ):
        adapter = make_adapter(http, gitlab.base_url, credentials=credentials)
        assert await adapter.list_builds(project="group/app", status=None, limit=5) == []
    sent = {request["credential"] for request in await gitlab.requests()}
    assert sent == {"Authorization", "JOB-TOKEN"}


async def test_rate_limiting_is_retriable_with_gitlabs_wait(
    adapter: GitLabAdapter, gitlab: GitLabStandin
) -> None:
    await gitlab.inject(429, retry_after=7)
    with pytest.raises(UpstreamRateLimited) as caught:
        await adapter.list_builds(project="group/app", status=None, limit=5)
    assert caught.value.retriable is True
    assert caught.value.retry_after == 7


async def test_artifacts_are_job_archives_single_files_and_traces(
    adapter: GitLabAdapter,
) -> None:
    build = await adapter.trigger_build(BuildRequest(project="group/app", branch="main"))
    await finished(adapter, build.id)
    found = {artifact.id: artifact for artifact in await adapter.list_artifacts(build.id)}
    archive = next(a for a in found.values() if a.kind == "file")
    assert archive.name == "build/compile/artifacts.zip"
    head = await adapter.read_artifact(build.id, archive.id, offset=0, limit=2)
    assert head.data == b"PK" and head.more is True
    one = await adapter.read_artifact(build.id, f"{archive.id}/dist/app.txt", offset=0, limit=100)
    assert one.data == b"the app\n" and one.more is False
    trace = next(a for a in found.values() if a.kind == "log")
    assert (await adapter.read_artifact(build.id, trace.id, offset=0, limit=50)).data


async def test_an_artifact_of_another_pipeline_is_not_found(adapter: GitLabAdapter) -> None:
    first = await adapter.trigger_build(BuildRequest(project="group/app", branch="main"))
    await finished(adapter, first.id)
    second = await adapter.trigger_build(BuildRequest(project="group/app", branch="main"))
    archive = next(a for a in await adapter.list_artifacts(first.id) if a.kind == "file")
    with pytest.raises(UpstreamNotFound):
        await adapter.read_artifact(second.id, archive.id, offset=0, limit=10)


async def test_a_schedule_is_a_pipeline_and_playing_it_starts_a_run(
    http: httpx.AsyncClient, gitlab: GitLabStandin
) -> None:
    await gitlab.add_schedule(project=1, description="nightly", ref="main")
    adapter = make_adapter(http, gitlab.base_url, config=GitLabConfig(projects=["group/app"]))
    [nightly] = await adapter.list_pipelines()
    assert nightly.name == "group/app: nightly"
    run = await adapter.trigger_pipeline(PipelineRequest(pipeline=nightly.id))
    assert run.pipeline_id == nightly.id
    assert len(run.builds) == 1
    again = await adapter.get_pipeline_run(run.id)
    assert again.builds[0].id == run.builds[0].id
    assert again.builds[0].metadata["source"] == "schedule"


async def test_a_schedule_takes_no_parameters(
    http: httpx.AsyncClient, gitlab: GitLabStandin
) -> None:
    await gitlab.add_schedule(project=1, description="nightly", ref="main")
    adapter = make_adapter(http, gitlab.base_url, config=GitLabConfig(projects=["group/app"]))
    [nightly] = await adapter.list_pipelines()
    with pytest.raises(UpstreamInvalidArgument) as caught:
        await adapter.trigger_pipeline(PipelineRequest(pipeline=nightly.id, parameters={"A": 1}))
    assert caught.value.details["field"] == "parameters"
