"""The stand-in's state: projects, users, tokens, schedules, and pipelines that run.

A pipeline runs a project's *script* (stages, and per job: queue delay, duration,
outcome, trace, artifacts). Nothing runs in the background: every request first
calls ``World.advance()``, which replays each transition at the instant it was due
(not at the instant it was noticed), so what a test sees depends only on the clock,
never on how often it polled. The clock is the wall clock (short durations), or a
manual one that moves only when a test advances it.

Job and pipeline statuses follow GitLab's documented lifecycle
(docs.gitlab.com/ee/ci/jobs/ and ee/api/jobs.html): ``created`` → ``pending``
(queued for a runner) → ``running`` → ``success`` | ``failed`` | ``canceled``; jobs in
stages after a failed one become ``skipped``. A pipeline's status is the composite
of its latest jobs, as GitLab computes it.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "ACTIVE",
    "FINISHED",
    "JOB_STATUSES",
    "PIPELINE_STATUSES",
    "Clock",
    "Job",
    "JobScript",
    "Pipeline",
    "Project",
    "Schedule",
    "Script",
    "Token",
    "User",
    "World",
]

# GitLab's statuses (CommitStatus::AVAILABLE_STATUSES); the stand-in drives the
# first group itself and accepts the rest as filter values.
JOB_STATUSES = (
    "created",
    "waiting_for_resource",
    "preparing",
    "pending",
    "running",
    "success",
    "failed",
    "canceled",
    "skipped",
    "manual",
    "scheduled",
)
PIPELINE_STATUSES = JOB_STATUSES
FINISHED = frozenset({"success", "failed", "canceled", "skipped"})
ACTIVE = frozenset({"created", "waiting_for_resource", "preparing", "pending", "running"})

# The trace of a job whose script gives none: what a shell runner prints for a
# one-line script, ANSI colours and collapsible-section markers included.
DEFAULT_SCRIPT_LINES = ("echo building", "building")


@dataclass
class Clock:
    """Seconds since the epoch: the wall clock plus an offset, or frozen (manual)."""

    manual: bool = False
    _frozen: float = 0.0
    _offset: float = 0.0

    def now(self) -> float:
        return (self._frozen if self.manual else time.time()) + self._offset

    def set_manual(self, manual: bool) -> None:
        now = self.now()
        self.manual = manual
        self._frozen = time.time() if manual else 0.0
        self._offset = now - (self._frozen if manual else time.time())

    def advance(self, seconds: float) -> None:
        self._offset += seconds


@dataclass(frozen=True)
class User:
    id: int
    username: str
    name: str


@dataclass(frozen=True)
class Token:
    """An access token: ``kind`` says which header carries it (``personal`` → PRIVATE-TOKEN,
    ``oauth`` → ``Authorization: Bearer``, ``job`` → JOB-TOKEN or Bearer)."""

    value: str
    user_id: int
    kind: Literal["personal", "oauth", "job"]
    scopes: tuple[str, ...]
    # None: every project; else the ids the token's user is a member of.
    project_ids: frozenset[int] | None


@dataclass(frozen=True)
class JobScript:
    """How one job of the script behaves."""

    name: str
    stage: str
    queued_s: float = 0.1
    duration_s: float = 0.3
    fails: bool = False
    # With ``fails``: how many attempts fail before a retry succeeds (None: all).
    fail_attempts: int | None = None
    failure_reason: str = "script_failure"
    exit_code: int = 1
    allow_failure: bool = False
    script: tuple[str, ...] = DEFAULT_SCRIPT_LINES
    artifacts: tuple[tuple[str, str], ...] = ()
    tag_list: tuple[str, ...] = ()
    coverage: float | None = None

    def fails_on(self, attempt: int) -> bool:
        if not self.fails:
            return False
        return self.fail_attempts is None or attempt <= self.fail_attempts


@dataclass(frozen=True)
class Script:
    """A project's pipeline: its stages in order, its jobs, and how long it stays created."""

    stages: tuple[str, ...] = ("build", "test")
    jobs: tuple[JobScript, ...] = (
        JobScript(name="compile", stage="build"),
        JobScript(name="unit", stage="test"),
    )
    created_s: float = 0.05


@dataclass
class Project:
    id: int
    path_with_namespace: str
    name: str
    default_branch: str
    branches: dict[str, str]
    tags: dict[str, str]
    visibility: Literal["private", "internal", "public"]
    created_at: float
    script: Script = field(default_factory=Script)

    def sha_of(self, ref: str) -> tuple[str, bool] | None:
        """The commit a branch or tag points at, and whether it is a tag."""
        if ref in self.branches:
            return self.branches[ref], False
        if ref in self.tags:
            return self.tags[ref], True
        return None


