"""The kit's small pieces: pagination, caches, status roll-up, credentials, rate-limit
reset headers, fan-out, the client pool."""

from __future__ import annotations

import asyncio
import ssl
import time

import httpx
import pytest

from devmesh.adapters import rollup
from devmesh.adapters.caching import Refreshing
from devmesh.adapters.clients import HttpClients
from devmesh.adapters.concurrency import gather_bounded
from devmesh.adapters.credentials import CredentialScheme, basic, bearer, header_token
from devmesh.adapters.egress import EgressPolicy
from devmesh.adapters.pagination import Page, collect, next_link, next_page_number
from devmesh.adapters.upstream import MAX_RETRY_AFTER_S, rate_limit_wait
from devmesh.domain.models import BuildStatus, Credentials

pytestmark = pytest.mark.anyio

Q, R, S, F, C = (
    BuildStatus.QUEUED,
    BuildStatus.RUNNING,
    BuildStatus.SUCCEEDED,
    BuildStatus.FAILED,
    BuildStatus.CANCELLED,
)


def response(status: int = 200, **headers: str) -> httpx.Response:
    request = httpx.Request("GET", "https://api.test/v1/items?page=1")
    return httpx.Response(status, headers=headers, request=request)


# --- pagination ---------------------------------------------------------------------------


def test_the_next_link_is_read_from_a_link_header_and_made_absolute() -> None:
    header = '</v1/items?page=3>; rel="last", </v1/items?page=2>; rel="next"'
    assert next_link(response(link=header)) == "https://api.test/v1/items?page=2"


def test_a_link_header_without_next_means_the_last_page() -> None:
    assert next_link(response(link='<https://api.test/v1/items?page=1>; rel="first"')) is None
    assert next_link(response()) is None


def test_x_next_page_decides_the_next_page_number_when_sent() -> None:
    assert next_page_number(response(**{"X-Next-Page": "3"}), page=2, per_page=20, count=20) == 3
    assert next_page_number(response(**{"X-Next-Page": ""}), page=2, per_page=20, count=20) is None


def test_without_x_next_page_a_full_page_may_have_more() -> None:
    assert next_page_number(response(), page=1, per_page=20, count=20) == 2
    assert next_page_number(response(), page=1, per_page=20, count=7) is None


async def test_collect_stops_at_the_limit() -> None:
    fetched: list[int | None] = []

    async def fetch(token: int | None) -> Page[int, int]:
        fetched.append(token)
        start = token or 0
        return Page(items=list(range(start, start + 10)), next=start + 10)

    assert await collect(fetch, limit=25) == list(range(25))
    assert fetched == [None, 10, 20]


async def test_collect_stops_after_max_pages_of_an_upstream_that_always_says_next() -> None:
    async def fetch(token: str | None) -> Page[str, str]:
        return Page(items=["x"], next="again")

    assert len(await collect(fetch, limit=1_000, max_pages=5)) == 5


# --- caches ----------------------------------------------------------------------------


async def test_a_refreshing_value_is_loaded_once_while_fresh() -> None:
    loads = 0

    async def load() -> list[str]:
        nonlocal loads
        loads += 1
        return ["a"]

    now = [0.0]
    cache = Refreshing(load, empty=[], ttl=300, miss_age=5, clock=lambda: now[0])
    assert await cache.get() == ["a"]
    now[0] = 299
    await cache.get()
    assert loads == 1
    now[0] = 300
    await cache.get()
    assert loads == 2


async def test_a_miss_reloads_a_stale_enough_value_once_and_not_per_miss() -> None:
    catalog = [["a"], ["a", "b"]]
    loads = 0

    async def load() -> list[str]:
        nonlocal loads
        loads += 1
        return catalog[min(loads - 1, 1)]

    now = [0.0]
    cache = Refreshing(load, empty=[], ttl=300, miss_age=5, clock=lambda: now[0])
    await cache.get()
    now[0] = 10
    assert await cache.find(lambda names: "b" if "b" in names else None) == "b"
    assert loads == 2
    assert await cache.find(lambda names: "z" if "z" in names else None) is None
    assert loads == 2


