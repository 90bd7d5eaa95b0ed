"""CodeBuild provider pieces moto cannot show: failed and stopped builds, RetryBuild and
AWS's error codes, through botocore's own Stubber (which checks every request and
answer against the CodeBuild model); and the EventBridge webhook verifier and
normaliser."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from botocore.stub import ANY, Stubber

from devmesh.adapters.registry import Connection
from devmesh.domain.errors import (
    UpstreamAuthFailed,
    UpstreamInvalidArgument,
    UpstreamNotFound,
    UpstreamRateLimited,
    UpstreamUnavailable,
)
from devmesh.domain.models import BuildRequest, BuildStatus, Credentials
from devmesh.providers.codebuild import CodeBuildAdapter, CodeBuildConfig
from devmesh.providers.codebuild.client import endpoint_of
from devmesh.providers.codebuild.webhooks import (
    SECRET_HEADER,
    CodeBuildWebhookNormaliser,
    CodeBuildWebhookVerifier,
)

pytestmark = pytest.mark.anyio

BUILD_ID = "app:8745a7a9-c340-456a-9166-edf953571bec"
ARN = f"arn:aws:codebuild:eu-west-2:123456789012:build/{BUILD_ID}"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
STARTED = datetime(2026, 11, 30, 12, 0, 0, tzinfo=UTC)
ENDED = datetime(2026, 11, 30, 12, 3, 30, tzinfo=UTC)


def wire(status: str, **fields: Any) -> dict[str, Any]:
    build: dict[str, Any] = {
        "id": BUILD_ID,
        "arn": ARN,
        "buildNumber": 7,
        "projectName": "app",
        "buildStatus": status,
        "currentPhase": "COMPLETED",
        "startTime": STARTED,
        "endTime": ENDED,
        "sourceVersion": "main",
        "phases": [
            {"phaseType": "INSTALL", "phaseStatus": "SUCCEEDED"},
            {"phaseType": "PRE_BUILD", "phaseStatus": "SUCCEEDED"},
        ],
        "logs": {"groupName": "/aws/codebuild/app", "streamName": BUILD_ID.split(":")[1]},
    }
    build.update(fields)
    return build


@pytest.fixture
async def adapter() -> AsyncIterator[CodeBuildAdapter]:
    async with httpx.AsyncClient() as http:
        yield CodeBuildAdapter(
            Connection(
                base_url="https://amazonaws.com",
                config=CodeBuildConfig(region="eu-west-2"),
                credentials=Credentials(
                    type="aws_keys", username="AKIAEXAMPLEKEY000000", password=SECRET_KEY
                ),
                http=http,
            )
        )


async def stub(adapter: CodeBuildAdapter) -> Stubber:
    return Stubber(await adapter._aws.client("codebuild"))


async def test_a_build_failed_in_its_build_phase_names_that_phase_and_its_reason(
    adapter: CodeBuildAdapter,
) -> None:
    failed = wire(
        "FAILED",
        phases=[
            {"phaseType": "PRE_BUILD", "phaseStatus": "SUCCEEDED"},
            {
                "phaseType": "BUILD",
                "phaseStatus": "FAILED",
                "contexts": [
                    {"statusCode": "COMMAND_EXECUTION_ERROR", "message": "make: exit status 2"}
                ],
            },
            {"phaseType": "POST_BUILD", "phaseStatus": "SUCCEEDED"},
        ],
    )
    with await stub(adapter) as stubber:
        stubber.add_response("batch_get_builds", {"builds": [failed]}, {"ids": [BUILD_ID]})
        build = await adapter.get_build(BUILD_ID)
    assert build.status is BuildStatus.FAILED
    assert build.metadata["failed_stage"] == "BUILD"
    assert build.metadata["failure_reason"] == "make: exit status 2"
    assert build.duration == 210.0
    assert build.branch == "main"


async def test_a_stopped_build_is_cancelled(adapter: CodeBuildAdapter) -> None:
    with await stub(adapter) as stubber:
        stubber.add_response("batch_get_builds", {"builds": [wire("STOPPED")]}, {"ids": [BUILD_ID]})
        build = await adapter.get_build(BUILD_ID)
    assert build.status is BuildStatus.CANCELLED


async def test_retrying_a_finished_build_calls_retry_build_and_returns_the_new_build(
    adapter: CodeBuildAdapter,
) -> None:
    new_id = "app:0b0e5a2c-1111-4222-8333-444455556666"
    again = wire("IN_PROGRESS", id=new_id, currentPhase="QUEUED", endTime=None)
    del again["endTime"]
    with await stub(adapter) as stubber:
        stubber.add_response("batch_get_builds", {"builds": [wire("FAILED")]}, {"ids": [BUILD_ID]})
        stubber.add_response(
            "retry_build", {"build": again}, {"id": BUILD_ID, "idempotencyToken": ANY}
        )
        retried = await adapter.retry_build(BUILD_ID)
        stubber.assert_no_pending_responses()
    assert (retried.id, retried.status) == (new_id, BuildStatus.QUEUED)
    assert retried.metadata["retry_of"] == BUILD_ID


async def test_a_trigger_sends_the_commit_as_source_version_and_parameters_as_variables(
    adapter: CodeBuildAdapter,
) -> None:
    started = wire("IN_PROGRESS", currentPhase="SUBMITTED")
    del started["endTime"]
    with await stub(adapter) as stubber:
        stubber.add_response(
            "start_build",
            {"build": started},
            {
                "projectName": "app",
                "sourceVersion": "4f2c1e0",
                "environmentVariablesOverride": [
                    {"name": "DEBUG", "value": "true", "type": "PLAINTEXT"}
                ],
            },
        )
        build = await adapter.trigger_build(
            BuildRequest(project="app", commit="4f2c1e0", parameters={"DEBUG": True})
        )
    assert build.status is BuildStatus.QUEUED


async def test_a_parameter_that_is_not_an_environment_variable_name_is_refused_naming_it(
    adapter: CodeBuildAdapter,
) -> None:
    with pytest.raises(UpstreamInvalidArgument) as caught:
        await adapter.trigger_build(BuildRequest(project="app", parameters={"no-dash": "x"}))
    assert caught.value.details["field"] == "parameters.no-dash"


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("ResourceNotFoundException", 400, UpstreamNotFound),
        ("AccessDeniedException", 400, UpstreamAuthFailed),
        ("UnrecognizedClientException", 400, UpstreamAuthFailed),
        ("ThrottlingException", 400, UpstreamRateLimited),
        ("InvalidInputException", 400, UpstreamInvalidArgument),
        ("InternalFailure", 500, UpstreamUnavailable),
    ],
)
async def test_each_aws_error_code_is_mapped_to_its_typed_error_without_the_secret(
    adapter: CodeBuildAdapter, code: str, status: int, expected: type[Exception]
) -> None:
    with await stub(adapter) as stubber:
        stubber.add_client_error(
            "list_builds_for_project",
            service_error_code=code,
            service_message=f"refused for key {SECRET_KEY}",
            http_status_code=status,
        )
        with pytest.raises(expected) as caught:
            await adapter.list_builds(project="app", status=None, limit=5)
    assert SECRET_KEY not in str(caught.value)


async def test_a_throttled_call_carries_aws_retry_after(adapter: CodeBuildAdapter) -> None:
    with await stub(adapter) as stubber:
        stubber.add_client_error(
            "list_builds_for_project",
            service_error_code="ThrottlingException",
            http_status_code=400,
            response_meta={"HTTPHeaders": {"retry-after": "3"}},
        )
        with pytest.raises(UpstreamRateLimited) as caught:
            await adapter.list_builds(project="app", status=None, limit=5)
    assert caught.value.retry_after == 3.0


async def test_an_invalid_input_names_the_field_of_the_call(adapter: CodeBuildAdapter) -> None:
    with await stub(adapter) as stubber:
        stubber.add_client_error("batch_get_builds", service_error_code="InvalidInputException")
        with pytest.raises(UpstreamInvalidArgument) as caught:
            await adapter.get_build(BUILD_ID)
    assert caught.value.details["field"] == "build_id"


async def test_an_id_that_is_not_a_codebuild_build_id_is_refused_before_any_call(
    adapter: CodeBuildAdapter,
) -> None:
    with await stub(adapter), pytest.raises(UpstreamInvalidArgument) as caught:
        await adapter.get_build("app#42")
    assert caught.value.details["field"] == "build_id"


def test_aws_itself_uses_the_sdk_endpoints_and_anything_else_is_the_one_endpoint() -> None:
    assert endpoint_of("https://amazonaws.com") is None
    assert endpoint_of("https://codebuild.eu-west-2.amazonaws.com") is None
    assert endpoint_of("http://127.0.0.1:4566") == "http://127.0.0.1:4566"


# --- webhooks --------------------------------------------------------------------------


def state_change(status: str) -> dict[str, Any]:
    """The CodeBuild user guide's "Build notifications input format" example, shortened."""
    return {
        "version": "0",
        "id": "bfdc1220-60ff-44ad-9d2f-8bd6d0d5c1e1",
        "detail-type": "CodeBuild Build State Change",
        "source": "aws.codebuild",
        "account": "123456789012",
        "time": "2026-11-30T12:03:30Z",
        "region": "eu-west-2",
        "resources": [ARN],
        "detail": {
            "build-status": status,
            "project-name": "app",
            "build-id": ARN,
            "additional-information": {
                "build-complete": status != "IN_PROGRESS",
                "build-start-time": "Nov 30, 2026 12:00:00 PM",
                "source-version": "main",
                "logs": {"group-name": "/aws/codebuild/app", "stream-name": "8745a7a9"},
                "phases": [
                    {
                        "phase-context": [],
                        "start-time": "Nov 30, 2026 12:00:00 PM",
                        "end-time": "Nov 30, 2026 12:01:00 PM",
                        "duration-in-seconds": 60,
                        "phase-type": "PRE_BUILD",
                        "phase-status": "SUCCEEDED",
                    },
                    {
                        "phase-context": ["COMMAND_EXECUTION_ERROR: make: exit status 2"],
                        "start-time": "Nov 30, 2026 12:01:00 PM",
                        "end-time": "Nov 30, 2026 12:03:30 PM",
                        "duration-in-seconds": 150,
                        "phase-type": "BUILD",
                        "phase-status": "FAILED",
                    },
                ],
            },
            "current-phase": "COMPLETED",
            "current-phase-context": "[]",
            "version": "1",
        },
    }


