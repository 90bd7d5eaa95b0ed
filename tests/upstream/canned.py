"""Canned mode: the Buildbot REST reads the Buildbot provider makes, answered from data."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

__all__ = ["BUILDERS", "BUILDS", "BUILD_REQUESTS", "canned_routes", "openapi"]

# --- canned mode -----------------------------------------------------------------------
# Shapes copied from a Buildbot 4.3.0 master (tests/support/buildbot/master.cfg) after
# one successful build: the fields it sends, their types, and the property pairs.

_T0 = 1795534205
_SOURCE = ["", "Build"]

BUILDERS: list[dict[str, Any]] = [
    {
        "builderid": builderid,
        "description": None,
        "description_format": None,
        "description_html": None,
        "masterids": [1],
        "name": name,
        "projectid": None,
        "tags": [],
    }
    for builderid, name in ((1, "lint"), (2, "runtests"))
]


def _canned_build(buildid: int, builderid: int, number: int, results: int) -> dict[str, Any]:
    started = _T0 + 60 * buildid
    return {
        "builderid": builderid,
        "buildid": buildid,
        "buildrequestid": buildid,
        "complete": True,
        "complete_at": started + 1,
        "locks_duration_s": 0,
        "masterid": 1,
        "number": number,
        "properties": {"branch": _SOURCE, "revision": _SOURCE},
        "results": results,
        "started_at": started,
        "state_string": "build successful" if results == 0 else "failed 'bash -c ...' (failure)",
        "workerid": 1,
    }


BUILDS: list[dict[str, Any]] = [
    _canned_build(1, 2, 1, 0),
    _canned_build(2, 1, 1, 0),
    _canned_build(3, 2, 2, 2),
    _canned_build(4, 2, 3, 0),
]

BUILD_REQUESTS: list[dict[str, Any]] = [
    {
        "builderid": build["builderid"],
        "buildrequestid": build["buildrequestid"],
        "buildsetid": build["buildrequestid"],
        "claimed": True,
        "claimed_at": build["started_at"],
        "claimed_by_masterid": 1,
        "complete": True,
        "complete_at": build["complete_at"],
        "priority": 0,
        "properties": None,
        "results": build["results"],
        "submitted_at": build["started_at"],
        "waited_for": False,
    }
    for build in BUILDS
]


def _buildbot_json(
    request: Request, plural: str, items: list[Any], meta: dict[str, Any]
) -> Response:
    """Encoded as Buildbot's REST does: compact JSON only for a client that asks for it."""
    encoder = json.JSONEncoder(sort_keys=True)
    if "application/json" in request.headers.get("accept", ""):
        encoder.item_separator, encoder.key_separator = ",", ":"
        media = "application/json; charset=utf-8"
    else:
        encoder.indent = 2  # set after construction, like Buildbot: items keep ", "
        media = "text/plain; charset=utf-8"
    return Response(encoder.encode({plural: items, "meta": meta}), media_type=media)


def _not_found(what: str) -> Response:
    body = json.dumps({"error": f"not found while getting from endpoint for {what}"})
    return Response(body, status_code=404, media_type="text/plain; charset=utf-8")


def _with_properties(build: dict[str, Any], wanted: list[str]) -> dict[str, Any]:
    # Buildbot sends only the properties asked for with ?property=, and "*" means all.
    props = build["properties"]
    chosen = props if "*" in wanted else {k: v for k, v in props.items() if k in wanted}
    return {**build, "properties": chosen}


def _matches(item: Mapping[str, Any], field: str, values: list[str]) -> bool:
    # A repeated equality filter is Buildbot's "any of"; booleans read true/false.
    value = item.get(field)
    if isinstance(value, bool):
        return any((v.lower() == "true") == value for v in values)
    return str(value) in values


def _collection(
    request: Request, items: Iterable[dict[str, Any]], key: str
) -> list[dict[str, Any]]:
    """Buildbot's filters, order, offset and limit on a collection."""
    query = request.query_params
    rows = [
        item
        for item in items
        if all(_matches(item, f, query.getlist(f)) for f in query if f in item)
    ]
    order = query.get("order", key)
    rows.sort(key=lambda item: item[order.lstrip("-")], reverse=order.startswith("-"))
    offset = int(query.get("offset", "0"))
    limit = query.get("limit")
    return rows[offset : offset + int(limit) if limit else None]


async def _builders(request: Request) -> Response:
    return _buildbot_json(request, "builders", BUILDERS, {"total": len(BUILDERS)})


async def _build(request: Request) -> Response:
    buildid = int(request.path_params["buildid"])
    found = [b for b in BUILDS if b["buildid"] == buildid]
    if not found:
        return _not_found(f"/builds/n:buildid with arguments {{'buildid': {buildid}}}")
    wanted = request.query_params.getlist("property")
    return _buildbot_json(request, "builds", [_with_properties(found[0], wanted)], {})


