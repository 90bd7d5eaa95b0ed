"""The GitHub Actions provider's pure parts: ids, log cleaning, the app JWT, and webhooks
checked against ``@octokit/webhooks-examples`` payloads (fetched by scripts/ensure-octokit)."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from devmesh.adapters.registry import Connection
from devmesh.domain.errors import UpstreamInvalidArgument, UpstreamRateLimited
from devmesh.domain.models import Credentials
from devmesh.providers.github_actions import GitHubActionsConfig, provider
from devmesh.providers.github_actions.credentials import app_jwt
from devmesh.providers.github_actions.ids import RunRef, parse_build_id, parse_project
from devmesh.providers.github_actions.logs import clean_log
from devmesh.providers.github_actions.webhooks import (
    GitHubWebhookNormaliser,
    GitHubWebhookVerifier,
    signature,
)
from tests.standins.github.spec import examples

SECRET = "It's a Secret to Everybody"


def example(event: str, predicate: Any = lambda payload: True) -> dict[str, Any]:
    for entry in examples():
        if entry["name"] == event:
            found: dict[str, Any] = next(p for p in entry["examples"] if predicate(p))
            return found
    raise LookupError(event)


def delivery(event: str, payload: dict[str, Any]) -> tuple[dict[str, str], bytes]:
    body = json.dumps(payload).encode()
    headers = {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
        "X-Hub-Signature-256": signature(SECRET, body),
    }
    return headers, body


def test_a_build_id_names_repository_run_and_attempt_in_each_accepted_form() -> None:
    assert parse_build_id("octo/app#42") == RunRef("octo/app", 42)
    assert parse_build_id("octo/app#42.3") == RunRef("octo/app", 42, 3)
    url = "https://github.com/octo/app/actions/runs/42/attempts/2"
    assert parse_build_id(url) == RunRef("octo/app", 42, 2)
    assert str(RunRef("octo/app", 42, 3)) == "octo/app#42.3"


def test_a_malformed_build_id_is_refused_naming_the_field() -> None:
    with pytest.raises(UpstreamInvalidArgument) as caught:
        parse_build_id("octo/app/42")
    assert caught.value.details["field"] == "build_id"


def test_a_project_may_name_one_workflow_by_file_or_id() -> None:
    assert parse_project("octo/app:ci.yml").workflow == "ci.yml"
    assert parse_project("octo/app:1234").workflow == "1234"
    assert parse_project("octo/app").workflow is None
    with pytest.raises(UpstreamInvalidArgument):
        parse_project("octo/..")


def test_a_job_log_loses_timestamps_colour_codes_and_group_ends() -> None:
    text = (
        "2024-01-01T10:00:00.1234567Z ##[group]Run make\n"
        "2024-01-01T10:00:00.2234567Z \x1b[32mcompiled ok\x1b[0m\n"
        "2024-01-01T10:00:00.3234567Z ##[endgroup]\n"
        "2024-01-01T10:00:00.4234567Z ##[error]Process completed with exit code 1.\n"
    )
    assert clean_log(text) == [
        "Run make",
        "compiled ok",
        "Error: Process completed with exit code 1.",
    ]


def test_the_app_jwt_is_rs256_signed_by_the_key_and_lives_under_ten_minutes() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = app_jwt("12345", key, now=1_700_000_000)
    head, claims, sig = token.split(".")

    def decoded(part: str) -> bytes:
        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))

    key.public_key().verify(
        decoded(sig), f"{head}.{claims}".encode(), padding.PKCS1v15(), hashes.SHA256()
    )
    body = json.loads(decoded(claims))
    assert json.loads(decoded(head)) == {"alg": "RS256", "typ": "JWT"}
    assert body["iss"] == "12345"
    assert body["iat"] == 1_700_000_000 - 60
    assert body["exp"] - 1_700_000_000 <= 600


def test_a_delivery_signed_with_the_secret_verifies_and_any_change_does_not() -> None:
    headers, body = delivery("workflow_run", example("workflow_run"))
    verifier = GitHubWebhookVerifier()
    assert verifier.verify(secret=SECRET, headers=headers, body=body)
    assert not verifier.verify(secret="another secret", headers=headers, body=body)
    assert not verifier.verify(secret=SECRET, headers=headers, body=body + b" ")
    unsigned = {k: v for k, v in headers.items() if k != "X-Hub-Signature-256"}
    assert not verifier.verify(secret=SECRET, headers=unsigned, body=body)


def test_the_delivery_id_is_githubs_delivery_guid() -> None:
    headers, _ = delivery("ping", example("ping"))
    assert GitHubWebhookVerifier().delivery_id(headers) == headers["X-GitHub-Delivery"]


def test_a_completed_successful_workflow_run_is_a_build_completed_event_for_its_run() -> None:
    payload = example("workflow_run", lambda p: p["workflow_run"]["conclusion"] == "success")
    headers, _ = delivery("workflow_run", payload)
    [event] = GitHubWebhookNormaliser().normalise(headers=headers, payload=payload)
    run = payload["workflow_run"]
    assert event["type"] == "build.completed"
    assert event["data"]["id"] == f"{payload['repository']['full_name']}#{run['id']}"
    assert event["data"]["status"] == "succeeded"


def test_a_requested_workflow_run_is_a_build_triggered_event() -> None:
    payload = example(
        "workflow_run",
        lambda p: p["action"] == "requested" and p["workflow_run"]["conclusion"] is None,
    )
    headers, _ = delivery("workflow_run", payload)
    [event] = GitHubWebhookNormaliser().normalise(headers=headers, payload=payload)
    assert event["type"] == "build.triggered"


def test_workflow_job_and_ping_deliveries_make_no_event() -> None:
    normaliser = GitHubWebhookNormaliser()
    for event in ("workflow_job", "ping"):
        payload = example(event)
        headers, _ = delivery(event, payload)
        assert normaliser.normalise(headers=headers, payload=payload) == []


def github_answering(response: httpx.Response) -> Any:
    http = httpx.AsyncClient(transport=httpx.MockTransport(lambda request: response))
    connection = Connection(
        base_url="https://api.github.com",
        config=GitHubActionsConfig(),
        credentials=Credentials(type="bearer", token="ghp_unit"),
        http=http,
        policy=provider.http,
    )
    return provider.create_adapter(connection)


@pytest.mark.anyio
async def test_an_exhausted_primary_rate_limit_waits_until_githubs_reset_time() -> None:
    reset = int(time.time()) + 120
    headers = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset)}
    adapter = github_answering(
        httpx.Response(403, headers=headers, json={"message": "API rate limit exceeded"})
    )
    with pytest.raises(UpstreamRateLimited) as caught:
        await adapter.get_build("octo/app#1")
    assert caught.value.retry_after is not None and 100 <= caught.value.retry_after <= 120


@pytest.mark.anyio
async def test_a_secondary_rate_limit_waits_as_long_as_retry_after_says() -> None:
    headers = {"X-RateLimit-Remaining": "4990", "Retry-After": "60"}
    message = {"message": "You have exceeded a secondary rate limit."}
    adapter = github_answering(httpx.Response(403, headers=headers, json=message))
    with pytest.raises(UpstreamRateLimited) as caught:
        await adapter.list_builds(project="octo/app", status=None, limit=5)
    assert caught.value.retry_after == 60.0
