"""Buildbot client failures a real master will not produce on demand, faked with MockTransport."""

from __future__ import annotations

import email.utils
import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from devmesh.domain.errors import (
    AdapterError,
    UpstreamAuthFailed,
    UpstreamNotFound,
    UpstreamRateLimited,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from devmesh.domain.models import Credentials
from devmesh.providers.buildbot.client import BuildbotClient

pytestmark = pytest.mark.anyio

BASE_URL = "http://buildbot.test:8010"
Handler = Callable[[httpx.Request], httpx.Response]


def client_for(handler: Handler, credentials: Credentials | None = None) -> BuildbotClient:
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return BuildbotClient(base_url=BASE_URL, http=http, credentials=credentials, timeout=5.0)


def answer(status: int, **kwargs: Any) -> Handler:
    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, **kwargs)

    return handle


def raising(exc: Exception) -> Handler:
    def handle(request: httpx.Request) -> httpx.Response:
        raise exc

    return handle


async def test_429_with_retry_after_seconds_is_rate_limited_and_retriable() -> None:
    client = client_for(answer(429, headers={"Retry-After": "7"}))
    with pytest.raises(UpstreamRateLimited) as caught:
        await client.builders()
    assert caught.value.retriable is True
    assert caught.value.retry_after == 7.0
    assert caught.value.details["retry_after"] == 7.0
    assert "retry after 7 s" in caught.value.message


async def test_429_with_an_http_date_waits_until_that_date() -> None:
    when = datetime.now(UTC) + timedelta(seconds=30)
    header = email.utils.format_datetime(when, usegmt=True)
    client = client_for(answer(429, headers={"Retry-After": header}))
    with pytest.raises(UpstreamRateLimited) as caught:
        await client.builders()
    assert caught.value.retry_after is not None
    assert 25 <= caught.value.retry_after <= 31


