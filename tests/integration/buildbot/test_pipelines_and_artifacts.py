"""Pipelines and artifacts of the Buildbot adapter, against a real master and worker.

The master (``tests/support/buildbot/master.cfg``) has the force scheduler ``release``, which starts
``package`` and ``runtests`` together; ``package`` writes a 300-line log full of
multi-byte characters, publishes a link, and stores ``manifest.json``, the binary
``checksums.bin`` and ``test results.xml`` (a name the REST API cannot address) as
build data.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

from devmesh.adapters import artifacts
from devmesh.adapters.operations import DownloadArtifactInput
from devmesh.adapters.protocols import ArtifactAdapter, PipelineAdapter
from devmesh.adapters.registry import Connection
from devmesh.domain.errors import UpstreamInvalidArgument, UpstreamNotFound
from devmesh.domain.models import (
    ArtifactContent,
    BuildRequest,
    BuildStatus,
    PipelineRequest,
)
from devmesh.providers.buildbot import BuildbotAdapter, BuildbotConfig, provider
from tests.support.buildbot import BuildbotServer
from tests.support.http import service_like_client
from tests.support.polling import settled, settled_run

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

CHECKSUMS = bytes(range(256)) * 4


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with service_like_client() as client:
        yield client


@pytest.fixture
def adapter(http: httpx.AsyncClient, buildbot: BuildbotServer) -> BuildbotAdapter:
    made = provider.create_adapter(
        Connection(base_url=buildbot.base_url, config=BuildbotConfig(), credentials=None, http=http)
    )
    assert isinstance(made, BuildbotAdapter)
    return made


async def run_operation(adapter: BuildbotAdapter, name: str, **arguments: Any) -> BaseModel:
    """An operation as ToolService runs it: arguments validated by its input model."""
    operation = provider.operation(name)
    assert operation is not None, name
    return await operation.run(adapter, operation.input_model.model_validate(arguments))


async def download(adapter: BuildbotAdapter, **arguments: Any) -> ArtifactContent:
    read = await run_operation(adapter, "download_artifact", **arguments)
    assert isinstance(read, ArtifactContent)
    return read


@pytest.fixture(scope="module")
async def package_build(buildbot: BuildbotServer) -> str:
    """The id of one finished ``package`` build, started through the pipeline."""
    async with httpx.AsyncClient() as http:
        adapter = provider.create_adapter(
            Connection(
                base_url=buildbot.base_url, config=BuildbotConfig(), credentials=None, http=http
            )
        )
        assert isinstance(adapter, BuildbotAdapter)
        run = await adapter.trigger_pipeline(PipelineRequest(pipeline="release"))
        done = await settled_run(adapter, run.id)
    [package] = [build for build in done.builds if build.project == "package"]
    return package.id


async def test_the_adapter_offers_pipelines_and_artifacts(adapter: BuildbotAdapter) -> None:
    assert isinstance(adapter, PipelineAdapter)
    assert isinstance(adapter, ArtifactAdapter)
    names = {operation.name for operation in provider.operations}
    assert {
        "list_pipelines",
        "trigger_pipeline",
        "get_pipeline",
        "get_artifacts",
        "download_artifact",
    } <= names


async def test_list_pipelines_shows_each_force_scheduler_with_its_builders_and_parameters(
    adapter: BuildbotAdapter,
) -> None:
    pipelines = {pipeline.id: pipeline for pipeline in await adapter.list_pipelines()}
    assert sorted(pipelines) == ["force", "force-lint", "release"]
    assert pipelines["release"].projects == ["package", "runtests"]
    assert {"fail", "sleep"} <= set(pipelines["release"].parameters)
    # Fixed fields (this master's branch and revision) cannot be set, so are not offered.
    assert "branch" not in pipelines["release"].parameters


async def test_a_triggered_pipeline_runs_both_builders_to_succeeded(
    adapter: BuildbotAdapter,
) -> None:
    run = await adapter.trigger_pipeline(
        PipelineRequest(pipeline="release", parameters={"sleep": "1"}, reason="pipeline test")
    )
    seen_at_once = await adapter.get_pipeline_run(run.id)
    done = await settled_run(adapter, run.id)
    assert run.id.startswith("bs-")
    assert run.status is BuildStatus.QUEUED
    assert sorted(build.project for build in run.builds) == ["package", "runtests"]
    assert all(build.id.startswith("br-") for build in run.builds)
    assert seen_at_once.status in {BuildStatus.QUEUED, BuildStatus.RUNNING}
    assert len(seen_at_once.builds) == 2
    assert (done.id, done.pipeline_id, done.status) == (run.id, "release", BuildStatus.SUCCEEDED)
    assert sorted(build.project for build in done.builds) == ["package", "runtests"]
    assert {build.status for build in done.builds} == {BuildStatus.SUCCEEDED}
    assert all(build.id.isdigit() for build in done.builds)
    assert done.started_at is not None and done.finished_at is not None
    assert done.status_text == "2 builds: 2 succeeded"
    assert "pipeline test" in done.metadata["reason"]
    # The run's builds are ordinary builds: the build tools take their ids.
    for build in done.builds:
        assert (await adapter.get_build(build.id)).status is BuildStatus.SUCCEEDED


async def test_a_pipeline_with_a_failing_build_is_failed(adapter: BuildbotAdapter) -> None:
    run = await adapter.trigger_pipeline(
        PipelineRequest(pipeline="release", parameters={"fail": True})
    )
    done = await settled_run(adapter, run.id)
    statuses = {build.project: build.status for build in done.builds}
    assert done.status is BuildStatus.FAILED
    assert statuses == {"package": BuildStatus.SUCCEEDED, "runtests": BuildStatus.FAILED}


async def test_a_pipeline_with_a_cancelled_build_is_cancelled(adapter: BuildbotAdapter) -> None:
    run = await adapter.trigger_pipeline(
        PipelineRequest(pipeline="release", parameters={"sleep": "60"})
    )
    [runtests] = [build for build in run.builds if build.project == "runtests"]
    await adapter.cancel_build(runtests.id)
    done = await settled_run(adapter, run.id)
    statuses = {build.project: build.status for build in done.builds}
    assert done.status is BuildStatus.CANCELLED
    assert statuses["runtests"] is BuildStatus.CANCELLED


async def test_an_unknown_pipeline_is_not_found_and_names_the_pipelines(
    adapter: BuildbotAdapter,
) -> None:
    with pytest.raises(UpstreamNotFound) as caught:
        await adapter.trigger_pipeline(PipelineRequest(pipeline="relase"))
    assert "'relase'" in caught.value.message
    assert "force, force-lint, release" in caught.value.message
    assert caught.value.details["pipelines"] == ["force", "force-lint", "release"]


async def test_an_unknown_pipeline_parameter_is_refused_naming_the_pipeline(
    adapter: BuildbotAdapter,
) -> None:
    with pytest.raises(UpstreamInvalidArgument) as caught:
        await adapter.trigger_pipeline(
            PipelineRequest(pipeline="release", parameters={"fial": True})
        )
    assert "'fial'" in caught.value.message
    assert "pipeline 'release'" in caught.value.message
    assert {"fail", "sleep"} <= set(caught.value.details["accepted"])


@pytest.mark.parametrize("run_id", ["bs-999999", "999999", "br-1", "release"])
async def test_an_unknown_run_id_is_not_found(adapter: BuildbotAdapter, run_id: str) -> None:
    with pytest.raises(UpstreamNotFound, match="trigger_pipeline"):
        await adapter.get_pipeline_run(run_id)


async def test_a_build_trigger_prefers_the_builders_own_scheduler_over_a_pipeline(
    adapter: BuildbotAdapter, buildbot: BuildbotServer
) -> None:
    build = await adapter.trigger_build(BuildRequest(project="runtests"))
    done = await settled(adapter, build.id)
    async with httpx.AsyncClient(base_url=buildbot.api_url) as http:
        answer = await http.get(f"/builds/{done.id}", params={"property": "scheduler"})
    [wire] = answer.json()["builds"]
    assert wire["properties"]["scheduler"][0] == "force"


async def test_get_artifacts_lists_build_data_logs_and_links(
    adapter: BuildbotAdapter, package_build: str
) -> None:
    listed = await run_operation(adapter, "get_artifacts", build_id=package_build)
    found = {artifact.id: artifact for artifact in getattr(listed, "artifacts", [])}
    checksums, manifest = found["data-checksums.bin"], found["data-manifest.json"]
    [log] = [artifact for artifact in found.values() if artifact.kind == "log"]
    [link] = [artifact for artifact in found.values() if artifact.kind == "link"]
    assert (checksums.kind, checksums.size, checksums.downloadable) == ("file", 1024, True)
    assert (manifest.kind, manifest.size) == ("file", 34)
    assert (log.name, log.step, log.content_type, log.downloadable) == (
        "build/stdio",
        "build",
        "text/plain",
        True,
    )
    assert log.metadata["lines"] > 300
    assert (link.name, link.step, link.downloadable) == ("coverage report", "publish", False)
    assert link.url == "https://reports.example.com/app/coverage/index.html"
    assert {artifact.build_id for artifact in found.values()} == {package_build}
    # Listing twice gives the same ids: an agent may come back to them later.
    again = await adapter.list_artifacts(package_build)
    assert {artifact.id for artifact in again} == set(found)


async def test_a_log_downloads_in_pages_that_join_up_to_the_whole(
    adapter: BuildbotAdapter, package_build: str
) -> None:
    [log] = [a for a in await adapter.list_artifacts(package_build) if a.kind == "log"]
    whole = await download(
        adapter, build_id=package_build, artifact_id=log.id, max_bytes=artifacts.MAX_BYTES
    )
    pages: list[ArtifactContent] = []
    offset: int | None = 0
    while offset is not None:
        page = await download(
            adapter, build_id=package_build, artifact_id=log.id, offset=offset, max_bytes=1000
        )
        pages.append(page)
        offset = page.next_offset
        assert len(pages) < 100, "paging does not end"
    assert not whole.truncated and whole.next_offset is None
    assert whole.encoding == "utf-8"
    assert "package line 300: café ✓ ünïcode" in whole.content
    assert whole.size is not None and whole.size == len(whole.content.encode())
    assert len(pages) > 5
    assert all(page.truncated and page.hint for page in pages[:-1])
    assert not pages[-1].truncated
    assert {page.encoding for page in pages} == {"utf-8"}
    # Windows end before a character they would cut, so every page is whole text.
    assert all(page.length <= 1000 for page in pages)
    assert "".join(page.content for page in pages) == whole.content


async def test_a_window_ending_inside_a_character_stops_before_it(
    adapter: BuildbotAdapter, package_build: str
) -> None:
    [log] = [a for a in await adapter.list_artifacts(package_build) if a.kind == "log"]
    whole = await download(adapter, build_id=package_build, artifact_id=log.id)
    tick = whole.content.encode().index("✓".encode())
    read = await download(
        adapter, build_id=package_build, artifact_id=log.id, offset=10, max_bytes=tick + 2 - 10
    )
    after = await download(
        adapter, build_id=package_build, artifact_id=log.id, offset=read.next_offset or 0
    )
    assert (read.encoding, read.length, read.next_offset) == ("utf-8", tick - 10, tick)
    assert after.content.startswith("✓")


async def test_an_offset_past_the_end_returns_nothing_and_says_so(
    adapter: BuildbotAdapter, package_build: str
) -> None:
    [log] = [a for a in await adapter.list_artifacts(package_build) if a.kind == "log"]
    read = await download(adapter, build_id=package_build, artifact_id=log.id, offset=10_000_000)
    assert (read.content, read.length, read.truncated) == ("", 0, False)
    assert read.hint is not None and "past the end" in read.hint


async def test_binary_build_data_downloads_as_base64_in_parts(
    adapter: BuildbotAdapter, package_build: str
) -> None:
    first = await download(
        adapter, build_id=package_build, artifact_id="data-checksums.bin", max_bytes=1000
    )
    rest = await download(
        adapter, build_id=package_build, artifact_id="data-checksums.bin", offset=1000
    )
    assert (first.encoding, first.size, first.truncated, first.next_offset) == (
        "base64",
        1024,
        True,
        1000,
    )
    assert (rest.encoding, rest.truncated, rest.next_offset) == ("base64", False, None)
    assert base64.b64decode(first.content) + base64.b64decode(rest.content) == CHECKSUMS


async def test_text_build_data_downloads_as_text(
    adapter: BuildbotAdapter, package_build: str
) -> None:
    read = await download(adapter, build_id=package_build, artifact_id="data-manifest.json")
    assert (read.encoding, read.content) == ("utf-8", '{"name": "app", "version": "1.0"}\n')
    assert (read.size, read.truncated) == (34, False)


@pytest.mark.parametrize(
    "artifact_id",
    ["log-999999", "link-999999-0", "data-no-such-file", "data-not/routable", "checksums.bin"],
)
async def test_an_unknown_artifact_is_not_found_and_points_to_get_artifacts(
    adapter: BuildbotAdapter, package_build: str, artifact_id: str
) -> None:
    with pytest.raises(UpstreamNotFound, match="get_artifacts") as caught:
        await adapter.read_artifact(package_build, artifact_id, offset=0, limit=100)
    assert caught.value.details["artifact_id"] == artifact_id


async def test_another_builds_log_is_not_an_artifact_of_this_build(
    adapter: BuildbotAdapter, package_build: str
) -> None:
    lint = await settled(adapter, (await adapter.trigger_build(BuildRequest(project="lint"))).id)
    [lint_log] = [a for a in await adapter.list_artifacts(lint.id) if a.kind == "log"]
    with pytest.raises(UpstreamNotFound, match="get_artifacts"):
        await adapter.read_artifact(package_build, lint_log.id, offset=0, limit=100)


async def test_build_data_the_api_cannot_address_is_listed_but_not_downloadable(
    adapter: BuildbotAdapter, package_build: str
) -> None:
    found = {a.id: a for a in await adapter.list_artifacts(package_build)}
    assert found["data-test results.xml"].downloadable is False
    assert found["data-test results.xml"].url is None
    with pytest.raises(UpstreamInvalidArgument, match="cannot be downloaded"):
        await adapter.read_artifact(package_build, "data-test results.xml", offset=0, limit=100)


async def test_a_link_cannot_be_downloaded_and_the_error_says_to_open_its_url(
    adapter: BuildbotAdapter, package_build: str
) -> None:
    [link] = [a for a in await adapter.list_artifacts(package_build) if a.kind == "link"]
    with pytest.raises(UpstreamInvalidArgument, match="open its url"):
        await adapter.read_artifact(package_build, link.id, offset=0, limit=100)
    # The same step has no second link: that id names nothing.
    with pytest.raises(UpstreamNotFound, match="get_artifacts"):
        await adapter.read_artifact(package_build, link.id[:-1] + "1", offset=0, limit=100)


def test_download_artifact_caps_max_bytes() -> None:
    with pytest.raises(ValueError, match="max_bytes"):
        DownloadArtifactInput(build_id="1", artifact_id="log-1", max_bytes=artifacts.MAX_BYTES + 1)
    assert DownloadArtifactInput(build_id="1", artifact_id="log-1").max_bytes == 64 * 1024
