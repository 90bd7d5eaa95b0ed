"""CircleCI pieces that need no server: slugs, ids, statuses, step output, webhooks."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest

from devmesh.adapters.webhooks import BodyDeliveryId
from devmesh.domain.errors import UpstreamInvalidArgument
from devmesh.domain.models import BuildStatus
from devmesh.providers.circleci.builds import build_of
from devmesh.providers.circleci.ids import BuildRef, checked_slug, encoded, parse_build_id, v1_path
from devmesh.providers.circleci.logs import StepOutput, log_lines
from devmesh.providers.circleci.models import WireJob, WirePipeline, WireWorkflow
from devmesh.providers.circleci.webhooks import CircleCIWebhookNormaliser, CircleCIWebhookVerifier

PIPELINE = "5034460f-c7c4-4c43-9457-de07e2029e7b"
WORKFLOW = "0e53027b-521a-4c40-9042-47e72b3c63a3"
SECRET = "whsec-circleci-test"


def pipeline(**fields: Any) -> WirePipeline:
    return WirePipeline(
        id=PIPELINE, number=25, project_slug="gh/org/app", state="created",
        created_at="2026-01-01T10:00:00Z", vcs={"branch": "main", "revision": "c6d86dc7"},
        **fields,
    )  # fmt: skip


def workflow(status: str, name: str = "build", stopped: str | None = None) -> WireWorkflow:
    return WireWorkflow(
        id=WORKFLOW, name=name, pipeline_id=PIPELINE, pipeline_number=25,
        project_slug="gh/org/app", status=status, created_at="2026-01-01T10:00:01Z",
        stopped_at=stopped,
    )  # fmt: skip


def delivery(status: str = "failed", kind: str = "workflow-completed") -> dict[str, Any]:
    """A webhook body as CircleCI's webhooks page shows one."""
    return {
        "type": kind,
        "id": "3888f21b-eaa7-38e3-8f3d-75a63bba8895",
        "happened_at": "2026-01-01T10:01:02.000Z",
        "webhook": {"id": "cf8c4fdd-0587-4da1-b4ca-4846e9640af9", "name": "devmesh"},
        "project": {"id": "84996744-a854-4f5e-aea3-04e2851dc1d2", "name": "app",
                    "slug": "gh/org/app"},
        "organization": {"id": "f22b6566-597d-46d5-ba74-99ef5bb3d85c", "name": "org"},
        "pipeline": {"id": PIPELINE, "number": 25, "created_at": "2026-01-01T10:00:00.000Z",
                     "trigger": {"type": "webhook"},
                     "vcs": {"branch": "main", "revision": "c6d86dc7"}},
        "workflow": {"id": WORKFLOW, "name": "build", "status": status,
                     "created_at": "2026-01-01T10:00:01.000Z",
                     "stopped_at": "2026-01-01T10:01:01.000Z",
                     "url": f"https://app.circleci.com/pipelines/github/org/app/25/workflows/{WORKFLOW}"},
    }  # fmt: skip


def signed(body: bytes, secret: str = SECRET) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"circleci-signature": f"v1={digest}", "circleci-event-type": "workflow-completed"}


def test_a_slug_is_sent_as_one_percent_encoded_segment() -> None:
    assert encoded(checked_slug("gh/org/app")) == "gh%2Forg%2Fapp"
    assert v1_path("gh/org/app") == "github/org/app"
    assert v1_path("bb/org/app") == "bitbucket/org/app"


@pytest.mark.parametrize("bad", ["org/app", "gh/org", "gh/../app", "gh/org/app/x", "xx/org/app"])
def test_a_project_that_is_not_a_slug_is_refused_naming_project(bad: str) -> None:
    with pytest.raises(UpstreamInvalidArgument) as caught:
        checked_slug(bad)
    assert caught.value.details["field"] == "project"


def test_build_ids_round_trip_with_and_without_rerun_workflows() -> None:
    assert parse_build_id(PIPELINE) == BuildRef(PIPELINE)
    rerun = BuildRef(PIPELINE, (WORKFLOW,))
    assert parse_build_id(str(rerun)) == rerun


@pytest.mark.parametrize("bad", ["25", "gh/org/app#25", f"{PIPELINE}/", f"{PIPELINE}/x"])
def test_an_id_that_names_no_pipeline_is_refused_naming_build_id(bad: str) -> None:
    with pytest.raises(UpstreamInvalidArgument) as caught:
        parse_build_id(bad)
    assert caught.value.details["field"] == "build_id"


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("running", BuildStatus.RUNNING),
        ("failing", BuildStatus.RUNNING),
        ("on_hold", BuildStatus.RUNNING),
        ("success", BuildStatus.SUCCEEDED),
        ("failed", BuildStatus.FAILED),
        ("error", BuildStatus.FAILED),
        ("canceled", BuildStatus.CANCELLED),
        ("not_run", BuildStatus.CANCELLED),
    ],
)
def test_a_workflow_status_maps_to_the_builds(status: str, expected: BuildStatus) -> None:
    stopped = None if expected is BuildStatus.RUNNING else "2026-01-01T10:01:01Z"
    build = build_of(BuildRef(PIPELINE), pipeline(), [workflow(status, stopped=stopped)],
                     failed_jobs=[], app_url="https://app.circleci.com")  # fmt: skip
    assert build.status is expected