async def _builds(request: Request) -> Response:
    wanted = request.query_params.getlist("property")
    rows = _collection(request, BUILDS, "buildid")
    items = [_with_properties(b, wanted) for b in rows]
    return _buildbot_json(request, "builds", items, {"total": len(items)})


async def _build_request(request: Request) -> Response:
    buildrequestid = int(request.path_params["buildrequestid"])
    found = [r for r in BUILD_REQUESTS if r["buildrequestid"] == buildrequestid]
    if not found:
        return _not_found(f"/buildrequests/n:buildrequestid {{'buildrequestid': {buildrequestid}}}")
    return _buildbot_json(request, "buildrequests", found, {})


async def _build_requests(request: Request) -> Response:
    rows = _collection(request, BUILD_REQUESTS, "buildrequestid")
    return _buildbot_json(request, "buildrequests", rows, {"total": len(rows)})


def openapi(base_url: str) -> dict[str, Any]:
    """OpenAPI 3.0 of what canned mode serves, for ``FastMCP.from_openapi``."""
    build = {
        "type": "object",
        "properties": {
            "buildid": {"type": "integer"},
            "builderid": {"type": "integer"},
            "buildrequestid": {"type": "integer"},
            "number": {"type": "integer"},
            "complete": {"type": "boolean"},
            "results": {"type": "integer", "nullable": True},
            "started_at": {"type": "integer", "nullable": True},
            "complete_at": {"type": "integer", "nullable": True},
            "state_string": {"type": "string"},
            "masterid": {"type": "integer"},
            "workerid": {"type": "integer"},
            "locks_duration_s": {"type": "integer"},
            "properties": {"type": "object", "additionalProperties": True},
        },
    }

    def envelope(plural: str, item: dict[str, Any]) -> dict[str, Any]:
        return {
            "description": f"Buildbot's {plural} envelope",
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            plural: {"type": "array", "items": item},
                            "meta": {"type": "object", "additionalProperties": True},
                        },
                        "required": [plural],
                    }
                }
            },
        }

    properties = {
        "name": "property",
        "in": "query",
        "required": False,
        "description": "Build properties to include; '*' for all.",
        "schema": {"type": "array", "items": {"type": "string"}},
        "style": "form",
        "explode": True,
    }
    not_found = {"description": "No such build"}
    return {
        "openapi": "3.0.3",
        "info": {"title": "Buildbot REST API (canned subset)", "version": "4.3.0"},
        "servers": [{"url": base_url}],
        "paths": {
            "/api/v2/builds/{buildid}": {
                "get": {
                    "operationId": "get_build",
                    "summary": "One build by its global build id.",
                    "parameters": [
                        {
                            "name": "buildid",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "integer"},
                        },
                        properties,
                    ],
                    "responses": {"200": envelope("builds", build), "404": not_found},
                }
            },
            "/api/v2/builds": {
                "get": {
                    "operationId": "list_builds",
                    "summary": "Builds, filtered and ordered.",
                    "parameters": [
                        {"name": "order", "in": "query", "schema": {"type": "string"}},
                        {"name": "limit", "in": "query", "schema": {"type": "integer"}},
                        {"name": "builderid", "in": "query", "schema": {"type": "integer"}},
                        {"name": "complete", "in": "query", "schema": {"type": "boolean"}},
                        properties,
                    ],
                    "responses": {"200": envelope("builds", build)},
                }
            },
            "/api/v2/builders": {
                "get": {
                    "operationId": "list_builders",
                    "summary": "Every builder.",
                    "responses": {
                        "200": envelope(
                            "builders",
                            {
                                "type": "object",
                                "properties": {
                                    "builderid": {"type": "integer"},
                                    "name": {"type": "string"},
                                },
                            },
                        )
                    },
                }
            },
        },
    }


async def _login(request: Request) -> Response:
    """Buildbot's ``/auth/login``: basic credentials in, a session cookie out."""
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return JSONResponse({"error": "login required"}, status_code=401)
    username = base64.b64decode(encoded).decode().partition(":")[0]
    response = Response(status_code=200)
    response.set_cookie("TWISTED_SESSION", f"session-of-{username}")
    return response


async def _openapi(request: Request) -> Response:
    return JSONResponse(openapi(str(request.base_url).rstrip("/")))


def canned_routes() -> list[Route]:
    return [
        Route("/api/v2/builders", _builders, methods=["GET"]),
        Route("/api/v2/builds", _builds, methods=["GET"]),
        Route("/api/v2/builds/{buildid:int}", _build, methods=["GET"]),
        Route("/api/v2/buildrequests", _build_requests, methods=["GET"]),
        Route("/api/v2/buildrequests/{buildrequestid:int}", _build_request, methods=["GET"]),
        Route("/openapi.json", _openapi, methods=["GET"]),
        Route("/auth/login", _login, methods=["GET"]),
    ]
