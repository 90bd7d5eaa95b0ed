"""The GitHub Actions adapter against the GitHub stand-in, in its own process, over HTTP.

The stand-in (``tests/standins/github``) checks every request and answer against
GitHub's OpenAPI description, and that the signed log and archive URLs never get the
token; ``run_github`` fails the module if either happened. What every provider does
(cancel, a refused token, not-found ids, faults) is the contract suite's.
"""

from __future__ import annotations

import io
import time
import zipfile
from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from devmesh.adapters.registry import Connection
from devmesh.domain.errors import UpstreamAuthFailed, UpstreamInvalidArgument
from devmesh.domain.models import Build, BuildRequest, Credentials
from devmesh.providers.github_actions import GitHubActionsConfig, provider
from tests.standins.github import GitHubStandin, run_github

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

TOKEN = "ghp_adapterTestsOnly00000000000000000000"
DEADLINE_S = 30.0
APP_ID = "31337"
INSTALLATION = 4242
ERROR = "AssertionError: expected 2, got 3"
FILES = {"app.txt": "the app\n" * 100, "reports/junit.xml": "<testsuite tests='12'/>\n"}


def jobs(*, fails: bool = False) -> list[dict[str, Any]]:
    return [
        {"name": "build", "lines": ["$ make", "compiled ok"], "artifacts": {"dist": FILES}},
        {"name": "test", "fails": fails, "lines": ["$ pytest", ERROR if fails else "12 passed"]},
    ]


@pytest.fixture(scope="module")
async def github() -> AsyncIterator[GitHubStandin]:
    async with run_github() as standin:
        await standin.add_token(TOKEN)
        await standin.add_repo("octo/app", {"ci.yml": jobs()})
        await standin.add_repo("octo/broken", {"ci.yml": jobs(fails=True)})
        await standin.add_repo("octo/two", {"ci.yml": jobs(), "nightly.yml": jobs()})
        yield standin


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def adapter_for(
    github: GitHubStandin, http: httpx.AsyncClient, credentials: Credentials, **config: Any
) -> Any:
    connection = Connection(
        base_url=github.base_url,
        config=GitHubActionsConfig(**config),
        credentials=credentials,
        http=http,
        policy=provider.http,
    )
    return provider.create_adapter(connection)


@pytest.fixture
def adapter(github: GitHubStandin, http: httpx.AsyncClient) -> Any:
    return adapter_for(github, http, Credentials(type="bearer", token=TOKEN))


async def settled(adapter: Any, build_id: str) -> Build:
    deadline = time.monotonic() + DEADLINE_S
    while True:
        build: Build = await adapter.get_build(build_id)
        if build.status.finished or time.monotonic() > deadline:
            return build
        await anyio.sleep(0.1)


async def posts(github: GitHubStandin, tail: str) -> int:
    return sum(
        1 for r in await github.requests() if r["method"] == "POST" and r["path"].endswith(tail)
    )


async def test_a_failed_build_names_its_first_failed_job_step_and_reason(adapter: Any) -> None:
    done = await settled(
        adapter, (await adapter.trigger_build(BuildRequest(project="octo/broken"))).id
    )
    assert done.status == "failed"
    assert done.metadata["failed_stage"] == "test"
    assert done.metadata["failed_step"] == "Run script"
    assert done.metadata["failure_reason"] == "failure"
    assert done.duration is not None and done.duration >= 0


async def test_the_failed_part_of_the_log_is_the_failed_jobs_log_cleaned(adapter: Any) -> None:
    done = await settled(
        adapter, (await adapter.trigger_build(BuildRequest(project="octo/broken"))).id
    )
    failed = await adapter.read_log_lines(done.id, failed_only=True)
    assert {line.step for line in failed} == {"test"}
    assert [line.text for line in failed] == [
        "Run script", "$ pytest", ERROR, "Error: Process completed with exit code 1.",
    ]  # fmt: skip


async def test_retrying_a_failed_build_reruns_its_failed_jobs_as_the_runs_next_attempt(
    adapter: Any, github: GitHubStandin
) -> None:
    done = await settled(
        adapter, (await adapter.trigger_build(BuildRequest(project="octo/broken"))).id
    )
    before = await posts(github, "/rerun-failed-jobs")
    retried = await adapter.retry_build(done.id)
    again = await settled(adapter, retried.id)
    assert retried.id == f"{done.id}.2"
    assert await posts(github, "/rerun-failed-jobs") == before + 1
    assert again.metadata["run_attempt"] == 2 and again.status == "failed"


