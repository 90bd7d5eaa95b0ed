"""The stand-in's ASGI app: CircleCI's API v2 (checked against its OpenAPI description),
the v1.1 job endpoint, step output and artifact downloads, and ``/_standin`` controls.

Control (JSON): ``POST /_standin/reset`` with ``{tokens: {token: login},
quiet_period_s, webhook_url, signing_secret}``; ``POST /_standin/projects`` with
``{slug: "gh/org/repo", workflows: {name: [{name, steps: [command, …], artifacts:
glob}]}, parameters: {name: default}}``; ``GET /_standin/deliveries`` (webhook bodies
sent); ``GET /_standin/violations`` (every request or answer the description refused;
the fixture fails the test run on any); ``GET /_standin/health``.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any
from urllib.parse import unquote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.standins.circleci.spec import violation_of_request, violation_of_response
from tests.standins.circleci.world import Job, Pipeline, Workflow, World

__all__ = ["create_app"]

_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_VCS = {"gh": "github", "bb": "bitbucket", "github": "github", "bitbucket": "bitbucket"}


def _json(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body), status_code=status, media_type="application/json")


def _message(status: int, message: str) -> Response:
    return _json({"message": message}, status)


class _Api:
    def __init__(self, world: World) -> None:
        self.world = world
        self.violations: list[str] = []

    # --- API v2, every exchange checked against the description ------------------------------

    async def v2(self, request: Request) -> Response:
        self.world.root_url = str(request.base_url).rstrip("/")
        raw_path = request.scope.get("raw_path", b"").decode() or request.url.path
        raw_path = raw_path.split("?", 1)[0]
        query = dict(request.query_params)
        body = await request.body()
        problem = violation_of_request(request.method, raw_path, query, body)
        if problem is not None:
            self.violations.append(problem)
            return _message(500, f"STAND-IN SPEC VIOLATION (request): {problem}")
        answer = self._v2(request.method, raw_path.removeprefix("/api/v2"), request, body)
        problem = violation_of_response(
            request.method, raw_path, query, body, answer.status_code, bytes(answer.body)
        )
        if problem is not None:
            self.violations.append(problem)
            return _message(500, f"STAND-IN SPEC VIOLATION (answer): {problem}")
        return answer

    def _user(self, request: Request) -> dict[str, str] | None:
        return self.world.tokens.get(request.headers.get("circle-token", ""))

    def _v2(self, method: str, path: str, request: Request, body: bytes) -> Response:
        user = self._user(request)
        if user is None:
            return _message(401, "You must log in first.")
        parts = path.strip("/").split("/")
        if path == "/me" and method == "GET":
            return _json({"id": user["id"], "login": user["login"], "name": user["login"]})
        if parts[0] == "project" and len(parts) >= 3:
            slug = unquote(parts[1])
            project = self.world.projects.get(slug)
            if project is None:
                return _message(404, "Project not found")
            if parts[2] == "pipeline" and len(parts) == 3:
                if method == "POST":
                    return self._trigger(project, body)
                return self._pipelines(slug, request.query_params.get("page-token"))
            if len(parts) == 4 and parts[3] == "artifacts" and parts[2].isdigit():
                job = self.world.jobs.get(int(parts[2]))
                if job is None or job.workflow.pipeline.project is not project:
                    return _message(404, "Job not found")
                return _json(
                    {
                        "items": [self._artifact(job, p) for p in sorted(job.artifacts)],
                        "next_page_token": None,
                    }
                )
        if parts[0] == "pipeline" and len(parts) in (2, 3) and re.fullmatch(_UUID, parts[1]):
            pipeline = self.world.pipelines.get(parts[1])
            if pipeline is None:
                return _message(404, "Pipeline not found")
            if len(parts) == 2:
                return _json(self._pipeline(pipeline))
            if parts[2] == "workflow":
                return _json(
                    {
                        "items": [self._workflow(w) for w in pipeline.workflows],
                        "next_page_token": None,
                    }
                )
        if parts[0] == "workflow" and len(parts) >= 2 and re.fullmatch(_UUID, parts[1]):
            workflow = self.world.workflows.get(parts[1])
            if workflow is None:
                return _message(404, "Workflow not found")
            if len(parts) == 2:
                return _json(self._workflow(workflow))
            if parts[2] == "job" and method == "GET":
                return _json(
                    {"items": [self._job(j) for j in workflow.jobs], "next_page_token": None}
                )
            if parts[2] == "cancel" and method == "POST":
                self.world.cancel(workflow, user["id"])
                return _json({"message": "Accepted."}, 202)
            if parts[2] == "rerun" and method == "POST":
                given = json.loads(body or b"{}")
                if workflow.status not in ("success", "failed", "canceled", "error"):
                    return _message(400, "Workflow is still running; it cannot be rerun.")
                rerun = self.world.rerun(workflow, from_failed=bool(given.get("from_failed")))
                return _json({"workflow_id": rerun.id}, 202)
        return _message(404, "Not found")

    def _trigger(self, project: Any, body: bytes) -> Response:
        given = json.loads(body or b"{}")
        parameters = dict(given.get("parameters") or {})
        unknown = sorted(set(parameters) - set(project.parameters))
        if unknown:
            # CircleCI compiles the config with the parameters and refuses undeclared ones.
            return _message(400, f"Unexpected argument(s): {', '.join(unknown)}")
        pipeline = self.world.trigger(project, given.get("branch"), given.get("tag"), parameters)
        return _json(
            {
                "id": pipeline.id,
                "state": pipeline.state,
                "number": pipeline.number,
                "created_at": pipeline.created_at,
            },
            201,
        )

    def _pipelines(self, slug: str, token: str | None) -> Response:
        mine = [p for p in self.world.pipelines.values() if p.project.slug == slug]
        mine.reverse()  # newest first
        start = int(token) if token and token.isdigit() else 0
        page = mine[start : start + 20]
        after = str(start + 20) if start + 20 < len(mine) else None
        return _json({"items": [self._pipeline(p) for p in page], "next_page_token": after})

    # --- rendering, as the description has them --------------------------------------------

    def _pipeline(self, pipeline: Pipeline) -> dict[str, Any]:
        login = next(iter(self.world.tokens.values()), {"login": "someone"})["login"]
        vcs: dict[str, Any] = {
            "provider_name": "GitHub",
            "target_repository_url": f"https://github.com/{pipeline.project.slug[3:]}",
            "origin_repository_url": f"https://github.com/{pipeline.project.slug[3:]}",
            "revision": uuid.uuid5(uuid.NAMESPACE_URL, pipeline.id).hex + "00000000",
        }
        if pipeline.branch:
            vcs["branch"] = pipeline.branch
        if pipeline.tag:
            vcs["tag"] = pipeline.tag
        return {
            "id": pipeline.id,
            "errors": [],
            "project_slug": pipeline.project.slug,
            "updated_at": pipeline.updated_at,
            "number": pipeline.number,
            "trigger_parameters": {"circleci": {"trigger_type": "api"}},
            "state": pipeline.state,
            "created_at": pipeline.created_at,
            "trigger": {
                "type": "api",
                "received_at": pipeline.created_at,
                "actor": {"login": login, "avatar_url": None},
            },
            "vcs": vcs,
        }

    def _workflow(self, workflow: Workflow) -> dict[str, Any]:
        found: dict[str, Any] = {
            "pipeline_id": workflow.pipeline.id,
            "id": workflow.id,
            "name": workflow.name,
            "project_slug": workflow.pipeline.project.slug,
            "status": workflow.status,
            "started_by": next(iter(self.world.tokens.values()), {"id": str(uuid.UUID(int=0))})[
                "id"
            ],
            "pipeline_number": workflow.pipeline.number,
            "created_at": workflow.created_at,
            "stopped_at": workflow.stopped_at,
        }
        if workflow.canceled_by:
            found["canceled_by"] = workflow.canceled_by
        return found

    def _job(self, job: Job) -> dict[str, Any]:
        found: dict[str, Any] = {
            "dependencies": [],
            "job_number": job.number,
            "id": job.id,
            "started_at": job.started_at,
            "name": job.name,
            "project_slug": job.workflow.pipeline.project.slug,
            "status": job.status,
            "type": "build",
            "stopped_at": job.stopped_at,
        }
        if job.canceled_by:
            found["canceled_by"] = job.canceled_by
        return found

    def _artifact(self, job: Job, path: str) -> dict[str, Any]:
        url = f"{self.world.root_url}/_artifacts/{job.number}/0/{path}"
        return {"path": path, "node_index": 0, "url": url}

    # --- API v1.1: the job with its steps and their output URLs -----------------------------------

    async def v1(self, request: Request) -> Response:
        self.world.root_url = str(request.base_url).rstrip("/")
        if self._user(request) is None:
            return _message(401, "You must log in first.")
        vcs, org, repo, number = (request.path_params[k] for k in ("vcs", "org", "repo", "number"))
        job = self.world.jobs.get(int(number)) if number.isdigit() else None
        short = next((k for k, v in _VCS.items() if v == _VCS.get(vcs) and len(k) == 2), vcs)
        if job is None or job.workflow.pipeline.project.slug != f"{short}/{org}/{repo}":
            return _message(404, "Build not found")
        steps = [
            {
                "name": step.name,
                "actions": [
                    {
                        "index": 0,
                        "step": index,
                        "name": step.name,
                        "type": "test",
                        "status": step.status,
                        "failed": step.status == "failed" or None,
                        "exit_code": step.exit_code,
                        "bash_command": step.command,
                        "start_time": step.start_time,
                        "end_time": step.end_time,
                        "has_output": bool(step.output),
                        "output_url": f"{self.world.root_url}/_output/{job.number}/{index}",
                    }
                ],
            }
            for index, step in enumerate(job.steps)
        ]
        outcome = {
            "running": None,
            "success": "success",
            "failed": "failed",
            "canceled": "canceled",
        }.get(job.status)
        return _json(
            {
                "build_num": job.number,
                "build_url": f"https://circleci.com/{short}/{org}/{repo}/{job.number}",
                "status": job.status,
                "lifecycle": "running" if job.status == "running" else "finished",
                "outcome": outcome,
                "workflows": {
                    "workflow_id": job.workflow.id,
                    "workflow_name": job.workflow.name,
                    "job_name": job.name,
                    "job_id": job.id,
                },
                "steps": steps,
            }
        )

    async def output(self, request: Request) -> Response:
        job = self.world.jobs.get(int(request.path_params["number"]))
        index = int(request.path_params["step"])
        if job is None or index >= len(job.steps):
            return Response(
                "<Error><Code>NoSuchKey</Code></Error>", 404, media_type="application/xml"
            )
        return _json(job.steps[index].output)

    async def artifact(self, request: Request) -> Response:
        job = self.world.jobs.get(int(request.path_params["number"]))
        data = job.artifacts.get(request.path_params["path"]) if job is not None else None
        if data is None:
            return Response("Not Found", 404, media_type="text/plain")
        return Response(data, media_type="application/octet-stream")


def create_app() -> Starlette:
    world = World()
    api = _Api(world)

    async def reset(request: Request) -> Response:
        world.reset(**(await request.json()))
        return JSONResponse({})

    async def add_project(request: Request) -> Response:
        project = world.add_project(await request.json())
        return JSONResponse({"slug": project.slug})

    async def deliveries(request: Request) -> Response:
        return JSONResponse(world.deliveries)

    async def violations(request: Request) -> Response:
        return JSONResponse(api.violations)

    async def health(request: Request) -> Response:
        return JSONResponse({"ok": True})

    return Starlette(
        routes=[
            Route("/_standin/reset", reset, methods=["POST"]),
            Route("/_standin/projects", add_project, methods=["POST"]),
            Route("/_standin/deliveries", deliveries, methods=["GET"]),
            Route("/_standin/violations", violations, methods=["GET"]),
            Route("/_standin/health", health, methods=["GET"]),
            Route("/_output/{number:int}/{step:int}", api.output, methods=["GET"]),
            Route("/_artifacts/{number:int}/{node:int}/{path:path}", api.artifact, methods=["GET"]),
            Route("/api/v1.1/project/{vcs}/{org}/{repo}/{number}", api.v1, methods=["GET"]),
            Route("/api/v2/{path:path}", api.v2, methods=["GET", "POST"]),
        ]
    )