@dataclass
class Job:
    id: int
    pipeline_id: int
    spec: JobScript
    attempt: int
    created_at: float
    status: str = "created"
    queued_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    failure_reason: str | None = None
    retried: bool = False
    canceled_trace: bool = False

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def stage(self) -> str:
        return self.spec.stage

    def has_artifacts(self) -> bool:
        return self.status == "success" and bool(self.spec.artifacts)


@dataclass
class Pipeline:
    id: int
    iid: int
    project_id: int
    ref: str
    sha: str
    before_sha: str
    tag: bool
    source: str
    user_id: int
    created_at: float
    pending_at: float
    stages: tuple[str, ...]
    variables: tuple[tuple[str, str, str], ...]
    jobs: list[Job] = field(default_factory=list)
    canceled: bool = False
    updated_at: float = 0.0

    def latest_jobs(self) -> list[Job]:
        return [job for job in self.jobs if not job.retried]

    def status(self, now: float) -> str:
        """The composite status of the latest jobs (allowed failures count as passed)."""
        if now < self.pending_at:
            return "created"
        statuses = [
            "success" if job.status == "failed" and job.spec.allow_failure else job.status
            for job in self.latest_jobs()
        ]
        if all(status in FINISHED for status in statuses):
            if "failed" in statuses:
                return "failed"
            if "canceled" in statuses:
                return "canceled"
            if all(status == "skipped" for status in statuses):
                return "skipped"
            return "success"
        if "running" in statuses or any(status in FINISHED for status in statuses):
            return "running"
        if "pending" in statuses:
            return "pending"
        return "created"

    def started_at(self) -> float | None:
        starts = [job.started_at for job in self.jobs if job.started_at is not None]
        return min(starts) if starts else None

    def finished_at(self, now: float) -> float | None:
        if self.status(now) not in FINISHED:
            return None
        ends = [job.finished_at for job in self.jobs if job.finished_at is not None]
        return max(ends) if ends else self.updated_at

    def duration(self, now: float) -> int | None:
        """Seconds some job was running (the union of the jobs' running spans), once finished."""
        if self.finished_at(now) is None:
            return None
        spans = sorted(
            (job.started_at, job.finished_at)
            for job in self.jobs
            if job.started_at is not None and job.finished_at is not None
        )
        total, reach = 0.0, float("-inf")
        for start, end in spans:
            if end > reach:
                total += end - max(start, reach)
                reach = end
        return round(total)


@dataclass
class Schedule:
    id: int
    project_id: int
    description: str
    ref: str
    cron: str
    cron_timezone: str
    active: bool
    owner_id: int
    created_at: float
    variables: tuple[tuple[str, str, str], ...] = ()
    last_pipeline_id: int | None = None


def fake_sha(*parts: object) -> str:
    """A stable 40-hex commit id (only its shape matters)."""
    return hashlib.sha1("/".join(map(str, parts)).encode()).hexdigest()


