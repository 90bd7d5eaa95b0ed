"""The kit's UpstreamHttp: statuses and failures mapped to typed errors, JSON, bounded
reads, redirects and cookies by policy. HTTP faked with MockTransport."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any

import httpx
import pytest

from devmesh.adapters.credentials import header_token
from devmesh.adapters.http import HttpPolicy, UpstreamHttp
from devmesh.adapters.upstream import Redactor
from devmesh.domain.errors import (
    AdapterError,
    UpstreamAuthFailed,
    UpstreamInvalidArgument,
    UpstreamNotFound,
    UpstreamRateLimited,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from devmesh.domain.models import Credentials

pytestmark = pytest.mark.anyio

TOKEN = "glpat-secret-for-tests"
Handler = Callable[[httpx.Request], httpx.Response]


def upstream(
    handler: Handler, *, policy: HttpPolicy | None = None, token: bool = False
) -> UpstreamHttp:
    credentials = Credentials(type="private_token", token=TOKEN) if token else None
    kind = header_token("private_token", "PRIVATE-TOKEN")
    return UpstreamHttp(
        name="gitlab",
        base_url="https://gitlab.test/api/v4",
        # As the shared clients are: a jar that keeps nothing (devmesh.adapters.clients).
        http=httpx.AsyncClient(
            transport=httpx.MockTransport(handler),
            cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
        ),
        redactor=Redactor.of(credentials),
        auth=kind.apply(credentials) if credentials and kind.apply else None,
        policy=policy,
    )


def answer(status: int, **kwargs: Any) -> Handler:
    return lambda request: httpx.Response(status, **kwargs)


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (404, UpstreamNotFound),
        (401, UpstreamAuthFailed),
        (403, UpstreamAuthFailed),
        (400, UpstreamInvalidArgument),
        (409, UpstreamInvalidArgument),
        (422, UpstreamInvalidArgument),
        (408, UpstreamTimeout),
        (429, UpstreamRateLimited),
        (502, UpstreamUnavailable),
        (503, UpstreamUnavailable),
        (504, UpstreamUnavailable),
    ],
)
async def test_each_error_status_becomes_its_typed_error_naming_the_action(
    status: int, error: type[AdapterError]
) -> None:
    with pytest.raises(error) as caught:
        await upstream(answer(status, json={"message": "no"})).get_json("/x", what="read job 5")
    assert type(caught.value) is error
    assert "read job 5" in caught.value.message
    assert caught.value.details["status"] == status


async def test_a_500_is_a_plain_adapter_error_with_the_upstreams_words() -> None:
    with pytest.raises(AdapterError) as caught:
        await upstream(answer(500, json={"message": "db down"})).get_json("/x", what="read")
    assert type(caught.value) is AdapterError
    assert "HTTP 500: db down" in caught.value.message


async def test_a_refusal_shows_none_of_the_body_and_never_the_token() -> None:
    handler = answer(401, json={"message": f"token {TOKEN} refused"})
    with pytest.raises(UpstreamAuthFailed) as caught:
        await upstream(handler, token=True).get_json("/x", what="read")
    assert TOKEN not in str(caught.value)
    assert "refused" not in caught.value.message.partition("(")[2].partition(")")[0][8:]


async def test_a_rate_limit_reset_header_says_when_to_come_back() -> None:
    handler = answer(429, headers={"RateLimit-Reset": "42"})
    with pytest.raises(UpstreamRateLimited) as caught:
        await upstream(handler).get_json("/x", what="read")
    assert caught.value.retry_after == 42.0


async def test_a_403_with_no_requests_remaining_is_a_rate_limit_not_a_refusal() -> None:
    handler = answer(403, headers={"X-RateLimit-Remaining": "0", "Retry-After": "9"})
    with pytest.raises(UpstreamRateLimited) as caught:
        await upstream(handler).get_json("/x", what="read")
    assert caught.value.retry_after == 9.0


async def test_a_403_with_retry_after_is_a_secondary_rate_limit_not_a_refusal() -> None:
    # GitHub's secondary rate limits: requests remain, but not this many at once.
    handler = answer(403, headers={"X-RateLimit-Remaining": "4000", "Retry-After": "30"})
    with pytest.raises(UpstreamRateLimited) as caught:
        await upstream(handler).get_json("/x", what="read")
    assert caught.value.retry_after == 30.0


async def test_a_success_that_is_not_json_is_an_adapter_error_without_the_body() -> None:
    with pytest.raises(AdapterError) as caught:
        await upstream(answer(200, text="<html>login</html>")).get_json("/x", what="read")
    assert "other than its REST API's JSON" in caught.value.message
    assert "<html>" not in caught.value.message


async def test_a_connection_failure_is_unavailable_and_names_the_address_only() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    with pytest.raises(UpstreamUnavailable) as caught:
        await upstream(refuse).get_json("/x", what="read")
    assert "https://gitlab.test" in caught.value.message
    assert "/api/v4" not in caught.value.message


async def test_the_token_goes_in_the_providers_header() -> None:
    seen: list[str | None] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("private-token"))
        return httpx.Response(200, json=[])

    await upstream(handle, token=True).get_json("/projects", what="list projects")
    assert seen == [TOKEN]


async def test_a_window_read_stops_once_it_has_the_bytes() -> None:
    sent = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal sent
        while True:
            sent += 1
            yield b"x" * 1_000

    client = upstream(lambda request: httpx.Response(200, content=endless()))
    window = await client.read_window("/trace", offset=1_500, limit=1_000, what="read")
    assert (len(window.data), window.more, window.size) == (1_000, True, None)
    assert sent <= 4


async def test_a_redirect_is_an_error_naming_its_target_unless_the_policy_follows() -> None:
    handler = answer(302, headers={"Location": "https://login.test/sso?next=x"})
    with pytest.raises(AdapterError, match=r"redirected .* to https://login.test;"):
        await upstream(handler).get_json("/x", what="read")


def redirecting(to: str, seen: list[tuple[str, str | None]]) -> Handler:
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append((str(request.url), request.headers.get("private-token")))
        if request.url.path == "/api/v4/x":
            return httpx.Response(301, headers={"Location": to})
        return httpx.Response(200, json={"ok": True})

    return handle


async def test_a_followed_redirect_keeps_the_token_on_the_tools_origin() -> None:
    seen: list[tuple[str, str | None]] = []
    policy = HttpPolicy(follow_redirects=True)
    client = upstream(redirecting("/api/v4/y", seen), policy=policy, token=True)
    assert await client.get_json("/x", what="read") == {"ok": True}
    assert seen[1] == ("https://gitlab.test/api/v4/y", TOKEN)


async def test_a_followed_redirect_to_another_origin_carries_no_credentials() -> None:
    seen: list[tuple[str, str | None]] = []
    policy = HttpPolicy(follow_redirects=True)
    client = upstream(redirecting("https://elsewhere.test/y", seen), policy=policy, token=True)
    assert await client.get_json("/x", what="read") == {"ok": True}
    assert seen[1] == ("https://elsewhere.test/y", None)


async def test_redirects_are_followed_only_so_far() -> None:
    policy = HttpPolicy(follow_redirects=True, max_redirects=2)
    handler = answer(302, headers={"Location": "/api/v4/x"})
    with pytest.raises(AdapterError, match="redirected"):
        await upstream(handler, policy=policy).get_json("/x", what="read")


def cookie_server(seen: list[str | None]) -> Handler:
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("cookie"))
        return httpx.Response(200, json={}, headers={"Set-Cookie": "sid=abc123; Path=/"})

    return handle


async def test_cookies_are_kept_per_instance_only_when_the_policy_says() -> None:
    kept: list[str | None] = []
    client = upstream(cookie_server(kept), policy=HttpPolicy(cookies=True))
    await client.get_json("/a", what="read")
    await client.get_json("/b", what="read")
    assert kept == [None, "sid=abc123"]
    assert client.redactor.redact("sid=abc123") == "sid=[redacted]"

    dropped: list[str | None] = []
    client = upstream(cookie_server(dropped))
    await client.get_json("/a", what="read")
    await client.get_json("/b", what="read")
    assert dropped == [None, None]


@pytest.mark.parametrize(
    "params",
    [
        {"property": ["branch", "revision"]},
        {"a": None, "b": 1, "c": True, "d": "x y/z&é"},
        {"empty": []},
    ],
)
async def test_query_parameters_reach_the_upstream_as_httpx_would_encode_them(
    params: dict[str, Any],
) -> None:
    seen: list[httpx.URL] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url)
        return httpx.Response(200, json={})

    await upstream(handler).get_json("/builds/1", what="read build 1", params=params)

    expected = httpx.Request("GET", "https://gitlab.test/api/v4/builds/1", params=params).url
    assert seen == [expected]
    assert seen[0].raw_path == expected.raw_path


async def test_query_parameters_with_a_url_that_has_a_query_are_as_httpx_makes_them() -> None:
    seen: list[httpx.URL] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url)
        return httpx.Response(200, json={})

    given = httpx.URL("https://gitlab.test/api/v4/builds?page=2")
    await upstream(handler).send_json("GET", given, what="list builds", params={"per_page": 50})

    assert seen == [httpx.Request("GET", given, params={"per_page": 50}).url]