def test_a_pipeline_without_workflows_yet_is_queued_and_an_errored_one_failed() -> None:
    queued = build_of(BuildRef(PIPELINE), pipeline(), [], failed_jobs=[], app_url="")
    errored = build_of(
        BuildRef(PIPELINE),
        pipeline(errors=[{"type": "config", "message": "no workflow named build"}]).model_copy(
            update={"state": "errored"}
        ),
        [],
        failed_jobs=[],
        app_url="",
    )
    assert queued.status is BuildStatus.QUEUED
    assert errored.status is BuildStatus.FAILED
    assert "no workflow named build" in errored.metadata["failure_reason"]


def test_a_failed_build_names_its_failed_job_and_lasts_from_created_to_stopped() -> None:
    failed_job = WireJob(id=WORKFLOW, name="unit", status="failed", job_number=7)
    build = build_of(
        BuildRef(PIPELINE),
        pipeline(),
        [workflow("failed", stopped="2026-01-01T10:01:01Z")],
        failed_jobs=[WireJob(id=PIPELINE, name="lint", status="success"), failed_job],
        app_url="https://app.circleci.com",
    )
    assert build.metadata["failed_stage"] == "unit"
    assert "job 'unit' failed" in build.metadata["failure_reason"]
    assert build.duration == 60.0
    assert build.url == "https://app.circleci.com/pipelines/github/org/app/25"
    assert (build.number, build.branch, build.commit) == (25, "main", "c6d86dc7")


def test_failed_only_keeps_the_failed_steps_and_lines_are_named_by_job_and_step() -> None:
    steps = [
        StepOutput("unit", "Spin up environment", False, ["agent 1.0\r\n"]),
        StepOutput("unit", "pytest", True, ["collected 1\r\n", "\x1b[31mE boom\x1b[0m\r\n"]),
    ]
    every = log_lines(steps, failed=True, failed_only=False, max_lines=100)
    failed = log_lines(steps, failed=True, failed_only=True, max_lines=100)
    assert [(line.number, line.step, line.text) for line in failed] == [
        (1, "unit: pytest", "collected 1"),
        (2, "unit: pytest", "E boom"),
    ]
    assert [line.text for line in every] == ["agent 1.0", "collected 1", "E boom"]


def test_only_the_end_of_a_long_log_is_kept() -> None:
    steps = [StepOutput("j", "s", False, [f"{n}\n" for n in range(10)])]
    kept = log_lines(steps, failed=False, failed_only=False, max_lines=3)
    assert [(line.number, line.text) for line in kept] == [(1, "7"), (2, "8"), (3, "9")]


def test_the_signature_is_an_hmac_of_the_body_with_the_secret() -> None:
    body = json.dumps(delivery()).encode()
    verifier = CircleCIWebhookVerifier()
    assert verifier.verify(secret=SECRET, headers=signed(body), body=body)
    assert not verifier.verify(secret=SECRET, headers=signed(body, "other"), body=body)
    assert not verifier.verify(secret=SECRET, headers=signed(body), body=body + b" ")
    assert not verifier.verify(secret=SECRET, headers={}, body=body)


def test_a_signature_among_several_versions_is_found() -> None:
    body = b"{}"
    v1 = signed(body)["circleci-signature"]
    headers = {"CircleCI-Signature": f"v2=abc,{v1}"}
    assert CircleCIWebhookVerifier().verify(secret=SECRET, headers=headers, body=body)


def test_the_delivery_id_is_the_bodys_id() -> None:
    verifier = CircleCIWebhookVerifier()
    assert isinstance(verifier, BodyDeliveryId)
    assert verifier.delivery_id({}) is None
    body = json.dumps(delivery()).encode()
    assert verifier.delivery_id_in_body(body) == "3888f21b-eaa7-38e3-8f3d-75a63bba8895"
    assert verifier.delivery_id_in_body(b"not json") is None


@pytest.mark.parametrize(
    ("status", "event"),
    [("success", "build.completed"), ("canceled", "build.cancelled"), ("failed", "build.failed")],
)
def test_a_completed_workflow_becomes_the_event_of_its_pipelines_build(
    status: str, event: str
) -> None:
    events = CircleCIWebhookNormaliser().normalise(headers={}, payload=delivery(status))
    assert [e["type"] for e in events] == [event]
    data = events[0]["data"]
    assert (data["id"], data["project"], data["number"]) == (PIPELINE, "gh/org/app", 25)
    assert data["duration"] == 60.0
    assert data["url"].endswith(f"/workflows/{WORKFLOW}")


def test_a_completed_job_or_an_unknown_body_makes_no_event() -> None:
    normaliser = CircleCIWebhookNormaliser()
    assert normaliser.normalise(headers={}, payload=delivery(kind="job-completed")) == []
    assert normaliser.normalise(headers={}, payload={"type": "ping"}) == []
    assert normaliser.normalise(headers={}, payload=[1, 2]) == []
