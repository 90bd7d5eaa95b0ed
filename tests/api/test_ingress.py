"""The ingress gate: what every request to /api/v1 and /mcp passes before its body is read."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from devmesh.app import Services, create_app
from devmesh.config import HttpSettings, RateLimitSettings, Settings

pytestmark = pytest.mark.anyio

MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
PING = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
FACES = ["/api/v1/tools", "/mcp"]
CAP = 4096


@pytest.fixture
async def gated_app(settings: Settings) -> AsyncIterator[FastAPI]:
    gated = settings.model_copy(
        update={
            "http": HttpSettings(max_body_bytes=CAP, body_timeout=0.3),
            "rate_limit": RateLimitSettings(
                failed_auth_per_address=5, failed_auth_per_key_prefix=3
            ),
        }
    )
    application = create_app(gated)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def http(gated_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=gated_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        yield client


@pytest.fixture
async def key(gated_app: FastAPI) -> str:
    services: Services = gated_app.state.services
    _, plaintext = await services.tenants.create_tenant("acme")
    return plaintext


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", **MCP_HEADERS}


async def call_asgi(
    app: FastAPI, path: str, headers: list[tuple[bytes, bytes]], receive: Any
) -> list[dict[str, Any]]:
    """Drive the app as a server would, with our own ``receive``."""
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8081),
    }
    await app(scope, receive, send)
    return sent


def status_of(sent: list[dict[str, Any]]) -> int:
    starts = [m for m in sent if m["type"] == "http.response.start"]
    assert len(starts) == 1, sent
    return int(starts[0]["status"])


def body_of(sent: list[dict[str, Any]]) -> dict[str, Any]:
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    decoded: dict[str, Any] = json.loads(body)
    return decoded


@pytest.mark.parametrize("path", FACES)
async def test_an_unauthenticated_request_is_401_before_its_body_is_read(
    gated_app: FastAPI, path: str
) -> None:
    async def receive() -> dict[str, Any]:
        raise AssertionError("the body of an unauthenticated request was read")

    headers = [(b"content-type", b"application/json"), (b"content-length", b"1000")]
    sent = await call_asgi(gated_app, path, headers, receive)

    assert status_of(sent) == 401
    assert body_of(sent)["code"] == "unauthorized"
    start = next(m for m in sent if m["type"] == "http.response.start")
    assert (b"www-authenticate", b"Bearer") in start["headers"]


@pytest.mark.parametrize("path", FACES)
async def test_a_declared_body_over_the_cap_is_413_problem_json(
    http: httpx.AsyncClient, key: str, path: str
) -> None:
    response = await http.post(path, content=b"x" * (CAP + 1), headers=auth(key))

    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "body_too_large"
    assert response.headers["connection"] == "close"


@pytest.mark.parametrize("path", FACES)
async def test_a_streamed_body_over_the_cap_is_413_not_a_500(
    http: httpx.AsyncClient, key: str, path: str
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(8):
            yield b"x" * 1024

    response = await http.post(path, content=chunks(), headers=auth(key))

    assert "content-length" not in response.request.headers
    assert response.status_code == 413
    assert response.json()["code"] == "body_too_large"


@pytest.mark.parametrize("path", FACES)
async def test_a_body_that_stops_arriving_is_408(gated_app: FastAPI, key: str, path: str) -> None:
    calls = 0

    async def receive() -> dict[str, Any]:
        nonlocal calls
        calls += 1
        if calls == 1:
            return {"type": "http.request", "body": b"{", "more_body": True}
        await asyncio.sleep(30)
        raise AssertionError("the gate waited past its deadline")

    headers = [
        (b"authorization", f"Bearer {key}".encode()),
        (b"content-type", b"application/json"),
        (b"transfer-encoding", b"chunked"),
    ]
    sent = await asyncio.wait_for(call_asgi(gated_app, path, headers, receive), timeout=10)

    assert status_of(sent) == 408
    assert body_of(sent)["code"] == "request_timeout"


async def test_a_body_within_the_cap_reaches_the_route(http: httpx.AsyncClient, key: str) -> None:
    tool = {"name": "ci", "provider": "buildbot", "base_url": "http://127.0.0.1:1"}
    response = await http.post("/api/v1/tools", json=tool, headers=auth(key))
    assert response.status_code == 201


@pytest.mark.parametrize("path", FACES)
async def test_two_authorization_headers_are_400_on_both_faces(
    http: httpx.AsyncClient, key: str, path: str
) -> None:
    headers = [
        ("Authorization", f"Bearer {key}"),
        ("Authorization", "Bearer dmk_0123456789abcdef_other"),
        *MCP_HEADERS.items(),
    ]
    response = await http.post(path, json=PING, headers=headers)

    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert "one Authorization header" in response.json()["detail"]


async def test_failed_authentications_from_one_address_are_limited_with_retry_after(
    http: httpx.AsyncClient,
) -> None:
    for n in range(5):
        wrong = {"Authorization": f"Bearer dmk_{n:032x}_guess"}
        assert (await http.get("/api/v1/tenant", headers=wrong)).status_code == 401

    refused = await http.get("/api/v1/tenant", headers={"Authorization": "Bearer dmk_x_y"})

    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    assert 1 <= int(refused.headers["retry-after"]) <= 60


async def test_failed_authentications_with_one_key_prefix_are_limited_on_both_faces(
    http: httpx.AsyncClient, key: str
) -> None:
    prefix = key.split("_")[1]
    wrong = {"Authorization": f"Bearer dmk_{prefix}_wrongsecret", **MCP_HEADERS}
    for path in ("/api/v1/tenant", "/mcp", "/api/v1/tenant"):
        assert (await http.post(path, json=PING, headers=wrong)).status_code == 401

    refused = await http.post("/mcp", json=PING, headers=wrong)

    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1


async def test_successful_requests_do_not_count_as_failed_authentications(
    http: httpx.AsyncClient, key: str
) -> None:
    for _ in range(8):
        assert (await http.get("/api/v1/tenant", headers=auth(key))).status_code == 200


@pytest.mark.parametrize("method", ["GET", "DELETE"])
async def test_get_and_delete_on_mcp_are_405_allowing_post(
    http: httpx.AsyncClient, key: str, method: str
) -> None:
    response = await http.request(method, "/mcp", headers=auth(key))

    assert response.status_code == 405
    assert response.headers["allow"] == "POST"


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "127.0.0.1:8081", "localhost:8081"])
async def test_mcp_accepts_loopback_hosts_with_or_without_a_port(
    http: httpx.AsyncClient, key: str, host: str
) -> None:
    response = await http.post("/mcp", json=PING, headers={**auth(key), "Host": host})

    assert response.status_code == 200
    assert response.json()["result"] == {}


async def test_mcp_still_refuses_a_foreign_host_on_a_loopback_server(
    http: httpx.AsyncClient, key: str
) -> None:
    response = await http.post("/mcp", json=PING, headers={**auth(key), "Host": "evil.example"})
    assert response.status_code == 421


async def test_mcp_requests_are_counted_under_route_mcp(
    http: httpx.AsyncClient, key: str, gated_app: FastAPI
) -> None:
    await http.post("/mcp", json=PING, headers=auth(key))
    await http.post("/mcp", json=PING)

    metrics = gated_app.state.services.metrics.render()
    text = metrics.decode() if isinstance(metrics, bytes) else metrics
    assert 'devmesh_http_requests_total{method="POST",route="/mcp",status="200"} 1.0' in text
    assert 'devmesh_http_requests_total{method="POST",route="/mcp",status="401"} 1.0' in text


@pytest.mark.parametrize("bad_id", [{"a": 1}, None, 1.5, True])
async def test_a_jsonrpc_request_with_an_invalid_id_gets_invalid_request(
    http: httpx.AsyncClient, key: str, bad_id: Any
) -> None:
    message = {"jsonrpc": "2.0", "id": bad_id, "method": "ping"}
    response = await http.post("/mcp", json=message, headers=auth(key))

    assert response.status_code == 400
    assert response.json()["id"] is None
    assert response.json()["error"]["code"] == -32600


async def test_a_jsonrpc_batch_gets_invalid_request(http: httpx.AsyncClient, key: str) -> None:
    response = await http.post("/mcp", json=[PING, PING], headers=auth(key))

    assert response.status_code == 400
    assert response.json() == {
        "jsonrpc": "2.0",
        "id": None,
        "error": {"code": -32600, "message": response.json()["error"]["message"]},
    }
