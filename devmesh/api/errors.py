"""Errors mapped once: every ``DevMeshError`` becomes an RFC 9457 problem+json body.

Routers never catch domain errors; they raise through to the handlers here.
"""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from devmesh.domain import errors as e
from devmesh.domain.limits import MAX_VALIDATION_ERRORS, shorten

__all__ = [
    "install_error_handlers",
    "problem_body",
    "problem_headers",
    "problem_response",
    "status_for",
]

_log = structlog.get_logger(__name__)

# Most specific first is not needed: the lookup walks each error's MRO.
_STATUS: dict[type[e.DevMeshError], int] = {
    e.DevMeshError: 400,
    e.NotFound: 404,
    e.Conflict: 409,
    e.InvalidInput: 422,
    e.Unauthorized: 401,
    e.Forbidden: 403,
    e.RateLimited: 429,
    e.Unavailable: 503,
    e.AdapterError: 502,
    e.UpstreamNotFound: 404,
    e.UpstreamInvalidArgument: 422,
    e.UpstreamAuthFailed: 502,
    e.UpstreamRateLimited: 429,
    e.UpstreamTimeout: 504,
    e.UpstreamUnavailable: 503,
}

_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    409: "Conflict",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def status_for(error: e.DevMeshError) -> int:
    for cls in type(error).__mro__:
        if cls in _STATUS:
            return _STATUS[cls]
    return 500


def problem_headers(error: e.DevMeshError, status: int) -> dict[str, str]:
    """The headers that go with an error's problem body, whichever layer answers it."""
    headers: dict[str, str] = {}
    if status == 401:
        headers["www-authenticate"] = "Bearer"
    retry_after = error.details.get("retry_after")
    if isinstance(retry_after, int | float):
        headers["retry-after"] = str(max(1, round(retry_after)))
    return headers


def problem_body(
    *,
    status: int,
    code: str,
    detail: str,
    instance: str,
    retriable: bool = False,
    request_id: str | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The RFC 9457 body every error answer has, from a handler or from the ingress gate."""
    body: dict[str, Any] = {
        "type": f"urn:devmesh:problem:{code}",
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "instance": instance,
        "code": code,
        "retriable": retriable,
    }
    if request_id:
        body["request_id"] = request_id
    if extra:
        body.update(extra)
    return body


def problem_response(
    request: Request,
    *,
    status: int,
    code: str,
    detail: str,
    retriable: bool = False,
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = problem_body(
        status=status,
        code=code,
        detail=detail,
        instance=request.url.path,
        retriable=retriable,
        request_id=getattr(request.state, "request_id", None),
        extra=extra,
    )
    return JSONResponse(
        body, status_code=status, media_type="application/problem+json", headers=headers
    )


async def _devmesh_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, e.DevMeshError)
    status = status_for(exc)
    headers = problem_headers(exc, status)
    extra: dict[str, Any] = {"details": exc.details} if exc.details else {}
    return problem_response(
        request,
        status=status,
        code=exc.code,
        detail=exc.message,
        retriable=exc.retriable,
        extra=extra,
        headers=headers,
    )


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    # ("body", "config", "base_url") → "config.base_url"; the location kind stays
    # only for query/path/header parameters, where it tells the caller where to look.
    parts = [shorten(str(p)) for p in loc]
    if parts and parts[0] == "body":
        parts = parts[1:]
    return ".".join(parts) or "body"


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    # The first few errors only: a body of 100,000 unknown keys must not get an
    # answer of 100,000 errors.
    found = exc.errors()
    errors = [
        {"field": _field(err.get("loc", ())), "message": err.get("msg", "invalid")}
        for err in found[:MAX_VALIDATION_ERRORS]
    ]
    summary = "; ".join(f"{err['field']}: {err['message']}" for err in errors)
    extra: dict[str, Any] = {"errors": errors}
    if len(found) > len(errors):
        extra["more_errors"] = len(found) - len(errors)
        summary += f"; and {len(found) - len(errors)} more"
    return problem_response(
        request,
        status=422,
        code="invalid_input",
        detail=f"invalid request: {summary}",
        extra=extra,
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return problem_response(
        request,
        status=exc.status_code,
        code=code,
        detail=str(exc.detail),
        headers=dict(exc.headers or {}),
    )


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    # The caller sees only a request id; the log keeps the traceback.
    _log.exception("unhandled_error", path=request.url.path)
    return problem_response(
        request, status=500, code="internal", detail="internal error; see the server log"
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(e.DevMeshError, _devmesh_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
