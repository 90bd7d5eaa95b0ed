"""Plain domain models shared by every layer. No I/O here."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

__all__ = ["ApiKey", "Tenant"]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True)


class Tenant(_Model):
    id: str
    name: str
    created_at: datetime


class ApiKey(_Model):
    """An API key's public facts. The secret is never kept, only its hash."""

    id: str
    tenant_id: str
    name: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None = None
