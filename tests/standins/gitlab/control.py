"""The control API under ``/_standin``: how a test seeds, scripts, faults and moves time.

Never faulted, rate limited or authenticated, and nothing GitLab has. Bodies are JSON:

* ``POST /_standin/users`` ``{"username", "name"?}`` → the user (with ``id``).
* ``POST /_standin/tokens`` ``{"token", "username", "kind": "personal"|"oauth"|"job",
  "scopes": ["api"], "projects": [ids] | null}``; ``projects`` null sees every project.
* ``POST /_standin/projects`` ``{"path": "group/app", "default_branch"?, "branches"?:
  {name: sha}, "tags"?: {name: sha}, "visibility"?, "script"?}`` → the project as the
  API shows it; ``PUT /_standin/projects/{id}/script`` replaces its script. A script is
  ``{"stages": [...], "created_s": 0.05, "jobs": [{"name", "stage", "queued_s",
  "duration_s", "fails", "fail_attempts", "failure_reason", "exit_code",
  "allow_failure", "script": [lines], "artifacts": {path: text}, "tag_list",
  "coverage"}]}``. Lines of ``script`` are the job's output; ``$ cmd`` lines print as
  commands do. Output appears over the job's run time.
* ``POST /_standin/schedules`` ``{"project", "description", "ref", "cron"?,
  "cron_timezone"?, "active"?, "owner"?, "variables"?: [{key, value, variable_type?}]}``.
* ``POST /_standin/faults`` ``{"status", "count"?, "path"?, "method"?, "retry_after"?,
  "body"?}``: the next ``count`` API requests whose raw path matches the ``path``
  regular expression answer ``status``; a 429 carries GitLab's throttle headers and
  ``Retry-After``. ``DELETE /_standin/faults`` clears them.
* ``PUT /_standin/rate_limit`` ``{"limit", "window_s"?, "always_headers"?}``: a real
  per-token throttle (0 turns it off).
* ``POST /_standin/clock`` ``{"manual": true|false}``; ``POST /_standin/clock/advance``
  ``{"seconds"}``; ``GET /_standin/clock`` → ``{"now", "manual"}``.
* ``GET /_standin/requests`` → the API requests seen (method, raw path, status, which
  credential header); ``DELETE /_standin/requests`` forgets them.
* ``POST /_standin/reset`` forgets everything; ``GET /_standin/health`` answers 200.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.standins.gitlab.model import (
    JobScript,
    Project,
    Schedule,
    Script,
    Token,
    User,
    World,
    fake_sha,
)
from tests.standins.gitlab.render import project_json, user_basic

__all__ = ["Fault", "Limits", "control_routes"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class JobIn(_Strict):
    name: str
    stage: str
    queued_s: float = Field(default=0.1, ge=0)
    duration_s: float = Field(default=0.3, ge=0)
    fails: bool = False
    fail_attempts: int | None = Field(default=None, ge=1)
    failure_reason: str = "script_failure"
    exit_code: int = 1
    allow_failure: bool = False
    script: list[str] = ["$ echo building", "building"]
    artifacts: dict[str, str] = {}
    tag_list: list[str] = []
    coverage: float | None = None


class ScriptIn(_Strict):
    stages: list[str] = Field(min_length=1)
    jobs: list[JobIn] = Field(min_length=1)
    created_s: float = Field(default=0.05, ge=0)

    def build(self) -> Script:
        for job in self.jobs:
            if job.stage not in self.stages:
                raise ValueError(f"job {job.name!r} names an unknown stage {job.stage!r}")
        jobs = tuple(
            JobScript(
                **job.model_dump(exclude={"script", "artifacts", "tag_list"}),
                script=tuple(job.script),
                artifacts=tuple(job.artifacts.items()),
                tag_list=tuple(job.tag_list),
            )
            for job in self.jobs
        )
        return Script(stages=tuple(self.stages), jobs=jobs, created_s=self.created_s)


class ProjectIn(_Strict):
    path: str = Field(pattern=r"^[\w.-]+(/[\w.-]+)+$")
    default_branch: str = "main"
    branches: dict[str, str] | None = None
    tags: dict[str, str] = {}
    visibility: Literal["private", "internal", "public"] = "private"
    script: ScriptIn | None = None


class TokenIn(_Strict):
    token: str = Field(min_length=1)
    username: str
    kind: Literal["personal", "oauth", "job"] = "personal"
    scopes: list[str] = ["api"]
    projects: list[int] | None = None


class UserIn(_Strict):
    username: str
    name: str | None = None


class VariableIn(_Strict):
    key: str
    value: str
    variable_type: Literal["env_var", "file"] = "env_var"


class ScheduleIn(_Strict):
    project: int
    description: str
    ref: str
    cron: str = "0 1 * * *"
    cron_timezone: str = "UTC"
    active: bool = True
    owner: str | None = None
    variables: list[VariableIn] = []


class Fault(_Strict):
    """One injected answer, as ``POST /_standin/faults`` takes it."""

    status: int = Field(ge=400, le=599)
    count: int | None = Field(default=1, ge=1)
    path: str | None = None
    method: str | None = None
    retry_after: int | None = Field(default=None, ge=0)
    body: str | None = None

    @field_validator("path")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a regular expression: {exc}") from exc
        return value


class Limits(_Strict):
    """The stand-in's own throttle: ``limit`` requests a window per token (0: off)."""

    limit: int = Field(default=0, ge=0)
    window_s: float = Field(default=60.0, gt=0)
    always_headers: bool = False


class ClockIn(_Strict):
    manual: bool


class AdvanceIn(_Strict):
    seconds: float = Field(ge=0, le=86400)


