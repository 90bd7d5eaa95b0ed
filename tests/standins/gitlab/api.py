"""The GitLab REST API v4 routes the stand-in answers, under ``/api/v4``.

Each route names the documentation page it follows. Common behaviour
(docs.gitlab.com/ee/api/rest/index.html, /rest/authentication.html,
/rest/troubleshooting.html#status-codes):

* Authentication: ``PRIVATE-TOKEN`` header or ``private_token`` parameter (personal
  tokens), ``Authorization: Bearer`` (OAuth and job tokens), ``JOB-TOKEN`` header or
  ``job_token`` parameter. An unknown token is ``401 {"message": "401 Unauthorized"}``;
  so is no token on the jobs routes and on any write. A token without the ``api``
  scope writing gets ``403 {"error": "insufficient_scope", ...}``.
* A project the caller cannot see is ``404 {"message": "404 Project Not Found"}``
  (GitLab hides forbidden projects behind 404). ``:id`` is a number or the
  URL-encoded full path (``group%2Fapp``), matched on the raw, still-encoded path.
* A missing pipeline or job is ``404 {"message": "404 Not found"}`` (GitLab's answer to
  ActiveRecord's RecordNotFound); other missing things ``404 {"message": "404 <Thing>
  Not Found"}``; an unknown route ``404 {"error": "404 Not Found"}``; invalid
  parameters ``400 {"error": "<param> ..."}`` as Grape words them.
* Offset pagination (rest/index.html#offset-based-pagination): ``page`` (default 1),
  ``per_page`` (default 20, at most 100); headers ``X-Page``, ``X-Per-Page``,
  ``X-Next-Page``, ``X-Prev-Page`` (empty when none), ``X-Total``, ``X-Total-Pages``,
  and ``Link`` with ``prev``/``next``/``first``/``last``.
"""

from __future__ import annotations

import json
import mimetypes
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from tests.standins.gitlab.model import (
    ACTIVE,
    FINISHED,
    JOB_STATUSES,
    PIPELINE_STATUSES,
    Job,
    Pipeline,
    Project,
    Token,
    World,
)
from tests.standins.gitlab.render import (
    artifacts_zip,
    job_json,
    pipeline_basic,
    pipeline_detail,
    project_json,
    schedule_json,
    trace,
)

__all__ = ["ApiError", "Call", "dispatch"]

_DEFAULT_PER_PAGE = 20
_MAX_PER_PAGE = 100


