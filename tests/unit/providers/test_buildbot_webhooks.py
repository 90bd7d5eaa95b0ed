"""Buildbot's HttpStatusPush deliveries: basic auth with the webhook secret, and the
build dict mapped to one build event."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from devmesh.providers.buildbot.webhooks import BuildbotWebhookNormaliser, BuildbotWebhookVerifier

SECRET = "s3cret-for-tests"


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def build_dict(**changes: Any) -> dict[str, Any]:
    build: dict[str, Any] = {
        "buildid": 42,
        "builderid": 3,
        "buildrequestid": 7,
        "number": 5,
        "complete": False,
        "results": None,
        "started_at": 1_700_000_000,
        "complete_at": None,
        "state_string": "building",
        "properties": {"branch": ["main", "Build"]},
        "builder": {"name": "runtests"},
        "url": "http://bb.test/#/builders/3/builds/5",
    }
    build.update(changes)
    return build


def test_basic_auth_with_the_secret_as_password_verifies_whatever_the_user() -> None:
    verifier = BuildbotWebhookVerifier()

    assert verifier.verify(secret=SECRET, headers=basic("devmesh", SECRET), body=b"{}")
    assert verifier.verify(secret=SECRET, headers=basic("other", SECRET), body=b"{}")


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer " + SECRET},
        {"Authorization": "Basic not-base64!"},
        basic("devmesh", "wrong"),
        {"Authorization": "Basic " + base64.b64encode(SECRET.encode()).decode()},
    ],
    ids=["missing", "bearer", "garbled", "wrong password", "no colon"],
)
def test_anything_but_basic_auth_with_the_secret_is_refused(headers: dict[str, str]) -> None:
    assert not BuildbotWebhookVerifier().verify(secret=SECRET, headers=headers, body=b"{}")


@pytest.mark.parametrize(
    ("complete", "results", "event"),
    [
        (False, None, "build.started"),
        (True, 0, "build.completed"),
        (True, 1, "build.completed"),
        (True, 3, "build.completed"),
        (True, 2, "build.failed"),
        (True, 4, "build.failed"),
        (True, 5, "build.retried"),
        (True, 6, "build.cancelled"),
        (True, None, "build.failed"),
    ],
)
def test_a_build_dict_maps_to_the_event_its_state_and_results_say(
    complete: bool, results: int | None, event: str
) -> None:
    payload = build_dict(complete=complete, results=results, complete_at=1_700_000_060)

    [normalised] = BuildbotWebhookNormaliser().normalise(headers={}, payload=payload)

    assert normalised["type"] == event


def test_the_events_data_is_the_build_as_the_adapter_shows_it_with_its_build_id() -> None:
    payload = build_dict(complete=True, results=0, complete_at=1_700_000_060)

    [normalised] = BuildbotWebhookNormaliser().normalise(headers={}, payload=payload)

    data = normalised["data"]
    assert data["id"] == "42"
    assert data["project"] == "runtests"
    assert data["status"] == "succeeded"
    assert data["branch"] == "main"
    assert data["duration"] == 60.0


@pytest.mark.parametrize("payload", [[], "text", {"buildid": "x"}, {"complete": True}])
def test_a_payload_that_is_not_a_build_dict_gives_no_event(payload: Any) -> None:
    assert BuildbotWebhookNormaliser().normalise(headers={}, payload=payload) == []
