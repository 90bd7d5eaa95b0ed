"""The OpenAPI document tells the truth: schemathesis checks the live app against it.

A bounded, derandomized run (a fixed number of examples per operation, the same
ones every time) against the app served by uvicorn on loopback: every answer must
be documented (status, media type, headers, body schema), invalid input must be
refused with a 4xx, every /api/v1 route must refuse a request without a key, and
no answer may be a 5xx other than an upstream failure this test provokes.

Outbound calls stay on loopback. The one tool operations may reach, ``ci``, points
at a loopback port nobody listens on; generated requests may not change or delete
it; tools the run registers (at a generated base URL, or one under ``.invalid``,
which never resolves) are never called, since only ``ci`` is given real operation
names; and the egress policy in ``_settings`` refuses every address but loopback.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
import schemathesis
import uvicorn
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from devmesh.adapters.registry import ProviderRegistry
from devmesh.app import create_app, open_services
from devmesh.config import Settings
from tests.support.backends import free_port

EXAMPLES = 25
"""Per operation and generation mode; about 700 requests in all."""
BUDGET = 60.0
"""Seconds the whole run may take; it stops generating past this."""

# Without not_a_server_error: the upstream failures we provoke are 5xx by design;
# _no_unexplained_5xx below allows exactly those.
CHECKS = [
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
    ignored_auth,
]
# What calling the dead loopback upstream may answer: unreachable, then the breaker.
UPSTREAM_DOWN = {"upstream_unavailable", "upstream_timeout", "circuit_open"}
# Operations that would change or remove `ci`, the one tool allowed to call out.
CHANGES_CI = {("PATCH", "/api/v1/tools/{tool}"), ("DELETE", "/api/v1/tools/{tool}")}


@dataclass(frozen=True)
class Live:
    base_url: str
    api_key: str


def _settings(tmp_path: Path) -> Settings:
    return Settings.model_validate(
        {
            "data_dir": tmp_path / "data",
            "host": "127.0.0.1",
            "rate_limit": {"requests_per_minute": None},
            # Outbound calls may reach loopback only: the egress policy enforces what
            # the hooks below arrange.
            "egress": {
                "allow_networks": ["127.0.0.0/8", "::1/128"],
                "deny_networks": ["0.0.0.0/0", "::/0"],
            },
        }
    )


async def _tenant_key(config: Settings) -> str:
    async with open_services(config) as services:
        _, key = await services.tenants.create_tenant("contract")
    return key


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    config = _settings(tmp_path_factory.mktemp("contract"))
    key = asyncio.run(_tenant_key(config))
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(config), host="127.0.0.1", port=port, log_config=None, lifespan="on"
        )
    )
    # A thread with its own event loop: schemathesis calls with blocking requests.
    thread = threading.Thread(target=server.run, name="contract-server", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
            time.sleep(0.02)
        base_url = f"http://127.0.0.1:{port}"
        ci = {
            "name": "ci",
            "provider": "buildbot",
            "base_url": f"http://127.0.0.1:{free_port()}",
            "resilience": {"max_retries": 0, "deadline": 5, "attempt_timeout": 2},
        }
        created = httpx.post(
            f"{base_url}/api/v1/tools", json=ci, headers={"Authorization": f"Bearer {key}"}
        )
        assert created.status_code == 201, created.text
        yield Live(base_url=base_url, api_key=key)
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def _no_unexplained_5xx(response: schemathesis.Response, method: str, path: str) -> str | None:
    if response.status_code < 500:
        return None
    try:
        code = response.json().get("code")
    except ValueError:
        code = None
    if path.endswith("/operations/{operation}") and code in UPSTREAM_DOWN:
        return None
    return f"{method} {path}: {response.status_code} {response.text[:500]}"


def _ci_operations() -> list[str]:
    provider = ProviderRegistry.from_entry_points().get("buildbot")
    assert provider is not None
    return [operation.name for operation in provider.operations]


def _as_buildbot(case: Any) -> Any:
    # A provider that exists, so registration gets past the provider lookup; a host
    # under .invalid (RFC 6761), which never resolves, in case anything calls it.
    if isinstance(case.body, dict):
        case.body = {**case.body, "provider": "buildbot", "base_url": "http://ci.invalid:8010"}
    return case


def _strategies(operation: Any) -> Iterator[tuple[str, st.SearchStrategy[Any]]]:
    method, path = operation.method.upper(), operation.path
    if (method, path) == ("POST", "/api/v1/tools"):
        yield "positive as buildbot", operation.as_strategy().map(_as_buildbot)
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
        yield mode.value, operation.as_strategy(generation_mode=mode)
        if "{tool}" in path and (method, path) not in CHANGES_CI:
            # Against the registered tool too, so routes get past the lookup.
            if "{operation}" in path:
                yield (
                    f"{mode.value} on ci",
                    st.sampled_from(_ci_operations()).flatmap(
                        lambda name, mode=mode: operation.as_strategy(
                            generation_mode=mode,
                            path_parameters={"tool": "ci", "operation": name},
                        )
                    ),
                )
            else:
                yield (
                    f"{mode.value} on ci",
                    operation.as_strategy(generation_mode=mode, path_parameters={"tool": "ci"}),
                )


def _runner(strategy: st.SearchStrategy[Any], check: Callable[[Any], None]) -> Callable[[], None]:
    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def run(case: Any) -> None:
        check(case)

    return run


def test_every_answer_matches_the_openapi_document(live: Live) -> None:
    schema = schemathesis.openapi.from_url(f"{live.base_url}/openapi.json", timeout=10)
    auth = {"Authorization": f"Bearer {live.api_key}"}
    failures: list[str] = []
    started = time.monotonic()
    with requests.Session() as session:

        def check(case: Any) -> None:
            method, path = case.operation.method.upper(), case.operation.path
            if (method, path) in CHANGES_CI and case.path_parameters.get("tool") == "ci":
                return
            if time.monotonic() - started > BUDGET:
                return
            try:
                response = case.call(
                    base_url=live.base_url, session=session, headers=auth, timeout=10
                )
                if unexplained := _no_unexplained_5xx(response, method, path):
                    failures.append(unexplained)
                    return
                case.validate_response(response, checks=CHECKS, headers=auth)
            except (AssertionError, BaseExceptionGroup) as exc:  # a FailureGroup is a group
                failures.append(f"{method} {path}: {exc}"[:2000])

        for result in schema.get_all_operations():
            operation = result.ok()
            for mode, strategy in _strategies(operation):
                try:
                    _runner(strategy, check)()
                except Unsatisfiable:
                    # Nothing of this operation left to make invalid (no parameters, or
                    # all of them pinned): there is no negative case to send.
                    assert mode.startswith("negative")
    assert time.monotonic() - started < BUDGET + 30
    unique = sorted(set(failures))
    assert not unique, f"{len(unique)} non-conformances:\n" + "\n\n".join(unique[:20])


WEBHOOKS = "/api/v1/webhooks/"


def test_every_api_route_without_a_key_is_a_documented_401(live: Live) -> None:
    schema = schemathesis.openapi.from_url(f"{live.base_url}/openapi.json", timeout=10)
    seen: list[str] = []
    with requests.Session() as session:
        for result in schema.get_all_operations():
            operation = result.ok()
            # A tool's deliveries carry the tool's own proof instead of a key.
            if not operation.path.startswith("/api/v1") or operation.path.startswith(WEBHOOKS):
                continue

            @settings(max_examples=1, derandomize=True, database=None, deadline=None)
            @given(case=operation.as_strategy())
            def run(case: Any) -> None:
                response = case.call(base_url=live.base_url, session=session, timeout=10)
                assert response.status_code == 401, (case.operation.label, response.text)
                assert response.headers.get("www-authenticate") == ["Bearer"]
                case.validate_response(response, checks=CHECKS[:4])
                seen.append(case.operation.label)

            run()
    assert len(set(seen)) >= 12


@pytest.mark.anyio
async def test_the_document_declares_bearer_auth_and_problem_errors(
    client: httpx.AsyncClient,
) -> None:
    document = (await client.get("/openapi.json")).json()
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {**schemes["bearerAuth"], "type": "http", "scheme": "bearer"}
    assert "HTTPValidationError" not in document["components"]["schemas"]
    for path, item in document["paths"].items():
        for method, operation in item.items():
            errors = {s: r for s, r in operation["responses"].items() if int(s) >= 400}
            if path.startswith(WEBHOOKS):
                assert operation["security"] == [], (method, path)
            elif path.startswith("/api/v1"):
                assert operation["security"] == [{"bearerAuth": []}], (method, path)
                assert {"401", "429", "503"} <= errors.keys(), (method, path)
                assert "WWW-Authenticate" in errors["401"]["headers"]
                assert "Retry-After" in errors["429"]["headers"]
            for response in errors.values():
                assert list(response["content"]) == ["application/problem+json"]
