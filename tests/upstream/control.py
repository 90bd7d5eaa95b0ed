"""The control endpoints (``/__faults``, ``/__stats``), never faulted or counted."""

from __future__ import annotations

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.upstream.faults import Fault, Faults

__all__ = ["control_routes"]


def control_routes(faults: Faults) -> list[Route]:
    async def add_fault(request: Request) -> Response:
        try:
            fault = Fault.model_validate_json(await request.body())
        except ValidationError as exc:
            return JSONResponse({"error": str(exc)}, status_code=422)
        faults.add(fault)
        return JSONResponse(fault.model_dump(exclude_none=True), status_code=201)

    async def clear_faults(request: Request) -> Response:
        faults.clear()
        return Response(status_code=204)

    async def read_stats(request: Request) -> Response:
        return JSONResponse(faults.stats())

    async def reset_stats(request: Request) -> Response:
        faults.seen.clear()
        faults.faulted = 0
        faults.authorized = 0
        return Response(status_code=204)

    return [
        Route("/__faults", add_fault, methods=["POST"]),
        Route("/__faults", clear_faults, methods=["DELETE"]),
        Route("/__stats", read_stats, methods=["GET"]),
        Route("/__stats", reset_stats, methods=["DELETE"]),
    ]
