"""Running an operation over REST is answered before FastAPI's routing when the request
is well formed (devmesh/api/fastpath.py); these pin that the answers are the route's."""

from __future__ import annotations

import httpx
import pytest

from devmesh.app import Services
from tests.api.test_input_limits import tenant_with_ci
from tests.support.http import bearer

pytestmark = pytest.mark.anyio

TEMPLATE = "/api/v1/tools/{tool}/operations/{operation}"


async def test_a_body_that_is_not_a_json_object_is_the_routes_422_naming_the_body(
    client: httpx.AsyncClient, services: Services
) -> None:
    _, key, _ = await tenant_with_ci(client, services)
    refused = await client.post(
        "/api/v1/tools/ci/operations/list_builds",
        content=b"[1, 2]",
        headers={**bearer(key), "Content-Type": "application/json"},
    )
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "body"


async def test_a_body_that_is_not_json_is_the_routes_422(
    client: httpx.AsyncClient, services: Services
) -> None:
    _, key, _ = await tenant_with_ci(client, services)
    refused = await client.post(
        "/api/v1/tools/ci/operations/list_builds",
        content=b"{not json",
        headers={**bearer(key), "Content-Type": "application/json"},
    )
    assert refused.status_code == 422
    assert refused.json()["code"] == "invalid_input"


async def test_a_json_body_with_a_charset_reaches_the_operation_as_well(
    client: httpx.AsyncClient, services: Services
) -> None:
    _, key, _ = await tenant_with_ci(client, services)
    answer = await client.post(
        "/api/v1/tools/ci/operations/no_such_operation",
        content=b'{"a": 1}',
        headers={**bearer(key), "Content-Type": "application/json; charset=utf-8"},
    )
    assert answer.status_code == 404
    assert answer.json()["details"]["operation"] == "no_such_operation"


async def test_an_unknown_operation_is_a_problem_naming_it_with_the_request_id(
    client: httpx.AsyncClient, services: Services
) -> None:
    _, key, _ = await tenant_with_ci(client, services)
    answer = await client.post(
        "/api/v1/tools/ci/operations/no_such_operation",
        json={},
        headers={**bearer(key), "X-Request-Id": "req-fast-1"},
    )
    assert answer.status_code == 404
    assert answer.headers["content-type"] == "application/problem+json"
    body = answer.json()
    assert (body["code"], body["details"]["operation"]) == ("unknown_tool", "no_such_operation")
    assert body["request_id"] == answer.headers["x-request-id"] == "req-fast-1"


async def test_a_call_with_no_body_runs_with_no_arguments(
    client: httpx.AsyncClient, services: Services
) -> None:
    _, key, _ = await tenant_with_ci(client, services)
    answer = await client.post("/api/v1/tools/ci/operations/no_such_operation", headers=bearer(key))
    assert answer.status_code == 404


async def test_a_call_is_counted_under_the_route_template(
    client: httpx.AsyncClient, services: Services
) -> None:
    _, key, _ = await tenant_with_ci(client, services)
    await client.post("/api/v1/tools/ci/operations/no_such_operation", json={}, headers=bearer(key))

    labels = {"method": "POST", "route": TEMPLATE, "status": "404"}
    counted = services.metrics.registry.get_sample_value("devmesh_http_requests_total", labels)
    assert counted == 1