def test_a_delivery_with_the_tools_secret_header_is_verified() -> None:
    body = json.dumps(state_change("FAILED")).encode()
    verifier = CodeBuildWebhookVerifier()
    assert verifier.verify(secret="s3cret", headers={SECRET_HEADER: "s3cret"}, body=body)


def test_a_delivery_with_another_secret_or_none_is_refused() -> None:
    body = json.dumps(state_change("FAILED")).encode()
    verifier = CodeBuildWebhookVerifier()
    assert not verifier.verify(secret="s3cret", headers={SECRET_HEADER: "guess"}, body=body)
    assert not verifier.verify(secret="s3cret", headers={}, body=body)


def test_a_failed_state_change_is_a_build_failed_event_naming_the_failed_phase() -> None:
    [event] = CodeBuildWebhookNormaliser().normalise(headers={}, payload=state_change("FAILED"))
    assert event["type"] == "build.failed"
    assert event["data"]["id"] == BUILD_ID
    assert event["data"]["metadata"]["failed_stage"] == "BUILD"
    assert event["data"]["duration"] == 210.0


def test_an_in_progress_state_change_is_a_build_started_event() -> None:
    [event] = CodeBuildWebhookNormaliser().normalise(
        headers={}, payload=state_change("IN_PROGRESS")
    )
    assert (event["type"], event["data"]["status"]) == ("build.started", "running")


def test_a_phase_change_event_makes_no_event() -> None:
    payload = {**state_change("IN_PROGRESS"), "detail-type": "CodeBuild Build Phase Change"}
    assert CodeBuildWebhookNormaliser().normalise(headers={}, payload=payload) == []
