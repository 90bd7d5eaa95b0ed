"""The GitHub REST API routes the stand-in serves, answered as GitHub documents them.

Each route follows its page under docs.github.com/en/rest (named on the handler) and
its operation in ``@octokit/openapi`` (``spec.OPERATIONS``); bodies are the
description's own examples with the stand-in's state filled in, so they carry every
field GitHub's do. Errors are GitHub's ``basic-error`` (``message``,
``documentation_url``, ``status``).
"""

from __future__ import annotations

import copy
import io
import re
import secrets
import zipfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from tests.standins.github.world import Attempt, JobState, Run, World

__all__ = ["ROUTES", "Context", "Route", "error", "iso", "log_text", "zip_of"]

_DOCS = "https://docs.github.com/rest"
Handler = Callable[["Context"], Awaitable[Response]]


@dataclass
class Context:
    request: Request
    world: World
    examples: dict[str, Any]
    params: dict[str, str]
    query: dict[str, str]
    body: Any
    api: str  # the API's own address, as the caller reached it
    blob: str  # the other host logs and archives are served from

    def repo(self) -> Any:
        return self.world.repos.get(f"{self.params['owner']}/{self.params['repo']}")


@dataclass(frozen=True)
class Route:
    method: str
    template: str
    pattern: re.Pattern[str]
    handler: Handler


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse(
        {"message": message, "documentation_url": _DOCS, "status": str(status)}, status
    )