def control_routes(world: World, state: Any) -> list[Route]:
    """The ``/_standin`` routes over ``world``; ``state`` holds faults, limits and requests."""
    base_of = state.base_of

    async def parse(request: Request, model: type[Any]) -> Any:
        return model.model_validate_json(await request.body() or b"{}")

    def user_named(username: str) -> User:
        user = world.user_by_name(username)
        if user is None:
            raise ValueError(f"no user {username!r}: POST /_standin/users first")
        return user

    async def add_user(request: Request) -> Response:
        body = await parse(request, UserIn)
        if world.user_by_name(body.username) is not None:
            raise ValueError(f"user {body.username!r} exists")
        user = User(world.next_id("user"), body.username, body.name or body.username)
        world.users[user.id] = user
        return JSONResponse(user_basic(user, base_of(request)), status_code=201)

    async def add_token(request: Request) -> Response:
        body = await parse(request, TokenIn)
        user = user_named(body.username)
        world.tokens[body.token] = Token(
            value=body.token,
            user_id=user.id,
            kind=body.kind,
            scopes=tuple(body.scopes),
            project_ids=None if body.projects is None else frozenset(body.projects),
        )
        return JSONResponse({"user_id": user.id, "kind": body.kind}, status_code=201)

    async def add_project(request: Request) -> Response:
        body = await parse(request, ProjectIn)
        if world.project(body.path) is not None:
            raise ValueError(f"project {body.path!r} exists")
        project = Project(
            id=world.next_id("project"),
            path_with_namespace=body.path,
            name=body.path.rpartition("/")[2],
            default_branch=body.default_branch,
            branches=body.branches or {body.default_branch: fake_sha(body.path, "head")},
            tags=body.tags,
            visibility=body.visibility,
            created_at=world.clock.now(),
        )
        if body.script is not None:
            project.script = body.script.build()
        world.projects[project.id] = project
        return JSONResponse(project_json(project, base_of(request)), status_code=201)

    async def set_script(request: Request) -> Response:
        project = world.projects.get(int(request.path_params["project_id"]))
        if project is None:
            return JSONResponse({"error": "no such project"}, status_code=404)
        project.script = (await parse(request, ScriptIn)).build()
        return Response(status_code=204)

    async def add_schedule(request: Request) -> Response:
        body = await parse(request, ScheduleIn)
        if body.project not in world.projects:
            raise ValueError(f"no project {body.project}")
        owner = (
            user_named(body.owner)
            if body.owner
            else next(iter(world.users.values()), None) or user_named("root")
        )
        ref = body.ref if body.ref.startswith("refs/") else f"refs/heads/{body.ref}"
        schedule = Schedule(
            id=world.next_id("schedule"),
            project_id=body.project,
            description=body.description,
            ref=ref,
            cron=body.cron,
            cron_timezone=body.cron_timezone,
            active=body.active,
            owner_id=owner.id,
            created_at=world.clock.now(),
            variables=tuple((v.key, v.value, v.variable_type) for v in body.variables),
        )
        world.schedules[schedule.id] = schedule
        return JSONResponse({"id": schedule.id}, status_code=201)

    async def add_fault(request: Request) -> Response:
        state.faults.append(await parse(request, Fault))
        return Response(status_code=204)

    async def clear_faults(request: Request) -> Response:
        state.faults.clear()
        return Response(status_code=204)

    async def set_limits(request: Request) -> Response:
        state.limits = await parse(request, Limits)
        state.windows.clear()
        return Response(status_code=204)

    async def clock(request: Request) -> Response:
        if request.method == "POST":
            world.clock.set_manual((await parse(request, ClockIn)).manual)
        return JSONResponse({"now": world.clock.now(), "manual": world.clock.manual})

    async def advance(request: Request) -> Response:
        world.clock.advance((await parse(request, AdvanceIn)).seconds)
        world.advance()
        return JSONResponse({"now": world.clock.now(), "manual": world.clock.manual})

    async def requests(request: Request) -> Response:
        if request.method == "DELETE":
            state.seen.clear()
            return Response(status_code=204)
        return JSONResponse(state.seen)

    async def reset(request: Request) -> Response:
        world.__init__()  # type: ignore[misc]
        state.reset()
        return Response(status_code=204)

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    def guarded(endpoint: Any) -> Any:
        async def run(request: Request) -> Response:
            try:
                return await endpoint(request)  # type: ignore[no-any-return]
            except ValidationError as exc:
                errors = exc.errors(include_url=False, include_context=False)
                return JSONResponse({"error": errors}, status_code=422)
            except ValueError as exc:
                return JSONResponse({"error": str(exc)}, status_code=422)

        return run

    table: list[tuple[str, Any, list[str]]] = [
        ("/_standin/users", add_user, ["POST"]),
        ("/_standin/tokens", add_token, ["POST"]),
        ("/_standin/projects", add_project, ["POST"]),
        ("/_standin/projects/{project_id:int}/script", set_script, ["PUT"]),
        ("/_standin/schedules", add_schedule, ["POST"]),
        ("/_standin/faults", add_fault, ["POST"]),
        ("/_standin/faults", clear_faults, ["DELETE"]),
        ("/_standin/rate_limit", set_limits, ["PUT"]),
        ("/_standin/clock", clock, ["GET", "POST"]),
        ("/_standin/clock/advance", advance, ["POST"]),
        ("/_standin/requests", requests, ["GET", "DELETE"]),
        ("/_standin/reset", reset, ["POST"]),
        ("/_standin/health", health, ["GET"]),
    ]
    return [Route(path, guarded(endpoint), methods=methods) for path, endpoint, methods in table]
