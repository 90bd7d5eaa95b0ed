"""Request helpers for calling the service as a tenant."""

from __future__ import annotations

__all__ = ["bearer"]


def bearer(key: str) -> dict[str, str]:
    """The headers that authenticate a request with the API key ``key``."""
    return {"Authorization": f"Bearer {key}"}
