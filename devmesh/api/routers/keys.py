"""The caller's API keys: a tenant rotates its own keys without an operator."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel, Field

from devmesh.api.deps import CurrentTenant, Tenants
from devmesh.domain.limits import MAX_KEY_NAME
from devmesh.domain.models import ApiKey

router = APIRouter(prefix="/api/v1/keys", tags=["keys"])


class ApiKeyCreate(BaseModel):
    name: str = Field(min_length=1, max_length=MAX_KEY_NAME, description="A label for the key.")
    read_only: bool = Field(
        default=False,
        description="The key lists and runs only read-only operations and changes nothing.",
    )


class ApiKeyRead(BaseModel):
    id: str
    name: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None
    read_only: bool = False

    @classmethod
    def of(cls, key: ApiKey) -> ApiKeyRead:
        return cls(
            id=key.id,
            name=key.name,
            prefix=key.prefix,
            created_at=key.created_at,
            revoked_at=key.revoked_at,
            read_only=key.read_only,
        )


class ApiKeyCreated(ApiKeyRead):
    api_key: str = Field(description="The key itself. It is shown only in this response.")


@router.get("", response_model=list[ApiKeyRead], summary="List this tenant's keys")
async def list_keys(tenant: CurrentTenant, tenants: Tenants) -> list[ApiKeyRead]:
    return [ApiKeyRead.of(key) for key in await tenants.list_keys(tenant.id)]


@router.post("", status_code=201, response_model=ApiKeyCreated, summary="Create a key")
async def create_key(body: ApiKeyCreate, tenant: CurrentTenant, tenants: Tenants) -> ApiKeyCreated:
    key, plaintext = await tenants.create_key(tenant.id, name=body.name, read_only=body.read_only)
    return ApiKeyCreated(**ApiKeyRead.of(key).model_dump(), api_key=plaintext)


@router.delete("/{key_id}", response_model=ApiKeyRead, summary="Revoke a key")
async def revoke_key(key_id: str, tenant: CurrentTenant, tenants: Tenants) -> ApiKeyRead:
    return ApiKeyRead.of(await tenants.revoke_key(key_id, tenant_id=tenant.id))