# --- roll-up ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        ([], None),
        ([Q, Q], Q),
        ([Q, R], R),
        ([Q, S], R),
        ([S, S], S),
        ([S, C], C),
        ([C, F, S], F),
    ],
)
def test_a_runs_status_rolls_up_from_its_builds(
    statuses: list[BuildStatus], expected: BuildStatus | None
) -> None:
    assert rollup.roll_up(statuses) == expected


def test_the_summary_counts_builds_per_status() -> None:
    assert rollup.summary([S, R, S]) == "3 builds: 1 running, 2 succeeded"
    assert rollup.summary([]) == "0 builds: none"


# --- credentials -----------------------------------------------------------------------


def applied(scheme: CredentialScheme, credentials: Credentials) -> httpx.Headers:
    auth = scheme.auth(credentials)
    assert auth is not None
    request = httpx.Request("GET", "https://ci.test/")
    return next(auth.sync_auth_flow(request)).headers


SCHEME = CredentialScheme(
    types=(header_token("private_token", "PRIVATE-TOKEN"), bearer("oauth"), basic()),
    passthrough="private_token",
)


def test_each_credential_type_is_applied_its_own_way() -> None:
    assert applied(SCHEME, Credentials(type="private_token", token="t1"))["private-token"] == "t1"
    assert applied(SCHEME, Credentials(type="oauth", token="t2"))["authorization"] == "Bearer t2"
    headers = applied(SCHEME, Credentials(type="basic", username="u", password="p"))
    assert headers["authorization"] == "Basic dTpw"


def test_a_callers_own_token_becomes_the_providers_passthrough_type() -> None:
    passed = SCHEME.passthrough_credentials("mine")
    assert passed is not None
    assert applied(SCHEME, passed)["private-token"] == "mine"


def test_credentials_of_a_type_the_provider_lacks_are_named_as_the_problem() -> None:
    assert SCHEME.problem(Credentials(type="api_key", api_key="k")) == (
        "type",
        "type must be one of: private_token, oauth, basic",
    )


def test_credentials_missing_a_field_their_type_needs_name_it() -> None:
    assert SCHEME.problem(Credentials(type="basic", password="p")) == (
        "username",
        "type 'basic' needs username",
    )


def test_a_passthrough_must_be_a_token_type() -> None:
    with pytest.raises(ValueError, match="passthrough 'basic'"):
        CredentialScheme(types=(basic(),), passthrough="basic")


# --- rate-limit reset headers -------------------------------------------------------------


def test_retry_after_wins_over_a_reset_header() -> None:
    assert rate_limit_wait(response(**{"Retry-After": "3", "RateLimit-Reset": "50"})) == 3.0


def test_a_reset_header_in_unix_time_is_read_as_a_wait() -> None:
    wait = rate_limit_wait(response(**{"X-RateLimit-Reset": str(int(time.time()) + 60)}))
    assert wait is not None
    assert 55 <= wait <= 61


def test_a_reset_far_away_is_clamped() -> None:
    assert rate_limit_wait(response(**{"RateLimit-Reset": "86400"})) == MAX_RETRY_AFTER_S


# --- fan-out and clients ----------------------------------------------------------------


async def test_gather_bounded_keeps_order_and_the_limit() -> None:
    running = peak = 0

    async def one(n: int) -> int:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0)
        running -= 1
        return n

    assert await gather_bounded((one(n) for n in range(20)), limit=3) == list(range(20))
    assert peak <= 3


async def test_a_client_that_skips_tls_checks_is_a_client_of_its_own() -> None:
    clients = HttpClients(EgressPolicy())
    try:
        checked, unchecked = clients.client(verify_tls=True), clients.client(verify_tls=False)
        assert checked is clients.client(verify_tls=True)
        assert checked is not unchecked
        contexts = [
            client._transport.ssl_context  # type: ignore[attr-defined]
            for client in (checked, unchecked)
        ]
        assert [c.verify_mode for c in contexts] == [ssl.CERT_REQUIRED, ssl.CERT_NONE]
    finally:
        await clients.aclose()
