"""The OpenAPI document, made to say what the service answers.

FastAPI's generated document knows the success responses and a 422 in its own
``HTTPValidationError`` shape. Ours differ in three ways, fixed here once for every
route rather than on each: every ``/api/v1`` route needs a Bearer API key (declared
as the ``bearerAuth`` scheme); every error is ``application/problem+json`` in one
``Problem`` shape; and each route lists the error statuses it can answer, with the
``WWW-Authenticate`` and ``Retry-After`` headers where they are sent.

Statuses every ``/api/v1`` route shares come from the rules below; a route adds its
own (a 409, an upstream's 502/504) with ``responses=problems(...)`` where it is
declared, and only the description is needed there.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

__all__ = ["PROBLEM_MEDIA_TYPE", "install_openapi", "problems"]

PROBLEM_MEDIA_TYPE = "application/problem+json"
_API_PREFIX = "/api/v1"
_SCHEME = "bearerAuth"
# Deliveries prove their sender with the tool's own scheme, not an API key.
_PUBLIC_PREFIX = "/api/v1/webhooks/"

_DESCRIPTIONS = {
    400: "The request is malformed.",
    401: "No API key, or one that is wrong or revoked.",
    403: "The API key is read-only and this would change something.",
    404: "No such thing for this tenant.",
    409: "It conflicts with what is stored.",
    413: "The request body is too large.",
    422: "The input is invalid; `errors` (or `details.field`) names where.",
    429: "Too many requests; `Retry-After` says when to try again.",
    502: "The upstream tool failed.",
    503: "A dependency is unavailable (the database, or the upstream tool); retriable.",
    504: "The upstream tool did not answer in time.",
}

_PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "An RFC 9457 problem detail, with Developer Mesh's `code` and `retriable`.",
    "type": "object",
    "required": ["type", "title", "status", "detail", "code", "retriable"],
    "properties": {
        "type": {"type": "string", "description": "urn:devmesh:problem:<code>"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string", "description": "What went wrong, for a person."},
        "instance": {"type": "string", "description": "The request path."},
        "code": {"type": "string", "description": "What went wrong, for a program."},
        "retriable": {"type": "boolean", "description": "Whether trying again may help."},
        "request_id": {"type": "string"},
        "details": {"type": "object", "additionalProperties": True},
        "errors": {
            "type": "array",
            "description": "The first few validation errors.",
            "items": {
                "type": "object",
                "required": ["field", "message"],
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
        "more_errors": {"type": "integer", "description": "Validation errors not listed."},
        "checks": {
            "type": "object",
            "additionalProperties": {"type": "string"},
            "description": "Readiness: each dependency's state.",
        },
    },
    "additionalProperties": True,
}

_RETRY_AFTER = {
    "description": "Seconds to wait before trying again.",
    "schema": {"type": "string"},
}
_HEADERS: dict[int, dict[str, Any]] = {
    401: {
        "WWW-Authenticate": {
            "description": "Always `Bearer`.",
            "required": True,
            "schema": {"type": "string"},
        }
    },
    429: {"Retry-After": _RETRY_AFTER},
    503: {"Retry-After": _RETRY_AFTER},
}


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route's own error statuses; ``install_openapi`` fills in the
    Problem body and headers."""
    return {status: {"description": _DESCRIPTIONS[status]} for status in statuses}


def _common(path: str, method: str, operation: dict[str, Any]) -> set[int]:
    if not path.startswith(_API_PREFIX):
        return set()
    # Authentication, the inbound rate limit and the database stand before every route.
    statuses = {400, 401, 429, 503}
    if method != "get" and not path.startswith(_PUBLIC_PREFIX):
        # A read-only key is refused anything that changes state (api/gate.py).
        statuses.add(403)
    if "{" in path:
        statuses.add(404)
    if operation.get("parameters") or "requestBody" in operation:
        statuses.add(422)
    if "requestBody" in operation:
        statuses.add(413)
    return statuses


def _problem_response(status: int, given: dict[str, Any] | None) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": (given or {}).get("description") or _DESCRIPTIONS.get(status, "Error"),
        "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }
    if status in _HEADERS:
        response["headers"] = _HEADERS[status]
    return response


def document(schema: dict[str, Any]) -> dict[str, Any]:
    """Rewrite FastAPI's document in place: security, Problem bodies, error statuses."""
    components = schema.setdefault("components", {})
    components.setdefault("securitySchemes", {})[_SCHEME] = {
        "type": "http",
        "scheme": "bearer",
        "description": "A tenant's API key: `Authorization: Bearer <api key>`.",
    }
    schemas = components.setdefault("schemas", {})
    schemas["Problem"] = _PROBLEM_SCHEMA
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    for path, item in schema.get("paths", {}).items():
        for method, operation in item.items():
            if path.startswith(_PUBLIC_PREFIX):
                operation["security"] = []
            elif path.startswith(_API_PREFIX):
                operation["security"] = [{_SCHEME: []}]
            responses: dict[str, Any] = operation.setdefault("responses", {})
            statuses = _common(path, method, operation) | {
                int(s) for s in responses if int(s) >= 400
            }
            for status in sorted(statuses):
                responses[str(status)] = _problem_response(status, responses.get(str(status)))
    return schema


def install_openapi(app: FastAPI) -> None:
    """Serve the rewritten document at ``/openapi.json`` (built once, on first use)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document(
                get_openapi(
                    title=app.title,
                    version=app.version,
                    summary=app.summary,
                    description=app.description,
                    routes=app.routes,
                )
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