@pytest.fixture
def far_from_gmt(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("far_from_gmt")
async def test_a_date_with_the_unknown_zone_is_read_as_gmt_not_local_time() -> None:
    # "-0000" parses to a naive datetime; read as local time it would be hours off.
    header = email.utils.formatdate(time.time() + 60)  # "... -0000"
    client = client_for(answer(429, headers={"Retry-After": header}))
    with pytest.raises(UpstreamRateLimited) as caught:
        await client.builders()
    assert caught.value.retry_after is not None
    assert 55 <= caught.value.retry_after <= 61


async def test_an_http_date_in_the_past_means_retry_now() -> None:
    header = email.utils.formatdate(time.time() - 3600, usegmt=True)
    client = client_for(answer(429, headers={"Retry-After": header}))
    with pytest.raises(UpstreamRateLimited) as caught:
        await client.builders()
    assert caught.value.retry_after == 0.0


@pytest.mark.parametrize("header", [None, "soon", "-5", ""])
async def test_429_without_a_usable_retry_after_is_still_retriable(header: str | None) -> None:
    headers = {"Retry-After": header} if header is not None else {}
    client = client_for(answer(429, headers=headers))
    with pytest.raises(UpstreamRateLimited) as caught:
        await client.builders()
    assert caught.value.retriable is True
    assert caught.value.retry_after is None


@pytest.mark.parametrize("status", [502, 503, 504])
async def test_gateway_failures_are_unavailable_and_retriable(status: int) -> None:
    client = client_for(answer(status, text="<html>bad gateway</html>"))
    with pytest.raises(UpstreamUnavailable) as caught:
        await client.builders()
    assert caught.value.retriable is True
    assert caught.value.details["status"] == status
    assert "<html>" not in caught.value.message


async def test_a_503_with_retry_after_carries_it() -> None:
    client = client_for(answer(503, headers={"Retry-After": "120"}))
    with pytest.raises(UpstreamUnavailable) as caught:
        await client.builders()
    assert caught.value.retry_after == 120.0


@pytest.mark.parametrize(
    "exc",
    [httpx.ReadTimeout("slow"), httpx.ConnectTimeout("slow"), httpx.PoolTimeout("busy")],
)
async def test_a_timeout_is_upstream_timeout_and_retriable(exc: Exception) -> None:
    client = client_for(raising(exc))
    with pytest.raises(UpstreamTimeout) as caught:
        await client.build(42)
    assert caught.value.retriable is True
    assert "read build 42" in caught.value.message


async def test_a_200_that_is_not_json_is_an_adapter_error_naming_base_url() -> None:
    client = client_for(answer(200, text="<html>a login page</html>"))
    with pytest.raises(AdapterError) as caught:
        await client.builders()
    assert type(caught.value) is AdapterError
    assert "other than its REST API's JSON" in caught.value.message
    assert "base_url" in caught.value.message
    assert "<html>" not in caught.value.message


async def test_json_of_the_wrong_shape_is_an_adapter_error() -> None:
    client = client_for(answer(200, json={"builders": "none"}))
    with pytest.raises(AdapterError, match="other than its REST API's JSON"):
        await client.builders()


@pytest.mark.parametrize("status", [401, 403])
async def test_a_refusal_without_credentials_is_auth_failed_and_says_what_to_store(
    status: int,
) -> None:
    client = client_for(answer(status, json={"error": "you need to have role 'admins'"}))
    with pytest.raises(UpstreamAuthFailed) as caught:
        await client.builders()
    assert caught.value.retriable is False
    assert "store basic credentials" in caught.value.message
    # A refusal's body is where a proxy echoes the credentials it refused: none of it shows.
    assert "role 'admins'" not in caught.value.message


async def test_a_refused_token_is_auth_failed_and_the_token_is_not_shown() -> None:
    token = "secret-token-for-tests"
    client = client_for(answer(403), Credentials(type="bearer", token=token))
    with pytest.raises(UpstreamAuthFailed) as caught:
        await client.builders()
    assert token not in caught.value.message
    assert "username and password" in caught.value.message


async def test_404_is_not_found_without_buildbots_routing_table() -> None:
    body = {"error": "not found while getting from endpoint for /builds/n:buildid ..."}
    client = client_for(answer(404, json=body))
    with pytest.raises(UpstreamNotFound) as caught:
        await client.build(7)
    assert "read build 7" in caught.value.message
    assert "endpoint" not in caught.value.message


async def test_an_error_body_is_read_only_as_far_as_its_start() -> None:
    sent = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal sent
        while True:
            sent += 1
            yield b"x" * 16_384

    client = client_for(lambda request: httpx.Response(500, content=endless()))
    with pytest.raises(AdapterError, match="HTTP 500"):
        await client.builders()
    assert sent <= 5


async def test_a_raw_read_stops_once_it_has_the_window() -> None:
    sent = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal sent
        while True:
            sent += 1
            yield bytes(range(100)) * 10  # 1,000 bytes a piece

    client = client_for(lambda request: httpx.Response(200, content=endless()))
    read = await client.read_raw("/logs/1/raw", offset=2_500, limit=1_000, what="read log 1")
    assert read.data == (bytes(range(100)) * 20)[500:1_500]
    assert (read.more, read.size) == (True, None)
    assert sent <= 4


async def test_a_raw_read_to_the_end_knows_the_size() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, content=b"0123456789", headers={"Content-Type": "text/plain; charset=utf-8"}
        )

    read = await client_for(handle).read_raw("/logs/1/raw", offset=4, limit=100, what="read")
    assert (read.data, read.more, read.size, read.content_type) == (
        b"456789",
        False,
        10,
        "text/plain",
    )


async def test_a_raw_read_of_exactly_the_rest_says_nothing_more_follows() -> None:
    client = client_for(answer(200, content=b"0123456789"))
    read = await client.read_raw("/logs/1/raw", offset=0, limit=10, what="read")
    assert (read.data, read.more, read.size) == (b"0123456789", False, 10)


async def test_a_session_refused_later_logs_in_again_once() -> None:
    logins = 0
    calls = 0

    def handle(request: httpx.Request) -> httpx.Response:
        nonlocal logins, calls
        if request.url.path == "/auth/login":
            logins += 1
            return httpx.Response(200, headers={"Set-Cookie": f"TWISTED_SESSION=s{logins}; Path=/"})
        calls += 1
        if request.headers.get("cookie") == "TWISTED_SESSION=s1" and calls > 1:
            return httpx.Response(403, json={"error": "expired"})
        return httpx.Response(200, json={"builders": []})

    client = client_for(handle, Credentials(type="basic", username="u", password="p"))
    assert await client.builders() == []
    assert await client.builders() == []
    assert logins == 2
