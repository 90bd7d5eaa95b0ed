"""Jenkins pieces that need no server: ids, results, console steps, webhooks."""

from __future__ import annotations

from typing import Any

import pytest

from devmesh.adapters.tailing import Tail
from devmesh.adapters.webhooks import URL_TOKEN_HEADER
from devmesh.domain.errors import UpstreamInvalidArgument
from devmesh.domain.models import BuildStatus
from devmesh.providers.jenkins.builds import status_of
from devmesh.providers.jenkins.ids import BuildRef, QueueRef, job_path, parse_build_id
from devmesh.providers.jenkins.logs import log_lines
from devmesh.providers.jenkins.models import WireBuild
from devmesh.providers.jenkins.webhooks import (
    JenkinsWebhookNormaliser,
    JenkinsWebhookVerifier,
    job_of_url,
)


def notification(phase: str, **build: Any) -> dict[str, Any]:
    """A Notification plugin body, as its README shows one."""
    return {
        "name": "app",
        "url": "job/team/job/app/",
        "build": {
            "full_url": "https://ci.example.com/job/team/job/app/18/",
            "number": 18,
            "queue_id": 77,
            "phase": phase,
            "url": "job/team/job/app/18/",
            "timestamp": 1_700_000_000_000,
            "duration": 61_000,
            "scm": {"branch": "origin/main", "commit": "c6d86dc7"},
            "parameters": {"TARGET": "linux"},
            **build,
        },
    }


def test_build_and_queue_ids_round_trip() -> None:
    assert parse_build_id("team/app#42") == BuildRef("team/app", 42)
    assert parse_build_id("team/app#queue-17") == QueueRef("team/app", 17)
    assert str(QueueRef("team/app", 17)) == "team/app#queue-17"


def test_a_job_path_nests_folders_and_encodes_each_name() -> None:
    assert job_path("team/my app") == "/job/team/job/my%20app"


@pytest.mark.parametrize("bad", ["team/../admin#1", "team/app", "team/app#x", "a?b#1"])
def test_an_id_that_names_no_build_is_refused_naming_build_id(bad: str) -> None:
    with pytest.raises(UpstreamInvalidArgument) as caught:
        parse_build_id(bad)
    assert caught.value.details["field"] == "build_id"


def test_unstable_is_failed_unless_the_tool_says_succeeded() -> None:
    unstable = WireBuild(number=1, result="UNSTABLE")
    assert status_of(unstable, unstable_is="failed") is BuildStatus.FAILED
    assert status_of(unstable, unstable_is="succeeded") is BuildStatus.SUCCEEDED


def test_aborted_and_not_built_are_cancelled_and_building_is_running() -> None:
    for result in ("ABORTED", "NOT_BUILT"):
        assert status_of(WireBuild(number=1, result=result), unstable_is="failed") is (
            BuildStatus.CANCELLED
        )
    assert status_of(WireBuild(number=1, building=True), unstable_is="failed") is (
        BuildStatus.RUNNING
    )


def test_pipeline_stages_name_the_steps_of_a_console() -> None:
    text = (
        "Started by user admin\n[Pipeline] stage\n[Pipeline] { (Build)\nmake\n"
        "[Pipeline] { (Test)\n\x1b[31mFAILED\x1b[0m\nFinished: FAILURE\n"
    )
    tail = Tail(data=text.encode(), clipped=False, size=len(text))

    lines = log_lines(tail, failed=True, failed_only=True, max_lines=100)

    assert [(line.number, line.step, line.text) for line in lines] == [
        (1, "Test", "[Pipeline] { (Test)"),
        (2, "Test", "FAILED"),
        (3, "Test", "Finished: FAILURE"),
    ]


def test_a_clipped_console_says_so_first() -> None:
    tail = Tail(data=b"rtial line\nlast\n", clipped=True, size=1000)

    lines = log_lines(tail, failed=False, failed_only=False, max_lines=100)

    assert lines[0].stream == "header" and "984 bytes" in lines[0].text
    assert [line.text for line in lines[1:]] == ["last"]


def test_the_url_token_must_match_exactly() -> None:
    verifier = JenkinsWebhookVerifier()
    assert verifier.verify(secret="s3cret", headers={URL_TOKEN_HEADER: "s3cret"}, body=b"{}")
    assert not verifier.verify(secret="s3cret", headers={URL_TOKEN_HEADER: "s3cre"}, body=b"{}")
    assert not verifier.verify(secret="s3cret", headers={}, body=b"{}")
    assert verifier.delivery_id({URL_TOKEN_HEADER: "s3cret"}) is None


def test_a_job_url_gives_its_full_name() -> None:
    assert job_of_url("job/team/job/my%20app/") == "team/my app"
    assert job_of_url("view/all/job/app/") is None


def test_each_phase_becomes_the_event_of_its_build_state() -> None:
    normaliser = JenkinsWebhookNormaliser()

    def events(phase: str, **build: Any) -> list[tuple[str, str, str]]:
        found = normaliser.normalise(headers={}, payload=notification(phase, **build))
        return [(e["type"], e["data"]["id"], e["data"]["status"]) for e in found]

    assert events("QUEUED", number=None) == [("build.triggered", "team/app#queue-77", "queued")]
    assert events("STARTED") == [("build.started", "team/app#18", "running")]
    assert events("COMPLETED", status="FAILURE") == []
    assert events("FINALIZED", status="FAILURE") == [("build.failed", "team/app#18", "failed")]
    assert events("FINALIZED", status="SUCCESS") == [
        ("build.completed", "team/app#18", "succeeded")
    ]


def test_a_finalized_build_carries_duration_parameters_and_revision() -> None:
    [event] = JenkinsWebhookNormaliser().normalise(
        headers={}, payload=notification("FINALIZED", status="SUCCESS")
    )
    data = event["data"]
    assert (data["duration"], data["branch"], data["commit"]) == (61.0, "origin/main", "c6d86dc7")
    assert data["metadata"]["parameters"] == {"TARGET": "linux"}


def test_a_body_that_is_not_a_notification_makes_no_event() -> None:
    normaliser = JenkinsWebhookNormaliser()
    payloads: list[Any] = [{}, [], {"url": "job/app/", "build": "x"}, {"object_kind": "pipeline"}]
    for payload in payloads:
        assert normaliser.normalise(headers={}, payload=payload) == []
