"""The stand-in's ASGI app: Jenkins' remote access API, and ``/_standin`` to set it up.

Control (JSON): ``POST /_standin/reset`` with ``{users: {name: api_token}, crumbs,
quiet_period_s, left_ttl_s, notify_url}``; ``POST /_standin/jobs`` with ``{path:
"team/app", steps: ["make", …], parameters: {NAME: default}, artifacts: "dist/*"}``;
``GET /_standin/deliveries`` (the Notification plugin's bodies sent);
``POST /_standin/crumbs/rotate`` (every crumb issued so far stops working);
``GET /_standin/health``.
"""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Any
from urllib.parse import unquote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from tests.standins.jenkins.world import Build, Job, QueueItem, World

__all__ = ["create_app"]

_VERSION = "2.462.3"
_CRUMB_FIELD = "Jenkins-Crumb"
_JOB_PATH = re.compile(r"^/((?:job/[^/]+/)*job/[^/]+)/?(.*)$")
_RANGE = re.compile(r"^(?P<name>\w+)(?:\[.*\])?(?:\{(?P<lo>\d*),?(?P<hi>\d*)\})?$", re.S)


def _text(status: int, body: str, **headers: str) -> Response:
    return PlainTextResponse(body, status_code=status, headers={"X-Jenkins": _VERSION, **headers})


def _json(body: Any, request: Request, status: int = 200) -> Response:
    tree = request.query_params.get("tree")
    if tree and isinstance(body, dict):
        body = _trimmed(body, tree)
    return JSONResponse(body, status_code=status, headers={"X-Jenkins": _VERSION})


