"""What the stand-in sends: GitLab's JSON entities, job traces, artifact archives.

Field names and types follow GitLab's documentation and the JSON schemas its own
request specs check responses against (gitlabhq/gitlabhq
``spec/fixtures/api/schemas/public_api/v4/``): ``job.json`` (required keys, and
``failure_reason`` only on failed jobs), ``pipeline/basic.json`` and
``pipeline/detail.json``, ``user/basic.json``, ``commit/basic.json``; the
examples of docs.gitlab.com/ee/api/pipelines.html, jobs.html,
pipeline_schedules.html and projects.html. Timestamps are ISO 8601 in UTC with
milliseconds, as GitLab writes them (``2016-08-11T11:28:34.085Z``).

Traces look like a shell runner's: ANSI colours, ``\\x1b[0K`` line clears, and
collapsible sections ``section_start:<unix time>:<name>\\r\\x1b[0K`` …
``section_end:<unix time>:<name>\\r\\x1b[0K`` (docs.gitlab.com/ee/ci/jobs/
job_logs.html#custom-collapsible-sections).
"""

from __future__ import annotations

import io
import math
import zipfile
from datetime import UTC, datetime
from typing import Any

from tests.standins.gitlab.model import Job, Pipeline, Project, Schedule, User, World

__all__ = [
    "artifacts_zip",
    "iso",
    "job_json",
    "pipeline_basic",
    "pipeline_detail",
    "project_json",
    "schedule_json",
    "trace",
    "user_basic",
]

_DETAILED = {
    # status: (icon, text and label); the group is the status itself.
    "created": ("status_created", "created"),
    "waiting_for_resource": ("status_pending", "waiting"),
    "preparing": ("status_preparing", "preparing"),
    "pending": ("status_pending", "pending"),
    "running": ("status_running", "running"),
    "success": ("status_success", "passed"),
    "failed": ("status_failed", "failed"),
    "canceled": ("status_canceled", "canceled"),
    "skipped": ("status_skipped", "skipped"),
    "manual": ("status_manual", "manual"),
    "scheduled": ("status_scheduled", "delayed"),
}


