"""The upstream's ASGI app: control routes first, then the faulted proxy or canned routes."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.types import ASGIApp

from tests.upstream.canned import canned_routes
from tests.upstream.control import control_routes
from tests.upstream.faults import FaultLayer, Faults
from tests.upstream.proxy import Proxy

__all__ = ["create_app"]


def create_app(*, target: str | None = None, keep_host: bool = False) -> Starlette:
    """The upstream: control routes first, then the faulted proxy or canned routes."""
    faults = Faults()
    proxy = Proxy(target, keep_host=keep_host) if target else None
    served: ASGIApp = proxy if proxy is not None else Starlette(routes=canned_routes())

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with proxy.open() if proxy is not None else contextlib.nullcontext():
            yield

    routes = [*control_routes(faults), Mount("", app=FaultLayer(served, faults))]
    return Starlette(routes=routes, lifespan=lifespan)
