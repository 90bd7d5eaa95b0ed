"""GitLab pieces that need no server: trace cleaning, ids, webhooks, the tail read."""

from __future__ import annotations

import httpx
import pytest

from devmesh.adapters.tailing import read_tail
from devmesh.domain.errors import UpstreamInvalidArgument
from devmesh.providers.gitlab.ids import parse_build_id, parse_schedule_id
from devmesh.providers.gitlab.logs import clean_trace
from devmesh.providers.gitlab.webhooks import GitLabWebhookNormaliser, GitLabWebhookVerifier

pytestmark = pytest.mark.anyio

HOOK = {
    "object_kind": "pipeline",
    "object_attributes": {
        "id": 31,
        "iid": 3,
        "ref": "main",
        "tag": False,
        "sha": "bcbb5ec396a2c0f828686f14fac9b80b780504f2",
        "status": "failed",
        "source": "push",
        "created_at": "2016-08-12 15:23:28 UTC",
        "url": "https://gitlab.example.com/group/app/-/pipelines/31",
    },
    "project": {"id": 1, "path_with_namespace": "group/app"},
    "builds": [
        {"id": 380, "stage": "deploy", "name": "production", "status": "skipped"},
        {"id": 377, "stage": "test", "name": "unit", "status": "failed",
         "failure_reason": "script_failure", "allow_failure": False},
        {"id": 376, "stage": "build", "name": "compile", "status": "success"},
    ],
}  # fmt: skip


def test_a_trace_loses_colour_codes_and_section_markers() -> None:
    raw = (
        "section_start:1700000000:step_script\r\x1b[0K\x1b[32;1m$ make\x1b[0;m\n"
        "progress 10%\rprogress 100%\n"
        "section_end:1700000001:step_script\r\x1b[0K\n"
    )
    assert clean_trace(raw) == ["$ make", "progress 100%", ""]


def test_a_build_id_names_project_and_pipeline_in_each_accepted_form() -> None:
    for text in (
        "group/app#31",
        "group/app/-/pipelines/31",
        "https://gitlab.com/group/app/-/pipelines/31",
    ):
        ref = parse_build_id(text)
        assert (ref.project, ref.pipeline_id) == ("group/app", 31)


def test_a_schedule_run_id_round_trips() -> None:
    ref = parse_schedule_id("group/app#schedule-4-after-30", field="run_id")
    assert (ref.schedule_id, ref.after, str(ref)) == (4, 30, "group/app#schedule-4-after-30")


def test_a_project_with_dot_segments_is_refused() -> None:
    with pytest.raises(UpstreamInvalidArgument):
        parse_build_id("group/../admin#1")


def test_the_webhook_token_must_match_exactly() -> None:
    verifier = GitLabWebhookVerifier()
    assert verifier.verify(secret="s3cret", headers={"X-Gitlab-Token": "s3cret"}, body=b"{}")
    assert not verifier.verify(secret="s3cret", headers={"X-Gitlab-Token": "s3cre"}, body=b"{}")
    assert not verifier.verify(secret="s3cret", headers={}, body=b"{}")


def test_the_delivery_id_prefers_the_idempotency_key() -> None:
    verifier = GitLabWebhookVerifier()
    both = {"Idempotency-Key": "k-1", "X-Gitlab-Event-UUID": "u-1"}
    assert verifier.delivery_id(both) == "k-1"
    assert verifier.delivery_id({"x-gitlab-event-uuid": "u-1"}) == "u-1"


def test_a_failed_pipeline_hook_is_a_build_failed_event_with_its_failed_stage() -> None:
    [event] = GitLabWebhookNormaliser().normalise(headers={}, payload=HOOK)
    assert event["type"] == "build.failed"
    assert event["data"]["id"] == "group/app#31"
    assert event["data"]["metadata"]["failed_stage"] == "test"
    assert event["data"]["metadata"]["failure_reason"] == "script_failure"


def test_a_job_hook_makes_no_event() -> None:
    payload = {"object_kind": "build", "build_id": 1, "build_status": "failed"}
    assert GitLabWebhookNormaliser().normalise(headers={}, payload=payload) == []


async def test_a_tail_read_keeps_the_last_bytes_and_says_it_clipped() -> None:
    body = b"".join(f"{n:05d}\n".encode() for n in range(10_000))
    response = httpx.Response(200, content=body)
    tail = await read_tail(response, limit=12)
    assert (tail.data, tail.clipped, tail.size) == (b"09998\n09999\n", True, len(body))
    whole = await read_tail(httpx.Response(200, content=b"short"), limit=12)
    assert (whole.data, whole.clipped) == (b"short", False)
