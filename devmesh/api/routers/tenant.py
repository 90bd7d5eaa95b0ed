"""The caller's own tenant."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel

from devmesh.api.deps import CurrentTenant

router = APIRouter(prefix="/api/v1", tags=["tenant"])


class TenantRead(BaseModel):
    id: str
    name: str
    created_at: datetime


@router.get("/tenant", response_model=TenantRead, summary="The tenant of the presented API key")
async def get_tenant(tenant: CurrentTenant) -> TenantRead:
    return TenantRead(id=tenant.id, name=tenant.name, created_at=tenant.created_at)