class World:
    """Everything the stand-in knows; one event loop serves it, so no locks."""

    def __init__(self) -> None:
        self.clock = Clock()
        self.users: dict[int, User] = {}
        self.tokens: dict[str, Token] = {}
        self.projects: dict[int, Project] = {}
        self.pipelines: dict[int, Pipeline] = {}
        self.jobs: dict[int, Job] = {}
        self.schedules: dict[int, Schedule] = {}
        self._ids = {"project": 0, "pipeline": 0, "job": 0, "user": 0, "schedule": 0}

    def next_id(self, kind: str) -> int:
        self._ids[kind] += 1
        return self._ids[kind]

    # --- lookups -------------------------------------------------------------------------

    def project(self, ref: str) -> Project | None:
        """A project by numeric id or by (already URL-decoded) full path."""
        if ref.isdigit():
            return self.projects.get(int(ref))
        for project in self.projects.values():
            if project.path_with_namespace.lower() == ref.lower():
                return project
        return None

    def user_by_name(self, username: str) -> User | None:
        return next((u for u in self.users.values() if u.username == username), None)

    # --- pipelines -----------------------------------------------------------------------

    def create_pipeline(
        self,
        project: Project,
        *,
        ref: str,
        sha: str,
        tag: bool,
        source: str,
        user_id: int,
        variables: Iterable[tuple[str, str, str]] = (),
    ) -> Pipeline:
        now = self.clock.now()
        script = project.script
        iid = 1 + sum(1 for p in self.pipelines.values() if p.project_id == project.id)
        pipeline = Pipeline(
            id=self.next_id("pipeline"),
            iid=iid,
            project_id=project.id,
            ref=ref,
            sha=sha,
            before_sha="0" * 40,
            tag=tag,
            source=source,
            user_id=user_id,
            created_at=now,
            pending_at=now + script.created_s,
            stages=script.stages,
            variables=tuple(variables),
            updated_at=now,
        )
        for spec in sorted(script.jobs, key=lambda j: script.stages.index(j.stage)):
            self._add_job(pipeline, spec, attempt=1, at=now)
        self.pipelines[pipeline.id] = pipeline
        return pipeline

    def _add_job(self, pipeline: Pipeline, spec: JobScript, *, attempt: int, at: float) -> Job:
        job = Job(
            id=self.next_id("job"),
            pipeline_id=pipeline.id,
            spec=spec,
            attempt=attempt,
            created_at=at,
        )
        pipeline.jobs.append(job)
        self.jobs[job.id] = job
        return job

    def cancel_pipeline(self, pipeline: Pipeline) -> None:
        now = self.clock.now()
        self.advance()
        for job in pipeline.latest_jobs():
            self._cancel(job, now)
        # A pipeline canceled while still created is canceled, not created.
        pipeline.pending_at = min(pipeline.pending_at, now)
        pipeline.updated_at = now

    def cancel_job(self, job: Job) -> None:
        now = self.clock.now()
        self.advance()
        self._cancel(job, now)
        self.pipelines[job.pipeline_id].updated_at = now

    @staticmethod
    def _cancel(job: Job, now: float) -> None:
        if job.status in ACTIVE:
            job.canceled_trace = job.status == "running"
            job.status = "canceled"
            job.finished_at = now

    def retry_pipeline(self, pipeline: Pipeline) -> None:
        """Retry the failed and canceled jobs; the skipped ones run again in place."""
        now = self.clock.now()
        self.advance()
        for job in pipeline.latest_jobs():
            if job.status in {"failed", "canceled"}:
                self._retry(pipeline, job, now)
            elif job.status == "skipped":
                job.status, job.finished_at = "created", None
        pipeline.updated_at = now
        self.advance()

    def retry_job(self, job: Job) -> Job:
        now = self.clock.now()
        self.advance()
        pipeline = self.pipelines[job.pipeline_id]
        fresh = self._retry(pipeline, job, now)
        later = pipeline.stages[pipeline.stages.index(job.stage) + 1 :]
        for other in pipeline.latest_jobs():
            if other.stage in later and other.status == "skipped":
                other.status, other.finished_at = "created", None
        pipeline.updated_at = now
        self.advance()
        return fresh

    def _retry(self, pipeline: Pipeline, job: Job, now: float) -> Job:
        job.retried = True
        return self._add_job(pipeline, job.spec, attempt=job.attempt + 1, at=now)

    # --- time ----------------------------------------------------------------------------

    def advance(self) -> None:
        """Apply every transition due by now, each at the instant it was due."""
        now = self.clock.now()
        for pipeline in self.pipelines.values():
            # Each pass applies at least one transition; a job has at most four.
            for _ in range(4 * len(pipeline.jobs) + 2):
                if not self._step(pipeline, now):
                    break

    def _step(self, pipeline: Pipeline, now: float) -> bool:
        if now < pipeline.pending_at:
            return False
        opens_at = pipeline.pending_at
        for stage in pipeline.stages:
            jobs = [job for job in pipeline.latest_jobs() if job.stage == stage]
            if not jobs:
                continue
            if all(job.status in FINISHED for job in jobs):
                blocking = [
                    job
                    for job in jobs
                    if job.status == "canceled"
                    or (job.status == "failed" and not job.spec.allow_failure)
                ]
                ends = [job.finished_at for job in jobs if job.finished_at is not None]
                opens_at = max([opens_at, *ends])
                if blocking:
                    return self._skip_after(pipeline, stage, opens_at)
                continue
            return any([self._move(job, pipeline, opens_at, now) for job in jobs])
        return False

    def _skip_after(self, pipeline: Pipeline, stage: str, at: float) -> bool:
        later = pipeline.stages[pipeline.stages.index(stage) + 1 :]
        changed = False
        for job in pipeline.latest_jobs():
            if job.stage in later and job.status == "created":
                job.status, job.finished_at = "skipped", at
                pipeline.updated_at = max(pipeline.updated_at, at)
                changed = True
        return changed

    @staticmethod
    def _move(job: Job, pipeline: Pipeline, opens_at: float, now: float) -> bool:
        spec = job.spec
        if job.status == "created":
            at = max(opens_at, job.created_at)
            job.status, job.queued_at = "pending", at
        elif job.status == "pending" and job.queued_at is not None:
            at = job.queued_at + spec.queued_s
            if at > now:
                return False
            job.status, job.started_at = "running", at
        elif job.status == "running" and job.started_at is not None:
            at = job.started_at + spec.duration_s
            if at > now:
                return False
            if spec.fails_on(job.attempt):
                job.status, job.failure_reason = "failed", spec.failure_reason
            else:
                job.status = "success"
            job.finished_at = at
        else:
            return False
        pipeline.updated_at = max(pipeline.updated_at, at)
        return True
