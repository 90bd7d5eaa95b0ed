"""What every HTTP caller relies on: health, auth, problem+json, tenant isolation."""

from pathlib import Path

import httpx
import pytest

from devmesh.app import Services, create_app
from devmesh.config import Settings
from tests.support.http import bearer

pytestmark = pytest.mark.anyio


async def test_liveness_answers_without_auth(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readiness_reports_each_check(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"]["database"] == "ok"


async def test_api_without_a_key_is_401_problem_json(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/tenant")
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"] == "Bearer"
    body = response.json()
    assert body["status"] == 401
    assert body["code"] == "unauthorized"
    assert body["instance"] == "/api/v1/tenant"


@pytest.mark.parametrize(
    "header",
    ["Bearer nonsense", "Basic dXNlcjpwYXNz", "Bearer dmk_0123456789abcdef_wrongsecret", "Bearer "],
)
async def test_api_with_a_wrong_key_is_401(client: httpx.AsyncClient, header: str) -> None:
    response = await client.get("/api/v1/tenant", headers={"Authorization": header})
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"


async def test_each_key_sees_only_its_own_tenant(
    client: httpx.AsyncClient, services: Services
) -> None:
    acme, acme_key = await services.tenants.create_tenant("acme")
    globex, globex_key = await services.tenants.create_tenant("globex")
    seen_by_acme = (await client.get("/api/v1/tenant", headers=bearer(acme_key))).json()
    seen_by_globex = (await client.get("/api/v1/tenant", headers=bearer(globex_key))).json()
    assert (seen_by_acme["id"], seen_by_acme["name"]) == (acme.id, "acme")
    assert (seen_by_globex["id"], seen_by_globex["name"]) == (globex.id, "globex")


async def test_a_revoked_key_is_401(client: httpx.AsyncClient, services: Services) -> None:
    _, key = await services.tenants.create_tenant("acme")
    [stored] = await services.tenants.list_keys("acme")
    await services.tenants.revoke_key(stored.id)
    response = await client.get("/api/v1/tenant", headers=bearer(key))
    assert response.status_code == 401
    assert "revoked" in response.json()["detail"]


async def test_a_tenant_rotates_its_own_keys(client: httpx.AsyncClient, services: Services) -> None:
    _, old_key = await services.tenants.create_tenant("acme")
    created = await client.post("/api/v1/keys", json={"name": "ci"}, headers=bearer(old_key))
    assert created.status_code == 201
    new_key = created.json()["api_key"]
    [old] = [
        k
        for k in (await client.get("/api/v1/keys", headers=bearer(new_key))).json()
        if k["name"] == "default"
    ]
    revoked = await client.delete(f"/api/v1/keys/{old['id']}", headers=bearer(new_key))
    assert revoked.status_code == 200
    assert (await client.get("/api/v1/tenant", headers=bearer(old_key))).status_code == 401
    assert (await client.get("/api/v1/tenant", headers=bearer(new_key))).status_code == 200


async def test_key_listings_never_show_secrets(
    client: httpx.AsyncClient, services: Services
) -> None:
    _, key = await services.tenants.create_tenant("acme")
    listing = await client.get("/api/v1/keys", headers=bearer(key))
    # dmk_<prefix>_<secret>; the secret itself may contain "_".
    secret = key.split("_", 2)[2]
    assert secret not in listing.text
    assert "api_key" not in listing.json()[0]


async def test_a_tenant_cannot_revoke_another_tenants_key(
    client: httpx.AsyncClient, services: Services
) -> None:
    _, acme_key = await services.tenants.create_tenant("acme")
    _, globex_key = await services.tenants.create_tenant("globex")
    [globex_stored] = await services.tenants.list_keys("globex")
    response = await client.delete(f"/api/v1/keys/{globex_stored.id}", headers=bearer(acme_key))
    assert response.status_code == 404
    assert (await client.get("/api/v1/tenant", headers=bearer(globex_key))).status_code == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [({}, "name"), ({"name": ""}, "name"), ({"name": 7}, "name"), (["x"], "body")],
)
async def test_invalid_bodies_are_422_naming_the_field(
    client: httpx.AsyncClient, services: Services, body: object, field: str
) -> None:
    _, key = await services.tenants.create_tenant("acme")
    response = await client.post("/api/v1/keys", json=body, headers=bearer(key))
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["errors"][0]["field"] == field
    assert field in problem["detail"]


async def test_malformed_json_is_422_not_500(client: httpx.AsyncClient, services: Services) -> None:
    _, key = await services.tenants.create_tenant("acme")
    response = await client.post(
        "/api/v1/keys",
        content=b"{not json",
        headers={**bearer(key), "Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


async def test_unknown_routes_are_404_problem_json(
    client: httpx.AsyncClient, services: Services
) -> None:
    _, key = await services.tenants.create_tenant("acme")
    response = await client.get("/api/v1/nothing-here", headers=bearer(key))
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


async def test_wrong_methods_are_405_problem_json(client: httpx.AsyncClient) -> None:
    response = await client.put("/healthz")
    assert response.status_code == 405
    assert response.headers["content-type"] == "application/problem+json"


async def test_every_response_carries_a_request_id(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert response.headers["x-request-id"] == "abc-123"
    generated = await client.get("/healthz", headers={"X-Request-ID": "bad id\twith junk"})
    assert generated.headers["x-request-id"] != "bad id\twith junk"


async def test_metrics_count_requests_by_route_template(client: httpx.AsyncClient) -> None:
    await client.delete("/api/v1/keys/some-id-123")
    text = (await client.get("/metrics")).text
    labels = 'method="DELETE",route="/api/v1/keys/{key_id}",status="401"'
    assert f"devmesh_http_requests_total{{{labels}}} 1.0" in text
    assert "some-id-123" not in text


async def test_openapi_describes_the_api(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    assert "/api/v1/tenant" in spec["paths"]


async def test_readiness_is_503_naming_the_database_when_the_schema_is_behind(
    tmp_path: Path,
) -> None:
    settings = Settings.model_validate({"data_dir": tmp_path, "auto_migrate": False})
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            response = await http.get("/readyz")
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert "devmesh db upgrade" in response.json()["checks"]["database"]


@pytest.mark.integration
async def test_readiness_checks_redis_when_it_is_configured(
    settings: Settings, redis_url: str
) -> None:
    app = create_app(settings.model_copy(update={"redis_url": redis_url}))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            response = await http.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "redis": "ok"}