def iso(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    stamp = datetime.fromtimestamp(seconds, tz=UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


def user_basic(user: User, base: str) -> dict[str, Any]:
    return {
        "id": user.id,
        "username": user.username,
        "name": user.name,
        "state": "active",
        "locked": False,
        "avatar_url": None,
        "web_url": f"{base}/{user.username}",
    }


def _user_full(user: User, base: str) -> dict[str, Any]:
    # What jobs.html shows for a job's user: the basic fields plus public profile ones.
    return {
        **user_basic(user, base),
        "created_at": "2024-01-01T00:00:00.000Z",
        "bio": "",
        "location": "",
        "public_email": None,
        "skype": "",
        "linkedin": "",
        "twitter": "",
        "discord": "",
        "website_url": "",
        "organization": "",
        "job_title": "",
        "pronouns": None,
        "bot": False,
        "work_information": None,
        "followers": 0,
        "following": 0,
        "local_time": None,
    }


def project_json(project: Project, base: str) -> dict[str, Any]:
    namespace, _, path = project.path_with_namespace.rpartition("/")
    web_url = f"{base}/{project.path_with_namespace}"
    host = base.split("://", 1)[-1]
    return {
        "id": project.id,
        "description": None,
        "name": project.name,
        "name_with_namespace": f"{namespace} / {project.name}" if namespace else project.name,
        "path": path,
        "path_with_namespace": project.path_with_namespace,
        "created_at": iso(project.created_at),
        "default_branch": project.default_branch,
        "tag_list": [],
        "topics": [],
        "ssh_url_to_repo": f"git@{host.split(':')[0]}:{project.path_with_namespace}.git",
        "http_url_to_repo": f"{web_url}.git",
        "web_url": web_url,
        "readme_url": None,
        "avatar_url": None,
        "forks_count": 0,
        "star_count": 0,
        "last_activity_at": iso(project.created_at),
        "namespace": {
            "id": 1,
            "name": namespace or path,
            "path": namespace.rpartition("/")[2] or path,
            "kind": "group" if namespace else "user",
            "full_path": namespace or path,
            "parent_id": None,
            "avatar_url": None,
            "web_url": f"{base}/groups/{namespace}" if namespace else f"{base}/{path}",
        },
        "visibility": project.visibility,
        "archived": False,
        "jobs_enabled": True,
        "builds_access_level": "enabled",
        "ci_config_path": None,
        "_links": {"self": f"{base}/api/v4/projects/{project.id}"},
    }


def pipeline_basic(world: World, pipeline: Pipeline, base: str) -> dict[str, Any]:
    """``pipeline/basic.json``, as list endpoints and a job's ``pipeline`` show it."""
    now = world.clock.now()
    project = world.projects[pipeline.project_id]
    return {
        "id": pipeline.id,
        "iid": pipeline.iid,
        "project_id": pipeline.project_id,
        "sha": pipeline.sha,
        "ref": pipeline.ref,
        "status": pipeline.status(now),
        "source": pipeline.source,
        "created_at": iso(pipeline.created_at),
        "updated_at": iso(pipeline.updated_at),
        "web_url": f"{base}/{project.path_with_namespace}/-/pipelines/{pipeline.id}",
        "name": None,
    }


def pipeline_detail(world: World, pipeline: Pipeline, base: str) -> dict[str, Any]:
    """``pipeline/detail.json``: the single-pipeline answer (get, create, cancel, retry)."""
    now = world.clock.now()
    project = world.projects[pipeline.project_id]
    status = pipeline.status(now)
    started = pipeline.started_at()
    icon, text = _DETAILED[status]
    path = f"/{project.path_with_namespace}/-/pipelines/{pipeline.id}"
    return {
        **pipeline_basic(world, pipeline, base),
        "before_sha": pipeline.before_sha,
        "tag": pipeline.tag,
        "yaml_errors": None,
        "user": user_basic(world.users[pipeline.user_id], base),
        "started_at": iso(started),
        "finished_at": iso(pipeline.finished_at(now)),
        "committed_at": None,
        "duration": pipeline.duration(now),
        "queued_duration": None if started is None else round(started - pipeline.created_at, 3),
        "coverage": None,
        "detailed_status": {
            "icon": icon,
            "text": text,
            "label": text,
            "group": status,
            "tooltip": text,
            "has_details": True,
            "details_path": path,
            "illustration": None,
            "favicon": f"/assets/ci_favicons/favicon_{icon}.png",
        },
    }


def _commit(pipeline: Pipeline, base: str, project: Project) -> dict[str, Any]:
    created = iso(pipeline.created_at)
    return {
        "id": pipeline.sha,
        "short_id": pipeline.sha[:8],
        "created_at": created,
        "parent_ids": [pipeline.before_sha],
        "title": f"Update {pipeline.ref}",
        "message": f"Update {pipeline.ref}\n",
        "author_name": "Stand-in Author",
        "author_email": "author@example.com",
        "authored_date": created,
        "committer_name": "Stand-in Author",
        "committer_email": "author@example.com",
        "committed_date": created,
        "trailers": {},
        "extended_trailers": {},
        "web_url": f"{base}/{project.path_with_namespace}/-/commit/{pipeline.sha}",
    }


_RUNNER = {
    "id": 1,
    "description": "standin-runner",
    "ip_address": None,
    "active": True,
    "paused": False,
    "is_shared": True,
    "runner_type": "instance_type",
    "name": "gitlab-runner",
    "online": True,
    "status": "online",
}


def job_json(world: World, job: Job, base: str) -> dict[str, Any]:
    """``job.json``: every required key; ``failure_reason`` only when failed."""
    now = world.clock.now()
    pipeline = world.pipelines[job.pipeline_id]
    project = world.projects[pipeline.project_id]
    end = job.finished_at if job.finished_at is not None else now
    duration = None if job.started_at is None else round(end - job.started_at, 3)
    if job.queued_at is None:
        queued = None
    else:
        queued = round((job.started_at if job.started_at is not None else now) - job.queued_at, 3)
    archive = len(artifacts_zip(job)) if job.has_artifacts() else 0
    body: dict[str, Any] = {
        "id": job.id,
        "status": job.status,
        "stage": job.stage,
        "name": job.name,
        "ref": pipeline.ref,
        "tag": pipeline.tag,
        "coverage": job.spec.coverage if job.status == "success" else None,
        "allow_failure": job.spec.allow_failure,
        "created_at": iso(job.created_at),
        "started_at": iso(job.started_at),
        "finished_at": iso(job.finished_at),
        "erased_at": None,
        "duration": duration,
        "queued_duration": queued,
        "user": _user_full(world.users[pipeline.user_id], base),
        "commit": _commit(pipeline, base, project),
        "pipeline": pipeline_basic(world, pipeline, base),
        "web_url": f"{base}/{project.path_with_namespace}/-/jobs/{job.id}",
        "artifacts": [],
        "artifacts_expire_at": None,
        "tag_list": list(job.spec.tag_list),
        "runner": _RUNNER if job.started_at is not None else None,
        "project": {"ci_job_token_scope_enabled": False},
        "archived": False,
    }
    if job.status == "failed":
        body["failure_reason"] = job.failure_reason
    log_size = len(trace(world, job).encode())
    if job.status in {"success", "failed", "canceled"} and log_size:
        body["artifacts"].append(
            {"file_type": "trace", "size": log_size, "filename": "job.log", "file_format": None}
        )
    if archive:
        body["artifacts_file"] = {"filename": "artifacts.zip", "size": archive}
        body["artifacts"].insert(
            0,
            {
                "file_type": "archive",
                "size": archive,
                "filename": "artifacts.zip",
                "file_format": "zip",
            },
        )
        body["artifacts_expire_at"] = iso((job.finished_at or now) + 30 * 86400)
    return body


def schedule_json(world: World, schedule: Schedule, base: str, *, detail: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": schedule.id,
        "description": schedule.description,
        "ref": schedule.ref,
        "cron": schedule.cron,
        "cron_timezone": schedule.cron_timezone,
        # Cron is not evaluated: the next run is always an hour after creation.
        "next_run_at": iso(schedule.created_at + 3600),
        "active": schedule.active,
        "created_at": iso(schedule.created_at),
        "updated_at": iso(schedule.created_at),
        "owner": user_basic(world.users[schedule.owner_id], base),
    }
    if detail:
        last = world.pipelines.get(schedule.last_pipeline_id or 0)
        body["last_pipeline"] = (
            None
            if last is None
            else {
                "id": last.id,
                "sha": last.sha,
                "ref": last.ref,
                "status": last.status(world.clock.now()),
            }
        )
        body["variables"] = [
            {"key": key, "variable_type": kind, "value": value, "raw": False}
            for key, value, kind in schedule.variables
        ]
    return body


# --- traces ---------------------------------------------------------------------------

_CLEAR = "\x1b[0K"
_RESET = "\x1b[0;m"


def _section(name: str, at: float, title: str) -> str:
    return f"section_start:{int(at)}:{name}\r{_CLEAR}{_CLEAR}\x1b[36;1m{title}{_RESET}{_RESET}\n"


def _end(name: str, at: float) -> str:
    return f"section_end:{int(at)}:{name}\r{_CLEAR}\n"


def trace(world: World, job: Job) -> str:
    """The log so far: empty until a runner picks the job, then growing while it runs."""
    if job.started_at is None:
        return ""
    now = world.clock.now()
    pipeline = world.pipelines[job.pipeline_id]
    start = job.started_at
    end = job.finished_at if job.finished_at is not None else now
    lines = [
        f"{_CLEAR}Running with gitlab-runner 17.5.0 (66269445){_RESET}\n",
        f"{_CLEAR}  on standin-runner t2_abcdef, system ID: s_0123456789ab{_RESET}\n",
        _section("prepare_executor", start, 'Preparing the "shell" executor'),
        f"{_CLEAR}Using Shell (bash) executor...{_RESET}\n",
        _end("prepare_executor", start),
        _section("get_sources", start, "Getting source from Git repository"),
        f"\x1b[32;1mFetching changes with git depth set to 20...{_RESET}\n",
        f"\x1b[32;1mChecking out {pipeline.sha[:8]} as detached HEAD (ref is {pipeline.ref})..."
        f"{_RESET}\n",
        _end("get_sources", start),
        _section("step_script", start, 'Executing "step_script" stage of the job script'),
    ]
    script = job.spec.script
    if job.finished_at is not None:
        shown = len(script)
    else:
        fraction = (now - start) / job.spec.duration_s if job.spec.duration_s > 0 else 1.0
        shown = min(len(script), math.floor(fraction * len(script)))
    for line in script[:shown]:
        lines.append(f"\x1b[32;1m{line}{_RESET}\n" if line.startswith("$ ") else f"{line}\n")
    if job.finished_at is None:
        return "".join(lines)
    lines.append(_end("step_script", end))
    if job.status == "success" and job.spec.artifacts:
        lines += [
            _section("upload_artifacts_on_success", end, "Uploading artifacts for successful job"),
            f"\x1b[32;1mUploading artifacts...{_RESET}\n",
            f"{len(job.spec.artifacts)} files: found {len(job.spec.artifacts)} matching artifact "
            "files and directories\n",
            f'Uploading artifacts as "archive" to coordinator... 201 Created  id={job.id}\n',
            _end("upload_artifacts_on_success", end),
        ]
    lines.append(
        _section(
            "cleanup_file_variables", end, "Cleaning up project directory and file based variables"
        )
    )
    lines.append(_end("cleanup_file_variables", end))
    if job.status == "success":
        lines.append(f"\x1b[32;1mJob succeeded{_RESET}\n")
    elif job.status == "canceled":
        lines.append(f"\x1b[31;1mERROR: Job failed: canceled\n{_RESET}")
    else:
        lines.append(f"\x1b[31;1mERROR: Job failed: exit code {job.spec.exit_code}\n{_RESET}")
    return "".join(lines)


def artifacts_zip(job: Job) -> bytes:
    """The job's artifacts archive; fixed timestamps, so the same job gives the same bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, content in job.spec.artifacts:
            info = zipfile.ZipInfo(path, date_time=(2024, 1, 1, 0, 0, 0))
            archive.writestr(info, content)
    return buffer.getvalue()
