"""Liveness, readiness and metrics: unauthenticated, for orchestrators and scrapers."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from devmesh.api.deps import AppServices
from devmesh.api.errors import problem_response
from devmesh.api.openapi import problems
from devmesh.domain.errors import DevMeshError

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness: the process answers")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness: every dependency answers", responses=problems(503))
async def readyz(request: Request, services: AppServices) -> Response:
    checks: dict[str, str] = {}
    failing: list[str] = []
    for name, ping in services.health_checks().items():
        try:
            await ping()
        except DevMeshError as exc:
            checks[name] = exc.message
            failing.append(name)
        else:
            checks[name] = "ok"
    if failing:
        return problem_response(
            request,
            status=503,
            code="not_ready",
            detail=f"not ready: {', '.join(failing)}",
            extra={"checks": checks},
        )
    return JSONResponse({"status": "ready", "checks": checks})


@router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
async def metrics(services: AppServices) -> Response:
    return Response(
        services.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8"
    )