def _top_level(tree: str) -> list[str]:
    """``a,b[c,d]{0,2},e`` → ``["a", "b[c,d]{0,2}", "e"]``."""
    parts, depth, current = [], 0, ""
    for char in tree:
        depth += {"[": 1, "{": 1, "]": -1, "}": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    return [*parts, current] if current else parts


def _trimmed(body: dict[str, Any], tree: str) -> dict[str, Any]:
    """``tree=`` loosely: the named top-level fields, ``{m,n}`` ranges on lists."""
    kept: dict[str, Any] = {"_class": body.get("_class")} if "_class" in body else {}
    for part in _top_level(tree):
        match = _RANGE.match(part.strip())
        if match is None or match.group("name") not in body:
            continue
        value = body[match.group("name")]
        if isinstance(value, list) and (match.group("lo") or match.group("hi")):
            lo = int(match.group("lo") or 0)
            hi = int(match.group("hi")) if match.group("hi") else None
            value = value[lo:hi]
        kept[match.group("name")] = value
    return kept


class _Api:
    def __init__(self, world: World) -> None:
        self.world = world

    def _crumb(self, user: str) -> str:
        return hashlib.sha256(f"crumb:{self.world.crumb_salt}:{user}".encode()).hexdigest()

    def _user(self, request: Request) -> str | Response:
        """The authenticated user, or Jenkins' refusal."""
        header = request.headers.get("authorization", "")
        if not header.lower().startswith("basic "):
            # Anonymous lacks Overall/Read on a secured controller.
            return _text(
                403,
                "Authentication required",
                **{
                    "X-You-Are-Authenticated-As": "anonymous",
                    "X-Required-Permission": "hudson.model.Hudson.Read",
                },
            )
        try:
            user, _, token = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return _text(
                401, "Invalid authorization header", **{"WWW-Authenticate": 'Basic realm="Jenkins"'}
            )
        if self.world.users.get(user) != token or not token:
            # Jenkins names the user, never the token.
            return _text(
                401,
                f"Invalid password/token for user: {user}",
                **{"WWW-Authenticate": 'Basic realm="Jenkins"'},
            )
        return user

    async def handle(self, request: Request) -> Response:
        self.world.root_url = str(request.base_url).rstrip("/")
        user = self._user(request)
        if isinstance(user, Response):
            return user
        path = "/" + request.path_params["path"]
        crumb = request.headers.get(_CRUMB_FIELD)
        if request.method == "POST" and self.world.crumbs and crumb != self._crumb(user):
            return _text(403, "No valid crumb was included in the request")
        if path in ("/api/json", "/api/json/"):
            jobs = sorted({p.split("/")[0] for p in self.world.jobs})
            return _json(
                {
                    "_class": "hudson.model.Hudson",
                    "mode": "NORMAL",
                    "jobs": [self._job_ref(name) for name in jobs],
                },
                request,
            )
        if path.rstrip("/") == "/crumbIssuer/api/json":
            if not self.world.crumbs:
                return _text(404, "Not Found")
            return _json(
                {
                    "_class": "hudson.security.csrf.DefaultCrumbIssuer",
                    "crumb": self._crumb(user),
                    "crumbRequestField": _CRUMB_FIELD,
                },
                request,
            )
        if match := re.fullmatch(r"/queue/item/(\d+)/api/json/?", path):
            item = self.world.item(int(match.group(1)))
            return _text(404, "Not Found") if item is None else _json(self._item(item), request)
        if path.rstrip("/") == "/queue/cancelItem" and request.method == "POST":
            self.world.cancel(int(request.query_params.get("id", "0") or 0))
            return Response(status_code=204, headers={"X-Jenkins": _VERSION})
        if match := _JOB_PATH.match(path):
            name = "/".join(match.group(1).split("/")[1::2])
            return await self._job_route(request, name, match.group(2).rstrip("/"), user)
        return _text(404, "Not Found")

    async def _job_route(self, request: Request, name: str, rest: str, user: str) -> Response:
        name = unquote(name)
        job = self.world.jobs.get(name)
        if job is None:
            if name in self.world.folders() and rest == "api/json":
                return _json(self._folder(name), request)
            return _text(404, "Not Found")
        if rest == "api/json" and request.method == "GET":
            return _json(self._job(job), request)
        if rest in ("build", "buildWithParameters") and request.method == "POST":
            return self._trigger(request, job, rest, user)
        match = re.fullmatch(r"(\d+)(?:/(.*))?", rest)
        if match is None:
            return _text(404, "Not Found")
        build = next((b for b in job.builds if b.number == int(match.group(1))), None)
        if build is None:
            return _text(404, "Not Found")
        what = match.group(2) or ""
        if what == "api/json":
            return _json(self._build(build), request)
        if what == "consoleText":
            return _text(200, build.console.decode(errors="replace"))
        if what == "logText/progressiveText":
            start = int(request.query_params.get("start", "0") or 0)
            data = bytes(build.console)
            headers = {"X-Text-Size": str(len(data))}
            if build.building:
                headers["X-More-Data"] = "true"
            return Response(
                data[start:],
                media_type="text/plain;charset=UTF-8",
                headers={"X-Jenkins": _VERSION, **headers},
            )
        if what == "stop" and request.method == "POST":
            self.world.stop(build, user)
            return Response(status_code=302, headers={"Location": self._build_url(build)})
        if what.startswith("artifact/"):
            stored = build.artifacts.get(unquote(what.removeprefix("artifact/")))
            if stored is None:
                return _text(404, "Not Found")
            return Response(stored, media_type="application/octet-stream")
        return _text(404, "Not Found")

    def _trigger(self, request: Request, job: Job, verb: str, user: str) -> Response:
        if verb == "buildWithParameters" and not job.parameters:
            return _text(400, f"{job.path} is not parameterized")
        if verb == "build" and job.parameters:
            # The form-less build of a parameterized job is refused.
            return _text(400, f"{job.path} is parameterized: use buildWithParameters")
        # Undefined parameters are dropped (SECURITY-170); defaults fill the rest.
        values = {k: request.query_params.get(k, v) for k, v in job.parameters.items()}
        item = self.world.enqueue(job, values, user)
        location = f"{self.world.root_url}/queue/item/{item.id}/"
        return Response(status_code=201, headers={"Location": location, "X-Jenkins": _VERSION})

    # --- rendering -------------------------------------------------------------------------

    def _url(self, path: str) -> str:
        return self.world.root_url + "/" + "".join(f"job/{p}/" for p in path.split("/"))

    def _build_url(self, build: Build) -> str:
        return f"{self._url(build.job.path)}{build.number}/"

    def _job_ref(self, path: str) -> dict[str, Any]:
        kind = (
            "hudson.model.FreeStyleProject"
            if path in self.world.jobs
            else ("com.cloudbees.hudson.plugins.folder.Folder")
        )
        return {"_class": kind, "name": path.rsplit("/", 1)[-1], "url": self._url(path)}

    def _folder(self, path: str) -> dict[str, Any]:
        children = sorted(
            {
                p[: len(path) + 1 + p[len(path) + 1 :].find("/")]
                if "/" in p[len(path) + 1 :]
                else p
                for p in list(self.world.jobs)
                if p.startswith(path + "/")
            }
        )
        return {
            "_class": "com.cloudbees.hudson.plugins.folder.Folder",
            "name": path.rsplit("/", 1)[-1],
            "fullName": path,
            "url": self._url(path),
            "jobs": [self._job_ref(child) for child in children],
        }

    def _job(self, job: Job) -> dict[str, Any]:
        properties = []
        if job.parameters:
            properties.append(
                {
                    "_class": "hudson.model.ParametersDefinitionProperty",
                    "parameterDefinitions": [
                        {
                            "_class": "hudson.model.StringParameterDefinition",
                            "name": name,
                            "type": "StringParameterDefinition",
                            "defaultParameterValue": {"name": name, "value": default},
                        }
                        for name, default in job.parameters.items()
                    ],
                }
            )
        builds = [self._build(b) for b in reversed(job.builds)]
        return {
            "_class": "hudson.model.FreeStyleProject",
            "name": job.name,
            "fullName": job.path,
            "url": self._url(job.path),
            "buildable": True,
            "inQueue": any(not i.left_at for i in self.world.queue.values() if i.job is job),
            "nextBuildNumber": job.next_number,
            "property": properties,
            "builds": builds,
        }

    def _build(self, build: Build) -> dict[str, Any]:
        actions: list[dict[str, Any]] = [
            {
                "_class": "hudson.model.CauseAction",
                "causes": [
                    {
                        "_class": "hudson.model.Cause$UserIdCause",
                        "shortDescription": f"Started by user {build.user}",
                        "userId": build.user,
                    }
                ],
            },
        ]
        if build.parameters:
            actions.append(
                {
                    "_class": "hudson.model.ParametersAction",
                    "parameters": [
                        {"_class": "hudson.model.StringParameterValue", "name": k, "value": v}
                        for k, v in build.parameters.items()
                    ],
                }
            )
        if build.aborted_by is not None and build.result == "ABORTED":
            actions.append(
                {
                    "_class": "jenkins.model.InterruptedBuildAction",
                    "causes": [
                        {
                            "_class": "jenkins.model.CauseOfInterruption$UserInterruption",
                            "shortDescription": f"Aborted by {build.aborted_by}",
                        }
                    ],
                }
            )
        return {
            "_class": "hudson.model.FreeStyleBuild",
            "number": build.number,
            "url": self._build_url(build),
            "building": build.building,
            "result": build.result,
            "timestamp": build.started_ms,
            "duration": build.duration_ms,
            "queueId": build.queue_id,
            "displayName": f"#{build.number}",
            "fullDisplayName": f"{build.job.path.replace('/', ' » ')} #{build.number}",
            "actions": actions,
            "artifacts": [
                {
                    "displayPath": p.rsplit("/", 1)[-1],
                    "fileName": p.rsplit("/", 1)[-1],
                    "relativePath": p,
                }
                for p in sorted(build.artifacts)
            ],
        }

    def _item(self, item: QueueItem) -> dict[str, Any]:
        task = {
            "_class": "hudson.model.FreeStyleProject",
            "name": item.job.name,
            "url": self._url(item.job.path),
        }
        params = "".join(f"\n{k}={v}" for k, v in item.parameters.items())
        body: dict[str, Any] = {
            "id": item.id,
            "task": task,
            "params": params,
            "inQueueSince": item.since_ms,
            "url": f"queue/item/{item.id}/",
        }
        if item.left_at is None:
            left = max(0.0, self.world.quiet_period_s)
            return {
                "_class": "hudson.model.Queue$WaitingItem",
                **body,
                "blocked": False,
                "buildable": False,
                "stuck": False,
                "why": f"In the quiet period. Expires in {left:.1f} sec",
            }
        executable = None
        if item.build is not None:
            executable = {
                "_class": "hudson.model.FreeStyleBuild",
                "number": item.build.number,
                "url": self._build_url(item.build),
            }
        return {
            "_class": "hudson.model.Queue$LeftItem",
            **body,
            "blocked": False,
            "buildable": False,
            "cancelled": item.cancelled,
            "executable": executable,
        }


def create_app() -> Starlette:
    world = World()
    api = _Api(world)

    async def reset(request: Request) -> Response:
        world.reset(**(await request.json()))
        return JSONResponse({})

    async def add_job(request: Request) -> Response:
        job = world.add_job(await request.json())
        return JSONResponse({"path": job.path})

    async def rotate_crumbs(request: Request) -> Response:
        # As a controller restart or an expired session would: old crumbs stop working.
        world.crumb_salt += 1
        return JSONResponse({})

    async def deliveries(request: Request) -> Response:
        return JSONResponse(world.deliveries)

    async def health(request: Request) -> Response:
        return JSONResponse({"ok": True})

    return Starlette(
        routes=[
            Route("/_standin/reset", reset, methods=["POST"]),
            Route("/_standin/jobs", add_job, methods=["POST"]),
            Route("/_standin/deliveries", deliveries, methods=["GET"]),
            Route("/_standin/crumbs/rotate", rotate_crumbs, methods=["POST"]),
            Route("/_standin/health", health, methods=["GET"]),
            Route("/{path:path}", api.handle, methods=["GET", "POST"]),
        ]
    )
