"""Contract: builds through the adapter protocol — trigger, status, logs, cancel, retry,
lists, and the errors every provider names the same way."""

from __future__ import annotations

from typing import Any

import pytest

from devmesh.domain.errors import UpstreamAuthFailed, UpstreamNotFound, UpstreamUnavailable
from devmesh.domain.models import BuildRequest, BuildStatus
from tests.contract.conftest import AdapterAt
from tests.contract.target import ProviderTarget, Server
from tests.support.backends import free_port
from tests.support.polling import is_running, settled

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


async def test_a_build_goes_from_trigger_to_succeeded(adapter: Any, target: ProviderTarget) -> None:
    build = await adapter.trigger_build(target.succeeds)
    seen: list[BuildStatus] = [build.status]
    done = await settled(adapter, build.id, seen=seen)
    assert done.status is BuildStatus.SUCCEEDED
    assert done.project == target.succeeds.project
    assert done.started_at is not None and done.finished_at is not None
    assert done.duration is not None and done.duration >= 0
    # Never back to an earlier state, never through another final one.
    order = [BuildStatus.QUEUED, BuildStatus.RUNNING, BuildStatus.SUCCEEDED]
    assert all(status in order for status in seen), seen
    assert [order.index(s) for s in seen] == sorted(order.index(s) for s in seen)


async def test_a_failing_build_is_failed_with_its_error_line_in_its_logs_and_failed_part(
    adapter: Any, target: ProviderTarget
) -> None:
    build = await adapter.trigger_build(target.fails)
    done = await settled(adapter, build.id)
    lines = await adapter.read_log_lines(build.id, failed_only=False)
    failed = await adapter.read_log_lines(build.id, failed_only=True)
    assert done.status is BuildStatus.FAILED
    assert [line.number for line in lines] == list(range(1, len(lines) + 1))
    assert any(target.error_line in line.text for line in lines)
    assert any(target.error_line in line.text for line in failed)
    # The failed part is a part of the whole log, in its order. How its lines are
    # numbered is each provider's: places in the whole (Buildbot) or from 1 (GitLab).
    rest = iter([line.text for line in lines])
    assert all(line.text in rest for line in failed)


async def test_a_failed_build_says_why_it_failed_in_the_shared_field(
    adapter: Any, target: ProviderTarget
) -> None:
    # An agent that knows one provider knows all: the reason is in `failure_reason`,
    # not only in a provider's own metadata.
    done = await settled(adapter, (await adapter.trigger_build(target.fails)).id)
    assert done.status is BuildStatus.FAILED
    assert done.failure_reason
    assert done.build_id == done.id


async def test_cancelling_a_running_build_leaves_it_cancelled(
    adapter: Any, target: ProviderTarget
) -> None:
    build = await adapter.trigger_build(target.runs_long)
    try:
        running = await settled(adapter, build.id, is_running)
    finally:
        cancelled = await adapter.cancel_build(build.id)
    assert running.status is BuildStatus.RUNNING
    assert cancelled.status is BuildStatus.CANCELLED
    assert (await settled(adapter, build.id)).status is BuildStatus.CANCELLED


async def test_retrying_a_finished_build_starts_a_new_build_that_finishes(
    adapter: Any, target: ProviderTarget
) -> None:
    original = await settled(adapter, (await adapter.trigger_build(target.succeeds)).id)
    retried = await adapter.retry_build(original.id)
    done = await settled(adapter, retried.id)
    assert retried.id != original.id
    assert done.id != original.id
    assert (done.project, done.status) == (original.project, BuildStatus.SUCCEEDED)


async def test_listing_by_status_returns_only_builds_in_that_state(
    adapter: Any, target: ProviderTarget
) -> None:
    failed = await settled(adapter, (await adapter.trigger_build(target.fails)).id)
    await settled(adapter, (await adapter.trigger_build(target.succeeds)).id)
    listed = await adapter.list_builds(
        project=target.fails.project, status=BuildStatus.FAILED, limit=5
    )
    assert {build.status for build in listed} == {BuildStatus.FAILED}
    assert failed.id in [build.id for build in listed]


async def test_listing_by_project_returns_that_projects_builds_newest_first_up_to_the_limit(
    adapter: Any, target: ProviderTarget
) -> None:
    first = await settled(adapter, (await adapter.trigger_build(target.succeeds)).id)
    second = await settled(adapter, (await adapter.trigger_build(target.succeeds)).id)
    two = await adapter.list_builds(project=target.succeeds.project, status=None, limit=2)
    one = await adapter.list_builds(project=target.succeeds.project, status=None, limit=1)
    assert [build.id for build in two] == [second.id, first.id]
    assert [build.id for build in one] == [second.id]


async def test_an_unknown_build_id_is_not_found(adapter: Any, target: ProviderTarget) -> None:
    for build_id in target.unknown_build_ids:
        with pytest.raises(UpstreamNotFound):
            await adapter.get_build(build_id)


async def test_an_unknown_project_is_not_found_to_trigger_or_list(
    adapter: Any, target: ProviderTarget
) -> None:
    with pytest.raises(UpstreamNotFound):
        await adapter.trigger_build(BuildRequest(project=target.unknown_project))
    with pytest.raises(UpstreamNotFound):
        await adapter.list_builds(project=target.unknown_project, status=None, limit=5)


async def test_bad_credentials_are_an_auth_failure_that_does_not_repeat_them(
    adapter_at: AdapterAt, server: Server, target: ProviderTarget
) -> None:
    adapter = adapter_at(server.base_url, target.bad_credentials)
    with pytest.raises(UpstreamAuthFailed) as caught:
        await adapter.trigger_build(target.succeeds)
    secrets = [target.bad_credentials.password, target.bad_credentials.token]
    text = f"{caught.value.message} {caught.value.details}"
    assert not [secret for secret in secrets if secret and secret in text]


async def test_a_server_that_is_not_there_is_unavailable(
    adapter_at: AdapterAt, server: Server
) -> None:
    adapter = adapter_at(f"http://127.0.0.1:{free_port()}", server.credentials)
    with pytest.raises(UpstreamUnavailable):
        await adapter.ping()