class ApiError(Exception):
    """An answer other than success, with GitLab's body for it."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(status)
        self.status = status
        self.body = body


def _message(status: int, text: str) -> ApiError:
    return ApiError(status, {"message": text})


def _invalid(text: str) -> ApiError:
    return ApiError(400, {"error": text})


UNAUTHORIZED = _message(401, "401 Unauthorized")
NOT_FOUND = _message(404, "404 Not found")


@dataclass
class Call:
    """One API request, with what authentication made of it."""

    request: Request
    world: World
    base: str
    token: Token | None
    params: dict[str, list[str]]
    body: dict[str, Any]

    def param(self, name: str) -> str | None:
        if name in self.body and not isinstance(self.body[name], list | dict):
            return str(self.body[name])
        values = self.params.get(name)
        return values[-1] if values else None

    def values(self, name: str) -> list[str]:
        """An array parameter, given as ``name[]=a&name[]=b``, ``name=a`` or in the JSON body."""
        if isinstance(self.body.get(name), list):
            return [str(value) for value in self.body[name]]
        return self.params.get(f"{name}[]", []) + self.params.get(name, [])

    def flag(self, name: str) -> bool:
        value = self.param(name)
        if value is None:
            return False
        if value.lower() in {"true", "1"}:
            return True
        if value.lower() in {"false", "0"}:
            return False
        raise _invalid(f"{name} is invalid")

    def writes(self) -> bool:
        return self.request.method not in {"GET", "HEAD"}


# --- authentication and lookups -------------------------------------------------------


def authenticate(request: Request, world: World, params: dict[str, list[str]]) -> Token | None:
    from_query = params.get("private_token", []) + params.get("job_token", [])
    value = (
        request.headers.get("private-token")
        or request.headers.get("job-token")
        or (from_query[-1] if from_query else None)
    )
    authorization = request.headers.get("authorization", "")
    if value is None and authorization[:7].lower() == "bearer ":
        value = authorization[7:].strip()
    if value is None:
        return None
    token = world.tokens.get(value)
    if token is None:
        raise UNAUTHORIZED
    return token


def _project(call: Call, raw_id: str) -> Project:
    project = call.world.project(unquote(raw_id))
    token = call.token
    visible = project is not None and (
        (token is None and project.visibility == "public")
        or (token is not None and (token.project_ids is None or project.id in token.project_ids))
    )
    if project is None or not visible:
        raise _message(404, "404 Project Not Found")
    if call.writes() and token is not None and "api" not in token.scopes:
        raise ApiError(
            403,
            {
                "error": "insufficient_scope",
                "error_description": "The request requires higher privileges than provided "
                "by the access token.",
                "scope": "api",
            },
        )
    return project


def _pipeline(call: Call, project: Project, raw_id: str) -> Pipeline:
    pipeline = call.world.pipelines.get(int(raw_id))
    if pipeline is None or pipeline.project_id != project.id:
        raise NOT_FOUND
    return pipeline


def _job(call: Call, project: Project, raw_id: str) -> Job:
    job = call.world.jobs.get(int(raw_id))
    if job is None or call.world.pipelines[job.pipeline_id].project_id != project.id:
        raise NOT_FOUND
    return job


# --- pagination -----------------------------------------------------------------------


def _page_number(call: Call, name: str, default: int) -> int:
    raw = call.param(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise _invalid(f"{name} is invalid") from None


def paginate(call: Call, items: list[Any]) -> tuple[list[Any], dict[str, str]]:
    """One page of ``items`` and GitLab's offset pagination headers for it."""
    page = max(1, _page_number(call, "page", 1))
    per_page = _page_number(call, "per_page", _DEFAULT_PER_PAGE)
    per_page = min(_MAX_PER_PAGE, per_page if per_page > 0 else _DEFAULT_PER_PAGE)
    total = len(items)
    pages = max(1, -(-total // per_page))
    chunk = items[(page - 1) * per_page : page * per_page]
    next_page = page + 1 if page < pages else None
    prev_page = page - 1 if 1 < page <= pages + 1 else None

    url = call.request.url
    query = [(k, v) for k, v in parse_qsl(url.query, keep_blank_values=True) if k != "page"]
    query = [(k, v) for k, v in query if k != "per_page"]

    def link(number: int, rel: str) -> str:
        target = f"{call.base}{url.path}?" + urlencode(
            [*query, ("page", str(number)), ("per_page", str(per_page))]
        )
        return f'<{target}>; rel="{rel}"'

    links = []
    if prev_page is not None:
        links.append(link(prev_page, "prev"))
    if next_page is not None:
        links.append(link(next_page, "next"))
    links += [link(1, "first"), link(pages, "last")]
    headers = {
        "X-Page": str(page),
        "X-Per-Page": str(per_page),
        "X-Next-Page": "" if next_page is None else str(next_page),
        "X-Prev-Page": "" if prev_page is None else str(prev_page),
        "X-Total": str(total),
        "X-Total-Pages": str(pages),
        "Link": ", ".join(links),
    }
    return chunk, headers


def _listing(call: Call, items: list[dict[str, Any]]) -> Response:
    chunk, headers = paginate(call, items)
    return JSONResponse(chunk, headers=headers)


# --- projects (docs.gitlab.com/ee/api/projects.html#get-a-single-project) --------------


async def get_version(call: Call) -> Response:
    # docs.gitlab.com/ee/api/version.html: any authenticated user; fields as documented.
    return JSONResponse(
        {
            "version": "17.5.0-ee",
            "revision": "0a1b2c3d4e5",
            "kas": {"enabled": False, "externalUrl": None, "version": None},
            "enterprise": True,
        }
    )


async def get_project(call: Call, project_id: str) -> Response:
    return JSONResponse(project_json(_project(call, project_id), call.base))


# --- pipelines (docs.gitlab.com/ee/api/pipelines.html) ----------------------------------

_PIPELINE_SCOPES = {"running", "pending", "finished", "branches", "tags"}
_ORDER_BY = {"id", "status", "ref", "updated_at", "user_id"}


def _choice(call: Call, name: str, allowed: set[str] | tuple[str, ...]) -> str | None:
    value = call.param(name)
    if value is not None and value not in allowed:
        raise _invalid(f"{name} does not have a valid value")
    return value


async def list_pipelines(call: Call, project_id: str) -> Response:
    """GET /projects/:id/pipelines (List project pipelines): filters, order, pages."""
    project = _project(call, project_id)
    world, now = call.world, call.world.clock.now()
    scope = _choice(call, "scope", _PIPELINE_SCOPES)
    status = _choice(call, "status", PIPELINE_STATUSES)
    order_by = _choice(call, "order_by", _ORDER_BY) or "id"
    sort = _choice(call, "sort", {"asc", "desc"}) or "desc"
    ref, sha, source = call.param("ref"), call.param("sha"), call.param("source")
    username = call.param("username")

    def wanted(pipeline: Pipeline) -> bool:
        current = pipeline.status(now)
        user = world.users[pipeline.user_id]
        return (
            pipeline.project_id == project.id
            and (status is None or current == status)
            and (ref is None or pipeline.ref == ref)
            and (sha is None or pipeline.sha == sha)
            and (source is None or pipeline.source == source)
            and (username is None or user.username == username)
            and (
                scope is None
                or (scope == "finished" and current in FINISHED)
                or (scope == "branches" and not pipeline.tag)
                or (scope == "tags" and pipeline.tag)
                or scope == current
            )
        )

    def key(pipeline: Pipeline) -> tuple[Any, int]:
        by: dict[str, Any] = {
            "id": pipeline.id,
            "status": pipeline.status(now),
            "ref": pipeline.ref,
            "updated_at": pipeline.updated_at,
            "user_id": pipeline.user_id,
        }
        return by[order_by], pipeline.id

    found = sorted(filter(wanted, world.pipelines.values()), key=key, reverse=sort == "desc")
    return _listing(call, [pipeline_basic(world, p, call.base) for p in found])


async def get_pipeline(call: Call, project_id: str, pipeline_id: str) -> Response:
    """GET /projects/:id/pipelines/:pipeline_id (Get a single pipeline)."""
    pipeline = _pipeline(call, _project(call, project_id), pipeline_id)
    return JSONResponse(pipeline_detail(call.world, pipeline, call.base))


async def get_pipeline_variables(call: Call, project_id: str, pipeline_id: str) -> Response:
    """GET /projects/:id/pipelines/:pipeline_id/variables (Get variables for a pipeline)."""
    pipeline = _pipeline(call, _project(call, project_id), pipeline_id)
    return JSONResponse(
        [{"key": k, "variable_type": t, "value": v} for k, v, t in pipeline.variables]
    )


def _variables(call: Call) -> list[tuple[str, str, str]]:
    raw = call.body.get("variables")
    if raw is None:
        # Form or query style: variables[][key]=K&variables[][value]=V.
        keys = call.params.get("variables[][key]", [])
        values = call.params.get("variables[][value]", [])
        kinds = call.params.get("variables[][variable_type]", [])
        raw = [
            {"key": k, "value": v, **({"variable_type": kinds[i]} if i < len(kinds) else {})}
            for i, (k, v) in enumerate(zip(keys, values, strict=False))
        ]
    if not isinstance(raw, list):
        raise _invalid("variables is invalid")
    parsed = []
    for item in raw:
        if not isinstance(item, dict) or "key" not in item:
            raise _invalid("variables[key] is missing")
        if "value" not in item:
            raise _invalid("variables[value] is missing")
        kind = item.get("variable_type", "env_var")
        if kind not in {"env_var", "file"}:
            raise _invalid("variables[variable_type] does not have a valid value")
        parsed.append((str(item["key"]), str(item["value"]), str(kind)))
    return parsed


async def create_pipeline(call: Call, project_id: str) -> Response:
    """POST /projects/:id/pipeline (Create a new pipeline): 201, or 400 for an unknown ref."""
    project = _project(call, project_id)
    assert call.token is not None  # writes need a token (checked by dispatch)
    ref = call.param("ref")
    if not ref:
        raise _invalid("ref is missing")
    variables = _variables(call)
    target = project.sha_of(ref)
    if target is None:
        raise ApiError(400, {"message": {"base": ["Reference not found"]}})
    sha, tag = target
    pipeline = call.world.create_pipeline(
        project, ref=ref, sha=sha, tag=tag, source="api", user_id=call.token.user_id,
        variables=variables,
    )  # fmt: skip
    return JSONResponse(pipeline_detail(call.world, pipeline, call.base), status_code=201)


async def cancel_pipeline(call: Call, project_id: str, pipeline_id: str) -> Response:
    """POST …/pipelines/:pipeline_id/cancel (Cancel all jobs): 200 whatever the state."""
    pipeline = _pipeline(call, _project(call, project_id), pipeline_id)
    call.world.cancel_pipeline(pipeline)
    return JSONResponse(pipeline_detail(call.world, pipeline, call.base))


async def retry_pipeline(call: Call, project_id: str, pipeline_id: str) -> Response:
    """POST …/pipelines/:pipeline_id/retry (Retry jobs in a pipeline): 201."""
    pipeline = _pipeline(call, _project(call, project_id), pipeline_id)
    call.world.retry_pipeline(pipeline)
    return JSONResponse(pipeline_detail(call.world, pipeline, call.base), status_code=201)


async def delete_pipeline(call: Call, project_id: str, pipeline_id: str) -> Response:
    """DELETE /projects/:id/pipelines/:pipeline_id (Delete a pipeline): 204."""
    pipeline = _pipeline(call, _project(call, project_id), pipeline_id)
    for job in pipeline.jobs:
        call.world.jobs.pop(job.id, None)
    del call.world.pipelines[pipeline.id]
    return Response(status_code=204)


# --- jobs (docs.gitlab.com/ee/api/jobs.html) --------------------------------------------


def _job_scope(call: Call) -> set[str]:
    scope = call.values("scope")
    if any(value not in JOB_STATUSES for value in scope):
        raise _invalid("scope does not have a valid value")
    return set(scope)


async def list_pipeline_jobs(call: Call, project_id: str, pipeline_id: str) -> Response:
    """GET …/pipelines/:pipeline_id/jobs (List pipeline jobs): newest first, no retried."""
    pipeline = _pipeline(call, _project(call, project_id), pipeline_id)
    scope = _job_scope(call)
    jobs = pipeline.jobs if call.flag("include_retried") else pipeline.latest_jobs()
    jobs = [job for job in jobs if not scope or job.status in scope]
    jobs.sort(key=lambda job: job.id, reverse=True)
    return _listing(call, [job_json(call.world, job, call.base) for job in jobs])


async def list_project_jobs(call: Call, project_id: str) -> Response:
    """GET /projects/:id/jobs (List project jobs): newest first."""
    project = _project(call, project_id)
    scope = _job_scope(call)
    jobs = [
        job
        for job in call.world.jobs.values()
        if call.world.pipelines[job.pipeline_id].project_id == project.id
        and (not scope or job.status in scope)
    ]
    jobs.sort(key=lambda job: job.id, reverse=True)
    return _listing(call, [job_json(call.world, job, call.base) for job in jobs])


async def get_job(call: Call, project_id: str, job_id: str) -> Response:
    """GET /projects/:id/jobs/:job_id (Get a single job)."""
    job = _job(call, _project(call, project_id), job_id)
    return JSONResponse(job_json(call.world, job, call.base))


async def get_trace(call: Call, project_id: str, job_id: str) -> Response:
    """GET /projects/:id/jobs/:job_id/trace (Get a log file): the raw log so far, as text."""
    job = _job(call, _project(call, project_id), job_id)
    return Response(
        trace(call.world, job),
        media_type="text/plain",
        headers={"Content-Disposition": f'infile; filename="{job.id}.log"'},
    )


async def cancel_job(call: Call, project_id: str, job_id: str) -> Response:
    """POST /projects/:id/jobs/:job_id/cancel (Cancel a job): 201 with the job."""
    job = _job(call, _project(call, project_id), job_id)
    call.world.cancel_job(job)
    return JSONResponse(job_json(call.world, job, call.base), status_code=201)


async def retry_job(call: Call, project_id: str, job_id: str) -> Response:
    """POST /projects/:id/jobs/:job_id/retry (Retry a job): 201 with the new job."""
    job = _job(call, _project(call, project_id), job_id)
    call.world.advance()
    if job.retried or job.status in ACTIVE:
        raise _message(403, "403 Forbidden - Job is not retryable")
    fresh = call.world.retry_job(job)
    return JSONResponse(job_json(call.world, fresh, call.base), status_code=201)


# --- artifacts (docs.gitlab.com/ee/api/job_artifacts.html) ------------------------------


async def get_artifacts(call: Call, project_id: str, job_id: str) -> Response:
    """GET /projects/:id/jobs/:job_id/artifacts (Get job artifacts): the zip archive."""
    job = _job(call, _project(call, project_id), job_id)
    if not job.has_artifacts():
        raise _message(404, "404 Not Found")
    return Response(
        artifacts_zip(job),
        media_type="application/zip",
        headers={"Content-Disposition": 'attachment; filename="artifacts.zip"'},
    )


async def get_artifact_file(call: Call, project_id: str, job_id: str, path: str) -> Response:
    """GET /projects/:id/jobs/:job_id/artifacts/*artifact_path (Download a single file)."""
    job = _job(call, _project(call, project_id), job_id)
    wanted = unquote(path)
    if not job.has_artifacts():
        raise _message(404, "404 Not Found")
    if wanted.startswith("/") or ".." in wanted.split("/"):
        raise _message(400, "400 Bad request")
    content = dict(job.spec.artifacts).get(wanted)
    if content is None:
        raise _message(404, "404 Not Found")
    media = mimetypes.guess_type(wanted)[0] or "application/octet-stream"
    return Response(content.encode(), media_type=media)


# --- pipeline schedules (docs.gitlab.com/ee/api/pipeline_schedules.html) ----------------


def _schedules(call: Call, project: Project) -> list[Any]:
    return [s for s in call.world.schedules.values() if s.project_id == project.id]


async def list_schedules(call: Call, project_id: str) -> Response:
    """GET /projects/:id/pipeline_schedules (Get all pipeline schedules): scope active|inactive."""
    project = _project(call, project_id)
    scope = _choice(call, "scope", {"active", "inactive"})
    found = [
        s for s in _schedules(call, project) if scope is None or s.active == (scope == "active")
    ]
    return _listing(call, [schedule_json(call.world, s, call.base, detail=False) for s in found])


def _schedule(call: Call, project: Project, raw_id: str) -> Any:
    for schedule in _schedules(call, project):
        if schedule.id == int(raw_id):
            return schedule
    raise _message(404, "404 Pipeline Schedule Not Found")


async def get_schedule(call: Call, project_id: str, schedule_id: str) -> Response:
    """GET /projects/:id/pipeline_schedules/:pipeline_schedule_id (Get a single schedule)."""
    schedule = _schedule(call, _project(call, project_id), schedule_id)
    return JSONResponse(schedule_json(call.world, schedule, call.base, detail=True))


async def play_schedule(call: Call, project_id: str, schedule_id: str) -> Response:
    """POST …/pipeline_schedules/:id/play (Run a scheduled pipeline immediately): 201."""
    project = _project(call, project_id)
    schedule = _schedule(call, project, schedule_id)
    ref = schedule.ref.removeprefix("refs/heads/").removeprefix("refs/tags/")
    target = project.sha_of(ref)
    if target is None:
        raise ApiError(400, {"message": {"base": ["Reference not found"]}})
    pipeline = call.world.create_pipeline(
        project, ref=ref, sha=target[0], tag=target[1], source="schedule",
        user_id=schedule.owner_id, variables=schedule.variables,
    )  # fmt: skip
    schedule.last_pipeline_id = pipeline.id
    return JSONResponse({"message": "201 Created"}, status_code=201)


# --- the route table ------------------------------------------------------------------

Handler = Callable[..., Awaitable[Response]]
_ID = r"(?P<project_id>[^/]+)"
_NUM = r"(\d+)"
_P = f"/projects/{_ID}"

# (method, pattern on the raw path after /api/v4, handler, needs a token)
_TABLE: list[tuple[str, str, Handler, bool]] = [
    ("GET", "/version", get_version, True),
    ("GET", _P, get_project, False),
    ("GET", f"{_P}/pipelines", list_pipelines, False),
    ("POST", f"{_P}/pipeline", create_pipeline, True),
    ("GET", f"{_P}/pipelines/{_NUM}", get_pipeline, False),
    ("DELETE", f"{_P}/pipelines/{_NUM}", delete_pipeline, True),
    ("GET", f"{_P}/pipelines/{_NUM}/variables", get_pipeline_variables, False),
    ("GET", f"{_P}/pipelines/{_NUM}/jobs", list_pipeline_jobs, True),
    ("POST", f"{_P}/pipelines/{_NUM}/cancel", cancel_pipeline, True),
    ("POST", f"{_P}/pipelines/{_NUM}/retry", retry_pipeline, True),
    ("GET", f"{_P}/jobs", list_project_jobs, True),
    ("GET", f"{_P}/jobs/{_NUM}", get_job, True),
    ("GET", f"{_P}/jobs/{_NUM}/trace", get_trace, True),
    ("POST", f"{_P}/jobs/{_NUM}/cancel", cancel_job, True),
    ("POST", f"{_P}/jobs/{_NUM}/retry", retry_job, True),
    ("GET", f"{_P}/jobs/{_NUM}/artifacts", get_artifacts, True),
    ("GET", f"{_P}/jobs/{_NUM}/artifacts/(.+)", get_artifact_file, True),
    ("GET", f"{_P}/pipeline_schedules", list_schedules, False),
    ("GET", f"{_P}/pipeline_schedules/{_NUM}", get_schedule, False),
    ("POST", f"{_P}/pipeline_schedules/{_NUM}/play", play_schedule, True),
]
ROUTES = [(m, re.compile(p + r"/?"), h, auth) for m, p, h, auth in _TABLE]


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw:
        return {}
    kind = request.headers.get("content-type", "").split(";")[0].strip()
    if kind == "application/json":
        try:
            parsed = json.loads(raw)
        except ValueError:
            raise _invalid("The provided content-type 'application/json' is not valid") from None
        return parsed if isinstance(parsed, dict) else {}
    return {}


async def dispatch(request: Request, world: World, base: str, raw_path: str) -> Response:
    """Answer one ``/api/v4`` request (``raw_path`` is what follows it, still encoded)."""
    try:
        matched = [
            (method, match, handler, auth)
            for method, pattern, handler, auth in ROUTES
            if (match := pattern.fullmatch(raw_path))
        ]
        if not matched:
            raise ApiError(404, {"error": "404 Not Found"})
        chosen = [m for m in matched if m[0] == request.method]
        if not chosen:
            raise _message(405, "405 Method Not Allowed")
        _, match, handler, needs_token = chosen[0]
        params: dict[str, list[str]] = {}
        for key, value in parse_qsl(request.url.query, keep_blank_values=True):
            params.setdefault(key, []).append(value)
        if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            for key, value in parse_qsl((await request.body()).decode(), keep_blank_values=True):
                params.setdefault(key, []).append(value)
        token = authenticate(request, world, params)
        if token is None and (needs_token or request.method not in {"GET", "HEAD"}):
            raise UNAUTHORIZED
        world.advance()
        call = Call(request, world, base, token, params, await _body(request))
        return await handler(call, *match.groups())
    except ApiError as error:
        return JSONResponse(error.body, status_code=error.status)
