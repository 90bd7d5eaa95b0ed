"""The stand-in's ASGI app: GitHub's API (checked against its OpenAPI description), the
signed-URL host that serves logs and archives, and ``/_standin`` controls.

Every API request is held to ``@octokit/openapi`` before it is answered, and every
answer whose status the operation declares is held to it after; a violation is
answered with 599 and the validator's words, and recorded (``GET
/_standin/violations``) so the test that caused it fails even if the client coped.

Authentication follows docs.github.com/en/rest/authentication: ``Authorization:
Bearer <token>`` (or ``token <token>``); no credentials: 401 ``Requires
authentication``; unknown ones: 401 ``Bad credentials``. Installation tokens are made
at ``POST /app/installations/{id}/access_tokens`` from an app JWT (RS256, ``iss`` the
app id, at most ten minutes long), verified with the app's public key.

Logs and archives are redirects (302) to ``http://localhost:<port>/_blob/…``: the same
process under another host name, so another origin. A request there that carries an
``Authorization`` header is a violation: GitHub's signed URLs must not get the token.

Every API answer carries GitHub's ``X-RateLimit-*`` headers.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route as StarletteRoute

from tests.standins.github.api import ROUTES, Context, Route, error, log_text, zip_of
from tests.standins.github.spec import Checker
from tests.standins.github.world import World

__all__ = ["create_app"]

_MAX_RECORDED = 10_000


def _b64decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _app_of(world: World, installation: int, jwt: str) -> bool:
    """Whether ``jwt`` is a current app JWT of the app ``installation`` belongs to."""
    known = world.apps.get(installation)
    if known is None or jwt.count(".") != 2:
        return False
    app_id, public_pem = known
    head, claims, signature = jwt.split(".")
    key = serialization.load_pem_public_key(public_pem)
    assert isinstance(key, rsa.RSAPublicKey)
    try:
        key.verify(_b64decode(signature), f"{head}.{claims}".encode(), padding.PKCS1v15(),
                   hashes.SHA256())  # fmt: skip
        header = json.loads(_b64decode(head))
        body = json.loads(_b64decode(claims))
    except (InvalidSignature, ValueError):
        return False
    now = time.time()
    return (
        header.get("alg") == "RS256"
        and str(body.get("iss")) == app_id
        and body["iat"] <= now + 60
        and now < body["exp"] <= body["iat"] + 660
    )


def create_app(world: World | None = None, checker: Checker | None = None) -> Starlette:
    world = world if world is not None else World()
    checker = checker if checker is not None else Checker()
    violations: list[str] = []
    seen: list[dict[str, Any]] = []

    def violation(text: str) -> Response:
        violations.append(text)
        return PlainTextResponse(f"stand-in: {text}\n", status_code=599)

    def find(method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        for route in ROUTES:
            match = route.pattern.fullmatch(path)
            if match is not None and route.method == method:
                return route, match.groupdict()
        return None

    def authorised(request: Request, route: Route, params: dict[str, str]) -> Response | None:
        sent = request.headers.get("authorization", "")
        scheme, _, credential = sent.partition(" ")
        if not sent:
            return error(401, "Requires authentication")
        if route.template.startswith("/app/"):
            if scheme.lower() == "bearer" and _app_of(world, int(params["installation_id"]),
                                                      credential.strip()):  # fmt: skip
                return None
            return error(401, "A JSON web token could not be decoded")
        if scheme.lower() in ("bearer", "token") and credential.strip() in world.tokens:
            return None
        return error(401, "Bad credentials")

    async def api(request: Request) -> Response:
        path = request.url.path
        body = await request.body()
        query = list(request.query_params.multi_items())
        headers = dict(request.headers)
        content_type = request.headers.get("content-type", "")
        found = find(request.method, path)
        if found is None:
            response = violation(f"{request.method} {path} is not an operation the stand-in serves")
        else:
            route, params = found
            problem = checker.request(request.method, path, query, headers, body, content_type)
            if problem is not None:
                response = violation(problem)
            else:
                response = authorised(request, route, params) or await route.handler(
                    Context(
                        request=request, world=world, examples=checker.examples,
                        params=params, query=dict(query),
                        body=json.loads(body) if body else None,
                        api=f"http://{request.headers.get('host', '127.0.0.1')}",
                        blob=f"http://localhost:{request.scope['server'][1]}/_blob",
                    )
                )  # fmt: skip
                if checker.declares(route.template, request.method.lower(), response.status_code):
                    data = bytes(response.body)
                    answer_headers = dict(response.headers)
                    problem = checker.response(
                        request.method, path, query, headers, body, content_type,
                        response.status_code, answer_headers, data,
                    )  # fmt: skip
                    if problem is not None:
                        response = violation(problem)
        response.headers.update({
            "X-RateLimit-Limit": "5000", "X-RateLimit-Remaining": "4999",
            "X-RateLimit-Reset": str(int(time.time()) + 3600), "X-RateLimit-Used": "1",
            "X-RateLimit-Resource": "core", "X-GitHub-Request-Id": f"STANDIN:{len(seen)}",
        })  # fmt: skip
        if len(seen) < _MAX_RECORDED:
            seen.append({"method": request.method, "path": path, "status": response.status_code})
        return response

    async def blob(request: Request) -> Response:
        if "authorization" in request.headers:
            return violation(f"the signed URL {request.url.path} was sent an Authorization header")
        if request.url.hostname != "localhost":
            return violation(f"the signed URL was reached on {request.url.hostname}")
        kind, number = request.path_params["kind"], int(request.path_params["id"])
        if kind == "logs" and number in world.jobs:
            return PlainTextResponse(log_text(world, number))
        if kind == "artifacts" and number in world.artifacts:
            return Response(zip_of(world.artifacts[number][2]), media_type="application/zip")
        return PlainTextResponse("BlobNotFound", status_code=404)

    async def control(request: Request) -> Response:
        what = request.path_params["what"]
        body = await request.json() if request.method in ("POST", "PUT") else {}
        if what == "health":
            return JSONResponse({"ok": True})
        if what == "reset" and request.method == "POST":
            fresh = World()
            world.__dict__.update(fresh.__dict__)
            violations.clear()
            seen.clear()
            return JSONResponse({})
        if what == "tokens" and request.method == "POST":
            world.tokens.add(body["token"])
            return JSONResponse({})
        if what == "apps" and request.method == "POST":
            pem = body["public_key"].encode()
            world.apps[int(body["installation_id"])] = (str(body["app_id"]), pem)
            return JSONResponse({})
        if what == "repos" and request.method == "POST":
            repo = world.add_repo(body["full_name"], body["workflows"])
            return JSONResponse({"id": repo.id})
        if what == "legacy_dispatch" and request.method == "PUT":
            world.legacy_dispatch = bool(body["on"])
            return JSONResponse({})
        if what == "violations":
            return JSONResponse(violations)
        if what == "requests":
            return JSONResponse(seen)
        return JSONResponse({"message": f"no control {what}"}, status_code=404)

    methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]
    return Starlette(
        routes=[
            StarletteRoute("/_standin/{what}", control, methods=methods),
            StarletteRoute("/_blob/{kind}/{id:int}", blob, methods=["GET"]),
            StarletteRoute("/{rest:path}", api, methods=methods),
        ]
    )
