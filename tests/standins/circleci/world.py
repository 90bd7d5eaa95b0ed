"""The stand-in's state: projects, pipelines, their workflows and jobs, whose steps run.

A triggered pipeline is ``pending`` for ``quiet_period_s`` (CircleCI fetching and
compiling the config), then ``created``: each workflow of the project starts with its
jobs, all at once (jobs here have no ``requires``). A job's steps run one after the
other as ``bash -eo pipefail -c <command>`` (CircleCI's default shell) in a fresh
working directory after a "Spin up environment" step; the first failing step fails
the job and the steps after it do not run. Files matching a job's ``artifacts`` glob
are stored when its steps are done (``store_artifacts``). Cancelling a workflow kills
its running steps; rerunning one makes a new workflow of the same name in the same
pipeline (``from_failed``: only the jobs that did not succeed).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import shutil
import signal
import tempfile
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

__all__ = ["Job", "Pipeline", "Project", "Workflow", "World", "now"]

_FINISHED = {"success", "failed", "canceled", "error", "unauthorized", "not_run"}


def _stored(workdir: Path, glob: str) -> dict[str, bytes]:
    return {
        str(path.relative_to(workdir)): path.read_bytes()
        for path in sorted(workdir.glob(glob))
        if path.is_file()
    }


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Project:
    slug: str  # "gh/org/repo"
    id: str
    workflows: dict[str, list[dict[str, Any]]]  # name -> [{name, steps, artifacts}]
    parameters: dict[str, Any] = field(default_factory=dict)  # name -> default


@dataclass
class Step:
    name: str
    command: str | None
    output: list[dict[str, str]] = field(default_factory=list)
    status: str = "running"
    exit_code: int | None = None
    start_time: str = field(default_factory=now)
    end_time: str | None = None


@dataclass
class Job:
    id: str
    number: int
    name: str
    spec: dict[str, Any]
    workflow: Workflow
    status: str = "running"
    started_at: str = field(default_factory=now)
    stopped_at: str | None = None
    steps: list[Step] = field(default_factory=list)
    artifacts: dict[str, bytes] = field(default_factory=dict)
    canceled_by: str | None = None
    process: asyncio.subprocess.Process | None = None


@dataclass
class Workflow:
    id: str
    name: str
    pipeline: Pipeline
    status: str = "running"
    created_at: str = field(default_factory=now)
    stopped_at: str | None = None
    jobs: list[Job] = field(default_factory=list)
    canceled_by: str | None = None


@dataclass
class Pipeline:
    id: str
    number: int
    project: Project
    branch: str | None
    tag: str | None
    parameters: dict[str, Any]
    state: str = "pending"
    created_at: str = field(default_factory=now)
    updated_at: str = field(default_factory=now)
    workflows: list[Workflow] = field(default_factory=list)


class World:
    def __init__(self) -> None:
        self.root_url = ""
        self.reset()

    def reset(self, **settings: Any) -> None:
        for job in getattr(self, "jobs", {}).values():
            if job.process is not None and job.status == "running":
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(job.process.pid, signal.SIGKILL)
        self.tokens: dict[str, dict[str, str]] = {
            token: {"id": str(uuid.uuid5(uuid.NAMESPACE_URL, login)), "login": login}
            for token, login in dict(settings.get("tokens") or {}).items()
        }
        self.quiet_period_s = float(settings.get("quiet_period_s", 0.2))
        self.webhook_url: str | None = settings.get("webhook_url")
        self.signing_secret: str = settings.get("signing_secret") or ""
        self.projects: dict[str, Project] = {}
        self.pipelines: dict[str, Pipeline] = {}
        self.workflows: dict[str, Workflow] = {}
        self.jobs: dict[int, Job] = {}
        self.next_pipeline: dict[str, int] = {}
        self.next_job = 1
        self.deliveries: list[dict[str, Any]] = []
        self._tasks: set[asyncio.Task[None]] = set()

    def add_project(self, spec: dict[str, Any]) -> Project:
        slug = str(spec["slug"])
        project = Project(
            slug=slug,
            id=str(uuid.uuid5(uuid.NAMESPACE_URL, slug)),
            workflows=dict(spec["workflows"]),
            parameters=dict(spec.get("parameters") or {}),
        )
        self.projects[slug] = project
        return project

    # --- pipelines ----------------------------------------------------------------------

    def trigger(
        self, project: Project, branch: str | None, tag: str | None, parameters: dict[str, Any]
    ) -> Pipeline:
        number = self.next_pipeline.get(project.slug, 1)
        self.next_pipeline[project.slug] = number + 1
        values = {**project.parameters, **parameters}
        pipeline = Pipeline(str(uuid.uuid4()), number, project, branch, tag, values)
        self.pipelines[pipeline.id] = pipeline
        asyncio.get_running_loop().call_later(self.quiet_period_s, self._create, pipeline)
        return pipeline

    def _create(self, pipeline: Pipeline) -> None:
        pipeline.state, pipeline.updated_at = "created", now()
        for name, jobs in pipeline.project.workflows.items():
            self._start_workflow(pipeline, name, jobs)

    def _start_workflow(
        self, pipeline: Pipeline, name: str, jobs: list[dict[str, Any]]
    ) -> Workflow:
        workflow = Workflow(str(uuid.uuid4()), name, pipeline)
        pipeline.workflows.append(workflow)
        self.workflows[workflow.id] = workflow
        for spec in jobs:
            job = Job(str(uuid.uuid4()), self.next_job, str(spec["name"]), spec, workflow)
            self.next_job += 1
            workflow.jobs.append(job)
            self.jobs[job.number] = job
            task = asyncio.get_running_loop().create_task(self._run(job))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return workflow

    def cancel(self, workflow: Workflow, user: str) -> None:
        if workflow.status in _FINISHED:
            return
        workflow.canceled_by = user
        for job in workflow.jobs:
            if job.status == "running":
                job.canceled_by = user
                if job.process is not None:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(job.process.pid, signal.SIGTERM)

    def rerun(self, workflow: Workflow, *, from_failed: bool) -> Workflow:
        specs = [job.spec for job in workflow.jobs if not from_failed or job.status != "success"]
        return self._start_workflow(workflow.pipeline, workflow.name, specs)

    # --- running a job --------------------------------------------------------------------

    async def _run(self, job: Job) -> None:
        parameters = job.workflow.pipeline.parameters
        env = {
            **os.environ,
            "CIRCLE_BUILD_NUM": str(job.number),
            "CIRCLE_JOB": job.name,
            "CIRCLE_BRANCH": job.workflow.pipeline.branch or "",
            # Stands for << pipeline.parameters.NAME >> in the config's commands.
            **{f"PARAM_{k.upper()}": str(v) for k, v in parameters.items()},
        }
        spin = Step("Spin up environment", None, status="success", exit_code=0)
        spin.output.append(
            {"message": "Build-agent version 1.0.0 (stand-in)\r\n", "time": now(), "type": "out"}
        )
        spin.end_time = now()
        job.steps.append(spin)
        status = "success"
        workdir = Path(tempfile.mkdtemp(prefix="circleci-job-"))
        try:
            for command in job.spec.get("steps") or []:
                step = Step(command, command)
                job.steps.append(step)
                job.process = await asyncio.create_subprocess_exec(
                    "bash",
                    "-eo",
                    "pipefail",
                    "-c",
                    command,
                    cwd=workdir,
                    env=env,
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.STDOUT,
                    start_new_session=True,
                )
                assert job.process.stdout is not None
                while chunk := await job.process.stdout.read(4096):
                    text = chunk.decode(errors="replace").replace("\n", "\r\n")
                    step.output.append({"message": text, "time": now(), "type": "out"})
                code = await job.process.wait()
                step.exit_code, step.end_time = code, now()
                if job.canceled_by is not None:
                    step.status, status = "canceled", "canceled"
                    break
                if code != 0:
                    step.output.append(
                        {
                            "message": f"\r\nExited with code exit status {code}\r\n",
                            "time": now(),
                            "type": "err",
                        }
                    )
                    step.status, status = "failed", "failed"
                    break
                step.status = "success"
            glob = job.spec.get("artifacts")
            if status == "success" and glob:
                job.artifacts.update(_stored(workdir, glob))
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        job.status, job.stopped_at = status, now()
        self.notify_job(job)
        self._settle(job.workflow)

    def _settle(self, workflow: Workflow) -> None:
        statuses = [job.status for job in workflow.jobs]
        if "running" in statuses:
            if "failed" in statuses:
                workflow.status = "failing"
            return
        if workflow.canceled_by is not None:
            workflow.status = "canceled"
        elif "failed" in statuses:
            workflow.status = "failed"
        else:
            workflow.status = "success"
        workflow.stopped_at = now()
        self.notify_workflow(workflow)

    # --- webhooks -----------------------------------------------------------------------------

    def _common(self, workflow: Workflow) -> dict[str, Any]:
        pipeline = workflow.pipeline
        project = pipeline.project
        return {
            "id": str(uuid.uuid4()),
            "happened_at": now(),
            "webhook": {"id": str(uuid.uuid5(uuid.NAMESPACE_URL, "hook")), "name": "devmesh"},
            "project": {
                "id": project.id,
                "name": project.slug.rsplit("/", 1)[-1],
                "slug": project.slug,
            },
            "organization": {
                "id": str(uuid.uuid5(uuid.NAMESPACE_URL, project.slug.split("/")[1])),
                "name": project.slug.split("/")[1],
            },
            "pipeline": {
                "id": pipeline.id,
                "number": pipeline.number,
                "created_at": pipeline.created_at,
                "trigger": {"type": "api"},
                "trigger_parameters": {"circleci": {"trigger_type": "api"}},
                "vcs": {
                    "branch": pipeline.branch,
                    "provider_name": "github",
                    "revision": hashlib.sha1(pipeline.id.encode()).hexdigest(),
                },
            },
            "workflow": {
                "id": workflow.id,
                "name": workflow.name,
                "status": workflow.status,
                "created_at": workflow.created_at,
                "stopped_at": workflow.stopped_at,
                "url": f"https://app.circleci.com/pipelines/workflows/{workflow.id}",
            },
        }

    def notify_workflow(self, workflow: Workflow) -> None:
        self._deliver({"type": "workflow-completed", **self._common(workflow)})

    def notify_job(self, job: Job) -> None:
        body = {"type": "job-completed", **self._common(job.workflow)}
        body["job"] = {
            "id": job.id,
            "name": job.name,
            "number": job.number,
            "status": job.status,
            "started_at": job.started_at,
            "stopped_at": job.stopped_at,
        }
        self._deliver(body)

    def _deliver(self, body: dict[str, Any]) -> None:
        if not self.webhook_url:
            return
        self.deliveries.append(body)
        raw = json.dumps(body).encode()
        digest = hmac.new(self.signing_secret.encode(), raw, hashlib.sha256).hexdigest()
        headers = {
            "content-type": "application/json",
            "circleci-event-type": body["type"],
            "circleci-signature": f"v1={digest}",
            "user-agent": "CircleCI-Webhook/1.0",
        }
        task = asyncio.get_running_loop().create_task(self._post(self.webhook_url, raw, headers))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _post(self, url: str, raw: bytes, headers: dict[str, str]) -> None:
        with contextlib.suppress(httpx.HTTPError):
            async with httpx.AsyncClient(timeout=10, trust_env=False) as client:
                await client.post(url, content=raw, headers=headers)