async def test_retrying_a_succeeded_build_reruns_all_its_jobs(
    adapter: Any, github: GitHubStandin
) -> None:
    done = await settled(
        adapter, (await adapter.trigger_build(BuildRequest(project="octo/app"))).id
    )
    before = await posts(github, "/rerun")
    retried = await adapter.retry_build(done.id)
    assert (await settled(adapter, retried.id)).status == "succeeded"
    assert await posts(github, "/rerun") == before + 1


async def test_a_dispatch_answered_without_the_run_id_still_finds_the_run_it_made(
    adapter: Any, github: GitHubStandin
) -> None:
    await github.legacy_dispatch(True)
    try:
        build = await adapter.trigger_build(BuildRequest(project="octo/app", branch="main"))
    finally:
        await github.legacy_dispatch(False)
    listed = await adapter.list_builds(project="octo/app", status=None, limit=1)
    assert [b.id for b in listed] == [build.id]
    assert build.metadata["event"] == "workflow_dispatch"


async def test_a_repository_with_several_workflows_needs_one_named(adapter: Any) -> None:
    with pytest.raises(UpstreamInvalidArgument) as caught:
        await adapter.trigger_build(BuildRequest(project="octo/two"))
    assert caught.value.details["field"] == "project"
    named = await adapter.trigger_build(BuildRequest(project="octo/two:nightly.yml"))
    assert named.metadata["workflow"] == ".github/workflows/nightly.yml"


async def test_a_commit_is_refused_naming_the_field(adapter: Any) -> None:
    with pytest.raises(UpstreamInvalidArgument) as caught:
        await adapter.trigger_build(BuildRequest(project="octo/app", commit="abc123"))
    assert caught.value.details["field"] == "commit"


async def test_an_artifact_zip_lists_its_files_and_one_file_reads_in_windows(
    adapter: Any,
) -> None:
    done = await settled(
        adapter, (await adapter.trigger_build(BuildRequest(project="octo/app"))).id
    )
    listed = {a.id: a for a in await adapter.list_artifacts(done.id)}
    [zip_id] = [key for key, a in listed.items() if a.content_type == "application/zip"]
    entry = f"{zip_id}/app.txt"
    whole = await adapter.read_artifact(done.id, zip_id, offset=0, limit=1 << 20)
    first = await adapter.read_artifact(done.id, entry, offset=0, limit=10)
    rest = await adapter.read_artifact(done.id, entry, offset=10, limit=1 << 20)
    assert {entry, f"{zip_id}/reports/junit.xml"} <= set(listed)
    assert listed[entry].size == len(FILES["app.txt"])
    assert zipfile.ZipFile(io.BytesIO(whole.data)).namelist() == sorted(FILES)
    assert first.more is True and len(first.data) == 10
    assert (first.data + rest.data).decode() == FILES["app.txt"] and rest.more is False


async def test_a_github_app_exchanges_its_key_once_for_a_token_it_keeps_using(
    github: GitHubStandin, http: httpx.AsyncClient
) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    await github.add_app(installation_id=INSTALLATION, app_id=APP_ID, public_key=public.decode())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    credentials = Credentials(type="github_app", username=APP_ID, password=pem)
    app = adapter_for(github, http, credentials, installation_id=INSTALLATION)
    before = await posts(github, "/access_tokens")
    build = await app.trigger_build(BuildRequest(project="octo/app"))
    await app.get_build(build.id)
    assert await posts(github, "/access_tokens") == before + 1


async def test_a_github_app_key_the_app_does_not_have_is_an_auth_failure_naming_no_key(
    github: GitHubStandin, http: httpx.AsyncClient
) -> None:
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = stranger.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    credentials = Credentials(type="github_app", username=APP_ID, password=pem)
    app = adapter_for(github, http, credentials, installation_id=INSTALLATION)
    with pytest.raises(UpstreamAuthFailed) as caught:
        await app.ping()
    assert "PRIVATE KEY" not in f"{caught.value.message} {caught.value.details}"