def iso(moment: float | None) -> str | None:
    if moment is None:
        return None
    return datetime.fromtimestamp(int(moment), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _not_found() -> JSONResponse:
    return error(404, "Not Found")


# --- rendering ------------------------------------------------------------------------


def _run_json(ctx: Context, run: Run, attempt: Attempt) -> dict[str, Any]:
    body: dict[str, Any] = copy.deepcopy(ctx.examples["workflow-run"])
    line = ctx.world.run_timeline(attempt)
    url = f"{ctx.api}/repos/{run.repo}/actions/runs/{run.id}"
    html = f"https://github.com/{run.repo}/actions/runs/{run.id}"
    body.update(
        id=run.id, name=run.workflow.removesuffix(".yml").removesuffix(".yaml"),
        head_branch=run.ref, run_number=run.number, run_attempt=attempt.number,
        event=run.event, status=line.status, conclusion=line.conclusion,
        workflow_id=run.workflow_id, path=f".github/workflows/{run.workflow}@{run.ref}",
        display_title=run.workflow, url=url, html_url=html,
        created_at=iso(run.created), updated_at=iso(line.completed or ctx.world.now()),
        run_started_at=iso(attempt.started), jobs_url=f"{url}/jobs", logs_url=f"{url}/logs",
        cancel_url=f"{url}/cancel", rerun_url=f"{url}/rerun", artifacts_url=f"{url}/artifacts",
        workflow_url=f"{ctx.api}/repos/{run.repo}/actions/workflows/{run.workflow_id}",
        pull_requests=[],
    )  # fmt: skip
    return body


def _job_json(ctx: Context, run: Run, attempt: Attempt, state: JobState) -> dict[str, Any]:
    body: dict[str, Any] = copy.deepcopy(ctx.examples["job"])
    line = ctx.world.timeline(attempt, state)
    steps = []
    names = ("Set up job", "Run script", "Complete job")
    for number, name in enumerate(names, start=1):
        conclusion = line.conclusion
        if line.conclusion == "failure":
            # The script's step fails; the set-up before it succeeded, the rest is skipped.
            conclusion = {1: "success", 2: "failure"}.get(number, "skipped")
        steps.append({
            "name": name, "number": number, "status": line.status,
            "conclusion": conclusion, "started_at": iso(line.started),
            "completed_at": iso(line.completed),
        })  # fmt: skip
    body.update(
        id=state.id, run_id=run.id, run_attempt=attempt.number, name=state.job.name,
        workflow_name=run.workflow, head_branch=run.ref, status=line.status,
        conclusion=line.conclusion, created_at=iso(attempt.started),
        started_at=iso(line.started or attempt.started), completed_at=iso(line.completed),
        url=f"{ctx.api}/repos/{run.repo}/actions/jobs/{state.id}",
        html_url=f"https://github.com/{run.repo}/actions/runs/{run.id}/job/{state.id}",
        run_url=f"{ctx.api}/repos/{run.repo}/actions/runs/{run.id}", steps=steps,
    )  # fmt: skip
    return body


def _artifact_json(ctx: Context, artifact_id: int) -> dict[str, Any]:
    run, name, files, made = ctx.world.artifacts[artifact_id]
    body: dict[str, Any] = copy.deepcopy(ctx.examples["artifact"])
    url = f"{ctx.api}/repos/{run.repo}/actions/artifacts/{artifact_id}"
    body.update(
        id=artifact_id, name=name, size_in_bytes=len(zip_of(files)), url=url,
        archive_download_url=f"{url}/zip", expired=False, created_at=iso(made),
        updated_at=iso(made), expires_at=iso(made + 90 * 86400),
    )  # fmt: skip
    repo_id = ctx.world.repos[run.repo].id
    body["workflow_run"].update(
        id=run.id, repository_id=repo_id, head_repository_id=repo_id, head_branch=run.ref
    )
    return body


def zip_of(files: dict[str, str]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, text in sorted(files.items()):
            # A fixed date: the same files make the same bytes.
            archive.writestr(zipfile.ZipInfo(path, date_time=(2024, 1, 1, 0, 0, 0)), text)
    return out.getvalue()


def log_text(world: World, job_id: int) -> str:
    """A job's log as the runner writes it: each line after an ISO 8601 timestamp."""
    _, attempt, state = world.jobs[job_id]
    line = world.timeline(attempt, state)
    start = line.started or attempt.started

    def stamp(offset: float) -> str:
        moment = datetime.fromtimestamp(start + offset, UTC)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"

    rows = ["##[group]Run script", *state.job.lines, "##[endgroup]"]
    if line.conclusion == "failure":
        rows.append("##[error]Process completed with exit code 1.")
    return "".join(f"{stamp(i * 0.001)} {row}\n" for i, row in enumerate(rows))


# --- handlers -------------------------------------------------------------------------


async def rate_limit(ctx: Context) -> Response:
    """docs.github.com/en/rest/rate-limit/rate-limit#get-rate-limit-status-for-the-authenticated-user"""
    return JSONResponse(ctx.examples["rate-limit-overview"])


async def repository(ctx: Context) -> Response:
    """docs.github.com/en/rest/repos/repos#get-a-repository"""
    repo = ctx.repo()
    if repo is None:
        return _not_found()
    body = copy.deepcopy(ctx.examples["full-repository"])
    owner, name = repo.full_name.split("/")
    body.update(id=repo.id, name=name, full_name=repo.full_name, default_branch=repo.default_branch)
    # The example predates this required field of the schema.
    body.setdefault("has_discussions", False)
    body["owner"]["login"] = owner
    return JSONResponse(body)


async def workflows(ctx: Context) -> Response:
    """docs.github.com/en/rest/actions/workflows#list-repository-workflows"""
    repo = ctx.repo()
    if repo is None:
        return _not_found()
    shown = []
    for file, (workflow_id, _) in repo.workflows.items():
        body = copy.deepcopy(ctx.examples["workflow"])
        body.update(id=workflow_id, name=file, path=f".github/workflows/{file}", state="active")
        shown.append(body)
    return JSONResponse({"total_count": len(shown), "workflows": shown})


def _workflow(repo: Any, key: str) -> str | None:
    if key in repo.workflows:
        return str(key)
    return next((f for f, (wid, _) in repo.workflows.items() if str(wid) == key), None)


async def dispatch(ctx: Context) -> Response:
    """docs.github.com/en/rest/actions/workflows#create-a-workflow-dispatch-event"""
    repo = ctx.repo()
    file = _workflow(repo, ctx.params["workflow_id"]) if repo is not None else None
    if repo is None or file is None:
        return _not_found()
    ref = str(ctx.body["ref"]).removeprefix("refs/heads/")
    if ref not in repo.branches:
        return error(422, f"No ref found for: {ref}")
    run = ctx.world.dispatch(repo, file, ref, dict(ctx.body.get("inputs") or {}))
    if ctx.world.legacy_dispatch or not ctx.body.get("return_run_details"):
        return Response(status_code=204)
    return JSONResponse({
        "workflow_run_id": run.id,
        "run_url": f"{ctx.api}/repos/{run.repo}/actions/runs/{run.id}",
        "html_url": f"https://github.com/{run.repo}/actions/runs/{run.id}",
    })  # fmt: skip


def _matches(ctx: Context, run: Run, body: dict[str, Any]) -> bool:
    wanted = ctx.query.get("status")
    if wanted and wanted not in (body["status"], body["conclusion"]):
        return False
    if ctx.query.get("branch") and ctx.query["branch"] != run.ref:
        return False
    return not ctx.query.get("event") or ctx.query["event"] == run.event


def _page(ctx: Context, key: str, items: list[Any]) -> Response:
    per_page = int(ctx.query.get("per_page", "30"))
    page = int(ctx.query.get("page", "1"))
    chunk = items[(page - 1) * per_page : page * per_page]
    response = JSONResponse({"total_count": len(items), key: chunk})
    if page * per_page < len(items):
        url = ctx.request.url.replace(scheme="http", netloc=ctx.api.split("://", 1)[1])
        query = dict(parse_qsl(ctx.request.url.query)) | {"page": str(page + 1)}
        target = url.replace_query_params(**query)
        response.headers["Link"] = f'<{target}>; rel="next"'
    return response


async def runs(ctx: Context) -> Response:
    """docs.github.com/en/rest/actions/workflow-runs#list-workflow-runs-for-a-repository
    and …/workflows#list-workflow-runs-for-a-workflow"""
    repo = ctx.repo()
    if repo is None:
        return _not_found()
    file = None
    if "workflow_id" in ctx.params:
        file = _workflow(repo, ctx.params["workflow_id"])
        if file is None:
            return _not_found()
    shown = []
    for run in sorted(ctx.world.runs.values(), key=lambda r: -r.id):
        if run.repo != repo.full_name or (file is not None and run.workflow != file):
            continue
        body = _run_json(ctx, run, run.attempts[-1])
        if _matches(ctx, run, body):
            shown.append(body)
    return _page(ctx, "workflow_runs", shown)


def _run(ctx: Context) -> Run | None:
    run = ctx.world.runs.get(int(ctx.params["run_id"]))
    repo = ctx.repo()
    return run if run is not None and repo is not None and run.repo == repo.full_name else None


def _attempt(ctx: Context, run: Run) -> Attempt | None:
    number = ctx.params.get("attempt_number")
    if number is None:
        return run.attempts[-1]
    index = int(number) - 1
    return run.attempts[index] if 0 <= index < len(run.attempts) else None


async def run(ctx: Context) -> Response:
    """docs.github.com/en/rest/actions/workflow-runs#get-a-workflow-run (and
    #get-a-workflow-run-attempt)"""
    found = _run(ctx)
    attempt = _attempt(ctx, found) if found is not None else None
    if found is None or attempt is None:
        return _not_found()
    return JSONResponse(_run_json(ctx, found, attempt))


async def jobs(ctx: Context) -> Response:
    """docs.github.com/en/rest/actions/workflow-jobs#list-jobs-for-a-workflow-run
    (``filter``: ``latest``, the default, or ``all`` attempts) and …-attempt"""
    found = _run(ctx)
    attempt = _attempt(ctx, found) if found is not None else None
    if found is None or attempt is None:
        return _not_found()
    chosen = [attempt]
    if "attempt_number" not in ctx.params and ctx.query.get("filter") == "all":
        chosen = found.attempts
    shown = [_job_json(ctx, found, a, s) for a in chosen for s in a.jobs]
    return _page(ctx, "jobs", shown)


async def cancel(ctx: Context) -> Response:
    """docs.github.com/en/rest/actions/workflow-runs#cancel-a-workflow-run"""
    found = _run(ctx)
    if found is None:
        return _not_found()
    if ctx.world.run_timeline(found.attempts[-1]).status == "completed":
        return error(409, "Cannot cancel a workflow run that is completed.")
    ctx.world.cancel(found)
    return JSONResponse({}, status_code=202)


async def rerun(ctx: Context) -> Response:
    """docs.github.com/en/rest/actions/workflow-runs#re-run-a-workflow (and
    #re-run-failed-jobs-from-a-workflow-run)"""
    found = _run(ctx)
    if found is None:
        return _not_found()
    if ctx.world.run_timeline(found.attempts[-1]).status != "completed":
        return error(403, "This workflow is already running")
    ctx.world.rerun(found, failed_only=ctx.request.url.path.endswith("failed-jobs"))
    return JSONResponse({}, status_code=201)


async def artifacts(ctx: Context) -> Response:
    """docs.github.com/en/rest/actions/artifacts#list-workflow-run-artifacts"""
    found = _run(ctx)
    if found is None:
        return _not_found()
    ctx.world.uploads(found)
    ids = sorted(i for i, (r, *_rest) in ctx.world.artifacts.items() if r.id == found.id)
    return _page(ctx, "artifacts", [_artifact_json(ctx, i) for i in ids])


def _artifact(ctx: Context) -> int | None:
    artifact_id = int(ctx.params["artifact_id"])
    entry = ctx.world.artifacts.get(artifact_id)
    repo = ctx.repo()
    if entry is None or repo is None or entry[0].repo != repo.full_name:
        return None
    return artifact_id


async def artifact(ctx: Context) -> Response:
    """docs.github.com/en/rest/actions/artifacts#get-an-artifact"""
    found = _artifact(ctx)
    return _not_found() if found is None else JSONResponse(_artifact_json(ctx, found))


async def archive(ctx: Context) -> Response:
    """docs.github.com/en/rest/actions/artifacts#download-an-artifact: a 302 to a
    short-lived URL on another host."""
    found = _artifact(ctx)
    if found is None or ctx.params["archive_format"] != "zip":
        return _not_found()
    return Response(status_code=302, headers={"Location": f"{ctx.blob}/artifacts/{found}?sig=x"})


def _job(ctx: Context) -> tuple[Run, Attempt, JobState] | None:
    entry = ctx.world.jobs.get(int(ctx.params["job_id"]))
    repo = ctx.repo()
    if entry is None or repo is None or entry[0].repo != repo.full_name:
        return None
    return entry


async def job(ctx: Context) -> Response:
    """docs.github.com/en/rest/actions/workflow-jobs#get-a-job-for-a-workflow-run"""
    found = _job(ctx)
    return _not_found() if found is None else JSONResponse(_job_json(ctx, *found))


async def job_logs(ctx: Context) -> Response:
    """docs.github.com/en/rest/actions/workflow-jobs#download-job-logs-for-a-workflow-run:
    a 302 to a URL that expires after a minute, on another host."""
    found = _job(ctx)
    if found is None:
        return _not_found()
    return Response(status_code=302, headers={"Location": f"{ctx.blob}/logs/{found[2].id}?sig=x"})


async def installation_token(ctx: Context) -> Response:
    """docs.github.com/en/rest/apps/apps#create-an-installation-access-token-for-an-app;
    the caller has already proved the app's JWT (see ``app.py``)."""
    token = "ghs_" + secrets.token_hex(18)
    ctx.world.tokens.add(token)
    body = copy.deepcopy(ctx.examples["installation-token"])
    body.update(token=token, expires_at=iso(ctx.world.now() + 3600))
    return JSONResponse(body, status_code=201)


_RUN = "/repos/{owner}/{repo}/actions/runs/{run_id}"
_TABLE: tuple[tuple[str, str, Handler], ...] = (
    ("GET", "/rate_limit", rate_limit),
    ("GET", "/repos/{owner}/{repo}", repository),
    ("GET", "/repos/{owner}/{repo}/actions/workflows", workflows),
    ("POST", "/repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches", dispatch),
    ("GET", "/repos/{owner}/{repo}/actions/workflows/{workflow_id}/runs", runs),
    ("GET", "/repos/{owner}/{repo}/actions/runs", runs),
    ("GET", _RUN, run),
    ("GET", _RUN + "/attempts/{attempt_number}", run),
    ("GET", _RUN + "/jobs", jobs),
    ("GET", _RUN + "/attempts/{attempt_number}/jobs", jobs),
    ("POST", _RUN + "/cancel", cancel),
    ("POST", _RUN + "/rerun", rerun),
    ("POST", _RUN + "/rerun-failed-jobs", rerun),
    ("GET", _RUN + "/artifacts", artifacts),
    ("GET", "/repos/{owner}/{repo}/actions/jobs/{job_id}", job),
    ("GET", "/repos/{owner}/{repo}/actions/jobs/{job_id}/logs", job_logs),
    ("GET", "/repos/{owner}/{repo}/actions/artifacts/{artifact_id}", artifact),
    ("GET", "/repos/{owner}/{repo}/actions/artifacts/{artifact_id}/{archive_format}", archive),
    ("POST", "/app/installations/{installation_id}/access_tokens", installation_token),
)


def _pattern(template: str) -> re.Pattern[str]:
    numeric = {"run_id", "job_id", "artifact_id", "attempt_number", "installation_id"}
    out = re.sub(
        r"\{(\w+)\}",
        lambda m: (
            f"(?P<{m.group(1)}>[0-9]+)" if m.group(1) in numeric else f"(?P<{m.group(1)}>[^/]+)"
        ),
        template,
    )
    return re.compile(out)


ROUTES = tuple(Route(m, t, _pattern(t), h) for m, t, h in _TABLE)
